"""A small pass-through proxy in front of the real vLLM engine, to play servers that offer
less than vLLM (never a mock: every answer it gives comes from the engine).

What it takes away, each a switch: the prompt-log-probability endpoints (`/tokenize`,
`/v1/completions`: most hosted APIs), every log-probability (APIs that return none), the
assistant-prefill continuation (`continue_final_message`), alternatives beyond a few. What it
adds, each a switch: an API key it requires, HTTP 429 with Retry-After, answers cut off
mid-body, HTTP 503 while "restarting", no answer at all (the server went away).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT = "/v1/chat/completions"


@dataclass
class Offer:
    """What the proxied server offers (the switches) and what it saw."""

    prompt_logprobs: bool = True  # /tokenize and /v1/completions reach the engine
    logprobs: bool = True  # Chat Completions log-probabilities
    prefill: bool = True  # continue_final_message reaches the engine
    max_alternatives: int | None = None  # top_logprobs cut to this many
    key: str | None = None  # the Authorization bearer it requires
    rate_limit: int = 0  # answer this many requests with 429 first
    retry_after: str = "0"
    unavailable: int = 0  # answer this many requests with 503 first
    cut_off: int = 0  # answer this many requests with headers and half a body
    down: bool = False  # drop every connection unanswered (a server that went away)
    paths: list[str] = field(default_factory=list)  # every path requested
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every JSON body forwarded
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, name: str) -> bool:
        """Count down switch `name` (an int): True while it is still above zero."""
        with self.lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
        return False


def _handler(upstream: str, offer: Offer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _gate(self) -> bool:
            offer.paths.append(self.path)
            if offer.down:  # the connection closes without an answer
                self.close_connection = True
                return False
            if offer.key and self.headers.get("Authorization") != f"Bearer {offer.key}":
                self._send(401, {"error": {"message": "Incorrect API key provided"}})
                return False
            if offer.take("rate_limit"):
                self._send(
                    429,
                    {"error": {"message": "Rate limit reached"}},
                    {"Retry-After": offer.retry_after},
                )
                return False
            if offer.take("unavailable"):
                self._send(503, {"error": {"message": "engine restarting"}})
                return False
            if not offer.prompt_logprobs and self.path.split("?")[0] in (
                "/tokenize",
                "/v1/completions",
            ):
                self._send(404, {"error": {"message": f"Not found: {self.path}"}})
                return False
            return True

        def do_GET(self) -> None:
            if self._gate():
                self._forward("GET", None)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self._gate():
                return
            body = json.loads(raw or b"{}")
            if self.path == CHAT:
                if not offer.logprobs:
                    body.pop("logprobs", None)
                    body.pop("top_logprobs", None)
                if not offer.prefill:
                    body.pop("continue_final_message", None)
                    body.pop("add_generation_prompt", None)
            offer.bodies.append(body)
            self._forward("POST", body)

        def _forward(self, method: str, body: dict[str, Any] | None) -> None:
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(upstream + self.path, data=data, method=method)
            request.add_header("Content-Type", "application/json")
            try:
                response = urllib.request.urlopen(request, timeout=300)
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                self.send_response(exc.code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            with response:
                if body is not None and body.get("stream"):
                    self._stream(response)
                    return
                answer = json.loads(response.read())
            self._reply(self._edit(answer))

        def _reply(self, answer: Any) -> None:
            data = json.dumps(answer).encode()
            if offer.take("cut_off"):  # headers, then half the body, then the line drops
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(200, answer)

        def _edit(self, answer: Any) -> Any:
            """Take away from an engine answer what this server does not offer."""
            if self.path != CHAT or not isinstance(answer, dict):
                return answer
            for choice in answer.get("choices", []):
                self._edit_choice(choice)
            return answer

        def _edit_choice(self, choice: dict[str, Any]) -> None:
            if not offer.logprobs:
                choice.pop("logprobs", None)
                return
            content = (choice.get("logprobs") or {}).get("content") or []
            if offer.max_alternatives is not None:
                for entry in content:
                    entry["top_logprobs"] = (entry.get("top_logprobs") or [])[
                        : offer.max_alternatives
                    ]

        def _stream(self, response: Any) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                self._relay(response)
            except (BrokenPipeError, ConnectionResetError):  # the client hung up: its choice
                self.close_connection = True

        def _relay(self, response: Any) -> None:
            for raw in response:
                line = raw.decode("utf-8")
                edits = not offer.logprobs or offer.max_alternatives is not None
                if line.startswith("data:") and self.path == CHAT and edits:
                    data = line[5:].strip()
                    if data and data != "[DONE]":
                        event = json.loads(data)
                        for choice in event.get("choices", []):
                            self._edit_choice(choice)
                        line = "data: " + json.dumps(event) + "\n"
                chunk = line.encode("utf-8")
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


@contextmanager
def proxy(upstream: str, offer: Offer | None = None) -> Iterator[tuple[str, Offer]]:
    """A proxy to the engine at `upstream` on a free loopback port: its URL and its switches."""
    offer = offer or Offer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream.rstrip("/"), offer))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", offer
    finally:
        server.shutdown()
        server.server_close()
