"""Fixtures of the chat UI tests: engines over the real models (one load per session) and a
helper that serves an app on a free local port."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import STORIES

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def stories_engine():
    from promptxray.chat_ui.engine import ChatEngine

    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")
    engine = ChatEngine(str(STORIES))
    engine.backend()
    return engine


@pytest.fixture(scope="session")
def smol_engine():
    from promptxray.chat_ui.engine import ChatEngine

    engine = ChatEngine(None)
    engine.backend()
    return engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(engine) -> Iterator[str]:
    from promptxray.chat_ui.app import build_app

    demo = build_app(engine)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="session")
def stories_url(stories_engine):
    yield from serve(stories_engine)


@pytest.fixture(scope="session")
def smol_url(smol_engine):
    yield from serve(smol_engine)


@pytest.fixture
def handlers(stories_engine, tmp_path):
    """Event handlers over the tiny model's engine, exporting into a temporary folder."""
    from promptxray.chat_ui.handlers import Handlers

    return Handlers(stories_engine, str(tmp_path))
