"""The parts of a prompt that checks name (`{line: N}`, `{section: TITLE}`, `{variable: NAME}`,
`{text: TEXT}` or a string), resolved to ranges of file offsets in the prompt body."""

from __future__ import annotations

import re
from typing import Any

from promptxray.explainers.checks.spec import PART_KEYS, Part, snippet
from promptxray.explainers.documents import PromptDocument
from promptxray.explainers.nl.figures import short

_PLACEHOLDER_RE = re.compile(r"\{\{\s*([^\W\d]\w*)\s*\}\}")
_HEADING_RE = re.compile(r"[ ]{0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
USAGE = "a part is {line: N}, {section: TITLE}, {variable: NAME}, {text: TEXT} or a string"


class InvalidPart(ValueError):
    """A part that is malformed or not in the prompt; the message says which and why."""


def name_part(doc: PromptDocument, value: Any) -> Part:
    """The part a check names by `value` (its YAML value): a string (`"{{NAME}}"` a variable,
    `"# TITLE"` a section, else a text) or a mapping with one of PART_KEYS."""
    if isinstance(value, str):
        stripped = value.strip()
        m = _PLACEHOLDER_RE.fullmatch(stripped)
        if m:
            return resolve_part(doc, "variable", m.group(1))
        if stripped.startswith("#"):
            return resolve_part(doc, "section", stripped)
        return resolve_part(doc, "text", value)
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name in PART_KEYS:
            return resolve_part(doc, str(name), arg)
    hint = " (a line is `{line: N}`)" if isinstance(value, int) else ""
    raise InvalidPart(f"{USAGE}; got {snippet(value)}{hint}")


def resolve_part(doc: PromptDocument, how: str, arg: Any) -> Part:
    """The part named `how` (one of PART_KEYS) `arg`, with the file ranges it covers; it must
    hold some text the model reads."""
    source, body = doc.source, doc.body_start
    ranges: list[tuple[int, int]] = []
    if how == "line":
        if isinstance(arg, bool) or not isinstance(arg, int):
            raise InvalidPart(f"line must be a line number, not {snippet(arg)}")
        label = f"line {arg}"
        found = line_range(source, arg)
        if found is None:
            lines = source.count("\n") + 1
            raise InvalidPart(f"line {arg} is not in the file (it has {lines} lines)")
        if found[1] <= body:
            raise InvalidPart(f"line {arg} is in the front matter, not in the prompt")
        ranges = [found]
    elif how == "section":
        title = str(arg).strip().lstrip("#").strip()
        label = f"section {title!r}"
        sections = _sections(source, body, title)
        if len(sections) > 1:
            lines = ", ".join(str(source.count("\n", 0, s) + 1) for s, _ in sections)
            raise InvalidPart(
                f"section {title!r} has {len(sections)} headings (lines {lines}); "
                "name the part by {line: N} or {text: ...} instead"
            )
        if not sections:
            raise InvalidPart(f"no Markdown heading {title!r} in the prompt")
        ranges = sections
    elif how == "variable":
        name = str(arg).strip().strip("{}").strip()
        label = f"{{{{{name}}}}}"
        ranges = [
            (m.start(), m.end())
            for m in _PLACEHOLDER_RE.finditer(source, body)
            if m.group(1) == name
        ]
        if not ranges:
            raise InvalidPart(f"no {label} in the prompt")
    else:
        text = str(arg)
        label = f"text {short(text)!r}"
        if not text.strip():
            raise InvalidPart("a text part must not be empty")
        ranges = _occurrences(source, body, text)
        if not ranges:
            raise InvalidPart(f"the text {short(text)!r} is not in the prompt")
    if not _reads(doc, ranges):
        raise InvalidPart(f"{label} holds no text the model reads (blank or a role marker)")
    return Part(label, tuple(ranges))


def line_range(source: str, line: int) -> tuple[int, int] | None:
    """File offsets of line `line` (1-based), without its line break."""
    if line < 1:
        return None
    start = 0
    for _ in range(line - 1):
        nl = source.find("\n", start)
        if nl < 0:
            return None
        start = nl + 1
    end = source.find("\n", start)
    end = len(source) if end < 0 else end
    if end > start and source[end - 1] == "\r":
        end -= 1
    return start, end


def _body_lines(source: str, body: int) -> list[tuple[int, int, int]]:
    """(start, end without the line break, next start) of each line from `body` on."""
    lines = []
    pos = body
    while pos < len(source):
        nl = source.find("\n", pos)
        nxt = len(source) if nl < 0 else nl + 1
        end = len(source) if nl < 0 else nl
        if end > pos and source[end - 1] == "\r":
            end -= 1
        lines.append((pos, end, nxt))
        pos = nxt
    return lines


def _sections(source: str, body: int, title: str) -> list[tuple[int, int]]:
    """The ranges of the sections headed `title` (heading line to the next heading of the same
    or a higher level); fenced code blocks are skipped."""
    headings: list[tuple[int, int, str]] = []  # (start, level, title)
    fence = False
    for start, end, _ in _body_lines(source, body):
        line = source[start:end]
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        m = None if fence else _HEADING_RE.fullmatch(line)
        if m:
            headings.append((start, len(m.group(1)), (m.group(2) or "").strip()))
    found = []
    for i, (start, level, name) in enumerate(headings):
        if name != title:
            continue
        end = next((s for s, lv, _ in headings[i + 1 :] if lv <= level), len(source))
        found.append((start, end))
    return found


def _occurrences(source: str, body: int, text: str) -> list[tuple[int, int]]:
    found = []
    pos = source.find(text, body)
    while pos >= 0:
        found.append((pos, pos + len(text)))
        pos = source.find(text, pos + len(text))
    return found


def _reads(doc: PromptDocument, ranges: list[tuple[int, int]]) -> bool:
    """Whether any of `ranges` overlaps text the model reads (a segment of a message)."""
    return any(
        doc.source[max(start, seg.start) : min(end, seg.end)].strip()
        for m in doc.messages
        for seg in m.segments
        for start, end in ranges
    )
