"""Attention rollout (Abnar & Zuidema, 2020): attention composed through all layers, with the
residual connection modelled as 0.5 * identity, read from the answer's positions."""

from __future__ import annotations

import torch

from promptxray.explainers.context import MethodContext
from promptxray.explainers.methods.attention import from_target_to_prompt, layer_attentions
from promptxray.explainers.registry import MethodResult, register


def rollout(layers: list[torch.Tensor]) -> torch.Tensor:
    """Product over layers of row-normalised (0.5 * head-mean attention + 0.5 * I)."""
    n = layers[0].shape[-1]
    eye = torch.eye(n)
    result = eye
    for layer in layers:
        mixed = 0.5 * layer.mean(dim=0) + 0.5 * eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed @ result
    return result


@register(
    "attention_rollout",
    "attention rolled out through every layer (residuals included) from the answer's positions",
    needs_attentions=True,
    score_kind="salience",
)
def attention_rollout(ctx: MethodContext) -> MethodResult:
    layers = layer_attentions(ctx)
    return from_target_to_prompt(ctx, rollout(layers), len(layers))
