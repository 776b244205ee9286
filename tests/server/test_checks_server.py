"""The prompt's `checks:` in the editor: once an explanation is final, each failing (or
invalid) assertion is an Error diagnostic on its own line of the front matter, next to the
explanation's own diagnostics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import STORIES

from .wire import Wire

FAILING = Path(__file__).parents[1] / "data" / "checks" / "failing.prompt.md"
ERROR = 1  # DiagnosticSeverity.Error


@pytest.fixture(autouse=True)
def _model() -> None:
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")


def test_failing_and_invalid_assertions_are_errors_on_their_lines(tmp_path: Path):
    async def scenario() -> None:
        wire = Wire()
        await wire.initialize(
            {"model": str(STORIES), "debounceMs": 20, "granularity": "line", "maxNewTokens": 4}
        )
        text = FAILING.read_text().replace(
            "    - min_share: {section: Notes, share: 0.2}\n",
            "    - min_share: {section: Notes, share: 0.2}\n    - no_effect: {section: Nope}\n",
        )
        uri = wire.open(tmp_path / "story.prompt.md", text)
        diagnostics = await wire.published(uri)
        errors = [d for d in diagnostics if d["severity"] == ERROR]
        assert [d["range"]["start"]["line"] for d in errors] == [11, 8, 9]  # 0-based
        invalid, probability, no_effect = errors
        assert invalid["message"].startswith("invalid check: no Markdown heading 'Nope'")
        assert probability["message"].startswith("check failed: min_probability: 0.9 — ")
        assert "P(answer)=" in probability["message"] and "< 0.9" in probability["message"]
        assert no_effect["message"].startswith("check failed: no_effect: line 21 — effect +")
        assert "(on the explanation shown" not in no_effect["message"]  # same settings
        line = text.splitlines()[8]
        assert probability["range"]["end"] == {"line": 8, "character": len(line)}
        assert any(d["severity"] != ERROR for d in diagnostics)  # the explanation's own

        # fixed in the editor: the check's error goes with the next explanation
        wire.replace(uri, text.replace("min_probability: 0.9", "min_probability: 0.001"))
        diagnostics = await wire.published(uri, count=len(wire.diagnostics(uri)))
        errors = [d for d in diagnostics if d["severity"] == ERROR]
        assert [d["range"]["start"]["line"] for d in errors] == [11, 9]
        await wire.request("shutdown")

    asyncio.run(scenario())
