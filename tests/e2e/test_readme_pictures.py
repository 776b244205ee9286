"""The README's pictures, made by the real front ends on the default model (SmolLM2) and
screenshotted in a real browser (Debian chromium driven by Playwright):

- docs/images/chat.png: the served chat, asked "What is the capital of France?", with the
  explanation of its reply;
- docs/images/report.png: the HTML report (`promptxray explain FILE -f html`) of
  examples/travel_assistant.prompt;
- docs/images/editor.png: what VS Code shows for that file, drawn (editor_picture.py) from what
  the real language server returned: heatmap, inlay hints, code lenses, diagnostics and the
  hover at the top driver.

Each run overwrites the three files.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.chat_ui import conftest as chat_fixtures
from tests.conftest import REPO

from .editor_picture import EditorPicture, render_html, token_rules, token_style
from .lsp_harness import Harness

pytestmark = pytest.mark.slow

# the chat's fixtures (a second definition here: the loaded model itself is shared)
smol_engine = chat_fixtures.smol_engine
smol_url = chat_fixtures.smol_url

IMAGES = REPO / "docs" / "images"
EXAMPLE = REPO / "examples" / "travel_assistant.prompt"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
MIN_BYTES = 20_000
WIDTH = 960  # of the editor picture


@contextmanager
def browser_page(width: int, height: int) -> Iterator[Any]:
    """A page of a fresh headless chromium (scale factor 1, so the PNGs stay small)."""
    from playwright import sync_api

    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def _bottom(page: Any, selectors: list[str]) -> float:
    """The lowest bottom edge (page pixels) of the elements matching `selectors`."""
    return float(
        page.evaluate(
            """sels => Math.max(...sels.flatMap(s => [...document.querySelectorAll(s)])
                .map(e => e.getBoundingClientRect().bottom + window.scrollY))""",
            selectors,
        )
    )


def _check_png(path: Path) -> None:
    assert path.exists() and path.stat().st_size > MIN_BYTES, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chat_picture(smol_url):
    """The chat on the default model, its reply and the explanation under it."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    out = IMAGES / "chat.png"
    with browser_page(1280, 1400) as page:
        page.goto(smol_url)
        box = page.locator("#message textarea")
        box.fill("What is the capital of France?")
        box.press("Enter")
        page.wait_for_function(
            "() => (document.querySelector('#explain-status')?.innerText || '')"
            ".includes('Explained reply 1')",
            timeout=240_000,
        )
        chat = page.locator("#chatbot").inner_text()
        assert "Paris" in chat, chat
        assert "Explanation (occlusion)" in chat, chat
        highlighted = page.locator("#explanation .score-token.highlighted")
        assert highlighted.count() > 0
        assert "capital" in page.locator("#explanation").inner_text()
        page.wait_for_timeout(500)  # let the last repaint settle
        bottom = _bottom(page, ["#footer", "#why"])  # down to the explanation's buttons
        page.screenshot(
            path=str(out),
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1280, "height": bottom + 4},
        )
    _check_png(out)


def test_report_picture(smol, tmp_path):
    """The HTML report of the example prompt, as `promptxray explain FILE -f html` writes it."""
    from promptxray.explainers.explain import explain
    from promptxray.explainers.render import render_html as render_report
    from promptxray.explainers.types import ExplainRequest

    source = EXAMPLE.read_text(encoding="utf-8")
    name = EXAMPLE.relative_to(REPO).as_posix()
    expl = explain(ExplainRequest(text=source, path=name, granularity="word"), backend=smol)
    assert "Paris" in expl.target.text
    page_file = tmp_path / "report.html"
    page_file.write_text(render_report(expl, source, title=name), encoding="utf-8")
    IMAGES.mkdir(parents=True, exist_ok=True)
    out = IMAGES / "report.png"
    with browser_page(1000, 900) as page:
        page.goto(page_file.as_uri())
        text = page.locator("body").inner_text()
        assert "Paris" in text and "Top drivers" in text, text
        # down to the fifth top driver (the rest of the table is more of the same)
        bottom = page.evaluate(
            """() => { const rows = [...document.querySelectorAll('table')].pop().rows;
                const r = rows[Math.min(5, rows.length - 1)].getBoundingClientRect();
                return r.bottom + window.scrollY; }"""
        )
        clip = {"x": 0, "y": 0, "width": 1000, "height": bottom + 1}
        page.screenshot(path=str(out), full_page=True, clip=clip)
    _check_png(out)


class PictureHarness(Harness):
    """The test harness that also keeps the server's initialize result (its legend)."""

    def __init__(self, init_options: dict[str, Any]) -> None:
        super().__init__(init_options)
        self.initialize_result: types.InitializeResult | None = None
        initialize = self.client.initialize_async

        async def keep(params: types.InitializeParams) -> types.InitializeResult:
            self.initialize_result = await initialize(params)
            return self.initialize_result

        self.client.initialize_async = keep  # type: ignore[method-assign]

    async def __aenter__(self) -> PictureHarness:
        await super().__aenter__()
        return self


async def _editor_picture() -> EditorPicture:
    """Open the example in the real server on the default model and collect, once the final
    explanation is shown, everything VS Code would ask for and show."""
    text = EXAMPLE.read_text(encoding="utf-8")
    async with PictureHarness({"inlayHints": True, "debounceMs": 50}) as h:
        uri = h.open(EXAMPLE, text)
        diagnostics = await h.diagnostics_after(uri, 0)
        assert h.initialize_result is not None
        provider = h.initialize_result.capabilities.semantic_tokens_provider
        assert provider is not None
        doc = types.TextDocumentIdentifier(uri=uri)
        tokens = await h.semantic_tokens(uri)
        end = types.Position(line=text.count("\n") + 1, character=0)
        hints = await h.client.text_document_inlay_hint_async(
            types.InlayHintParams(
                text_document=doc, range=types.Range(start=types.Position(0, 0), end=end)
            )
        )
        lenses = await h.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=doc)
        )
        drivers = [d for d in diagnostics if d.severity == types.DiagnosticSeverity.Information]
        assert drivers, [d.message for d in diagnostics]
        top = drivers[0].range
        hover = await h.hover(uri, top.start.line, (top.start.character + top.end.character) // 2)
        assert hover is not None
        return EditorPicture.from_lsp(
            EXAMPLE.name, text, provider.legend, tokens, hints, lenses, diagnostics, hover
        )


def test_editor_picture(tmp_path):
    """VS Code's view of the example, drawn from the real server's answers."""
    pic = asyncio.run(_editor_picture())
    assert pic.tokens and pic.hints and pic.lenses and pic.hover is not None
    assert {t.type for t in pic.tokens} <= {"xrayPositive", "xrayNegative"}
    top = next(m for m in pic.marks if m.severity == types.DiagnosticSeverity.Information)
    line = pic.text.split("\n")[top.start[0]]
    driver = line[top.start[1] : top.end[1]]
    assert driver.strip() and driver.strip() in pic.hover.markdown, (driver, pic.hover)
    assert "Paris" in pic.hover.markdown
    # the top driver is drawn in the client's own colour for its sign and level
    rules = token_rules()
    token = next(t for t in pic.tokens if (t.line, t.start) == top.start)
    colour = token_style(token, rules)["foreground"]
    markup = render_html(pic, rules)
    assert f"color:{colour}" in markup
    page_file = tmp_path / "editor.html"
    page_file.write_text(markup, encoding="utf-8")
    IMAGES.mkdir(parents=True, exist_ok=True)
    out = IMAGES / "editor.png"
    with browser_page(WIDTH, 700) as page:
        page.goto(page_file.as_uri())
        assert driver.strip() in page.locator(".hover").inner_text()
        bottom = _bottom(page, [".window", ".hover"])
        clip = {"x": 0, "y": 0, "width": WIDTH, "height": bottom + 12}
        page.screenshot(path=str(out), full_page=True, clip=clip)
    _check_png(out)
