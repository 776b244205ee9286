"""Long prompts within memory: results under a forced small memory budget equal the plain
computation (chunked integrated gradients, checkpointed gradients, attention read one layer at
a time or only its target rows), and a method that cannot fit degrades to line-level occlusion
with its reason instead of crashing. Tiny model only; the 4,000-token figures are in bench/."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from promptxray.explainers.backends import base, memory
from promptxray.explainers.errors import MemoryLimitError
from promptxray.explainers.explain import explain
from promptxray.explainers.inputs import build_input
from promptxray.explainers.methods.attention_rollout import rollout
from promptxray.explainers.prompt.document import parse_document
from tests.helpers import F32_NATS, request_for

TEXT = "Once upon a time there was a cat.\nThe cat had a red ball.\nOne day the ball was lost."
TARGET = " She"


def _ids(backend, target_text: str = TARGET) -> tuple[list[int], list[int]]:
    model_input = build_input(parse_document(TEXT), backend)
    return model_input.ids, backend.encode_target(target_text)


def _scores(expl) -> np.ndarray:
    return np.array([t.score for t in expl.tokens])


def _run(backend, method: str, granularity: str = "token", **options: Any):
    request = request_for(
        TEXT,
        method=method,
        target=TARGET,
        granularity=granularity,
        faithfulness=False,
        options=options,
    )
    return explain(request, backend=backend)


def _count_calls(monkeypatch, owner, name: str) -> list[int]:
    calls: list[int] = []
    inner = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


# --- gradients ----------------------------------------------------------------------------------


def test_integrated_gradients_chunked_by_memory_equals_one_batch(stories, monkeypatch):
    options: dict[str, Any] = {"quadrature": "gauss-legendre", "n_steps": 8, "max_steps": 8}
    whole = _run(stories, "integrated_gradients", **options)
    ids, target = _ids(stories)
    width = len(ids) + len(target) - 1
    row = memory.gradient_row_bytes(stories.model, width, len(target))
    monkeypatch.setattr(base, "memory_budget", lambda: 3 * row)  # three path points a backward
    backwards = _count_calls(monkeypatch, type(stories), "logprobs_from_embeds")
    chunked = _run(stories, "integrated_gradients", **options)
    assert len(backwards) == 1 + 3  # f(baseline), then 8 points in chunks of 3, 3, 2
    # float32 sums in another batch shape: ~1e-6 relative (of the largest score), allow 1e-5
    scale = np.abs(_scores(whole)).max()
    np.testing.assert_allclose(_scores(chunked), _scores(whole), rtol=1e-5, atol=1e-5 * scale)
    assert chunked.metrics["completeness_error"] == pytest.approx(
        whole.metrics["completeness_error"],
        rel=1e-5,  # the same float32 sums: 1e-5 relative
    )
    assert "degraded" not in chunked.details


def test_checkpointed_gradient_equals_plain_gradient(stories, monkeypatch):
    plain = _run(stories, "gradient_x_input")
    ids, target = _ids(stories)
    width = len(ids) + len(target) - 1
    whole = memory.gradient_row_bytes(stories.model, width, len(target))
    lean = memory.gradient_row_bytes(stories.model, width, len(target), checkpointed=True)
    assert lean < whole
    # one plain backward no longer fits; a checkpointed one does
    monkeypatch.setattr(memory, "single_limit", lambda: (lean + whole) // 2)
    recomputed = _count_calls(monkeypatch, torch.utils.checkpoint, "checkpoint")
    lean_run = _run(stories, "gradient_x_input")
    assert len(recomputed) == stories.model.config.num_hidden_layers  # every layer, once
    # the same float32 forward, recomputed: gradient sums to 1e-5 of the largest score
    scale = np.abs(_scores(plain)).max()
    np.testing.assert_allclose(_scores(lean_run), _scores(plain), rtol=1e-5, atol=1e-5 * scale)
    assert "degraded" not in lean_run.details
    # the layers are restored afterwards: a plain run again
    monkeypatch.undo()
    again = _count_calls(monkeypatch, torch.utils.checkpoint, "checkpoint")
    _run(stories, "gradient_x_input")
    assert not again


def test_gradient_plan_shrinks_then_checkpoints_then_refuses(stories, monkeypatch):
    model = stories.model
    whole = memory.gradient_row_bytes(model, 100, 2)
    lean = memory.gradient_row_bytes(model, 100, 2, checkpointed=True)
    monkeypatch.setattr(memory, "single_limit", lambda: 10 * whole)
    monkeypatch.setattr(memory, "budget_bytes", lambda: 4 * whole)
    assert memory.gradient_plan(model, 100, 2, 32) == memory.GradientPlan(4, False, whole)
    assert memory.gradient_plan(model, 100, 2, 2).rows == 2
    monkeypatch.setattr(memory, "single_limit", lambda: lean)
    monkeypatch.setattr(memory, "budget_bytes", lambda: lean)
    assert memory.gradient_plan(model, 100, 2, 32) == memory.GradientPlan(1, True, lean)
    monkeypatch.setattr(memory, "single_limit", lambda: lean - 1)
    with pytest.raises(MemoryLimitError, match="at 100 tokens"):
        memory.gradient_plan(model, 100, 2, 32)


# --- attention ----------------------------------------------------------------------------------


def test_attention_one_layer_at_a_time_equals_all_layers_at_once(stories):
    ids, target = _ids(stories)
    seq = ids + target[:-1]
    at_once = stories.attentions(seq)
    one_by_one: dict[int, torch.Tensor] = {}
    layers = stories.attention_maps(seq, lambda i, w: one_by_one.__setitem__(i, w.clone()))
    assert layers == len(at_once) == stories.model.config.num_hidden_layers
    for i, full in enumerate(at_once):
        # probabilities <= 1 from the same kernels: float32's step at 1.0 is 1.2e-7
        torch.testing.assert_close(one_by_one[i], full, rtol=0, atol=1e-6)


def test_attention_rows_from_a_cached_prefix_equal_the_full_maps(stories):
    ids, target = _ids(stories, " She was sad")
    seq = ids + target[:-1]
    first = len(ids) - 1
    at_once = stories.attentions(seq)
    rows = stories.attention_rows(seq, first)
    for full, part in zip(at_once, rows, strict=True):
        assert part is not None and part.shape == (full.shape[0], len(seq) - first, len(seq))
        # the prefix ran with SDPA, the full maps with eager attention: float32 softmax
        # probabilities (<= 1) from two kernels, ~1e-6 apart; allow 1e-5
        torch.testing.assert_close(part, full[:, first:], rtol=0, atol=1e-5)
    only_last = stories.attention_rows(seq, first, layers=[-1])
    assert only_last[-1] is not None and all(r is None for r in only_last[:-1])


def test_attention_method_equals_the_all_at_once_computation(stories):
    expl = _run(stories, "attention")
    ids, target = _ids(stories)
    last = stories.attentions(ids + target[:-1])[-1].mean(dim=0)
    start = len(ids) - 1
    positions = build_input(parse_document(TEXT), stories).positions
    expected = last[start : start + len(target)][:, positions].mean(dim=0).double().numpy()
    # means of probabilities (<= 1), rows after an SDPA prefix against eager maps: as above
    np.testing.assert_allclose(_scores(expl), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("store", [True, False])
def test_rollout_stored_or_streamed_equals_the_full_product(stories, monkeypatch, store):
    ids, target = _ids(stories, " She was sad")
    seq = ids + target[:-1]
    full = rollout(stories.attentions(seq))
    start = len(ids) - 1
    positions = build_input(parse_document(TEXT), stories).positions
    expected = full[start : start + len(target)][:, positions].mean(dim=0).double().numpy()
    if not store:  # every layer's map over the batch budget: multiply as they come
        square = 4 * len(seq) ** 2
        monkeypatch.setattr(memory, "budget_bytes", lambda: square)
    expl = explain(
        request_for(TEXT, method="attention_rollout", target=" She was sad", faithfulness=False),
        backend=stories,
    )
    assert expl.details["rollout"] == ("stored" if store else "streamed")
    # products of row-stochastic float32 maps (entries <= 1): ~1e-7 a layer; allow 1e-6
    np.testing.assert_allclose(_scores(expl), expected, rtol=0, atol=1e-6)


# --- degradation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["gradient_x_input", "saliency", "integrated_gradients", "attention_rollout"]
)
def test_a_method_that_cannot_fit_degrades_to_line_occlusion(stories, monkeypatch, method):
    lines = _run(stories, "occlusion", granularity="line")
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 10)
    monkeypatch.setattr(base, "memory_budget", lambda: 1 << 10)
    expl = _run(stories, method, granularity="line")
    reason = expl.degraded
    assert reason is not None
    assert method in reason and "did not fit in memory" in reason and "line-level" in reason
    from promptxray.explainers import nl

    assert nl.summary(expl).startswith(f"Note: {reason}.")  # said first, wherever it is read
    assert expl.details["degraded_to"] == "occlusion"
    assert expl.details["memory_needed_bytes"] > expl.details["memory_available_bytes"] == 1024
    assert [s.text for s in expl.spans] == [s.text for s in lines.spans]
    # removal scores from float32 forwards batched under another memory budget: 2 log-probs
    np.testing.assert_allclose(
        [s.score for s in expl.spans], [s.score for s in lines.spans], rtol=0, atol=2 * F32_NATS
    )
    # finer units share their line's score
    tokens = _run(stories, method, granularity="token")
    assert tokens.degraded is not None
    # the same line scores, split and summed again: each within 2 * F32_NATS as above
    total = sum(s.score for s in lines.spans)
    bound = 2 * F32_NATS * len(lines.spans)
    assert sum(_scores(tokens)) == pytest.approx(total, abs=bound)
    with pytest.raises(MemoryLimitError, match=r"1\.0 KiB of memory available"):
        _run(stories, method, memory_fallback="false")


def test_attention_fits_without_a_full_map(stories, monkeypatch):
    """The attention method reads only its target rows after a cached prefix: it runs where
    a single [L, L] layer map would not fit."""
    ids, target = _ids(stories)
    width = len(ids) + len(target) - 1
    one_layer = memory.attention_layer_bytes(stories.model, width, width)
    monkeypatch.setattr(memory, "single_limit", lambda: one_layer - 1)
    expl = _run(stories, "attention")
    assert "degraded" not in expl.details
    with pytest.raises(MemoryLimitError):
        stories.attention_maps(ids + target[:-1], lambda i, w: None)
