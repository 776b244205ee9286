"""The exportable "explain" graph of a Llama-family model: the forward that occlusion needs,
in plain torch ops that torch.onnx's dynamo exporter turns into a compact ONNX graph.

Inputs (B rows, S new tokens, P past positions, K read positions):

- `input_ids` [B, S], `position_ids` [B, S] (explicit: left padding and a past of P tokens
  are the caller's business), `attention_mask` [B, P + S] (1: a real key, 0: padding);
- `logits_positions` [K]: the positions (0 <= i < S, the same for every row) whose logits are
  read; the vocabulary projection runs only there, never over all S positions;
- per layer `past_key_i`, `past_value_i` [1, kv_heads, P, head_dim]: keys/values of a prefix
  shared by every row, given once with batch 1 and broadcast inside the graph (never copied
  per row). With no prefix, a dummy past of length 1 whose mask slot is 0 (torch.export
  dislikes a dimension that may be 0).

Outputs: `logits` [B, K, vocab], `log_normalizer` [B, K] (log-sum-exp of the logits, so
log-probabilities are `logits[target] - log_normalizer`), and per layer `present_key_i`,
`present_value_i` [B, kv_heads, S, head_dim]: the keys/values of the S new tokens only (a
caller appends them to its past; the reference prompt's become the prefix of its variants).

Attention is computed against the past and the new keys separately and joined into one
softmax (a shared maximum, the two exponentiated parts, one normaliser), so the past is read in
place and no concatenated score tensor is built (9-14% faster than concatenating the scores,
bench/README.md, "ONNX Runtime"). The last layer runs its queries, attention and MLP only at
`logits_positions`. Same arithmetic as the transformers forward in fp32 (tests: within 1e-4 of
the torch backend's scores).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from promptxray.explainers.models.llama import is_plain_llama


def supports_explain_graph(model: Any) -> bool:
    """A plain Llama causal LM (`is_plain_llama`): what `ExplainLlama` reimplements. Other
    architectures are exported as the plain logits graph."""
    return is_plain_llama(model)


def graph_shape(model: Any) -> dict[str, int]:
    """The sizes a backend needs to feed the graph and estimate its memory."""
    config = model.config
    heads = int(config.num_attention_heads)
    return {
        "layers": int(config.num_hidden_layers),
        "heads": heads,
        "kv_heads": int(getattr(config, "num_key_value_heads", None) or heads),
        "head_dim": int(getattr(config, "head_dim", None) or config.hidden_size // heads),
        "hidden": int(config.hidden_size),
        "intermediate": int(config.intermediate_size),
        "vocab": int(config.vocab_size),
    }


def io_names(layers: int) -> tuple[list[str], list[str]]:
    """Input and output names, in the graph's order."""
    inputs = ["input_ids", "attention_mask", "position_ids", "logits_positions"]
    outputs = ["logits", "log_normalizer"]
    for i in range(layers):
        inputs += [f"past_key_{i}", f"past_value_{i}"]
        outputs += [f"present_key_{i}", f"present_value_{i}"]
    return inputs, outputs


class ExplainLlama(torch.nn.Module):
    """The explain graph's forward over a transformers Llama model's own weights."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model
        shape = graph_shape(model)
        self.heads = shape["heads"]
        self.kv_heads = shape["kv_heads"]
        self.head_dim = shape["head_dim"]
        self.group = self.heads // self.kv_heads

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = self.head_dim // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        logits_positions: torch.Tensor,
        past: list[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        inner = self.model.model
        rows, new = input_ids.shape
        kv_heads, group, d = self.kv_heads, self.group, self.head_dim
        x = inner.embed_tokens(input_ids)
        cos, sin = inner.rotary_emb(x, position_ids)
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, S, d]: broadcast over heads
        past_len = past[0].shape[2]
        keys = attention_mask.bool()
        # additive biases [B, 1, 1, S, P] (past keys) and [B, 1, 1, S, S] (own keys, causal);
        # a finite minimum (not -inf) keeps a fully masked padding row finite
        lowest = torch.finfo(x.dtype).min
        zero = torch.zeros((), dtype=x.dtype)
        floor = torch.full((), lowest, dtype=x.dtype)
        past_bias = torch.where(keys[:, None, None, None, :past_len], zero, floor)
        steps = torch.arange(new, device=input_ids.device)
        causal = steps[None, :] <= steps[:, None]
        own_bias = torch.where(causal & keys[:, None, None, None, past_len:], zero, floor)
        presents: list[torch.Tensor] = []
        n_layers = len(inner.layers)
        for index, layer in enumerate(inner.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            k = attn.k_proj(h).view(rows, new, kv_heads, d).transpose(1, 2)
            v = attn.v_proj(h).view(rows, new, kv_heads, d).transpose(1, 2)
            k = self._rope(k, cos, sin)
            presents += [k, v]
            q_cos, q_sin, q_bias_past, q_bias_own = cos, sin, past_bias, own_bias
            if index == n_layers - 1:  # only the read positions go on
                x, h = x[:, logits_positions], h[:, logits_positions]
                q_cos, q_sin = cos[:, :, logits_positions], sin[:, :, logits_positions]
                q_bias_own = own_bias[:, :, :, logits_positions]
            queries = h.shape[1]
            q = attn.q_proj(h).view(rows, queries, kv_heads, group, d).permute(0, 2, 3, 1, 4)
            q = self._rope(q, q_cos[:, :, None], q_sin[:, :, None])  # [B, kv, group, Q, d]
            past_k, past_v = past[2 * index][:, :, None], past[2 * index + 1][:, :, None]
            # one softmax over past and own keys, in two parts (no concatenated scores)
            q = q * attn.scaling
            to_past = torch.matmul(q, past_k.transpose(-1, -2)) + q_bias_past
            to_own = torch.matmul(q, k[:, :, None].transpose(-1, -2)) + q_bias_own
            top = torch.maximum(to_past.amax(-1, keepdim=True), to_own.amax(-1, keepdim=True))
            to_past = torch.exp(to_past - top)
            to_own = torch.exp(to_own - top)
            total = to_past.sum(-1, keepdim=True) + to_own.sum(-1, keepdim=True)
            out = (torch.matmul(to_past, past_v) + torch.matmul(to_own, v[:, :, None])) / total
            out = out.permute(0, 3, 1, 2, 4).reshape(rows, queries, self.heads * d)
            x = x + attn.o_proj(out)
            h = layer.post_attention_layernorm(x)
            mlp = layer.mlp
            x = x + mlp.down_proj(F.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
        # 2-D, so the exporter emits Gemm(transB=1) over the (tied) weight as stored, not a
        # MatMul after a Transpose that ORT would fold into a second copy of the weight
        normed = inner.norm(x)
        flat = F.linear(normed.reshape(-1, normed.shape[-1]), self.model.lm_head.weight)
        logits = flat.view(rows, normed.shape[1], -1)
        return (logits, torch.logsumexp(logits, dim=-1), *presents)


def export_explain_graph(model: Any, target: str, opset: int) -> None:
    """Export `ExplainLlama(model)` to `target` (external data beside it), dynamic in rows,
    new tokens, past length and read positions."""
    shape = graph_shape(model)
    wrapper = ExplainLlama(model).eval()
    rows, new, past_len, read = 2, 5, 3, 2
    ids = torch.tensor([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5]])
    mask = torch.tensor([[1, 1, 1, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]])
    positions = torch.tensor([[3, 3, 3, 4, 5], [3, 4, 5, 6, 7]])
    read_at = torch.tensor([3, 4])
    past = [
        torch.randn(1, shape["kv_heads"], past_len, shape["head_dim"])
        for _ in range(2 * shape["layers"])
    ]
    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("seq")
    past_dim = torch.export.Dim("past")
    keys = torch.export.Dim("keys")
    positions_dim = torch.export.Dim("positions")
    inputs, outputs = io_names(shape["layers"])
    dynamic = (
        {0: batch, 1: seq},
        {0: batch, 1: keys},
        {0: batch, 1: seq},
        {0: positions_dim},
        [{2: past_dim} for _ in past],
    )
    assert ids.shape == (rows, new) and len(read_at) == read
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            (ids, mask, positions, read_at, past),
            dynamo=True,
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=dynamic,
            opset_version=opset,
            verbose=False,
        )
    assert program is not None
    program.save(target, external_data=True)
