"""Render an `Explanation` as terminal text (ANSI colours or CI-friendly markers) or as HTML.

Pure functions of (explanation, source text): no I/O and no torch, so the CLI, the server and
the chat UI can all share them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

from promptxray.explainers.types import Explanation, Span

RESET = "\x1b[0m"
POS_RGB = (214, 39, 40)  # red: the part raised log P(target)
NEG_RGB = (31, 119, 180)  # blue: the part lowered it
_TEXT_MAX_MIX = 0.7  # strongest terminal tint; black text stays readable on it


def _val(span: Span) -> float:
    """A span's score as a finite float (None, NaN and inf count as 0)."""
    score = span.score
    if score is None or not math.isfinite(score):
        return 0.0
    return float(score)


def _merge(spans: Sequence[Span], source: str) -> list[Span]:
    """Valid spans sorted by position; duplicates (same start/end, from a filled-in placeholder)
    become one span with the summed score. Out-of-range and overlapping spans are dropped."""
    groups: dict[tuple[int, int], Span] = {}
    for s in spans:
        if not (0 <= s.start < s.end <= len(source)):
            continue
        key = (s.start, s.end)
        prev = groups.get(key)
        if prev is None:
            groups[key] = Span(source[s.start : s.end], s.start, s.end, _val(s), [*s.token_indices])
        else:
            prev.score += _val(s)
            prev.token_indices.extend(s.token_indices)
    merged: list[Span] = []
    for key in sorted(groups):
        if merged and key[0] < merged[-1].end:
            continue
        merged.append(groups[key])
    return merged


def score_levels(spans: Sequence[Span], n_levels: int = 5) -> dict[int, int]:
    """Map each span's index to a signed intensity level in [-n_levels, n_levels], scaled by the
    largest |score|; only a zero score maps to 0, so every scored part shows at least faintly."""
    max_abs = max((abs(_val(s)) for s in spans), default=0.0)
    if max_abs == 0.0:
        return {i: 0 for i in range(len(spans))}
    return {
        i: int(math.copysign(math.ceil(abs(_val(s)) / max_abs * n_levels - 1e-9), _val(s)))
        for i, s in enumerate(spans)
    }


def _ranked(merged: list[Span]) -> list[Span]:
    """Most to least influential by |score|; ties keep source order."""
    return sorted(merged, key=lambda s: (-abs(s.score), s.start))


def _where(source: str, offset: int) -> str:
    """`line:col` (1-based) of a character offset."""
    line = source.count("\n", 0, offset) + 1
    return f"{line}:{offset - source.rfind(chr(10), 0, offset)}"  # rfind is -1 on line 1


def _fmt(score: float) -> str:
    """Signed score, e.g. `+1.234`; tiny values in scientific notation so they do not read 0."""
    if score == 0.0 or abs(score) >= 1e-3:
        return f"{score:+.3f}"
    return f"{score:+.2e}"


def format_prob(p: float) -> str:
    """A probability for people: two decimals, or two significant digits when small, never a
    bare 0.00 (shared by the terminal, HTML, the server's hovers and the chat)."""
    if p >= 0.01:
        return f"{p:.2f}"
    return "0" if p == 0 else f"{p:.1e}"


FAITHFULNESS_KEYS = (
    ("comprehensiveness", "comprehensiveness", "↑"),
    ("sufficiency", "sufficiency", "↓"),
    ("deletion_auc", "deletion AUC", "↓"),
    ("insertion_auc", "insertion AUC", "↑"),
)


def faithfulness_line(expl: Explanation) -> str | None:
    """One line of the measured faithfulness figures (arrows: which way is more faithful),
    or None when the explanation carries none."""
    parts = [
        f"{label} {expl.metrics[key]:.3f}{arrow}"
        for key, label, arrow in FAITHFULNESS_KEYS
        if key in expl.metrics
    ]
    if not parts:
        return None
    line = "Faithfulness: " + " · ".join(parts)
    if "comprehensiveness_logprob" in expl.metrics and "sufficiency_logprob" in expl.metrics:
        line += (
            f" (in log-probability: {expl.metrics['comprehensiveness_logprob']:.2f}↑ / "
            f"{expl.metrics['sufficiency_logprob']:.2f}↓ nats)"
        )
    return line


_FAITH_LABELS = [(k, label) for k, label, _ in FAITHFULNESS_KEYS] + [
    ("comprehensiveness_logprob", ""),
    ("sufficiency_logprob", ""),
]


def auto_reason(expl: Explanation) -> str | None:
    """Why `method="auto"` chose this method, when it did."""
    auto = expl.details.get("auto")
    return f"Chosen by auto: {auto['reason']}" if isinstance(auto, dict) else None


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mix(rgb: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """Blend white towards `rgb` by `amount` in [0, 1]."""
    r, g, b = (round(255 + (c - 255) * amount) for c in rgb)
    return r, g, b


def _paint(text: str, code: str) -> str:
    """Wrap `text` in an SGR code, resetting before every line break so colours never bleed."""
    pieces = text.split("\n")
    return "\n".join(f"{code}{p}{RESET}" if p else p for p in pieces)


def _header(expl: Explanation) -> str:
    return (
        f"promptxray · {expl.method} · {expl.model} ({expl.backend}, {expl.granularity}) · "
        f"target {expl.target.text!r} P={format_prob(expl.target.prob)} · "
        + (
            f"rather than {expl.foil.text!r} P={format_prob(expl.foil.prob)} · "
            if expl.foil
            else ""
        )
        + f"{expl.wall_time_s:.2f}s · {expl.forward_passes} forward passes"
    )


def _foil_rows(expl: Explanation, esc: Callable[[str], str]) -> list[tuple[str, str]]:
    """The HTML summary's row for a contrastive explanation's foil (none without one)."""
    if expl.foil is None:
        return []
    foil = expl.foil
    value = f"<code>{esc(repr(foil.text))}</code>, P = {format_prob(foil.prob)}"
    return [("Rather than", f"{value} (log P = {foil.logprob:.3f})")]


def render_text(expl: Explanation, source: str, color: bool = True, top_k: int = 5) -> str:
    """The whole source with spans tinted by score (or top spans marked `[[...]]` when
    `color=False`), followed by the top drivers. The figures and their meaning are the
    report's (`nl.describe`), printed after this by the CLI, so they are stated once."""
    merged = _merge(expl.spans, source)
    ranked = _ranked(merged)
    top = [s for s in ranked if s.score != 0.0][: max(0, top_k)]
    top_keys = {(s.start, s.end) for s in top}
    levels = score_levels(merged)
    n_levels = 5

    out: list[str] = []
    pos = 0
    for i, s in enumerate(merged):
        out.append(source[pos : s.start])
        text = source[s.start : s.end]
        if color and levels[i] != 0:
            base = POS_RGB if levels[i] > 0 else NEG_RGB
            r, g, b = _mix(base, _TEXT_MAX_MIX * abs(levels[i]) / n_levels)
            out.append(_paint(text, f"\x1b[38;2;0;0;0;48;2;{r};{g};{b}m"))
        elif not color and (s.start, s.end) in top_keys:
            out.append(f"[[{text}]]")
        else:
            out.append(text)
        pos = s.end
    out.append(source[pos:])
    body = "".join(out)
    if not body.endswith("\n"):
        body += "\n"

    lines = ["Top drivers:"]
    rank_of = {(s.start, s.end): i + 1 for i, s in enumerate(ranked)}
    for s in top:
        where = _where(source, s.start)
        lines.append(
            f"  {rank_of[(s.start, s.end)]:>2}. {_short(s.text)!r:<30} {where:<8} {_fmt(s.score)}"
        )
    if not top:
        lines.append("  (none: every score is zero)")
    return f"{_header(expl)}\n\n{body}\n" + "\n".join(lines) + "\n"


def _bg(score: float, max_abs: float) -> str:
    """CSS background for a score: translucent red/blue, opacity by |score| / max |score|."""
    if score == 0.0 or max_abs == 0.0:
        return "transparent"
    r, g, b = POS_RGB if score > 0 else NEG_RGB
    return f"rgba({r}, {g}, {b}, {0.08 + 0.62 * abs(score) / max_abs:.3f})"


_CSS = """
:root { color-scheme: light; }
body { background: #fff; color: #111; margin: 2em auto; max-width: 60em; padding: 0 1em;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .6em; }
th { background: #f3f3f3; text-align: left; }
pre { background: #fff; color: #111; border: 1px solid #ccc; padding: 1em; overflow-x: auto;
      white-space: pre-wrap; font: 14px/1.6 ui-monospace, Menlo, Consolas, monospace; }
.tok { border-radius: 3px; } .num { text-align: right; font-family: ui-monospace, monospace; }
.legend span { display: inline-block; min-width: 4.5em; padding: .1em .3em; text-align: center;
               border: 1px solid #ddd; font-family: ui-monospace, monospace; font-size: 13px; }
"""


def render_html(expl: Explanation, source: str, title: str | None = None) -> str:
    """A self-contained HTML5 page: summary, tinted source with per-span tooltips, legend and
    top drivers. Everything taken from the user is escaped."""
    esc = html.escape
    merged = _merge(expl.spans, source)
    ranked = _ranked(merged)
    n = len(ranked)
    rank_of = {(s.start, s.end): i + 1 for i, s in enumerate(ranked)}
    max_abs = max((abs(s.score) for s in merged), default=0.0)
    heading = title if title is not None else f"promptxray: {expl.method} on {expl.model}"

    parts: list[str] = []
    pos = 0
    for s in merged:
        parts.append(esc(source[pos : s.start]))
        tip = f"score {_fmt(s.score)} — rank #{rank_of[(s.start, s.end)]} of {n}"
        parts.append(
            f'<span class="tok" style="background: {_bg(s.score, max_abs)}" '
            f'title="{esc(tip)}">{esc(source[s.start : s.end])}</span>'
        )
        pos = s.end
    parts.append(esc(source[pos:]))

    rows = [
        ("Target", f"<code>{esc(repr(expl.target.text))}</code>"),
        ("Probability", f"P = {format_prob(expl.target.prob)} (log P = {expl.target.logprob:.3f})"),
        *_foil_rows(expl, esc),
        ("Method", esc(expl.method)),
        ("Model", esc(expl.model)),
        ("Backend", esc(expl.backend)),
        ("Granularity", esc(expl.granularity)),
        ("Time", f"{expl.wall_time_s:.2f} s"),
        ("Forward passes", f"{expl.forward_passes} ({expl.sequences_scored} sequences scored)"),
    ]
    rows += [(esc(k), f"{v:.4g}") for k, v in expl.metrics.items()]
    summary = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)

    steps = [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0]
    legend = "".join(
        f'<span style="background: {_bg(f * max_abs, max_abs)}">{_fmt(f * max_abs)}</span>'
        for f in steps
    )

    drivers: list[str] = []
    for s in ranked:
        if s.score == 0.0 or len(drivers) >= 20:
            break
        drivers.append(
            f'<tr><td class="num">{rank_of[(s.start, s.end)]}</td>'
            f"<td><code>{esc(repr(_short(s.text, 60)))}</code></td>"
            f'<td class="num">{_where(source, s.start)}</td>'
            f'<td class="num">{_fmt(s.score)}</td></tr>'
        )
    if not drivers:
        drivers.append('<tr><td colspan="4">none: every score is zero</td></tr>')
    pre, driver_rows = "".join(parts), "\n".join(drivers)

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(heading)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{esc(heading)}</h1>
<table class="summary">
{summary}
</table>
<h2>Prompt</h2>
<pre>
{pre}</pre>
<p class="legend">{legend}</p>
<p>Red parts raised the log-probability of the target; blue parts lowered it. Hover a part
for its score and rank. Uncoloured text (front matter, role markers) was not scored.</p>
<h2>Top drivers</h2>
<table>
<tr><th>#</th><th>Text</th><th>Line:col</th><th>Score</th></tr>
{driver_rows}
</table>
</body>
</html>
"""
