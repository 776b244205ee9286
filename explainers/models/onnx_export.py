"""Export a causal LM to ONNX (torch.onnx dynamo exporter), optionally quantize its weights,
verify it against torch, and write it with its tokenizer and a manifest.

Llama-family models get the "explain" graph (onnx_graph.py: logits only where the target is
read, past keys/values in and out, so occlusion reuses the reference prompt's prefix as on
torch); other architectures the plain "logits" graph (input_ids + attention_mask -> logits at
every position). The manifest says which (`graph`); the backend runs both.

Quantization `int8` is the recipe picked by measurement (bench/onnx.py; figures in
bench/README.md, "ONNX Runtime"): block-wise 8-bit weights (MatMulNBits, block 32) computed
in fp32 (accuracy level 0); the embedding and the vocabulary projection stay fp32. The other
recipes in `RECIPES` are there for the benchmark. Plain per-tensor `quantize_dynamic` int8 was
measured to wreck SmolLM2 (top-1 agreement 26/50). An export whose top-1 agreement with torch
is under 90% is written with `"usable": false` and refused by the backend.

Exports are atomic and self-cleaning: everything is written to a temporary folder
`.export-<pid>-*` beside the destination and renamed into place; a temporary folder left by an
export that was killed is removed by the next export (see `clean_stale_exports`). The manifest
records the sha256 of every model file; the backend checks them when it loads, and the cache
path of `get_backend("onnx")` exports again when they do not match. The folder, its manifest
and checksums are `onnx_cache.py`; the checks against torch, `onnx_verify.py`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptxray.explainers.errors import ModelLoadError, PromptXrayError
from promptxray.explainers.models.loading import LoadedModel, load_model
from promptxray.explainers.models.onnx_cache import (
    MANIFEST,
    MODEL_FILE,
    check_checksums,
    checksums,
    clean_stale_exports,
    default_export_dir,
    model_fingerprint,
    read_manifest,
)
from promptxray.explainers.models.onnx_verify import ANSWER_PROMPTS, answer_agreement, verify

QUANTIZATIONS = ("none", "int8")
OPSET = 18
MIN_TOP1 = 0.9
# 2: the explain graph (for Llama-family models), checksums and greedy-answer agreement. The
# cache path re-exports a cached folder of an older format.
FORMAT = 2
GRAPHS = ("explain", "logits")

# Quantization recipes compared by bench/onnx.py (bench/README.md, "ONNX Runtime" has the figures).
# MatMulNBits accuracy level: 0 = unset (fp32 compute on the CPU), 4 = int8 activations.
RECIPES: dict[str, dict[str, Any]] = {
    "nbits8-acc0": {"name": "MatMulNBits", "bits": 8, "block_size": 32, "accuracy_level": 0},
    "nbits8-acc4": {"name": "MatMulNBits", "bits": 8, "block_size": 32, "accuracy_level": 4},
    "nbits4-acc4": {"name": "MatMulNBits", "bits": 4, "block_size": 32, "accuracy_level": 4},
    "nbits4-acc0": {"name": "MatMulNBits", "bits": 4, "block_size": 32, "accuracy_level": 0},
    # per-channel int8 weights, int8 activations quantized per row at run time; the embedding
    # (Gather) and the vocabulary projection (Gemm) are not MatMuls and stay fp32
    "dynamic-int8": {"name": "quantize_dynamic", "per_channel": True, "weight_type": "QInt8"},
}
DEFAULT_RECIPE = "nbits8-acc0"


class ExportError(PromptXrayError):
    """The model could not be exported, or the export failed verification."""


# --- graphs ------------------------------------------------------------------------------------
class _LogitsOnly:
    """Wraps the model so the graph takes (input_ids, attention_mask) and returns logits, with
    position ids derived from the mask (left padding keeps positions right)."""

    def __new__(cls, model: Any) -> Any:
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
                out = self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=positions,
                    use_cache=False,
                )
                return out.logits

        return Wrapper().eval()


def _export_logits_graph(loaded: LoadedModel, target: Path) -> None:
    import torch

    wrapper = _LogitsOnly(loaded.model)
    ids = torch.tensor([[0, 0, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    program = torch.onnx.export(
        wrapper,
        (ids, mask),
        dynamo=True,
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
        opset_version=OPSET,
        verbose=False,
    )
    assert program is not None
    program.save(str(target), external_data=True)


def _export_graph(loaded: LoadedModel, target: Path, graph: str) -> None:
    from promptxray.explainers.models.onnx_graph import export_explain_graph

    try:
        if graph == "explain":
            export_explain_graph(loaded.model, str(target), OPSET)
        else:
            _export_logits_graph(loaded, target)
    except Exception as exc:  # the exporter raises many types for unsupported architectures
        raise ExportError(
            f"cannot export {loaded.model_id} to ONNX ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); use --backend torch"
        ) from exc


def choose_graph(loaded: LoadedModel, graph: str = "auto") -> str:
    """ "explain" for Llama-family models, else "logits" (or `graph` when it is not "auto")."""
    from promptxray.explainers.models.onnx_graph import supports_explain_graph

    if graph == "auto":
        return "explain" if supports_explain_graph(loaded.model) else "logits"
    if graph not in GRAPHS:
        raise ExportError(f"unknown graph {graph!r}; use one of {GRAPHS}")
    if graph == "explain" and not supports_explain_graph(loaded.model):
        raise ExportError(f"{loaded.model_id} is not a Llama-family model: no explain graph")
    return graph


# --- quantization ------------------------------------------------------------------------------
def _quantize(source: Path, target: Path, recipe: str) -> None:
    spec = RECIPES[recipe]
    if spec["name"] == "quantize_dynamic":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()  # it logs every tensor at INFO on the root logger
        level = root.level
        root.setLevel(logging.WARNING)
        try:
            quantize_dynamic(
                str(source),
                str(target),
                op_types_to_quantize=["MatMul"],
                per_channel=bool(spec["per_channel"]),
                weight_type=getattr(QuantType, str(spec["weight_type"])),
                use_external_data_format=True,
            )
        finally:
            root.setLevel(level)
        return
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(source))
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=int(spec["bits"]),
        block_size=int(spec["block_size"]),
        is_symmetric=True,
        accuracy_level=int(spec["accuracy_level"]),
    )
    quiet = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        quantizer.process()
    finally:
        quiet.setLevel(level)
    quantizer.model.save_model_to_file(str(target), use_external_data_format=True)


# --- the export --------------------------------------------------------------------------------
def _cached_fp32(model_id: str, fingerprint: str, graph: str) -> Path | None:
    """The verified fp32 export in the cache, if it is current and intact (quantizing it saves
    exporting again)."""
    folder = default_export_dir(model_id, fingerprint, "none")
    try:
        manifest = read_manifest(folder)
        if manifest.get("format") != FORMAT or manifest.get("graph") != graph:
            return None
        check_checksums(folder, manifest)
    except ModelLoadError:
        return None
    return folder / MODEL_FILE


def export_onnx(
    model: str | None = None,
    quantize: str = "int8",
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    trust_remote_code: bool = False,
    recipe: str | None = None,
    graph: str = "auto",
) -> Path:
    """Export, quantize, verify and write an ONNX model folder; return it.

    `recipe` (int8 only): one of RECIPES (default DEFAULT_RECIPE). `graph`: "auto" (the
    explain graph for Llama-family models), "explain" or "logits".

    Everything is written to a temporary folder beside the destination and renamed into place
    at the end, so a failed export never leaves a half-written folder behind, and temporary
    folders of killed exports are removed first (`clean_stale_exports`)."""
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}; use one of {QUANTIZATIONS}")
    recipe = recipe or DEFAULT_RECIPE
    if quantize == "int8" and recipe not in RECIPES:
        raise ExportError(f"unknown quantization recipe {recipe!r}; use one of {list(RECIPES)}")
    say = progress or (lambda _msg: None)
    loaded = load_model(model, trust_remote_code)
    kind = choose_graph(loaded, graph)
    fingerprint = model_fingerprint(loaded.path)
    dest = Path(out) if out else default_export_dir(loaded.model_id, fingerprint, quantize)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_exports(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".export-{os.getpid()}-", dir=dest.parent))
    old: Path | None = None
    try:
        fp32 = tmp / ("fp32.onnx" if quantize != "none" else MODEL_FILE)
        cached = _cached_fp32(loaded.model_id, fingerprint, kind) if quantize == "int8" else None
        if cached is not None:
            fp32 = cached  # quantize the verified fp32 export instead of exporting again
        else:
            say(f"exporting {loaded.model_id} to ONNX ({kind} graph)")
            _export_graph(loaded, fp32, kind)
        if quantize == "int8":
            say(f"quantizing weights ({recipe})")
            _quantize(fp32, tmp / MODEL_FILE, recipe)
            for leftover in tmp.glob("fp32.onnx*"):
                leftover.unlink()
        say("verifying against torch")
        from promptxray.explainers.backends.onnx_backend import OnnxRunner

        runner = OnnxRunner(tmp / MODEL_FILE, kind)
        figures = verify(loaded, runner)
        usable = figures["top1_agreement"] >= MIN_TOP1
        say(f"comparing greedy answers with torch on {len(ANSWER_PROMPTS)} prompts")
        agreement = answer_agreement(loaded, runner)
        del runner  # its session holds the model files open
        loaded.tokenizer.save_pretrained(str(tmp))
        manifest = {
            "format": FORMAT,
            "source_model": loaded.model_id,
            "source_path": loaded.path,
            "source_fingerprint": fingerprint,
            "context_length": int(getattr(loaded.model.config, "max_position_embeddings", 2048)),
            "opset": OPSET,
            "graph": kind,
            "shape": _shape(loaded),
            "quantization": quantize,
            "quantizer": (
                {"recipe": recipe, **RECIPES[recipe], "symmetric": True}
                if quantize == "int8"
                else None
            ),
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "verification": figures,
            "answer_agreement": agreement,
            "checksums": checksums(tmp),
            "usable": usable,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        tmp.chmod(0o755)
        if dest.exists():  # moved aside, not deleted first: a kill here leaves a stale folder
            old = dest.parent / f".export-{os.getpid()}-old-{tmp.name.rsplit('-', 1)[-1]}"
            dest.rename(old)
        try:
            tmp.rename(dest)
        except BaseException:
            if old is not None:
                old.rename(dest)
                old = None
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    if not usable:
        raise ExportError(
            f"the ONNX export of {loaded.model_id} agrees with torch on only "
            f"{figures['top1_agreement']:.0%} of top-1 predictions (< {MIN_TOP1:.0%}); it is "
            f"marked unusable in {dest / MANIFEST}. Try --quantize none"
        )
    return dest


def _shape(loaded: LoadedModel) -> dict[str, int]:
    from promptxray.explainers.models.onnx_graph import graph_shape

    try:
        return graph_shape(loaded.model)
    except (AttributeError, TypeError, ValueError):  # a config without Llama-style fields
        return {}


def is_current(folder: Path) -> bool:
    """Whether a cached export folder is what `export_onnx` would write now: a readable
    manifest of this FORMAT, made with the default recipe (int8). Checksums are checked when
    the backend loads it."""
    try:
        manifest = read_manifest(folder)
    except ModelLoadError:
        return False
    quantizer = manifest.get("quantizer") or {}
    return manifest.get("format") == FORMAT and (
        manifest.get("quantization") != "int8" or quantizer.get("recipe") == DEFAULT_RECIPE
    )
