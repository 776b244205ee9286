"""Speed paths give the plain computation's numbers: prefix key/value reuse, hierarchical
(granularity="auto") attribution and incremental re-explanation, on stories260K and the
default model; and a 4,000-token prompt completes at line granularity."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from promptxray.explainers.explain import explain, prepare
from promptxray.explainers.units import group_units
from tests.helpers import F32_NATS, direct_target_logprob, request_for

STORY = (
    "Once upon a time, there was a little girl named Lily.\n"
    "She loved to play outside in the park with her red ball.\n"
    "One day, she saw a big dog near the tree.\n"
    "The dog wanted to play with the ball too."
)
SUPPORT = (
    "You are a support assistant for an online bookshop.\n"
    "Be polite and brief, and always ask for the order number.\n"
    "Customer: My copy of 'Dune' arrived with a torn cover.\n"
    "What should I do?"
)


def _scores(expl) -> np.ndarray:
    return np.array([s.score for s in expl.spans])


@pytest.fixture
def plain_and_reused(request):
    """Run a request twice on one backend: without, then with, prefix reuse."""

    def run(backend, text, **kw):
        req = request_for(text, faithfulness=False, **kw)
        backend.prefix_reuse = False
        try:
            plain = explain(req, backend=backend)
        finally:
            backend.prefix_reuse = True
        fast = explain(req, backend=backend)
        return plain, fast

    return run


@pytest.mark.parametrize("granularity", ["token", "word", "line"])
def test_prefix_reuse_matches_plain_occlusion(stories, plain_and_reused, granularity):
    plain, fast = plain_and_reused(stories, STORY, granularity=granularity)
    assert stories.prefix_reuse
    # removal scores with and without a prefix cache: two log-probs, each within F32_NATS
    assert np.abs(_scores(plain) - _scores(fast)).max() < 2 * F32_NATS


def test_prefix_reuse_matches_plain_occlusion_on_the_default_model(smol, plain_and_reused):
    plain, fast = plain_and_reused(smol, SUPPORT.splitlines()[2], granularity="word")
    assert smol.prefix_reuse
    assert np.abs(_scores(plain) - _scores(fast)).max() < 2 * F32_NATS  # as above


def test_prefix_reuse_matches_plain_masks(smol):
    """Random keep-masks (surrogate, Shapley, the faithfulness curves) share only part of a
    prefix: still the plain numbers."""
    _, prep = prepare(request_for(SUPPORT, granularity="word"), backend=smol)
    ctx = prep.ctx
    masks = np.random.default_rng(0).random((6, len(ctx.units))) < 0.6
    fast = ctx.score_masks(masks)
    variants = [ctx.ids_keeping(list(m)) for m in masks]
    smol.prefix_reuse = False
    try:
        plain = smol.target_logprobs(variants, ctx.target_ids).sum(axis=1)
    finally:
        smol.prefix_reuse = True
    assert np.abs(fast - plain).max() < F32_NATS  # log-probs with and without a prefix cache


def test_hierarchical_units_have_their_plain_leave_one_out_scores(smol):
    request = request_for(SUPPORT, granularity="auto", faithfulness=False)
    expl = explain(request, backend=smol)
    _, prep = prepare(request_for(SUPPORT, granularity="line"), backend=smol)
    ctx = prep.ctx
    covered = sorted(i for span in expl.spans for i in span.token_indices)
    assert covered == list(range(len(ctx.input.tokens)))  # a partition of the prompt
    kinds = expl.hierarchy.unit_kinds
    assert {"line", "word"} <= set(kinds) or {"line", "token"} <= set(kinds)
    target = [t.token_id for t in expl.target.tokens]
    base = direct_target_logprob(smol.model, ctx.input.ids, target)
    checked: dict[
        str, Any
    ] = {}  # one span of each level, the strongest: each against a plain forward
    for span, kind in zip(expl.spans, kinds, strict=True):
        if kind not in checked or abs(span.score) > abs(checked[kind].score):
            checked[kind] = span
    for span in checked.values():
        plain = base - direct_target_logprob(
            smol.model, ctx.ids_without(span.token_indices), target
        )
        assert span.score == pytest.approx(plain, abs=2 * F32_NATS)  # two log-probs
    # the line pass is kept, and equals plain line-level occlusion
    lines = group_units(prep.source, ctx.input.tokens, "line")
    line_plain = explain(request_for(SUPPORT, granularity="line", faithfulness=False), smol)
    assert expl.hierarchy.line_token_indices == lines
    line_scores = np.array(expl.hierarchy.line_scores)
    assert np.abs(line_scores - _scores(line_plain)).max() < 2 * F32_NATS  # removal scores


def test_auto_granularity_refines_only_what_matters(stories):
    long = "\n".join([STORY] * 6)
    expl = explain(request_for(long, granularity="auto", faithfulness=False), backend=stories)
    kinds = expl.hierarchy.unit_kinds
    assert kinds.count("line") >= len(long.splitlines()) - 8  # at most 8 lines are split
    word_level = explain(request_for(long, granularity="word", faithfulness=False), stories)
    assert expl.sequences_scored < word_level.sequences_scored


def test_incremental_reexplanation_reuses_and_matches_a_fresh_run(stories):
    stories.enable_score_cache()
    try:
        first = explain(request_for(STORY, granularity="line"), backend=stories)
        again = explain(request_for(STORY, granularity="line"), backend=stories)
        assert again.sequences_scored < first.sequences_scored  # nothing changed: all reused
        assert np.array_equal(_scores(first), _scores(again))
        edited = STORY.replace("too.", "with her.")
        reused_before = stories.prefix.reused_tokens
        inc = explain(request_for(edited, granularity="line"), backend=stories)
        assert stories.prefix.reused_tokens > reused_before  # the unchanged lines' prefix
    finally:
        stories.score_cache = None
    fresh = explain(request_for(edited, granularity="line"), backend=stories)
    assert np.abs(_scores(inc) - _scores(fresh)).max() < 2 * F32_NATS  # removal scores
    # a mean of probability drops P - P', each P = exp(log P) within F32_NATS relative: the
    # drops within 2 * F32_NATS of P <= 1
    comprehensiveness = fresh.metrics["comprehensiveness"]
    assert inc.metrics["comprehensiveness"] == pytest.approx(comprehensiveness, abs=2 * F32_NATS)


@pytest.mark.slow
def test_four_thousand_token_prompt_at_line_granularity(smol):
    paragraph = (
        "The committee reviewed the quarterly figures, the staffing plan and the budget for "
        "the new library wing, and asked the treasurer to report on each item in detail. "
    )
    lines = [paragraph * 6 for _ in range(22)]
    text = "\n".join(lines) + "\nIn one word, what did the committee review?"
    request = request_for(text, granularity="line", faithfulness=False, max_new_tokens=2)
    expl = explain(request, backend=smol)
    assert expl.input_tokens >= 4000
    assert len(expl.spans) == len(lines) + 1
    assert all(np.isfinite(s.score) for s in expl.spans)
