"""Gradients of the target's log-probability (minus the foil's in a contrastive explanation)
with respect to the prompt's input embeddings, shared by the gradient-based methods (torch
backend only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from promptxray.explainers.context import MethodContext

if TYPE_CHECKING:
    from promptxray.explainers.backends.torch_backend import TorchBackend


def torch_backend(ctx: MethodContext) -> TorchBackend:
    from promptxray.explainers.backends.torch_backend import TorchBackend

    assert isinstance(ctx.backend, TorchBackend)  # guaranteed by the method's capability flags
    return ctx.backend


def prompt_embeddings(ctx: MethodContext) -> torch.Tensor:
    """Embeddings [P, D] of the prompt (template tokens included)."""
    return torch_backend(ctx).embed(ctx.input.ids)


def _parts(ctx: MethodContext) -> list[tuple[list[int], float]]:
    """The continuations f is made of and their signs: the target (+1), and the foil (-1) in
    a contrastive explanation."""
    parts = [(ctx.target_ids, 1.0)]
    if ctx.foil_ids:
        parts.append((ctx.foil_ids, -1.0))
    return parts


def _part_score(
    ctx: MethodContext, rows: torch.Tensor, ids: list[int], checkpoint: bool | None
) -> torch.Tensor:
    """Summed log-probability [B] of `ids` teacher-forced after rows of prompt embeddings
    [B, P, D]; differentiable."""
    backend = torch_backend(ctx)
    if len(ids) > 1:
        tail = backend.embed(ids[:-1]).to(rows.dtype)[None].expand(rows.shape[0], -1, -1)
        rows = torch.cat([rows, tail], dim=1)
    return backend.logprobs_from_embeds(rows, ids, checkpoint).sum(1)


def objective(
    ctx: MethodContext, rows: torch.Tensor, checkpoint: bool | None = None
) -> torch.Tensor:
    """f [B] for rows of prompt embeddings [B, P, D]: the target's summed log-probability,
    minus the foil's in a contrastive explanation; differentiable."""
    total: torch.Tensor | None = None
    for ids, sign in _parts(ctx):
        part = sign * _part_score(ctx, rows, ids, checkpoint)
        total = part if total is None else total + part
    assert total is not None
    return total


def value_and_grad(
    ctx: MethodContext, rows: torch.Tensor, checkpoint: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """f [B] (see `objective`) and its gradient [B, P, D] with respect to rows of prompt
    embeddings; the target's and the foil's graphs are built and freed one after the other."""
    values = torch.zeros(rows.shape[0], dtype=torch.float64)
    grads = torch.zeros_like(rows)
    for ids, sign in _parts(ctx):
        x = rows.detach().requires_grad_(True)
        score = _part_score(ctx, x, ids, checkpoint)
        (grad,) = torch.autograd.grad(score.sum(), x)
        values += sign * score.detach().double().cpu()
        grads += sign * grad
    return values, grads


def embedding_gradients(ctx: MethodContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, gradients) of f (see `objective`), at the user tokens' positions."""
    embeds = prompt_embeddings(ctx).unsqueeze(0)
    _, grad = value_and_grad(ctx, embeds)
    positions = torch.tensor(ctx.input.positions)
    return embeds[0, positions].detach(), grad[0, positions]
