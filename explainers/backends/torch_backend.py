"""PyTorch backend (transformers causal LMs): batched scoring (with prefix reuse, packed on
Llama-family models), generation and gradients on input embeddings. Attention reading is
`torch_attention.py`; the reference prompts' key/value caches are `torch_prefix.py`; the
"why not …?" branches' batched greedy completion is `torch_continuations.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import torch

from promptxray.explainers.backends import memory
from promptxray.explainers.backends.base import PaddedBatch, ProgressFn, memory_budget
from promptxray.explainers.backends.capabilities import Capabilities
from promptxray.explainers.backends.packed import PackedLlama, supports_packed
from promptxray.explainers.backends.torch_attention import AttentionReading
from promptxray.explainers.backends.torch_continuations import TorchContinuations
from promptxray.explainers.backends.torch_prefix import PrefixCache
from promptxray.explainers.errors import MemoryLimitError
from promptxray.explainers.models.loading import LoadedModel


class TorchBackend(AttentionReading, TorchContinuations):
    """A transformers model in fp32 on the CPU (or wherever it was loaded)."""

    name = "torch"
    capabilities = Capabilities(
        streams=True, samples=True, gradients=True, attentions=True, logits=True
    )

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
        s = memory.Shape.of(self.model)
        keys = width + cached
        activations = width * (4 * s.hidden + 3 * s.inter)
        scores = 2 * s.heads * width * keys
        kv = 2 * s.layers * s.kv_heads * s.head_dim * keys
        logits = 2 * s.vocab * min(width, 64)
        return 4 * (activations + scores + kv + logits)

    # --- scoring with a shared prefix ----------------------------------------------------------
    def _score_after_prefix(
        self,
        plan: tuple[list[int], list[int]],
        inputs: list[list[int]],
        target: list[int],
        reference: Sequence[int],
        progress: ProgressFn | None,
    ) -> np.ndarray:
        """Variants of `reference` share its ids up to their first edit: the reference's
        key/value cache is computed once, and each batch runs only its rows' suffixes after
        the longest prefix all of them share (packed, or as padded batches)."""
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
        packed = self.packed
        assert packed is not None
        low = torch.bfloat16 if self.scoring_precision == "bf16" else None

        def run(chunk: list[int]) -> np.ndarray:
            rows = [inputs[i][shared[i] :] + target[:-1] for i in chunk]
            scores = packed.target_logprobs(rows, [shared[i] for i in chunk], kv, target, low)
            return scores.double().cpu().numpy()

        chunks = self._packed_chunks(order, shared, inputs, len(target))
        return self._score_batches(chunks, len(inputs), len(target), run, progress)

    def _packed_chunks(
        self, order: list[int], shared: list[int], inputs: list[list[int]], t: int
    ) -> Iterator[list[int]]:
        """Batches of rows in `order`, each as many as fit `packed_tokens()` tokens and the
        memory budget (the tokens' activations plus each row's logits)."""
        assert self.packed is not None
        budget = self.packed_tokens()
        memory = memory_budget()
        per_token = self.packed.bytes_per_token()
        per_row = self.packed.bytes_per_row(t)
        start = 0
        while start < len(order):
            chunk: list[int] = []
            tokens = 0
            for i in order[start:]:
                n = len(inputs[i]) - shared[i] + t - 1
                peak = (tokens + n) * per_token + (len(chunk) + 1) * per_row
                if chunk and (tokens + n > budget or peak > memory):
                    break
                chunk.append(i)
                tokens += n
            yield chunk
            start += len(chunk)

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
    def next_token_logits(self, batch: PaddedBatch, keep: int | Sequence[int]) -> np.ndarray:
        """Logits [B, K, V] at the kept positions (the last K, or the positions listed)."""
        kept: Any = (
            keep
            if isinstance(keep, int)
            else torch.tensor(list(keep), dtype=torch.long, device=self.device)
        )
        with torch.inference_mode():
            out = self.model(**self._tensors(batch), logits_to_keep=kept, use_cache=False)
        return np.asarray(out.logits.float().cpu().numpy())

    def generate(self, ids: Sequence[int], max_new_tokens: int) -> list[int]:
        if max_new_tokens <= 0:
            return []
        input_ids = torch.tensor([list(ids)], device=self.device)
        eos = sorted(self.eos_ids())
        cache: dict[str, Any] = {}
        if self.prefix_reuse and len(ids) > 1:
            # the prompt's key/value cache, kept for the scoring that follows (f(x) and every
            # variant reuse it): generation starts from it instead of its own prefill
            from transformers import DynamicCache

            kv = self.prefix.get(ids)
            cache[self.prefix.cache_kwarg] = DynamicCache(
                ddp_cache_data=[(k[:, :, :-1], v[:, :, :-1]) for k, v in kv]
            )
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
            **cache,
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


def gather_logprobs(logits: torch.Tensor, target: list[int]) -> torch.Tensor:
    """log_softmax over the vocabulary at the last T positions, picked at the target ids."""
    last = logits[:, -len(target) :, :].float()
    logp = torch.log_softmax(last, dim=-1)
    index = torch.tensor(target, device=logits.device).view(1, -1, 1).expand(logp.shape[0], -1, 1)
    return logp.gather(-1, index).squeeze(-1)
