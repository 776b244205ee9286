"""The real server over stdio with the tiny real model: bad input, settings, responsiveness."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.conftest import STORIES

from .lsp_harness import Harness

STORY = "Once upon a time there was a\nlittle girl named"


def run(scenario) -> None:
    asyncio.run(scenario())


def messages(diags: list[types.Diagnostic]) -> list[str]:
    return [d.message for d in diags]


def test_bad_documents_get_clear_diagnostics_and_the_server_stays_up(tmp_path):
    async def scenario() -> None:
        async with Harness({"model": str(STORIES), "debounceMs": 20}) as h:
            cases = {
                "empty.prompt": ("", "no prompt text", types.DiagnosticSeverity.Warning),
                "blob.prompt": ("abc\x00\x01def", "binary", types.DiagnosticSeverity.Warning),
                "front.prompt.md": (
                    "---\ntitle: [unclosed\n---\nHello there",
                    "front matter",
                    types.DiagnosticSeverity.Warning,
                ),
                "long.prompt": (
                    "Once upon a time. " * 200,
                    "context of 512 tokens",
                    types.DiagnosticSeverity.Error,
                ),
                "huge.prompt": ("word " * 200_000, "context", types.DiagnosticSeverity.Error),
            }
            uris = {name: h.open(tmp_path / name, text) for name, (text, _, _) in cases.items()}
            for name, (_, expected, severity) in cases.items():
                diags = await h.diagnostics_after(uris[name], 0)
                assert len(diags) == 1, (name, messages(diags))
                assert expected in diags[0].message, (name, diags[0].message)
                assert diags[0].severity == severity
            good = h.open(tmp_path / "good.prompt", STORY)
            assert await h.diagnostics_after(good, 0)
            assert await h.hover(good, 0, 6) is not None

            with pytest.raises(JsonRpcException, match="not defined"):
                await h.command("promptxray.noSuchCommand", good)
            never = (tmp_path / "never.prompt").as_uri()
            with pytest.raises(JsonRpcException, match="not an open prompt document"):
                await h.client.protocol.send_request_async("promptxray/explanation", {"uri": never})
            with pytest.raises(JsonRpcException, match="not an open prompt document"):
                await h.command("promptxray.explain", never)
            assert await h.hover(never and good, 0, 6) is not None  # still serving

    run(scenario)


def test_invalid_settings_warn_and_fall_back_to_defaults(tmp_path):
    async def scenario() -> None:
        options = {"model": str(STORIES), "method": "telepathy", "debounceMs": -5, "colour": 1}
        async with Harness(options) as h:
            uri = h.open(tmp_path / "a.prompt", STORY)
            await h.diagnostics_after(uri, 0)
            text = " | ".join(h.messages)
            assert "method" in text and "telepathy" in text
            assert "debounceMs" in text and "colour" in text
            data = await h.explanation(uri)
            assert data["method"] == "occlusion"  # the default

    run(scenario)


def test_model_that_fails_to_load_is_reported_once_and_retried_on_new_settings(tmp_path):
    async def scenario() -> None:
        async with Harness({"model": "/no/such/model", "debounceMs": 20}) as h:
            a = h.open(tmp_path / "a.prompt", STORY)
            b = h.open(tmp_path / "b.prompt", "Once upon a time")
            da = await h.diagnostics_after(a, 0)
            db = await h.diagnostics_after(b, 0)
            assert "does not exist" in da[0].message and "does not exist" in db[0].message
            assert da[0].severity == types.DiagnosticSeverity.Warning
            await h.wait_for(lambda: any("does not exist" in m for m in h.messages))
            assert sum("does not exist" in m for m in h.messages) == 1
            count = len(h.diagnostics[a])
            h.client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(settings={"promptxray": {"model": str(STORIES)}})
            )
            fixed = await h.diagnostics_after(a, count)
            assert any(d.severity == types.DiagnosticSeverity.Information for d in fixed)
            assert not any("does not exist" in m for m in messages(fixed))

    run(scenario)


def test_hover_on_explained_document_is_answered_while_a_long_job_runs(tmp_path):
    async def scenario() -> None:
        async with Harness({"model": str(STORIES), "granularity": "token"}) as h:
            short = h.open(tmp_path / "short.prompt", STORY)
            await h.diagnostics_after(short, 0)
            long_text = "Once upon a time there was a little girl. " * 40
            long_uri = h.open(tmp_path / "long.prompt", long_text)
            order: list[str] = []

            async def long_job() -> None:
                await h.command("promptxray.explain", long_uri, "occlusion", " She", "token")
                order.append("long")

            async def hover() -> None:
                await asyncio.sleep(0.05)
                result = await h.hover(short, 0, 6)
                assert result is not None
                order.append("hover")

            await asyncio.gather(long_job(), hover())
            assert order == ["hover", "long"]

    run(scenario)


def test_stale_results_are_dropped_and_commands_work(tmp_path):
    async def scenario() -> None:
        async with Harness({"model": str(STORIES), "debounceMs": 300}) as h:
            uri = h.open(tmp_path / "s.prompt", STORY)
            await h.diagnostics_after(uri, 0)
            count = len(h.diagnostics[uri])

            def readies() -> int:
                return sum(s["uri"] == uri and s["stage"] == "ready" for s in h.statuses)

            ready = readies()
            for i in range(5):  # rapid edits inside the debounce window: one run, latest text
                h.replace(uri, STORY + " Tom" * (i + 1))
            diags = await h.diagnostics_after(uri, count)
            await asyncio.sleep(1.0)
            # one job ran: its stages (blocks, lines, refined) and one "ready", nothing more
            assert readies() == ready + 1, "superseded versions must not publish"
            assert len(h.diagnostics[uri]) <= count + 3, "superseded versions must not publish"
            stages = [s["stage"] for s in h.statuses if s["uri"] == uri]
            assert stages[0] == "queued" and stages[-1] == "ready" and "lines" in stages
            data = await h.explanation(uri)
            assert data["tokens"][-1]["end"] == len(STORY + " Tom" * 5)
            assert diags

            summary = await h.command("promptxray.setTarget", uri, " Lily")
            assert summary["target"].strip() == "Lily"
            report = await h.command(
                "promptxray.compareMethods", uri, ["occlusion", "gradient_x_input"]
            )
            pair = report["pairs"][0]
            assert -1.0 <= pair["spearman"] <= 1.0 and 0.0 <= pair["top5_overlap"] <= 1.0
            lenses = await h.client.text_document_code_lens_async(
                types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
            )
            titles = [lens.command.title for lens in lenses or [] if lens.command]
            assert any("Lily" in t for t in titles) and "Re-explain" in titles
            hover = await h.hover(uri, 0, 6)
            assert hover is not None
            link = "[Full report](command:promptxray.showReport?"
            assert link in hover.contents.value  # type: ignore[union-attr]
            report = await h.command("promptxray.showReport", uri)
            assert "Lily" in report["text"] and report["text"] in h.messages
        assert h.returncode == 0  # shutdown, then exit: a clean stop

    run(scenario)
