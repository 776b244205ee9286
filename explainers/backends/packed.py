"""Packed suffix scoring for Llama-family models on the CPU: the exact computation of
`model(prefix + suffix)`'s target log-probabilities, for many rows at once, cheaper than a
padded batch through the transformers forward.

Each row continues the reference prompt's key/value cache after its own prefix length, and
only its own suffix runs. Rows are packed end to end on one token axis (no padding), so the
projections and the MLP see exactly the tokens that need computing. Attention is split in two
exact parts merged by their log-sum-exp: the row's queries against the reference prefix (one
unmasked rectangle, the prefix read in place, never copied per row), and against its own
suffix (causal, so the kernel skips the upper triangle a padded mask would compute). The last
layer runs its queries, attention and MLP only at the positions whose logits are read.

`bench/README.md` has the profile this answers and the measured effect; the tests compare it
with plain forwards (within 1e-4)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from promptxray.explainers.models.llama import is_plain_llama

_FLASH: Any = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def supports_packed(model: Any) -> bool:
    """True for a plain Llama causal LM (`is_plain_llama`) on the CPU with a flash attention
    kernel: what `PackedLlama` reimplements."""
    if _FLASH is None or not is_plain_llama(model):
        return False
    try:
        device = next(model.parameters()).device
    except StopIteration:
        return False
    return device.type == "cpu"


class PackedLlama:
    """Target log-probabilities of rows that continue a reference's key/value cache."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.inner = model.model
        config = model.config
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(getattr(config, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.group = self.heads // self.kv_heads
        self._low: dict[torch.dtype, list[dict[str, torch.Tensor]]] = {}

    def weights(self, dtype: torch.dtype | None = None) -> list[dict[str, torch.Tensor]]:
        """Per layer, the projection matrices (plus "lm_head" in a last entry): the model's own
        tensors, or copies in `dtype` made once (the bf16 preview: 2 bytes a parameter)."""
        names = ("q_proj", "k_proj", "v_proj", "o_proj")
        mlp = ("gate_proj", "up_proj", "down_proj")
        own = [
            {n: getattr(layer.self_attn, n).weight for n in names}
            | {n: getattr(layer.mlp, n).weight for n in mlp}
            for layer in self.inner.layers
        ] + [{"lm_head": self.model.lm_head.weight}]
        if dtype is None or dtype == own[0]["q_proj"].dtype:
            return own
        if dtype not in self._low:
            self._low[dtype] = [{n: w.detach().to(dtype) for n, w in d.items()} for d in own]
        return self._low[dtype]

    def bytes_per_token(self) -> int:
        """Peak activation bytes per packed token: the residual stream and its norm, q/k/v
        (k and v widened to every head), the attention output, the MLP's two halves."""
        c = self.model.config
        hidden = int(c.hidden_size)
        inter = int(getattr(c, "intermediate_size", 4 * hidden))
        width = self.heads * self.head_dim
        size = next(self.model.parameters()).element_size()
        return size * (3 * hidden + 6 * width + 2 * inter)

    def bytes_per_row(self, t_len: int) -> int:
        """Per packed row: its logits and their log-softmax (float32) at the T kept positions."""
        return 8 * t_len * int(self.model.config.vocab_size)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x * cos + rotate_half(x) * sin (transformers' formula), in three passes."""
        half = self.head_dim // 2
        out = x * cos
        out[..., :half].addcmul_(x[..., half:], sin[..., :half], value=-1.0)
        out[..., half:].addcmul_(x[..., :half], sin[..., half:])
        return out

    def _widen(self, t: torch.Tensor) -> torch.Tensor:
        """[n, kv_heads, d] -> [n, heads, d]: each key/value head repeated for its queries."""
        if self.group == 1:
            return t
        n = t.shape[0]
        return (
            t[:, :, None, :]
            .expand(n, self.kv_heads, self.group, self.head_dim)
            .reshape(n, self.heads, self.head_dim)
        )

    @torch.inference_mode()
    def target_logprobs(
        self,
        rows: Sequence[Sequence[int]],
        prefixes: Sequence[int],
        kv: Sequence[tuple[torch.Tensor, torch.Tensor]],
        target: Sequence[int],
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Log-probs [R, T] of `target` for each row: row r is the reference's first
        `prefixes[r]` tokens (read from `kv`, the reference's per-layer keys and values
        [1, kv_heads, L, d]) followed by `rows[r]`, whose last T - 1 ids are target[:-1].

        `dtype` (e.g. torch.bfloat16) runs the matrix products and attention in that
        precision, keeping the residual stream, norms, rotary embeddings and the log-sum-exps
        in float32: a cheaper, approximate preview (bench/README.md has its error)."""
        t_len = len(target)
        lens = [len(r) for r in rows]
        if min(lens) < t_len:
            raise ValueError("each row must end with target[:-1] after at least one token")
        weights = self.weights(dtype)
        low = dtype if weights[0]["q_proj"].dtype != self.model.lm_head.weight.dtype else None
        device = self.model.lm_head.weight.device
        heads, kv_heads, d = self.heads, self.kv_heads, self.head_dim
        starts = [0]
        for n in lens:
            starts.append(starts[-1] + n)
        total = starts[-1]
        ids = torch.tensor([t for r in rows for t in r], device=device)
        positions = torch.cat(
            [torch.arange(p, p + n, device=device) for p, n in zip(prefixes, lens, strict=True)]
        )
        x = self.inner.embed_tokens(ids)
        cos, sin = self.inner.rotary_emb(x, positions[None])
        cos, sin = cos[0, :, None, :], sin[0, :, None, :]
        # the positions whose logits predict the target: the last T of every row
        keep = torch.cat([torch.arange(s - t_len, s, device=device) for s in starts[1:]])
        att = low if low is not None else x.dtype  # attention's dtype
        # last layer, own suffix: the T kept queries see their row's keys up to themselves
        last_masks = [
            torch.zeros(t_len, n, dtype=att, device=device).masked_fill(
                ~torch.ones(t_len, n, dtype=torch.bool, device=device).tril(n - t_len),
                float("-inf"),
            )[None, None]
            for n in lens
        ]

        def linear(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return F.linear(h if low is None else h.to(low), w)

        def residual(x: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            if low is None:
                return torch.addmm(x, h, w.t())
            return x.add_(F.linear(h.to(low), w))

        def attn_dtype(t: torch.Tensor) -> torch.Tensor:
            return t.to(att)

        p_max = max(prefixes)
        n_layers = len(self.inner.layers)
        hidden = x.shape[-1]
        for index, layer in enumerate(self.inner.layers):
            last = index == n_layers - 1
            w = weights[index]
            attn = layer.self_attn
            norm = layer.input_layernorm
            h = F.rms_norm(x, (hidden,), norm.weight, norm.variance_epsilon)
            k = linear(h, w["k_proj"]).float().view(total, kv_heads, d)
            k = self._widen(attn_dtype(self._rope(k, cos, sin)))
            v = self._widen(attn_dtype(linear(h, w["v_proj"])).view(total, kv_heads, d))
            if last:  # only the kept positions go on; keys and values cover every position
                x, h, q_cos, q_sin = x[keep], h[keep], cos[keep], sin[keep]
            else:
                q_cos, q_sin = cos, sin
            q = linear(h, w["q_proj"]).float().view(-1, heads, d)
            q = attn_dtype(self._rope(q, q_cos, q_sin))
            if p_max > 0:
                ref_k, ref_v = (attn_dtype(t[0, :, :p_max]).transpose(0, 1) for t in kv[index])
                pre_k = self._widen(ref_k).transpose(0, 1)[None]
                pre_v = self._widen(ref_v).transpose(0, 1)[None]
            out = torch.empty_like(q)
            for r, (a, b) in enumerate(itertools.pairwise(starts)):
                qa, qb = (r * t_len, (r + 1) * t_len) if last else (a, b)
                q_r = q[qa:qb].transpose(0, 1)[None]
                k_r, v_r = k[a:b].transpose(0, 1)[None], v[a:b].transpose(0, 1)[None]
                if last:
                    own, own_lse = _FLASH(
                        q_r, k_r, v_r, 0.0, False, attn_mask=last_masks[r], scale=attn.scaling
                    )
                else:
                    own, own_lse = _FLASH(q_r, k_r, v_r, 0.0, True, scale=attn.scaling)
                own = own[0].transpose(0, 1)
                p = prefixes[r]
                if p == 0:
                    out[qa:qb] = own
                    continue
                pre, pre_lse = _FLASH(
                    q_r, pre_k[:, :, :p], pre_v[:, :, :p], 0.0, False, scale=attn.scaling
                )
                # softmax over both key sets = the two partial softmaxes weighted by their mass
                weight = torch.sigmoid(pre_lse[0] - own_lse[0]).t()[:, :, None]
                torch.lerp(own, pre[0].transpose(0, 1), weight.to(own.dtype), out=out[qa:qb])
            x = residual(x, out.view(-1, heads * d), w["o_proj"])
            norm = layer.post_attention_layernorm
            h = F.rms_norm(x, (hidden,), norm.weight, norm.variance_epsilon)
            gate = F.silu(linear(h, w["gate_proj"]), inplace=True)
            gate.mul_(linear(h, w["up_proj"]))
            x = residual(x, gate, w["down_proj"])
        logits = linear(self.inner.norm(x), weights[-1]["lm_head"]).view(len(rows), t_len, -1)
        logp = torch.log_softmax(logits.float(), dim=-1)
        index_t = torch.tensor(list(target), device=device).view(1, -1, 1)
        return logp.gather(-1, index_t.expand(len(rows), -1, 1)).squeeze(-1)
