"""Gradient methods against autograd written here, and integrated gradients' completeness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promptxray.explainers.explain import explain
from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import parse_document
from tests.helpers import F32_NATS, request_for


def _reference_grads(backend, text: str, target: list[int]):
    """Embedding gradients of sum log p(target) from a plain forward/backward."""
    model_input = build_input(parse_document(text), backend)
    ids = torch.tensor([model_input.ids + target[:-1]])
    emb = backend.model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = backend.model(inputs_embeds=emb).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    start = len(model_input.ids) - 1
    score = torch.stack([logp[start + i, t] for i, t in enumerate(target)]).sum()
    score.backward()
    pos = model_input.positions
    return emb[0, pos].detach().double(), emb.grad[0, pos].double()


@pytest.mark.parametrize("name", ["stories", "smol"])
def test_gradient_x_input_and_saliency_match_autograd(name, request):
    backend = request.getfixturevalue(name)
    text = "Once upon a time there was a dog" if name == "stories" else "Name a red fruit."
    gxi = explain(request_for(text, method="gradient_x_input", max_new_tokens=3), backend=backend)
    target = [t.token_id for t in gxi.target.tokens]
    emb, grad = _reference_grads(backend, text, target)
    expected = (emb * grad).sum(-1).numpy()
    got = np.array([t.score for t in gxi.tokens])
    # a dot product over the embedding of float32 gradients through every layer: its error
    # scales with the sum of |e·g| it cancels (~2e-5 of it on 30 layers); allow 1e-3 of it
    bound = 1e-3 * (emb * grad).abs().sum(-1).numpy()
    np.testing.assert_array_less(np.abs(got - expected), bound)
    sal = explain(request_for(text, method="saliency", target=gxi.target.text), backend=backend)
    if [t.token_id for t in sal.target.tokens] == target:
        # norms of float32 gradients through every layer: ~6e-5 relative on 30; allow 1e-3
        np.testing.assert_allclose(
            [t.score for t in sal.tokens], grad.norm(dim=-1).numpy(), rtol=1e-3, atol=1e-5
        )


def test_integrated_gradients_completeness_on_default_model_32_steps(smol):
    expl = explain(
        request_for(
            "What is the capital of France?",
            method="integrated_gradients",
            options={"n_steps": 32, "max_steps": 32},
        ),
        backend=smol,
    )
    delta = expl.metrics["f_input_minus_f_baseline"]
    total = sum(t.score for t in expl.tokens)
    assert expl.details["n_steps"] == 32
    assert abs(total - delta) <= 0.05 * abs(delta)
    # the same float64 sum of the same scores: 1e-6 covers any summation order
    assert expl.metrics["completeness_error"] == pytest.approx(abs(total - delta), abs=1e-6)


def test_integrated_gradients_baseline_value_is_independent(stories):
    """f(baseline) recomputed here: the zero baseline replaces every user token's embedding."""
    text = "Once upon a time there was a cat"
    expl = explain(
        request_for(text, method="integrated_gradients", options={"baseline": "zero"}),
        backend=stories,
    )
    model_input = build_input(parse_document(text), stories)
    target = [t.token_id for t in expl.target.tokens]
    ids = torch.tensor([model_input.ids + target[:-1]])
    with torch.no_grad():
        emb = stories.model.get_input_embeddings()(ids)
        emb[0, model_input.positions] = 0
        logp = torch.log_softmax(stories.model(inputs_embeds=emb).logits[0].double(), -1)
    start = len(model_input.ids) - 1
    f_base = float(sum(logp[start + i, t] for i, t in enumerate(target)))
    # two log-probs from float32 forwards of another shape (kept logits, a mask)
    assert expl.metrics["f_input_minus_f_baseline"] == pytest.approx(
        expl.target.logprob - f_base, abs=2 * F32_NATS
    )


def test_attention_matches_eager_attention_and_restores_sdpa(stories):
    text = "Once upon a time there was a cat"
    before = stories.model.config._attn_implementation
    expl = explain(request_for(text, method="attention", max_new_tokens=3), backend=stories)
    assert stories.model.config._attn_implementation == before
    model_input = build_input(parse_document(text), stories)
    target = [t.token_id for t in expl.target.tokens]
    from transformers import AutoModelForCausalLM

    eager = AutoModelForCausalLM.from_pretrained(
        stories.model.name_or_path, attn_implementation="eager"
    )
    with torch.no_grad():
        att = eager(torch.tensor([model_input.ids + target[:-1]]), output_attentions=True)
    last = att.attentions[-1][0].mean(0)
    start = len(model_input.ids) - 1
    rows = last[start : start + len(target)][:, model_input.positions].mean(0)
    # means of float32 softmax probabilities (<= 1) from two attention kernels: ~1e-6 apart
    np.testing.assert_allclose([t.score for t in expl.tokens], rows.numpy(), rtol=0, atol=1e-5)
    rollout = explain(request_for(text, method="attention_rollout"), backend=stories)
    scores = [t.score for t in rollout.tokens]
    assert all(s >= 0 for s in scores) and sum(scores) <= 1 + 1e-6  # float32 shares of 1
