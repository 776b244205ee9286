"""JSON over HTTP to one OpenAI-compatible server (vLLM, llama.cpp, Ollama, a hosted API):
requests, streamed answers, retries with back-off where they can help (429's `Retry-After`
honoured), and every fault as an EngineError a user can act on.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from promptxray.explainers.backends.options import API_KEY_ENV, LEGACY_API_KEY_ENV
from promptxray.explainers.errors import EngineError

RETRIES = 4  # attempts after the first, for faults a retry can help (refused, 5xx, timeout)
BACKOFF_S = 0.5  # first wait; doubles each attempt (0.5, 1, 2, 4 s)
RATE_LIMIT_RETRIES = 8  # attempts after the first for HTTP 429, each after its Retry-After
MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After is an error (the user's quota is spent)


class EngineClient:
    """JSON over HTTP to one OpenAI-compatible server, with retries and back-off where they
    can help.

    The API key (from the environment variable `key_env`) goes only into the Authorization
    header: it is never logged, put in an error message or written to a result."""

    def __init__(self, endpoint: str, timeout_s: float, key_env: str = API_KEY_ENV) -> None:
        self.base = endpoint.rstrip("/")
        if self.base.endswith("/v1"):
            self.base = self.base[: -len("/v1")]
        self.timeout_s = timeout_s
        self.key_env = key_env
        self._key = os.environ.get(key_env) or None
        if self._key is None and key_env == API_KEY_ENV:
            self._key = os.environ.get(LEGACY_API_KEY_ENV) or None
        self.rate_limited = 0  # 429 answers waited out (a result reports them)

    def get(self, path: str) -> Any:
        return self._call("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, body)

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Server-sent events of a streamed request, one parsed `data:` object at a time."""
        with self._open("POST", path, {**body, "stream": True}) as response:
            try:
                for raw in response:
                    line = raw.decode("utf-8").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        return
                    yield json.loads(data)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                raise EngineError(
                    f"the server at {self.base} broke off the answer ({exc!r})", retry=False
                ) from None
        raise EngineError(
            f"the server at {self.base} ended the answer before it was complete; check "
            "that it is still running"
        )

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        attempt = waited = 0
        while True:
            try:
                with self._open(method, path, body) as response:
                    return self._read_json(response)
            except EngineError as exc:
                if exc.status == 429:
                    waited += 1
                    self.rate_limited += 1
                    pause = (
                        exc.retry_after if exc.retry_after is not None else BACKOFF_S * 2**waited
                    )
                    if waited > RATE_LIMIT_RETRIES or pause > MAX_RETRY_AFTER_S:
                        raise EngineError(
                            f"the server at {self.base} kept answering HTTP 429 (too many "
                            f"requests) after {waited} waits; lower --concurrency, or try "
                            "again later",
                            status=429,
                            detail=exc.detail,
                        ) from None
                    time.sleep(min(pause, MAX_RETRY_AFTER_S))
                    continue
                if not exc.retry or attempt == RETRIES:
                    raise
                time.sleep(BACKOFF_S * (2**attempt))
                attempt += 1

    def _read_json(self, response: Any) -> Any:
        """The answer's JSON; an answer cut off (the engine stopped mid-reply) is an
        EngineError worth one retry, never a raw http.client exception."""
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(
                f"the server at {self.base} broke off its answer ({exc!r}); check that it "
                "is still running",
                retry=True,
            ) from None
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError:
            raise EngineError(
                f"the server at {self.base} sent an answer that is not JSON; check that "
                "the endpoint setting names an OpenAI-compatible server",
                retry=False,
            ) from None

    def _open(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self._key:
            request.add_header("Authorization", f"Bearer {self._key}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            raise _http_error(self.base, path, exc, self.key_env) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts: OSError
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
                what = f"did not answer within {self.timeout_s:g} s"
            else:
                what = f"cannot be reached ({reason})"
            raise EngineError(
                f"the server at {self.base} {what}; check that it is running and the "
                "endpoint setting",
                retry=True,
            ) from None


def _http_error(
    base: str, path: str, exc: urllib.error.HTTPError, key_env: str = API_KEY_ENV
) -> EngineError:
    """An HTTP error as a message a user can act on (5xx and 429 are retried; 429 after its
    `Retry-After` seconds)."""
    try:
        payload = json.loads(exc.read().decode("utf-8", "replace"))
        detail = payload.get("message") or payload.get("error", {}).get("message") or ""
    except (ValueError, AttributeError, OSError):
        detail = ""
    detail = str(detail).strip().splitlines()[0] if str(detail).strip() else exc.reason
    if exc.code in (401, 403):
        message = (
            f"the server at {base} refused the request (HTTP {exc.code}): set its API key "
            f"in the environment variable {key_env}"
        )
    else:
        message = f"the server at {base} answered HTTP {exc.code} to {path}: {detail}"
    error = EngineError(
        message, retry=exc.code >= 500 or exc.code == 429, status=exc.code, detail=str(detail)
    )
    try:
        error.retry_after = float(exc.headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        error.retry_after = None
    return error
