"""The chat on the `vllm` backend against the real engine: replies stream from the engine,
their explanations run there and match the torch backend's, and an engine that is down (at
start or in the middle of a reply) is an error note in the chat, after which the chat works
again once the engine is back.

"Down" is a local relay to the engine (`Relay`) that is switched off: nothing listens on its
port, and the connections through it are cut. The real engine keeps running throughout."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time

import numpy as np
import pytest

from promptxray.chat_ui.engine import ChatEngine, GenSettings
from promptxray.chat_ui.handlers import Handlers
from promptxray.chat_ui.session import WHOLE, Session
from promptxray.explainers.backends.options import BackendOptions
from tests.chat_ui.util import run
from tests.helpers import GPU_NATS
from tests.vllm.conftest import SERVED

QUESTION = "What is the capital of France?"
SETTINGS = GenSettings(max_new_tokens=24)


class Relay:
    """A TCP relay on a fixed loopback port to the engine; `stop()` closes its port and cuts
    every connection through it (an engine gone), `start()` listens again (it is back).
    `delay`: seconds it holds each piece of the engine's answer (a slow stream)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.split("//", 1)[1].rstrip("/").split(":")
        self.upstream = (host, int(port))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.delay = 0.0

    def start(self) -> Relay:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            conns, self._open = self._open, []
        if server is not None:  # shutdown wakes the thread blocked in accept()
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:  # closed by stop()
                return
            try:
                up = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, up]
            for a, b, slow in ((client, up, False), (up, client, True)):
                threading.Thread(target=self._pipe, args=(a, b, slow), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while data := src.recv(65536):
                if slow and self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="module")
def chat(engine):
    """A chat engine on the vllm backend over the session's engine (token granularity)."""
    chat = ChatEngine(None, "vllm", options=BackendOptions(endpoint=engine.url))
    assert chat.backend().name == "vllm"
    return chat


@pytest.fixture(scope="module")
def reply(chat):
    """The streamed reply to QUESTION: (prompt, every event)."""
    prompt = chat.prepare([], QUESTION, SETTINGS)
    return prompt, list(chat.stream(prompt))


@pytest.fixture
def quick_retries(monkeypatch):
    """No back-off between the client's retries (a down engine fails at once)."""
    from promptxray.explainers.backends import openai_client

    monkeypatch.setattr(openai_client, "BACKOFF_S", 0.0)


def test_reply_streams_from_the_engine(chat, reply, vllm):
    prompt, events = reply
    final = events[-1]
    assert final.done and not final.stopped
    assert len(events) > 2, "the reply came in one piece"
    assert "Paris" in final.text
    texts = [e.text for e in events[:-1]]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert final.first_token_s is not None and final.first_token_s < final.elapsed_s
    # the engine's greedy continuation, without its stop token
    expected = [t for t in vllm.generate(prompt.ids, 24) if t not in vllm.eos_ids()]
    assert final.ids == expected


def test_explanation_runs_on_the_engine_and_matches_torch(chat, reply, smol):
    prompt, events = reply
    final = events[-1]
    result = chat.explain(prompt, final.text, final.ids, method="occlusion")
    expl = result.explanation
    assert expl.backend == "vllm" and SERVED in expl.model
    assert [t.token_id for t in expl.target.tokens] == final.ids
    assert expl.granularity == "token" and expl.spans

    torch_chat = ChatEngine(None, "torch")
    torch_chat._backend = smol  # the default model, loaded once per test session
    twin = torch_chat.explain(prompt, final.text, final.ids, method="occlusion").explanation
    assert twin.backend == "torch"
    assert [t.token_id for t in twin.target.tokens] == final.ids
    assert [(s.start, s.end) for s in expl.spans] == [(s.start, s.end) for s in twin.spans]
    # the engine on a GPU against torch on the CPU: removal scores are two log-probs
    np.testing.assert_allclose(
        [s.score for s in expl.spans], [s.score for s in twin.spans], atol=2 * GPU_NATS, rtol=0
    )
    assert expl.target.logprob == pytest.approx(twin.target.logprob, abs=GPU_NATS)


def test_line_explanation_through_the_handlers(engine, tmp_path):
    chat = ChatEngine(None, "vllm", granularity="line", options=BackendOptions(endpoint=engine.url))
    handlers = Handlers(chat, str(tmp_path))
    state = Session()
    steps = list(handlers.chat(QUESTION, "", 24, 0.0, state))
    assert len(steps) > 3, "the reply did not stream"
    turn = state.turns[-1]
    assert "Paris" in turn.reply and not turn.note
    out = run(handlers.explain(None, "occlusion", WHOLE, state))
    assert out[0].startswith("Explained"), out[0]
    data = out[5]["explanation"]
    assert data["backend"] == "vllm" and data["granularity"] == "line"
    assert [t["token_id"] for t in data["target"]["tokens"]] == turn.ids
    assert "backend **vllm**" in out[4]


def test_gradient_method_is_refused_with_the_methods_that_run(chat, tmp_path):
    from promptxray.chat_ui.__main__ import main
    from promptxray.explainers.errors import UnsupportedMethodError

    assert "gradient_x_input" not in chat.methods() and "occlusion" in chat.methods()
    with pytest.raises(UnsupportedMethodError, match="occlusion"):
        chat.check_method("gradient_x_input")
    handlers = Handlers(chat, str(tmp_path))
    state = Session()
    run(handlers.chat(QUESTION, "", 8, 0.0, state))
    out = run(handlers.explain(None, "gradient_x_input", WHOLE, state))
    assert out[0].startswith("⚠️ Cannot explain"), out[0]
    assert "needs gradients" in out[0] and "occlusion" in out[0]
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "--backend",
                "vllm",
                "--endpoint",
                chat.options.endpoint or "",
                "--method",
                "gradient_x_input",
            ]
        )
    assert exc.value.code == 2


def test_cli_flags_reach_the_engine_and_the_requests(monkeypatch, engine):
    import promptxray.chat_ui.app as app
    from promptxray.chat_ui.__main__ import main

    seen = {}

    class Demo:
        def launch(self, **kwargs):
            seen["launch"] = kwargs

    def build_app(chat):
        seen["chat"] = chat
        return Demo()

    monkeypatch.setattr(app, "build_app", build_app)
    argv = ["--backend", "vllm", "--endpoint", engine.url, "--served-model", SERVED]
    assert main([*argv, "--concurrency", "3", "--dtype", "float32"]) == 0
    chat: ChatEngine = seen["chat"]
    assert chat.options == BackendOptions(
        endpoint=engine.url, served_model=SERVED, concurrency=3, dtype="float32"
    )
    backend = chat.backend()
    assert backend.name == "vllm" and backend.options.concurrency == 3


def test_engine_down_at_start_then_back(engine, tmp_path, quick_retries):
    relay = Relay(engine.url)  # not started: nothing listens on its port
    chat = ChatEngine(None, "vllm", options=BackendOptions(endpoint=relay.url, timeout_s=30))
    assert chat.status().startswith("⚠️") and "cannot be reached" in chat.status()
    handlers = Handlers(chat, str(tmp_path))
    state = Session()
    with pytest.warns(UserWarning, match="cannot be reached"):
        out = run(handlers.chat(QUESTION, "", 24, 0.0, state))
    assert out[1] == QUESTION and state.turns == []  # the message stays in the box
    note = out[0][-1]
    assert note["metadata"]["title"] == "Error"
    assert "cannot be reached" in note["content"] and relay.url in note["content"]
    relay.start()
    try:
        out = run(handlers.chat(QUESTION, "", 24, 0.0, state))
        assert "Paris" in state.turns[-1].reply and not state.turns[-1].note
        assert all(m.get("metadata", {}).get("title") != "Error" for m in out[0])
        assert chat.status().startswith("Model")
    finally:
        relay.stop()


def test_engine_down_mid_reply_then_back(engine, tmp_path, quick_retries):
    relay = Relay(engine.url).start()
    chat = ChatEngine(None, "vllm", options=BackendOptions(endpoint=relay.url, timeout_s=30))
    handlers = Handlers(chat, str(tmp_path))
    state = Session()
    try:
        # down between two messages: the reply is an error note under the message
        run(handlers.chat(QUESTION, "", 24, 0.0, state))
        first = state.turns[-1].reply
        assert "Paris" in first
        relay.stop()
        out = run(handlers.chat("And of Italy?", "", 24, 0.0, state))
        turn = state.turns[-1]
        assert turn.reply == "" and turn.note and "Error:" in turn.note
        assert "cannot be reached" in turn.note
        assert any(m.get("metadata", {}).get("title") == "Note" for m in out[0])
        # down in the middle of a reply (a slow stream): what came is kept, marked as cut
        relay.start()
        relay.delay = 0.1
        steps = handlers.chat("Tell me a long story about Paris.", "", 64, 0.0, state)
        next(steps)  # the message is shown
        next(steps)  # the first piece of the reply
        relay.stop()
        relay.delay = 0.0
        run(steps)
        turn = state.turns[-1]
        said = turn.note or ""
        # the engine's stream ended early (the backend) or broke off (the chat's own check)
        assert turn.reply and ("before it was complete" in said or "stopped answering" in said)
        assert turn.stopped
        # back: the next message works, and its reply is explained on the engine
        relay.start()
        run(handlers.chat(QUESTION, "", 24, 0.0, Session()))
        run(handlers.chat(QUESTION, "", 24, 0.0, state))
        assert "Paris" in state.turns[-1].reply and not state.turns[-1].note
        out = run(handlers.explain(None, "occlusion", WHOLE, state))
        assert out[0].startswith("Explained"), out[0]
    finally:
        relay.stop()


def test_stop_ends_the_engine_stream(chat):
    prompt = chat.prepare([], "Write a long story about a dragon.", GenSettings(64))
    stop = threading.Event()
    seen = []
    for event in chat.stream(prompt, 0.0, stop):
        seen.append(event)
        if len(seen) == 2:
            stop.set()
    assert seen[-1].done and seen[-1].stopped
    assert len(seen[-1].ids) < 64
    # the lock was released: an exclusive holder (an attention-style method) gets it
    got = threading.Event()

    def take() -> None:
        with chat.lock.exclusive():
            got.set()

    threading.Thread(target=take, daemon=True).start()
    assert got.wait(30), "the reply kept the model's lock"


def test_the_chat_streams_and_explains_through_a_chat_api(engine, tmp_path):
    """A server without prompt log-probabilities (a proxy in front of the engine): replies
    stream from its Chat Completions API and are explained through it, by words (its tokens
    are not known here), exactly or with a stated bound, naming the model and the server."""
    from tests.vllm.proxy import Offer, proxy

    with proxy(engine.url, Offer(prompt_logprobs=False)) as (url, _):
        chat = ChatEngine(None, "openai", options=BackendOptions(endpoint=url + "/v1"))
        handlers = Handlers(chat, str(tmp_path))
        state = Session()
        steps = list(handlers.chat(QUESTION, "", 24, 0.0, state))
        assert len(steps) > 3, "the reply did not stream"
        turn = state.turns[-1]
        assert "Paris" in turn.reply and "<|im_end|>" not in turn.reply and not turn.note
        out = run(handlers.explain(None, "occlusion", WHOLE, state))
    assert out[0].startswith("Explained"), out[0]
    data = out[5]["explanation"]
    assert data["backend"] == "openai" and data["granularity"] == "word"
    assert data["remote"]["tier"] == "generated-logprobs" and data["remote"]["model"] == SERVED
    assert "".join(t["text"] for t in data["target"]["tokens"]) == turn.reply
