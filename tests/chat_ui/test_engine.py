"""The chat engine and handlers on the tiny real model: conversation text, streaming, stop,
truncation, explanations of replies and sentences, and every kind of bad input."""

from __future__ import annotations

import importlib
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from promptxray.chat_ui.conversation import build_conversation, sentences
from promptxray.chat_ui.engine import Cancelled, ChatEngine, GenSettings
from promptxray.chat_ui.handlers import Handlers
from promptxray.chat_ui.session import WHOLE, Session, sentence_choices
from promptxray.chat_ui.views import highlighted
from promptxray.explainers.backends.capabilities import Capabilities
from promptxray.explainers.errors import InvalidRequestError, PromptXrayError
from promptxray.explainers.prompt.document import parse_document
from promptxray.explainers.types import SCHEMA_VERSION
from tests.chat_ui.util import run
from tests.helpers import F32_NATS

SETTINGS = GenSettings(max_new_tokens=24)


# --- conversation text ----------------------------------------------------------------------
def test_conversation_round_trips_and_spans_slice_messages():
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi {{name}} and { {x} }"},
        {"role": "assistant", "content": "Hello.\nsystem: not a role line"},
        {"role": "user", "content": "  What now?  "},
    ]
    conv = build_conversation(msgs)
    doc = parse_document(conv.text, "conversation.chat")
    assert [(m.role, m.content) for m in doc.messages] == [
        (m["role"], m["content"].strip()) for m in msgs
    ]
    for m, (s, e) in zip(conv.messages, conv.spans, strict=True):
        assert conv.text[s:e] == m["content"]


def test_line_that_is_only_a_role_is_refused():
    with pytest.raises(InvalidRequestError, match="only a role name"):
        build_conversation([{"role": "user", "content": "a\nuser:\nb"}])


def test_sentences_cover_reply():
    text = "Paris. It is big! Yes?\nNo"
    assert [text[s:e] for s, e in sentences(text)] == ["Paris.", "It is big!", "Yes?", "No"]


# --- generation -----------------------------------------------------------------------------
def test_stream_yields_growing_text_and_stop_keeps_prefix(stories_engine):
    prepared = stories_engine.prepare([], "Once upon a time", GenSettings(max_new_tokens=40))
    stop = threading.Event()
    seen = []
    for event in stories_engine.stream(prepared, 0.0, stop):
        seen.append(event)
        if len(seen) == 3:
            stop.set()
    assert seen[-1].done and seen[-1].stopped
    assert len(seen[-1].ids) < 40
    assert seen[0].first_token_s is not None
    assert all(seen[i].text for i in range(len(seen)))


def test_greedy_reply_matches_backend_generate(stories_engine):
    prepared, event = stories_engine.generate([], "Once upon a time", SETTINGS)
    backend = stories_engine.backend()
    assert event.ids == [
        t for t in backend.generate(prepared.ids, 24) if t not in backend.eos_ids()
    ]


def test_temperature_samples(stories_engine):
    prepared = stories_engine.prepare([], "Once upon a time", SETTINGS)
    outs = {tuple(run(stories_engine.stream(prepared, 1.5)).ids) for _ in range(3)}
    assert len(outs) >= 2


def test_long_history_drops_oldest_turns_with_a_note(stories_engine):
    long_turn = ("tell me a story " * 30, "there was a cat " * 30)
    prepared = stories_engine.prepare([long_turn] * 3, "What next?", SETTINGS)
    assert prepared.dropped_turns >= 1
    assert "oldest" in prepared.note
    assert len(prepared.ids) + 24 <= stories_engine.backend().context_length
    assert prepared.conversation.messages[-1]["content"] == "What next?"


def test_message_longer_than_context_is_cut_from_the_start(stories_engine):
    message = "word " * 2000 + "the end"
    prepared = stories_engine.prepare([], message, SETTINGS)
    assert "longer than the model's context" in prepared.note
    assert prepared.conversation.messages[-1]["content"].endswith("the end")
    assert len(prepared.ids) + 24 <= stories_engine.backend().context_length


# --- explanations ---------------------------------------------------------------------------
def test_explain_reply_and_retarget_to_a_sentence(stories_engine):
    prepared, event = stories_engine.generate([], "Once upon a time", GenSettings(40))
    whole = stories_engine.explain(prepared, event.text, event.ids)
    assert whole.whole_reply
    assert [t.token_id for t in whole.explanation.target.tokens] == event.ids
    conv = prepared.conversation
    for tok in whole.explanation.tokens:
        assert conv.text[tok.start : tok.end] == tok.text
        assert tok.score is not None
    chunks = highlighted(whole)
    assert "".join(t for t, _ in chunks) == conv.text[conv.body_start :]
    assert all(s is None or -1 <= s <= 1 for _, s in chunks)
    first = sentences(event.text.strip())[0]
    part = stories_engine.explain(prepared, event.text, event.ids, upto=first[1])
    assert not part.whole_reply
    assert len(part.explanation.target.tokens) < len(event.ids)
    assert part.explanation.target.text.strip().startswith(event.text.strip()[: first[1]])
    assert highlighted(part) != chunks


def test_stop_mid_explanation_raises_cancelled(stories_engine):
    prepared, event = stories_engine.generate([], "Once upon a time", SETTINGS)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        stories_engine.explain(prepared, event.text, event.ids, stop=stop)


# --- handlers: the whole flow and bad input -------------------------------------------------
def test_chat_flow_explain_sentence_export(handlers, tmp_path):
    state = Session()
    out = run(handlers.chat("Once upon a time", "", 40, 0.0, state))
    history = out[0]
    assert history[-1]["role"] == "assistant" and history[-1]["content"]
    turn = state.turns[0]
    out = run(handlers.explain(None, "occlusion", WHOLE, state))
    assert out[0].startswith("Explained reply 1")
    assert out[1] and out[5]["explanation"]["target"]["tokens"]
    sentence = sentence_choices(turn)[1]
    out2 = run(handlers.explain(None, "occlusion", sentence, state))
    assert out2[2]["value"] == sentence
    assert out2[1] != out[1]
    out3 = run(handlers.explain(None, "saliency", WHOLE, state))
    assert "saliency" in out3[4] and "unsigned" in out3[3]  # the full report (library's words)
    data = json.loads(Path(handlers.export_json(state)).read_text(encoding="utf-8"))
    assert data["turns"][0]["user"] == "Once upon a time"
    assert len(data["turns"][0]["explanations"]) == 3
    first = data["turns"][0]["explanations"][0]["explanation"]  # the library's schema, typed
    assert first["schema_version"] == SCHEMA_VERSION and first["score_kind"] == "removal"
    assert len(first["ablated_logprob"]) == len(first["spans"])
    assert first["faithfulness"] is not None and first["prompt_path"] == "conversation.chat"
    page = Path(handlers.export_html(state)).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Turn 1" in page and "<script" not in page
    what = run(handlers.what_if("1: Once", "", 24, 0.0, state))
    assert "probability of the old reply went from" in what
    # undo returns the message to the box; retry regenerates
    run(handlers.retry("", 24, 0.0, state))
    assert len(state.turns) == 1
    out = handlers.undo(state)
    assert out[1] == "Once upon a time" and state.turns == []


def test_empty_message_sends_nothing(handlers):
    state = Session()
    with pytest.warns(UserWarning, match="empty"):
        out = run(handlers.chat("   \n ", "", 24, 0.0, state))
    assert state.turns == [] and out[0] == []


def test_unsupported_method_is_reported_in_the_panel(handlers, stories_engine):
    state = Session()
    run(handlers.chat("Once upon a time", "", 16, 0.0, state))
    backend = stories_engine.backend()
    # as an ONNX-like backend would
    backend.capabilities = replace(backend.capabilities, gradients=False)
    try:
        out = run(handlers.explain(None, "saliency", WHOLE, state))
    finally:
        del backend.capabilities
    assert "Cannot explain" in out[0] and "needs gradients" in out[0]
    assert len(state.turns) == 1


def test_stop_mid_generation_keeps_partial_reply(handlers):
    state = Session()
    gen = handlers.chat("Once upon a time", "", 200, 0.0, state)
    for i, _ in enumerate(gen):
        if i == 4:
            break
    gen.close()  # what Gradio does when the stop button cancels the event
    turn = state.turns[0]
    assert turn.stopped and turn.reply
    out = run(handlers.chat("And then?", "", 8, 0.0, state))  # the model is free again
    assert len(state.turns) == 2 and "(stopped)" in out[0][1]["content"]


def test_stop_mid_explanation_keeps_conversation(handlers):
    state = Session()
    run(handlers.chat("Once upon a time", "", 40, 0.0, state))
    before = [t.reply for t in state.turns]
    gen = handlers.explain(None, "integrated_gradients", WHOLE, state)
    first = next(gen)
    assert first[0].startswith("⏳")
    gen.close()
    assert [t.reply for t in state.turns] == before
    out = run(handlers.explain(None, "occlusion", WHOLE, state))  # the lock was released
    assert out[0].startswith("Explained")


def test_message_too_long_is_truncated_and_said_in_chat(handlers):
    state = Session()
    out = run(handlers.chat("word " * 1500 + "the end", "", 8, 0.0, state))
    notes = [m for m in out[0] if m.get("metadata")]
    assert notes and "longer than the model's context" in notes[0]["content"]


def test_model_that_fails_to_load(tmp_path):
    engine = ChatEngine(str(tmp_path / "no-such-model"))
    assert engine.status().startswith("⚠️")
    with pytest.raises(PromptXrayError, match="could not be loaded"):
        engine.backend()
    from promptxray.chat_ui.app import build_app

    engine = ChatEngine(str(tmp_path / "no-such-model"))
    demo = build_app(engine)  # the page builds without loading the model
    assert demo is not None and engine._backend is None and engine._load_error is None
    assert "occlusion" in engine.methods()
    assert engine.status().startswith("⚠️")  # what the page shows once loaded
    handlers = Handlers(engine, str(tmp_path))
    state = Session()
    with pytest.warns(UserWarning, match="could not be loaded"):
        out = run(handlers.chat("hello", "", 8, 0.0, state))
    assert out[1] == "hello" and state.turns == []  # the message stays in the box
    note = out[0][-1]  # and the chat says why
    assert note["metadata"]["title"] == "Error" and "could not be loaded" in note["content"]


def test_a_reply_streams_while_an_explanation_runs(stories_engine):
    """A (non-attention) explanation in progress does not hold up another user's reply."""
    with stories_engine.explain_lock, stories_engine.lock.shared():  # as during occlusion
        done = threading.Event()

        def reply() -> None:
            stories_engine.generate([], "Once upon a time", SETTINGS)
            done.set()

        threading.Thread(target=reply, daemon=True).start()
        assert done.wait(60), "the reply waited for the explanation"


def test_attention_explanations_wait_for_replies(stories_engine):
    """Attention methods switch the model's attention kernel: they run alone."""
    prepared, event = stories_engine.generate([], "Once upon a time", SETTINGS)
    finished = threading.Event()

    def work() -> None:
        stories_engine.explain(prepared, event.text, event.ids, method="attention")
        finished.set()

    with stories_engine.lock.shared():  # a reply is streaming
        threading.Thread(target=work, daemon=True).start()
        assert not finished.wait(1.0)
    assert finished.wait(60)


def test_what_if_probability_is_explains_target_probability(stories_engine):
    prepared, event = stories_engine.generate([], "Once upon a time", SETTINGS)
    result = stories_engine.explain(prepared, event.text, event.ids)
    logprob = stories_engine.reply_logprob(prepared, event.ids)
    # scored alone against in the explanation's batch: float32, F32_NATS
    assert logprob == pytest.approx(result.explanation.target.logprob, abs=F32_NATS)


def test_backend_without_torch_model_replies_in_one_piece(stories_engine):
    """An ONNX-like backend (no transformers model): one greedy reply, no streaming."""
    real = stories_engine.backend()

    class NoModel:
        capabilities = Capabilities(logits=True)  # neither streams nor samples

        def __getattr__(self, name):
            if name == "model":
                raise AttributeError(name)
            return getattr(real, name)

    engine = ChatEngine(str(stories_engine.model_name))
    engine._backend = NoModel()
    prepared = engine.prepare([], "Once upon a time", SETTINGS)
    events = list(engine.stream(prepared))
    assert len(events) == 1 and events[0].done
    expected = [t for t in real.generate(prepared.ids, 24) if t not in real.eos_ids()]
    assert events[0].ids == expected


class _Served:
    """The tiny model behind a served engine's interface: `stream_generate` streams its greedy
    continuation a token at a time; `cut_after` ends the stream early (a dropped connection)."""

    capabilities = Capabilities(streams=True)

    def __init__(self, real, cut_after=None):
        self.real, self.cut_after, self.closed = real, cut_after, False

    def __getattr__(self, name):
        if name == "model":  # no transformers model: the engine path is taken
            raise AttributeError(name)
        return getattr(self.real, name)

    def stream_generate(self, ids, max_new_tokens):
        try:
            for i, t in enumerate(self.real.generate(ids, max_new_tokens)):
                if self.cut_after is not None and i == self.cut_after:
                    return
                time.sleep(0.02)  # a token at a time, as an engine streams them
                yield [t]
        finally:
            self.closed = True


def test_a_served_engine_streams_the_reply(stories_engine):
    real = stories_engine.backend()
    engine = ChatEngine(str(stories_engine.model_name))
    engine._backend = served = _Served(real)
    prepared = engine.prepare([], "Once upon a time", SETTINGS)
    events = list(engine.stream(prepared))
    assert len(events) > 2 and events[-1].done and not events[-1].stopped
    expected = [t for t in real.generate(prepared.ids, 24) if t not in real.eos_ids()]
    assert events[-1].ids == expected and served.closed


def test_a_served_engine_stream_stops_and_reports_a_cut(stories_engine, tmp_path):
    real = stories_engine.backend()
    engine = ChatEngine(str(stories_engine.model_name))
    engine._backend = served = _Served(real)
    prepared = engine.prepare([], "Once upon a time", GenSettings(max_new_tokens=40))
    stop = threading.Event()
    seen = []
    for event in engine.stream(prepared, 0.0, stop):
        seen.append(event)
        if len(seen) == 2:
            stop.set()
    assert seen[-1].done and seen[-1].stopped and len(seen[-1].ids) < 40
    with engine.lock.exclusive():  # the stream let go of the model's lock
        pass
    assert served.closed  # and closed the engine's stream
    engine._backend = _Served(real, cut_after=3)
    handlers = Handlers(engine, str(tmp_path))
    state = Session()
    run(handlers.chat("Once upon a time", "", 40, 0.0, state))
    turn = state.turns[-1]
    assert len(turn.ids) == 3 and turn.stopped
    assert turn.note and "stopped answering in the middle of the reply" in turn.note


def test_chat_options_reach_the_backend_and_every_request(stories_engine, monkeypatch):
    from promptxray.explainers.backends.options import BackendOptions

    # the front ends' stage loop (anytime.run_stages) calls explain for a one-stage request
    explain_module = importlib.import_module("promptxray.explainers.anytime")

    options = BackendOptions(device="cpu", dtype="float32")
    engine = ChatEngine(str(stories_engine.model_name), options=options)
    assert engine.backend().name == "torch"
    prepared, event = engine.generate([], "Once upon a time", SETTINGS)
    requests = []
    real_explain = explain_module.explain

    def spy(request, *args, **kwargs):
        requests.append(request)
        return real_explain(request, *args, **kwargs)

    monkeypatch.setattr(explain_module, "explain", spy)
    engine.explain(prepared, event.text, event.ids)
    assert [r.backend_options for r in requests] == [options]


def test_command_line_refuses_what_the_backend_cannot_run(capsys):
    from promptxray.chat_ui.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--backend", "vllm", "--method", "occlusion"])
    assert exc.value.code == 2 and "needs --endpoint" in capsys.readouterr().err
    endpoint = ["--backend", "vllm", "--endpoint", "http://127.0.0.1:9"]
    with pytest.raises(SystemExit) as exc:
        main([*endpoint, "--method", "gradient_x_input"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "needs gradients" in err and "occlusion" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit):
        main([*endpoint, "--dtype", "float8"])
    assert "invalid choice" in capsys.readouterr().err
