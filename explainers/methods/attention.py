"""Attention: the last layer's attention from the positions that predict the target onto each
prompt token, averaged over heads and target positions. Unsigned, and not a causal effect."""

from __future__ import annotations

import torch

from promptxray.explainers.context import MethodContext
from promptxray.explainers.gradients import torch_backend
from promptxray.explainers.registry import MethodResult, register


def target_queries(ctx: MethodContext) -> list[int]:
    """Positions whose next-token prediction is a target token."""
    start = len(ctx.input.ids) - 1
    return list(range(start, start + len(ctx.target_ids)))


@register(
    "attention",
    "last-layer attention from the answer's positions to each prompt token, averaged over heads",
    needs_attentions=True,
)
def attention(ctx: MethodContext) -> MethodResult:
    layers = torch_backend(ctx).attentions(ctx.input.ids + ctx.target_ids[:-1])
    last = layers[-1].mean(dim=0)
    rows = last[target_queries(ctx)]
    scores = rows[:, torch.tensor(ctx.input.positions)].mean(dim=0)
    return MethodResult(token_scores=scores.double().numpy(), details={"layers": len(layers)})
