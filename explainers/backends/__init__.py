"""Backends by name, loaded once per process and model (front ends share one instance)."""

from __future__ import annotations

import threading
from typing import Any

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.errors import InvalidRequestError

BACKENDS = ("torch",)
_CACHE: dict[tuple[str, str, bool], Backend] = {}
_LOCK = threading.Lock()


def get_backend(
    name: str = "torch",
    model: str | None = None,
    trust_remote_code: bool = False,
    progress: Any = None,
) -> Backend:
    """The backend `name` over `model` (None: the default model), loading it on first use."""
    if name not in BACKENDS:
        raise InvalidRequestError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    key = (name, model or "default", trust_remote_code)
    with _LOCK:
        if key not in _CACHE:
            from promptxray.explainers.backends.torch_backend import TorchBackend
            from promptxray.explainers.models.loading import load_model

            _CACHE[key] = TorchBackend(load_model(model, trust_remote_code, progress))
        return _CACHE[key]
