"""Prompt files -> the messages a model sees, with every visible char mapped to its file span.

Offsets are Python str indices into the file text as decoded (no newline translation), so
editors and the CLI can put scores back exactly where the user wrote the text. No torch here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from promptxray.explainers.errors import (
    BinaryFileError,
    DocumentError,
    EmptyPromptError,
    FrontMatterError,
)

KINDS: tuple[str, ...] = ("text", "markdown", "prompty", "dotprompt", "copilot", "python", "chat")
# a chat transcript (the chat front end's own text): a line that is only a role starts a message
CHAT_ROLE_LINE = re.compile(r"[ \t]*(system|user|assistant)[ \t]*:[ \t]*", re.IGNORECASE)
BOM = "\ufeff"
_TEXT_CONTROLS = {8, 9, 10, 12, 13, 27}


@dataclass
class Segment:
    """Model-visible text and the file span that produced it.

    A literal segment (`placeholder is None` and `exact`) has `text == source[start:end]`, one
    character per character. Any other segment maps every character to the whole span: a
    filled variable or template expression (`placeholder` names it), or text a format rewrites
    (`exact=False`: an escape sequence in code, a line break the engine normalised).
    """

    text: str
    start: int
    end: int
    placeholder: str | None = None
    exact: bool = True


@dataclass
class Message:
    """One chat message: its role and the segments its content is made of."""

    role: str
    segments: list[Segment]

    @property
    def content(self) -> str:
        return "".join(seg.text for seg in self.segments)

    def char_spans(self) -> list[tuple[int, int]]:
        """One source span per char of `content` (the marker's span for placeholder chars)."""
        spans: list[tuple[int, int]] = []
        for seg in self.segments:
            if seg.placeholder is not None or not seg.exact:
                spans.extend([(seg.start, seg.end)] * len(seg.text))
            else:
                spans.extend((seg.start + i, seg.start + i + 1) for i in range(len(seg.text)))
        return spans


@dataclass
class PromptDocument:
    """A parsed prompt file: the source text, its front matter and its messages."""

    source: str
    kind: str
    body_start: int
    front_matter: dict[str, Any]
    messages: list[Message]
    has_roles: bool
    samples: dict[str, Any] = field(default_factory=dict)  # the values variables were given


def _label(path: str | None) -> str:
    """How errors name the input: the path, `<stdin>` for "-", or a generic phrase."""
    return "<stdin>" if path == "-" else path or "the input"


def decode_prompt_bytes(data: bytes, path: str | None = None) -> str:
    """Decode file bytes as strict UTF-8 (BOM and CRLF kept), refusing binary data."""
    label = _label(path)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BinaryFileError(f"{label} is UTF-16 encoded; re-save it as UTF-8")
    sample = data[:8192]
    controls = sum(1 for b in sample if (b < 32 and b not in _TEXT_CONTROLS) or b == 127)
    if b"\x00" in data or (sample and controls / len(sample) > 0.3):
        raise BinaryFileError(f"{label} looks like a binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise BinaryFileError(
            f"{label} is not valid UTF-8: byte 0x{data[e.start]:02x} at byte offset {e.start} "
            f"(line {line}); re-save the file as UTF-8"
        ) from None


def read_prompt_file(path: str) -> str:
    """Read a prompt file ("-" is stdin) as bytes and decode it with `decode_prompt_bytes`."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise DocumentError(f"cannot read {path}: {e.strerror or e}") from None
    return decode_prompt_bytes(data, path)


def _lines(source: str, pos: int) -> Iterator[tuple[int, int, int]]:
    """Yield (line start, content end without CR/LF, next line start) from `pos` on."""
    while pos < len(source):
        nl = source.find("\n", pos)
        if nl < 0:
            yield pos, len(source), len(source)
            return
        yield pos, nl - 1 if nl > pos and source[nl - 1] == "\r" else nl, nl + 1
        pos = nl + 1


def front_matter_bounds(source: str, pos: int) -> tuple[int, int, int] | None:
    """Where the YAML front matter opening at `pos` is: (its text's start, the closing line's
    start, the body's start); None when there is none. A `---` never closed is an error."""
    lines = _lines(source, pos)
    first = next(lines, None)
    if first is None or source[first[0] : first[1]] != "---":
        return None
    close = next((ln for ln in lines if source[ln[0] : ln[1]] in ("---", "...")), None)
    if close is None:
        return first[2], -1, -1
    return first[2], close[0], close[2]


def _front_matter(source: str, pos: int, label: str) -> tuple[dict[str, Any], int, bool]:
    """Parse YAML front matter opening at `pos`; return (mapping, body start, present)."""
    bounds = front_matter_bounds(source, pos)
    if bounds is None:
        return {}, pos, False
    yaml_start, close_start, body_start = bounds
    if close_start < 0:
        raise FrontMatterError(f"{label}:1: front matter opened with '---' is never closed")
    try:
        data = yaml.safe_load(source[yaml_start:close_start])
    except yaml.YAMLError as e:
        # At end of stream the context mark (what was left open) is the useful place.
        text_len = close_start - yaml_start
        marks = [getattr(e, "problem_mark", None), getattr(e, "context_mark", None)]
        good = [m.index for m in marks if m is not None and m.index < text_len]
        index = yaml_start + (good[0] if good else max(text_len - 1, 0))
        line = source.count("\n", 0, index) + 1
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        msg = f"{label}:{line}: front matter is not valid YAML: {problem}"
        raise FrontMatterError(msg) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise FrontMatterError(f"{label}: front matter must be a YAML mapping, not a {kind}")
    return data, body_start, True


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset of `text`."""
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def where(text: str, label: str, offset: int) -> str:
    """`label:line:col` of a character offset: how errors name their place in a file."""
    line, col = line_col(text, offset)
    return f"{label}:{line}:{col}"


def _segments(source: str, start: int, end: int) -> list[Segment]:
    """The literal segment of source[start:end], surrounding whitespace stripped."""
    return strip_segments([Segment(source[start:end], start, end)]) if end > start else []


def strip_segments(segs: list[Segment]) -> list[Segment]:
    """Strip leading/trailing whitespace of the joined content, keeping the span invariants."""
    segs = [s for s in segs if s.text]
    while segs and not segs[0].text.strip():
        segs.pop(0)
    while segs and not segs[-1].text.strip():
        segs.pop()
    if segs:  # literal: drop a prefix/suffix of the slice; other segments keep their span
        s, text = segs[0], segs[0].text.lstrip()
        whole = s.placeholder is not None or not s.exact
        start = s.start if whole else s.end - len(text)
        segs[0] = Segment(text, start, s.end, s.placeholder, s.exact)
        s, text = segs[-1], segs[-1].text.rstrip()
        whole = s.placeholder is not None or not s.exact
        end = s.end if whole else s.start + len(text)
        segs[-1] = Segment(text, s.start, end, s.placeholder, s.exact)
    return segs


def _split_roles(source: str, body_start: int) -> list[tuple[str, int, int]]:
    """Split a chat transcript at lines that are only `system:`/`user:`/`assistant:`."""
    chunks: list[tuple[str, int, int]] = []
    role, chunk_start = "system", body_start
    for start, end, nxt in _lines(source, body_start):
        m = CHAT_ROLE_LINE.fullmatch(source, start, end)
        if m:
            chunks.append((role, chunk_start, start))
            role, chunk_start = m.group(1).lower(), nxt
    chunks.append((role, chunk_start, len(source)))
    return chunks


def document_kind(path: str | None, source: str = "") -> str:
    """The format a file's name (and, for `.prompt`, its first line) implies: a `.prompt` that
    opens with `---` front matter is Dotprompt, any other `.prompt` plain text."""
    name = (path or "").lower()
    if name.endswith(".prompty"):
        return "prompty"
    if name.endswith(".prompt.md"):
        return "copilot"
    if name.endswith(".prompt"):
        head = source[1:] if source.startswith(BOM) else source
        return "dotprompt" if head.split("\n", 1)[0].rstrip("\r") == "---" else "text"
    if name.endswith(".md"):
        return "markdown"
    if name.endswith(".py"):
        return "python"
    if name.endswith(".chat"):
        return "chat"
    return "text"


def parse_document(
    source: str,
    path: str | None = None,
    kind: str | None = None,
    *,
    samples: Mapping[str, Any] | None = None,
    line: int | None = None,
) -> PromptDocument:
    """Read prompt text into the messages its format's runtime would send, every character
    mapped to the file. Templates are rendered by their own engines in a sandbox; code is
    parsed, never run.

    `samples`: values for template variables, over the file's own and its sidecar's
    (`samples.sidecar_samples`). `line`: which prompt of a code file (1-based; the only one
    when None).
    """
    from promptxray.explainers.prompt import formats

    kind = kind or document_kind(path, source)
    if kind not in KINDS:
        raise DocumentError(f"unknown prompt kind {kind!r}; expected one of {', '.join(KINDS)}")
    label = _label(path)
    if "\x00" in source:  # text that arrived already decoded (an editor buffer) can be binary too
        raise BinaryFileError(f"{label} looks like a binary file (it contains NUL characters)")
    pos = 1 if source.startswith(BOM) else 0
    if kind in formats.RENDERED:
        return formats.RENDERED[kind](source, path, label, dict(samples or {}), line)
    front, pos, fenced = (
        ({}, pos, False) if kind in ("text", "chat") else _front_matter(source, pos, label)
    )
    chunks = _split_roles(source, pos) if kind == "chat" else [("user", pos, len(source))]
    messages = [Message(role, _segments(source, a, b)) for role, a, b in chunks]
    messages = [m for m in messages if m.segments]
    if not messages:
        where = " after its front matter" if fenced else ""
        raise EmptyPromptError(f"{label} has no prompt text{where}")
    return PromptDocument(source, kind, pos, front, messages, has_roles=len(chunks) > 1)


def request_document(request: Any) -> PromptDocument:
    """The document an `ExplainRequest` is about: its text read as its path's format, with the
    request's samples and, for a code file, the prompt at its `prompt_line`."""
    return parse_document(
        request.text, request.path, samples=request.samples, line=request.prompt_line
    )
