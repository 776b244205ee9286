"""Saliency: the L2 norm of the gradient at each token's embedding (how sensitive the target
is to that token; unsigned)."""

from __future__ import annotations

from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.gradients import embedding_gradients
from promptxray.explainers.methods.degrade import degrades_to_lines
from promptxray.explainers.registry import AutoCost, MethodResult, register


@register(
    "saliency",
    "gradient norm on input embeddings: how sensitive the answer is to each token (unsigned)",
    needs_gradients=True,
    score_kind=ScoreKind.SALIENCE,
    auto_cost=AutoCost(per_unit=0.0, fixed=3.0, order=3),
)
@degrades_to_lines("saliency")
def saliency(ctx: MethodContext) -> MethodResult:
    _, grads = embedding_gradients(ctx)
    return MethodResult(token_scores=grads.norm(dim=-1).double().numpy())
