"""Backends by name, loaded once per process and model (front ends share one instance)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.errors import InvalidRequestError

BACKENDS = ("torch", "onnx")
_CACHE: dict[tuple[str, str, bool], Backend] = {}
_LOCK = threading.Lock()


def get_backend(
    name: str = "torch",
    model: str | None = None,
    trust_remote_code: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Backend:
    """The backend `name` over `model` (None: the default model), loading it on first use.

    For `onnx`, `model` may be an export folder (with manifest.json); otherwise the model's
    int8 export in the cache is used, and made on first use (about a minute for SmolLM2)."""
    if name not in BACKENDS:
        raise InvalidRequestError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    key = (name, model or "default", trust_remote_code)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(name, model, trust_remote_code, progress)
        return _CACHE[key]


def _load(
    name: str, model: str | None, trust_remote_code: bool, progress: Callable[[str], None] | None
) -> Backend:
    from promptxray.explainers.models.loading import load_model

    if name == "torch":
        from promptxray.explainers.backends.threads import configure_torch_threads
        from promptxray.explainers.backends.torch_backend import TorchBackend

        configure_torch_threads()
        return TorchBackend(load_model(model, trust_remote_code, progress))
    from promptxray.explainers.backends.onnx_backend import OnnxBackend
    from promptxray.explainers.models.loading import resolve_model_path
    from promptxray.explainers.models.onnx_export import (
        MANIFEST,
        default_export_dir,
        export_onnx,
        model_fingerprint,
    )

    if model and (Path(model).expanduser() / MANIFEST).exists():
        return OnnxBackend(Path(model).expanduser())
    path, model_id = resolve_model_path(model, progress)
    folder = default_export_dir(model_id, model_fingerprint(path), "int8")
    if not (folder / MANIFEST).exists():
        export_onnx(model, "int8", progress=progress, trust_remote_code=trust_remote_code)
    return OnnxBackend(folder)
