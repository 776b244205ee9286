"""Every token of every example file points at exactly the characters it stands for."""

from __future__ import annotations

import pytest

from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import parse_document, read_prompt_file
from tests.conftest import GOOD_FILES


def _placeholder_spans(doc) -> set[tuple[int, int]]:
    return {
        (seg.start, seg.end)
        for m in doc.messages
        for seg in m.segments
        if seg.placeholder is not None
    }


@pytest.mark.parametrize("path", GOOD_FILES, ids=lambda p: p.name)
def test_token_offsets_point_into_the_file(path, any_backend):
    source = read_prompt_file(str(path))
    doc = parse_document(source, str(path))
    model_input = build_input(doc, any_backend)
    placeholders = _placeholder_spans(doc)
    assert model_input.tokens
    covered: set[int] = set()
    for token in model_input.tokens:
        assert token.text == source[token.start : token.end]
        assert 0 <= token.start < token.end <= len(source)
        covered.update(range(token.start, token.end))
        if any(a < token.end and token.start < b for a, b in placeholders):
            assert "{{" in token.text and "}}" in token.text
            continue
        piece = any_backend.decode([token.token_id])
        if "\ufffd" in piece:  # part of a multi-byte character: the token covers that character
            assert token.end - token.start <= 2
        else:
            assert piece.replace("▁", " ").strip() == token.text.strip()
    # nothing the user wrote in the prompt body is lost
    for message in doc.messages:
        for seg in message.segments:
            if seg.placeholder is None:
                for i in range(seg.start, seg.end):
                    assert i in covered or source[i].isspace(), (path.name, i, source[i])


def test_crlf_example_keeps_carriage_returns(stories):
    source = read_prompt_file(str(next(p for p in GOOD_FILES if p.name == "crlf.prompt")))
    line2 = source.index("\r\n") + 2
    assert "\r\n" in source
    tokens = build_input(parse_document(source, "crlf.prompt"), stories).tokens
    first_on_line2 = next(t for t in tokens if t.end > line2 and not t.text.isspace())
    assert first_on_line2.text == source[first_on_line2.start : first_on_line2.end]
    assert source[line2:].startswith(first_on_line2.text.lstrip("\r\n "))


def test_chat_template_tokens_are_not_user_tokens(smol):
    doc = parse_document("What is the capital of France?", "q.prompt")
    model_input = build_input(doc, smol)
    assert model_input.chat
    assert len(model_input.ids) > len(model_input.tokens)  # the template's own tokens
    assert "".join(t.text for t in model_input.tokens) == "What is the capital of France?"
