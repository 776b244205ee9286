"""GitHub Copilot prompt files (`.prompt.md`): front matter is configuration, the body is the
request, and `${input:name}` / `${input:name:placeholder}` are variables VS Code asks for when
the prompt runs (the placeholder is the sample unless one is given). VS Code's context variables
(`${selection}`, `${file}`, …) are variables too; they need a sample.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from promptxray.explainers.errors import MissingSampleError
from promptxray.explainers.prompt.document import Segment, where

# ${input:name} / ${input:name:placeholder text} / ${selection}: VS Code's variable syntax
VARIABLE = re.compile(r"\$\{(?:input:([\w.-]+)(?::([^}]*))?|([A-Za-z][\w:.-]*))\}")
SAMPLE_HINT = (
    "give it under `promptxray: {{samples: {{{name}: ...}}}}` in the front matter, in a "
    "`<file>.samples.yaml` sidecar, or in the `promptxray.samples` setting"
)


def file_samples(front: Mapping[str, Any]) -> dict[str, Any]:
    """Samples under the front matter's `promptxray: samples:` (Copilot ignores the key)."""
    own = front.get("promptxray")
    samples = own.get("samples") if isinstance(own, dict) else None
    return {str(k): v for k, v in samples.items()} if isinstance(samples, dict) else {}


def segments(
    source: str, start: int, end: int, samples: Mapping[str, Any], label: str
) -> list[Segment]:
    """The body source[start:end] as segments, each variable filled from `samples` (else its
    placeholder text)."""
    segs: list[Segment] = []
    pos = start
    for m in VARIABLE.finditer(source, start, end):
        name = m.group(1) or m.group(3)
        if name in samples:
            value = str(samples[name])
        elif m.group(1) and m.group(2) is not None:
            value = m.group(2)
        else:
            raise MissingSampleError(
                f"{where(source, label, m.start())}: {m.group(0)} has no sample value; "
                + SAMPLE_HINT.format(name=name),
                m.start(),
            )
        if m.start() > pos:
            segs.append(Segment(source[pos : m.start()], pos, m.start()))
        segs.append(Segment(value, m.start(), m.end(), placeholder=name, exact=False))
        pos = m.end()
    if end > pos:
        segs.append(Segment(source[pos:end], pos, end))
    return segs
