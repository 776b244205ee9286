"""Structure-level parts of a prompt: sentences, sections, messages, few-shot examples and
template variables, as character ranges of the file.

Attribution at these levels answers the questions prompt authors ask ("does the system message
matter?", "which example does the answer copy?", "is the answer driven by the {{question}} or
by my template?") with a handful of scores instead of hundreds. Every part is a list of
`(start, end)` ranges of the file text (Python str offsets, like every span in promptxray);
`units.group_units` turns parts into units by giving each model token to the part that holds
its first non-space character, so the methods, which only see token-index units, need nothing
new and every span still points into the file.

Parts only cover the text the model sees (the messages of `documents.parse_document`): front
matter and Prompty role lines are never part of any part. No torch here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from promptxray.explainers.documents import PromptDocument
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.types import STRUCTURE_GRANULARITIES

Range = tuple[int, int]
STRUCTURE_KINDS = STRUCTURE_GRANULARITIES  # sentence, section, message, example, variable

# a sentence ends after . ! ? or … (and any closing quotes or brackets) before white space
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")
_FENCE = re.compile(r" {0,3}(```|~~~)")
# a chat turn written in plain text: a line that starts with a role and a colon
_TURN = re.compile(r"[ \t]*(system|user|assistant)[ \t]*:", re.IGNORECASE)
# a few-shot field label: `Input:`, `Q:`, `English text:`, `Example 3:` at the start of a line
_LABEL = re.compile(r"[ \t]*([^\W\d_][\w '-]{0,30}?)[ \t]*:(?=\s|$)")
_LABEL_WORDS = 3  # longer "labels" are sentences that end in a colon ("Classify these:")


@dataclass
class Part:
    """One structure-level part: a readable label and the file ranges it covers (several for
    a variable filled in more than once)."""

    label: str
    ranges: list[Range] = field(default_factory=list)

    def text(self, source: str) -> str:
        """The part's text, its ranges joined by " … " (for messages and tests)."""
        return " … ".join(source[s:e].strip() for s, e in self.ranges)


def _regions(doc: PromptDocument) -> list[Range]:
    """The file range of each message's content (what the model sees, role lines excluded)."""
    return [(m.segments[0].start, m.segments[-1].end) for m in doc.messages]


def _lines(source: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each line of source[start:end], its line break included."""
    pos = start
    while pos < end:
        nl = source.find("\n", pos, end)
        nxt = end if nl < 0 else nl + 1
        yield pos, nxt
        pos = nxt


def _pieces(source: str, region: Range, cuts: list[int], label: str) -> list[Part]:
    """Split a region at `cuts` into numbered parts; a piece of white space alone joins the
    part before it (or, at the start, the part after it) so no token is left without a part."""
    start, end = region
    bounds = sorted({start, end, *(c for c in cuts if start < c < end)})
    ranges: list[Range] = []
    for a, b in itertools.pairwise(bounds):
        if source[a:b].strip() or not ranges:
            ranges.append((a, b))
        else:
            ranges[-1] = (ranges[-1][0], b)
    if len(ranges) > 1 and not source[ranges[0][0] : ranges[0][1]].strip():
        ranges[1] = (ranges[0][0], ranges[1][1])
        ranges.pop(0)
    return [Part(f"{label} {i + 1}", [r]) for i, r in enumerate(ranges)]


def _number(parts: list[Part], label: str) -> list[Part]:
    """Renumber `label n` parts across the whole prompt (they were numbered per region)."""
    return [Part(f"{label} {i + 1}", p.ranges) for i, p in enumerate(parts)]


def sentences(doc: PromptDocument) -> list[Part]:
    """Sentences: a sentence ends after `.`, `!`, `?` or `…` followed by white space, and at
    every line break (prompts are rarely hard-wrapped prose, and a line without final
    punctuation, such as a heading, a list item or `Q: ...`, reads as a sentence of its own)."""
    src, parts = doc.source, []
    for region in _regions(doc):
        cuts = [m.end() for m in _SENTENCE_END.finditer(src, *region)]
        cuts += [e for _, e in _lines(src, *region)]
        parts += _pieces(src, region, cuts, "sentence")
    return _number(parts, "sentence")


def _headings(source: str, region: Range) -> list[int]:
    """Starts of the Markdown ATX heading lines (`#` to `######`) outside fenced code."""
    found, fenced = [], False
    for a, b in _lines(source, *region):
        line = source[a:b]
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and _HEADING.match(line):
            found.append(a)
    return found


def _blocks(source: str, region: Range) -> list[int]:
    """Starts of the blocks of lines that follow one or more blank lines."""
    cuts, blank = [], False
    for a, b in _lines(source, *region):
        if not source[a:b].strip():
            blank = True
        elif blank:
            cuts.append(a)
            blank = False
    return cuts


def sections(doc: PromptDocument) -> list[Part]:
    """Sections: in Markdown, each heading with the text under it (and the text before the
    first heading, if any); elsewhere (or in Markdown without headings) blank-line-separated
    blocks. Sections never cross a message boundary."""
    src, parts = doc.source, []
    markdown = doc.kind == "markdown" and any(_headings(src, r) for r in _regions(doc))
    for region in _regions(doc):
        cuts = _headings(src, region) if markdown else _blocks(src, region)
        parts += _pieces(src, region, cuts, "section")
    return _number(parts, "section")


def messages(doc: PromptDocument) -> list[Part]:
    """Messages: the system/user/assistant turns of a Prompty file; in other files (or a
    Prompty file without role lines) the turns of a chat transcript written as lines that
    start with `System:`, `User:` or `Assistant:`, any text before the first turn being a
    part of its own. No turns: no parts."""
    if doc.has_roles:
        return [
            Part(f"message {i + 1} ({m.role})", [r])
            for i, (m, r) in enumerate(zip(doc.messages, _regions(doc), strict=True))
        ]
    src, parts = doc.source, []
    for region in _regions(doc):
        turns: dict[int, str] = {}
        for a, b in _lines(src, *region):
            if m := _TURN.match(src, a, b):
                turns[a] = m.group(1).lower()
        if not turns:
            continue
        for piece in _pieces(src, region, list(turns), "message"):
            (s, e), before = piece.ranges[0], "text before the first turn"
            parts.append(Part(next((r for a, r in turns.items() if s <= a < e), before), [(s, e)]))
    return [Part(f"message {i + 1} ({p.label})", p.ranges) for i, p in enumerate(parts)]


@dataclass
class _Label:
    """A line that starts with a few-shot field label."""

    name: str  # lower-case, digits dropped: "Example 2" and "Example 3" are the same field
    line: Range
    region: Range


def _labels(doc: PromptDocument) -> list[_Label]:
    found = []
    for region in _regions(doc):
        for a, b in _lines(doc.source, *region):
            m = _LABEL.match(doc.source, a, b)
            if m and len(m.group(1).split()) <= _LABEL_WORDS:
                name = " ".join(re.sub(r"\d+", " ", m.group(1)).lower().split())
                found.append(_Label(name, (a, b), region))
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


def _until_blank(source: str, start: int, end: int) -> int:
    """Where the first blank line at or after `start` begins (`end` if none)."""
    for a, b in _lines(source, start, end):
        if not source[a:b].strip():
            return a
    return end


def examples(doc: PromptDocument) -> list[Part]:
    """Few-shot examples, found from the prompt's repeated pattern of field labels (`Input:`/
    `Output:`, `Q:`/`A:`, `Example n:`/`Text:`/`Label:` ...): each repeat of the pattern is
    one example, from its first label line up to the next example (the last one: up to the
    next label line or blank line). A final repeat whose answer is left empty is the question
    put to the model, not an example. The text outside the examples (the instruction before
    them, the question after them) stays parts of its own, one per stretch of a message.
    No pattern repeated at least twice, or no complete example: no parts."""
    src, labels = doc.source, _labels(doc)
    first, length, repeats = _cycle([lb.name for lb in labels])
    if not repeats:
        return []
    ranges: list[Range] = []
    for k in range(repeats):
        start = labels[first + k * length].line[0]
        last = labels[first + (k + 1) * length - 1]
        following = first + (k + 1) * length
        if k < repeats - 1:
            end = labels[following].line[0]
        else:
            end = labels[following].line[0] if following < len(labels) else last.region[1]
            end = min(end, _until_blank(src, last.line[1], last.region[1]))
        answer = src[last.line[0] : end]
        if k == repeats - 1 and not answer.split(":", 1)[1].strip():
            break  # the question left for the model
        ranges.append((start, end))
    if not ranges:
        return []
    parts = [Part(f"example {i + 1}", [r]) for i, r in enumerate(ranges)]
    return _with_rest(doc, parts, "text")


def _with_rest(doc: PromptDocument, parts: list[Part], label: str) -> list[Part]:
    """`parts` plus one part per stretch of message text none of them covers, in file order."""
    taken = sorted(r for p in parts for r in p.ranges)
    rest = []
    for start, end in _regions(doc):
        pos = start
        for a, b in [*(r for r in taken if r[0] < end and r[1] > start), (end, end)]:
            a = max(a, start)
            if doc.source[pos:a].strip():
                rest.append(Part(label, [(pos, a)]))
            pos = max(pos, min(b, end))
    return sorted([*parts, *rest], key=lambda p: p.ranges[0])


def variables(doc: PromptDocument) -> list[Part]:
    """Template variables: each `{{name}}` filled in from the front matter's sample is one
    part, all its occurrences together (so its score is the effect of the variable's value
    wherever it is used). The rest of the prompt is left as its own parts, one per stretch of
    literal text between variables (within a message): a single "rest" part would span the
    whole prompt around the variables, and the stretches also say which piece of the
    template the answer leans on. No filled variables: no parts."""
    named: dict[str, Part] = {}
    for message in doc.messages:
        for seg in message.segments:
            if seg.placeholder is not None:
                named.setdefault(seg.placeholder, Part(f"variable {seg.placeholder}"))
                named[seg.placeholder].ranges.append((seg.start, seg.end))
    if not named:
        return []
    return _with_rest(doc, list(named.values()), "template text")


_MISSING = {
    "sentence": "it has no sentences",
    "section": "it has no sections",
    "message": "it has no system/user/assistant turns (a Prompty role line such as `user:`, "
    "or lines starting `User:`/`Assistant:`)",
    "example": "it has no few-shot examples (a repeated pattern of labelled lines such as "
    "`Input:`/`Output:` or `Q:`/`A:`, with at least one complete example)",
    "variable": "it has no `{{name}}` variables filled from front-matter samples "
    "(only .prompty files fill them)",
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
    """The document's parts of one structure kind, in file order; a kind the document does
    not have is an `InvalidRequestError` that names the kinds it does have."""
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
