"""The torch backend's continuations (continuations.py says what each returns), run after the
prompt's cached keys and values (`PrefixCache`, shared with scoring, so a prompt just explained
costs nothing more to reuse): the branches' greedy completion is one batched forward per new
token, and the scoring of several continuations is one padded forward of their tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers.cache_utils import DynamicLayer

from promptxray.explainers.backends.base import Backend, left_pad
from promptxray.explainers.backends.continuations import StopFn

if TYPE_CHECKING:
    from promptxray.explainers.backends.torch_prefix import PrefixCache


class TorchContinuations(Backend):
    """Continuations after a cached prompt prefix (a base of `TorchBackend`: it needs `model`,
    `device` and `prefix`); where prefix reuse is off, the plain versions run."""

    model: Any
    device: torch.device
    prefix: PrefixCache

    def _after(
        self,
        prompt: Sequence[int],
        p: int,
        rows: Sequence[Sequence[int]],
        keep: int = 0,
        room: int = 0,
    ) -> Any:
        """One forward of left-padded `rows` after the prompt's first `p` cached positions:
        the model's output (logits of the last `keep` positions, 0: all; the grown cache, with
        `room` more positions already allocated) and the attention mask it ran with."""
        from transformers import DynamicCache

        kv = self.prefix.get(list(prompt))
        n = len(rows)
        width = max(len(r) for r in rows)
        cache = DynamicCache()
        cache.layers = [Preallocated(k[:, :, :p], v[:, :, :p], n, width + room) for k, v in kv]
        batch = left_pad(rows, self.pad_id)
        suffix_mask = torch.from_numpy(batch.attention_mask).to(self.device)
        mask = torch.cat(
            [torch.ones(n, p, dtype=suffix_mask.dtype, device=self.device), suffix_mask], 1
        )
        out = self.model(
            input_ids=torch.from_numpy(batch.input_ids).to(self.device),
            attention_mask=mask,
            position_ids=torch.from_numpy(batch.position_ids).to(self.device) + p,
            **{self.prefix.cache_kwarg: cache},
            use_cache=True,
            logits_to_keep=keep,
        )
        self.counters.forward_passes += 1
        self.counters.sequences += n
        return out, mask

    def _reuses(self, prompt: Sequence[int]) -> bool:
        return self.prefix_reuse and len(prompt) >= 2

    @torch.inference_mode()
    def continuation_logits(self, prompt: Sequence[int], continuation: Sequence[int]) -> np.ndarray:
        if not self._reuses(prompt):
            return super().continuation_logits(prompt, continuation)
        row = [int(prompt[-1]), *[int(t) for t in continuation[:-1]]]
        out, _ = self._after(prompt, len(prompt) - 1, [row])
        return np.asarray(out.logits[0].float().cpu().numpy())

    @torch.inference_mode()
    def continuation_logprobs(
        self, prompt: Sequence[int], continuations: Sequence[Sequence[int]]
    ) -> list[np.ndarray]:
        if not self._reuses(prompt) or not continuations:
            return super().continuation_logprobs(prompt, continuations)
        rows = [[int(prompt[-1]), *[int(t) for t in c[:-1]]] for c in continuations]
        out, _ = self._after(prompt, len(prompt) - 1, rows)
        logp = torch.log_softmax(out.logits.double(), dim=-1)
        width = logp.shape[1]
        result = []
        for i, c in enumerate(continuations):
            at = torch.arange(width - len(c), width)  # left-padded: each row ends at the end
            result.append(logp[i, at, torch.tensor([int(t) for t in c])].cpu().numpy())
        return result

    @torch.inference_mode()
    def complete(
        self,
        prompt: Sequence[int],
        branches: Sequence[Sequence[int]],
        max_new_tokens: Sequence[int],
        stop: StopFn | None = None,
    ) -> list[list[int]]:
        """All branches at once: one forward of the branches after the cached prompt, then
        one batched forward per new token while any branch goes on (greedy, as `generate`)."""
        if not self._reuses(prompt) or not branches or not all(branches):
            return super().complete(prompt, branches, max_new_tokens, stop)
        eos = self.eos_ids()
        limits = [int(m) for m in max_new_tokens]
        new: list[list[int]] = [[] for _ in branches]
        going = [m > 0 for m in limits]
        rows = [list(b) for b in branches]
        out, mask = self._after(prompt, len(prompt), rows, keep=1, room=max(limits))
        positions = torch.tensor([[len(prompt) + len(b) - 1] for b in branches], device=self.device)
        cache_kwarg = self.prefix.cache_kwarg
        while any(going):
            chosen = out.logits[:, -1, :].argmax(dim=-1)
            for i, token in enumerate(chosen.tolist()):
                if not going[i]:
                    continue
                new[i].append(int(token))
                done = token in eos or len(new[i]) >= limits[i]
                going[i] = not (done or (stop is not None and stop([*branches[i], *new[i]])))
            if not any(going):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            positions = positions + 1
            cache = getattr(out, "cache", None) or out.past_key_values
            out = self.model(
                input_ids=chosen.view(-1, 1),
                attention_mask=mask,
                position_ids=positions,
                **{cache_kwarg: cache},
                use_cache=True,
            )
            self.counters.forward_passes += 1
            self.counters.sequences += len(branches)
        return new


class Preallocated(DynamicLayer):
    """A cache layer for `rows` rows that share one prefix: the prefix is copied once into a
    buffer with room for `room` more positions, which each forward then fills in place (the
    plain layer concatenates, copying the whole cache of every row at every new token: on a
    1.3k-token prompt that copy took most of the time)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, rows: int, room: int) -> None:
        super().__init__()
        heads, p, dim = keys.shape[1:]
        self.k_buffer = keys.new_empty(rows, heads, p + room, dim)
        self.v_buffer = values.new_empty(rows, heads, p + room, values.shape[-1])
        self.k_buffer[:, :, :p] = keys
        self.v_buffer[:, :, :p] = values
        self.filled = p
        self.keys, self.values = self.k_buffer[:, :, :p], self.v_buffer[:, :, :p]
        self.device, self.is_initialized = keys.device, True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.filled + key_states.shape[-2]
        self.k_buffer[:, :, self.filled : end] = key_states
        self.v_buffer[:, :, self.filled : end] = value_states
        self.filled = end
        self.keys, self.values = self.k_buffer[:, :, :end], self.v_buffer[:, :, :end]
        return self.keys, self.values
