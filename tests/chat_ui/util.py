"""Helpers the chat tests share: drain a handler's generator, send a message and explain it."""

from __future__ import annotations

from typing import Any

from promptxray.chat_ui.handlers import Handlers
from promptxray.chat_ui.session import WHOLE, Session


def run(gen: Any) -> Any:
    """Drain a handler generator; return its last output."""
    last = None
    for last in gen:  # noqa: B007
        pass
    return last


def explained(
    handlers: Handlers, message: str = "Once upon a time", method: str = "occlusion"
) -> tuple[Session, Any]:
    """A session with one reply to `message`, explained with `method`."""
    state = Session()
    run(handlers.chat(message, "", 24, 0.0, state))
    out = run(handlers.explain(None, method, WHOLE, state))
    assert out[0].startswith("Explained"), out[0]
    return state, out
