"""Explanation -> LSP: hovers, diagnostics, semantic tokens, inlay hints and code lenses.

Pure functions of an `Explanation` and the document text; the handlers in server.py only look
up the cached explanation and call these.
"""

from __future__ import annotations

import math

from lsprotocol import types

from promptxray.explainers.nl import SelfExplanation, describe, describe_self_explanation
from promptxray.explainers.render import auto_reason, faithfulness_line, format_prob
from promptxray.explainers.types import Explanation, Span
from promptxray.server.positions import PositionMap

SOURCE = "promptxray"
TOKEN_TYPES = ["xrayPositive", "xrayNegative"]
TOKEN_MODIFIERS = ["level1", "level2", "level3", "level4", "level5"]
LEGEND = types.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)
TOP_DRIVERS = 3


def _max_abs(expl: Explanation) -> float:
    return max((abs(s.score) for s in expl.spans), default=0.0) or 1.0


def rank_of(expl: Explanation, span: Span) -> int:
    """1-based rank of a span by |score|."""
    return 1 + sum(1 for s in expl.spans if abs(s.score) > abs(span.score))


def span_at(expl: Explanation, offset: int) -> tuple[int, Span] | None:
    """The span (and its index) under a character offset, if any."""
    for i, span in enumerate(expl.spans):
        if span.start <= offset < span.end:
            return i, span
    return None


def ablated_prob(expl: Explanation, index: int) -> float | None:
    """Occlusion only: the target's probability with this span removed."""
    values = expl.details.get("ablated_logprob")
    if not isinstance(values, list) or index >= len(values):
        return None
    return math.exp(values[index])


def unit_of(expl: Explanation, span: Span) -> str:
    """What the span is: its level (line, word or token) with granularity "auto"."""
    kinds = expl.details.get("hierarchy", {}).get("unit_kinds")
    if isinstance(kinds, list) and len(kinds) == len(expl.spans):
        return str(kinds[expl.spans.index(span)])
    return expl.granularity


def units_name(expl: Explanation) -> str:
    """The spans' common name, in plural ("parts" when they mix levels)."""
    return "parts" if expl.granularity == "auto" else f"{expl.granularity}s"


def plain_sentence(expl: Explanation, span: Span, threshold: float = 0.05) -> str:
    """One sentence saying what the number means, and nothing the number does not show."""
    unit = unit_of(expl, span)
    if expl.method == "occlusion":
        if abs(span.score) < threshold:
            return f"Removing this {unit} has no measurable effect on the answer."
        way = "less" if span.score > 0 else "more"
        return f"Without this {unit} the model is {way} likely to give this answer."
    if expl.method in ("attention", "attention_rollout"):
        return (
            f"The answer's positions attend to this {unit} with weight {span.score:.3g} "
            "(unsigned; not a measured effect)."
        )
    if expl.method == "saliency":
        return (
            f"The answer is sensitive to this {unit} (gradient norm {span.score:.3g}; "
            "unsigned, not a measured effect)."
        )
    way = "raises" if span.score > 0 else "lowers"
    return f"By {expl.method.replace('_', ' ')}, this {unit} {way} the answer's log-probability."


def hover_markdown(expl: Explanation, index: int, span: Span, lang: str = "en") -> str:
    """The hover of one span: its score and measured effect, the explanation's faithfulness,
    and the plain-language explanation of the whole prompt (in `lang`)."""
    n = len(expl.spans)
    target = expl.target.text
    lines = [
        f"**promptxray** · `{span.text.strip() or repr(span.text)}` — score **{span.score:+.3f}** "
        f"(#{rank_of(expl, span)} of {n} {units_name(expl)})",
    ]
    prob = ablated_prob(expl, index)
    if prob is not None:
        lines.append(
            f"P({target!r}) {format_prob(expl.target.prob)} → {format_prob(prob)} "
            f"without this {unit_of(expl, span)}"
        )
    else:
        lines.append(f"Target {target!r}, P = {format_prob(expl.target.prob)}")
    lines.append(
        f"{expl.method} · {expl.backend} · {expl.model} · {expl.wall_time_s:.2f} s"
        + "".join(f" · {k} {v:.3g}" for k, v in expl.metrics.items() if "relative" in k)
    )
    lines.append(plain_sentence(expl, span))
    for extra in (faithfulness_line(expl), auto_reason(expl)):
        if extra:
            lines.append(extra)
    lines += ["---", _escape_md(describe(expl, lang=lang))]
    found = expl.details.get("self_explanation")
    if isinstance(found, dict):
        text = describe_self_explanation(SelfExplanation.from_dict(found), lang)
        lines.append(_escape_md(text))
    return "\n\n".join(lines)


def _escape_md(text: str) -> str:
    """Plain text inside Markdown: keep line breaks, neutralise emphasis characters."""
    for ch in "\\*_`[]<>#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", "  \n")


def driver_diagnostics(expl: Explanation, pmap: PositionMap) -> list[types.Diagnostic]:
    """Information on the spans that raise the answer's probability most."""
    top = [s for s in expl.ranked_spans() if s.score > 0][:TOP_DRIVERS]
    cutoff = 0.2 * _max_abs(expl)
    out = []
    for span in top:
        if span.score < cutoff:
            continue
        index = expl.spans.index(span)
        prob = ablated_prob(expl, index)
        effect = (
            f"; P {format_prob(expl.target.prob)} → {format_prob(prob)} without it"
            if prob is not None
            else ""
        )
        out.append(
            types.Diagnostic(
                range=pmap.range(span.start, span.end),
                message=(
                    f"Drives the answer {expl.target.text!r}: #{rank_of(expl, span)} of "
                    f"{len(expl.spans)} {units_name(expl)}, {expl.method} score "
                    f"{span.score:+.3f}{effect}"
                ),
                severity=types.DiagnosticSeverity.Information,
                source=SOURCE,
            )
        )
    return out


def unnecessary_diagnostics(
    lines: Explanation, pmap: PositionMap, threshold: float
) -> list[types.Diagnostic]:
    """Hints on lines whose removal changes the target log-probability by under `threshold`."""
    out = []
    for span in lines.spans:
        if abs(span.score) >= threshold or not span.text.strip():
            continue
        n = len(span.token_indices)
        out.append(
            types.Diagnostic(
                range=pmap.range(span.start, span.end),
                message=(
                    f"No measurable effect on the answer (|Δ log P| = {abs(span.score):.3f} < "
                    f"{threshold} nats); removing it saves {n} token{'s' if n != 1 else ''}"
                ),
                severity=types.DiagnosticSeverity.Hint,
                tags=[types.DiagnosticTag.Unnecessary],
                source=SOURCE,
            )
        )
    return out


def message_diagnostic(
    pmap: PositionMap, message: str, severity: types.DiagnosticSeverity, start: int = 0
) -> types.Diagnostic:
    """A diagnostic on the first line of the prompt (errors and warnings)."""
    line = pmap.line_of(start)
    end = pmap.line_starts[line + 1] if line + 1 < len(pmap.line_starts) else len(pmap.text)
    return types.Diagnostic(
        range=pmap.range(start, max(start, end)),
        message=message,
        severity=severity,
        source=SOURCE,
    )


def level(score: float, max_abs: float) -> int:
    """0..4: the heat level of a score relative to the largest |score|."""
    return min(4, int(5 * abs(score) / max_abs)) if max_abs else 0


def semantic_tokens(
    expl: Explanation, pmap: PositionMap, lo: int = 0, hi: int | None = None
) -> list[int]:
    """LSP-encoded semantic tokens: type = sign, one modifier = level (five levels each way),
    for the spans that overlap [lo, hi)."""
    max_abs = _max_abs(expl)
    hi = len(pmap.text) if hi is None else hi
    seen: set[tuple[int, int]] = set()
    pieces = []
    for span in sorted(expl.spans, key=lambda s: (s.start, s.end)):
        if (span.start, span.end) in seen or span.score == 0 or span.end <= lo or span.start >= hi:
            continue
        seen.add((span.start, span.end))
        kind = 0 if span.score > 0 else 1
        for a, b in pmap.line_segments(span.start, span.end):
            pieces.append((a, b, kind, 1 << level(span.score, max_abs)))
    data: list[int] = []
    prev_line = prev_col = 0
    last_end = -1
    for a, b, kind, mods in sorted(pieces):
        if a < last_end:  # overlapping spans (rare): keep the first
            continue
        last_end = b
        start, end = pmap.position(a), pmap.position(b)
        delta_line = start.line - prev_line
        delta_col = start.character - prev_col if delta_line == 0 else start.character
        data += [delta_line, delta_col, end.character - start.character, kind, mods]
        prev_line, prev_col = start.line, start.character
    return data


def inlay_hints(expl: Explanation, pmap: PositionMap, top: int = 5) -> list[types.InlayHint]:
    """Scores after the strongest spans."""
    hints = []
    for span in expl.ranked_spans()[:top]:
        hints.append(
            types.InlayHint(
                position=pmap.position(span.end),
                label=f"{span.score:+.2f}",
                kind=types.InlayHintKind.Parameter,
                padding_left=True,
                tooltip=f"{expl.method} score, #{rank_of(expl, span)} of {len(expl.spans)}",
            )
        )
    return hints


def code_lenses(
    uri: str, expl: Explanation | None, pmap: PositionMap, body_start: int, state: str
) -> list[types.CodeLens]:
    """On the prompt's first line: what is explained (or the state) and the commands."""
    line = pmap.line_of(body_start)
    where = types.Range(
        start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
    )
    if expl is not None:
        title = (
            f"promptxray: {expl.target.text!r} P={format_prob(expl.target.prob)} · {expl.method} · "
            f"{expl.wall_time_s:.1f}s"
        )
    else:
        title = f"promptxray: {state}"
    commands = [
        (title, "promptxray.explain"),
        ("Re-explain", "promptxray.explain"),
        ("Explain with…", "promptxray.explainWith"),
        ("Set target…", "promptxray.setTarget"),
    ]
    return [
        types.CodeLens(range=where, command=types.Command(title=t, command=c, arguments=[uri]))
        for t, c in commands
    ]
