"""Template formats read by their own engines: each returns the `PromptDocument` whose messages
are what the format's runtime sends, mapped back to the file. `document.parse_document` picks
the format; plain text and Markdown stay there."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptxray.explainers.errors import DocumentError, EmptyPromptError
from promptxray.explainers.prompt import samples as sample_values
from promptxray.explainers.prompt.document import (
    BOM,
    Message,
    PromptDocument,
    _front_matter,
    strip_segments,
)
from promptxray.explainers.prompt.source_map import MappedText, normalize_newlines, to_file

# The Prompty runtime's own split of front matter and body (prompty/core/utils.py).
_PROMPTY_SPLIT = re.compile(r"^\s*(?:---|\+\+\+)(.*?)(?:---|\+\+\+)\s*(.+)$", re.S | re.M)

Reader = Callable[[str, str | None, str, dict[str, Any], int | None], PromptDocument]
# (normalised text, body start, front matter, samples) -> (body start, [(role, mapped text)])
Render = Callable[
    [str, int, dict[str, Any], dict[str, Any]], tuple[int, list[tuple[str, MappedText]]]
]


def _empty(label: str) -> EmptyPromptError:
    return EmptyPromptError(f"{label} has no prompt text after its front matter")


def _front_and_samples(
    source: str,
    path: str | None,
    label: str,
    given: dict[str, Any],
    file_samples: Callable[[dict[str, Any]], dict[str, Any]],
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """The front matter, where the body starts, and the sample values: the file's own, the
    sidecar's over them, the caller's over both."""
    front, body_start, _ = _front_matter(source, 1 if source.startswith(BOM) else 0, label)
    values = sample_values.layered(file_samples(front), sample_values.sidecar_samples(path), given)
    return front, body_start, values


def _read_rendered(
    kind: str,
    source: str,
    path: str | None,
    label: str,
    given: dict[str, Any],
    file_samples: Callable[[dict[str, Any]], dict[str, Any]],
    render: Render,
) -> PromptDocument:
    """A template file rendered by its format's engine on the newline-normalised text (what
    its runtime reads), the messages mapped back to the file."""
    front, body_start, values = _front_and_samples(source, path, label, given, file_samples)
    text, offsets = normalize_newlines(source)
    body = offsets.index(body_start) if body_start in offsets else len(text)
    body, parts = render(text, body, front, values)
    messages = [
        Message(role, to_file(m, offsets).segments()) for role, m in parts if m.text.strip()
    ]
    if not messages:
        raise _empty(label)
    return PromptDocument(source, kind, offsets[body], front, messages, len(messages) > 1, values)


def read_prompty(
    source: str, path: str | None, label: str, given: dict[str, Any], line: int | None
) -> PromptDocument:
    """A .prompty file, rendered as the Prompty runtime renders it."""
    from promptxray.explainers.prompt import prompty_format

    def render(
        text: str, body: int, front: dict[str, Any], values: dict[str, Any]
    ) -> tuple[int, list[tuple[str, MappedText]]]:
        m = _PROMPTY_SPLIT.search(text)  # the body as the runtime's own loader splits it
        if m is not None and text[: m.start(1)].strip() == "---":
            body = m.start(2)
        return body, prompty_format.render(text, body, values, label)[1]

    return _read_rendered(
        "prompty", source, path, label, given, prompty_format.file_samples, render
    )


def read_dotprompt(
    source: str, path: str | None, label: str, given: dict[str, Any], line: int | None
) -> PromptDocument:
    """A Dotprompt .prompt file, rendered as dotpromptz renders it."""
    from promptxray.explainers.prompt import dotprompt_format

    folder = Path(path).resolve().parent if path and path != "-" else None

    def render(
        text: str, body: int, front: dict[str, Any], values: dict[str, Any]
    ) -> tuple[int, list[tuple[str, MappedText]]]:
        return body, dotprompt_format.render(text, body, front, values, label, folder)[1]

    return _read_rendered(
        "dotprompt", source, path, label, given, dotprompt_format.file_samples, render
    )


def read_copilot(
    source: str, path: str | None, label: str, given: dict[str, Any], line: int | None
) -> PromptDocument:
    """A Copilot .prompt.md file: one user message, `${input:…}` variables filled."""
    from promptxray.explainers.prompt import copilot_format

    front, body_start, values = _front_and_samples(
        source, path, label, given, copilot_format.file_samples
    )
    segs = copilot_format.segments(source, body_start, len(source), values, label)
    segs = strip_segments(segs)
    if not segs:
        raise _empty(label)
    return PromptDocument(
        source, "copilot", body_start, front, [Message("user", segs)], False, values
    )


def read_python(
    source: str, path: str | None, label: str, given: dict[str, Any], line: int | None
) -> PromptDocument:
    """One prompt of a Python file (the one at `line`), found by parsing, never running it."""
    from promptxray.explainers.prompt import python_prompts

    try:
        prompts = python_prompts.find_prompts(source)
    except DocumentError as e:  # its message starts `line:col:`; name the file as all others
        raise DocumentError(f"{label}:{e}", e.offset) from None
    if not prompts:
        raise EmptyPromptError(
            f"{label} has no prompt strings (a string assigned to a name with prompt, system, "
            "instruction or template in it, a role message's content, or a chat template)"
        )
    if line is None:
        if len(prompts) > 1:
            lines = ", ".join(str(p.line) for p in prompts)
            raise DocumentError(
                f"{label} has {len(prompts)} prompts (lines {lines}); say which: {label}:LINE"
            )
        prompt = prompts[0]
    else:
        found = python_prompts.prompt_at(prompts, line)
        if found is None:
            lines = ", ".join(str(p.line) for p in prompts)
            raise DocumentError(f"{label}:{line} is not in a prompt; its prompts are at {lines}")
        prompt = found
    values = sample_values.layered(
        sample_values.for_prompt(sample_values.sidecar_samples(path), prompt.name), given
    )
    messages = [Message(m.role, strip_segments(m.segments)) for m in prompt.messages(values, label)]
    messages = [m for m in messages if m.segments]
    if not messages:
        raise EmptyPromptError(f"{label}:{prompt.line}: the prompt is empty")
    return PromptDocument(source, "python", prompt.start, {}, messages, len(messages) > 1, values)


RENDERED: dict[str, Reader] = {
    "prompty": read_prompty,
    "dotprompt": read_dotprompt,
    "copilot": read_copilot,
    "python": read_python,
}
