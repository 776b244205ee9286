"""Which models the hand-written Llama computations (packed scoring, the ONNX explain graph)
reimplement exactly: one check, shared by both."""

from __future__ import annotations

from typing import Any


def is_plain_llama(model: Any) -> bool:
    """A transformers Llama causal LM (SmolLM2, Llama, TinyLlama, stories...) without biases,
    soft-capping, sliding windows, tensor-parallel slicing or non-SiLU activations."""
    if type(model).__name__ != "LlamaForCausalLM":
        return False
    config = model.config
    inner = getattr(model, "model", None)
    return not (
        getattr(config, "model_type", "") != "llama"
        or getattr(config, "hidden_act", "") != "silu"
        or getattr(config, "attention_bias", False)
        or getattr(config, "mlp_bias", False)
        or (getattr(config, "pretraining_tp", 1) or 1) != 1
        or inner is None
        or not hasattr(inner, "rotary_emb")
        or getattr(model.lm_head, "bias", None) is not None
    )
