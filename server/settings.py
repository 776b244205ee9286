"""The language server's settings: a dataclass with defaults, parsed leniently.

Settings arrive as `initializationOptions` and in `workspace/didChangeConfiguration` (either
flat or under a `promptxray` key). An unknown or invalid value never crashes the server: it is
reported as a warning and its default is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlparse

from promptxray.explainers.backends import BACKENDS
from promptxray.explainers.backends.options import (
    API_KEY_ENV,
    DEVICES,
    DTYPES,
    TIERS,
    BackendOptions,
)
from promptxray.explainers.nl import LANGUAGES, NO_EFFECT_NATS
from promptxray.explainers.types import GRANULARITIES

TRIGGERS = ("onChange", "onSave", "manual")
DEFAULT_GLOBS = ("*.prompt", "*.prompt.md", "*.prompty", "*.py")


@dataclass(frozen=True)
class Settings:
    """What the server explains with, and when."""

    model: str | None = None
    backend: str = "torch"
    method: str = "occlusion"
    granularity: str = "auto"  # lines first, then words and tokens where they matter
    maxNewTokens: int = 8
    target: str | None = None
    trigger: str = "onChange"
    debounceMs: int = 600
    unnecessaryThreshold: float = NO_EFFECT_NATS  # "no measurable effect" below this (nats)
    inlayHints: bool = False
    faithfulness: bool = True  # measure and show deletion/insertion and ERASER figures
    autoBudgetSeconds: float = 5.0  # time budget of method "auto"
    language: str = "en"  # of every sentence shown (hover, diagnostics, report)
    selfExplain: bool = False  # ask the model why it answered so (costs a generation)
    globs: tuple[str, ...] = field(default=DEFAULT_GLOBS)
    # values for template variables a file gives none (over the file's own and its sidecar's)
    samples: dict[str, Any] = field(default_factory=dict)
    # backend "openai" (and "vllm"): the server; its API key only from the environment
    # variable keyVariable names ($PROMPTXRAY_API_KEY by default), never from settings
    endpoint: str | None = None  # http(s) URL of an OpenAI-compatible server
    servedModel: str | None = None  # the model's name there (None: the only one it serves)
    keyVariable: str = API_KEY_ENV
    tier: str = "auto"  # how figures are obtained (auto: the best exact one offered)
    maxRequests: int | None = None  # per explanation, refused before sending; None: no limit
    pricePerMillionTokens: float | None = None  # to state what an explanation costs
    concurrency: int = 16  # requests in flight at once
    requestTimeoutSeconds: float = 120.0  # per request
    # backend "torch": where and in what precision the model runs
    device: str = "auto"
    dtype: str = "auto"

    def backend_options(self) -> BackendOptions:
        """How the backend is reached and run (every value was checked by parse_settings)."""
        return BackendOptions(
            endpoint=self.endpoint,
            served_model=self.servedModel,
            api_key_env=self.keyVariable,
            tier=self.tier,
            max_requests=self.maxRequests,
            price_per_mtok=self.pricePerMillionTokens,
            concurrency=self.concurrency,
            timeout_s=self.requestTimeoutSeconds,
            device=self.device,
            dtype=self.dtype,
        )

    def explain_key(self) -> tuple[Any, ...]:
        """The settings that change an explanation's result (for the cache key)."""
        return (
            self.model,
            self.backend,
            self.method,
            self.granularity,
            self.maxNewTokens,
            self.faithfulness,
            self.autoBudgetSeconds,
            self.selfExplain,
            self.language if self.selfExplain else None,  # the language of the question
            self.backend_options(),  # a changed endpoint or device reconnects / reloads
        )

    def show_key(self) -> tuple[Any, ...]:
        """The settings that change only how a result is shown (wording, hints)."""
        return (self.language, self.unnecessaryThreshold, self.inlayHints)


def _check(name: str, value: Any, default: Any) -> tuple[Any, str | None]:
    """Validate one setting; return (value to use, warning or None)."""
    from promptxray.explainers.registry import validate_method

    bad = f"promptxray: invalid setting {name}={value!r}"
    if name in ("model", "target", "servedModel"):
        if value is None or (isinstance(value, str) and value.strip()):
            return value, None
        if value == "":
            return None, None
        return default, f"{bad}: expected a string; using the default"
    if name == "endpoint":
        if value is None or value == "":
            return None, None
        if isinstance(value, str) and _is_url(value.strip()):
            return value.strip(), None
        return default, f"{bad}: expected an http:// or https:// URL; using none"
    if name == "keyVariable":
        if isinstance(value, str) and value and value.replace("_", "").isalnum():
            return value, None
        return default, f"{bad}: expected the name of an environment variable; using {default}"
    if name == "maxRequests":
        if value is None or value == 0:
            return None, None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value, None
        return default, f"{bad}: expected a whole number >= 1 (0: no limit); using no limit"
    if name == "pricePerMillionTokens":
        if value is None or value == 0:
            return None, None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value), None
        return default, f"{bad}: expected a price >= 0; using none"
    if name in ("maxNewTokens", "debounceMs", "concurrency"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        lo, hi = (0, 60_000) if name == "debounceMs" else (1, 256)
        if ok and lo <= value <= hi:
            return value, None
        return default, f"{bad}: expected a whole number from {lo} to {hi}; using {default}"
    if name == "autoBudgetSeconds":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 600:
            return float(value), None
        return default, f"{bad}: expected seconds from 0 to 600; using {default}"
    if name == "requestTimeoutSeconds":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e6:
            return float(value), None
        return default, f"{bad}: expected seconds above 0; using {default}"
    if name == "unnecessaryThreshold":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value), None
        return default, f"{bad}: expected a number >= 0; using {default}"
    if name in ("inlayHints", "faithfulness", "selfExplain"):
        if isinstance(value, bool):
            return value, None
        return default, f"{bad}: expected true or false; using {default}"
    if name == "samples":
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return dict(value), None
        return default, f"{bad}: expected an object of name: value; using none"
    if name == "globs":
        if isinstance(value, list) and all(isinstance(g, str) and g for g in value):
            return tuple(dict.fromkeys([*DEFAULT_GLOBS, *value])), None
        return default, f"{bad}: expected a list of glob patterns; using the defaults"
    choices: tuple[str, ...] = {
        "backend": BACKENDS,
        "granularity": GRANULARITIES,
        "trigger": TRIGGERS,
        "language": LANGUAGES,
        "device": DEVICES,
        "tier": TIERS,
        "dtype": DTYPES,
    }.get(name, ())
    if name == "method":
        try:
            validate_method(str(value))
            return str(value), None
        except Exception as exc:
            return default, f"promptxray: invalid setting method: {exc}; using {default}"
    if value in choices:
        return value, None
    return default, f"{bad}: expected one of {', '.join(choices)}; using {default}"


def _is_url(text: str) -> bool:
    """An http:// or https:// URL with a host and no spaces (what BackendOptions accepts)."""
    if not text.startswith(("http://", "https://")) or any(c.isspace() for c in text):
        return False
    try:
        return bool(urlparse(text).netloc)
    except ValueError:
        return False


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings from a client's JSON object (missing keys keep `base`), plus warnings."""
    base = base or Settings()
    if raw is None:
        return base, []
    if isinstance(raw, dict) and isinstance(raw.get("promptxray"), dict):
        raw = raw["promptxray"]
    if not isinstance(raw, dict):
        return base, [f"promptxray: settings must be an object, got {type(raw).__name__}"]
    known = {f.name: f for f in fields(Settings)}
    defaults = Settings()
    changes: dict[str, Any] = {}
    warnings: list[str] = []
    for name, value in raw.items():
        if name not in known:
            warnings.append(f"promptxray: unknown setting {name!r} ignored")
            continue
        checked, warning = _check(name, value, getattr(defaults, name))
        changes[name] = checked
        if warning:
            warnings.append(warning)
    return replace(base, **changes), warnings
