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
path of `get_backend("onnx")` exports again when they do not match.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from promptxray.explainers.errors import ModelLoadError, PromptXrayError
from promptxray.explainers.models.loading import LoadedModel, cache_dir, load_model

if TYPE_CHECKING:
    from promptxray.explainers.backends.onnx_backend import OnnxRunner

MODEL_FILE = "model.onnx"
MANIFEST = "manifest.json"
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

# Logits are compared on these, in one left-padded batch.
PROBES = [
    "What is the capital of France?",
    "Once upon a time there was a little girl named",
    "Write a haiku about the sea.",
    "def add(a, b):\n    return",
]
# Greedy answers (ANSWER_TOKENS new tokens, through the chat template where the model has one)
# are compared with fp32 torch's on these: the manifest's `answer_agreement`.
ANSWER_PROMPTS = [
    "What is the capital of France?",
    "Once upon a time there was a little girl named",
    "Write a haiku about the sea.",
    "def add(a, b):\n    return",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 7?",
    "Name three primary colours.",
    "Give me a synonym for 'happy'.",
    "Who wrote Romeo and Juliet?",
    "The dog ran to the park and saw a big red ball. He",
    "Summarise in one sentence: the meeting moved from Monday to Thursday at 3 pm.",
    "Is a tomato a fruit or a vegetable?",
    "List two uses of baking soda.",
    "Write a SQL query that counts the rows of the table users.",
    "What does HTTP stand for?",
    "Complete the sentence: The early bird",
    "Which planet is closest to the sun?",
    "Tom and Sue went to the beach. They played in the sand and",
    "Reply with yes or no: is water wet?",
    "Suggest a name for a grey cat.",
    "How many legs does a spider have?",
    "Explain recursion in five words.",
    "What is the boiling point of water in Celsius?",
    "Write the opening line of a mystery novel.",
]
ANSWER_TOKENS = 8  # ExplainRequest.max_new_tokens' default: the answer explain would explain

STALE_UNKNOWN_S = 3600  # a temporary folder without a readable owner pid: stale after an hour
STALE_ALIVE_S = 24 * 3600  # even with a live owner pid (a reused pid): stale after a day


class ExportError(PromptXrayError):
    """The model could not be exported, or the export failed verification."""


class CorruptExportError(ModelLoadError):
    """An export folder's model files do not match the checksums in its manifest."""


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


# --- checksums ---------------------------------------------------------------------------------
def model_files(folder: Path) -> list[Path]:
    """The model's files: model.onnx and its external data (model.onnx.data)."""
    return sorted(p for p in folder.glob(f"{MODEL_FILE}*") if p.is_file())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of each model file, by name (what the manifest records)."""
    return {p.name: file_sha256(p) for p in model_files(folder)}


def check_checksums(folder: Path, manifest: dict[str, Any]) -> None:
    """CorruptExportError when a model file recorded in the manifest is missing or changed
    (a manifest without checksums, from an older export, is not checked)."""
    recorded = manifest.get("checksums")
    if not isinstance(recorded, dict):
        return
    for name, expected in recorded.items():
        path = folder / name
        if not path.is_file():
            raise CorruptExportError(
                f"{path} is missing; delete {folder} and export again with `promptxray export-onnx`"
            )
        if file_sha256(path) != expected:
            raise CorruptExportError(
                f"{path} does not match the checksum in {folder / MANIFEST} (a corrupt or "
                f"partly overwritten file); delete {folder} and export again with "
                "`promptxray export-onnx`"
            )


# --- temporary folders -------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's live process
        return True
    return True


def _owner(name: str) -> int | None:
    """The pid in a temporary folder's name `.export-<pid>-...` (None for other names)."""
    parts = name.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def clean_stale_exports(parent: Path, now: float | None = None) -> list[Path]:
    """Remove the temporary folders an interrupted export left in `parent`; return them.

    A `.export-<pid>-*` folder is stale when process <pid> is not running on this machine (it
    was killed mid-export), or, whatever the pid, when it is older than a day (the pid was
    reused). A `.export-*` folder whose name has no pid is stale after an hour. A folder of an
    export still running in a live process is left alone."""
    if not parent.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for folder in parent.glob(".export-*"):
        try:
            age = now - folder.stat().st_mtime
        except OSError:
            continue
        pid = _owner(folder.name)
        if pid is None:
            stale = age > STALE_UNKNOWN_S
        else:
            stale = age > STALE_ALIVE_S or (pid != os.getpid() and not _pid_alive(pid))
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


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


# --- verification ------------------------------------------------------------------------------
def verify(loaded: LoadedModel, runner: OnnxRunner) -> dict[str, float]:
    """Compare ORT logits with torch on the probe prompts, one left-padded batch."""
    import torch

    from promptxray.explainers.backends.base import left_pad

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
    out = runner.logits(batch)
    valid = batch.attention_mask.astype(bool)
    return {
        "max_abs_logit_diff": float(np.abs(out - ref)[valid].max()),
        "top1_agreement": float((out.argmax(-1) == ref.argmax(-1))[valid].mean()),
        "positions": int(valid.sum()),
    }


def answer_prompt_ids(loaded: LoadedModel, prompt: str) -> list[int]:
    """A verification prompt as explain would send it: through the chat template when the
    model has one (one user message), else as plain text with special tokens."""
    tok = loaded.tokenizer
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return list(tok(text, add_special_tokens=False)["input_ids"])
    return list(tok(prompt)["input_ids"])


def answer_agreement(loaded: LoadedModel, runner: OnnxRunner) -> dict[str, Any]:
    """Greedy answers (ANSWER_TOKENS new tokens) of the export and of fp32 torch on
    ANSWER_PROMPTS: the share of prompts answered identically, of first tokens that agree, and
    the prompts answered differently (with both answers)."""
    from promptxray.explainers.backends.torch_backend import TorchBackend

    reference = TorchBackend(loaded)
    eos = reference.eos_ids()
    same = first = 0
    differing = []
    for prompt in ANSWER_PROMPTS:
        ids = answer_prompt_ids(loaded, prompt)
        want = reference.generate(ids, ANSWER_TOKENS)
        got = runner.generate(ids, ANSWER_TOKENS, eos)
        same += got == want
        first += got[:1] == want[:1]
        if got != want:
            differing.append(
                {
                    "prompt": prompt,
                    "torch_fp32": loaded.tokenizer.decode(want),
                    "onnx": loaded.tokenizer.decode(got),
                }
            )
    n = len(ANSWER_PROMPTS)
    return {
        "prompts": n,
        "max_new_tokens": ANSWER_TOKENS,
        "same_answer": same / n,
        "same_first_token": first / n,
        "differing": differing,
    }


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
