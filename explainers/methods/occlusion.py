"""Occlusion (leave-one-out): a unit's score is how much the target's log-probability drops
when that token, word or line is removed. All variants run in batched forwards."""

from __future__ import annotations

from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.registry import AutoCost, MethodResult, register


@register(
    "occlusion",
    "leave-one-out: the drop in the target's log-probability when a token, word or line is removed",
    score_kind=ScoreKind.REMOVAL,
    leave_one_out=True,
    auto_cost=AutoCost(per_unit=1.0, fixed=0.0, order=0),
)
def occlusion(ctx: MethodContext) -> MethodResult:
    variants = [ctx.ids_without(unit) for unit in ctx.units]
    ablated = ctx.score_variants(variants)
    return MethodResult(
        unit_scores=ctx.base_score - ablated,
        ablated_logprob=[float(x) for x in ablated],
    )
