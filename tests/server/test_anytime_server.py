"""Anytime explanations in the editor (tiny real model, in-process server): every stage is
published as soon as it is done and says which stage it is (diagnostics, hover, code lens);
a stage of an outdated text is never published after a newer edit."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import promptxray.explainers.anytime as anytime
from promptxray.server.documents import Documents
from tests.conftest import STORIES

from .wire import Wire

OLD = "Once upon a time there was a girl.\nShe had a red ball.\nOne day she"
NEW = "Once upon a time there was a boy.\nHe had a blue kite.\nOne day he"


@pytest.fixture(autouse=True)
def _model() -> None:
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")


async def started() -> Wire:
    wire = Wire()
    await wire.initialize({"model": str(STORIES), "debounceMs": 20})  # occlusion, auto
    return wire


def test_each_stage_is_published_and_says_which_it_is(tmp_path: Path):
    async def scenario() -> None:
        wire = await started()
        uri = wire.open(tmp_path / "a.prompt", OLD)
        await wire.published(uri)
        shown = wire.diagnostics(uri)
        tagged = [[d["message"][:24] for d in diags] for diags in shown]
        # the tag states the stage's parts, place and fidelity (a 4th stage, lines in bf16,
        # only where the CPU does bf16 fast)
        assert any(re.match(r"\[blocks 1/[34] · exact\] ", m) for m in tagged[0]), tagged
        exact_lines = re.compile(r"\[lines (2/3|3/4) · exact\] ")
        assert any(any(exact_lines.match(m) for m in ms) for ms in tagged), tagged
        assert not any(m.startswith("[") for m in tagged[-1])  # the final stage has no tag
        final = wire.ls.documents.shown(uri)
        assert final is not None and final.expl.stage is not None and final.expl.stage.final
        await wire.request("shutdown")

    asyncio.run(scenario())


def test_a_stale_stage_is_never_published_after_a_newer_edit(tmp_path: Path, monkeypatch):
    """The first job is held after its first (blocks) stage; the document is edited; when the
    old job resumes, none of its later stages may be shown: every stage stored after the edit
    is of the new text."""
    gate = threading.Event()
    first = threading.Event()
    plain = anytime.explain_stages

    def held(request: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for stage in plain(request, *args, **kwargs):
            yield stage
            if request.text == OLD and stage.stage.name == "blocks":
                first.set()
                gate.wait(60)

    monkeypatch.setattr(anytime, "explain_stages", held)
    stored: list[tuple[str, str]] = []
    store = Documents._store

    def recording(self: Documents, doc: Any, text: str, result: Any, status: Any = None) -> None:
        stage = (
            result.explanation.stage.name if result.explanation and result.explanation.stage else ""
        )
        stored.append((text, stage))
        store(self, doc, text, result, status)

    monkeypatch.setattr(Documents, "_store", recording)

    async def scenario() -> None:
        wire = await started()
        uri = wire.open(tmp_path / "a.prompt", OLD)
        await wire.wait_for(lambda: first.is_set())
        await wire.wait_for(lambda: (OLD, "blocks") in stored)
        edited_at = len(stored)
        wire.replace(uri, NEW)
        await asyncio.sleep(0.2)  # the edit is in; the old job is still held
        gate.set()
        await wire.wait_for(lambda: any(t == NEW and s == "refined" for t, s in stored[edited_at:]))
        after = stored[edited_at:]
        assert after and all(text == NEW for text, _ in after), after
        shown = wire.ls.documents.shown(uri)
        assert shown is not None and shown.doc.text == NEW
        await wire.request("shutdown")

    try:
        asyncio.run(scenario())
    finally:
        gate.set()
