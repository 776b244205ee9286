"""An edit as line hunks (what a diff shows with no context lines), and the file with some of
them reverted: the pieces `checks.blame` tries one at a time to find the edit that broke a
check. Pure functions on text: no backend, no wording (`nl/blame_text.py` words them)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Hunk:
    """One run of changed lines: lines [old_start, old_end) of the old file became lines
    [new_start, new_end) of the new one (0-based, end exclusive; an empty side is a pure
    insertion or deletion). The texts keep their line breaks."""

    old_start: int
    old_end: int
    new_start: int
    new_end: int
    old_text: str
    new_text: str

    @property
    def kind(self) -> str:
        """ "added", "removed" or "changed"."""
        if self.old_start == self.old_end:
            return "added"
        if self.new_start == self.new_end:
            return "removed"
        return "changed"

    @property
    def lines(self) -> tuple[int, int]:
        """The 1-based first and last line in the new file; a removal gives the line it was
        removed before (first = last)."""
        if self.new_start == self.new_end:
            return self.new_start + 1, self.new_start + 1
        return self.new_start + 1, self.new_end


def line_hunks(old: str, new: str) -> list[Hunk]:
    """The edit from `old` to `new` as line hunks in file order (difflib's opcodes on lines,
    every non-equal block one hunk, as `diff -U0` shows them)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [
        Hunk(i1, i2, j1, j2, "".join(a[i1:i2]), "".join(b[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]


def revert(new: str, hunks: list[Hunk], chosen: Iterable[int]) -> str:
    """`new` with the hunks at the indices `chosen` reverted (their old lines back), the
    others kept: reverting every hunk gives the old file exactly."""
    return _Reverted(new, hunks, set(chosen)).text


def range_map(
    new: str, hunks: list[Hunk], chosen: Iterable[int]
) -> Callable[[int, int], tuple[int, int]]:
    """Where a range of offsets of `new` lands in `revert(new, hunks, chosen)`: shifted past
    the reverted hunks before it; a start inside a reverted hunk goes to the start of its old
    lines, an end inside one to their end (a range inside a reverted hunk covers its old
    lines; one inside an added hunk that was reverted becomes empty)."""
    return _Reverted(new, hunks, set(chosen)).map_range


class _Reverted:
    """The reverted text, built once, and the offset map that goes with it."""

    def __init__(self, new: str, hunks: list[Hunk], chosen: set[int]) -> None:
        lines = new.splitlines(keepends=True)
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line))
        pieces: list[str] = []
        # (new start, new end, variant start, variant end) of each reverted hunk, in order
        self.spans: list[tuple[int, int, int, int]] = []
        at, out = 0, 0  # next new-file line to copy, length of the text so far
        for index, hunk in enumerate(hunks):
            if index not in chosen:
                continue
            kept = "".join(lines[at : hunk.new_start])
            pieces.append(kept)
            out += len(kept)
            pieces.append(hunk.old_text)
            self.spans.append(
                (starts[hunk.new_start], starts[hunk.new_end], out, out + len(hunk.old_text))
            )
            out += len(hunk.old_text)
            at = hunk.new_end
        pieces.append("".join(lines[at:]))
        self.text = "".join(pieces)

    def map_range(self, start: int, end: int) -> tuple[int, int]:
        return self._map(start, at_end=False), self._map(end, at_end=True)

    def _map(self, offset: int, at_end: bool) -> int:
        shift = 0
        for new_start, new_end, start, end in self.spans:
            inside = new_start < offset <= new_end if at_end else new_start <= offset < new_end
            if inside:
                return end if at_end else start
            if offset < new_start or (offset == new_start and at_end):
                break
            shift = end - new_end
        return offset + shift
