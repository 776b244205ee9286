"""End to end: `promptxray explain --backend onnx` on the default model's int8 export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .test_cli_default_model import CAPITAL, promptxray


@pytest.mark.slow
def test_default_model_int8_through_the_cli():
    """Exports into the cache on first use (minutes), then explains with ONNX Runtime.

    int8 may flip this prompt's near-tied first answer token (torch: "The", P=0.15), so the
    explanation is checked on torch's answer as a fixed target; generation is checked too."""
    answer = "The capital of France is Paris."
    generated = promptxray("explain", str(CAPITAL), "--backend", "onnx", "--format", "json")
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["target"]["text"].strip()
    result = promptxray(
        "explain", str(CAPITAL), "--backend", "onnx", "--format", "json", "--target", answer
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["backend"] == "onnx" and data["model"] == "SmolLM2-135M-Instruct (int8)"
    assert data["target"]["text"].strip() == answer and data["target"]["prob"] > 0.01
    source = CAPITAL.read_text()
    for token in data["tokens"]:
        assert source[token["start"] : token["end"]] == token["text"]
    top = max(data["spans"], key=lambda s: abs(s["score"]))
    assert top["text"].strip() in {"capital", "France"}
    refused = promptxray("explain", str(CAPITAL), "--backend", "onnx", "-m", "saliency")
    assert refused.returncode == 2 and "onnx backend" in refused.stderr


@pytest.mark.slow
def test_default_model_int8_export_is_the_explain_graph_and_faithful(smol):
    """The cached int8 export (made by the test above or here): explain graph, checksums,
    answer agreement on >= 20 prompts; its occlusion scores rank like torch fp32's, with the
    reference prompt's prefix reused; the fp32 reference answer is recorded when it differs."""
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.metrics import spearman
    from promptxray.explainers.types import ExplainRequest

    onnx = get_backend("onnx", None)
    assert onnx.manifest["graph"] == "explain" and onnx.prefix_reuse
    assert set(onnx.manifest["checksums"]) == {"model.onnx", "model.onnx.data"}
    agreement = onnx.answer_agreement
    assert agreement["prompts"] >= 20 and 0.5 <= agreement["same_answer"] <= 1.0
    text = CAPITAL.read_text()
    reference = explain(ExplainRequest(text=text, faithfulness=False), backend=smol)
    request = ExplainRequest(text=text, target=reference.target.text, faithfulness=False)
    int8 = explain(request, backend=onnx)
    scores = np.array([s.score for s in int8.spans])
    assert spearman(scores, np.array([s.score for s in reference.spans])) >= 0.9
    asked = ExplainRequest(text=text, faithfulness=False, options={"reference_answer": True})
    own = explain(asked, backend=onnx)
    check = own.answer_check
    assert check is not None and check.checked
    differs = own.target.text != reference.target.text
    assert (check.reference is not None) == differs
    if differs:
        assert check.reference is not None and check.reference.text == reference.target.text
