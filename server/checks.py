"""A prompt's `checks:` (explainers/checks/) as diagnostics: an Error on the line of each
invalid check and of each assertion that fails (or cannot be checked) on the explanation the
document shows, once it is final (an anytime explanation's earlier stages show only the
invalid checks).

The server explains with its own settings (and the document's overrides); where the prompt's
checks ask for another method, granularity or answer length, the message says which settings
its figures come from, since `promptxray check` may then see other figures. Every message is
worded by `nl.check_text`, in the server's language.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from lsprotocol import types

from promptxray.explainers.checks import evaluate, line_range, load_checks
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.nl import check_text
from promptxray.explainers.types import Explanation
from promptxray.server.positions import PositionMap

SOURCE = "promptxray"


def check_diagnostics(
    uri: str, text: str, expl: Explanation | None, pmap: PositionMap, lang: str = "en"
) -> list[types.Diagnostic]:
    """Error diagnostics for the checks of `text` (the text `expl` explains, if any), worded
    in `lang`."""
    path = unquote(urlparse(uri).path)
    try:
        spec = load_checks(text, path)
    except PromptXrayError:  # the prompt itself does not parse: its error is shown already
        return []
    if spec is None:
        return []
    found = [
        _error(text, pmap, e.line, check_text.invalid_line(e.message, lang)) for e in spec.errors
    ]
    if expl is None or (expl.stage is not None and not expl.stage.final):
        return found
    note = check_text.settings_note(spec, expl, lang)
    for result in evaluate(spec, expl, lang, text):
        if result.status == "pass":
            continue
        a = result.assertion
        message = check_text.result_line(result.status, a.text, result.detail, note, lang)
        found.append(_error(text, pmap, a.line, message))
    return found


def _error(text: str, pmap: PositionMap, line: int, message: str) -> types.Diagnostic:
    start, end = line_range(text, line) or (0, 0)
    return types.Diagnostic(
        range=pmap.range(start, end),
        message=message,
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
    )
