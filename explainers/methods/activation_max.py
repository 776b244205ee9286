"""Activation maximisation for one unit inside the model (an MLP neuron, a coordinate of the
attention output, or of the residual stream): which prompt tokens excite it, and which input
excites it most, found by gradient ascent on input embeddings and projected back to tokens.

Not about the target (attributes_target=False), so no faithfulness figures are computed. Torch
only: it hooks `model.model.layers[layer]` of a Llama-style transformers model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import torch

from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.errors import InvalidRequestError, UnsupportedMethodError
from promptxray.explainers.gradients import torch_backend
from promptxray.explainers.registry import MethodResult, register

SITES = ("mlp", "attn", "resid")


class _Stop(Exception):
    """Raised by the hook once the activation is read, so the layers above are not run."""


def decoder_layers(model: Any) -> Any:
    """The decoder blocks of a Llama-style causal LM (`model.model.layers`)."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise UnsupportedMethodError(
            f"activation_max needs a Llama-style model with model.model.layers; "
            f"{type(model).__name__} has none"
        )
    return layers


def site_module(model: Any, layer: int, site: str) -> tuple[torch.nn.Module, bool]:
    """The module to hook and whether its input (True) or its output (False) is the site:
    mlp = the neuron activations entering down_proj, attn = o_proj's output, resid = the
    layer's output (the residual stream after the layer)."""
    block = decoder_layers(model)[layer]
    if site == "mlp":
        return block.mlp.down_proj, True
    if site == "attn":
        return block.self_attn.o_proj, False
    return block, False


def site_width(model: Any, layer: int, site: str) -> int:
    module, is_input = site_module(model, layer, site)
    if site == "resid":
        return int(model.config.hidden_size)
    return int(module.in_features if is_input else module.out_features)  # type: ignore[arg-type]


@contextmanager
def capture(model: Any, layer: int, site: str) -> Iterator[dict[str, torch.Tensor]]:
    """Hook the site: the activations [B, L, W] land in the yielded dict under "acts" and the
    forward stops there (callers catch `_Stop`)."""
    module, is_input = site_module(model, layer, site)
    store: dict[str, torch.Tensor] = {}

    def pre_hook(_mod: Any, args: Any) -> None:
        store["acts"] = args[0]
        raise _Stop

    def post_hook(_mod: Any, _args: Any, out: Any) -> None:
        store["acts"] = out[0] if isinstance(out, tuple) else out
        raise _Stop

    handle = (
        module.register_forward_pre_hook(pre_hook)
        if is_input
        else module.register_forward_hook(post_hook)
    )
    try:
        yield store
    finally:
        handle.remove()


def site_activations(model: Any, layer: int, site: str, **inputs: Any) -> torch.Tensor:
    """Activations [B, L, W] at the site for one forward (input_ids or inputs_embeds)."""
    with capture(model, layer, site) as store, suppress(_Stop):
        model(**inputs, use_cache=False)
    if "acts" not in store:
        raise RuntimeError(f"the {site} site of layer {layer} was not reached")
    return store["acts"]


def ids_activation(model: Any, layer: int, site: str, ids: Sequence[int]) -> torch.Tensor:
    """Activations [L, W] of one token sequence (no gradients)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return site_activations(
            model, layer, site, input_ids=torch.tensor([list(ids)], device=device)
        )[0].float()


def optimise(
    model: Any,
    layer: int,
    site: str,
    neuron: int,
    prefix: torch.Tensor,
    shape: tuple[int, int],
    steps: int,
    lr: float,
    penalty: float,
    seed: int,
    progress: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient ascent (Adam) on free embeddings placed after `prefix`, maximising the
    activation at the last position; a penalty keeps their norms near the table's mean norm and
    none may exceed the longest token embedding (else the activation grows with the norm).
    shape = (restarts, length): independent random starts (embeddings of random tokens) run as
    one batch. Returns the embeddings [restarts, length, D] and their activations [restarts]."""
    restarts, length = shape
    table = model.get_input_embeddings().weight.detach()
    norms = table.float().norm(dim=-1)
    mean_norm, max_norm = norms.mean(), norms.max()
    gen = torch.Generator().manual_seed(seed)
    start = torch.randint(table.shape[0], (restarts, length), generator=gen).to(table.device)
    x = table[start].clone().float().requires_grad_(True)
    scale = float(table.float().pow(2).mean().sqrt())  # lr is in units of a typical entry
    opt = torch.optim.Adam([x], lr=lr * scale)
    fixed = prefix.to(table.dtype)[None].expand(restarts, -1, -1)

    def activation(free: torch.Tensor) -> torch.Tensor:
        embeds = torch.cat([fixed, free.to(table.dtype)], dim=1)
        return site_activations(model, layer, site, inputs_embeds=embeds)[:, -1, neuron].float()

    for step in range(steps):
        acts = activation(x)
        drift = ((x.norm(dim=-1) / mean_norm - 1) ** 2).mean(dim=-1)
        loss = (penalty * drift - acts).sum()  # rows are independent: summing keeps each one's
        (grad,) = torch.autograd.grad(loss, x)
        opt.zero_grad()
        x.grad = grad
        opt.step()
        with torch.no_grad():  # never longer than the longest token embedding
            x.mul_((max_norm / x.norm(dim=-1, keepdim=True)).clamp(max=1.0))
        if progress:
            progress(step + 1, steps)
    with torch.no_grad():
        return x.detach(), activation(x.detach())


def nearest_tokens(model: Any, embeds: torch.Tensor, banned: set[int]) -> list[int]:
    """Per embedding, the vocabulary token of highest cosine similarity (special tokens
    excluded)."""
    table = model.get_input_embeddings().weight.detach().float()
    sims = (
        torch.nn.functional.normalize(embeds.float(), dim=-1)
        @ torch.nn.functional.normalize(table, dim=-1).T
    )
    if banned:
        sims[:, sorted(banned)] = -torch.inf
    return [int(t) for t in sims.argmax(dim=-1)]


@register(
    "activation_max",
    "what excites one neuron: its activation on each prompt token, and the input that "
    "maximises it (gradient ascent on embeddings, projected to tokens)",
    needs_gradients=True,
    contrastive=False,
    score_kind=ScoreKind.ACTIVATION,
)
def activation_max(ctx: MethodContext) -> MethodResult:
    """Options: site ("mlp"), layer (the middle one), neuron (the one most active on the
    prompt), length (6) free positions, steps (60), lr (0.5, in units of a typical embedding
    entry), norm_penalty (0.1), restarts (4, run as one batch), seed (0).

    The hooks sit on the shared model while it runs: front ends must not run other forwards
    on the same model meanwhile (the chat engine takes its exclusive lock for this method)."""
    backend = torch_backend(ctx)
    model = backend.model
    n_layers = len(decoder_layers(model))
    layer = ctx.option("layer", n_layers // 2, int, lo=0)
    site = ctx.option("site", "mlp", str)
    length = ctx.option("length", 6, int, lo=1)
    steps = ctx.option("steps", 60, int, lo=0)
    lr = ctx.option("lr", 0.5, float, lo=0)
    penalty = ctx.option("norm_penalty", 0.1, float, lo=0)
    seed = ctx.option("seed", 0, int)
    restarts = ctx.option("restarts", 4, int, lo=1)
    if layer >= n_layers:
        raise InvalidRequestError(f"option layer={layer} must be below {n_layers}")
    if site not in SITES:
        raise InvalidRequestError(f"option site={site!r} must be one of {', '.join(SITES)}")
    width = site_width(model, layer, site)

    positions = ctx.input.positions
    acts = ids_activation(model, layer, site, ctx.input.ids)[positions]  # [n_tokens, W]
    backend.counters.forward_passes += 1
    backend.counters.sequences += 1
    if ctx.options.get("neuron") is None:
        neuron = int(acts.max(dim=0).values.argmax())
    else:
        neuron = ctx.option("neuron", 0, int, lo=0)
        if neuron >= width:
            raise InvalidRequestError(
                f"option neuron={neuron} must be below {width} (the {site} width)"
            )
    token_scores = acts[:, neuron].double().numpy()
    order = np.argsort(-token_scores, kind="stable")[:5]
    top = [
        {"index": int(i), "text": ctx.input.tokens[i].text, "activation": float(token_scores[i])}
        for i in order
    ]

    bos = getattr(backend.tokenizer, "bos_token_id", None)
    prefix_ids = ctx.input.ids[:1] if bos is not None and ctx.input.ids[0] == bos else []
    prefix = backend.embed(prefix_ids) if prefix_ids else backend.embed([0])[:0]
    x, optimised = optimise(
        model,
        layer,
        site,
        neuron,
        prefix,
        (restarts, length),
        steps,
        lr,
        penalty,
        seed,
        ctx.progress,
    )
    backend.counters.forward_passes += steps + 1
    backend.counters.sequences += (steps + 1) * restarts
    banned = {int(t) for t in getattr(backend.tokenizer, "all_special_ids", [])}
    # Each restart projected to tokens and rerun in one batch; the best projection is reported.
    rows = [prefix_ids + nearest_tokens(model, row, banned) for row in x]
    device = next(model.parameters()).device
    with torch.no_grad():
        reached = site_activations(model, layer, site, input_ids=torch.tensor(rows, device=device))[
            :, -1, neuron
        ].float()
    backend.counters.forward_passes += 1
    backend.counters.sequences += len(rows)
    best = int(reached.argmax())
    projected = rows[best][len(prefix_ids) :]
    act_projected = float(reached[best])
    act_optimised = float(optimised.max())
    return MethodResult(
        token_scores=token_scores,
        metrics={
            "activation_optimised": act_optimised,
            "activation_projected": act_projected,
            "activation_prompt_max": float(token_scores.max()),
        },
        details={
            "layer": layer,
            "neuron": neuron,
            "site": site,
            "top_prompt_tokens": top,
            "optimised_tokens": [backend.piece(t) for t in projected],
            "optimised_ids": projected,
            "prefix_ids": list(prefix_ids),
            "optimised_text": backend.decode(projected),
        },
    )
