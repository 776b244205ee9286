"""Servers that are not a healthy vLLM: an OpenAI-compatible server without prompt
log-probabilities (what many other engines are), one that fails with HTTP 503 before it
answers (a restarting engine behind a proxy), and one that wants an API key. A small
stand-in HTTP server plays them; every healthy path is tested on the real engine."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from promptxray.explainers.backends.options import API_KEY_ENV, BackendOptions
from promptxray.explainers.errors import EngineError


class Other:
    """What the stand-in does: its failures before answering, its key, its logprobs."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.fail_first = 0
        self.key: str | None = None
        self.prompt_logprobs = True
        self.calls = 0
        self.cut_off = 0  # answers that promise a body and close before sending it


def handler(state: Other) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _gate(self) -> bool:
            state.calls += 1
            if state.cut_off > 0:  # an engine killed mid-reply: headers, then nothing
                state.cut_off -= 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "713")
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True
                return False
            if state.fail_first > 0:
                state.fail_first -= 1
                self._send(503, {"error": {"message": "engine restarting"}})
                return False
            if state.key and self.headers.get("Authorization") != f"Bearer {state.key}":
                self._send(401, {"error": {"message": "bad key"}})
                return False
            return True

        def do_GET(self) -> None:
            if self._gate():
                self._send(200, {"data": [{"id": "other", "max_model_len": 2048}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not self._gate():
                return
            tok = state.tokenizer
            if self.path == "/tokenize":
                if "messages" in body:
                    text = tok.apply_chat_template(
                        body["messages"], tokenize=False, add_generation_prompt=True
                    )
                else:
                    text = body["prompt"]
                self._send(200, {"tokens": tok(text, add_special_tokens=False)["input_ids"]})
                return
            prompt = body["prompt"]
            choice: dict[str, Any] = {"text": "x", "finish_reason": "length", "token_ids": [5]}
            if state.prompt_logprobs:
                choice["prompt_logprobs"] = [None] + [
                    {str(t): {"logprob": -1.0, "rank": 1}} for t in prompt[1:]
                ]
            self._send(200, {"choices": [choice]})

    return Handler


@pytest.fixture
def other(smol) -> Iterator[tuple[str, Other]]:
    state = Other(smol.tokenizer)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def connect(url: str) -> Any:
    from transformers import AutoTokenizer

    from promptxray.explainers.backends.vllm_backend import VllmBackend
    from promptxray.explainers.models.loading import resolve_model_path

    folder, _ = resolve_model_path(None)
    return VllmBackend(AutoTokenizer.from_pretrained(folder), BackendOptions(endpoint=url), "m")


def test_a_server_without_prompt_logprobs_is_named_as_such(other):
    url, state = other
    state.prompt_logprobs = False
    with pytest.raises(EngineError) as err:
        connect(url)
    assert "does not return prompt log-probabilities" in str(err.value)


def test_a_restarting_engine_is_retried_with_back_off(other):
    url, state = other
    state.fail_first = 2  # two 503s, then answers
    backend = connect(url)
    assert backend.served_model == "other" and state.calls >= 3
    state.fail_first = 10  # more than the retries: a clear error, not a hang
    with pytest.raises(EngineError) as err:
        backend.generate([1, 2], 2)
    assert "HTTP 503" in str(err.value) and "engine restarting" in str(err.value)


def test_the_api_key_comes_from_the_environment(other, monkeypatch):
    url, state = other
    state.key = "sk-from-env"
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(EngineError) as err:
        connect(url)
    assert API_KEY_ENV in str(err.value) and "sk-from-env" not in str(err.value)
    monkeypatch.setenv(API_KEY_ENV, "sk-from-env")
    assert connect(url).served_model == "other"


def test_an_answer_cut_off_mid_body_is_retried_then_named(other):
    """An engine that dies after its headers (http.client.IncompleteRead underneath) is an
    EngineError: retried like a refused connection, and named when retries run out."""
    url, state = other
    backend = connect(url)
    state.cut_off = 1  # one broken answer, then a good one: the retry hides it
    assert backend.generate([1, 2], 2) is not None
    state.cut_off = 10
    with pytest.raises(EngineError) as err:
        backend.generate([1, 2], 2)
    assert "broke off its answer" in str(err.value) and "IncompleteRead" in str(err.value)
