"""What leave-one-out cannot see (explainers/interactions.py): on prompts built with a known
structure, two copies of a fact are found redundant (each alone costs little, both a lot, the
joint figure equal to an independent forward pass of the prompt without both), two
contradicting facts in conflict, and the wording, the editor's related-information
diagnostics and the `no_redundant` check say so. The pair test stays within its budget and
says what it did not test."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptxray.cli.main import main
from promptxray.explainers import nl
from promptxray.explainers.checks import evaluate, load_checks
from promptxray.explainers.explain import explain
from promptxray.explainers.inputs import build_input
from promptxray.explainers.interactions import (
    CANDIDATES,
    INERT_PAIRS,
    INTERACTION,
    SIMILAR,
    pair_kind,
)
from promptxray.explainers.prompt.document import parse_document
from promptxray.explainers.types import ExplainRequest, Explanation
from promptxray.server.convert import pair_diagnostics
from promptxray.server.positions import PositionMap
from tests.helpers import F32_NATS

LINES = (
    "You are a helpful assistant.\n",
    "The vault code is 4721.\n",
    "Be polite and brief.\n",
    "{second}\n",
    "The weather is sunny today.\n",
    "What is the vault code?\n",
)
TWICE = "".join(LINES).format(second="Remember: the vault code is 4721.")
CONTRADICTS = "".join(LINES).format(second="The vault code is 9385.")
ANSWER = "The vault code is 4721."


def removed_logprob(backend, text: str, expl: Explanation, drop: list[int]) -> float:
    """Independently: log P(answer) of the prompt without spans `drop` (their token ids taken
    out of the prompt's ids), one plain forward, no explainer code."""
    model_input = build_input(parse_document(text, None), backend)
    gone = {model_input.positions[i] for k in drop for i in expl.spans[k].token_indices}
    ids = [t for p, t in enumerate(model_input.ids) if p not in gone]
    target = [t.token_id for t in expl.target.tokens]
    return float(backend.target_logprobs([ids], target)[0].sum())


@pytest.fixture(scope="module")
def twice(smol) -> Explanation:
    return explain(ExplainRequest(TWICE, granularity="line", max_new_tokens=12), smol)


def test_the_rule_follows_its_definition():
    # redundant: little alone, much together
    assert pair_kind(0.4, 0.3, 11.8) == "redundant"
    # additive parts, or a joint cost leave-one-out mostly sees: not a pair
    assert pair_kind(1.0, 2.0, 3.0) is None and pair_kind(1.0, 1.2, 3.4) is None
    # an interaction under INTERACTION nats is not reported, however lopsided
    assert pair_kind(0.0, 0.0, INTERACTION * 0.9) is None
    # one supports, the other works against, they do not add up, and without the first the
    # second still moves the answer (here: it supports it)
    assert pair_kind(12.3, -1.0, 16.4) == "conflict"
    # ... or works against it more (two instructions that contradict each other)
    assert pair_kind(5.0, -2.0, 1.0) == "conflict"
    # opposite effects that add up: independent parts, no conflict
    assert pair_kind(12.3, -1.0, 11.3) is None
    # a dominant part (the question): without it nothing matters, so every part that hurts
    # the answer "interacts" with it; not a conflict
    assert pair_kind(18.0, -1.5, 18.0) is None
    # a part that barely works against the answer is no conflict, whatever it interacts with
    assert pair_kind(17.6, -0.16, 19.3) is None


def test_two_copies_of_a_fact_are_redundant(smol, twice):
    base = twice.target.logprob
    alone = [s.score for s in twice.spans]
    (pair,) = [p for p in twice.pairs if p.kind == "redundant"]
    assert pair.first == [twice.spans[1].start, twice.spans[1].end]
    assert pair.second == [twice.spans[3].start, twice.spans[3].end]
    # independently: removing both copies, one plain forward
    both = base - removed_logprob(smol, TWICE, twice, [1, 3])
    assert pair.both == pytest.approx(both, abs=4 * F32_NATS)
    # leave-one-out sees little of it: each copy alone costs under a tenth of both
    assert max(alone[1], alone[3]) < 0.1 * both
    assert pair.first_alone == pytest.approx(alone[1]) and pair.interaction > 5
    # the wording says redundant, never "no measurable effect"
    for i, other in ((1, "Remember: the vault code is 4721."), (3, ANSWER)):
        line = nl.span_line(twice, i, source=TWICE)
        assert f'redundant with "{other}"' in line and "no measurable" not in line
    assert "are redundant: either alone keeps the answer" in nl.summary(twice)
    report = nl.describe(twice, source=TWICE)
    assert 'Redundant: "The vault code is 4721." (line 2) and "Remember: the vault' in report
    assert "Pairs tested for redundancy and conflict: all 15 among 6 parts." in report
    assert twice.pair_test is not None and twice.pair_test.pairs == 15


def test_a_fact_stated_twice_among_many_lines_is_found(smol):
    # 20 lines: more than every pair can afford; the copies may rank anywhere
    text = "".join([*LINES[:3], *(f"{f}\n" for f in FILLER[:14]), *LINES[3:]]).format(
        second="Remember: the vault code is 4721."
    )
    expl = explain(ExplainRequest(text, granularity="line", max_new_tokens=12), smol)
    assert expl.pair_test is not None and expl.pair_test.parts == 20
    assert expl.pair_test.tested < 20
    pair = expl.pairs[0]  # the largest interaction first
    assert pair.kind == "redundant" and pair.interaction > 10
    assert nl.pair_sentence(expl, pair, source=text).startswith(
        'Redundant: "The vault code is 4721." (line 2) and "Remember: the vault code is 4721." '
        "(line 18)"
    )


def test_two_contradicting_facts_are_in_conflict(smol):
    request = ExplainRequest(CONTRADICTS, granularity="line", target=ANSWER)
    expl = explain(request, smol)
    alone = [s.score for s in expl.spans]
    assert alone[1] > 1 and alone[3] < -0.5  # one supports the answer, one works against it
    conflicts = [p for p in expl.pairs if p.kind == "conflict"]
    assert [(p.first, p.second) for p in conflicts] == [
        ([expl.spans[1].start, expl.spans[1].end], [expl.spans[3].start, expl.spans[3].end])
    ]
    both = expl.target.logprob - removed_logprob(smol, CONTRADICTS, expl, [1, 3])
    assert conflicts[0].both == pytest.approx(both, abs=4 * F32_NATS)
    assert both - alone[1] >= 1  # without the supporting fact, the other still moves it
    assert not [p for p in expl.pairs if p.kind == "redundant"]
    line = nl.span_line(expl, 3, source=CONTRADICTS)
    assert line.endswith('pulls against "The vault code is 4721." (line 2)')
    assert "pull against each other" in nl.summary(expl)


def test_the_editor_links_the_two_parts_of_a_pair(twice):
    pmap = PositionMap(TWICE)
    (diag,) = pair_diagnostics("file:///vault.txt", twice, pmap)
    assert diag.code == "redundant" and diag.range.start.line == 1
    assert diag.message.startswith('Redundant: "The vault code is 4721." (line 2)')
    (related,) = diag.related_information or []
    assert related.location.uri == "file:///vault.txt"
    assert related.location.range.start.line == 3
    assert related.message == 'Says the same as "The vault code is 4721.".'


def test_the_no_redundant_check_fails_on_the_pair_and_passes_over_its_cost(smol, twice):
    pair = twice.pairs[0]
    head = "---\nchecks:\n  granularity: line\n  assert:\n    - no_redundant: {}\n---\n"
    strict = load_checks(head.format(2.0) + TWICE, "vault.prompt")
    loose = load_checks(head.format(round(pair.both + 1)) + TWICE, "vault.prompt")
    assert strict is not None and loose is not None and not strict.errors
    (failed,) = evaluate(strict, twice)
    assert failed.status == "fail" and "Redundant:" in failed.detail
    assert "15 pairs tested among 6 of 6 parts" in failed.detail
    (passed,) = evaluate(loose, twice)
    assert passed.status == "pass"
    # an explanation that tested no pairs cannot be checked: an error that says what would
    tokens = explain(ExplainRequest("The vault code is 4721.\nWhat is it?"), smol)
    (error,) = evaluate(strict, tokens)
    assert error.status == "error" and "granularity line" in error.detail
    # a threshold that is not a number is an invalid check, with its line
    bad = load_checks(head.format("lots") + TWICE, "vault.prompt")
    assert bad is not None and bad.errors and bad.errors[0].line == 5


def test_promptxray_check_reports_the_redundant_pair(smol, tmp_path: Path, capsys):
    path = tmp_path / "vault.prompt"
    head = "---\nchecks:\n  granularity: line\n  max_new_tokens: 12\n  assert:\n"
    path.write_text(head + "    - no_redundant: 2.0\n---\n" + TWICE)
    status = main(["check", str(path)])
    out = capsys.readouterr().out
    assert status == 1
    # the lines of the file, front matter included
    assert 'Redundant: "The vault code is 4721." (line 9) and "Remember' in out
    assert '4721." (line 11): either alone keeps the answer' in out


FILLER = (
    "The sun was hot.", "A cat sat on a mat.", "Tom ran to the park.", "Mom baked bread.",
    "Birds sang in trees.", "It rained all night.", "Sam lost his hat.", "We ate green apples.",
    "The dog barked twice.", "Grandpa told a story.", "Snow fell on roofs.", "Ben found a coin.",
    "Fish swam in ponds.", "Sue drew a house.", "Frogs jumped high.", "Kids played ball.",
    "Wind shook windows.", "Dad fixed a bike.",
)  # fmt: skip


def test_many_parts_are_tested_within_the_budget_and_the_rest_said(stories):
    lines = [*FILLER[:4], "Lily had a big red ball.", *FILLER[4:], "Lily had a big red ball."]
    text = "\n".join(lines) + "\nOne day"
    expl = explain(ExplainRequest(text, granularity="line", faithfulness=False), stories)
    test = expl.pair_test
    assert test is not None and test.parts == len(lines) + 1 == 21
    # the two copies share all their words: tested whatever their rank (and nothing else
    # shares most of its words here)
    assert test.similar == 1
    assert test.tested <= CANDIDATES + INERT_PAIRS + 2
    most = CANDIDATES * (CANDIDATES - 1) // 2 + INERT_PAIRS * (INERT_PAIRS - 1) // 2
    assert test.pairs <= most + SIMILAR
    report = nl.describe(expl)
    assert f"{test.parts - test.tested} parts not tested in pairs" in report
    assert "and a pair of parts sharing most of their words" in report
    # the option turns the test off; methods without removals never run it
    off = ExplainRequest(text, granularity="line", faithfulness=False, options={"pairs": False})
    assert explain(off, stories).pair_test is None
    saliency = ExplainRequest(text, method="saliency", granularity="line", faithfulness=False)
    assert explain(saliency, stories).pair_test is None
