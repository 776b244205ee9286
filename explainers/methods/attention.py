"""Attention: the last layer's attention from the positions that predict the target onto each
prompt token, averaged over heads and target positions. Unsigned, and not a causal effect."""

from __future__ import annotations

import torch

from promptxray.explainers.context import MethodContext
from promptxray.explainers.gradients import torch_backend
from promptxray.explainers.registry import MethodResult, register


def layer_attentions(ctx: MethodContext) -> list[torch.Tensor]:
    """Per layer, attention weights [heads, L, L] over prompt + target[:-1]."""
    return torch_backend(ctx).attentions(ctx.input.ids + ctx.target_ids[:-1])


def from_target_to_prompt(ctx: MethodContext, matrix: torch.Tensor, layers: int) -> MethodResult:
    """Average the rows of the positions that predict target tokens, at the user's tokens."""
    start = len(ctx.input.ids) - 1
    rows = matrix[start : start + len(ctx.target_ids)]
    scores = rows[:, torch.tensor(ctx.input.positions)].mean(dim=0)
    return MethodResult(token_scores=scores.double().numpy(), details={"layers": layers})


@register(
    "attention",
    "last-layer attention from the answer's positions to each prompt token, averaged over heads",
    needs_attentions=True,
    score_kind="salience",
)
def attention(ctx: MethodContext) -> MethodResult:
    layers = layer_attentions(ctx)
    return from_target_to_prompt(ctx, layers[-1].mean(dim=0), len(layers))
