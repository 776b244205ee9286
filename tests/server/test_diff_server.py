"""`promptxray.diffWithSaved` through the in-process server with the tiny real model: after an
edit it returns what changed against the version last opened or saved; after a save, nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from promptxray.explainers.diff import ExplanationDiff
from tests.conftest import STORIES
from tests.explainers.test_diff import NEW, OLD

from .wire import Wire


@pytest.fixture(autouse=True)
def _model() -> None:
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")


def test_diff_with_saved_reports_the_edit_then_nothing_after_a_save(tmp_path: Path):
    async def scenario() -> None:
        wire = Wire()
        options = {"model": str(STORIES), "debounceMs": 20, "granularity": "line"}
        await wire.initialize({**options, "faithfulness": False})
        uri = wire.open(tmp_path / "story.prompt", OLD)
        await wire.published(uri)
        doc = wire.ls.documents.docs[uri]
        assert doc.saved_text == OLD and doc.saved is not None  # the opened version

        published = len(wire.diagnostics(uri))
        wire.replace(uri, NEW)
        await wire.published(uri, published)
        result = await wire.command("promptxray.diffWithSaved", uri)
        diff = ExplanationDiff.from_dict(result["diff"])
        assert diff.same_target and diff.comparable and diff.answer_changed
        assert [p.text for p in diff.parts if p.status == "new"] == ["He liked to play."]
        edited = [p for p in diff.parts if p.edited]
        assert [(p.old_text, p.new_text) for p in edited] == [
            ("there was a little girl.", "there was a little boy.")
        ]
        assert "The answer changed" in result["markdown"]
        assert "He liked to play." in result["markdown"] and "| Part |" in result["markdown"]
        assert result["text"].splitlines()[1].startswith("The answer changed")
        shown = wire.ls.documents.shown(uri)
        assert shown is not None and shown.expl.target.text == diff.new_own_answer  # untouched

        wire.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        await wire.wait_for(lambda: doc.saved_text == NEW and doc.saved is not None)
        after = ExplanationDiff.from_dict(
            (await wire.command("promptxray.diffWithSaved", uri))["diff"]
        )
        assert not after.answer_changed and {p.status for p in after.parts} == {"same"}
        await wire.request("shutdown")

    asyncio.run(scenario())
