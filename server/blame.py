"""diffWithSaved's "which edit broke a check": when an assertion of the document's `checks:`
fails on its current explanation, the hunks of the edit since the saved version are reverted
one at a time (explainers/checks/blame.py) in the engine's worker thread, on the backend that
explains the document, so the event loop stays free and the model is not loaded twice."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from promptxray.explainers.checks import evaluate, load_checks
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.nl import blame_text

if TYPE_CHECKING:
    from promptxray.explainers.checks.blame import Blame
    from promptxray.explainers.types import Explanation
    from promptxray.server.server import PromptXrayServer


async def blame_saved_edit(
    ls: PromptXrayServer, uri: str, text: str, saved_text: str, current: Explanation
) -> Blame | None:
    """Which hunks of the edit saved → current make the document's failing assertions fail
    (on `current`, the explanation of `text`), or None when none fails or it has no checks."""
    from promptxray.explainers.backends import get_backend
    from promptxray.explainers.checks.blame import blame_edit

    docs = ls.documents
    request = docs.request_for(uri, text, docs.docs[uri].overrides)
    try:
        spec = load_checks(text, request.path)
    except PromptXrayError:
        return None
    lang = ls.settings.language
    if spec is None or not spec.assertions:
        return None
    failed = [r for r in evaluate(spec, current, lang) if r.status == "fail"]
    if not failed:
        return None

    def work() -> Blame:
        backend = get_backend(
            request.backend, request.model, options=request.backend_options
        )  # loaded already: it explained the document
        since = blame_text.saved_label(lang)
        return blame_edit(request, current, spec, failed, saved_text, since, backend, lang)

    future = ls.engine.executor.submit(work)
    return await asyncio.wrap_future(future)


def blame_view(blame: Blame, lang: str) -> dict[str, Any]:
    """What diffWithSaved returns about it: the verdict, the responsible lines, the details."""
    return {
        "verdict": blame.verdict,
        "sentence": blame_text.verdict(blame, lang),
        "lines": [list(blame.hunks[i].lines) for i in blame.responsible],
        "details": blame_text.tried(blame, lang),
    }
