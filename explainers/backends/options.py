"""How a backend is reached and run, beside its name and model: the server of the `openai`
backend (endpoint, served model name, API key variable, requests in flight, timeout, budget)
and the torch backend's device and dtype. Frozen, so that it is part of the key backends are
cached under.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptxray.explainers.errors import InvalidRequestError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
# the environment variable a server's API key is read from by default (never from settings or
# results); the name of another one may be given (`api_key_env`), the value never
API_KEY_ENV = "PROMPTXRAY_API_KEY"
LEGACY_API_KEY_ENV = "PROMPTXRAY_VLLM_API_KEY"  # read when API_KEY_ENV is not set
TIERS = ("auto", "prompt-logprobs", "generated-logprobs", "text-only")


@dataclass(frozen=True)
class BackendOptions:
    """Settings a backend is loaded with. Defaults: CPU-or-CUDA torch in fp32 (bf16 on CUDA),
    and no engine (the `vllm` backend needs an endpoint)."""

    endpoint: str | None = None  # the server's base URL, e.g. http://127.0.0.1:8000/v1
    served_model: str | None = None  # its model name (None: the only one it serves)
    concurrency: int = 16  # requests in flight at once
    timeout_s: float = 120.0  # per request
    api_key_env: str = API_KEY_ENV  # the environment variable holding the API key
    tier: str = "auto"  # the scoring tier: auto picks the best exact one the server offers
    max_requests: int | None = None  # per explanation; None: no limit
    price_per_mtok: float | None = (
        None  # the price of a million prompt tokens, if the user sets one
    )
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
        if self.tier not in TIERS:
            raise InvalidRequestError(f"unknown tier {self.tier!r}; use one of {', '.join(TIERS)}")
        if self.max_requests is not None and self.max_requests < 1:
            raise InvalidRequestError("max_requests must be at least 1")
        if not self.api_key_env.replace("_", "").isalnum():
            raise InvalidRequestError(
                f"api_key_env {self.api_key_env!r} is not the name of an environment variable"
            )
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise InvalidRequestError(
                f"endpoint {self.endpoint!r} is not an http:// or https:// URL"
            )
