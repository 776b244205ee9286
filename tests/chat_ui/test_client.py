"""The served app driven over its API by `gradio_client`, with the real default model."""

from __future__ import annotations

import pytest

QUESTION = "What is the capital of France? Answer in one word."

pytestmark = pytest.mark.slow


def connect(url: str):
    """A client that waits long enough for a shared, busy CPU."""
    from gradio_client import Client

    return Client(url, verbose=False, httpx_kwargs={"timeout": 300})


def _text(message) -> str:
    """A chat message's text as the client returns it (a string or a list of parts)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part["text"] for part in content if part.get("type") == "text")


def test_chat_and_explanation_over_the_api(smol_url):
    client = connect(smol_url)
    history, box, _reply_sel, _words = client.predict(QUESTION, "", 16, 0.0, api_name="/chat")
    assert box == ""
    reply = history[-1]
    assert reply["role"] == "assistant"
    assert "Paris" in _text(reply)

    status, chunks, _sentence, report, footer, data, chat = client.predict(
        None, "occlusion", "Whole reply", api_name="/explain"
    )
    assert status.startswith("Explained reply 1"), status
    source = data["source"]
    start, end = data["message_spans"][-1]
    assert source[start:end] == QUESTION
    tokens = data["explanation"]["tokens"]
    assert tokens and all(source[t["start"] : t["end"]] == t["text"] for t in tokens)
    assert all(t["score"] is not None for t in tokens)
    in_message = [t for t in tokens if start <= t["start"] and t["end"] <= end]
    assert "".join(t["text"] for t in in_message).replace(" ", "") == QUESTION.replace(" ", "")
    assert "Paris" in data["explanation"]["target"]["text"]
    # under the reply: one short message in the library's words, faithfulness stated once
    bubble = _text(chat[-1])
    assert "Paris" in bubble and len(bubble) < 500, bubble
    assert bubble.count("Faithfulness") == 1
    assert "occlusion" in footer and "Faithfulness" not in footer
    # the full report (collapsed on the page): every figure, in the library's words
    assert "Top drivers: removing" in report and "Faithfulness: " in report

    # on demand: ask the model why, and check what it names against the attributions
    why = client.predict(None, api_name="/why")
    assert "Asked which words made it answer" in why
    assert "supported" in why or "not in the prompt" in why
    assert chat[-1]["metadata"]["title"] == "Explanation (occlusion)"
    scored = [c for c in chunks if c["class_or_confidence"] is not None]
    assert len(scored) == len(data["explanation"]["spans"])
    assert "".join(c["token"] for c in chunks) == source  # no front matter here


def test_stop_mid_explanation_over_the_api(smol_url, smol_engine, monkeypatch):
    """Cancelling a running explanation (what the Stop button does) stops the model work at
    its next batch, and the conversation is intact. The long message makes occlusion run in
    several batches (the library reports progress, and so can be stopped, between batches)."""
    import time

    outcomes: list[str] = []
    real = smol_engine.explain

    def recording(*args, **kwargs):
        try:
            result = real(*args, **kwargs)
        except BaseException as exc:
            outcomes.append(type(exc).__name__)
            raise
        outcomes.append("finished")
        return result

    monkeypatch.setattr(smol_engine, "explain", recording)
    client = connect(smol_url)
    words = [
        "Paris",
        "Lyon",
        "Nice",
        "Lille",
        "Nantes",
        "Rennes",
        "Brest",
        "Dijon",
        "Metz",
        "Caen",
        "Tours",
        "Reims",
    ]
    message = " ".join(words * 10) + ". Which of these is the capital?"
    client.predict(message, "", 4, 0.0, api_name="/chat")
    job = client.submit(None, "occlusion", "Whole reply", api_name="/explain")
    deadline = time.monotonic() + 60
    while not smol_engine.explain_lock.locked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert smol_engine.explain_lock.locked(), "the explanation never started"
    time.sleep(1.0)
    started = time.monotonic()
    job.cancel()
    while smol_engine.explain_lock.locked() and time.monotonic() - started < 60:
        time.sleep(0.05)
    stopped_after = time.monotonic() - started
    assert not smol_engine.explain_lock.locked(), "the explanation kept running after stop"
    assert outcomes == ["Cancelled"], outcomes
    history, *_ = client.predict("Thanks.", "", 4, 0.0, api_name="/chat")
    users = [m for m in history if m["role"] == "user"]
    assert len(users) == 2, history
    print(f"explanation stopped {stopped_after:.1f}s after cancel")
