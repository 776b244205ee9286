"""Reading a torch model's attention weights: all layers at once (short prompts), one layer at
a time as it is computed, or only the rows of some positions after a cached prefix. SDPA and
flash models are switched to eager attention while the weights are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from promptxray.explainers.backends import memory
from promptxray.explainers.backends.base import Counters
from promptxray.explainers.backends.torch_prefix import supports_cache


class AttentionReading:
    """The attention methods of `TorchBackend` (a mixin: it needs `model`, `device` and
    `counters`)."""

    model: Any
    device: torch.device
    counters: Counters

    @contextmanager
    def eager_attention(self) -> Iterator[None]:
        """SDPA and flash kernels return no attention weights: use eager while reading them."""
        before = getattr(self.model.config, "_attn_implementation", "eager")
        if before != "eager":
            self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            if before != "eager":
                self.model.set_attn_implementation(before)

    @torch.inference_mode()
    def attentions(self, ids: Sequence[int]) -> list[torch.Tensor]:
        """Per layer, attention weights [heads, L, L] of one sequence, all held at once
        (layers x heads x L^2 floats: 17 GB for SmolLM2 at 4,000 tokens). Long prompts use
        `attention_maps` (one layer at a time) or `attention_rows` (only some rows)."""
        input_ids = torch.tensor([list(ids)], device=self.device)
        with self.eager_attention():
            out = self.model(
                input_ids=input_ids, output_attentions=True, use_cache=False, logits_to_keep=1
            )
        self.counters.forward_passes += 1
        self.counters.sequences += 1
        if not out.attentions or out.attentions[0] is None:
            raise RuntimeError("the model returned no attention weights")
        return [a[0].float() for a in out.attentions]

    @torch.inference_mode()
    def attention_maps(self, ids: Sequence[int], read: Callable[[int, torch.Tensor], None]) -> int:
        """One forward with eager attention that hands each layer's weights [heads, L, L] of one
        sequence to `read(layer, weights)` as soon as they are computed, and frees them before
        the next layer: one layer's maps are live at a time. Returns the number of layers."""
        modules, index = memory.attention_modules(self.model)
        memory.check_attention_layer(self.model, len(ids), len(ids), "reading attention")

        def hand_over(layer: int, weights: torch.Tensor) -> None:
            read(layer, weights.float())

        hooks = {i: _taking(index, i, hand_over) for i in range(len(modules))}
        self._hooked_forward(modules, hooks, list(ids), use_cache=False)
        return len(modules)

    @torch.inference_mode()
    def attention_rows(
        self, ids: Sequence[int], first: int, layers: Sequence[int] | None = None
    ) -> list[torch.Tensor | None]:
        """Per layer, the attention weights [heads, L - first, L] of the rows from `first` on
        (None for layers not in `layers`; all by default). The first `first` positions run
        once without weights (SDPA, keeping their key/value cache) and only the rest with
        eager attention, so no [L, L] map is ever built."""
        ids = [int(t) for t in ids]
        modules, index = memory.attention_modules(self.model)
        wanted = set(range(len(modules)) if layers is None else layers)
        wanted = {i % len(modules) for i in wanted}
        rows: list[torch.Tensor | None] = [None] * len(modules)
        cached = first > 0 and supports_cache(self.model)
        if not cached:
            memory.check_attention_layer(self.model, len(ids), len(ids), "reading attention")

        def keep(layer: int, weights: torch.Tensor) -> None:
            kept = weights[:, weights.shape[1] - (len(ids) - first) :]
            rows[layer] = kept.to(torch.float32, copy=True)  # a copy: the map is freed

        run_ids, kwargs = ids, {}
        if cached:
            from transformers import DynamicCache

            cache = DynamicCache(config=self.model.config)
            kw = memory.cache_kwarg(self.model)
            self.model(
                input_ids=torch.tensor([ids[:first]], device=self.device),
                **{kw: cache},
                use_cache=True,
                logits_to_keep=1,
            )
            self.counters.forward_passes += 1
            run_ids = ids[first:]
            kwargs = {
                kw: cache,
                "use_cache": True,
                "attention_mask": torch.ones(1, len(ids), dtype=torch.long, device=self.device),
                "position_ids": torch.arange(first, len(ids), device=self.device).view(1, -1),
            }
        hooks = {i: _taking(index, i, keep) for i in sorted(wanted)}
        self._hooked_forward(modules, hooks, run_ids, **({"use_cache": False} | kwargs))
        return rows

    def _hooked_forward(
        self,
        modules: list[Any],
        hooks: dict[int, Callable[..., Any]],
        ids: list[int],
        **kwargs: Any,
    ) -> None:
        """One eager-attention forward of `ids` with `hooks[i]` on attention module i."""
        handles = [modules[i].register_forward_hook(hook) for i, hook in hooks.items()]
        try:
            with self.eager_attention():
                self.model(
                    input_ids=torch.tensor([ids], device=self.device), logits_to_keep=1, **kwargs
                )
        finally:
            for handle in handles:
                handle.remove()
        self.counters.forward_passes += 1
        self.counters.sequences += 1


def _taking(index: int, layer: int, take: Callable[[int, torch.Tensor], None]) -> Any:
    """A forward hook that hands one sequence's attention weights (at `index` of the module's
    output) to `take(layer, weights)` and drops them from the output, so they are freed."""

    def on_output(_module: Any, _args: Any, output: Any) -> Any:
        take(layer, output[index][0])
        return (*output[:index], None, *output[index + 1 :])

    return on_output
