"""Hovering a line the shown stage has no exact value for (a block still shown whole) makes the
running anytime job score that block's lines next and show the stage again (tiny real model,
in-process server); the values it then shows are exact line-level removal effects."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import promptxray.explainers.anytime as anytime
from promptxray.explainers.explain import explain
from promptxray.server.documents import Documents
from tests.conftest import STORIES
from tests.helpers import F32_NATS, request_for

from .wire import Wire

PARAGRAPH = "Lily had {n} red balls.\nShe liked the balls.\nTom had a dog.\n"
TEXT = "\n".join(PARAGRAPH.format(n=n) for n in range(5)) + "\nThe sun was hot.\nOne day Lily"


@pytest.fixture(autouse=True)
def _model() -> None:
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")


def test_a_hovered_line_in_a_whole_block_is_scored_next(tmp_path: Path, monkeypatch):
    gate = threading.Event()
    held_at_blocks = threading.Event()
    plain = anytime.explain_stages

    def held(request: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for stage in plain(request, *args, **kwargs):
            yield stage
            if stage.stage.name == "blocks" and not held_at_blocks.is_set():
                held_at_blocks.set()
                gate.wait(60)  # the user hovers while the job is on its first stage

    monkeypatch.setattr(anytime, "explain_stages", held)
    stored: list[Any] = []
    store = Documents._store

    def recording(self: Documents, doc: Any, text: str, result: Any, status: Any = None) -> None:
        if result.explanation is not None:
            stored.append(result.explanation)
        store(self, doc, text, result, status)

    monkeypatch.setattr(Documents, "_store", recording)
    line = TEXT.split("\n").index("She liked the balls.", 4)  # in the second block

    async def scenario() -> None:
        wire = Wire()
        await wire.initialize({"model": str(STORIES), "debounceMs": 20})
        uri = wire.open(tmp_path / "a.prompt", TEXT)
        await wire.wait_for(lambda: held_at_blocks.is_set() and stored)
        hover = await wire.hover(uri, line, 3)
        assert hover is not None and "[blocks 1/" in hover["contents"]["value"]
        gate.set()
        await wire.wait_for(lambda: any(e.stage and e.stage.final for e in stored))
        await wire.request("shutdown")

    try:
        asyncio.run(scenario())
    finally:
        gate.set()
    names = [e.stage.name for e in stored if e.stage]
    assert names[:2] == ["blocks", "blocks"], names  # the first stage, shown again at once
    again = stored[1]
    start = TEXT.index("She liked the balls.", TEXT.index("Lily had 1"))
    (span,) = [s for s in again.spans if s.start == start]
    assert span.text == "She liked the balls."
    target = [t.token_id for t in again.target.tokens]
    request = request_for(
        TEXT, path="a.prompt", method="occlusion", granularity="line", target_ids=target
    )
    lines = explain(request, backend=_backend())
    (expected,) = [s.score for s in lines.spans if s.start == start]
    assert span.score == pytest.approx(expected, abs=2 * F32_NATS)


def _backend() -> Any:
    from promptxray.explainers.backends import get_backend

    return get_backend("torch", str(STORIES))
