"""Faithfulness and agreement figures: textbook values on a hand-made scorer, and on the real
default model occlusion beats a random ranking; `method="auto"` picks the most faithful."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promptxray.explainers import nl
from promptxray.explainers.explain import explain, prepare
from promptxray.explainers.metrics import (
    agreement,
    faithfulness,
    kendall,
    spearman,
    top_k_overlap,
)
from tests.helpers import request_for

WEIGHTS = np.array([2.0, 1.0, 0.5, 0.0])


def linear_prob_scorer(masks: np.ndarray) -> np.ndarray:
    """log p with p = 0.1 + 0.2 * (weights of the kept units): every value is known by hand."""
    return np.log(0.1 + 0.2 * (np.asarray(masks, dtype=float) @ WEIGHTS))


def test_textbook_values_on_a_hand_made_scorer():
    f = faithfulness(linear_prob_scorer, WEIGHTS)
    # float64 on values known by hand (here and below): pytest's 1e-6 relative is ample.
    # n=4: the 1/5/10/20% bins hold the top 1 unit, the 50% bin the top 2.
    # removing unit 0 leaves p=0.4, units 0-1 p=0.2 (p_full=0.8): (0.4*4 + 0.6) / 5
    assert f.comprehensiveness == pytest.approx(0.44)
    # keeping only unit 0 gives p=0.5, units 0-1 p=0.7: (0.3*4 + 0.1) / 5
    assert f.sufficiency == pytest.approx(0.26)
    # the same in log-probability: log(0.8/0.4) four times and log(0.8/0.2) once, over 5
    assert f.comprehensiveness_logprob == pytest.approx((4 * math.log(2) + math.log(4)) / 5)
    assert f.sufficiency_logprob == pytest.approx((4 * math.log(0.8 / 0.5) + math.log(8 / 7)) / 5)
    assert f.counts == [0, 1, 2, 3, 4]
    assert f.fractions == [0.0, 0.25, 0.5, 0.75, 1.0]
    # deletion curve p = .8 .4 .2 .1 .1, insertion .1 .5 .7 .8 .8 (trapezoids of width 1/4)
    assert f.deletion_auc == pytest.approx(0.2875)
    assert f.insertion_auc == pytest.approx(0.6125)
    assert np.exp(f.deletion_logprob) == pytest.approx([0.8, 0.4, 0.2, 0.1, 0.1])


def test_a_worse_ranking_scores_worse():
    good = faithfulness(linear_prob_scorer, WEIGHTS)
    reversed_ = faithfulness(linear_prob_scorer, -WEIGHTS)
    assert reversed_.deletion_auc > good.deletion_auc
    assert reversed_.insertion_auc < good.insertion_auc
    assert reversed_.score < good.score


def test_every_variant_is_scored_in_one_call():
    calls = []

    def scorer(masks):
        calls.append(len(masks))
        return linear_prob_scorer(masks)

    faithfulness(scorer, WEIGHTS)
    assert len(calls) == 1


def test_rank_agreement_textbook_values():
    a, b = np.array([1.0, 2, 3, 4]), np.array([1.0, 3, 2, 4])
    assert kendall(a, b) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pair
    assert spearman(a, b) == pytest.approx(0.8)  # 1 - 6*2 / (4*15)
    # tau-b with a tie: 2 concordant pairs, one tie in a -> 2 / sqrt(2 * 3)
    assert kendall(np.array([1.0, 1, 2]), np.array([1.0, 2, 3])) == pytest.approx(2 / math.sqrt(6))
    assert kendall(a, -a) == pytest.approx(-1.0)
    assert top_k_overlap(np.array([5.0, 4, 0, 0]), np.array([5.0, 0, 4, 0]), 2) == 0.5
    assert math.isnan(kendall(np.ones(3), a[:3]))
    long = np.random.default_rng(0).normal(size=1300)  # spans several blocks
    assert kendall(long, long, block=512) == pytest.approx(1.0)
    assert set(agreement(a, b)) == {"spearman", "kendall", "top5_overlap"}


PROMPTS = [
    "What is the capital of France?",
    "Translate to French: The cat sleeps on the warm mat.",
    "My favourite colour is green. What is my favourite colour?",
]


@pytest.mark.parametrize("text", PROMPTS)
def test_occlusion_is_more_faithful_than_random_on_the_default_model(smol, text):
    expl = explain(request_for(text, method="occlusion", granularity="word"), backend=smol)
    for key in ("comprehensiveness", "sufficiency", "deletion_auc", "insertion_auc"):
        assert math.isfinite(expl.metrics[key])
    curves = expl.faithfulness
    # the curves' full-prompt points are the base score itself: equal to rounding
    assert curves.deletion_logprob[0] == pytest.approx(expl.target.logprob, abs=1e-6)
    assert curves.insertion_logprob[-1] == pytest.approx(expl.target.logprob, abs=1e-6)

    _, prep = prepare(request_for(text, granularity="word"), backend=smol)
    n = len(prep.ctx.units)
    rng = np.random.default_rng(0)
    random_aucs = [
        faithfulness(prep.ctx.score_masks, rng.permutation(n)).deletion_auc for _ in range(5)
    ]
    assert expl.metrics["deletion_auc"] < float(np.mean(random_aucs))


def test_faithfulness_can_be_turned_off(stories):
    request = request_for("Once upon a time there was a cat.", faithfulness=False)
    expl = explain(request, backend=stories)
    assert "comprehensiveness" not in expl.metrics and expl.faithfulness is None


def test_auto_returns_the_most_faithful_method_and_says_why(smol):
    request = request_for(PROMPTS[0], method="auto", granularity="word", options={"budget_s": 600})
    expl = explain(request, backend=smol)
    auto = expl.auto
    assert auto.chosen == expl.method
    assert len(auto.candidates) >= 3 and not auto.skipped
    best = max(auto.candidates, key=lambda c: c["score"])
    assert best["method"] == expl.method
    reason = nl.auto_reason(auto)
    assert expl.method in reason and "budget" in reason
    assert expl.method in nl.auto_reason(auto, "zh") and "预算" in nl.auto_reason(auto, "zh")
    chosen = next(c for c in auto.candidates if c["method"] == expl.method)
    # the chosen candidate's own figure, kept: the same float
    assert chosen["comprehensiveness"] == pytest.approx(expl.metrics["comprehensiveness"])


def test_auto_keeps_to_its_budget(stories):
    request = request_for("Once upon a time", method="auto", options={"budget_s": 0})
    expl = explain(request, backend=stories)
    auto = expl.auto
    assert [c["method"] for c in auto.candidates] == ["occlusion"]
    assert auto.skipped and "skipped for time" in nl.auto_reason(auto)
    assert "skipped for time" in nl.describe(expl)
