"""Prompts in a Python file, through the real in-process server (tiny real model): a lens above
each prompt, nothing explained until one is picked, then hovers on the literal's own characters
and the same scores as the same prompt written in a plain `.prompt` file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from promptxray.explainers.explain import explain
from promptxray.explainers.prompt.document import parse_document
from tests.conftest import STORIES
from tests.helpers import F32_NATS, request_for

from .wire import Wire

CODE = '''"""A module whose prompts promptxray finds without running it."""

SYSTEM_PROMPT = """Lily had a red ball.
She liked the ball. Tom had a dog."""

GREETING = {"role": "user", "content": "One day Lily and Tom went to the park with the dog."}


def story_prompt(name, place):
    return f"Once upon a time {name} went to {place}. One day"
'''
SAMPLES = "name: Lily\nplace: the park\n"


@pytest.fixture(autouse=True)
def _model() -> None:
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")


def test_three_prompts_are_found_with_the_file_mapping() -> None:
    from promptxray.explainers.prompt.python_prompts import find_prompts

    prompts = find_prompts(CODE)
    assert [p.line for p in prompts] == [3, 6, 10]
    assert prompts[2].variables == ["name", "place"]
    doc = parse_document(CODE, "story.py", samples={"name": "Lily", "place": "the park"}, line=10)
    (message,) = doc.messages
    assert message.content == "Once upon a time Lily went to the park. One day"
    filled = {s.placeholder: CODE[s.start : s.end] for s in message.segments if s.placeholder}
    assert filled == {"name": "{name}", "place": "{place}"}
    code = 'SYSTEM_PROMPT = "Be brief.\\tAnswer in French."\n'
    tab = parse_document(code, "a.py").messages[0]
    (escape,) = [s for s in tab.segments if s.text == "\t"]
    assert code[escape.start : escape.end] == "\\t" and not escape.exact


@pytest.mark.parametrize("line", [3, 6, 10])
def test_scores_equal_the_same_prompt_in_a_prompt_file(tmp_path: Path, line: int) -> None:
    path = tmp_path / "story.py"
    path.write_text(CODE, encoding="utf-8")
    (tmp_path / "story.py.samples.yaml").write_text(SAMPLES, encoding="utf-8")
    doc = parse_document(CODE, str(path), line=line)
    plain = "\n\n".join(m.content for m in doc.messages)
    if line == 10:  # the f-string: the same template, with the same samples, as a .prompty
        plain = "---\nsample: {name: Lily, place: the park}\n---\nuser:\n"
        plain += "Once upon a time {{name}} went to {{place}}. One day"
    same = tmp_path / ("same.prompty" if line == 10 else "same.prompt")
    common = {"model": str(STORIES), "granularity": "word", "faithfulness": False}
    in_code = explain(
        request_for(CODE, path=str(path), prompt_line=line, chat_template=False, **common)
    )
    in_file = explain(request_for(plain, path=str(same), chat_template=False, **common))
    assert in_code.target.text == in_file.target.text
    assert len(in_code.spans) == len(in_file.spans)
    for a, b in zip(in_code.spans, in_file.spans, strict=True):
        assert a.text == b.text or (a.text.strip("{}") == b.text.strip("{}"))
        assert abs(a.score - b.score) <= 2 * F32_NATS
    word = next(s for s in in_code.spans if s.text == "Lily" or s.text == "{name}")
    assert CODE[word.start : word.end] == word.text  # the span is the literal's own characters


def test_lenses_then_an_explanation_on_the_literal(tmp_path: Path) -> None:
    path = tmp_path / "story.py"
    (tmp_path / "story.py.samples.yaml").write_text(SAMPLES, encoding="utf-8")

    async def scenario() -> None:
        wire = Wire()
        await wire.initialize({"model": str(STORIES), "debounceMs": 20, "granularity": "word"})
        uri = wire.open(path, CODE)
        lenses = await wire.request("textDocument/codeLens", {"textDocument": {"uri": uri}})
        explain_lenses = [x for x in lenses if x["command"]["title"].endswith("this prompt")]
        assert [x["range"]["start"]["line"] for x in explain_lenses] == [2, 5, 9]
        assert [x["command"]["arguments"][1] for x in explain_lenses] == [
            {"prompt_line": 3},
            {"prompt_line": 6},
            {"prompt_line": 10},
        ]
        await asyncio.sleep(0.2)
        assert not wire.statuses(uri) or all(
            s["stage"] != "ready" for s in wire.statuses(uri)
        )  # nothing explained on open
        await wire.command("promptxray.explain", uri, {"prompt_line": 10})
        col = CODE.split("\n")[9].index("upon")
        hover = await wire.hover(uri, 9, col + 1)
        assert hover is not None and "upon" in hover["contents"]["value"]
        lenses = await wire.request("textDocument/codeLens", {"textDocument": {"uri": uri}})
        titles = [x["command"]["title"] for x in lenses if x["range"]["start"]["line"] == 9]
        assert not any(t.endswith("this prompt") for t in titles) and len(titles) >= 3
        await wire.request("shutdown")

    asyncio.run(scenario())
