"""How a backend is reached and run, beside its name and model: the engine of the `vllm`
backend (endpoint, served model name, requests in flight, timeout) and the torch backend's
device and dtype. Frozen, so that it is part of the key backends are cached under.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptxray.explainers.errors import InvalidRequestError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
# the environment variable an engine's API key is read from (never from settings or results)
API_KEY_ENV = "PROMPTXRAY_VLLM_API_KEY"


@dataclass(frozen=True)
class BackendOptions:
    """Settings a backend is loaded with. Defaults: CPU-or-CUDA torch in fp32 (bf16 on CUDA),
    and no engine (the `vllm` backend needs an endpoint)."""

    endpoint: str | None = None  # the vLLM server's base URL, e.g. http://127.0.0.1:8000
    served_model: str | None = None  # its --served-model-name (None: the only one it serves)
    concurrency: int = 16  # requests in flight at once
    timeout_s: float = 120.0  # per request
    device: str = "auto"  # torch: auto picks CUDA when present
    dtype: str = "auto"  # torch: auto is float32 on the CPU, bfloat16 on CUDA

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise InvalidRequestError(
                f"unknown device {self.device!r}; use one of {', '.join(DEVICES)}"
            )
        if self.dtype not in DTYPES:
            raise InvalidRequestError(
                f"unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}"
            )
        if self.concurrency < 1:
            raise InvalidRequestError("concurrency must be at least 1")
        if self.timeout_s <= 0:
            raise InvalidRequestError("timeout must be positive")
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise InvalidRequestError(
                f"endpoint {self.endpoint!r} is not an http:// or https:// URL"
            )
