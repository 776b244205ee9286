"""Gradient x input: the first-order estimate of each token's contribution, <grad, embedding>,
from one forward and one backward pass."""

from __future__ import annotations

from promptxray.explainers.context import MethodContext
from promptxray.explainers.gradients import embedding_gradients
from promptxray.explainers.methods.degrade import degrades_to_lines
from promptxray.explainers.registry import AutoCost, MethodResult, register


@register(
    "gradient_x_input",
    "gradient x input on input embeddings: a one-pass, first-order estimate of each token's effect",
    needs_gradients=True,
    auto_cost=AutoCost(per_unit=0.0, fixed=3.0, order=1),
)
@degrades_to_lines("gradient_x_input")
def gradient_x_input(ctx: MethodContext) -> MethodResult:
    embeds, grads = embedding_gradients(ctx)
    return MethodResult(token_scores=(embeds * grads).sum(-1).double().numpy())
