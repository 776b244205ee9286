"""A prompt's `checks:` (explainers/checks.py) as diagnostics: an Error on the line of each
invalid check and of each assertion that fails (or cannot be checked) on the explanation the
document shows, once it is final (an anytime explanation's earlier stages show only the
invalid checks).

The server explains with its own settings (and the document's overrides); where the prompt's
checks ask for another method, granularity or answer length, the message says which settings
its figures come from, since `promptxray check` may then see other figures.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from lsprotocol import types

from promptxray.explainers.checks import CheckSpec, evaluate, line_range, load_checks
from promptxray.explainers.errors import PromptXrayError
from promptxray.explainers.types import Explanation
from promptxray.server.positions import PositionMap

SOURCE = "promptxray"


def check_diagnostics(
    uri: str, text: str, expl: Explanation | None, pmap: PositionMap
) -> list[types.Diagnostic]:
    """Error diagnostics for the checks of `text` (the text `expl` explains, if any)."""
    path = unquote(urlparse(uri).path)
    try:
        spec = load_checks(text, path)
    except PromptXrayError:  # the prompt itself does not parse: its error is shown already
        return []
    if spec is None:
        return []
    found = [_error(text, pmap, e.line, f"invalid check: {e.message}") for e in spec.errors]
    if expl is None or (expl.stage is not None and not expl.stage.final):
        return found
    note = _settings_note(spec, expl)
    for result in evaluate(spec, expl):
        if result.status == "pass":
            continue
        a = result.assertion
        verb = "check failed" if result.status == "fail" else "cannot check"
        found.append(_error(text, pmap, a.line, f"{verb}: {a.text} — {result.detail}{note}"))
    return found


def _settings_note(spec: CheckSpec, expl: Explanation) -> str:
    """Where the shown explanation was made with other settings than the checks ask for."""
    differ = []
    if spec.method and spec.method not in (expl.method, "auto"):
        differ.append(f"method {expl.method}, not {spec.method}")
    if spec.granularity and spec.granularity != expl.granularity:
        differ.append(f"granularity {expl.granularity}, not {spec.granularity}")
    if spec.max_new_tokens and spec.max_new_tokens < len(expl.target.tokens):
        differ.append(f"{len(expl.target.tokens)} answer tokens, not {spec.max_new_tokens}")
    if not expl.target.generated:
        differ.append("a set target, not the model's answer")
    return f" (on the explanation shown: {'; '.join(differ)})" if differ else ""


def _error(text: str, pmap: PositionMap, line: int, message: str) -> types.Diagnostic:
    start, end = line_range(text, line) or (0, 0)
    return types.Diagnostic(
        range=pmap.range(start, end),
        message=message,
        severity=types.DiagnosticSeverity.Error,
        source=SOURCE,
    )
