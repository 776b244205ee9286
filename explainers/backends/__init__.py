"""Backends by name, loaded once per process and model (front ends share one instance)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.backends.capabilities import Capabilities
from promptxray.explainers.backends.options import BackendOptions
from promptxray.explainers.errors import InvalidRequestError, ModelLoadError

# "vllm" is the openai backend insisting on its prompt-log-probability tier
BACKENDS = ("torch", "onnx", "openai", "vllm")
REMOTE = ("openai", "vllm")
_CACHE: dict[tuple[str, str, bool, BackendOptions], Backend] = {}
_LOCK = threading.Lock()


def get_backend(
    name: str = "torch",
    model: str | None = None,
    trust_remote_code: bool = False,
    progress: Callable[[str], None] | None = None,
    options: BackendOptions | None = None,
) -> Backend:
    """The backend `name` over `model` (None: the default model), loading it on first use.

    For `onnx`, `model` may be an export folder (with manifest.json); otherwise the model's
    int8 export in the cache is used, and made on first use (about a minute for SmolLM2).
    For `openai` (and `vllm`), `options.endpoint` names the server and `model` the local
    folder of the served model's tokenizer (None: the default model's), used only where the
    server returns prompt log-probabilities (openai_connect.py)."""
    if name not in BACKENDS:
        raise InvalidRequestError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    options = relevant_options(name, options or BackendOptions())
    key = (name, model or "default", trust_remote_code, options)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(name, model, trust_remote_code, progress, options)
        return _CACHE[key]


def relevant_options(name: str, options: BackendOptions) -> BackendOptions:
    """Only the options that change what backend `name` loads or connects to (the key it is
    cached under): the server's for openai, device and dtype for torch, none for onnx."""
    if name == "torch":
        return BackendOptions(device=options.device, dtype=options.dtype)
    if name in REMOTE:
        return replace(options, device="auto", dtype="auto")
    return BackendOptions()


def _load(
    name: str,
    model: str | None,
    trust_remote_code: bool,
    progress: Callable[[str], None] | None,
    options: BackendOptions,
) -> Backend:
    from promptxray.explainers.models.loading import load_model

    if name == "torch":
        from promptxray.explainers.backends.threads import configure_torch_threads
        from promptxray.explainers.backends.torch_backend import TorchBackend

        configure_torch_threads()
        return TorchBackend(
            load_model(model, trust_remote_code, progress, options.device, options.dtype)
        )
    if name in REMOTE:
        from promptxray.explainers.backends.openai_connect import connect

        return connect(name, model, trust_remote_code, progress, options)
    from promptxray.explainers.backends.onnx_backend import OnnxBackend
    from promptxray.explainers.models.loading import resolve_model_path
    from promptxray.explainers.models.onnx_cache import (
        MANIFEST,
        clean_stale_exports,
        default_export_dir,
        model_fingerprint,
    )
    from promptxray.explainers.models.onnx_export import (
        default_quantization,
        export_onnx,
        is_current,
    )

    if model and (Path(model).expanduser() / MANIFEST).exists():
        # a folder the user named is never replaced: its error (a corrupt file, a checksum
        # that does not match) is theirs to see
        return OnnxBackend(Path(model).expanduser())
    path, model_id = resolve_model_path(model, progress)
    quantize = default_quantization(model_id)
    folder = default_export_dir(model_id, model_fingerprint(path), quantize)
    clean_stale_exports(folder.parent)  # temporary folders of killed exports
    if not is_current(folder):  # missing, unreadable, of an older format or recipe
        export_onnx(model, quantize, progress=progress, trust_remote_code=trust_remote_code)
    try:
        return OnnxBackend(folder)
    except ModelLoadError as exc:
        # the cache's own export is broken (its checksums do not match) or does not load:
        # make it again, from torch (the cached fp32 export it would reuse may be of that
        # format too)
        import shutil

        if progress:
            progress(f"{exc}; exporting again")
        shutil.rmtree(default_export_dir(model_id, model_fingerprint(path), "none"), True)
        export_onnx(model, quantize, progress=progress, trust_remote_code=trust_remote_code)
        return OnnxBackend(folder)


def best_capabilities(name: str) -> Capabilities | None:
    """What backend `name` offers at best, without loading a model or connecting (a front end
    checks a method with it before anything loads): a server's richest tier for `openai`."""
    import importlib

    where = {
        "torch": ("torch_backend", "TorchBackend"),
        "onnx": ("onnx_backend", "OnnxBackend"),
        "openai": ("openai_prompt", "PromptLogprobsBackend"),
        "vllm": ("openai_prompt", "PromptLogprobsBackend"),
    }.get(name)
    if where is None:
        return None
    try:
        module = importlib.import_module(f"promptxray.explainers.backends.{where[0]}")
    except ImportError:  # an optional dependency (onnxruntime, torch) is missing
        return None
    caps: Capabilities = getattr(module, where[1]).capabilities
    return caps
