"""Attention: the last layer's attention from the positions that predict the target onto each
prompt token, averaged over heads and target positions. Unsigned, and not a causal effect.

Only those rows are computed: the prompt runs once without attention weights (keeping its
key/value cache) and the target positions with them, so memory stays linear in the prompt's
length (the whole map of every layer would be 17 GB for SmolLM2 at 4,000 tokens)."""

from __future__ import annotations

import torch

from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.gradients import torch_backend
from promptxray.explainers.methods.degrade import degrades_to_lines
from promptxray.explainers.registry import AutoCost, MethodResult, register


def first_target_row(ctx: MethodContext) -> int:
    """The position whose next-token prediction is target[0]: the prompt's last token."""
    return len(ctx.input.ids) - 1


def rows_to_prompt(ctx: MethodContext, rows: torch.Tensor, layers: int) -> MethodResult:
    """Average rows [T, L] (those of the positions that predict target tokens) at the user's
    tokens."""
    scores = rows[:, torch.tensor(ctx.input.positions)].mean(dim=0)
    return MethodResult(token_scores=scores.double().numpy(), details={"layers": layers})


@register(
    "attention",
    "last-layer attention from the answer's positions to each prompt token, averaged over heads",
    needs_attentions=True,
    contrastive=False,
    auto_cost=AutoCost(per_unit=0.0, fixed=1.0, order=2),
    score_kind=ScoreKind.SALIENCE,
)
@degrades_to_lines("attention")
def attention(ctx: MethodContext) -> MethodResult:
    rows = torch_backend(ctx).attention_rows(
        ctx.input.ids + ctx.target_ids[:-1], first_target_row(ctx), layers=[-1]
    )
    last = rows[-1]
    assert last is not None
    return rows_to_prompt(ctx, last.mean(dim=0), len(rows))
