"""Structure-level parts of a prompt: sentences, sections, messages, few-shot examples and
template variables, as character ranges of the file.

Attribution at these levels answers the questions prompt authors ask ("does the system message
matter?", "which example does the answer copy?", "is the answer driven by the {{question}} or
by my template?") with a handful of scores instead of hundreds. Every part is a list of
`(start, end)` ranges of the file text (Python str offsets, like every span in promptxray);
`units.group_units` turns parts into units by giving each model token to the part that holds
its first non-space character, so the methods, which only see token-index units, need nothing
new and every span still points into the file.

Parts are found in what the model reads, whatever the file's format: each message's text
(`Message.content`, after any template has been rendered), with every character's file span
(`Message.char_spans`). A part is a stretch of one message's text; its file ranges are the
spans of its characters, joined across file text the model never sees (a template tag, the
quotes between two string literals in code). Front matter and role lines are never part of
any part. Text a template repeats (a loop body) maps to the same file text each time: it
belongs to the first part that holds it. This module is the one home of these rules: the
checks' part names (`{section: TITLE}`, `{variable: NAME}`) use `find_sections` and
`variable_uses`. No torch here.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.prompt.document import PromptDocument
from promptxray.explainers.types import STRUCTURE_GRANULARITIES

Range = tuple[int, int]
STRUCTURE_KINDS = STRUCTURE_GRANULARITIES  # sentence, section, message, example, variable

# a sentence ends after . ! ? or … (and any closing quotes or brackets) before white space
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
# a Markdown ATX heading line (matched whole, line break excluded): level and title
_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(```|~~~)")
# an XML-style tag: closing slash, name, attributes, self-closing slash
_TAG = re.compile(
    r"<(/?)([A-Za-z_][\w.:-]*)"
    r"((?:\s+[^\s=/>\"'<]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)\s*(/?)>"
)
# a chat turn written in plain text: a line that starts with a role and a colon
_TURN = re.compile(r"[ \t]*(system|user|assistant)[ \t]*:", re.IGNORECASE)
# a few-shot field label: `Input:`, `Q:`, `English text:`, `Example 3:` at the start of a line
_LABEL = re.compile(r"[ \t]*([^\W\d_][\w '-]{0,30}?)[ \t]*:(?=\s|$)")
_LABEL_WORDS = 3  # longer "labels" are sentences that end in a colon ("Classify these:")
# a list item's marker: `1.`, `2)`, `-`, `*`, `•`
_LIST_ITEM = re.compile(r"[ \t]*(?:\d{1,3}[.)]|[-*+•])[ \t]+(?=\S)")
# the arrow of a one-line example (`cat -> mammal`)
_ARROW = re.compile(r"[ \t]*(->|=>|→)[ \t]*")
# a one-line example `left: right` (the colon before white space or the line's end)
_COLON_PAIR = re.compile(r"([^:\s][^:]{0,99}?)[ \t]*:(?:[ \t]+(.*))?")
_COLON_WORDS = 12
# an example's heading (a Markdown heading's title or a line of its own, emphasis removed):
# `Example`, `Example 2`, `Example #3`, `Example B`, with a title after `:`/`.`/`-` allowed
_EXAMPLE_TITLE = re.compile(
    r"example(?:[ \t]*#?[ \t]*\d+|[ \t]+[a-z])?\b[ \t]*(?:[:.)\-–—].*)?", re.IGNORECASE
)
# a heading, element or line that introduces a list of examples: `## Examples`, `<examples>`,
# `Here are some examples:`
_EXAMPLES_TITLE = re.compile(r"(?:[\w-]+[ \t]+){0,3}examples[ \t]*:?", re.IGNORECASE)
_EXAMPLES_TAG = re.compile(r"(?:[\w-]*[_-])?examples", re.IGNORECASE)
_EXAMPLE_TAG = re.compile(r"example(?:[_-]?\d+)?", re.IGNORECASE)
_INTRO_WORDS = 15


@dataclass
class Part:
    """One structure-level part: a readable label and the file ranges it covers (several for
    a variable filled in more than once, or text a message took from elsewhere in the file)."""

    label: str
    ranges: list[Range] = field(default_factory=list)

    def text(self, source: str) -> str:
        """The part's text, its ranges joined by " … " (for messages and tests)."""
        return " … ".join(source[s:e].strip() for s, e in self.ranges)


@dataclass(frozen=True)
class _Heading:
    """A Markdown heading line of a message's text: where it is, its level and its title."""

    start: int
    end: int  # the line's end, line break excluded
    level: int
    title: str


@dataclass(frozen=True)
class _Element:
    """An XML-style element of a message's text whose open tag starts a line and whose close
    tag ends one (`<context>` … `</context>`): a block, not markup inside a sentence."""

    name: str
    tag: str  # the open tag, white space collapsed: '<document index="2">'
    start: int  # where the open tag starts
    inner: Range  # the text between the tags
    end: int  # where the close tag ends
    depth: int  # how many such elements hold it (0: top level)


@dataclass(frozen=True)
class _Line:
    start: int
    end: int  # line break excluded
    nxt: int  # the next line's start
    fenced: bool  # in (or opening or closing) a fenced code block


@dataclass
class _View:
    """One message as the model reads it: its text and each character's file span."""

    text: str
    spans: list[Range]

    @cached_property
    def lines(self) -> list[_Line]:
        text, fenced, pos = self.text, False, 0
        out: list[_Line] = []
        while pos < len(text):
            nl = text.find("\n", pos)
            nxt = len(text) if nl < 0 else nl + 1
            end = len(text) if nl < 0 else nl
            end -= 1 if end > pos and text[end - 1] == "\r" else 0
            fence = bool(_FENCE.match(text, pos, end))
            out.append(_Line(pos, end, nxt, fenced or fence))
            fenced ^= fence
            pos = nxt
        return out

    @cached_property
    def headings(self) -> list[_Heading]:
        found = []
        for ln in self.lines:
            m = None if ln.fenced else _HEADING.fullmatch(self.text, ln.start, ln.end)
            if m:
                found.append(
                    _Heading(ln.start, ln.end, len(m.group(1)), (m.group(2) or "").strip())
                )
        return found

    @cached_property
    def elements(self) -> list[_Element]:
        text = self.text
        stack: list[re.Match[str]] = []
        spans: list[tuple[re.Match[str], re.Match[str]]] = []
        for ln in self.lines:
            if ln.fenced:
                continue
            for m in _TAG.finditer(text, ln.start, ln.end):
                if m.group(4):  # self-closing: no text inside
                    continue
                if not m.group(1):
                    stack.append(m)
                    continue
                k = next((i for i in reversed(range(len(stack))) if stack[i][2] == m[2]), None)
                if k is None:  # a stray close tag
                    continue
                opened = stack[k]
                del stack[k:]  # tags opened inside and never closed are not elements
                line_start = text.rfind("\n", 0, opened.start()) + 1
                line_end = text.find("\n", m.end())
                line_end = len(text) if line_end < 0 else line_end
                if not text[line_start : opened.start()].strip() and not (
                    text[m.end() : line_end].strip()
                ):
                    spans.append((opened, m))
        spans.sort(key=lambda om: om[0].start())
        found = []
        for opened, closed in spans:
            depth = sum(
                1 for o, c in spans if o.start() < opened.start() and c.end() >= closed.end()
            )
            tag = "<" + " ".join([opened[2], *opened[3].split()]) + ">"
            found.append(
                _Element(
                    opened[2],
                    tag,
                    opened.start(),
                    (opened.end(), closed.start()),
                    closed.end(),
                    depth,
                )
            )
        return found

    @cached_property
    def _starts(self) -> list[int]:
        return [ln.start for ln in self.lines]

    def line_at(self, pos: int) -> int:
        """The index of the line that holds `pos`."""
        return max(0, bisect.bisect_right(self._starts, pos) - 1)

    def indent(self, ln: _Line) -> int:
        line = self.text[ln.start : ln.end]
        return len(line) - len(line.lstrip())

    def blank(self, ln: _Line) -> bool:
        return not self.text[ln.start : ln.end].strip()

    @cached_property
    def hard_stops(self) -> set[int]:
        """Starts of the lines that end any run of prose: headings and element tag lines."""
        stops = {h.start for h in self.headings}
        for e in self.elements:
            stops |= {self.lines[self.line_at(e.start)].start}
            stops |= {self.lines[self.line_at(e.inner[1])].start}
        return stops

    def until_stop(self, pos: int, limit: int, blank: bool = True) -> int:
        """The start of the first blank line (with `blank`), heading or element tag line at
        or after `pos` (`limit` if none before it)."""
        for ln in self.lines[self.line_at(pos) :]:
            if ln.start >= limit:
                break
            if ln.start >= pos and ((blank and self.blank(ln)) or ln.start in self.hard_stops):
                return ln.start
        return limit

    def container_end(self, pos: int) -> int:
        """Where the innermost element holding `pos` closes (the text's end if none)."""
        holding = [e.inner[1] for e in self.elements if e.inner[0] <= pos < e.inner[1]]
        return min(holding, default=len(self.text))


def _views(doc: PromptDocument) -> list[_View]:
    return [_View(m.content, m.char_spans()) for m in doc.messages]


# --- from the text the model reads to ranges of the file ---------------------------------------


@dataclass
class _Piece:
    """A stretch of one message's text; pieces with the same `key` make one part."""

    view: int
    start: int
    end: int
    label: str | None  # None: no part (white space left between parts)
    key: object = None


def _merge(ranges: Iterable[Range]) -> list[Range]:
    out: list[Range] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _subtract(ranges: list[Range], taken: list[Range]) -> list[Range]:
    out = []
    for a, b in ranges:
        for c, d in taken:
            if c >= b or d <= a:
                continue
            if c > a:
                out.append((a, c))
            a = max(a, d)
            if a >= b:
                break
        if a < b:
            out.append((a, b))
    return out


def _to_file(doc: PromptDocument, views: list[_View], pieces: list[_Piece]) -> list[list[Range]]:
    """Each piece's file ranges. A piece's characters' spans are joined across file text no
    message shows (template tags, code between string literals), and such text between two
    pieces goes to the second; file text an earlier piece holds (a loop body repeated, a
    variable's value cut in two) stays that piece's."""
    visible = _merge((s.start, s.end) for m in doc.messages for s in m.segments)
    starts = [a for a, _ in visible]

    def hidden(a: int, b: int) -> bool:  # no message shows any of the file text a..b
        k = bisect.bisect_left(starts, b)
        return a <= b and (k == 0 or visible[k - 1][1] <= a)

    order = sorted(range(len(pieces)), key=lambda i: (pieces[i].view, pieces[i].start))
    raw: dict[int, list[Range]] = {}
    for i in order:
        p, runs = pieces[i], list[Range]()
        for s, e in views[p.view].spans[p.start : p.end]:
            if runs and runs[-1][0] <= s and (s <= runs[-1][1] or hidden(runs[-1][1], s)):
                runs[-1] = (runs[-1][0], max(runs[-1][1], e))
            else:
                runs.append((s, e))
        raw[i] = _merge(runs)
    for i, j in itertools.pairwise(order):
        p, q = pieces[i], pieces[j]
        if p.view == q.view and p.end == q.start and raw[i] and raw[j]:
            end, (s, e) = raw[i][-1][1], raw[j][0]
            if end < s and hidden(end, s):
                raw[j][0] = (end, e)
    out: dict[int, list[Range]] = {}
    taken: list[Range] = []
    for i in order:
        out[i] = _subtract(raw[i], taken)
        taken = _merge([*taken, *out[i]])
    return [out[i] for i in range(len(pieces))]


def _assemble(doc: PromptDocument, views: list[_View], pieces: list[_Piece]) -> list[Part]:
    """The parts the labelled pieces make, in the order the model reads them."""
    found: dict[object, Part] = {}
    for i, (piece, ranges) in enumerate(zip(pieces, _to_file(doc, views, pieces), strict=True)):
        if piece.label is None or not ranges:
            continue
        key = ("piece", i) if piece.key is None else piece.key
        part = found.setdefault(key, Part(piece.label))
        part.ranges = _merge([*part.ranges, *ranges])
    return list(found.values())


def _partition(text: str, cuts: Iterable[int]) -> list[Range]:
    """Split `text` at `cuts`; a piece of white space alone joins the piece before it (or, at
    the start, the piece after it) so no token is left without a part."""
    bounds = sorted({0, len(text), *(c for c in cuts if 0 < c < len(text))})
    ranges: list[Range] = []
    for a, b in itertools.pairwise(bounds):
        if text[a:b].strip() or not ranges:
            ranges.append((a, b))
        else:
            ranges[-1] = (ranges[-1][0], b)
    if len(ranges) > 1 and not text[ranges[0][0] : ranges[0][1]].strip():
        ranges[1] = (ranges[0][0], ranges[1][1])
        ranges.pop(0)
    return ranges


def _number(parts: list[Part], label: str) -> list[Part]:
    return [Part(f"{label} {i + 1}", p.ranges) for i, p in enumerate(parts)]


# --- sentences, sections, messages ----------------------------------------------------------


def sentences(doc: PromptDocument) -> list[Part]:
    """Sentences: a sentence ends after `.`, `!`, `?` or `…` followed by white space, and at
    every line break (prompts are rarely hard-wrapped prose, and a line without final
    punctuation, such as a heading, a list item or `Q: ...`, reads as a sentence of its own)."""
    views, pieces = _views(doc), []
    for v, view in enumerate(views):
        cuts = [m.end() for m in _SENTENCE_END.finditer(view.text)]
        cuts += [ln.nxt for ln in view.lines]
        pieces += [_Piece(v, a, b, "sentence") for a, b in _partition(view.text, cuts)]
    return _number(_assemble(doc, views, pieces), "sentence")


def sections(doc: PromptDocument) -> list[Part]:
    """Sections: each top-level XML-style element (`<instructions>` … `</instructions>`,
    attributes allowed, its open tag starting a line and its close tag ending one) is one
    section; the text outside elements is cut at Markdown headings (each heading with the
    text under it, and the text before the first one) when the prompt has any, else into
    blank-line-separated blocks. Sections never cross a message boundary. Labels name the
    element (`section <context>`) or the heading (`section "Rules"`); others are numbered."""
    views = _views(doc)
    found = _assemble(doc, views, _section_pieces(views))
    return [Part(f"section {p.label or i + 1}", p.ranges) for i, p in enumerate(found)]


def _section_pieces(views: list[_View]) -> list[_Piece]:
    """The sections as pieces of the messages' text, labelled with their names ("" if none)."""

    def outside(view: _View, pos: int) -> bool:
        return not any(e.start <= pos < e.end for e in view.elements if e.depth == 0)

    pieces = []
    by_heading = any(outside(vw, h.start) for vw in views for h in vw.headings)
    for v, view in enumerate(views):
        top = [e for e in view.elements if e.depth == 0]
        names: dict[int, str] = {e.start: e.tag for e in top}
        cuts = [pos for e in top for pos in (e.start, e.end)]
        if by_heading:
            for h in view.headings:
                if outside(view, h.start):
                    cuts.append(h.start)
                    if h.title:
                        names[h.start] = f'"{h.title}"'
        else:
            cuts += [
                b.start
                for a, b in itertools.pairwise(view.lines)
                if view.blank(a) and not view.blank(b) and outside(view, b.start)
            ]
        for a, b in _partition(view.text, cuts):
            name = next((names[c] for c in sorted(names) if a <= c < b), None)
            pieces.append(_Piece(v, a, b, name or ""))
    return pieces


def find_sections(doc: PromptDocument, name: str) -> list[list[Range]]:
    """The file ranges of each section called `name`, in reading order: an XML-style element
    of that tag name (`instructions` or `<instructions>`; written with its attributes,
    `<document index="2">`, only that element), at any depth, open tag to close tag; and a
    Markdown heading of that title (`Rules` or `## Rules`), from the heading to the next one
    of the same or a higher level, within its message and the element holding it."""
    want = name.strip()
    tag = None
    if want.startswith("<") and want.endswith(">"):
        tag = " ".join(want[1:-1].split())
    else:
        want = want.lstrip("#").strip()
    views, pieces = _views(doc), []
    for v, view in enumerate(views):
        for e in view.elements:
            with_attributes = tag is not None and " " in tag
            if (e.tag[1:-1] == tag) if with_attributes else (e.name == (tag or want)):
                pieces.append(_Piece(v, e.start, e.end, e.tag))
        if tag is not None:
            continue
        for i, h in enumerate(view.headings):
            if h.title != want:
                continue
            end = view.container_end(h.start)
            after = (x.start for x in view.headings[i + 1 :] if x.level <= h.level)
            pieces.append(_Piece(v, h.start, min(next(after, end), end), h.title))
    pieces.sort(key=lambda p: (p.view, p.start))
    # found one by one: a section inside another (an element in an element) keeps its ranges
    return [r for p in pieces if (r := _to_file(doc, views, [p])[0])]


def messages(doc: PromptDocument) -> list[Part]:
    """Messages: the system/user/assistant turns of a chat prompt; in a prompt without roles
    the turns of a chat transcript written as lines that start with `System:`, `User:` or
    `Assistant:`, any text before the first turn being a part of its own. No turns: no
    parts."""
    views = _views(doc)
    if doc.has_roles:
        pieces = [
            _Piece(v, 0, len(view.text), m.role)
            for v, (m, view) in enumerate(zip(doc.messages, views, strict=True))
        ]
    else:
        pieces = []
        for v, view in enumerate(views):
            turns: dict[int, str] = {}
            for ln in view.lines:
                if m := _TURN.match(view.text, ln.start, ln.end):
                    turns[ln.start] = m.group(1).lower()
            if not turns:
                continue
            for a, b in _partition(view.text, list(turns)):
                role = next(
                    (r for t, r in turns.items() if a <= t < b), "text before the first turn"
                )
                pieces.append(_Piece(v, a, b, role))
    found = _assemble(doc, views, pieces)
    return [Part(f"message {i + 1} ({p.label})", p.ranges) for i, p in enumerate(found)]


# --- few-shot examples ------------------------------------------------------------------------

_Loc = tuple[int, int, int]  # (message, start, end) in the message's text


def _strip_item(text: str, start: int, end: int) -> int:
    """Where a line's text starts once a list item's marker (`1.`, `-`) is skipped."""
    m = _LIST_ITEM.match(text, start, end)
    return m.end() if m else start


def _field(text: str) -> tuple[str, str]:
    """(label, value) of `Label: value` (label lower-case), ("", text) if not labelled."""
    m = _LABEL.match(text)
    if m and len(m.group(1).split()) <= _LABEL_WORDS:
        return m.group(1).strip().lower(), text[m.end() :]
    return "", text


def _pair(line: str) -> tuple[tuple[str, ...], str, bool] | None:
    """A one-line example's (shape, left side, complete): `cat -> mammal`, `cat => mammal`,
    `English: sea otter => French: loutre de mer` (the shape holds the arrow and the labels)
    or `cat: mammal`; incomplete when the right side (its value) is empty (`dog ->`)."""
    m = _ARROW.search(line)
    if m:
        left_label, left = _field(line[: m.start()].strip())
        right_label, right = _field(line[m.end() :].strip())
        if not left.strip():
            return None
        return (m.group(1), left_label, right_label), left.strip().lower(), bool(right.strip())
    m = _COLON_PAIR.fullmatch(line.strip())
    if not m or len(m.group(1).split()) > _COLON_WORDS or m.group(1)[0] in "#<>|*":
        return None
    return (":",), m.group(1).strip().lower(), bool((m.group(2) or "").strip())


def _is_question(view: _View, start: int, end: int) -> bool:
    """Whether an example's last line is a field or pair left empty (`Output:`, `dog ->`):
    the question put to the model, not an example."""
    lines = [ln for ln in view.lines if start <= ln.start < end and not view.blank(ln)]
    if not lines:
        return True
    ln = lines[-1]
    line = view.text[_strip_item(view.text, ln.start, ln.end) : ln.end]
    shape = _pair(line)
    if shape is not None and not shape[2]:
        return True
    label, value = _field(line)
    return bool(label) and not value.strip()


def _xml_examples(views: list[_View]) -> list[list[_Loc]]:
    """`<example>` elements (also inside `<examples>`): each element one example."""
    return [
        [(v, e.start, e.end)]
        for v, view in enumerate(views)
        for e in view.elements
        if _EXAMPLE_TAG.fullmatch(e.name)
    ]


def _example_title(view: _View, ln: _Line) -> int | None:
    """The level of an example heading line (`### Example 2`: 3; `Example 1:` or
    `**Example 1**` on a line of its own: 7), None if it is not one."""
    if ln.fenced:
        return None
    h = _HEADING.fullmatch(view.text, ln.start, ln.end)
    title = (h.group(2) or "") if h else view.text[ln.start : ln.end]
    title = title.strip().strip("*_").strip()
    if not _EXAMPLE_TITLE.fullmatch(title):
        return None
    return len(h.group(1)) if h else 7


def _block_ends(view: _View, start: int, end: int) -> list[int]:
    """Where each run of non-blank lines in text[start:end] ends (its last line break
    included)."""
    ends: list[int] = []
    open_ = False
    for ln in view.lines:
        if ln.start < start or ln.start >= end:
            continue
        if view.blank(ln):
            open_ = False
        elif open_:
            ends[-1] = min(ln.nxt, end)
        else:
            ends.append(min(ln.nxt, end))
            open_ = True
    return ends


def _headed_examples(views: list[_View]) -> list[list[_Loc]]:
    """Examples under example headings (`### Example 2`, `Example 1:`, `**Example 3**`):
    each from its heading to the next one, a heading of the same or a higher level or the
    end of the element holding it. The last one takes as many blank-line-separated blocks
    as the first (a lone example: one block; under a Markdown heading, up to the next
    heading). A last example left without its answer is the question."""
    found: list[list[_Loc]] = []
    for v, view in enumerate(views):
        heads = [(ln, lv) for ln in view.lines if (lv := _example_title(view, ln)) is not None]
        ranges: list[tuple[_Line, int, list[int]]] = []
        for i, (ln, level) in enumerate(heads):
            end = view.container_end(ln.start)
            bounds = [h.start for h in view.headings if h.start > ln.start and h.level <= level]
            bounds += [h.start for h, _ in heads[i + 1 :]]
            end = min([end, *bounds])
            blocks = _block_ends(view, ln.start, end)
            if blocks and blocks[0] == ln.nxt and len(blocks) > 1:
                blocks = blocks[1:]  # a heading line of its own is not a block of the example
            ranges.append((ln, end, blocks))
        if len(ranges) > 1 or (ranges and heads[0][1] == 7):
            want = len(ranges[0][2]) if len(ranges) > 1 else 1
            ln, end, blocks = ranges[-1]
            if len(blocks) > want:
                ranges[-1] = (ln, blocks[want - 1], blocks)
        run = [[(v, ln.start, end)] for ln, end, _ in ranges]
        if run and _is_question(view, run[-1][0][1], run[-1][0][2]):
            run.pop()
        found += run
    return found


@dataclass
class _Label:
    """A line that starts with a few-shot field label."""

    name: str  # lower-case, digits dropped: "Example 2" and "Example 3" are the same field
    view: int
    line: _Line
    start: int  # where the label starts (after a list item's marker)


def _labels(views: list[_View]) -> list[_Label]:
    found = []
    for v, view in enumerate(views):
        for ln in view.lines:
            at = _strip_item(view.text, ln.start, ln.end)
            m = _LABEL.match(view.text, at, ln.end)
            if m and len(m.group(1).split()) <= _LABEL_WORDS:
                name = " ".join(re.sub(r"\d+", " ", m.group(1)).lower().split())
                found.append(_Label(name, v, ln, at))
    return found


def _cycle(names: list[str]) -> tuple[int, int, int]:
    """The few-shot pattern in a sequence of labels: (first, length, repeats) of the cycle of
    two or more distinct labels repeated back to back most often (ties: the shorter cycle,
    then the earlier one). A last, incomplete repeat (the question left for the model)
    counts towards "repeated" but not as a repeat. (0, 0, 0): no repeated pattern."""
    best = (0, 0, 0)
    best_key = (0, 0, 0)
    for length in range(2, len(names) // 2 + 2):
        for first in range(len(names) - length + 1):
            cycle = names[first : first + length]
            if len(set(cycle)) < length:
                continue
            k = 1
            while names[first + k * length : first + (k + 1) * length] == cycle:
                k += 1
            tail = names[first + k * length : first + (k + 1) * length]
            partial = bool(tail) and cycle[: len(tail)] == tail
            if k + partial < 2:
                continue
            key = (k, -length, -first)
            if key > best_key:
                best, best_key = (first, length, k), key
    return best


def _labelled_examples(views: list[_View]) -> list[list[_Loc]]:
    """Examples found from the prompt's repeated pattern of field labels (`Input:`/`Output:`,
    `Q:`/`A:`, `Text:`/`Label:` ...), across messages too (a user turn `Q:` and an assistant
    turn `A:`): each repeat of the pattern is one example, from its first label line to the
    next example (the last one, or a message's last piece: to the next label line, blank
    line, heading or element tag). A final repeat whose answer is empty is the question."""
    labels = _labels(views)
    first, length, repeats = _cycle([lb.name for lb in labels])
    found: list[list[_Loc]] = []
    for k in range(repeats):
        group = labels[first + k * length : first + (k + 1) * length]
        following = first + (k + 1) * length
        nxt = labels[following] if following < len(labels) else None
        locs: list[_Loc] = []
        for v, same in itertools.groupby(group, key=lambda lb: lb.view):
            view, last = views[v], list(same)[-1]
            start = next(lb.line.start for lb in group if lb.view == v)
            limit = len(view.text)
            if nxt is not None and nxt.view == v:
                limit = nxt.line.start
            if k < repeats - 1 and limit < len(view.text):
                end = view.until_stop(last.line.nxt, limit, blank=False)
            else:
                later = [
                    lb.line.start
                    for lb in labels
                    if lb.view == v and lb.line.start > last.line.start
                ]
                end = view.until_stop(last.line.nxt, min([limit, *later]))
            locs.append((v, start, end))
        v, _, end = locs[-1]
        answer = views[v].text[group[-1].start : end]
        if k == repeats - 1 and not answer.split(":", 1)[1].strip():
            break  # the question left for the model
        found.append(locs)
    return found


def _pair_examples(views: list[_View]) -> list[list[_Loc]]:
    """One-line examples: a run of two or more consecutive lines of the same shape
    (`cat -> mammal`, `cat => mammal`, `English: cat => French: chat`, `cat: mammal`; list
    markers allowed), each line one example; a last line whose right side is empty
    (`dog ->`) is the question. `cat: mammal` lines read like `Name: value` fields too: a run
    of them needs two examples with different left sides and the question line, followed by
    a blank line or the end of the text."""
    found: list[list[_Loc]] = []
    for v, view in enumerate(views):
        runs: list[list[tuple[_Line, tuple[tuple[str, ...], str, bool]]]] = []
        for ln in view.lines:
            at = _strip_item(view.text, ln.start, ln.end)
            pair = None if ln.fenced else _pair(view.text[at : ln.end])
            if pair is None:
                runs.append([])
                continue
            if runs and runs[-1] and runs[-1][-1][1][0] == pair[0] and runs[-1][-1][1][2]:
                runs[-1].append((ln, pair))
            else:
                runs.append([(ln, pair)])
        for run in runs:
            done = [ln for ln, pair in run if pair[2]]
            question = run[-1] if run and not run[-1][1][2] else None
            if not done or len(run) < 2:
                continue
            if run[0][1][0] == (":",):
                lefts = [pair[1] for _, pair in run]
                after = view.lines[view.line_at(run[-1][0].start) + 1 :]
                if (
                    len(done) < 2
                    or question is None
                    or len(set(lefts)) < len(lefts)
                    or (
                        after and not view.blank(after[0]) and after[0].start not in view.hard_stops
                    )
                ):
                    continue
            found += [[(v, ln.start, ln.nxt)] for ln in done]
    return found


def _item_examples(views: list[_View]) -> list[list[_Loc]]:
    """The items of a list of examples: under a `## Examples` heading, in an `<examples>`
    element or after a line such as `Here are some examples:`, each list item (`1.`, `-`) is
    one example; under a heading or in an element without list items, each blank-line-
    separated block is."""
    found: list[list[_Loc]] = []
    for v, view in enumerate(views):
        boxes: list[tuple[int, int, bool]] = []  # (start, end, blocks allowed)
        for e in view.elements:
            if _EXAMPLES_TAG.fullmatch(e.name):
                boxes.append((e.inner[0], e.inner[1], True))
        for i, h in enumerate(view.headings):
            if _EXAMPLES_TITLE.fullmatch(h.title.strip("*_ ")):
                end = view.container_end(h.start)
                after = (x.start for x in view.headings[i + 1 :] if x.level <= h.level)
                boxes.append((h.end, min(next(after, end), end), True))
        for k, ln in enumerate(view.lines):
            line = view.text[ln.start : ln.end].strip()
            if (
                line.endswith(":")
                and re.search(r"\bexamples\b", line, re.IGNORECASE)
                and len(line.split()) <= _INTRO_WORDS
                and ln.start not in view.hard_stops
                and not _LIST_ITEM.match(view.text, ln.start, ln.end)
            ):
                end = ln.nxt
                for prev, cur in itertools.pairwise(view.lines[k:]):
                    if cur.start in view.hard_stops:
                        break
                    if not view.blank(cur):
                        if view.blank(prev) and not _LIST_ITEM.match(view.text, cur.start, cur.end):
                            break
                        end = cur.nxt
                boxes.append((ln.nxt, end, False))
        for start, end, blocks_ok in boxes:
            inside = [ln for ln in view.lines if start <= ln.start < end and not view.blank(ln)]
            if not inside:
                continue
            items = [ln for ln in inside if _LIST_ITEM.match(view.text, ln.start, ln.end)]
            indent = min((view.indent(ln) for ln in items), default=0)
            items = [ln for ln in items if view.indent(ln) == indent]
            if items:
                starts = [ln.start for ln in items]
                last = view.until_stop(items[-1].nxt, end)
                spans = [*itertools.pairwise(starts), (starts[-1], last)]
            elif blocks_ok:
                ends = _block_ends(view, start, end)
                begins = [
                    ln.start
                    for ln in inside
                    if ln is inside[0] or view.blank(view.lines[view.line_at(ln.start) - 1])
                ]
                spans = list(zip(begins, ends, strict=False))
            else:
                continue
            run = [[(v, a, b)] for a, b in spans if view.text[a:b].strip()]
            if run and _is_question(view, run[-1][0][1], run[-1][0][2]):
                run.pop()
            found += run
    return found


def _overlap(a: list[_Loc], b: list[_Loc]) -> bool:
    return any(x[0] == y[0] and x[1] < y[2] and y[1] < x[2] for x in a for y in b)


# the forms of few-shot examples, the most explicit first: where two forms find examples in
# the same text, the first one's count
_EXAMPLE_FORMS: tuple[Callable[[list[_View]], list[list[_Loc]]], ...] = (
    _xml_examples,
    _headed_examples,
    _labelled_examples,
    _pair_examples,
    _item_examples,
)


def examples(doc: PromptDocument) -> list[Part]:
    """Few-shot examples, in the forms people write them: `<example>` elements, example
    headings (`### Example 2`, `Example 1:`), repeated blocks of labelled lines (`Input:`/
    `Output:`, `Q:`/`A:`), one-line pairs (`cat -> mammal`, `cat => mammal`, `cat: mammal`,
    `English: sea otter => French: loutre de mer`) and the items of a list of examples (under
    `## Examples`, in `<examples>`, after `Here are some examples:`); see each form's
    function. Where forms overlap, the more explicit one wins (in that order). A last example
    left without its answer (`Output:`, `dog ->`) is the question put to the model, not an
    example. The text outside the examples stays parts of its own ("text"), one per stretch
    of a message. No complete example: no parts."""
    views = _views(doc)
    chosen: list[list[_Loc]] = []
    for form in _EXAMPLE_FORMS:
        for found in form(views):
            if not any(_overlap(found, other) for other in chosen):
                chosen.append(found)
    if not chosen:
        return []
    chosen.sort()
    pieces = [
        _Piece(v, a, b, "example", ("example", n))
        for n, locs in enumerate(chosen)
        for v, a, b in locs
    ]
    cuts = [(p.view, p.start) for p in _section_pieces(views)]
    pieces = _with_rest(views, pieces, "text", cuts, absorb=True)
    found_parts = _assemble(doc, views, pieces)
    n = itertools.count(1)
    return [
        Part(f"example {next(n)}", p.ranges) if p.label == "example" else p for p in found_parts
    ]


def _with_rest(
    views: list[_View],
    pieces: list[_Piece],
    label: str,
    cuts: Iterable[tuple[int, int]] = (),
    absorb: bool = False,
) -> list[_Piece]:
    """`pieces` plus one piece per stretch of message text none of them covers (`label`),
    stretches cut at `cuts` (message, offset), in reading order. White space alone is no
    part, or (`absorb`) joins the piece just before it."""
    marks = [*pieces, *(_Piece(v, c, c, None) for v, c in cuts)]
    marks += [_Piece(v, len(view.text), len(view.text), None) for v, view in enumerate(views)]
    out, pos, view = list(pieces), 0, -1
    before: _Piece | None = None  # the piece that ends at `pos`
    for p in sorted(marks, key=lambda p: (p.view, p.start)):
        if p.view != view:
            pos, view, before = 0, p.view, None
        if p.start > pos:
            text = views[view].text[pos : p.start]
            space = len(text) - len(text.lstrip())
            if absorb and space and before is not None and before.end == pos:
                before = _Piece(view, pos, pos + space, before.label, before.key)
                out.append(before)
                pos += space
            if pos < p.start:
                before = _Piece(view, pos, p.start, label if text.strip() else None)
                out.append(before)
        if p.end >= pos and p.end > p.start:
            before = p
        pos = max(pos, p.end)
    return sorted(out, key=lambda p: (p.view, p.start))


# --- variables --------------------------------------------------------------------------------


def variable_uses(doc: PromptDocument) -> dict[str, list[Range]]:
    """Each template variable the prompt fills in (a segment's `placeholder`), with the file
    ranges of its uses, in reading order of first use."""
    uses: dict[str, list[Range]] = {}
    for message in doc.messages:
        for seg in message.segments:
            if seg.placeholder is not None:
                uses.setdefault(seg.placeholder, []).append((seg.start, seg.end))
    return {name: sorted(set(ranges)) for name, ranges in uses.items()}


def variables(doc: PromptDocument) -> list[Part]:
    """Template variables: each variable filled in (from a sample value) is one part, all its
    uses together (so its score is the effect of the variable's value wherever it is used).
    The rest of the prompt is left as its own parts, one per stretch of literal text between
    variables (within a message): a single "rest" part would span the whole prompt around the
    variables, and the stretches also say which piece of the template the answer leans on.
    No filled variables: no parts."""
    views, pieces = _views(doc), []
    for v, message in enumerate(doc.messages):
        pos = 0
        for seg in message.segments:
            if seg.placeholder is not None:
                name = seg.placeholder
                pieces.append(
                    _Piece(v, pos, pos + len(seg.text), f"variable {name}", ("var", name))
                )
            pos += len(seg.text)
    if not pieces:
        return []
    return _assemble(doc, views, _with_rest(views, pieces, "template text"))


_MISSING = {
    "sentence": "it has no sentences",
    "section": "it has no sections",
    "message": "it has no system/user/assistant turns (a Prompty role line such as `user:`, "
    "or lines starting `User:`/`Assistant:`)",
    "example": "it has no few-shot examples (with at least one complete example, in one of "
    "these forms: repeated labelled lines such as `Input:`/`Output:` or `Q:`/`A:`; one-line "
    "pairs on consecutive lines such as `cat -> mammal`, `cat => mammal`, "
    "`English: cat => French: chat`, or `cat: mammal` followed by a question line `dog:`; "
    "headings such as `Example 1:` or `### Example 2`; `<example>` elements; or the items "
    "of a list under `## Examples`, in `<examples>` or after `Here are some examples:`)",
    "variable": "it has no `{{name}}` variables filled in by its template format (such as a "
    ".prompty file's sample values)",
}
_DETECT: dict[str, Callable[[PromptDocument], list[Part]]] = {
    "sentence": sentences,
    "section": sections,
    "message": messages,
    "example": examples,
    "variable": variables,
}


def available(doc: PromptDocument) -> list[str]:
    """The structure kinds this document has parts of."""
    return [kind for kind in STRUCTURE_KINDS if _DETECT[kind](doc)]


def parts(doc: PromptDocument, kind: str) -> list[Part]:
    """The document's parts of one structure kind, in reading order; a kind the document
    does not have is an `InvalidRequestError` that names the kinds it does have."""
    if kind not in _DETECT:
        raise InvalidRequestError(
            f"unknown structure kind {kind!r}; use one of {', '.join(STRUCTURE_KINDS)}"
        )
    found = _DETECT[kind](doc)
    if not found:
        have = ", ".join(["token", "word", "line", *available(doc), "auto"])
        raise InvalidRequestError(
            f"granularity {kind!r} does not apply to this prompt: {_MISSING[kind]}; "
            f"its granularities are {have}"
        )
    return found
