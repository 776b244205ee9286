"""diffWithSaved names the edit that broke a check: the document's `checks:` pass at the saved
version and fail after an edit (the tiny real model; the answers are generated directly)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import STORIES
from tests.explainers.test_check_blame import COLD, _answer, story

from .wire import Wire


def test_diff_with_saved_says_which_edit_broke_the_check(tmp_path: Path, stories):
    saved = story()
    assert "saw" in _answer(saved, stories) and "saw" not in _answer(COLD, stories)

    async def scenario() -> None:
        wire = Wire()
        options = {"model": str(STORIES), "debounceMs": 20, "granularity": "line"}
        await wire.initialize({**options, "faithfulness": False, "maxNewTokens": 4})
        uri = wire.open(tmp_path / "story.prompt.md", saved)
        await wire.published(uri)
        published = len(wire.diagnostics(uri))
        wire.replace(uri, COLD)
        await wire.published(uri, published)
        result = await wire.command("promptxray.diffWithSaved", uri)
        blame = result["blame"]
        assert blame["verdict"] == "alone" and blame["lines"] == [[12, 12]]
        first = result["text"].splitlines()[0]
        assert first.startswith("The check fails because of the edit at line 12")
        markdown = result["markdown"]
        assert markdown.index("**The check fails because") < markdown.index("<details>")
        assert markdown.index("</details>") < markdown.index("| Part |")
        await wire.request("shutdown")

    asyncio.run(scenario())
