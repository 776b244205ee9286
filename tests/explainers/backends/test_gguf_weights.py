"""GGUF blocks carried into ONNX Runtime's MatMulNBits without rounding again: the default
model's weights bit for bit, Q4_0 / Q4_1 / Q8_0 products through ORT, other types refused."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from promptxray.explainers.errors import ModelLoadError
from promptxray.explainers.models import onnx_fused
from promptxray.explainers.models.gguf_weights import (
    Blocks,
    UnsupportedGGUFError,
    read_gguf,
)
from promptxray.explainers.models.loading import default_gguf, resolve_model_path

Q = gguf.GGMLQuantizationType


def _write_gguf(path: Path, tensors: dict[str, tuple[np.ndarray, Q]]) -> None:
    """A small Llama-architecture GGUF file holding `tensors` (fp32 data quantized as asked)."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_embedding_length(64)
    for name, (data, kind) in tensors.items():
        if kind in (Q.F32, Q.F16):
            writer.add_tensor(name, data.astype(np.float32 if kind == Q.F32 else np.float16))
        elif kind == Q.Q6_K:  # raw bytes of the right size: only its type matters here
            rows, cols = data.shape
            raw = np.zeros((rows, cols // 256 * 210), dtype=np.uint8)
            writer.add_tensor(name, raw, raw_dtype=kind)
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _raw(path: Path) -> dict[str, tuple[np.ndarray, Q]]:
    reader = gguf.GGUFReader(str(path))
    return {t.name: (np.asarray(t.data), t.tensor_type) for t in reader.tensors}


@pytest.mark.slow
def test_default_models_blocks_dequantize_to_torchs_weights_bit_for_bit():
    """Every tensor of the default GGUF file: our blocks, dequantized with the reader's own
    arithmetic, equal the fp32 weights torch runs (transformers' conversion through gguf-py,
    query/key rows permuted back) bit for bit; and, unpermuted, gguf-py's dequantize."""
    from safetensors.numpy import load_file

    model = read_gguf(default_gguf())
    torch_weights = load_file(str(Path(resolve_model_path(None)[0]) / "model.safetensors"))
    assert set(model.weights) == set(torch_weights)
    kinds = {w.kind for w in model.weights.values() if isinstance(w, Blocks)}
    assert kinds == {"Q4_1", "Q8_0"}  # the default model: Q4_1 layers, Q8_0 embedding
    for name, weight in model.weights.items():
        ours = weight.dequantize() if isinstance(weight, Blocks) else weight
        assert ours.dtype == np.float32 and ours.shape == torch_weights[name].shape, name
        assert np.array_equal(ours.view(np.uint32), torch_weights[name].view(np.uint32)), name
    raw = _raw(default_gguf())
    data, kind = raw["blk.0.ffn_down.weight"]
    reader = gguf.quants.dequantize(data, kind)
    ours = model.weights["model.layers.0.mlp.down_proj.weight"]
    assert isinstance(ours, Blocks)
    assert np.array_equal(ours.dequantize().view(np.uint32), reader.view(np.uint32))


@pytest.mark.parametrize("kind", [Q.Q4_0, Q.Q4_1, Q.Q8_0])
def test_each_block_type_dequantizes_as_the_reader_and_multiplies_in_ort(tmp_path, kind):
    rng = np.random.default_rng(int(kind))
    data = rng.standard_normal((48, 96)).astype(np.float32)
    path = tmp_path / "m.gguf"
    _write_gguf(path, {"blk.0.ffn_down.weight": (data, kind)})
    blocks = read_gguf(path).weights["model.layers.0.mlp.down_proj.weight"]
    assert isinstance(blocks, Blocks) and blocks.kind == kind.name
    raw, _ = _raw(path)["blk.0.ffn_down.weight"]
    reader = gguf.quants.dequantize(raw, kind)
    assert np.array_equal(blocks.dequantize().view(np.uint32), reader.view(np.uint32))
    if kind == Q.Q8_0:  # run as two exact 4-bit halves
        high, low = onnx_fused.q8_halves(blocks)
        halves = high.dequantize() + low.dequantize()
        assert np.array_equal(halves.view(np.uint32), reader.view(np.uint32))
    # the same weights through MatMulNBits (and Q4_1's exact minimum term) in ONNX Runtime
    b = onnx_fused._Builder()
    y = onnx_fused._Linears(b)("x", [blocks])
    b.nodes.append(helper.make_node("Identity", [y], ["y"]))
    graph = helper.make_graph(
        b.nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, 96])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        b.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.standard_normal((1, 5, 96)).astype(np.float32)
    got = session.run(None, {"x": x})[0]
    want = x.astype(np.float64) @ reader.T.astype(np.float64)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_a_gguf_type_that_is_not_carried_over_is_refused_by_name(tmp_path):
    path = tmp_path / "k.gguf"
    weights = np.zeros((4, 256), dtype=np.float32)
    _write_gguf(
        path,
        {"blk.0.attn_norm.weight": (np.ones(64), Q.F32), "blk.0.ffn_up.weight": (weights, Q.Q6_K)},
    )
    with pytest.raises(UnsupportedGGUFError, match=r"blk\.0\.ffn_up\.weight is stored as Q6_K"):
        read_gguf(path)
    with pytest.raises(UnsupportedGGUFError, match="Q4_0, Q4_1, Q8_0"):
        read_gguf(path)


def test_a_damaged_gguf_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\x00" * 10)
    with pytest.raises(ModelLoadError, match="not a readable GGUF file"):
        read_gguf(path)


@pytest.mark.slow
def test_the_exported_graph_carries_the_blocks_unchanged():
    """The fused graph's first MatMulNBits (query, key and value rows of layer 0) holds the
    GGUF codes, scales and minimums: unpacked from the ONNX initializers and dequantized, they
    equal torch's weights bit for bit."""
    from onnx import numpy_helper
    from safetensors.numpy import load_file

    model = read_gguf(default_gguf())
    shape = {"layers": 30, "heads": 9, "kv_heads": 3, "head_dim": 64, "hidden": 576}
    shape |= {"intermediate": 1536, "vocab": 49152}
    table = np.zeros((8, 32), dtype=np.float32)
    proto = onnx_fused.build_fused_graph(model.weights, shape, table, table, 1e-5)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    node = next(n for n in proto.graph.node if n.op_type == "MatMulNBits")
    packed, scales, zeros = (inits[name] for name in node.input[1:4])
    assert not zeros.any()  # Q4_1: zero point 0, the minimum is the separate exact term
    codes = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(*packed.shape[:2], 32)
    mins_node = next(n for n in proto.graph.node if n.op_type == "MatMul")
    mins = inits[mins_node.input[1]].T
    weights = Blocks("Q4_1", codes, scales, mins).dequantize()
    torch_weights = load_file(str(Path(resolve_model_path(None)[0]) / "model.safetensors"))
    want = np.concatenate(
        [torch_weights[f"model.layers.0.self_attn.{p}_proj.weight"] for p in "qkv"]
    )
    assert np.array_equal(weights.view(np.uint32), want.view(np.uint32))


def test_gguf_quantization_needs_a_model_that_came_from_a_gguf_file(tmp_path):
    from promptxray.explainers.models.onnx_export import ExportError, export_onnx
    from tests.conftest import STORIES

    with pytest.raises(ExportError, match="was not loaded from one"):
        export_onnx(str(STORIES), "gguf", out=tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".export-*"))
