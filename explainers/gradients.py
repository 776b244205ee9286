"""Gradients of the target's log-probability with respect to the prompt's input embeddings,
shared by the gradient-based methods (torch backend only)."""

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


def full_embeddings(ctx: MethodContext) -> torch.Tensor:
    """Embeddings [L, D] of prompt + target[:-1], the sequence that teacher-forces the target."""
    return torch_backend(ctx).embed(ctx.input.ids + ctx.target_ids[:-1])


def embedding_gradients(ctx: MethodContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, gradients) of f = sum of target log-probs, at the user tokens' positions."""
    backend = torch_backend(ctx)
    embeds = full_embeddings(ctx).unsqueeze(0).requires_grad_(True)
    score = backend.logprobs_from_embeds(embeds, ctx.target_ids).sum()
    (grad,) = torch.autograd.grad(score, embeds)
    positions = torch.tensor(ctx.input.positions)
    return embeds[0, positions].detach(), grad[0, positions]
