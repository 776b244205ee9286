"""The "fused" explain graph of a Llama-family model, emitted operator by operator on ONNX
Runtime's fused CPU kernels for decoder LLMs: `GroupQueryAttention` (rotary embedding inside,
past keys/values read in place), `SimplifiedLayerNormalization` and
`SkipSimplifiedLayerNormalization` (residual add + RMS norm in one pass) and `MatMulNBits`
(block-quantized weights; plain `MatMul` for fp32 weights).

Rows are packed, not padded: every row's new tokens follow each other in one sequence of N
tokens after a shared past of P positions, and an attention bias lets each token see the past
and the earlier tokens of its own row only. (ORT's GroupQueryAttention takes several new tokens
after a past only with batch 1, and per-row lengths only without a past, so one packed row with
a bias is how its kernel runs occlusion's batches; every linear layer then runs exactly the real
tokens.) Positions are explicit, so each row's tokens continue its prefix at the right place.

Inputs: `input_ids`, `position_ids` [1, N]; `row_ids` [N] (the row of each token, rows in
order); `past_seen` [N] (how many past positions each token sees: a row continues its own
prefix of the shared past, so occlusion's variants each run only what follows their own
shared prefix); `read_index` [R] (the tokens whose next-token logits are read); per layer
`past_key_i`, `past_value_i` [1, kv_heads, P, head_dim] (P may be 0). Outputs: `logits` [R, vocab],
`log_normalizer` [R] (log-sum-exp of each logits row), per layer `present_key_i`,
`present_value_i` [1, kv_heads, P + N, head_dim]. The last layer's output projection and MLP
run only at `read_index`, and so does the vocabulary projection.

Weights are `Blocks` (GGUF Q4_0/Q4_1/Q8_0 carried over as they are stored, or Q8_0 made from
fp32 weights; Q8_0 runs as its two exact 4-bit halves, `q8_halves`) or fp32 arrays. Q4_1's per-
block minimum m is an exact separate term: x·(d·q + m) = MatMulNBits(x; d, q, zero point 0) + (x
summed per block of 32)·m, so the weights are the GGUF file's, not re-rounded onto a zero-point
grid. Linear layers that read the same input (query/key/value, gate/up) are one operator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np

from promptxray.explainers.models.gguf_weights import BLOCK, Blocks

MS = "com.microsoft"
OPSET = 18
# MatMulNBits accuracy level 1: fp32 compute (weights dequantized block by block). Level 4
# (int8 activations) fails occlusion's fidelity floor (bench/README.md, "ONNX Runtime").
ACCURACY_LEVEL = 1
# GroupQueryAttention's CPU kernel needs head_dim % 16 == 0
HEAD_DIM_MULTIPLE = 16

Weight: TypeAlias = Blocks | np.ndarray
TensorProtoFloat = 1  # onnx.TensorProto.FLOAT


def io_names(layers: int) -> tuple[list[str], list[str]]:
    """Input and output names, in the graph's order."""
    inputs = ["input_ids", "position_ids", "row_ids", "past_seen", "read_index"]
    outputs = ["logits", "log_normalizer"]
    for i in range(layers):
        inputs += [f"past_key_{i}", f"past_value_{i}"]
        outputs += [f"present_key_{i}", f"present_value_{i}"]
    return inputs, outputs


def supports_fused(shape: Mapping[str, int]) -> bool:
    """Whether GroupQueryAttention's CPU kernel takes this model's heads."""
    return shape["head_dim"] % HEAD_DIM_MULTIPLE == 0 and shape["heads"] % shape["kv_heads"] == 0


class _Builder:
    """Collects nodes and initializers, with fresh names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0
        self.consts: dict[tuple[str, bytes], str] = {}

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def init(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def const(self, value: Sequence[int] | int | float, dtype: Any = np.int64) -> str:
        array = np.array(value, dtype=dtype)
        key = (str(array.dtype) + str(array.shape), array.tobytes())
        if key not in self.consts:
            self.consts[key] = self.init("const", array)
        return self.consts[key]

    def op(self, op: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any) -> Any:
        from onnx import helper

        domain = attrs.pop("domain", "")
        names = [self.name(op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, domain=domain, **attrs))
        return names[0] if outputs == 1 else names


def _pack4(codes: np.ndarray) -> np.ndarray:
    """4-bit codes [n, blocks, 32] -> MatMulNBits' bytes [n, blocks, 16] (even index low)."""
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def q8_halves(blocks: Blocks) -> tuple[Blocks, Blocks]:
    """Q8_0 as two exact 4-bit halves: q = 16·hi + lo (hi = q >> 4 in −8..7, lo = q & 15), so
    d·q = (16d)·hi + d·lo with no rounding (16d is exact, and so are both products and their
    sum, d having fp16's 11 bits). ORT's 8-bit MatMulNBits CPU kernel dequantizes the whole
    weight on every call (173 ms for the 49152 × 576 vocabulary projection at one row, against
    0.3 ms for a 4-bit 3072 × 576 weight: bench/README.md), its 4-bit kernels do not."""
    q = blocks.codes.astype(np.int16) - 128
    hi = Blocks("Q4_0", ((q >> 4) + 8).astype(np.uint8), blocks.scales * np.float32(16))
    lo = Blocks("Q4_U", (q & 15).astype(np.uint8), blocks.scales)
    return hi, lo


def _zero_points(blocks: int, first: int, rest: int, rows: int) -> np.ndarray:
    """MatMulNBits' packed 4-bit zero points [rows, ceil(blocks / 2)]: `first` for the first
    half of the blocks, `rest` for the others (a Q8_0 weight run as its two halves)."""
    per_block = np.full(blocks, rest, dtype=np.uint8)
    per_block[: blocks // 2] = first
    if blocks % 2:
        per_block = np.append(per_block, 0).astype(np.uint8)
    packed = per_block[0::2] | (per_block[1::2] << 4)
    return np.repeat(packed[None], rows, axis=0)


class _Linears:
    """x·Wᵀ for a list of weights read from the same input, one operator per run of weights of
    the same kind (their rows concatenated), the blocks' initializers shared when reused."""

    def __init__(self, b: _Builder) -> None:
        self.b = b
        self.cache: dict[int, tuple[str, ...]] = {}

    def _blocks_inits(self, parts: list[Blocks]) -> tuple[str, ...]:
        """Initializers of 4-bit blocks: packed codes, scales, and zero points unless all are
        8 (plus Q4_1's transposed minimums). Q8_0 weights become their two halves side by
        side along the input axis (`q8_halves`: the input is read twice), one operator."""
        key = id(parts[0]) if len(parts) == 1 else -1
        if key in self.cache:
            return self.cache[key]
        if parts[0].kind == "Q8_0":
            split = [q8_halves(p) for p in parts]
            codes = np.concatenate([np.concatenate([h.codes, lo.codes], 1) for h, lo in split])
            scales = np.concatenate([np.concatenate([h.scales, lo.scales], 1) for h, lo in split])
        else:
            codes = np.concatenate([p.codes for p in parts])
            scales = np.concatenate([p.scales for p in parts])
        names: tuple[str, ...] = (self.b.init("w", _pack4(codes)), self.b.init("scales", scales))
        rows, blocks = scales.shape
        if parts[0].kind == "Q8_0":
            names += (self.b.init("zero_points", _zero_points(blocks, 8, 0, rows)),)
        elif parts[0].zero_point == 0:
            names += (self.b.init("zero_points", _zero_points(blocks, 0, 0, rows)),)
        if parts[0].kind == "Q4_1":
            offsets = np.concatenate([p.offsets for p in parts if p.offsets is not None])
            names += (self.b.init("mins_t", offsets.T),)
        if key != -1:
            self.cache[key] = names
        return names

    def stored(self, weight: np.ndarray) -> str:
        """An fp32 weight as stored [rows, cols], one initializer however often it is read."""
        if id(weight) not in self.cache:
            self.cache[id(weight)] = (self.b.init("w", weight.astype(np.float32)),)
        return self.cache[id(weight)][0]

    def head(self, x: str, weight: Weight, vocab: int) -> str:
        """The vocabulary projection [R, vocab]; an fp32 (tied) table read as stored, by Gemm."""
        if isinstance(weight, np.ndarray):
            flat = self.b.op("Reshape", [x, self.b.const([-1, weight.shape[1]])])
            return self.b.op("Gemm", [flat, self.stored(weight)], transB=1)
        return self.b.op("Reshape", [self(x, [weight]), self.b.const([-1, vocab])])

    def __call__(self, x: str, weights: Sequence[Weight]) -> str:
        groups: list[list[Weight]] = []
        for w in weights:
            same = groups and _kind(groups[-1][0]) == _kind(w)
            if same:
                groups[-1].append(w)
            else:
                groups.append([w])
        outs = [self._group(x, g) for g in groups]
        return outs[0] if len(outs) == 1 else self.b.op("Concat", outs, axis=-1)

    def _group(self, x: str, group: list[Weight]) -> str:
        b = self.b
        if isinstance(group[0], np.ndarray):
            w = np.concatenate([np.asarray(g) for g in group]).T.astype(np.float32)
            return b.op("MatMul", [x, b.init("w_t", w)])
        parts = [g for g in group if isinstance(g, Blocks)]
        rows = sum(p.shape[0] for p in parts)
        cols = parts[0].shape[1]
        inits = self._blocks_inits(parts)
        zero_points = parts[0].kind == "Q8_0" or parts[0].zero_point == 0
        if parts[0].kind == "Q8_0":  # [x, x] against (16d)·hi then d·lo: one exact product
            x = b.op("Concat", [x, x], axis=-1)
        y = b.op(
            "MatMulNBits",
            [x, *inits[: 3 if zero_points else 2]],
            domain=MS,
            K=cols * (2 if parts[0].kind == "Q8_0" else 1),
            N=rows,
            bits=4,
            block_size=BLOCK,
            accuracy_level=ACCURACY_LEVEL,
        )
        if parts[0].kind != "Q4_1":
            return y
        # the exact minimum term: per-block sums of x times the minimums
        blocked = b.op("Reshape", [x, b.const([0, 0, cols // BLOCK, BLOCK])])
        sums = b.op("ReduceSum", [blocked, b.const([-1])], keepdims=0)
        return b.op("Add", [y, b.op("MatMul", [sums, inits[3]])])


def _kind(w: Weight) -> str:
    return w.kind if isinstance(w, Blocks) else "fp32"


def _rows4(b: _Builder, linears: _Linears, blocks: Blocks, ids: str) -> str:
    """The 4-bit codes of the table rows `ids`, unpacked: [1, N, blocks, 32] uint8."""
    packed = b.op("Gather", [linears._blocks_inits([blocks])[0], ids], axis=0)
    low = b.op("BitwiseAnd", [packed, b.const(15, np.uint8)])
    high = b.op("BitShift", [packed, b.const(4, np.uint8)], direction="RIGHT")
    pairs = b.op(
        "Concat",
        [b.op("Unsqueeze", [low, b.const([-1])]), b.op("Unsqueeze", [high, b.const([-1])])],
        axis=-1,
    )
    return b.op("Reshape", [pairs, b.const([0, 0, 0, BLOCK])])


def _embedding(b: _Builder, linears: _Linears, table: Weight, ids: str, hidden: int) -> str:
    """Rows of the embedding table, computed as the GGUF reader dequantizes them (from the
    initializers the vocabulary projection reads too, when the two are tied)."""
    if isinstance(table, np.ndarray):
        return b.op("Gather", [linears.stored(table), ids], axis=0)
    as_float = TensorProtoFloat
    if table.kind == "Q8_0":  # q = 16 (hi code - 8) + lo code, exactly, then the reader's q * d
        names = linears._blocks_inits([table])  # the two halves side by side (16d, d scales)
        both = b.op("Cast", [_rows4(b, linears, table, ids)], to=as_float)
        hi, lo = b.op("Split", [both], 2, axis=2, num_outputs=2)
        hi = b.op("Sub", [hi, b.const(8.0, np.float32)])
        values = b.op("Add", [b.op("Mul", [hi, b.const(16.0, np.float32)]), lo])
        d = b.op("Split", [b.op("Gather", [names[1], ids], axis=0)], 2, axis=2, num_outputs=2)[1]
        scales = b.op("Unsqueeze", [d, b.const([-1])])
    else:
        values = b.op("Cast", [_rows4(b, linears, table, ids)], to=as_float)
        if table.zero_point:
            values = b.op("Sub", [values, b.const(float(table.zero_point), np.float32)])
        scale_table = linears._blocks_inits([table])[1]
        scales = b.op("Unsqueeze", [b.op("Gather", [scale_table, ids], axis=0), b.const([-1])])
    # the reader's operand order: q * d for Q8_0, d * q (+ m) for the 4-bit types
    rows = b.op("Mul", [values, scales] if table.kind == "Q8_0" else [scales, values])
    if table.kind == "Q4_1":
        mins = b.op("Gather", [b.init("embed_mins", table.offsets), ids], axis=0)
        rows = b.op("Add", [rows, b.op("Unsqueeze", [mins, b.const([-1])])])
    return b.op("Reshape", [rows, b.const([0, 0, hidden])])


def build_fused_graph(
    weights: Mapping[str, Weight],
    shape: Mapping[str, int],
    cos: np.ndarray,
    sin: np.ndarray,
    eps: float,
) -> Any:
    """The fused explain graph (an onnx.ModelProto) over Hugging Face-named weights: `cos`,
    `sin` [max positions, head_dim / 2] are the model's rotary tables."""
    from onnx import TensorProto, helper

    b = _Builder()
    linears = _Linears(b)
    layers, heads, kv = shape["layers"], shape["heads"], shape["kv_heads"]
    d, hidden = shape["head_dim"], shape["hidden"]
    inputs, outputs = io_names(layers)
    ids, positions, row_ids, past_seen, read = inputs[:5]
    cos_name, sin_name = (
        b.init("cos", cos.astype(np.float32)),
        b.init("sin", sin.astype(np.float32)),
    )

    # lengths and the packed rows' attention bias [1, 1, N, P + N]
    n = b.op("Gather", [b.op("Shape", [ids]), b.const(1)], axis=0)
    p = b.op("Gather", [b.op("Shape", ["past_key_0"]), b.const(2)], axis=0)
    total64 = b.op("Add", [p, n])
    total = b.op("Cast", [total64], to=TensorProto.INT32)
    seqlens = b.op("Unsqueeze", [b.op("Sub", [total, b.const(1, np.int32)]), b.const([0])])
    steps = b.op("Range", [b.const(0), n, b.const(1)])
    causal = b.op(
        "GreaterOrEqual",
        [b.op("Unsqueeze", [steps, b.const([1])]), b.op("Unsqueeze", [steps, b.const([0])])],
    )
    same_row = b.op(
        "Equal",
        [b.op("Unsqueeze", [row_ids, b.const([1])]), b.op("Unsqueeze", [row_ids, b.const([0])])],
    )
    lowest = float(np.finfo(np.float32).min)
    own = b.op(
        "Where",
        [b.op("And", [causal, same_row]), b.const(0.0, np.float32), b.const(lowest, np.float32)],
    )
    past_steps = b.op("Range", [b.const(0), p, b.const(1)])
    seen = b.op(
        "Less",
        [
            b.op("Unsqueeze", [past_steps, b.const([0])]),
            b.op("Unsqueeze", [past_seen, b.const([1])]),
        ],
    )
    past_bias = b.op("Where", [seen, b.const(0.0, np.float32), b.const(lowest, np.float32)])
    bias = b.op("Concat", [past_bias, own], axis=1)
    bias = b.op("Unsqueeze", [bias, b.const([0, 1])])

    def norm(x: str, gamma: str, skip: str | None = None) -> tuple[str, str]:
        if skip is None:
            return b.op("SimplifiedLayerNormalization", [x, gamma], axis=-1, epsilon=eps), x
        out = b.op("SkipSimplifiedLayerNormalization", [x, skip, gamma], 4, domain=MS, epsilon=eps)
        return out[0], out[3]

    def layer(i: int, name: str) -> Weight:
        return weights[f"model.layers.{i}.{name}.weight"]

    def gamma(name: str) -> str:
        return b.init("gamma", np.asarray(weights[name], dtype=np.float32))

    x = _embedding(b, linears, weights["model.embed_tokens.weight"], ids, hidden)
    h, resid = norm(x, gamma("model.layers.0.input_layernorm.weight"))
    for i in range(layers):
        qkv = linears(
            h,
            [
                layer(i, "self_attn.q_proj"),
                layer(i, "self_attn.k_proj"),
                layer(i, "self_attn.v_proj"),
            ],
        )
        attn = b.op(
            "GroupQueryAttention",
            [
                qkv,
                "",
                "",
                f"past_key_{i}",
                f"past_value_{i}",
                seqlens,
                total,
                cos_name,
                sin_name,
                positions,
                bias,
            ],
            3,
            domain=MS,
            num_heads=heads,
            kv_num_heads=kv,
            do_rotary=1,
            rotary_interleaved=0,
            local_window_size=-1,
        )[0]
        b.nodes[-1].output[1:] = [f"present_key_{i}", f"present_value_{i}"]
        if i == layers - 1:  # only the read positions go on
            attn = b.op("Gather", [attn, read], axis=1)
            resid = b.op("Gather", [resid, read], axis=1)
        o = linears(attn, [layer(i, "self_attn.o_proj")])
        h, resid = norm(o, gamma(f"model.layers.{i}.post_attention_layernorm.weight"), resid)
        gate, up = b.op(
            "Split",
            [linears(h, [layer(i, "mlp.gate_proj"), layer(i, "mlp.up_proj")])],
            2,
            axis=-1,
            num_outputs=2,
        )
        act = b.op("Mul", [b.op("Mul", [gate, b.op("Sigmoid", [gate])]), up])
        down = linears(act, [layer(i, "mlp.down_proj")])
        after = (
            "model.norm.weight"
            if i == layers - 1
            else f"model.layers.{i + 1}.input_layernorm.weight"
        )
        h, resid = norm(down, gamma(after), resid)
    head = weights.get("lm_head.weight", weights["model.embed_tokens.weight"])
    logits = linears.head(h, head, shape["vocab"])
    b.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    b.nodes.append(
        helper.make_node("ReduceLogSumExp", [logits, b.const([-1])], ["log_normalizer"], keepdims=0)
    )

    def value(name: str, dtype: int, dims: list[Any]) -> Any:
        return helper.make_tensor_value_info(name, dtype, dims)

    kv_dims = [1, kv, None, d]
    graph_inputs = [
        value("input_ids", TensorProto.INT64, [1, "tokens"]),
        value("position_ids", TensorProto.INT64, [1, "tokens"]),
        value("row_ids", TensorProto.INT64, ["tokens"]),
        value("past_seen", TensorProto.INT64, ["tokens"]),
        value("read_index", TensorProto.INT64, ["reads"]),
    ] + [value(name, TensorProto.FLOAT, kv_dims) for name in inputs[5:]]
    graph_outputs = [
        value("logits", TensorProto.FLOAT, ["reads", shape["vocab"]]),
        value("log_normalizer", TensorProto.FLOAT, ["reads"]),
    ] + [value(name, TensorProto.FLOAT, kv_dims) for name in outputs[2:]]
    graph = helper.make_graph(b.nodes, "promptxray_fused", graph_inputs, graph_outputs, b.inits)
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
        producer_name="promptxray",
    )


def rotary_tables(model: Any, length: int) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [length, head_dim / 2] from the transformers model's own rotary embedding (the
    values torch uses at each position, computed the same way)."""
    import torch

    inner = model.model
    positions = torch.arange(length)[None]
    probe = torch.zeros(1, dtype=torch.float32)
    with torch.no_grad():
        cos, sin = inner.rotary_emb(probe, positions)
    half = cos.shape[-1] // 2
    return cos[0, :, :half].numpy().copy(), sin[0, :, :half].numpy().copy()


def model_weights(model: Any) -> dict[str, np.ndarray]:
    """A transformers model's fp32 weights by name; a vocabulary projection tied to the
    embedding is left out (the graph reads the embedding table for both)."""
    weights = {
        name: tensor.detach().float().numpy()
        for name, tensor in model.state_dict().items()
        if name.endswith(".weight")
    }
    if getattr(model.config, "tie_word_embeddings", False):
        weights.pop("lm_head.weight", None)
    return weights
