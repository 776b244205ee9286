"""The packed scoring path (explainers/backends/packed.py) gives the plain computation's
numbers: each row runs only its own suffix after its own shared prefix, rows packed without
padding, attention split into prefix and own-suffix parts. Checked against plain padded
forwards (`prefix_reuse=False`), the transformers prefix path and unbatched forwards, on
stories260K and the default model. The bf16 preview precision is approximate by design: it
is checked to be close, never served from the fp32 score cache, and switched back after."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promptxray.explainers.backends.packed import supports_packed
from promptxray.explainers.explain import explain, prepare
from tests.explainers.test_speed import STORY, SUPPORT  # the same prompts, one definition
from tests.helpers import F32_NATS, direct_target_logprob, request_for


def _variants(backend, text, granularity):
    _, prep = prepare(request_for(text, granularity=granularity), backend=backend)
    ctx = prep.ctx
    return ctx, [ctx.ids_without(unit) for unit in ctx.units]


def _score(backend, variants, ctx, *, packed=True, reuse=True):
    before = backend.packed_scoring, backend.prefix_reuse
    backend.packed_scoring, backend.prefix_reuse = packed, reuse
    try:
        return backend.target_logprobs(variants, ctx.target_ids, reference=ctx.input.ids)
    finally:
        backend.packed_scoring, backend.prefix_reuse = before


def test_the_test_models_take_the_packed_path(stories, smol):
    assert stories.packed is not None and smol.packed is not None
    assert stories.packed.group == 2 and smol.packed.group == 3  # grouped-query attention
    assert not supports_packed(object())


@pytest.mark.parametrize("granularity", ["token", "word", "line"])
def test_packed_equals_plain_padded_forwards(stories, granularity):
    ctx, variants = _variants(stories, STORY, granularity)
    packed = _score(stories, variants, ctx)
    plain = _score(stories, variants, ctx, reuse=False)
    suffixes = _score(stories, variants, ctx, packed=False)  # transformers, one prefix a batch
    # log-probs from three forwards of other shapes (packed, padded, one prefix a batch)
    assert np.abs(packed - plain).max() < F32_NATS
    assert np.abs(packed - suffixes).max() < F32_NATS


def test_packed_rows_equal_unbatched_forwards(stories):
    """Rows with different prefix lengths and target lengths 1 and 3, several forwards (a
    tiny token budget), each row against its own plain forward."""
    ctx, variants = _variants(stories, STORY, "token")
    before = stories.max_batch_tokens
    stories.max_batch_tokens = 24
    try:
        for target in (ctx.target_ids[:1], ctx.target_ids[:3]):
            passes = stories.counters.forward_passes
            got = stories.target_logprobs(variants, target, reference=ctx.input.ids).sum(axis=1)
            assert stories.counters.forward_passes - passes > 2
            for i in (0, 1, len(variants) // 2, len(variants) - 1):
                want = direct_target_logprob(stories.model, variants[i], target)
                assert got[i] == pytest.approx(want, abs=F32_NATS)  # packed vs unbatched
    finally:
        stories.max_batch_tokens = before


def test_packed_rows_with_and_without_a_prefix(stories):
    """The packed forward itself: a row with no prefix (attention over its own tokens only),
    rows continuing 3 and 9 reference positions, each equal to its unbatched forward."""
    ctx, _ = _variants(stories, STORY, "token")
    ref, target = ctx.input.ids, ctx.target_ids[:2]
    kv = stories.prefix.get(ref)
    rows = [[5, 17, 300, 41], ref[3:14], [*ref[9:12], 77]]
    prefixes = [0, 3, 9]
    got = stories.packed.target_logprobs([r + target[:-1] for r in rows], prefixes, kv, target)
    for row, p, scores in zip(rows, prefixes, got.sum(dim=1).tolist(), strict=True):
        want = direct_target_logprob(stories.model, ref[:p] + row, target)
        assert scores == pytest.approx(want, abs=F32_NATS)  # packed vs unbatched


def test_packed_forwards_stay_within_the_memory_budget(stories, monkeypatch):
    """A budget of about three rows' logits splits the rows into more forwards; same scores."""
    from promptxray.explainers.backends import torch_backend

    ctx, variants = _variants(stories, STORY, "word")
    full = _score(stories, variants, ctx)
    passes = stories.counters.forward_passes
    row = stories.packed.bytes_per_row(len(ctx.target_ids))
    monkeypatch.setattr(torch_backend, "memory_budget", lambda: 3 * row)
    split = _score(stories, variants, ctx)
    assert stories.counters.forward_passes - passes >= len(variants) // 3
    assert np.abs(split - full).max() < F32_NATS  # log-probs in other batch shapes


def test_packed_matches_plain_for_random_keep_masks(stories):
    _, prep = prepare(request_for(STORY, granularity="word"), backend=stories)
    ctx = prep.ctx
    masks = np.random.default_rng(1).random((10, len(ctx.units))) < 0.7
    variants = [ctx.ids_keeping(list(m)) for m in masks]
    packed = _score(stories, variants, ctx)
    plain = _score(stories, variants, ctx, reuse=False)
    assert np.abs(packed - plain).max() < F32_NATS  # packed vs padded log-probs


def test_packed_line_occlusion_on_the_default_model(smol):
    ctx, variants = _variants(smol, SUPPORT, "line")
    packed = _score(smol, variants, ctx)
    plain = _score(smol, variants, ctx, reuse=False)
    assert np.abs(packed - plain).max() < F32_NATS  # packed vs padded log-probs
    full = direct_target_logprob(smol.model, ctx.input.ids, ctx.target_ids)
    expl = explain(request_for(SUPPORT, granularity="line", faithfulness=False), backend=smol)
    scores = [s.score for s in expl.spans]
    # removal scores against an unbatched and a padded forward: two log-probs (1.3e-4 seen)
    assert scores == pytest.approx(list(full - plain.sum(axis=1)), abs=2 * F32_NATS)


def test_bf16_preview_is_close_and_kept_apart(stories):
    if "bf16" not in stories.scoring_precisions:
        pytest.skip("no fast bfloat16 on this machine")
    ctx, variants = _variants(stories, STORY, "line")
    stories.enable_score_cache()
    try:
        exact = stories.target_logprobs(variants, ctx.target_ids, reference=ctx.input.ids)
        sequences = stories.counters.sequences
        with stories.precision("bf16"):
            assert stories.scoring_precision == "bf16"
            approx = stories.target_logprobs(variants, ctx.target_ids, reference=ctx.input.ids)
        assert stories.counters.sequences - sequences >= len(variants)  # not the fp32 cache
        again = stories.target_logprobs(variants, ctx.target_ids, reference=ctx.input.ids)
    finally:
        stories.score_cache = None
    assert stories.scoring_precision == "fp32"
    assert torch.backends.mkldnn.matmul.fp32_precision in ("none", "ieee")  # type: ignore[attr-defined]
    assert np.array_equal(exact, again)
    assert 0 < np.abs(approx - exact).max() < 0.5
    stories.packed_scoring = False  # the transformers path offers the same preview
    try:
        with stories.precision("bf16"):
            slow = stories.target_logprobs(variants, ctx.target_ids, reference=ctx.input.ids)
    finally:
        stories.packed_scoring = True
    assert torch.backends.mkldnn.matmul.fp32_precision in ("none", "ieee")  # type: ignore[attr-defined]
    assert np.abs(slow - exact).max() < 0.5


def test_unknown_precision_is_refused(stories):
    with pytest.raises(ValueError, match="fp32"), stories.precision("int3"):
        pass
