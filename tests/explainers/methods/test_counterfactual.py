"""Counterfactual edits really change the greedy answer when rerun independently, are minimal in
size, and the method runs on any backend that gives next-token logits (ONNX-style included)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import promptxray.explainers.methods.counterfactual  # noqa: F401  (registers the method)
from promptxray.explainers.backends.base import Backend, PaddedBatch
from promptxray.explainers.backends.onnx_backend import OnnxBackend, OnnxRunner
from promptxray.explainers.details import Edit
from promptxray.explainers.errors import UnsupportedMethodError
from promptxray.explainers.explain import explain
from promptxray.explainers.inputs import build_input
from promptxray.explainers.prompt.document import parse_document
from promptxray.explainers.units import group_units
from tests.helpers import direct_target_logprob, request_for

FRANCE = "What is the capital of France?"
STORY = "Once upon a time there was a little girl named"


def direct_next_token(model, ids: list[int]) -> int:
    """Greedy next token from one unpadded forward, written independently of the explainer."""
    with torch.no_grad():
        return int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())


def rebuilt_ids(backend, text: str, granularity: str, edits: list[Edit]) -> list[int]:
    """The edited prompt ids, rebuilt from the original ids and the reported edits."""
    model_input = build_input(parse_document(text), backend)
    units = group_units(text, model_input.tokens, granularity)
    drop: set[int] = set()
    put: dict[int, int] = {}
    for edit in edits:
        positions = [model_input.positions[i] for i in units[edit.unit]]
        drop.update(positions)
        if edit.action == "replace":
            put[min(positions)] = edit.replacement_id
    return [put.get(p, t) for p, t in enumerate(model_input.ids) if p not in drop or p in put]


def check_counterfactuals(backend, text: str, granularity: str, expl) -> None:
    target = [t.token_id for t in expl.target.tokens]
    found = expl.counterfactuals.found
    assert expl.metrics["counterfactuals_found"] == len(found)
    for cf in found:
        assert len(cf.edits) == expl.metrics["counterfactual_min_edits"]
        ids = rebuilt_ids(backend, text, granularity, cf.edits)
        assert cf.ids == ids
        assert direct_next_token(backend.model, ids) != target[0], cf.prompt
        regenerated = backend.generate(ids, len(target))
        assert regenerated == cf.new_target_ids
        assert regenerated[0] != target[0]
        assert cf.new_target == backend.decode(regenerated)
        new_lp = direct_target_logprob(backend.model, ids, regenerated)
        old_lp = direct_target_logprob(backend.model, ids, target)
        # P = exp(log P): the search scores candidates in padded float32 batches, observed
        # 1.3e-4 nats from a direct forward; 1e-3 nats is 1e-3 relative in P (abs: P ~ 0)
        assert cf.new_target_prob == pytest.approx(math.exp(new_lp), rel=1e-3, abs=1e-9)
        assert cf.original_target_prob == pytest.approx(math.exp(old_lp), rel=1e-3, abs=1e-9)
        expected = text
        for edit in sorted(cf.edits, key=lambda e: -e.unit):  # right to left
            assert edit.action in ("remove", "replace")
            span = expl.spans[edit.unit]
            assert edit.text == span.text
            start = min(expl.tokens[i].start for i in span.token_indices)
            end = max(expl.tokens[i].end for i in span.token_indices)
            expected = expected[:start] + (edit.replacement or "") + expected[end:]
        assert cf.prompt == expected


def test_france_counterfactuals_change_the_greedy_answer(smol):
    expl = explain(request_for(FRANCE, method="counterfactual", granularity="word"), backend=smol)
    assert expl.counterfactuals.found, "no counterfactual found for the France prompt"
    assert expl.metrics["counterfactual_min_edits"] >= 1
    check_counterfactuals(smol, FRANCE, "word", expl)
    json.dumps(expl.details)


def test_stories_shape_options_and_occlusion_scores(stories):
    expl = explain(
        request_for(STORY, method="counterfactual", granularity="word", options={"limit": 2}),
        backend=stories,
    )
    occl = explain(request_for(STORY, method="occlusion", granularity="word"), backend=stories)
    # the same occlusion forwards in the same batch shapes: float rounding only, 1e-6 nats
    assert [s.score for s in expl.spans] == pytest.approx([s.score for s in occl.spans], abs=1e-6)
    assert set(expl.metrics) >= {
        "counterfactuals_found",
        "counterfactual_min_edits",
        "counterfactual_candidates_checked",
    }
    assert 1 <= len(expl.counterfactuals.found) <= 2
    assert expl.metrics["counterfactual_candidates_checked"] >= 1
    check_counterfactuals(stories, STORY, "word", expl)
    json.dumps(expl.details)

    removal_only = explain(
        request_for(
            STORY,
            method="counterfactual",
            options={"alternatives": 0, "max_units": 3, "max_edits": 3},
        ),
        backend=stories,
    )
    for cf in removal_only.counterfactuals.found:
        assert all(e.action == "remove" for e in cf.edits)
        assert {e.unit for e in cf.edits} <= set(removal_only.counterfactuals.ranked_units)
    assert len(removal_only.counterfactuals.ranked_units) == 3
    # Removing one of the 3 top units gives at most 3 candidates of size 1, and so on.
    assert removal_only.metrics["counterfactual_candidates_checked"] <= 3 + 3 + 1


class TorchLogitsRunner(OnnxRunner):
    """An ONNX runner of the plain logits graph whose logits come from a torch model."""

    def __init__(self, model) -> None:
        self.graph = "logits"
        self.torch_model = model

    def logits(self, batch: PaddedBatch) -> np.ndarray:
        with torch.no_grad():
            out = self.torch_model(
                input_ids=torch.from_numpy(batch.input_ids),
                attention_mask=torch.from_numpy(batch.attention_mask),
                position_ids=torch.from_numpy(batch.position_ids),
            )
        return out.logits.numpy()


class TorchLogitsOnnx(OnnxBackend):
    """The ONNX backend's code paths (scoring, generation without a KV cache, full logits),
    with the logits computed by the torch stories model instead of an exported file."""

    def __init__(self, torch_backend) -> None:
        Backend.__init__(
            self, torch_backend.tokenizer, "stories-as-onnx", torch_backend.context_length
        )
        self.runner = TorchLogitsRunner(torch_backend.model)
        self.graph = "logits"
        self.prefix_reuse = False
        self.shape: dict[str, int] = {}
        self.manifest: dict[str, object] = {}


def test_runs_on_the_onnx_code_path(stories):
    onnx_like = TorchLogitsOnnx(stories)
    assert onnx_like.name == "onnx" and not onnx_like.capabilities.gradients
    expl = explain(request_for(STORY, method="counterfactual"), backend=onnx_like)
    found = expl.counterfactuals.found
    assert found and any(e.action == "replace" for cf in found for e in cf.edits)
    target = [t.token_id for t in expl.target.tokens]
    for cf in found:  # verified on the real torch model
        assert direct_next_token(stories.model, cf.ids) != target[0]


class NoLogitsBackend(Backend):
    """A backend that scores targets and generates but exposes no next-token logits."""

    name = "scoring-only"

    def __init__(self, inner) -> None:
        super().__init__(inner.tokenizer, "scoring-only", inner.context_length)
        self.inner = inner

    def _run_logprobs(self, batch: PaddedBatch, target: list[int]) -> np.ndarray:
        return self.inner._run_logprobs(batch, target)

    def generate(self, ids, max_new_tokens):
        return self.inner.generate(ids, max_new_tokens)


def test_backend_without_logits_is_refused_clearly(stories):
    with pytest.raises(UnsupportedMethodError, match="next-token logits"):
        explain(request_for(STORY, method="counterfactual"), backend=NoLogitsBackend(stories))
