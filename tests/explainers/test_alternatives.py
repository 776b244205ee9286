"""The model's own alternative answers ("why not …?"): whole answers, none saying the same as
the answer, each with the probability an independent teacher-forced forward gives its text,
best first; the batched completion equals one greedy generation per branch; backends that
cannot rank next tokens or score exactly offer none. The rule's axioms, the tiny real model,
and the README's examples on the default model."""

from __future__ import annotations

import copy
import json
import math
import re
import shlex
import unicodedata
from pathlib import Path

import pytest

from promptxray.explainers.alternatives import (
    Alternative,
    alternatives,
    answer_end,
    new_tokens,
    same_answer,
    sentence_start,
)
from promptxray.explainers.backends.base import Backend
from promptxray.explainers.backends.capabilities import Capabilities, Scoring
from promptxray.explainers.explain import explain, prepare
from promptxray.explainers.nl import format_prob
from promptxray.explainers.types import ExplainRequest
from tests.conftest import REPO, STORIES
from tests.helpers import F32_NATS, direct_target_logprob

STORY = "Once upon a time there was a little girl named"
ENDS = {"end", "sentence", "line", "limit"}


def plain_words(text: str) -> list[str]:
    """Words written independently of the module: letters and digits runs, case folded."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.findall(r"[^\W_]+", text)


def says_the_answer(alt: str, answer: str) -> bool:
    """The answer (or the alternative) again, cut short, continued or reordered."""
    a, b = " ".join(plain_words(alt)), " ".join(plain_words(answer))
    return f" {a} " in f" {b} " or f" {b} " in f" {a} " or sorted(a.split()) == sorted(b.split())


def prompt_and_answer(backend: Backend, text: str, path: str | None = None):
    _, prep = prepare(ExplainRequest(text=text, path=path), backend=backend)
    return prep.ctx.input.ids, prep.ctx.target_ids


def check_alternatives(backend: Backend, prompt: list[int], answer: list[int], alts) -> None:
    """Whole answers, none the answer again, exact probabilities, best first."""
    assert alts, "no alternatives"
    answer_text = backend.decode(answer)
    model = backend.model
    for alt in alts:
        assert isinstance(alt, Alternative) and alt.end in ENDS
        assert alt.text == alt.text.rstrip()  # no trailing white space
        assert plain_words(alt.text) and not says_the_answer(alt.text, answer_text), alt
        ids = backend.encode_target(alt.text)  # as `explain` tokenises a foil
        if alt.end == "sentence":
            assert alt.text[-1] in ".!?…。！？", alt
        if alt.end in ("sentence", "line"):  # it stops where its own sentence ends, not later
            departs = len(backend.decode(answer[: alt.branch_position]))
            assert alt.text[:departs] == answer_text[:departs], alt
            assert answer_end(alt.text[:-1], departs) is None, alt
        # a short view starts at the sentence it departs in: what it leaves out is the answer's
        assert alt.sentence_start <= len(backend.decode(answer[: alt.branch_position])) + 1
        assert alt.text[: alt.sentence_start] == answer_text[: alt.sentence_start], alt
        # its probability: exp of an independent teacher-forced log-probability of its text
        direct = direct_target_logprob(model, list(prompt), ids)
        assert alt.logprob == pytest.approx(direct, abs=F32_NATS)
        assert 0 < alt.prob < 1 and alt.prob == pytest.approx(math.exp(direct), rel=2 * F32_NATS)
    probs = [a.prob for a in alts]
    assert probs == sorted(probs, reverse=True)
    assert len({" ".join(plain_words(a.text)) for a in alts}) == len(alts)  # no duplicates


# --- the rule, by its axioms -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The capital of France is Paris.", "the capital of france is paris"),  # case, marks
        ("The capital of France is Paris.", "The  capital of France\nis Paris!"),  # spaces
        ("Paris", "Paris is the capital of France."),  # continued
        ("The review is positive.", "Positive"),  # cut short / part of it
        ("Paris is the capital of France.", "The capital of France is Paris."),  # reordered
        ("巴黎", "法国的首都是巴黎。"),  # wide characters are words of their own
        ("The capital of France is Paris.", "The capital of France: Paris"),  # "is" adds nothing
    ],
)
def test_same_answer_reads_case_marks_spaces_parts_and_order_alike(a, b):
    assert same_answer(a, b) and same_answer(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The review is positive.", "The review is negative."),
        ("Paris", "Lyon"),
        ("Par", "Paris"),  # a word cut in the middle is another word
        ("Paris is the capital.", "Paris is not the capital."),  # a negation is content
        ("The", "A"),  # only function words: nothing to compare
        ("...", "..."),  # no words: never the same as anything
        ("", "Paris"),
    ],
)
def test_different_answers_are_not_the_same(a, b):
    assert not same_answer(a, b) and not same_answer(b, a)


def test_answer_end_is_the_first_sentence_or_line():
    assert answer_end("It is Lyon. Or Paris.") == (len("It is Lyon."), "sentence")
    assert answer_end("It is 3.5 km") is None  # a mark inside a number ends nothing
    assert answer_end("Lyon\nParis") == (4, "line")
    assert answer_end("\n\nLyon") is None  # leading white space is not a line
    assert answer_end("是里昂。然后") == (4, "sentence")
    # from where an alternative departs from the answer: the sentence it departs in
    assert answer_end("It is Lyon. Or Paris. Or", 12) == (len("It is Lyon. Or Paris."), "sentence")
    assert sentence_start("It is Lyon. Or Paris", 15) == len("It is Lyon. ")
    assert sentence_start("Lyon\nParis", 7) == 5 and sentence_start("It is 3.5 km", 9) == 0


# --- the tiny real model ------------------------------------------------------------------------
def test_alternatives_on_the_tiny_model_are_whole_exact_and_ranked(stories):
    prompt, answer = prompt_and_answer(stories, STORY)
    before = stories.counters.forward_passes
    alts = alternatives(stories, prompt, answer, k=8)
    # one forward for the branch points, one per new token (all branches batched), one to score
    assert stories.counters.forward_passes - before <= new_tokens(len(answer), 0) + 2
    check_alternatives(stories, prompt, answer, alts)
    assert len({a.text for a in alts}) > 1


def test_the_batched_completion_is_greedy_generation_of_each_branch(stories):
    prompt, answer = prompt_and_answer(stories, STORY)
    branches = [[answer[0]], [13], answer[:3], [answer[0], 29]]  # different lengths
    limits = [6, 9, 3, 5]
    batched = stories.complete(prompt, branches, limits)
    for branch, limit, got in zip(branches, limits, batched, strict=True):
        assert got == stories.generate(prompt + branch, limit)  # transformers' own generate
    # stopping early: as soon as the condition holds on the branch and its new tokens
    stopped = stories.complete(prompt, branches, limits, stop=lambda ids: len(ids) >= 4)
    for branch, got, full in zip(branches, stopped, batched, strict=True):
        assert got == full[: max(1, 4 - len(branch))]


def test_a_whole_alternative_is_a_foil_explain_scores_the_same(stories):
    prompt, answer = prompt_and_answer(stories, STORY)
    alts = alternatives(stories, prompt, answer, k=8)
    alt = next(a for a in alts if len(stories.encode_target(a.text)) > 1)  # a multi-token foil
    expl = explain(
        ExplainRequest(text=STORY, model=str(STORIES), foil=alt.text, faithfulness=False),
        backend=stories,
    )
    assert expl.foil is not None and expl.foil.text == alt.text
    assert expl.foil.logprob == pytest.approx(alt.logprob, abs=F32_NATS)
    assert expl.contrast == pytest.approx(expl.target.logprob - alt.logprob, abs=2 * F32_NATS)


def test_backends_that_cannot_rank_or_score_offer_what_they_can(stories):
    prompt, answer = prompt_and_answer(stories, STORY)
    for caps in (
        Capabilities(scoring=Scoring.TEXT, tokenizer=False, logits=False),
        Capabilities(scoring=Scoring.GENERATED, logits=False, next_tokens=True),
        Capabilities(scoring=Scoring.PROMPT, logits=False, next_tokens=False),
    ):
        limited = copy.copy(stories)
        limited.capabilities = caps
        assert alternatives(limited, prompt, answer) == []
    # a server's top next tokens and exact scores, no logits, nothing batched: the first
    # position only, one generation and one scoring per branch
    server = copy.copy(stories)
    server.capabilities = Capabilities(logits=False, next_tokens=True)
    server.prefix_reuse = False
    alts = alternatives(server, prompt, answer, k=8)
    check_alternatives(server, prompt, answer, alts)
    assert {a.branch_position for a in alts} == {0}


# --- the README's examples on the default model -------------------------------------------------
README_EXAMPLES = ["capital.prompt", "sentiment.prompt", "travel_assistant.prompt"]


@pytest.mark.parametrize("name", README_EXAMPLES)
def test_readme_examples_get_whole_alternative_answers(smol, name):
    path = REPO / "examples" / name
    prompt, answer = prompt_and_answer(smol, path.read_text(encoding="utf-8"), str(path))
    alts = alternatives(smol, prompt, answer)
    check_alternatives(smol, prompt, answer, alts)
    for alt in alts:  # whole answers, not the first-token fragments ("L", "La", "Al")
        assert len(plain_words(alt.text)) >= 2, alt


def test_the_cli_prints_alternatives_as_foils(smol, capsys):
    """The text report lists each alternative as the --foil that asks about it, with the
    probability an independent forward gives it."""
    from promptxray.cli.main import main

    capital = REPO / "examples" / "capital.prompt"
    args = ["explain", str(capital), "-g", "line", "--no-faithfulness", "--color", "never"]
    assert main([*args, "--alternatives"]) == 0
    out = capsys.readouterr().out
    listed = [line.split() for line in out[out.index("Why not …?") :].splitlines()]
    listed = [line for line in listed if line and line[0].startswith("P=")]
    assert listed, out
    prompt, answer = prompt_and_answer(smol, capital.read_text(encoding="utf-8"), str(capital))
    answer_text = smol.decode(answer)
    probs = []
    for line in listed:
        assert line[1] == "--foil"
        text = shlex.split(" ".join(line[2:]))[0]
        assert len(plain_words(text)) >= 2 and not says_the_answer(text, answer_text)
        direct = direct_target_logprob(smol.model, list(prompt), smol.encode_target(text))
        assert line[0] == f"P={format_prob(math.exp(direct))}"
        probs.append(direct)
    assert probs == sorted(probs, reverse=True)


def test_the_cli_json_has_an_optional_alternatives_key(stories, capsys, tmp_path: Path):
    from promptxray.cli.main import main

    story = tmp_path / "story.prompt"
    story.write_text(STORY, encoding="utf-8")
    args = ["explain", str(story), "--model", str(STORIES), "--no-faithfulness", "-f", "json"]
    assert main(args) == 0
    assert "alternatives" not in json.loads(capsys.readouterr().out)  # the schema as it was
    assert main([*args, "--alternatives"]) == 0
    data = json.loads(capsys.readouterr().out)
    prompt, _ = prompt_and_answer(stories, STORY)
    assert data["alternatives"]
    for a in data["alternatives"]:
        direct = direct_target_logprob(
            stories.model, list(prompt), stories.encode_target(a["text"])
        )
        assert a["logprob"] == pytest.approx(direct, abs=F32_NATS)
        assert a["prob"] == pytest.approx(math.exp(direct), rel=2 * F32_NATS)
        assert a["end"] in ENDS and isinstance(a["branch_position"], int)


def test_the_front_ends_words_quote_an_alternative_short_with_its_probability():
    from promptxray.explainers.nl.front_text import alternative_choice, why_not_title

    long = "Lyon is the capital of France and the largest city of the Rhône."
    for lang, (left, right) in (("en", ('"', '"')), ("zh", ("“", "”"))):
        title = why_not_title(long, 0.031, lang)
        quoted = title[title.index(left) + 1 : title.index(right, title.index(left) + 1)]
        assert quoted.endswith("…") and long.startswith(quoted[:-1]) and len(quoted) < 30
        assert "P=0.03" in title and long not in title
        choice = alternative_choice(long, 0.5, lang)
        assert choice.startswith(left + long[:50]) and "P=0.50" in choice
    assert why_not_title("Sue.", 0.0123) == 'Why not "Sue." (P=0.01)?'
    assert why_not_title("Sue.", 0.0123, "zh") == "为什么不是“Sue.”（P=0.01）？"
    assert alternative_choice("Sue.", 2e-5) == '"Sue." (P=2.0e-05)'
    # departing in a later sentence: shown from that sentence on
    assert (
        why_not_title("Lily. She ran home.", 0.5, start=6) == 'Why not "…She ran home." (P=0.50)?'
    )
