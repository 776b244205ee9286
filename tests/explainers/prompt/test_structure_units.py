"""Structure-level granularities (sentence, section, message, example, variable) on the real
example files: the exact parts, occlusion (and the other unit methods) on the tiny model,
the errors for a part kind a prompt lacks, and one diagnostic per part in the language server."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.explain import explain, prepare
from promptxray.explainers.prompt.document import parse_document
from promptxray.explainers.prompt.structure import STRUCTURE_KINDS, available, parts
from promptxray.explainers.types import (
    FIXED_GRANULARITIES,
    GRANULARITIES,
    ExplainRequest,
    Explanation,
)
from tests.conftest import REPO, STORIES
from tests.helpers import F32_NATS

EXAMPLES = REPO / "examples"
TRIP = EXAMPLES / "trip.prompty"  # three messages, two variables (one used twice)
SENTIMENT = EXAMPLES / "sentiment.prompt"  # an instruction, four examples and the question
SUPPORT = EXAMPLES / "support.prompt.md"  # three Markdown sections

TRIP_SYSTEM = "You are a friendly travel guide. Answer in one short sentence."
TRIP_USER = "I am visiting {{city}} in {{season}}. What should I see first in {{city}}?"
TRIP_ASSISTANT = "In {{season}}, start with"
SENTIMENT_EXAMPLES = [
    "Review: The soup was cold and the waiter was rude.\nSentiment: negative",
    "Review: A wonderful evening, the best pasta in town.\nSentiment: positive",
    "Review: We waited an hour for a burnt pizza.\nSentiment: negative",
    "Review: Friendly staff and a lovely view of the sea.\nSentiment: positive",
]
SENTIMENT_INSTRUCTION = "Classify the sentiment of each review as positive or negative."
SENTIMENT_QUESTION = "Review: The dessert was fresh and the coffee was great.\nSentiment:"
SUPPORT_SECTIONS = [
    "# Role\n\nYou answer questions from customers of a bike shop. Be brief and polite.",
    "## Rules\n\n- Never promise a delivery date.\n- Offer a repair appointment when a bike is "
    "broken.",
    "## Question\n\nMy front brake squeaks. What should I do?",
]

# (file, granularity) -> the parts' texts, in file order, as the explanation's spans show them
EXPECTED: dict[tuple[Path, str], list[str]] = {
    (TRIP, "message"): [TRIP_SYSTEM, TRIP_USER, TRIP_ASSISTANT],
    (TRIP, "section"): [TRIP_SYSTEM, TRIP_USER, TRIP_ASSISTANT],
    (TRIP, "sentence"): [
        "You are a friendly travel guide.",
        "Answer in one short sentence.",
        "I am visiting {{city}} in {{season}}.",
        "What should I see first in {{city}}?",
        TRIP_ASSISTANT,
    ],
    # each variable once (at its first use), the literal text between variables in pieces
    (TRIP, "variable"): [
        TRIP_SYSTEM,
        "I am visiting",
        "{{city}}",
        "in",
        "{{season}}",
        ". What should I see first in",
        "?",
        "In",
        ", start with",
    ],
    (SENTIMENT, "example"): [SENTIMENT_INSTRUCTION, *SENTIMENT_EXAMPLES, SENTIMENT_QUESTION],
    (SENTIMENT, "section"): [SENTIMENT_INSTRUCTION, *SENTIMENT_EXAMPLES, SENTIMENT_QUESTION],
    (SUPPORT, "section"): SUPPORT_SECTIONS,
    (SUPPORT, "sentence"): [
        "# Role",
        "You answer questions from customers of a bike shop.",
        "Be brief and polite.",
        "## Rules",
        "- Never promise a delivery date.",
        "- Offer a repair appointment when a bike is broken.",
        "## Question",
        "My front brake squeaks.",
        "What should I do?",
    ],
}


def _explain(backend, path: Path, granularity: str, method: str = "occlusion", **kw):
    request = ExplainRequest(
        text=path.read_text(encoding="utf-8"),
        path=str(path),
        method=method,
        granularity=granularity,
        max_new_tokens=2,
        **kw,
    )
    return explain(request, backend=backend)


def _check_spans(expl: Explanation, source: str) -> None:
    """Spans point into the file, and every user token is in exactly one unit."""
    for span in expl.spans:
        assert source[span.start : span.end] == span.text
        assert math.isfinite(span.score)
    covered = sorted(i for span in expl.spans for i in span.token_indices)
    assert covered == [t.index for t in expl.tokens]


def test_the_new_granularities_are_offered_everywhere():
    assert set(STRUCTURE_KINDS) <= set(FIXED_GRANULARITIES)
    assert set(STRUCTURE_KINDS) <= set(GRANULARITIES)
    assert GRANULARITIES[-1] == "auto"


@pytest.mark.parametrize(("path", "granularity"), list(EXPECTED), ids=lambda v: str(v))
def test_occlusion_scores_exactly_the_parts_of_the_real_files(stories, path, granularity):
    expl = _explain(stories, path, granularity)
    assert expl.granularity == granularity
    assert [s.text for s in expl.spans] == EXPECTED[path, granularity]
    _check_spans(expl, path.read_text(encoding="utf-8"))
    assert expl.ablated_logprob is not None and len(expl.ablated_logprob) == len(expl.spans)
    assert "comprehensiveness" in expl.metrics  # faithfulness is measured over the parts


def test_the_report_quotes_a_long_part_briefly(stories, tmp_path: Path):
    """A section or example can be dozens of lines: the report names it, it does not reprint it."""
    from promptxray.explainers import nl

    story = "Once upon a time there was a little girl named Lily who liked the park.\n"
    path = tmp_path / "long.prompt.md"
    path.write_text("# Story\n\n" + story * 4 + "\n# Question\n\nWhat did Lily like?\n")
    expl = _explain(stories, path, "section")
    report = nl.describe(expl)
    long = [s.text for s in expl.spans if len(s.text) > 80]
    assert long and not any(text in report for text in long)
    assert all(len(line) < 1000 for line in report.splitlines())


def test_a_variable_is_one_unit_over_all_its_uses(stories):
    source = TRIP.read_text(encoding="utf-8")
    expl = _explain(stories, TRIP, "variable", faithfulness=False)
    for name, uses in (("city", 2), ("season", 2)):
        marker = "{{" + name + "}}"
        span = next(s for s in expl.spans if s.text == marker)
        assert span.start == source.index(marker)  # shown at its first use
        # ...and it holds the tokens of every use (a token may start with the space before)
        ends = {expl.tokens[i].end for i in span.token_indices}
        assert len(ends) == uses
        assert all(source[e - len(marker) : e] == marker for e in ends)
        assert all(expl.tokens[i].text.strip() == marker for i in span.token_indices)


def test_the_editor_colours_every_use_of_a_variable(stories):
    from promptxray.server.convert import semantic_tokens
    from promptxray.server.positions import PositionMap

    source = TRIP.read_text(encoding="utf-8")
    expl = _explain(stories, TRIP, "variable", faithfulness=False)
    for span in expl.spans:
        span.score = 1.0  # colour every span
    data = semantic_tokens(expl, PositionMap(source))
    coloured, line, col = set(), 0, 0
    for k in range(0, len(data), 5):  # LSP's relative encoding -> (line, column, length)
        line += data[k]
        col = data[k + 1] if data[k] else col + data[k + 1]
        coloured.add((line, col, data[k + 2]))
    rows = source.splitlines()
    for marker in ("{{city}}", "{{season}}"):
        uses = [(n, row.index(marker)) for n, row in enumerate(rows) if marker in row]
        uses += [(n, row.rindex(marker)) for n, row in enumerate(rows) if row.count(marker) > 1]
        assert len(uses) == 2
        assert {(n, c, len(marker)) for n, c in uses} <= coloured
        # and a hover finds the variable's part at each use
        offsets = [sum(len(r) + 1 for r in rows[:n]) + c for n, c in uses]
        found = {expl.span_at(o + 2) for o in offsets}
        assert len(found) == 1 and None not in found


def test_removing_a_variable_removes_its_filled_value_everywhere(stories):
    """The variable's occlusion score is the effect of deleting every use of its value."""
    expl = _explain(stories, TRIP, "variable", faithfulness=False)
    request = ExplainRequest(
        text=TRIP.read_text(encoding="utf-8"),
        path=str(TRIP),
        granularity="variable",
        target_ids=[t.token_id for t in expl.target.tokens],
    )
    _, prep = prepare(request, stories)
    ctx = prep.ctx
    city = [i for i, t in enumerate(ctx.input.tokens) if t.text.strip() == "{{city}}"]
    assert city in ctx.units and len({ctx.input.tokens[i].end for i in city}) == 2
    without = stories.target_logprobs([ctx.ids_without(city)], ctx.target_ids).sum()
    index = next(i for i, s in enumerate(expl.spans) if s.text == "{{city}}")
    # a removal score against another batch shape's: two log-probs, each within F32_NATS
    assert expl.spans[index].score == pytest.approx(ctx.base_score - without, abs=2 * F32_NATS)


@pytest.mark.parametrize(
    "method",
    [
        "shapley",
        "surrogate",
        "counterfactual",
        "gradient_x_input",
        "integrated_gradients",
        "saliency",
        "attention",
    ],
)
def test_every_unit_method_works_on_messages(stories, method):
    expl = _explain(stories, TRIP, "message", method=method, faithfulness=False)
    assert [s.text for s in expl.spans] == EXPECTED[TRIP, "message"]
    _check_spans(expl, TRIP.read_text(encoding="utf-8"))


def test_messages_of_a_chat_style_plain_prompt_and_examples_of_q_and_a():
    chat = (
        "Be kind.\n"
        "System: You are a poet.\n"
        "User: Write about the sea.\n"
        "Assistant: Waves fold on the shore.\n"
        "User: Now about the moon.\n"
    )
    doc = parse_document(chat, "chat.prompt")
    assert [p.label for p in parts(doc, "message")] == [
        "message 1 (text before the first turn)",
        "message 2 (system)",
        "message 3 (user)",
        "message 4 (assistant)",
        "message 5 (user)",
    ]
    qa = "Answer briefly.\n\nQ: 2+2?\nA: 4\n\nQ: 3+3?\nA: 6\n\nQ: 5+5?\nA:\n"
    doc = parse_document(qa, "math.prompt")
    found = parts(doc, "example")
    assert [p.text(qa) for p in found] == [
        "Answer briefly.",
        "Q: 2+2?\nA: 4",
        "Q: 3+3?\nA: 6",
        "Q: 5+5?\nA:",
    ]
    assert [p.label for p in found] == ["text", "example 1", "example 2", "text"]


@pytest.mark.parametrize(
    ("path", "granularity", "missing", "has"),
    [
        (EXAMPLES / "capital.prompt", "message", "no system/user/assistant turns", "sentence"),
        (SUPPORT, "variable", "no `{{name}}` variables", "section"),
        (TRIP, "example", "no few-shot examples", "message, variable"),
        (SENTIMENT, "message", "no system/user/assistant turns", "section, example"),
    ],
)
def test_a_part_kind_the_prompt_lacks_is_a_clear_error(stories, path, granularity, missing, has):
    with pytest.raises(InvalidRequestError) as info:
        _explain(stories, path, granularity)
    message = str(info.value)
    assert f"granularity {granularity!r} does not apply to this prompt" in message
    assert missing in message
    assert has in message
    doc = parse_document(path.read_text(encoding="utf-8"), str(path))
    kinds = ", ".join(["token", "word", "line", *available(doc), "auto"])
    assert message.endswith(f"its granularities are {kinds}")
    assert granularity not in available(doc)


def test_the_available_kinds_of_the_example_files():
    def kinds(path: Path) -> list[str]:
        return available(parse_document(path.read_text(encoding="utf-8"), str(path)))

    assert kinds(TRIP) == ["sentence", "section", "message", "variable"]
    assert kinds(SENTIMENT) == ["sentence", "section", "example"]
    assert kinds(SUPPORT) == ["sentence", "section"]


# --- the language server --------------------------------------------------------------------


@pytest.mark.parametrize(("path", "granularity"), [(SUPPORT, "section"), (TRIP, "message")])
def test_the_server_shows_one_diagnostic_per_part(tmp_path: Path, path: Path, granularity: str):
    from tests.server.wire import Wire

    text = path.read_text(encoding="utf-8")

    async def scenario() -> None:
        wire = Wire()
        options = {"model": str(STORIES), "debounceMs": 20, "method": "occlusion"}
        await wire.initialize({**options, "granularity": granularity, "faithfulness": False})
        uri = wire.open(tmp_path / path.name, text)
        diagnostics = await wire.published(uri)
        expl = Explanation.from_dict(await wire.request("promptxray/explanation", {"uri": uri}))
        result = wire.ls.documents.docs[uri].result
        assert result is not None and result.lines is result.explanation  # no extra line run
        await wire.request("shutdown")
        assert expl.granularity == granularity
        assert [s.text for s in expl.spans] == EXPECTED[path, granularity]
        info = [d for d in diagnostics if d["severity"] == 3]  # Information: one per part
        assert len(info) == len(expl.spans)
        lines = text.splitlines()
        for d, span in zip(info, expl.spans, strict=True):
            start, end = d["range"]["start"], d["range"]["end"]
            first, last = lines[start["line"]], lines[end["line"]]
            assert first[start["character"] :].startswith(span.text.splitlines()[0])
            assert last[: end["character"]].endswith(span.text.splitlines()[-1])

    asyncio.run(scenario())
