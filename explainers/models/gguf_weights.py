"""A Llama-family GGUF file's weights as they are stored: blocks of 32 codes with a scale (and,
for Q4_1, a minimum), ready to become ONNX Runtime `MatMulNBits` weights without rounding again.

GGUF's Q4_0, Q4_1 and Q8_0 are exactly `MatMulNBits`' layout up to the order of the codes: Q4_0
is `scale × (q − 8)` (MatMulNBits' default 4-bit zero point), Q8_0 `scale × q` with a signed q
(stored here as q + 128; run as two exact 4-bit halves, `onnx_fused.q8_halves`), Q4_1 `scale × q
+ min` (zero point 0, the minimum carried beside as an exact term: `onnx_fused.py`).
`Blocks.dequantize` is the GGUF reader's own arithmetic (gguf-py, which transformers uses to
give torch its fp32 weights), so the tests compare it with that reader bit for bit. Any other
GGUF type is refused by name (`UnsupportedGGUFError`): re-rounding it is exactly what this path
exists to avoid.

Query and key rows are put back in Hugging Face's order (llama.cpp permutes them for its
interleaved rotary embedding), whole rows at a time, so no block changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptxray.explainers.errors import ModelLoadError

BLOCK = 32
SUPPORTED_BLOCKS = ("Q4_0", "Q4_1", "Q8_0")
SUPPORTED_PLAIN = ("F32", "F16")
# GGUF name (per layer, after "blk.{i}.") -> Hugging Face name (after "model.layers.{i}.")
LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


class UnsupportedGGUFError(ModelLoadError):
    """A GGUF tensor type (or architecture) this lossless path does not carry over."""


@dataclass(frozen=True)
class Blocks:
    """One weight matrix [rows, cols] in blocks of 32 along cols: `codes` [rows, cols/32, 32]
    (uint8, as MatMulNBits reads them), `scales` [rows, cols/32] float32, the weight being
    `scales × (codes − zero_point)` (+ `offsets`, Q4_1's per-block minimum). `kind` is the GGUF
    type, or Q4_U (4-bit, zero point 0: half of a Q8_0 weight, `onnx_fused.q8_halves`)."""

    kind: str
    codes: np.ndarray
    scales: np.ndarray
    offsets: np.ndarray | None = None

    @property
    def zero_point(self) -> int:
        return {"Q4_0": 8, "Q4_1": 0, "Q4_U": 0, "Q8_0": 128}[self.kind]

    @property
    def shape(self) -> tuple[int, int]:
        rows, blocks, _ = self.codes.shape
        return rows, blocks * BLOCK

    def dequantize(self) -> np.ndarray:
        """fp32 [rows, cols] with the GGUF reader's arithmetic, operation for operation."""
        d = self.scales[..., None]
        if self.kind == "Q4_1":
            assert self.offsets is not None
            w = d * self.codes.astype(np.float32) + self.offsets[..., None]
        elif self.kind == "Q4_0":  # gguf-py: d * (q - 8)
            w = d * (self.codes.astype(np.int8) - np.int8(8)).astype(np.float32)
        elif self.kind == "Q4_U":
            w = d * self.codes.astype(np.float32)
        else:  # Q8_0, gguf-py: q * d
            w = (self.codes.astype(np.int16) - 128).astype(np.float32) * d
        return np.asarray(w.reshape(self.shape), dtype=np.float32)

    def rows(self, order: np.ndarray) -> Blocks:
        """The same blocks with rows reordered (whole rows: no block changes)."""
        offsets = None if self.offsets is None else self.offsets[order]
        return Blocks(self.kind, self.codes[order], self.scales[order], offsets)


def _nibbles(packed: np.ndarray) -> np.ndarray:
    """GGUF's 4-bit codes [n, 16 bytes] -> [n, 32]: the low nibbles are the block's first 16
    values, the high nibbles its last 16."""
    return np.concatenate([packed & 0x0F, packed >> 4], axis=-1).astype(np.uint8)


def blocks_from_raw(kind: str, raw: np.ndarray, rows: int, cols: int) -> Blocks:
    """Split a GGUF tensor's raw bytes [rows, bytes per row] into codes, scales, minimums."""
    if cols % BLOCK:
        raise UnsupportedGGUFError(f"a {kind} tensor of {cols} columns (not blocks of {BLOCK})")
    n = cols // BLOCK
    size = {"Q4_0": 18, "Q4_1": 20, "Q8_0": 34}[kind]
    data = np.ascontiguousarray(raw, dtype=np.uint8).reshape(rows, n, size)
    scales = data[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    offsets = None
    if kind == "Q4_0":
        codes = _nibbles(data[..., 2:])
    elif kind == "Q4_1":
        offsets = data[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        codes = _nibbles(data[..., 4:])
    else:
        codes = (data[..., 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
    return Blocks(kind, codes, scales, offsets)


def _hf_order(rows: int, heads: int) -> np.ndarray:
    """Row order undoing llama.cpp's query/key permutation (as transformers' GGUF loader)."""
    half = rows // heads // 2
    return np.arange(rows).reshape(heads, half, 2).swapaxes(1, 2).reshape(rows)


@dataclass
class GGUFModel:
    """The weights by Hugging Face name (Blocks, or fp32 arrays for norms and F32/F16 tensors)
    and the architecture fields the graph needs."""

    path: Path
    weights: dict[str, Blocks | np.ndarray]
    config: dict[str, Any]


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return None
    value = field.parts[field.data[0]]
    return value.tolist()[0] if hasattr(value, "tolist") else value


def read_gguf(path: str | Path) -> GGUFModel:
    """Every tensor of a Llama-family GGUF file, by Hugging Face name; UnsupportedGGUFError
    naming the first tensor of another type (or another architecture)."""
    import gguf

    path = Path(path)
    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # gguf raises ValueError/struct.error/... on a damaged file
        raise ModelLoadError(f"{path} is not a readable GGUF file ({exc})") from exc
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    if arch != "llama":
        raise UnsupportedGGUFError(
            f"{path.name} is a {arch!r} model; the lossless ONNX export reads Llama-family "
            "GGUF files only (use --quantize int8 or none)"
        )
    config = {
        "layers": _field(reader, "llama.block_count"),
        "heads": _field(reader, "llama.attention.head_count"),
        "kv_heads": _field(reader, "llama.attention.head_count_kv"),
        "hidden": _field(reader, "llama.embedding_length"),
    }
    weights: dict[str, Blocks | np.ndarray] = {}
    for tensor in reader.tensors:
        kind = tensor.tensor_type.name
        name = _hf_name(tensor.name)
        if kind in SUPPORTED_PLAIN:
            weights[name] = np.asarray(tensor.data, dtype=np.float32).reshape(
                [int(x) for x in reversed(tensor.shape)]
            )
            continue
        if kind not in SUPPORTED_BLOCKS:
            raise UnsupportedGGUFError(
                f"{path.name}: tensor {tensor.name} is stored as {kind}; the lossless ONNX "
                f"export carries over {', '.join(SUPPORTED_BLOCKS)} (and "
                f"{', '.join(SUPPORTED_PLAIN)}) only. Use --quantize int8 or none, which "
                "start from the fp32 weights"
            )
        cols, rows = (int(x) for x in tensor.shape)
        blocks = blocks_from_raw(kind, np.asarray(tensor.data), rows, cols)
        if name.endswith("q_proj.weight"):
            blocks = blocks.rows(_hf_order(rows, config["heads"]))
        elif name.endswith("k_proj.weight"):
            blocks = blocks.rows(_hf_order(rows, config["kv_heads"]))
        weights[name] = blocks
    return GGUFModel(path, weights, config)


def _hf_name(name: str) -> str:
    if name in GLOBAL_NAMES:
        return GLOBAL_NAMES[name]
    parts = name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in LAYER_NAMES:
        return f"model.layers.{parts[1]}.{LAYER_NAMES[parts[2]]}"
    return name


def quantize_q8(weight: np.ndarray) -> Blocks:
    """fp32 [rows, cols] -> Q8_0 blocks (llama.cpp's rule: scale = max|w| / 127 per block of
    32, codes rounded to nearest): the `int8` export of models that come without a GGUF file."""
    rows, cols = weight.shape
    if cols % BLOCK:
        raise UnsupportedGGUFError(f"a weight of {cols} columns is not in blocks of {BLOCK}")
    w = weight.astype(np.float32).reshape(rows, cols // BLOCK, BLOCK)
    d = np.abs(w).max(axis=-1) / 127.0
    inverse = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.clip(np.rint(w * inverse[..., None]), -127, 127).astype(np.int16)
    return Blocks("Q8_0", (q + 128).astype(np.uint8), d.astype(np.float32))
