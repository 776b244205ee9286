"""The server in-process (pygls's protocol, no subprocess) with the tiny real model: commands
that must not disturb a document, shutdown, the status notification and short hovers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from promptxray.explainers import nl
from promptxray.explainers.types import Explanation
from promptxray.server.progress import STATUS_STAGES
from promptxray.server.scheduler import Job
from tests.conftest import STORIES

from .wire import Wire

STORY = "Once upon a time there was a\nlittle girl named"
FOUR = "Once upon a time\nthere was a little girl.\nShe had a red ball.\nOne day she"
HOVER_LIMIT = 600


@pytest.fixture(autouse=True)
def _model() -> None:
    if not STORIES.exists():
        pytest.fail(f"stories260K not found at {STORIES}; set PROMPTXRAY_STORIES")


def run(scenario: Any) -> None:
    asyncio.run(scenario())


async def started(**options: Any) -> Wire:
    wire = Wire()
    await wire.initialize({"model": str(STORIES), "debounceMs": 20, **options})
    return wire


async def explanation(wire: Wire, uri: str) -> Explanation:
    return Explanation.from_dict(await wire.request("promptxray/explanation", {"uri": uri}))


def test_compare_methods_leaves_the_documents_own_settings_and_view_alone(tmp_path: Path):
    async def scenario() -> None:
        wire = await started()
        uri = wire.open(tmp_path / "a.prompt", STORY)
        await wire.published(uri)
        docs = wire.ls.documents
        shown = docs.shown(uri)
        assert shown is not None
        report = await wire.command("promptxray.compareMethods", uri, ["occlusion", "saliency"])
        assert report["methods"] == ["occlusion", "saliency"] and len(report["pairs"]) == 1
        assert docs.docs[uri].overrides == {}  # granularity "auto" compared at word level
        after = docs.shown(uri)
        assert after is not None and after.expl is shown.expl
        assert (await explanation(wire, uri)).granularity == "auto"

        summary = await wire.command("promptxray.explain", uri, "gradient_x_input", None, "line")
        assert summary["method"] == "gradient_x_input"
        published = len(wire.diagnostics(uri))
        own = dict(docs.docs[uri].overrides)
        assert own == {"method": "gradient_x_input", "granularity": "line"}
        await wire.command("promptxray.compareMethods", uri, ["occlusion", "attention"])
        assert docs.docs[uri].overrides == own
        assert len(wire.diagnostics(uri)) == published  # what the document shows is unchanged
        data = await explanation(wire, uri)
        assert (data.method, data.granularity) == ("gradient_x_input", "line")
        assert wire.statuses(uri)[-1]["stage"] == "ready"
        await wire.request("shutdown")

    run(scenario)


def test_shutdown_cancels_the_running_job_and_stops_the_worker(tmp_path: Path):
    async def scenario() -> None:
        wire = await started(granularity="token", faithfulness=False)
        uri = wire.open(tmp_path / "long.prompt", "Once upon a time there was a girl. " * 40)
        await wire.wait_for(lambda: any(s["stage"] == "attribute" for s in wire.statuses(uri)))
        engine = wire.ls.engine
        workers = list(engine.executor._threads)
        assert workers and all(t.is_alive() for t in workers)
        assert await wire.request("shutdown") is None
        assert engine.closed and wire.ls.documents.docs == {}
        for thread in workers:  # the job stops at its next progress step
            await asyncio.to_thread(thread.join, 60)
            assert not thread.is_alive()
        assert not engine.cache, "the cancelled job must not complete"
        assert all(s["stage"] not in ("ready", "error") for s in wire.statuses(uri))
        with pytest.raises(RuntimeError):
            engine.submit(Job(uri, 1, wire.ls.documents.request_for(uri, "x", {})))

    run(scenario)


def test_a_job_the_user_cancels_ends_with_a_final_status(tmp_path: Path):
    """A client's status bar must not stay on "explaining" after the user stops a job: the
    server restates the document's state (the last result, or ready with nothing shown)."""

    async def scenario() -> None:
        wire = await started(granularity="token", faithfulness=False)
        uri = wire.open(tmp_path / "long.prompt", "Once upon a time there was a girl. " * 40)
        await wire.wait_for(lambda: any(s["stage"] == "attribute" for s in wire.statuses(uri)))
        tokens = [p["token"] for p in wire.params("window/workDoneProgress/create")]
        assert tokens
        wire.notify("window/workDoneProgress/cancel", {"token": tokens[-1]})
        await wire.wait_for(lambda: wire.statuses(uri)[-1]["stage"] in ("ready", "error"))
        assert wire.statuses(uri)[-1] == {"uri": uri, "stage": "ready", "done": 0, "total": 0}
        assert wire.ls.documents.shown(uri) is None  # nothing half-done is shown
        await wire.request("shutdown")

    run(scenario)


def test_status_notifications_carry_a_machine_readable_stage(tmp_path: Path):
    async def scenario() -> None:
        wire = await started()
        uri = wire.open(tmp_path / "a.prompt", FOUR)
        await wire.published(uri)
        statuses = wire.statuses(uri)
        stages = [s["stage"] for s in statuses]
        assert set(stages) <= set(STATUS_STAGES)
        assert stages[0] == "queued" and stages[-1] == "ready"
        # the default (occlusion, granularity auto) is an anytime explanation: FOUR's lines
        # fall into fewer blocks, so the blocks stage comes first
        order = [stages.index(s) for s in ("load", "target", "blocks", "lines", "refine")]
        assert order == sorted(order)
        assert all(0 <= s["done"] <= s["total"] or s["total"] == 0 for s in statuses)
        assert all(set(s) == {"uri", "stage", "done", "total"} for s in statuses)
        # $/progress keeps the human text beside it
        reports = [p["value"] for p in wire.params("$/progress") if p["value"]["kind"] == "report"]
        messages = [r.get("message") for r in reports]
        assert "exact line effects" in messages and "refining lines, words and tokens" in messages

        empty = wire.open(tmp_path / "empty.prompt", "")
        await wire.published(empty)
        assert [s["stage"] for s in wire.statuses(empty)][-1] == "error"
        await wire.request("shutdown")

    run(scenario)


def _hover_text(hover: dict[str, Any]) -> str:
    assert hover["contents"]["kind"] == "markdown"
    return str(hover["contents"]["value"])


def test_hover_is_short_states_faithfulness_once_and_links_the_full_report(tmp_path: Path):
    async def scenario() -> None:
        wire = await started()
        uri = wire.open(tmp_path / "four.prompt", FOUR)
        await wire.published(uri)
        expl = await explanation(wire, uri)
        texts = []
        for line in range(4):
            hover = await wire.hover(uri, line, 1)
            assert hover is not None
            text = _hover_text(hover)
            texts.append(text)
            assert len(text) < HOVER_LIMIT, text
            assert text.count("Faithfulness") == 1, text
            assert "comprehensiveness" not in text and "deletion AUC" not in text
            assert "[Full report](command:promptxray.showReport?" in text
            assert nl.summary(expl).split(".")[0] in text.replace("\\", "")
        index = expl.span_at(FOUR.index("upon"))
        assert index is not None
        assert nl.span_line(expl, index).split(" · ")[0] in texts[0]

        report = await wire.command("promptxray.showReport", uri)
        assert report["text"] == nl.describe(expl)
        assert "comprehensiveness" in report["text"]
        assert report["text"] in [m["message"] for m in wire.params("window/showMessage")]
        await wire.request("shutdown")

    run(scenario)


def test_self_explanation_is_one_line_of_the_hover(tmp_path: Path):
    async def scenario() -> None:
        wire = await started(selfExplain=True)
        uri = wire.open(tmp_path / "a.prompt", STORY)
        await wire.published(uri)
        stages = [s["stage"] for s in wire.statuses(uri)]
        assert "self-explain" in stages
        expl = await explanation(wire, uri)
        assert expl.self_explanation is not None
        text = _hover_text(await wire.hover(uri, 0, 6))
        assert nl.self_explanation_line(expl.self_explanation) in text
        assert expl.self_explanation.answer.strip() not in text or not expl.self_explanation.answer
        assert len(text) < HOVER_LIMIT + 100 and text.count("Faithfulness") == 1
        await wire.request("shutdown")

    run(scenario)


def test_unnecessary_threshold_governs_every_no_effect_statement(tmp_path: Path):
    async def scenario() -> None:
        wire = await started()
        uri = wire.open(tmp_path / "four.prompt", FOUR)
        first = await wire.published(uri)
        assert not any("no measurable effect" in d["message"].lower() for d in first)
        count = len(wire.diagnostics(uri))
        passes = wire.ls.engine.cache.copy()
        wire.notify(
            "workspace/didChangeConfiguration",
            {"settings": {"promptxray": {"model": str(STORIES), "unnecessaryThreshold": 1e6}}},
        )
        hints = await wire.published(uri, count)
        assert wire.ls.engine.cache == passes  # re-shown, not re-explained
        faded = [d for d in hints if d.get("tags") == [1]]
        assert len(faded) == 4
        assert all("no measurable effect" in d["message"].lower() for d in faded)
        text = _hover_text(await wire.hover(uri, 0, 1))
        assert "no measurable effect" in text
        assert "have no measurable effect" in text  # the summary, with the same threshold
        await wire.request("shutdown")

    run(scenario)
