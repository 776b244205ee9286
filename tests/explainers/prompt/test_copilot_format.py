"""Copilot prompt files: front matter is configuration, `${input:…}` are variables."""

from __future__ import annotations

import pytest

from promptxray.explainers.checks.load import load_checks
from promptxray.explainers.errors import MissingSampleError
from promptxray.explainers.prompt.document import parse_document

REVIEW = """---
mode: agent
description: Review a pull request.
tools: [codebase]
promptxray:
  samples:
    focus: error handling
  checks:
    assert:
      - answer_contains: fix
---
Review the change in ${input:file:src/app.py} for ${input:focus}.
Keep ${input:focus} first.
"""


def test_inputs_are_variables_filled_from_samples_or_placeholders() -> None:
    doc = parse_document(REVIEW, "review.prompt.md")
    (message,) = doc.messages
    assert message.role == "user"
    assert message.content == (
        "Review the change in src/app.py for error handling.\nKeep error handling first."
    )
    filled = [s for s in message.segments if s.placeholder]
    assert [s.placeholder for s in filled] == ["file", "focus", "focus"]
    for seg in filled:
        assert REVIEW[seg.start : seg.end].startswith("${input:" + seg.placeholder)
    for seg in message.segments:
        if not seg.placeholder:
            assert REVIEW[seg.start : seg.end] == seg.text


def test_caller_samples_win_and_a_missing_one_is_named() -> None:
    doc = parse_document(REVIEW, "review.prompt.md", samples={"file": "lib.py"})
    assert doc.messages[0].content.startswith("Review the change in lib.py")
    with pytest.raises(MissingSampleError) as info:
        parse_document("Explain ${selection} please", "x.prompt.md")
    assert "x.prompt.md:1:9: ${selection}" in str(info.value)


def test_checks_under_the_promptxray_key() -> None:
    spec = load_checks(REVIEW, "review.prompt.md")
    assert spec is not None and not spec.errors
    assert [a.kind for a in spec.assertions] == ["answer_contains"]
