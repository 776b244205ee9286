"""PyTorch backend (transformers causal LMs): batched scoring, generation, gradients on input
embeddings, and attention maps (switching SDPA models to eager attention while they are read).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch

from promptxray.explainers.backends import memory
from promptxray.explainers.backends.base import (
    Backend,
    PaddedBatch,
    ProgressFn,
    closest_kept,
    memory_budget,
)
from promptxray.explainers.backends.packed import PackedLlama, supports_packed
from promptxray.explainers.errors import MemoryLimitError
from promptxray.explainers.models.loading import LoadedModel


class TorchBackend(Backend):
    """A transformers model in fp32 on the CPU (or wherever it was loaded)."""

    name = "torch"
    supports_gradients = True
    supports_attentions = True

    def __init__(self, loaded: LoadedModel) -> None:
        config = loaded.model.config
        context = int(getattr(config, "max_position_embeddings", 0) or 2048)
        super().__init__(loaded.tokenizer, loaded.model_id, context)
        self.model = loaded.model
        self.device = next(self.model.parameters()).device
        self.prefix = PrefixCache(self)
        self.prefix_reuse = self.prefix.supported
        # Llama-family models on the CPU score prefix-sharing rows packed, without padding
        # (explainers/backends/packed.py); False runs them through the transformers forward
        self.packed = PackedLlama(self.model) if supports_packed(self.model) else None
        self.packed_scoring = self.packed is not None
        if _fast_bf16(self.device):
            self.scoring_precisions = ("fp32", "bf16")

    # --- memory ------------------------------------------------------------------------------
    def row_bytes(self, width: int, cached: int = 0) -> int:
        """Peak bytes of one row in an fp32 forward: the widest per-token activations (MLP),
        the attention scores of one layer (heads x width x keys, twice for the softmax), the
        key/value cache it builds, and the kept logits."""
        c = self.model.config
        hidden = int(getattr(c, "hidden_size", 1024))
        inter = int(getattr(c, "intermediate_size", 4 * hidden))
        heads = int(getattr(c, "num_attention_heads", 16))
        kv_heads = int(getattr(c, "num_key_value_heads", heads) or heads)
        layers = int(getattr(c, "num_hidden_layers", 24))
        head_dim = int(getattr(c, "head_dim", 0) or hidden // heads)
        vocab = int(getattr(c, "vocab_size", 32000))
        keys = width + cached
        activations = width * (4 * hidden + 3 * inter)
        scores = 2 * heads * width * keys
        kv = 2 * layers * kv_heads * head_dim * keys
        logits = 2 * vocab * min(width, 64)
        return 4 * (activations + scores + kv + logits)

    # --- scoring with a shared prefix ----------------------------------------------------------
    def _score_rows(
        self,
        inputs: list[list[int]],
        target: list[int],
        progress: ProgressFn | None,
        reference: Sequence[int] | None,
    ) -> np.ndarray:
        """Variants of `reference` share its ids up to their first edit: the reference's
        key/value cache is computed once, and each batch runs only its rows' suffixes after
        the longest prefix all of them share (results equal the plain computation within
        float rounding). Without a reference, plain left-padded batches."""
        if reference is None or not self.prefix_reuse:
            return super()._score_rows(inputs, target, progress, reference)
        plan = self._suffix_plan(inputs, reference)
        if plan is None:
            return super()._score_rows(inputs, target, progress, reference)
        kv = self.prefix.get(reference)
        shared, order = plan
        if self.packed is not None and self.packed_scoring:
            return self._score_packed(order, shared, inputs, target, kv, progress)
        return self._score_suffixes(
            plan,
            inputs,
            target,
            lambda batch, p: self._run_suffixes(batch, kv, p, target),
            progress,
        )

    def _score_packed(
        self,
        order: list[int],
        shared: list[int],
        inputs: list[list[int]],
        target: list[int],
        kv: list[tuple[torch.Tensor, torch.Tensor]],
        progress: ProgressFn | None,
    ) -> np.ndarray:
        """Each row runs only its own suffix after its own shared prefix, rows packed end to
        end (no padding): up to `packed_tokens()` tokens per forward, fewer where the rows'
        activations and logits would exceed the memory budget."""
        assert self.packed is not None
        budget = self.packed_tokens()
        memory = memory_budget()
        per_token = self.packed.bytes_per_token()
        per_row = self.packed.bytes_per_row(len(target))
        out = np.zeros((len(inputs), len(target)), dtype=np.float64)
        done = 0
        start = 0
        while start < len(order):
            chunk: list[int] = []
            tokens = 0
            for i in order[start:]:
                n = len(inputs[i]) - shared[i] + len(target) - 1
                peak = (tokens + n) * per_token + (len(chunk) + 1) * per_row
                if chunk and (tokens + n > budget or peak > memory):
                    break
                chunk.append(i)
                tokens += n
            rows = [inputs[i][shared[i] :] + target[:-1] for i in chunk]
            low = torch.bfloat16 if self.scoring_precision == "bf16" else None
            scores = self.packed.target_logprobs(
                rows, [shared[i] for i in chunk], kv, target, dtype=low
            )
            out[chunk] = scores.double().cpu().numpy()
            self.counters.forward_passes += 1
            self.counters.sequences += len(chunk)
            done += len(chunk)
            start += len(chunk)
            if progress:
                progress(done, len(inputs))
        return out

    def packed_tokens(self) -> int:
        """Tokens per packed forward: `max_batch_tokens`, lowered to fit the memory budget."""
        assert self.packed is not None
        by_memory = memory_budget() // max(1, self.packed.bytes_per_token())
        return int(max(1, min(self.max_batch_tokens, by_memory)))

    @torch.inference_mode()
    def _run_suffixes(
        self,
        batch: PaddedBatch,
        kv: list[tuple[torch.Tensor, torch.Tensor]],
        p: int,
        target: list[int],
    ) -> np.ndarray:
        """One forward of left-padded suffixes after the reference's first `p` positions."""
        from transformers import DynamicCache

        rows = batch.input_ids.shape[0]
        cache = DynamicCache(
            ddp_cache_data=[
                (k[:, :, :p].expand(rows, -1, -1, -1), v[:, :, :p].expand(rows, -1, -1, -1))
                for k, v in kv
            ]
        )
        suffix_mask = torch.from_numpy(batch.attention_mask).to(self.device)
        mask = torch.cat(
            [torch.ones(rows, p, dtype=suffix_mask.dtype, device=self.device), suffix_mask], dim=1
        )
        positions = torch.from_numpy(batch.position_ids).to(self.device) + p
        with self._scoring_precision():
            out = self.model(
                input_ids=torch.from_numpy(batch.input_ids).to(self.device),
                attention_mask=mask,
                position_ids=positions,
                **{self.prefix.cache_kwarg: cache},
                use_cache=True,
                logits_to_keep=len(target),
            )
        return gather_logprobs(out.logits, target).double().cpu().numpy()

    @contextmanager
    def _scoring_precision(self) -> Iterator[None]:
        """The transformers forward in `scoring_precision`: for "bf16" on the CPU, oneDNN
        runs float32 matrix products with bfloat16 inputs (a process-wide switch, restored
        after the block); elsewhere bfloat16 autocast."""
        if self.scoring_precision != "bf16":
            yield
            return
        if self.device.type != "cpu":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                yield
            return
        matmul: Any = getattr(torch.backends.mkldnn, "matmul")  # noqa: B009 (untyped)
        before = matmul.fp32_precision
        matmul.fp32_precision = "bf16"
        try:
            yield
        finally:
            matmul.fp32_precision = before

    def eos_ids(self) -> set[int]:
        ids = super().eos_ids()
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif gen_eos:
            ids.update(int(i) for i in gen_eos)
        return ids

    # --- forward-only ------------------------------------------------------------------------
    def _tensors(self, batch: PaddedBatch) -> dict[str, torch.Tensor]:
        return {
            "input_ids": torch.from_numpy(batch.input_ids).to(self.device),
            "attention_mask": torch.from_numpy(batch.attention_mask).to(self.device),
            "position_ids": torch.from_numpy(batch.position_ids).to(self.device),
        }

    @torch.inference_mode()
    def _run_logprobs(self, batch: PaddedBatch, target: list[int]) -> np.ndarray:
        with self._scoring_precision():
            out = self.model(**self._tensors(batch), logits_to_keep=len(target), use_cache=False)
        return gather_logprobs(out.logits, target).double().cpu().numpy()

    @torch.inference_mode()
    def generate(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        if max_new_tokens <= 0:
            return []
        input_ids = torch.tensor([list(ids)], device=self.device)
        eos = sorted(self.eos_ids())
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=eos or None,
            pad_token_id=self.pad_id,
        )
        self.counters.forward_passes += 1
        self.counters.sequences += 1
        new = [int(t) for t in out[0, input_ids.shape[1] :]]
        for i, token in enumerate(new):
            if token in eos:
                return new[: i + 1]
        return new

    # --- gradients ---------------------------------------------------------------------------
    def embed(self, ids: Sequence[int]) -> torch.Tensor:
        """Input embeddings [L, D] of a token sequence (detached)."""
        table = self.model.get_input_embeddings()
        with torch.no_grad():
            return table(torch.tensor(list(ids), device=self.device)).detach()

    def logprobs_from_embeds(
        self, embeds: torch.Tensor, target: Sequence[int], checkpoint: bool | None = None
    ) -> torch.Tensor:
        """Log-probs [B, T] of `target` for rows of embeddings [B, L, D] that already end with
        the embeddings of target[:-1]; differentiable.

        `checkpoint`: recompute each decoder layer in the backward instead of keeping its
        activations (same gradients, one more forward's work). None: only when a backward
        through the whole batch would not fit in memory (memory.py); MemoryLimitError when
        even a checkpointed one would not."""
        if checkpoint is None and embeds.requires_grad and torch.is_grad_enabled():
            rows, width = int(embeds.shape[0]), int(embeds.shape[1])
            plain = rows * memory.gradient_row_bytes(self.model, width, len(target))
            if plain > memory.single_limit():
                lean = rows * memory.gradient_row_bytes(self.model, width, len(target), True)
                if not memory.decoder_layers(self.model):
                    lean = plain  # nothing to checkpoint
                if lean > memory.single_limit():
                    raise MemoryLimitError("the gradient", width, lean, memory.available_bytes())
                checkpoint = True
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device)
        with memory.checkpointed_layers(self.model) if checkpoint else nullcontext():
            out = self.model(
                inputs_embeds=embeds,
                attention_mask=mask,
                logits_to_keep=len(target),
                use_cache=False,
            )
        self.counters.forward_passes += 1
        self.counters.sequences += int(embeds.shape[0])
        return gather_logprobs(out.logits, list(target))

    # --- attentions --------------------------------------------------------------------------
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

        def hook(layer: int) -> Callable[..., Any]:
            def on_output(_module: Any, _args: Any, output: Any) -> Any:
                read(layer, output[index][0].float())
                return (*output[:index], None, *output[index + 1 :])

            return on_output

        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(modules)]
        try:
            with self.eager_attention():
                self.model(
                    input_ids=torch.tensor([list(ids)], device=self.device),
                    use_cache=False,
                    logits_to_keep=1,
                )
        finally:
            for handle in handles:
                handle.remove()
        self.counters.forward_passes += 1
        self.counters.sequences += 1
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
        cached = first > 0 and _supports_cache(self.model)
        if not cached:
            memory.check_attention_layer(self.model, len(ids), len(ids), "reading attention")

        def hook(layer: int) -> Callable[..., Any]:
            def on_output(_module: Any, _args: Any, output: Any) -> Any:
                weights = output[index][0]
                kept = weights[:, weights.shape[1] - (len(ids) - first) :]
                rows[layer] = kept.to(torch.float32, copy=True)  # a copy: the map is freed
                return (*output[:index], None, *output[index + 1 :])

            return on_output

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
        handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(modules) if i in wanted]
        try:
            with self.eager_attention():
                self.model(
                    input_ids=torch.tensor([run_ids], device=self.device),
                    logits_to_keep=1,
                    **({"use_cache": False} | kwargs),
                )
        finally:
            for handle in handles:
                handle.remove()
        self.counters.forward_passes += 1
        self.counters.sequences += 1
        return rows


class PrefixCache:
    """Key/value caches of recent reference prompts. A new reference that shares a prefix with
    a cached one (the same prompt after an edit further down) computes only the rest."""

    def __init__(self, backend: TorchBackend, size: int = 2) -> None:
        self.backend = backend
        self.size = size
        self.entries: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = (
            OrderedDict()
        )
        self.supported = _supports_cache(backend.model)
        # transformers 5.x renames `past_key_values` to `cache` (the old name warns)
        params = inspect.signature(backend.model.forward).parameters
        self.cache_kwarg = "cache" if "cache" in params else "past_key_values"
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


def _fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 scoring is faster than float32 here: a CPU with native bf16
    instructions (AVX-512 BF16 / AMX, as oneDNN reports) or a CUDA device that has them."""
    try:
        if device.type == "cpu":
            return bool(
                torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported()
            )
        if device.type == "cuda":
            return bool(torch.cuda.is_bf16_supported())
    except (AttributeError, RuntimeError):
        pass
    return False


def _supports_cache(model: torch.nn.Module) -> bool:
    """Prefix reuse needs a decoder whose cache is a plain DynamicCache (no sliding windows,
    no recurrent state): checked once by building one from the config."""
    try:
        from transformers import DynamicCache

        cache = DynamicCache(config=getattr(model, "config", None))
        return all(type(layer).__name__ == "DynamicLayer" for layer in cache.layers)
    except Exception:
        return False


def gather_logprobs(logits: torch.Tensor, target: list[int]) -> torch.Tensor:
    """log_softmax over the vocabulary at the last T positions, picked at the target ids."""
    last = logits[:, -len(target) :, :].float()
    logp = torch.log_softmax(last, dim=-1)
    index = torch.tensor(target, device=logits.device).view(1, -1, 1).expand(logp.shape[0], -1, 1)
    return logp.gather(-1, index).squeeze(-1)
