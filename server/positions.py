"""Character offsets <-> LSP positions (line, UTF-16 code unit), as LSP requires.

Lines end at \\n, \\r\\n or \\r, the same as LSP. Built once per document text.
"""

from __future__ import annotations

import bisect

from lsprotocol import types


class PositionMap:
    """Converts Python string offsets of one text to and from LSP positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        i = 0
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            if ch in "\r\n":
                starts.append(i + 1)
            i += 1
        self.line_starts = starts

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) - 1

    def position(self, offset: int) -> types.Position:
        """The LSP position of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = self.line_of(offset)
        start = self.line_starts[line]
        col = len(self.text[start:offset].encode("utf-16-le")) // 2
        return types.Position(line=line, character=col)

    def range(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position(start), end=self.position(end))

    def offset(self, position: types.Position) -> int:
        """The character offset of an LSP position (clamped to the line)."""
        if position.line >= len(self.line_starts):
            return len(self.text)
        start = self.line_starts[position.line]
        end = (
            self.line_starts[position.line + 1]
            if position.line + 1 < len(self.line_starts)
            else len(self.text)
        )
        units = 0
        for i in range(start, end):
            if units >= position.character:
                return i
            units += 2 if ord(self.text[i]) > 0xFFFF else 1
        return end

    def line_segments(self, start: int, end: int) -> list[tuple[int, int]]:
        """Split [start, end) at line breaks (semantic tokens may not span lines)."""
        pieces = []
        line = self.line_of(start)
        while start < end:
            next_start = (
                self.line_starts[line + 1] if line + 1 < len(self.line_starts) else len(self.text)
            )
            stop = min(end, next_start)
            body = self.text[start:stop].rstrip("\r\n")
            if body:
                pieces.append((start, start + len(body)))
            start = stop
            line += 1
        return pieces
