"""Render a template with its own engine and keep, per output character, the file span that
produced it.

The engine is not changed: invisible markers (Unicode private-use characters) are written into
the template source around each literal run and each expression, the real engine renders the
marked source, and the markers in its output say where every character came from. Markers go
only before a non-space character or right at a tag, so whitespace control (`{%-`, `~}}`,
standalone lines) sees the same whitespace as in the unmarked template. The marked output,
markers removed, must equal the engine's render of the unmarked template; `MappedText.align`
covers the rare template where it does not (a filter that measures or trims captured text).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from promptxray.explainers.prompt.document import Segment

Span = tuple[int, int]

_OPEN_LITERAL = "\U000f0000"
_OPEN_EXPRESSION = "\U000f0001"
_CLOSE = "\U000f0002"
_ID_BASE = 0x100000  # supplementary private-use area B: up to 65,534 marks
_KINDS = {_OPEN_LITERAL, _OPEN_EXPRESSION, _CLOSE}


def has_marker_chars(text: str) -> bool:
    """Whether `text` already holds characters this module uses as markers."""
    return any(ord(c) >= 0xF0000 for c in text)


@dataclass
class Expression:
    """A template tag whose output is filled-in text: its file span and what it is called."""

    start: int
    end: int
    name: str
    strip_before: bool = False  # the tag eats the whitespace before it (`{{-`, `{{~`)
    strip_after: bool = False


@dataclass
class Marked:
    """The template source with markers written in, and what each mark id stands for."""

    text: str
    literals: dict[int, Span] = field(default_factory=dict)
    expressions: dict[int, Expression] = field(default_factory=dict)

    def add_literal(self, span: Span) -> tuple[str, str]:
        """Register a literal run; return its opening and closing marks."""
        ident = self._next_id()
        self.literals[ident] = span
        return _OPEN_LITERAL + chr(_ID_BASE + ident), _CLOSE + chr(_ID_BASE + ident)

    def add_expression(self, expr: Expression) -> tuple[str, str]:
        """Register an expression; return its opening and closing marks. A format may place
        them itself, inside the engine's own structures, where marks written into the source
        would change the output (a Handlebars partial alone on its line)."""
        ident = self._next_id()
        self.expressions[ident] = expr
        return _OPEN_EXPRESSION + chr(_ID_BASE + ident), _CLOSE + chr(_ID_BASE + ident)

    def _next_id(self) -> int:
        ident = len(self.literals) + len(self.expressions)
        if ident >= 0xFFFE:
            raise ValueError("template too large to map")
        return ident


def mark(source: str, literals: Iterable[Span], expressions: Iterable[Expression]) -> Marked:
    """`source` with a mark around the non-space part of each literal run and around each
    expression (outside the whitespace it strips)."""
    inserts: list[tuple[int, int, str]] = []  # (position, order, text): closes before opens
    out = Marked("")
    for start, end in literals:
        a = start
        while a < end and source[a].isspace():
            a += 1
        b = end
        while b > a and source[b - 1].isspace():
            b -= 1
        if a >= b:
            continue
        opening, closing = out.add_literal((a, b))
        inserts += [(a, 2, opening), (b, 0, closing)]
    for expr in expressions:
        a, b = expr.start, expr.end
        if expr.strip_before:
            while a > 0 and source[a - 1].isspace():
                a -= 1
        if expr.strip_after:
            while b < len(source) and source[b].isspace():
                b += 1
        opening, closing = out.add_expression(expr)
        inserts += [(a, 1, opening), (b, 0, closing)]
    inserts.sort(key=lambda t: (t[0], t[1]))
    parts, pos = [], 0
    for at, _, text in inserts:
        parts += [source[pos:at], text]
        pos = at
    parts.append(source[pos:])
    out.text = "".join(parts)
    return out


@dataclass
class MappedText:
    """Text with, per character, its file span, whether that span is the character itself
    (`exact`), and the expression that produced it (`names`; None for literal text)."""

    text: str
    spans: list[Span | None]
    exact: list[bool]
    names: list[str | None]

    def slice(self, start: int, end: int) -> MappedText:
        return MappedText(
            self.text[start:end],
            self.spans[start:end],
            self.exact[start:end],
            self.names[start:end],
        )

    def shift(self, by: int) -> MappedText:
        """The same map with every span moved `by` characters (a body's map into its file)."""
        spans = [None if s is None else (s[0] + by, s[1] + by) for s in self.spans]
        return MappedText(self.text, spans, list(self.exact), list(self.names))

    def align(self, target: str) -> MappedText:
        """The map of `target`, a text close to this one (the engine's own output where the
        markers changed it, or a parser's rewrite): equal stretches keep their spans; the
        rest take the span of the nearest character before them, marked inexact."""
        if target == self.text:
            return self
        spans: list[Span | None] = [None] * len(target)
        exact = [False] * len(target)
        names: list[str | None] = [None] * len(target)
        matcher = difflib.SequenceMatcher(None, self.text, target, autojunk=False)
        for a, b, size in matcher.get_matching_blocks():
            spans[b : b + size] = self.spans[a : a + size]
            exact[b : b + size] = self.exact[a : a + size]
            names[b : b + size] = self.names[a : a + size]
        return _fill_gaps(MappedText(target, spans, exact, names))

    def locate(self, piece: str, cursor: int = 0) -> tuple[MappedText, int]:
        """The map of `piece`, a parser's piece of this text found at or after `cursor`
        (aligned when the parser changed it), and where the search goes on from."""
        at = self.text.find(piece, cursor)
        if at >= 0:
            return self.slice(at, at + len(piece)), at + len(piece)
        return self.slice(cursor, len(self.text)).align(piece), cursor

    def segments(self) -> list[Segment]:
        """The text as `Segment`s: runs of literal characters, and one segment per stretch
        of an expression's output or of rewritten text."""
        filled = _fill_gaps(self)
        segs: list[Segment] = []
        for i, ch in enumerate(filled.text):
            span = filled.spans[i]
            assert span is not None
            name, exact = filled.names[i], filled.exact[i] and filled.names[i] is None
            last = segs[-1] if segs else None
            if (
                last is not None
                and exact
                and last.exact
                and last.placeholder is None
                and last.end == span[0]
                and span[1] == span[0] + 1
            ):
                segs[-1] = Segment(last.text + ch, last.start, span[1])
                continue
            if (
                last is not None
                and not exact
                and (last.start, last.end) == span
                and last.placeholder == name
                and not last.exact
            ):
                last.text += ch
                continue
            segs.append(Segment(ch, span[0], span[1], placeholder=name, exact=exact))
        for seg in segs:  # an expression's output is never "exact"
            if seg.placeholder is not None:
                seg.exact = False
        return segs


def _fill_gaps(mapped: MappedText) -> MappedText:
    """Give characters without a span the span of the nearest mapped character (before them,
    else after), marked inexact, so every character the model reads points into the file."""
    spans, exact, names = list(mapped.spans), list(mapped.exact), list(mapped.names)
    known = [i for i, s in enumerate(spans) if s is not None]
    if not known:
        return mapped
    prev = None
    for i in range(len(spans)):
        if spans[i] is not None:
            prev = i
            continue
        src = prev if prev is not None else known[0]
        spans[i], exact[i], names[i] = spans[src], False, names[src]
    return MappedText(mapped.text, spans, exact, names)


def unmark(output: str, marked: Marked, source: str) -> MappedText:
    """The engine's output of the marked template, markers removed, with its map: literal
    characters to their own characters of `source` (newline-normalised text: `to_file` takes
    the map on to the file), expression output to the expression's tag, and whitespace
    between marks to the source's whitespace next to the mapped neighbour."""
    text: list[str] = []
    spans: list[Span | None] = []
    exact: list[bool] = []
    names: list[str | None] = []
    stack: list[list[int]] = []  # [mark id, file cursor]
    i = 0
    while i < len(output):
        ch = output[i]
        if ch in _KINDS and i + 1 < len(output) and ord(output[i + 1]) >= _ID_BASE:
            ident = ord(output[i + 1]) - _ID_BASE
            if ch == _CLOSE:
                while stack and stack[-1][0] != ident:
                    stack.pop()
                if stack:
                    stack.pop()
            elif ch == _OPEN_LITERAL and ident in marked.literals:
                stack.append([ident, marked.literals[ident][0]])
            elif ident in marked.expressions:
                stack.append([ident, -1])
            i += 2
            continue
        text.append(ch)
        span: Span | None = None
        is_exact, name = False, None
        if stack:
            ident, cur = stack[-1]
            if ident in marked.literals:
                a, b = marked.literals[ident]
                if cur < b and source[cur] == ch:
                    span, is_exact = (cur, cur + 1), True
                    stack[-1][1] = cur + 1
                elif cur + 1 < b and source[cur] == "\\" and source[cur + 1] == ch:
                    span, is_exact = (cur + 1, cur + 2), True  # an escape's dropped backslash
                    stack[-1][1] = cur + 2
                else:
                    span = (a, b)
            else:
                expr = marked.expressions[ident]
                span, name = (expr.start, expr.end), expr.name
        spans.append(span)
        exact.append(is_exact)
        names.append(name)
        i += 1
    _map_whitespace(source, text, spans, exact)
    return MappedText("".join(text), spans, exact, names)


def _map_whitespace(
    source: str, text: list[str], spans: list[Span | None], exact: list[bool]
) -> None:
    """Unmarked whitespace (around literal runs) continues the file text next to it."""
    for i in range(len(text)):
        if spans[i] is not None or not text[i].isspace() or i == 0 or spans[i - 1] is None:
            continue
        end = spans[i - 1][1]  # type: ignore[index]
        if source.startswith(text[i], end):
            spans[i], exact[i] = (end, end + 1), True
    for i in range(len(text) - 1, -1, -1):
        if spans[i] is not None or not text[i].isspace() or i + 1 == len(text):
            continue
        nxt = spans[i + 1]
        if nxt is not None and nxt[0] > 0 and source[nxt[0] - 1] == text[i]:
            spans[i], exact[i] = (nxt[0] - 1, nxt[0]), True


def normalize_newlines(source: str) -> tuple[str, list[int]]:
    """`source` with CRLF and CR line breaks as LF (what template runtimes read, having opened
    the file in text mode), and the file offset of each of its characters (plus its end)."""
    out: list[str] = []
    offsets: list[int] = []
    i = 0
    while i < len(source):
        ch = source[i]
        offsets.append(i)
        if ch == "\r":
            out.append("\n")
            i += 2 if source.startswith("\r\n", i) else 1
            continue
        out.append(ch)
        i += 1
    offsets.append(len(source))
    return "".join(out), offsets


def to_file(mapped: MappedText, offsets: list[int]) -> MappedText:
    """A map into normalised text (`normalize_newlines`) as a map into the file itself."""
    spans: list[Span | None] = []
    exact = list(mapped.exact)
    for i, span in enumerate(mapped.spans):
        if span is None:
            spans.append(None)
            continue
        a, b = offsets[span[0]], offsets[span[1]]
        spans.append((a, b))
        if exact[i] and b - a != 1:
            exact[i] = False
    return MappedText(mapped.text, spans, exact, list(mapped.names))


def render_mapped(
    render: Callable[[str], str],
    source: str,
    literals: Iterable[Span],
    expressions: Iterable[Expression],
    *,
    values_text: str = "",
    prepare: Callable[[Marked], None] | None = None,
) -> MappedText:
    """Render `source` (newline-normalised: `normalize_newlines`) with `render` (the format's
    engine) and map its output back to `source`; the output is always exactly the engine's
    render of `source` itself.

    `values_text`: the sample values (and any other text the engine reads) as text, checked
    for marker characters too. `prepare`: called with the marked template before it is
    rendered; it may rewrite `marked.text` and add expressions it marks itself
    (`Marked.add_expression`)."""
    reference = render(source)
    if has_marker_chars(source) or has_marker_chars(values_text):
        whole = (0, len(source))
        n = len(reference)
        return MappedText(reference, [whole] * n, [False] * n, [None] * n)
    marked = mark(source, literals, expressions)
    if prepare is not None:
        prepare(marked)
    mapped = unmark(render(marked.text), marked, source)
    return mapped.align(reference)
