"""Attention rollout (Abnar & Zuidema, 2020): attention composed through all layers, with the
residual connection modelled as 0.5 * identity, read from the answer's positions.

Maps are read one layer at a time (never all layers' [heads, L, L] at once). When every
layer's head-averaged map fits the memory budget they are kept and only the answer's rows are
multiplied down through them (cheap); otherwise full maps are multiplied as they come (three
[L, L] maps live, layers * L^3 work). Both equal the product of all layers' maps."""

from __future__ import annotations

import torch

from promptxray.explainers.backends.memory import rollout_plan
from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.gradients import torch_backend
from promptxray.explainers.methods.attention import first_target_row, rows_to_prompt
from promptxray.explainers.methods.degrade import degrades_to_lines
from promptxray.explainers.registry import MethodResult, register


def mixed(layer: torch.Tensor) -> torch.Tensor:
    """Row-normalised 0.5 * head-mean attention + 0.5 * I, for one layer [heads, L, L]."""
    out = 0.5 * layer.mean(dim=0)
    out.diagonal().add_(0.5)
    return out / out.sum(dim=-1, keepdim=True)


def rollout(layers: list[torch.Tensor]) -> torch.Tensor:
    """Product over layers of row-normalised (0.5 * head-mean attention + 0.5 * I)."""
    n = layers[0].shape[-1]
    eye = torch.eye(n)
    result = eye
    for layer in layers:
        mix = 0.5 * layer.mean(dim=0) + 0.5 * eye
        mix = mix / mix.sum(dim=-1, keepdim=True)
        result = mix @ result
    return result


def rollout_rows(
    ctx: MethodContext, ids: list[int], start: int, count: int, store: bool
) -> tuple[torch.Tensor, int]:
    """Rows start..start+count of the rollout of `ids`, and the number of layers."""
    backend = torch_backend(ctx)
    maps: list[torch.Tensor] = []
    product: list[torch.Tensor] = []

    def keep(_layer: int, weights: torch.Tensor) -> None:
        maps.append(mixed(weights))

    def compose(_layer: int, weights: torch.Tensor) -> None:
        mix = mixed(weights)
        product[:] = [mix @ product[0] if product else mix]

    layers = backend.attention_maps(ids, keep if store else compose)
    if not store:
        return product[0][start : start + count], layers
    rows = maps.pop()[start : start + count]
    while maps:
        rows = rows @ maps.pop()
    return rows, layers


@register(
    "attention_rollout",
    "attention rolled out through every layer (residuals included) from the answer's positions",
    needs_attentions=True,
    contrastive=False,
    score_kind=ScoreKind.SALIENCE,
)
@degrades_to_lines("attention_rollout")
def attention_rollout(ctx: MethodContext) -> MethodResult:
    ids = ctx.input.ids + ctx.target_ids[:-1]
    plan = rollout_plan(torch_backend(ctx).model, len(ids))
    rows, layers = rollout_rows(ctx, ids, first_target_row(ctx), len(ctx.target_ids), plan.store)
    result = rows_to_prompt(ctx, rows, layers)
    result.details["rollout"] = "stored" if plan.store else "streamed"
    return result
