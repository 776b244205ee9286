"""Export a causal LM to ONNX (torch.onnx dynamo exporter), optionally quantize its weights to
8 bits block-wise, verify it against torch, and write it with its tokenizer and a manifest.

Plain `quantize_dynamic` int8 was measured to wreck SmolLM2 (top-1 agreement 26/50); the
block-wise 8-bit MatMulNBits quantizer keeps it (49/50). An export whose top-1 agreement with
torch is under 90% is written with `"usable": false` and refused by the backend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from promptxray.explainers.errors import ModelLoadError, PromptXrayError
from promptxray.explainers.models.loading import LoadedModel, cache_dir, load_model

MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
QUANTIZATIONS = ("none", "int8")
OPSET = 18
MIN_TOP1 = 0.9
# accuracy_level 4 (int8 activations), as measured when this backend was specified. Measured
# here on SmolLM2: level None (fp32 activations) had a smaller logit error at the last position
# of "What is the capital of France?" (0.60 vs 2.23) but lower top-1 agreement on the probe set
# (91.2% vs 94.1%); both flip that prompt's near-tied first answer token ("The", P=0.15).
ACCURACY_LEVEL = 4
PROBES = [
    "What is the capital of France?",
    "Once upon a time there was a little girl named",
    "Write a haiku about the sea.",
    "def add(a, b):\n    return",
]


class ExportError(PromptXrayError):
    """The model could not be exported, or the export failed verification."""


def model_fingerprint(path: str) -> str:
    """A cheap identity of a model folder: its config and the names and sizes of its weights."""
    folder = Path(path)
    digest = hashlib.sha256()
    config = folder / "config.json"
    if config.exists():
        digest.update(config.read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def default_export_dir(model_id: str, fingerprint: str, quantize: str) -> Path:
    """Where the backend looks for (and the CLI writes) an export without --out."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    return cache_dir() / "onnx" / f"{safe}-{fingerprint}-{quantize}"


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


def _export_graph(loaded: LoadedModel, target: Path) -> None:
    import torch

    wrapper = _LogitsOnly(loaded.model)
    ids = torch.tensor([[0, 0, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    try:
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
    except Exception as exc:  # the exporter raises many types for unsupported architectures
        raise ExportError(
            f"cannot export {loaded.model_id} to ONNX ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); use --backend torch"
        ) from exc


def _quantize_int8(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(source))
    quantizer = MatMulNBitsQuantizer(
        model, bits=8, block_size=32, is_symmetric=True, accuracy_level=ACCURACY_LEVEL
    )
    quiet = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        quantizer.process()
    finally:
        quiet.setLevel(level)
    quantizer.model.save_model_to_file(str(target), use_external_data_format=True)


def verify(loaded: LoadedModel, model_path: Path, threads: int | None = None) -> dict[str, float]:
    """Compare ORT logits with torch on the probe prompts, one left-padded batch."""
    import torch

    from promptxray.explainers.backends.base import left_pad
    from promptxray.explainers.backends.onnx_backend import make_session

    tok = loaded.tokenizer
    rows = [list(tok(p)["input_ids"]) for p in PROBES]
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    batch = left_pad(rows, int(pad))
    with torch.no_grad():
        ref = loaded.model(
            input_ids=torch.from_numpy(batch.input_ids),
            attention_mask=torch.from_numpy(batch.attention_mask),
            position_ids=torch.from_numpy(batch.position_ids),
            use_cache=False,
        ).logits.numpy()
    session = make_session(model_path, threads)
    out = session.run(
        ["logits"], {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    )[0]
    valid = batch.attention_mask.astype(bool)
    return {
        "max_abs_logit_diff": float(np.abs(out - ref)[valid].max()),
        "top1_agreement": float((out.argmax(-1) == ref.argmax(-1))[valid].mean()),
        "positions": int(valid.sum()),
    }


def export_onnx(
    model: str | None = None,
    quantize: str = "int8",
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    trust_remote_code: bool = False,
) -> Path:
    """Export, quantize, verify and write an ONNX model folder; return it.

    Everything is written to a temporary folder beside the destination and renamed into place
    at the end, so a failed export never leaves a half-written folder behind."""
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}; use one of {QUANTIZATIONS}")
    say = progress or (lambda _msg: None)
    loaded = load_model(model, trust_remote_code)
    fingerprint = model_fingerprint(loaded.path)
    dest = Path(out) if out else default_export_dir(loaded.model_id, fingerprint, quantize)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=dest.parent))
    try:
        fp32 = tmp / ("fp32.onnx" if quantize != "none" else MODEL_FILE)
        cached_fp32 = default_export_dir(loaded.model_id, fingerprint, "none") / MODEL_FILE
        if quantize == "int8" and cached_fp32.exists():
            fp32 = cached_fp32  # quantize the verified fp32 export instead of exporting again
        else:
            say(f"exporting {loaded.model_id} to ONNX")
            _export_graph(loaded, fp32)
        if quantize == "int8":
            say("quantizing weights to 8 bits (block-wise)")
            _quantize_int8(fp32, tmp / MODEL_FILE)
            for leftover in tmp.glob("fp32.onnx*"):
                leftover.unlink()
        say("verifying against torch")
        figures = verify(loaded, tmp / MODEL_FILE)
        usable = figures["top1_agreement"] >= MIN_TOP1
        loaded.tokenizer.save_pretrained(str(tmp))
        manifest = {
            "source_model": loaded.model_id,
            "source_path": loaded.path,
            "source_fingerprint": fingerprint,
            "context_length": int(getattr(loaded.model.config, "max_position_embeddings", 2048)),
            "opset": OPSET,
            "quantization": quantize,
            "quantizer": (
                {
                    "name": "MatMulNBits",
                    "bits": 8,
                    "block_size": 32,
                    "symmetric": True,
                    "accuracy_level": ACCURACY_LEVEL,
                }
                if quantize == "int8"
                else None
            ),
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "verification": figures,
            "usable": usable,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        tmp.chmod(0o755)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not usable:
        raise ExportError(
            f"the ONNX export of {loaded.model_id} agrees with torch on only "
            f"{figures['top1_agreement']:.0%} of top-1 predictions (< {MIN_TOP1:.0%}); it is "
            f"marked unusable in {dest / MANIFEST}. Try --quantize none"
        )
    return dest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of an export folder, with clear errors for what is missing or broken."""
    path = folder / MANIFEST
    if not path.exists():
        raise ModelLoadError(f"{path} is missing: re-export with `promptxray export-onnx`")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}); re-export the model") from exc
    if not isinstance(manifest, dict) or "source_fingerprint" not in manifest:
        raise ModelLoadError(f"{path} is not a promptxray ONNX manifest; re-export the model")
    return manifest
