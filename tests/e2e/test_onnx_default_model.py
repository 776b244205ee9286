"""End to end: `promptxray explain --backend onnx` on the default model's int8 export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .test_cli_default_model import CAPITAL, promptxray


@pytest.mark.slow
def test_default_model_onnx_through_the_cli(smol):
    """Exports into the cache on first use (the GGUF file's own blocks on ONNX Runtime's fused
    graph, about a minute), then explains with ONNX Runtime: on examples/capital.prompt it
    answers what torch answers, and its top part is torch's."""
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    torch_answer = explain(ExplainRequest(text=CAPITAL.read_text()), backend=smol).target.text
    result = promptxray("explain", str(CAPITAL), "--backend", "onnx", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["backend"] == "onnx" and data["model"] == "SmolLM2-135M-Instruct (gguf)"
    assert data["target"]["text"] == torch_answer
    source = CAPITAL.read_text()
    for token in data["tokens"]:
        assert source[token["start"] : token["end"]] == token["text"]
    top = max(data["spans"], key=lambda s: abs(s["score"]))
    assert top["text"].strip() in {"capital", "France"}
    refused = promptxray("explain", str(CAPITAL), "--backend", "onnx", "-m", "saliency")
    assert refused.returncode == 2 and "onnx backend" in refused.stderr


@pytest.mark.slow
def test_default_model_export_is_lossless_and_equals_torch(smol):
    """The cached default export (made by the test above or here): the fused graph over the
    GGUF blocks, checksums, the same greedy answer as fp32 torch on all 24 prompts; occlusion
    scores within 1e-3 nats of torch's on the same target, with each variant run after its own
    shared prefix, and that reuse equal to the plain computation within 1e-4."""
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.explain import explain
    from promptxray.explainers.types import ExplainRequest

    onnx = get_backend("onnx", None)
    manifest = onnx.manifest
    assert manifest["graph"] == "fused" and manifest["quantization"] == "gguf"
    assert manifest["quantizer"]["lossless"] and onnx.prefix_reuse
    assert set(manifest["checksums"]) == {"model.onnx", "model.onnx.data"}
    agreement = onnx.answer_agreement
    assert agreement["prompts"] == 24 and agreement["same_answer"] == 1.0
    assert manifest["verification"]["max_abs_logit_diff"] < 1e-2
    text = CAPITAL.read_text()
    reference = explain(ExplainRequest(text=text, faithfulness=False), backend=smol)
    request = ExplainRequest(text=text, target=reference.target.text, faithfulness=False)
    fused = explain(request, backend=onnx)
    ours = np.array([s.score for s in fused.spans])
    assert np.abs(ours - np.array([s.score for s in reference.spans])).max() < 1e-3
    assert abs(fused.target.logprob - reference.target.logprob) < 1e-3
    # each variant after its own prefix of the reference == every variant from scratch
    ids = smol.encode(text, add_special_tokens=False)[0]
    target = smol.encode_target(reference.target.text)
    variants = [ids[:i] + ids[i + 1 :] for i in range(len(ids) - 12, len(ids) - 2)]
    reused = onnx.target_logprobs(variants, target, reference=ids)
    onnx.prefix_reuse = False
    try:
        plain = onnx.target_logprobs(variants, target, reference=ids)
    finally:
        onnx.prefix_reuse = True
    assert np.abs(reused - plain).max() < 1e-4
    assert np.abs(reused - smol.target_logprobs(variants, target, reference=ids)).max() < 1e-3
    # the answer is torch's: asking for fp32's answer finds nothing different
    asked = ExplainRequest(text=text, faithfulness=False, options={"reference_answer": True})
    own = explain(asked, backend=onnx)
    assert own.target.text == reference.target.text
    check = own.answer_check
    assert check is not None and check.checked and check.reference is None
