"""End to end: `promptxray explain --backend onnx` on the default model's int8 export."""

from __future__ import annotations

import json

import pytest

from .test_cli_default_model import CAPITAL, promptxray


@pytest.mark.slow
def test_default_model_int8_through_the_cli():
    """Exports into the cache on first use (minutes), then explains with ONNX Runtime.

    int8 flips this prompt's near-tied first answer token (torch: "The", P=0.15), so the
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
