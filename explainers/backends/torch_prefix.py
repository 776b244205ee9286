"""Key/value caches of reference prompts for the torch backend, so that each variant of a
prompt runs only its suffix after the prefix it shares with the prompt.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from promptxray.explainers.backends import memory
from promptxray.explainers.backends.base import closest_kept

if TYPE_CHECKING:
    from promptxray.explainers.backends.torch_backend import TorchBackend


class PrefixCache:
    """Key/value caches of recent reference prompts. A new reference that shares a prefix with
    a cached one (the same prompt after an edit further down) computes only the rest."""

    def __init__(self, backend: TorchBackend, size: int = 2) -> None:
        self.backend = backend
        self.size = size
        self.entries: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = (
            OrderedDict()
        )
        self.supported = supports_cache(backend.model)
        self.cache_kwarg = memory.cache_kwarg(backend.model)
        self.reused_tokens = 0  # how many reference positions came from an earlier cache

    @torch.inference_mode()
    def get(self, reference: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        from transformers import DynamicCache

        key = tuple(int(t) for t in reference)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        best, base = closest_kept(key, self.entries)
        model = self.backend.model
        device = self.backend.device
        ids = torch.tensor([key[best:]], device=device)
        cache = (
            DynamicCache(ddp_cache_data=[(k[:, :, :best], v[:, :, :best]) for k, v in base])
            if base is not None
            else DynamicCache()
        )
        positions = torch.arange(best, len(key), device=device).view(1, -1)
        out = model(
            input_ids=ids,
            attention_mask=torch.ones(1, len(key), dtype=torch.long, device=device),
            position_ids=positions,
            **{self.cache_kwarg: cache},
            use_cache=True,
            logits_to_keep=1,
        )
        self.backend.counters.forward_passes += 1
        self.backend.counters.sequences += 1
        self.reused_tokens += best
        returned = getattr(out, "cache", None) or out.past_key_values
        kv = [(layer.keys, layer.values) for layer in returned.layers]
        self.entries[key] = kv
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return kv


def supports_cache(model: torch.nn.Module) -> bool:
    """Prefix reuse needs a decoder whose cache is a plain DynamicCache (no sliding windows,
    no recurrent state): checked once by building one from the config."""
    try:
        from transformers import DynamicCache

        cache = DynamicCache(config=getattr(model, "config", None))
        return all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers)
    except Exception:
        return False
