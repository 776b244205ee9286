"""PyTorch backend (transformers causal LMs): batched scoring, generation, gradients on input
embeddings, and attention maps (switching SDPA models to eager attention while they are read).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from promptxray.explainers.backends.base import Backend, PaddedBatch
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

    def logprobs_from_embeds(self, embeds: torch.Tensor, target: Sequence[int]) -> torch.Tensor:
        """Log-probs [B, T] of `target` for rows of embeddings [B, L, D] that already end with
        the embeddings of target[:-1]; differentiable."""
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device)
        out = self.model(
            inputs_embeds=embeds, attention_mask=mask, logits_to_keep=len(target), use_cache=False
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
        """Per layer, attention weights [heads, L, L] of one sequence."""
        input_ids = torch.tensor([list(ids)], device=self.device)
        with self.eager_attention():
            out = self.model(input_ids=input_ids, output_attentions=True, use_cache=False)
        self.counters.forward_passes += 1
        self.counters.sequences += 1
        if not out.attentions or out.attentions[0] is None:
            raise RuntimeError("the model returned no attention weights")
        return [a[0].float() for a in out.attentions]


def gather_logprobs(logits: torch.Tensor, target: list[int]) -> torch.Tensor:
    """log_softmax over the vocabulary at the last T positions, picked at the target ids."""
    last = logits[:, -len(target) :, :].float()
    logp = torch.log_softmax(last, dim=-1)
    index = torch.tensor(target, device=logits.device).view(1, -1, 1).expand(logp.shape[0], -1, 1)
    return logp.gather(-1, index).squeeze(-1)
