"""The parts of a prompt that checks name (`{line: N}`, `{section: TITLE}`, `{variable: NAME}`,
`{text: TEXT}` or a string), resolved to ranges of file offsets in the prompt body.

Sections and variables are the prompt structure's own (`prompt.structure`): a section is a
Markdown heading's or an XML-style element's, a variable is one the file's template format
fills in, found in what the model reads whatever the format."""

from __future__ import annotations

from typing import Any

from promptxray.explainers.checks.spec import PART_KEYS, Part, snippet
from promptxray.explainers.nl.figures import short
from promptxray.explainers.prompt.document import PromptDocument
from promptxray.explainers.prompt.structure import find_sections, variable_uses

USAGE = "a part is {line: N}, {section: TITLE}, {variable: NAME}, {text: TEXT} or a string"


class InvalidPart(ValueError):
    """A part that is malformed or not in the prompt; the message says which and why."""


def name_part(doc: PromptDocument, value: Any) -> Part:
    """The part a check names by `value` (its YAML value): a string (`"{{NAME}}"` a variable,
    `"# TITLE"` a section, else a text) or a mapping with one of PART_KEYS."""
    if isinstance(value, str):
        stripped = value.strip()
        inner = stripped[2:-2]
        if stripped.startswith("{{") and stripped.endswith("}}") and not set("{}") & set(inner):
            return resolve_part(doc, "variable", inner)
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
        title = str(arg).strip()
        if not title.startswith("<"):
            title = title.lstrip("#").strip()
        label = f"section {title!r}"
        sections = find_sections(doc, title)
        if len(sections) > 1:
            lines = ", ".join(str(source.count("\n", 0, r[0][0]) + 1) for r in sections)
            raise InvalidPart(
                f"section {title!r} names {len(sections)} sections of the prompt (lines {lines}); "
                "name the part by {line: N} or {text: ...} instead"
            )
        if not sections and title.startswith("<"):
            raise InvalidPart(f"no XML element {title} in the prompt")
        if not sections:
            raise InvalidPart(
                f"no Markdown heading {title!r} and no XML element <{title}> in the prompt"
            )
        ranges = [r for section in sections for r in section]
    elif how == "variable":
        name = str(arg).strip().strip("{}").strip()
        label = f"{{{{{name}}}}}"
        uses = variable_uses(doc)
        if name not in uses:
            if uses:
                known = ", ".join(f"{{{{{n}}}}}" for n in uses)
                why = f"its variables are {known}"
            else:
                why = "it has no variables its format fills in"
            if label in source[body:]:
                why += f"; the model reads {label} as written"
            raise InvalidPart(f"no {label} in the prompt ({why})")
        ranges = uses[name]
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
