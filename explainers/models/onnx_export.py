"""Export a causal LM to ONNX, verify it against torch, and write it with its tokenizer and a
manifest.

Llama-family models get the "fused" graph (onnx_fused.py: ORT's fused decoder operators,
emitted directly; rows packed, logits only where the target is read, past keys/values in and
out); Llama models whose head size GroupQueryAttention's CPU kernel refuses get the older
"explain" graph (onnx_graph.py, torch.onnx's dynamo exporter); other architectures the plain
"logits" graph (input_ids + attention_mask -> logits at every position). The manifest says
which (`graph`); the backend runs all three.

Quantizations (`QUANTIZATIONS`; "auto" picks `default_quantization`):
- `gguf`: the weights of the GGUF file the model came from, block for block (Q4_0, Q4_1, Q8_0
  -> MatMulNBits, `gguf_weights.py`): the same weights torch runs, at a quarter to an eighth of
  fp32's size. The default for the default model.
- `int8`: 8-bit blocks of 32 (Q8_0's rule) made from the fp32 weights, computed in fp32; on the
  fused graph our own blocks, on the others ORT's MatMulNBits quantizer (`RECIPES`). The
  default for other models.
- `none`: fp32.
Plain per-tensor `quantize_dynamic` int8 was measured to wreck SmolLM2 (top-1 agreement
26/50). An export whose top-1 agreement with torch is under 90% is written with
`"usable": false` and refused by the backend.

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
from promptxray.explainers.models.gguf_weights import UnsupportedGGUFError
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

QUANTIZATIONS = ("none", "int8", "gguf")
OPSET = 18
MIN_TOP1 = 0.9
# 3: the fused graph and the lossless GGUF export (2: the explain graph, checksums and
# greedy-answer agreement). The cache path re-exports a cached folder of an older format.
FORMAT = 3
GRAPHS = ("fused", "explain", "logits")

# ORT's quantizer recipe for int8 on the explain and logits graphs (picked by bench/onnx.py
# --recipes before the fused graph; bench/README.md, "ONNX Runtime: the explain graph"):
# MatMulNBits 8-bit, block 32, accuracy level 0 (fp32 compute). 4-bit re-rounding and dynamic
# int8 failed verification there.
RECIPES: dict[str, dict[str, Any]] = {
    "nbits8-acc0": {"name": "MatMulNBits", "bits": 8, "block_size": 32, "accuracy_level": 0},
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


def _export_graph(loaded: LoadedModel, target: Path, graph: str, quantize: str) -> None:
    from promptxray.explainers.models.onnx_graph import export_explain_graph

    try:
        if graph == "fused":
            _export_fused(loaded, target, quantize)
        elif graph == "explain":
            export_explain_graph(loaded.model, str(target), OPSET)
        else:
            _export_logits_graph(loaded, target)
    except UnsupportedGGUFError:
        raise
    except Exception as exc:  # the exporter raises many types for unsupported architectures
        raise ExportError(
            f"cannot export {loaded.model_id} to ONNX ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); use --backend torch"
        ) from exc


def _export_fused(loaded: LoadedModel, target: Path, quantize: str) -> None:
    """Emit the fused graph over the GGUF file's blocks (`gguf`), Q8_0 blocks of the fp32
    weights (`int8`) or the fp32 weights (`none`), and save it with its weights beside it."""
    import onnx

    from promptxray.explainers.models.gguf_weights import quantize_q8, read_gguf
    from promptxray.explainers.models.onnx_fused import (
        build_fused_graph,
        model_weights,
        rotary_tables,
    )
    from promptxray.explainers.models.onnx_graph import graph_shape

    model = loaded.model
    weights: dict[str, Any]
    if quantize == "gguf":
        weights = dict(read_gguf(gguf_source(loaded)).weights)
    else:
        weights = dict(model_weights(model))
        if quantize == "int8":  # every matrix but the norms
            weights = {k: quantize_q8(w) if w.ndim == 2 else w for k, w in weights.items()}
    cos, sin = rotary_tables(model, _context_length(loaded))
    eps = float(model.config.rms_norm_eps)
    graph = build_fused_graph(weights, graph_shape(model), cos, sin, eps)
    onnx.save_model(graph, str(target), save_as_external_data=True, location=f"{target.name}.data")


def gguf_source(loaded: LoadedModel) -> Path:
    """The GGUF file a model was converted from (the default model's), or ExportError."""
    from promptxray.explainers.models.loading import DEFAULT_MODEL, default_gguf

    if loaded.model_id != DEFAULT_MODEL:
        raise ExportError(
            f"--quantize gguf carries over the weights of the GGUF file a model came from; "
            f"{loaded.model_id} was not loaded from one (use int8 or none)"
        )
    return default_gguf()


def default_quantization(model_id: str) -> str:
    """What `--quantize auto` means: the GGUF file's own blocks for a model that came from
    one (the default model), else int8."""
    from promptxray.explainers.models.loading import DEFAULT_MODEL

    return "gguf" if model_id == DEFAULT_MODEL else "int8"


def _context_length(loaded: LoadedModel) -> int:
    return int(getattr(loaded.model.config, "max_position_embeddings", 2048))


def choose_graph(loaded: LoadedModel, graph: str = "auto") -> str:
    """ "fused" for Llama-family models whose heads GroupQueryAttention takes, "explain" for
    other Llama models, else "logits" (or `graph` when it is not "auto")."""
    from promptxray.explainers.models.onnx_fused import supports_fused
    from promptxray.explainers.models.onnx_graph import graph_shape, supports_explain_graph

    llama = supports_explain_graph(loaded.model)
    if graph == "auto":
        if not llama:
            return "logits"
        return "fused" if supports_fused(graph_shape(loaded.model)) else "explain"
    if graph not in GRAPHS:
        raise ExportError(f"unknown graph {graph!r}; use one of {GRAPHS}")
    if graph in ("explain", "fused") and not llama:
        raise ExportError(f"{loaded.model_id} is not a Llama-family model: no {graph} graph")
    if graph == "fused" and not supports_fused(graph_shape(loaded.model)):
        raise ExportError(
            f"{loaded.model_id}'s head size is not a multiple of 16, which ONNX Runtime's "
            "GroupQueryAttention needs: use --graph explain"
        )
    return graph


# --- quantization ------------------------------------------------------------------------------
def _quantize(source: Path, target: Path, recipe: str) -> None:
    spec = RECIPES[recipe]
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
    quantize: str = "auto",
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    trust_remote_code: bool = False,
    recipe: str | None = None,
    graph: str = "auto",
) -> Path:
    """Export, quantize, verify and write an ONNX model folder; return it.

    `quantize`: one of QUANTIZATIONS or "auto" (`default_quantization`). `recipe` (int8 on
    the explain and logits graphs): one of RECIPES (default DEFAULT_RECIPE). `graph`: "auto"
    (`choose_graph`), "fused", "explain" or "logits".

    Everything is written to a temporary folder beside the destination and renamed into place
    at the end, so a failed export never leaves a half-written folder behind, and temporary
    folders of killed exports are removed first (`clean_stale_exports`)."""
    if quantize not in (*QUANTIZATIONS, "auto"):
        raise ExportError(f"unknown quantization {quantize!r}; use one of {QUANTIZATIONS}")
    recipe = recipe or DEFAULT_RECIPE
    if quantize == "int8" and recipe not in RECIPES:
        raise ExportError(f"unknown quantization recipe {recipe!r}; use one of {list(RECIPES)}")
    say = progress or (lambda _msg: None)
    loaded = load_model(model, trust_remote_code)
    if quantize == "auto":
        quantize = default_quantization(loaded.model_id)
    source = gguf_source(loaded) if quantize == "gguf" else None
    kind = choose_graph(loaded, graph)
    if quantize == "gguf" and kind != "fused":
        raise ExportError(f"--quantize gguf needs the fused graph, not the {kind} graph")
    fingerprint = model_fingerprint(loaded.path)
    dest = Path(out) if out else default_export_dir(loaded.model_id, fingerprint, quantize)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_exports(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".export-{os.getpid()}-", dir=dest.parent))
    old: Path | None = None
    try:
        if kind == "fused":  # emitted with its weights as they should be
            say(f"writing {loaded.model_id} as ONNX Runtime's fused graph ({quantize} weights)")
            _export_graph(loaded, tmp / MODEL_FILE, kind, quantize)
        else:
            fp32 = tmp / ("fp32.onnx" if quantize != "none" else MODEL_FILE)
            cached = (
                _cached_fp32(loaded.model_id, fingerprint, kind) if quantize == "int8" else None
            )
            if cached is not None:
                fp32 = cached  # quantize the verified fp32 export instead of exporting again
            else:
                say(f"exporting {loaded.model_id} to ONNX ({kind} graph)")
                _export_graph(loaded, fp32, kind, "none")
            if quantize == "int8":
                say(f"quantizing weights ({recipe})")
                _quantize(fp32, tmp / MODEL_FILE, recipe)
                for leftover in tmp.glob("fp32.onnx*"):
                    leftover.unlink()
        say("verifying against torch")
        from promptxray.explainers.backends.onnx_backend import OnnxRunner
        from promptxray.explainers.backends.onnx_packed import PackedRunner

        runner = (
            PackedRunner(tmp / MODEL_FILE)
            if kind == "fused"
            else OnnxRunner(tmp / MODEL_FILE, kind)
        )
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
            "context_length": _context_length(loaded),
            "opset": OPSET,
            "graph": kind,
            "shape": _shape(loaded),
            "quantization": quantize,
            "quantizer": _quantizer(kind, quantize, recipe, source),
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


def _quantizer(kind: str, quantize: str, recipe: str, source: Path | None) -> Any:
    """How the weights were quantized, for the manifest."""
    if quantize == "gguf":
        assert source is not None
        return {"recipe": "gguf", "source": source.name, "lossless": True}
    if quantize != "int8":
        return None
    if kind == "fused":
        return {"recipe": "q8_0-blocks", "bits": 8, "block_size": 32, "symmetric": True}
    return {"recipe": recipe, **RECIPES[recipe], "symmetric": True}


def _shape(loaded: LoadedModel) -> dict[str, int]:
    from promptxray.explainers.models.onnx_graph import graph_shape

    try:
        return graph_shape(loaded.model)
    except (AttributeError, TypeError, ValueError):  # a config without Llama-style fields
        return {}


def is_current(folder: Path) -> bool:
    """Whether a cached export folder is what `export_onnx` would write now: a readable
    manifest of this FORMAT (and, for int8 on the older graphs, the default recipe).
    Checksums are checked when the backend loads it."""
    try:
        manifest = read_manifest(folder)
    except ModelLoadError:
        return False
    quantizer = manifest.get("quantizer") or {}
    return manifest.get("format") == FORMAT and (
        manifest.get("quantization") != "int8"
        or manifest.get("graph") == "fused"
        or quantizer.get("recipe") == DEFAULT_RECIPE
    )
