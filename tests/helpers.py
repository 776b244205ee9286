"""Independent reference computations for tests: plain forwards, no padding, no batching."""

from __future__ import annotations

import torch


def direct_target_logprob(model, prompt_ids: list[int], target_ids: list[int]) -> float:
    """Sum of log p(target | prompt) from one unpadded forward written independently."""
    ids = torch.tensor([prompt_ids + target_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    start = len(prompt_ids) - 1
    return float(sum(logp[start + i, t] for i, t in enumerate(target_ids)))


def request_for(text: str, **kwargs):
    from promptxray.explainers.types import ExplainRequest

    return ExplainRequest(text=text, **kwargs)


F32_NATS = 1e-4
"""Bound on a log-probability computed by float32 forwards of another batch shape, padding,
prefix cache or attention kernel: they agree to ~1e-5 nats (4e-5 seen on the 30-layer default
model); allow 1e-4 nats. A removal score, the difference of two such, gets 2 * F32_NATS."""

GPU_NATS = 1e-3
"""Bound on a log-probability from a float32 forward on a GPU (cuBLAS, or a vLLM engine's own
kernels and log-prob code) against the CPU torch backend: 1e-3 nats. Twice that for a removal
score."""
