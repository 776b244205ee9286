"""Peak-memory estimates for the gradient and attention paths of the torch backend, and the
plans that keep them within the machine's memory on long prompts.

Estimates are from the model's shapes (fp32), calibrated on SmolLM2-135M on this CPU
(bench/README.md, "Memory at 4,000 tokens"): a forward and backward keeps about
4 * layers * (8 * hidden + 6 * intermediate) bytes per token; eager attention adds
heads * L^2 floats per layer (kept for the backward, or built once per layer when its
weights are read). Two limits: `budget_bytes()` (base.memory_budget: 40% of what the OS
reports available) for anything that is batched or optional (how many gradient rows per
backward, keeping every layer's map), and `single_limit()` (80% of available) for a piece
that cannot be split further (one row). Beyond that, `MemoryLimitError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from promptxray.explainers.backends import base
from promptxray.explainers.backends.base import available_bytes
from promptxray.explainers.errors import MemoryLimitError

SINGLE_FRACTION = 0.8  # of MemAvailable, for one piece of work that cannot be split


def budget_bytes() -> int:
    """Bytes one batch may use (the backend's shared rule, base.memory_budget)."""
    return base.memory_budget()


def single_limit() -> int:
    """Bytes one piece of work that cannot be split may use."""
    return int(available_bytes() * SINGLE_FRACTION)


@dataclass(frozen=True)
class Shape:
    """The sizes of a decoder-only transformer that memory depends on."""

    layers: int
    hidden: int
    inter: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def of(cls, model: Any) -> Shape:
        c = model.config
        hidden = int(getattr(c, "hidden_size", 1024))
        heads = int(getattr(c, "num_attention_heads", 16))
        return cls(
            layers=int(getattr(c, "num_hidden_layers", 24)),
            hidden=hidden,
            inter=int(getattr(c, "intermediate_size", 4 * hidden)),
            heads=heads,
            kv_heads=int(getattr(c, "num_key_value_heads", heads) or heads),
            head_dim=int(getattr(c, "head_dim", 0) or hidden // heads),
            vocab=int(getattr(c, "vocab_size", 32000)),
        )

    def layer_activations(self, width: int) -> int:
        """Bytes autograd keeps per layer for one row of `width` tokens (no attention maps)."""
        return 4 * width * (8 * self.hidden + 6 * self.inter)

    def attention_maps(self, queries: int, keys: int) -> int:
        """Bytes of one layer's attention weights for one row (all heads)."""
        return 4 * self.heads * queries * keys

    def eager_layer(self, queries: int, keys: int) -> int:
        """Peak bytes while one layer computes eager attention: the scores, the masked scores
        and the softmax coexist briefly, plus the float mask."""
        return 3 * self.attention_maps(queries, keys) + 4 * queries * keys

    def fixed(self, width: int, targets: int) -> int:
        """Per row, outside the layers: embeddings and their gradient, the kept logits and
        their log-softmax and gradient."""
        return 4 * (3 * width * self.hidden + 4 * targets * self.vocab)


def uses_eager(model: Any) -> bool:
    """Whether this model's attention materialises [heads, L, L] weights (not SDPA/flash)."""
    return getattr(model.config, "_attn_implementation", "eager") in (None, "eager")


def gradient_row_bytes(model: Any, width: int, targets: int, checkpointed: bool = False) -> int:
    """Peak bytes of one row's forward and backward over `width` tokens.

    Plain: every layer's activations are kept for the backward (and, with eager attention,
    every layer's weights). Checkpointed: only each layer's input is kept; one layer at a time
    is recomputed, so one layer's activations (and their gradients) are live on top. Fitted
    to SmolLM2 at 2k and 4k tokens: plain within 3%; checkpointed measures about twice the
    bare count (residual-stream gradients, allocator slack), hence the factors 3 and 4."""
    s = Shape.of(model)
    maps = s.attention_maps(width, width) if uses_eager(model) else 0
    one_layer = s.layer_activations(width) + maps
    if checkpointed:
        kept = 3 * 4 * s.layers * width * s.hidden + 4 * one_layer
    else:
        kept = s.layers * one_layer + (2 * maps if maps else 0)
    return kept + s.fixed(width, targets)


@dataclass(frozen=True)
class GradientPlan:
    """How to run a backward over rows of one width: rows per batch and checkpointing."""

    rows: int
    checkpoint: bool
    row_bytes: int


def gradient_plan(
    model: Any, width: int, targets: int, wanted_rows: int, what: str = "the gradient"
) -> GradientPlan:
    """Rows per backward (at most `wanted_rows`) within the batch budget; when one plain row
    exceeds what one piece may use, layers are checkpointed (same gradients, one extra
    forward). MemoryLimitError when even one checkpointed row does not fit."""
    plain = gradient_row_bytes(model, width, targets)
    if plain <= single_limit():
        rows = max(1, min(wanted_rows, budget_bytes() // plain))
        return GradientPlan(int(rows), False, plain)
    lean = gradient_row_bytes(model, width, targets, checkpointed=True)
    if lean <= single_limit():
        rows = max(1, min(wanted_rows, budget_bytes() // lean))
        return GradientPlan(int(rows), True, lean)
    raise MemoryLimitError(what, width, lean, available_bytes())


@dataclass(frozen=True)
class RolloutPlan:
    """How to compose attention through the layers: keep every layer's map and multiply
    target rows down through them (`store`), or multiply full maps as they come (`stream`:
    three maps live, but layers * L^3 multiply-adds)."""

    store: bool
    peak_bytes: int


def attention_layer_bytes(model: Any, queries: int, keys: int) -> int:
    """Peak bytes of a forward that reads one layer's eager attention at a time."""
    s = Shape.of(model)
    return s.eager_layer(queries, keys) + 4 * keys * (8 * s.hidden + 6 * s.inter)


def rollout_plan(model: Any, width: int) -> RolloutPlan:
    s = Shape.of(model)
    layer = attention_layer_bytes(model, width, width)
    square = 4 * width * width
    stored = layer + (s.layers + 1) * square
    if stored <= budget_bytes():
        return RolloutPlan(True, stored)
    streamed = layer + 3 * square
    if streamed <= single_limit():
        return RolloutPlan(False, streamed)
    raise MemoryLimitError("attention rollout", width, streamed, available_bytes())


def check_attention_layer(model: Any, queries: int, keys: int, what: str) -> int:
    """Bytes to read attention one layer at a time; MemoryLimitError when that cannot fit."""
    need = attention_layer_bytes(model, queries, keys)
    if need > single_limit():
        raise MemoryLimitError(what, keys, need, available_bytes())
    return need


# --- torch helpers: reading attention layer by layer, checkpointing decoder layers -------------


def attention_modules(model: Any) -> tuple[list[Any], int]:
    """The model's attention modules in layer order, and where their output tuple holds the
    weights: the classes transformers itself hooks for `output_attentions`
    (`_can_record_outputs["attentions"]`), else every `*.self_attn` module (index 1)."""
    spec = (getattr(model, "_can_record_outputs", None) or {}).get("attentions")
    target = spec if isinstance(spec, type) else getattr(spec, "target_class", None)
    index = int(getattr(spec, "index", 1) or 1)
    if isinstance(target, type):
        found = [m for m in model.modules() if isinstance(m, target)]
    else:
        found = [m for name, m in model.named_modules() if name.endswith("self_attn")]
        index = 1
    if not found:
        raise RuntimeError(f"no attention modules found in {type(model).__name__}")
    return found, index


def decoder_layers(model: Any) -> list[Any]:
    """The decoder blocks (transformers' GradientCheckpointingLayer subclasses), in order."""
    try:
        from transformers.modeling_layers import GradientCheckpointingLayer
    except ImportError:  # older transformers
        return list(getattr(getattr(model, "model", None), "layers", []) or [])
    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


@contextmanager
def checkpointed_layers(model: Any) -> Iterator[None]:
    """While inside, each decoder layer keeps only its input for the backward and recomputes
    the rest (torch.utils.checkpoint, non-reentrant): the same gradients in a fraction of the
    memory, for one extra forward. Works in eval mode (transformers' own switch needs
    training mode, which would turn dropout on)."""
    from torch.utils.checkpoint import checkpoint  # torch only here: memory.py stays light

    layers = decoder_layers(model)
    if not layers:
        raise RuntimeError(f"no decoder layers found in {type(model).__name__} to checkpoint")

    def wrapped(inner: Callable[..., Any]) -> Callable[..., Any]:
        def forward(*args: Any, **kwargs: Any) -> Any:
            return checkpoint(inner, *args, use_reentrant=False, **kwargs)

        return forward

    saved = [layer.__dict__.get("forward") for layer in layers]
    for layer in layers:
        layer.forward = wrapped(layer.forward)
    try:
        yield
    finally:
        for layer, before in zip(layers, saved, strict=True):
            if before is None:
                del layer.forward
            else:
                layer.forward = before


def cache_kwarg(model: Any) -> str:
    """transformers 5.x renames `past_key_values` to `cache` (the old name warns)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"
