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
