"""A real browser (Debian chromium driven by Playwright) using the served app on the tiny
model: type, press Enter, see the reply and its highlighted explanation, pick a sentence and
see the highlighting change; ask "why not …?" about one of the model's alternatives and see
the contrastive explanation ("rather than"), then clear it."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HIGHLIGHTS = "#explanation .score-token.highlighted"


def _colours(page) -> list[str]:
    return page.eval_on_selector_all(HIGHLIGHTS, "els => els.map(e => e.style.backgroundColor)")


def _status(page, text: str, timeout: float = 90_000) -> None:
    page.wait_for_function(
        "t => (document.querySelector('#explain-status')?.innerText || '').includes(t)",
        arg=text,
        timeout=timeout,
    )


def test_type_reply_explanation_and_sentence(stories_url, tmp_path):
    import os

    from playwright import sync_api

    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            page.goto(stories_url)
            box = page.locator("#message textarea")
            box.fill("Once upon a time")
            box.press("Enter")
            bot = page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']")
            bot.first.wait_for(timeout=60_000)
            _status(page, "Explained reply 1")
            assert "Once upon a time" in page.locator("#chatbot").inner_text()
            assert "Explanation (occlusion)" in page.locator("#chatbot").inner_text()
            before = _colours(page)
            assert before, "no highlighted tokens"
            chat = page.locator("#chatbot").inner_text()
            assert chat.count("Faithfulness") == 1, chat  # stated once, in the short summary
            report = page.locator("#report")
            assert not report.is_visible()  # the full report is one click away
            page.get_by_text("Full report").click()
            report.wait_for(state="visible", timeout=10_000)
            assert "Faithfulness" in report.inner_text()
            page.screenshot(path=str(tmp_path / "reply.png"), full_page=True)

            radios = page.locator("#sentence input[type=radio]")
            assert radios.count() >= 3, "the reply should have at least two sentences"
            radios.nth(1).check()
            _status(page, "Explained reply 1")
            page.wait_for_function(
                "t => (document.querySelector('#footer')?.innerText || '').includes(t)",
                arg="up to and including the selected sentence",
                timeout=60_000,
            )
            after = _colours(page)
            assert after and after != before
            page.screenshot(path=str(tmp_path / "sentence.png"), full_page=True)
            assert (tmp_path / "sentence.png").stat().st_size > 10_000
        finally:
            browser.close()


def test_why_not_shows_a_contrastive_explanation(stories_url):
    """After a reply is explained: pick one of the model's alternatives, press "Why not?",
    and the bubble and the highlighting show why the reply rather than it; clearing the
    alternative shows the reply's own explanation again."""
    import os

    from playwright import sync_api

    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1800})
            page.goto(stories_url)
            box = page.locator("#message textarea")
            box.fill("Once upon a time")
            box.press("Enter")
            _status(page, "Explained reply 1")
            choices = page.locator("#foil-choices input[type=radio]")
            choices.first.wait_for(state="attached", timeout=60_000)
            before = _colours(page)
            assert before and "rather than" not in page.locator("#chatbot").inner_text()
            choices.first.check()
            page.locator("#why-not").click()
            _status(page, "Explained reply 1, rather than")
            page.wait_for_function(
                "() => (document.querySelector('#chatbot')?.innerText || '').includes("
                "'rather than')",
                timeout=30_000,
            )
            assert "rather than" in page.locator("#footer").inner_text()
            after = _colours(page)
            assert after and after != before  # the highlighting is the contrastive one
            page.locator("#clear-foil").click()
            _status(page, "Explanation (cached)")
            assert "rather than" not in page.locator("#chatbot").inner_text()
            assert _colours(page) == before
        finally:
            browser.close()
