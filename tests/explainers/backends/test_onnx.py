"""ONNX Runtime backend: exports of stories260K against torch, and each bad export."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from promptxray.explainers import backends, nl
from promptxray.explainers.answer_check import answer_check_into, margin_bound
from promptxray.explainers.backends.base import left_pad
from promptxray.explainers.backends.onnx_backend import OnnxBackend
from promptxray.explainers.errors import ModelLoadError, UnsupportedMethodError
from promptxray.explainers.explain import explain
from promptxray.explainers.metrics import spearman
from promptxray.explainers.models import onnx_export
from promptxray.explainers.models.onnx_cache import (
    MANIFEST,
    MODEL_FILE,
    CorruptExportError,
    clean_stale_exports,
    default_export_dir,
    model_fingerprint,
)
from promptxray.explainers.models.onnx_export import export_onnx
from promptxray.explainers.models.onnx_verify import ANSWER_PROMPTS
from promptxray.explainers.types import Explanation
from tests.conftest import STORIES
from tests.helpers import F32_NATS, request_for

PROMPTS = [
    "Once upon a time there was a little girl named",
    "The dog ran to the park and saw a big red ball. He",
    "Tom and Sue went to the beach. They played in the sand and",
]
LONGER = (
    "Once upon a time there was a little girl named Lily. She liked to play in the park with "
    "her dog. One day the dog ran after a big red ball and Lily ran after the dog. They"
)


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """stories260K exported once per session: the explain graph in fp32 and int8, and the
    plain logits graph (what other architectures get) in fp32."""
    root = tmp_path_factory.mktemp("onnx")
    folders = {q: export_onnx(str(STORIES), q, out=root / q) for q in ("none", "int8")}
    folders["logits"] = export_onnx(str(STORIES), "none", out=root / "logits", graph="logits")
    return folders


def _variants(ids: list[int]) -> list[list[int]]:
    """Leave-one-out and replace-one variants of `ids` (the first token kept)."""
    drop = [ids[:i] + ids[i + 1 :] for i in range(1, len(ids))]
    swap = [[*ids[:i], 5, *ids[i + 1 :]] for i in range(1, len(ids))]
    return drop + swap


def test_export_folders_hold_model_tokenizer_and_manifest(exports):
    for kind, folder in exports.items():
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["quantization"] == ("none" if kind == "logits" else kind)
        assert manifest["usable"] is True
        assert manifest["graph"] == ("logits" if kind == "logits" else "explain")
        assert manifest["verification"]["top1_agreement"] >= 0.9
        assert (folder / MODEL_FILE).exists() and (folder / "tokenizer.json").exists()
        assert set(manifest["checksums"]) == {MODEL_FILE, MODEL_FILE + ".data"}
        assert not list(folder.parent.glob(".export-*"))  # nothing half-written left


def test_manifest_carries_the_greedy_answer_agreement(exports):
    for kind, folder in exports.items():
        agreement = json.loads((folder / MANIFEST).read_text())["answer_agreement"]
        assert agreement["prompts"] == len(ANSWER_PROMPTS) >= 20
        assert 0.0 <= agreement["same_answer"] <= agreement["same_first_token"] <= 1.0
        assert len(agreement["differing"]) == round((1 - agreement["same_answer"]) * 24)
        if kind != "int8":  # fp32 answers exactly as torch does
            assert agreement["same_answer"] == 1.0 and agreement["differing"] == []
    int8 = OnnxBackend(exports["int8"])
    assert int8.answer_agreement is not None and int8.answer_agreement["prompts"] >= 20


def test_fp32_logits_match_torch_in_padded_batches(exports, stories):
    rows = [stories.encode(p, add_special_tokens=True)[0] for p in PROMPTS]
    batch = left_pad(rows, stories.pad_id)
    with torch.no_grad():
        ref = stories.model(
            input_ids=torch.from_numpy(batch.input_ids),
            attention_mask=torch.from_numpy(batch.attention_mask),
            position_ids=torch.from_numpy(batch.position_ids),
        ).logits.numpy()
    valid = batch.attention_mask.astype(bool)
    for kind in ("none", "logits"):
        out = OnnxBackend(exports[kind]).runner.logits(batch)
        # logits are log-probs up to a constant a row: two float32 runtimes, F32_NATS
        assert np.abs(out - ref)[valid].max() < F32_NATS


@pytest.mark.parametrize("kind", ["none", "logits"])
def test_scores_equal_the_torch_backend(exports, stories, kind):
    """Both graph kinds, with the reference prompt's prefix reused where the graph allows."""
    onnx = OnnxBackend(exports[kind])
    onnx.max_batch_tokens = 48  # several batches, so several shared-prefix lengths
    ids = stories.encode(LONGER, add_special_tokens=True)[0]
    target = stories.generate(ids, 4)
    variants = _variants(ids)
    expected = stories.target_logprobs(variants, target, reference=ids)
    # log-probs from two float32 runtimes in other batch shapes: F32_NATS
    reused = onnx.target_logprobs(variants, target, reference=ids)
    np.testing.assert_allclose(reused, expected, rtol=0, atol=F32_NATS)
    np.testing.assert_allclose(onnx.target_logprobs(variants, target), expected, atol=F32_NATS)


def test_prefix_reuse_equals_the_plain_onnx_computation(exports, stories, monkeypatch):
    onnx = OnnxBackend(exports["none"])
    onnx.max_batch_tokens = 48
    ids = stories.encode(LONGER, add_special_tokens=True)[0]
    target = stories.generate(ids, 3)
    variants = _variants(ids)
    prefixes = []
    run = onnx.runner.logprobs

    def spy(batch, target, past=None, p=0):
        prefixes.append(p)
        return run(batch, target, past, p)

    monkeypatch.setattr(onnx.runner, "logprobs", spy)
    reused = onnx.target_logprobs(variants, target, reference=ids)
    assert max(prefixes) > 4 and len(set(prefixes)) > 3  # batches after different prefixes
    assert onnx.prefixes  # the reference's keys/values, computed once
    prefixes.clear()
    plain = onnx.target_logprobs(variants, target)
    assert set(prefixes) == {0}
    np.testing.assert_allclose(reused, plain, rtol=0, atol=F32_NATS)  # log-probs, other shapes
    # an edited reference continues the kept one's keys/values after their common prefix
    edited = [*ids[:-3], 7, 8]
    kv = onnx.prefix_kv(edited)
    fresh = onnx.runner.keys_values(edited)
    for (k, v), (fk, fv) in zip(kv, fresh, strict=True):
        # float32 activations of another shape: 1e-5 of their largest magnitude
        np.testing.assert_allclose(k, fk, rtol=1e-5, atol=1e-5 * np.abs(fk).max())
        np.testing.assert_allclose(v, fv, rtol=1e-5, atol=1e-5 * np.abs(fv).max())


@pytest.mark.parametrize("prompt", PROMPTS)
def test_occlusion_on_onnx_matches_torch(exports, stories, prompt):
    reference = explain(request_for(prompt), backend=stories)
    target = reference.target.text
    fp32 = explain(request_for(prompt, target=target), backend=OnnxBackend(exports["none"]))
    int8 = explain(request_for(prompt, target=target), backend=OnnxBackend(exports["int8"]))
    ref_scores = np.array([s.score for s in reference.spans])
    # two float32 runtimes: removal scores are two log-probs, each within F32_NATS
    np.testing.assert_allclose([s.score for s in fp32.spans], ref_scores, atol=2 * F32_NATS)
    assert fp32.target.logprob == pytest.approx(reference.target.logprob, abs=F32_NATS)
    assert spearman(np.array([s.score for s in int8.spans]), ref_scores) >= 0.9


@pytest.mark.parametrize("kind", ["none", "logits"])
def test_generation_on_onnx_matches_torch(exports, stories, kind):
    onnx = OnnxBackend(exports[kind])
    ids = stories.encode(PROMPTS[0], add_special_tokens=True)[0]
    assert onnx.generate(ids, 6) == stories.generate(ids, 6)


def test_margin_bound_is_the_winners_least_lead():
    assert margin_bound(math.log(0.9)) == pytest.approx(math.log(9))
    assert margin_bound(math.log(0.5)) == 0.0 and margin_bound(math.log(0.2)) == 0.0
    assert margin_bound(0.0) == math.inf


def test_a_quantized_answer_says_whether_fp32_may_answer_differently(exports, stories, monkeypatch):
    int8 = OnnxBackend(exports["int8"])
    expl = explain(request_for(PROMPTS[0]), backend=int8)
    check = expl.answer_check
    assert check is not None
    manifest = int8.manifest
    assert check.prompts == len(ANSWER_PROMPTS) >= 20
    assert check.max_logit_stray == manifest["verification"]["max_abs_logit_diff"]
    margins = [margin_bound(t.logprob) for t in expl.target.tokens]
    assert check.margin_bound == min(margins)
    assert check.may_differ == (min(margins) <= 2 * check.max_logit_stray)
    assert Explanation.from_json(expl.to_json()).answer_check == check  # typed, round-trips
    brief = nl.summary(expl)
    assert ("fp32 may answer differently" in brief) == check.may_differ
    assert "fp32's answer on" in nl.describe(expl)  # the full report always gives the record
    # fp32 exports and given targets: nothing to say
    assert explain(request_for(PROMPTS[0]), OnnxBackend(exports["none"])).answer_check is None
    given = explain(request_for(PROMPTS[0], target=" Lily"), backend=int8)
    assert given.answer_check is None


def test_the_fp32_answer_is_shown_only_when_asked_for_and_different(exports, stories, monkeypatch):
    int8 = OnnxBackend(exports["int8"])
    monkeypatch.setattr(backends, "get_backend", lambda *_a, **_k: stories)
    request = request_for(PROMPTS[0], options={"reference_answer": True})
    expl = explain(request, backend=int8)
    torch_answer = stories.generate(stories.encode(PROMPTS[0], add_special_tokens=True)[0], 8)
    same = [t.token_id for t in expl.target.tokens] == [
        t for t in torch_answer if t not in stories.eos_ids()
    ]
    assert expl.answer_check is not None and expl.answer_check.checked
    assert (expl.answer_check.reference is not None) != same
    if same:
        assert "fp32 torch gives the same answer" in nl.describe(expl)
    # a different answer (as a quantized model may give) is reported with torch's own, first
    expl.answer_check = None
    expl.target.tokens = expl.target.tokens[:1]
    answer_check_into(expl, request, int8)
    found = expl.answer_check.reference if expl.answer_check else None
    assert found is not None and found.backend == "torch" and found.precision == "fp32"
    assert found.text == stories.decode(found.token_ids) and found.token_ids
    assert nl.summary(expl).startswith("Note: fp32 torch answers")
    # not asked for: nothing runs
    expl.answer_check = None
    answer_check_into(expl, request_for(PROMPTS[0]), int8)
    assert expl.answer_check is not None
    assert expl.answer_check.reference is None and not expl.answer_check.checked


@pytest.mark.parametrize("method", ["integrated_gradients", "attention", "saliency"])
def test_gradient_and_attention_methods_are_refused_by_name(exports, method):
    with pytest.raises(UnsupportedMethodError) as info:
        explain(request_for(PROMPTS[0], method=method), backend=OnnxBackend(exports["none"]))
    assert "onnx backend" in str(info.value) and "occlusion" in str(info.value)


def _copy(folder, tmp_path, name="copy"):
    dest = tmp_path / name
    shutil.copytree(folder, dest)
    return dest


def _without_checksums(folder):
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.pop("checksums")
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_missing_and_corrupt_onnx_files(exports, tmp_path):
    broken = _copy(exports["none"], tmp_path)
    (broken / MODEL_FILE).unlink()
    with pytest.raises(ModelLoadError, match=r"model\.onnx is missing"):
        OnnxBackend(broken)
    (broken / MODEL_FILE).write_bytes(b"this is not a protobuf")
    with pytest.raises(CorruptExportError, match="does not match the checksum") as info:
        OnnxBackend(broken)  # a folder the user named: an error that says what to do
    assert "export again" in str(info.value)
    _without_checksums(broken)  # an older export without checksums: ORT's own error
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

    for kind in ("none", "logits"):
        folder = _copy(exports[kind], tmp_path, kind)
        _without_checksums(folder)
        x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3])
        y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])
        node = helper.make_node("Identity", ["pixels"], ["logits"])
        onnx.save(
            helper.make_model(helper.make_graph([node], "g", [x], [y])), str(folder / MODEL_FILE)
        )
        with pytest.raises(ModelLoadError, match="input_ids \\+ attention_mask"):
            OnnxBackend(folder)


def test_export_of_an_unexportable_model_leaves_nothing(tmp_path, monkeypatch):
    """The exporter's own failure (as for an architecture it cannot handle) is reported."""

    def explode(*_args, **_kwargs):
        raise RuntimeError("unsupported operator aten::mystery")

    monkeypatch.setattr("torch.onnx.export", explode)
    with pytest.raises(onnx_export.ExportError, match="cannot export stories260K"):
        export_onnx(str(STORIES), "none", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".export-*"))


def _cache_with_fp32(exports, tmp_path, monkeypatch):
    """A cache in tmp_path holding the session's fp32 export where the backend looks for
    it (so an int8 export there only quantizes it)."""
    monkeypatch.setenv("PROMPTXRAY_CACHE", str(tmp_path / "cache"))
    fingerprint = model_fingerprint(str(STORIES.resolve()))
    shutil.copytree(exports["none"], default_export_dir("stories260K", fingerprint, "none"))
    return default_export_dir("stories260K", fingerprint, "int8")


def test_an_interrupted_export_leaves_nothing_after_the_next(exports, tmp_path, monkeypatch):
    """An export killed mid-way (here: after writing part of its files) leaves its temporary
    folder; the next export removes it."""
    dest = _cache_with_fp32(exports, tmp_path, monkeypatch)
    killed = (
        "import os\n"
        "from promptxray.explainers.models import onnx_export as e\n"
        "def die(source, target, recipe):\n"
        "    target.write_bytes(b'half a model')\n"
        "    os._exit(9)\n"
        "e._quantize = die\n"
        f"e.export_onnx({str(STORIES)!r}, 'int8')\n"
    )
    run = subprocess.run([sys.executable, "-c", killed], env=os.environ, capture_output=True)
    assert run.returncode == 9, run.stderr.decode()
    left = list(dest.parent.glob(".export-*"))
    assert len(left) == 1 and (left[0] / MODEL_FILE).exists() and not dest.exists()
    folder = export_onnx(str(STORIES), "int8")
    assert folder == dest and OnnxBackend(folder).quantization == "int8"
    assert not list(dest.parent.glob(".export-*"))


def test_stale_temporary_folders(tmp_path):
    """Dead owner: removed; live owner: kept (a day at most); no pid in the name: an hour."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    folders = {
        "dead": tmp_path / f".export-{int(dead.stdout)}-abc",
        "live": tmp_path / f".export-{os.getpid()}-def",
        "old_live": tmp_path / f".export-{os.getppid()}-ghi",
        "legacy_new": tmp_path / ".export-jkl",
        "legacy_old": tmp_path / ".export-mno",
        "export": tmp_path / "stories-0123-int8",
    }
    for folder in folders.values():
        folder.mkdir()
    now = time.time()
    os.utime(folders["old_live"], (now - 2 * 86400, now - 2 * 86400))
    os.utime(folders["legacy_old"], (now - 7200, now - 7200))
    removed = clean_stale_exports(tmp_path, now)
    assert {p.name for p in removed} == {
        folders[k].name for k in ("dead", "old_live", "legacy_old")
    }
    assert {p.name for p in tmp_path.iterdir()} == {
        folders[k].name for k in ("live", "legacy_new", "export")
    }


def test_a_corrupt_cached_export_is_exported_again(exports, tmp_path, monkeypatch):
    dest = _cache_with_fp32(exports, tmp_path, monkeypatch)
    monkeypatch.setattr(backends, "_CACHE", {})
    first = backends.get_backend("onnx", str(STORIES))
    assert first.folder == dest and first.quantization == "int8"
    data = dest / (MODEL_FILE + ".data")
    good = data.read_bytes()
    data.write_bytes(good[:100] + bytes(255 - b for b in good[100:200]) + good[200:])
    with pytest.raises(CorruptExportError):
        OnnxBackend(dest)  # named explicitly: an error, not replaced
    monkeypatch.setattr(backends, "_CACHE", {})
    messages: list[str] = []
    again = backends.get_backend("onnx", str(STORIES), progress=messages.append)
    assert again is not first and again.folder == dest
    assert any("does not match the checksum" in m for m in messages)
    assert data.read_bytes() != good[:100] + bytes(255 - b for b in good[100:200]) + good[200:]
    ids = again.encode(PROMPTS[0], add_special_tokens=True)[0]
    assert again.generate(ids, 3) == first.generate(ids, 3)
    # a cached export of an older format (before checksums) is replaced too
    manifest = json.loads((dest / MANIFEST).read_text())
    (dest / MANIFEST).write_text(json.dumps({**manifest, "format": 1}))
    monkeypatch.setattr(backends, "_CACHE", {})
    assert (
        json.loads((backends.get_backend("onnx", str(STORIES)).folder / MANIFEST).read_text())[
            "format"
        ]
        == onnx_export.FORMAT
    )
