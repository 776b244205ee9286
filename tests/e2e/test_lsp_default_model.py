"""End to end: the real language server, the real default model, a real LSP client."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from .lsp_harness import Harness, decode_semantic_tokens

PROMPT = "What is the capital of France?\nAnswer with the city name.\n"


def _line_col(text: str, word: str) -> tuple[int, int]:
    offset = text.index(word)
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)


@pytest.mark.slow
def test_open_hover_tokens_edit_shutdown(tmp_path):
    async def scenario() -> None:
        async with Harness({"method": "occlusion", "granularity": "word", "debounceMs": 50}) as h:
            uri = h.open(tmp_path / "capital.prompt", PROMPT)
            first = await h.diagnostics_after(uri, 0)
            assert all(d.source == "promptxray" for d in first)
            drivers = [d for d in first if d.severity == types.DiagnosticSeverity.Information]
            assert drivers, [d.message for d in first]
            assert "Paris" in drivers[0].message

            line, col = _line_col(PROMPT, "capital")
            hover = await h.hover(uri, line, col + 2)
            assert hover is not None
            text = hover.contents.value  # type: ignore[union-attr]
            assert "capital" in text and "occlusion score" in text and "Paris" in text
            assert "without this word" in text
            # short: the span, the run, a summary with one faithfulness verdict, a link
            assert len(text) < 600 and text.count("Faithfulness") == 1, text
            assert "rests most on" in text and "deletion AUC" not in text
            assert "[Full report](command:promptxray.showReport?" in text

            tokens = await h.semantic_tokens(uri)
            assert tokens is not None
            decoded = decode_semantic_tokens(tokens.data)
            assert {t[0] for t in decoded} == {0, 1}  # both prompt lines are coloured
            assert all(
                kind in (0, 1) and mods and length > 0 for _, _, length, kind, mods in decoded
            )

            # past the end of the prompt: no hover, no error
            assert await h.hover(uri, 2, 0) is None

            # edit: the old diagnostics are replaced, not piled up
            count = len(h.diagnostics[uri])
            edited = "What is the capital of Italy?\nAnswer with the city name.\n"
            h.replace(uri, edited)
            after = await h.diagnostics_after(uri, count)
            assert any("Rome" in d.message for d in after), [d.message for d in after]
            assert not any("Paris" in d.message for d in after)

            data = await h.explanation(uri)
            assert "Rome" in data["target"]["text"]
            for tok in data["tokens"]:
                assert edited[tok["start"] : tok["end"]] == tok["text"]
            kinds = [p.get("kind") if isinstance(p, dict) else p.kind for p in h.progress]
            assert "begin" in kinds and "report" in kinds and "end" in kinds
            messages = [p.get("message") for p in h.progress if isinstance(p, dict)]
            assert "loading the model" in messages  # model loading is its own step

    asyncio.run(scenario())
