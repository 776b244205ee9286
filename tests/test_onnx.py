"""ONNX Runtime backend: exports of stories260K against torch, and each bad export."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from promptxray.explainers.backends.base import left_pad
from promptxray.explainers.backends.onnx_backend import OnnxBackend
from promptxray.explainers.errors import ModelLoadError, UnsupportedMethodError
from promptxray.explainers.explain import explain
from promptxray.explainers.metrics import spearman
from promptxray.explainers.models.onnx_export import MANIFEST, MODEL_FILE, export_onnx

from .conftest import STORIES
from .helpers import request_for

PROMPTS = [
    "Once upon a time there was a little girl named",
    "The dog ran to the park and saw a big red ball. He",
    "Tom and Sue went to the beach. They played in the sand and",
]


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """stories260K exported once per session, fp32 and int8."""
    root = tmp_path_factory.mktemp("onnx")
    return {q: export_onnx(str(STORIES), q, out=root / q) for q in ("none", "int8")}


def test_export_folders_hold_model_tokenizer_and_manifest(exports):
    for quantize, folder in exports.items():
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["quantization"] == quantize and manifest["usable"] is True
        assert manifest["verification"]["top1_agreement"] >= 0.9
        assert (folder / MODEL_FILE).exists() and (folder / "tokenizer.json").exists()
        assert not list(folder.parent.glob(".export-*"))  # nothing half-written left


def test_fp32_logits_match_torch_in_padded_batches(exports, stories):
    backend = OnnxBackend(exports["none"])
    rows = [stories.encode(p, add_special_tokens=True)[0] for p in PROMPTS]
    batch = left_pad(rows, stories.pad_id)
    with torch.no_grad():
        ref = stories.model(
            input_ids=torch.from_numpy(batch.input_ids),
            attention_mask=torch.from_numpy(batch.attention_mask),
            position_ids=torch.from_numpy(batch.position_ids),
        ).logits.numpy()
    out = backend._logits(batch)
    valid = batch.attention_mask.astype(bool)
    assert np.abs(out - ref)[valid].max() < 1e-4


@pytest.mark.parametrize("prompt", PROMPTS)
def test_occlusion_on_onnx_matches_torch(exports, stories, prompt):
    reference = explain(request_for(prompt), backend=stories)
    target = reference.target.text
    fp32 = explain(request_for(prompt, target=target), backend=OnnxBackend(exports["none"]))
    int8 = explain(request_for(prompt, target=target), backend=OnnxBackend(exports["int8"]))
    ref_scores = np.array([s.score for s in reference.spans])
    np.testing.assert_allclose([s.score for s in fp32.spans], ref_scores, atol=1e-4)
    assert fp32.target.logprob == pytest.approx(reference.target.logprob, abs=1e-4)
    assert spearman(np.array([s.score for s in int8.spans]), ref_scores) >= 0.9


def test_generation_on_onnx_matches_torch(exports, stories):
    onnx = OnnxBackend(exports["none"])
    ids = stories.encode(PROMPTS[0], add_special_tokens=True)[0]
    assert onnx.generate(ids, 6) == stories.generate(ids, 6)


@pytest.mark.parametrize("method", ["integrated_gradients", "attention", "saliency"])
def test_gradient_and_attention_methods_are_refused_by_name(exports, method):
    with pytest.raises(UnsupportedMethodError) as info:
        explain(request_for(PROMPTS[0], method=method), backend=OnnxBackend(exports["none"]))
    assert "onnx backend" in str(info.value) and "occlusion" in str(info.value)


def _copy(folder, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(folder, dest)
    return dest


def test_missing_and_corrupt_onnx_files(exports, tmp_path):
    broken = _copy(exports["none"], tmp_path)
    (broken / MODEL_FILE).unlink()
    with pytest.raises(ModelLoadError, match=r"model\.onnx is missing"):
        OnnxBackend(broken)
    (broken / MODEL_FILE).write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        OnnxBackend(broken)


def test_manifest_problems(exports, tmp_path):
    folder = _copy(exports["none"], tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text())
    (folder / MANIFEST).write_text(json.dumps({**manifest, "source_fingerprint": "0" * 16}))
    with pytest.raises(ModelLoadError, match="different version"):
        OnnxBackend(folder)
    (folder / MANIFEST).write_text(json.dumps({**manifest, "usable": False}))
    with pytest.raises(ModelLoadError, match="unusable"):
        OnnxBackend(folder)
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        OnnxBackend(folder)
    (folder / MANIFEST).unlink()
    with pytest.raises(ModelLoadError, match=r"manifest\.json is missing"):
        OnnxBackend(folder)


def test_onnx_model_with_unexpected_inputs(exports, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    folder = _copy(exports["none"], tmp_path)
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["pixels"], ["logits"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(folder / MODEL_FILE))
    with pytest.raises(ModelLoadError, match="input_ids \\+ attention_mask"):
        OnnxBackend(folder)


def test_export_of_an_unexportable_model_leaves_nothing(tmp_path, monkeypatch):
    """The exporter's own failure (as for an architecture it cannot handle) is reported."""
    from promptxray.explainers.models import onnx_export

    def explode(*_args, **_kwargs):
        raise RuntimeError("unsupported operator aten::mystery")

    monkeypatch.setattr("torch.onnx.export", explode)
    with pytest.raises(onnx_export.ExportError, match="cannot export stories260K"):
        export_onnx(str(STORIES), "none", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".export-*"))
