"""Render an `Explanation` as terminal text (ANSI colours or CI-friendly markers) or as HTML.

Pure functions of (explanation, source text): no I/O and no torch, so the CLI, the server and
the chat UI can all share them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

from promptxray.explainers.nl import NO_EFFECT_NATS, describe
from promptxray.explainers.nl.figures import finite_score, format_prob, format_signed, short
from promptxray.explainers.prompt.document import line_col
from promptxray.explainers.types import Explanation, Span

RESET = "\x1b[0m"
POS_RGB = (214, 39, 40)  # red: the part raised log P(target)
NEG_RGB = (31, 119, 180)  # blue: the part lowered it
_TEXT_MAX_MIX = 0.7  # strongest terminal tint; black text stays readable on it


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
            score = finite_score(s.score)
            groups[key] = Span(source[s.start : s.end], s.start, s.end, score, [*s.token_indices])
        else:
            prev.score += finite_score(s.score)
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
    scores = [finite_score(s.score) for s in spans]
    max_abs = max((abs(v) for v in scores), default=0.0)
    if max_abs == 0.0:
        return {i: 0 for i in range(len(spans))}
    return {
        i: int(math.copysign(math.ceil(abs(v) / max_abs * n_levels - 1e-9), v))
        for i, v in enumerate(scores)
    }


def _ranked(merged: list[Span]) -> list[Span]:
    """Most to least influential by |score|; ties keep source order."""
    return sorted(merged, key=lambda s: (-abs(s.score), s.start))


def _where(source: str, offset: int) -> str:
    """`line:col` (1-based) of a character offset."""
    line, col = line_col(source, offset)
    return f"{line}:{col}"


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
    `color=False`), followed by the top drivers. What the figures mean is said in words by
    `nl.summary` (the CLI prints it after this) and `nl.describe` (the full report)."""
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
        rank, text = rank_of[(s.start, s.end)], repr(short(s.text))
        lines.append(f"  {rank:>2}. {text:<30} {where:<8} {format_signed(s.score)}")
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


def render_html(
    expl: Explanation,
    source: str,
    title: str | None = None,
    lang: str = "en",
    threshold: float = NO_EFFECT_NATS,
) -> str:
    """A self-contained HTML5 page: summary, tinted source with per-span tooltips, legend, top
    drivers and the full report in `lang` (`nl.describe`). Everything from the user is escaped."""
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
        tip = f"score {format_signed(s.score)} — rank #{rank_of[(s.start, s.end)]} of {n}"
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
        f'<span style="background: {_bg(f * max_abs, max_abs)}">{format_signed(f * max_abs)}</span>'
        for f in steps
    )

    drivers: list[str] = []
    for s in ranked:
        if s.score == 0.0 or len(drivers) >= 20:
            break
        drivers.append(
            f'<tr><td class="num">{rank_of[(s.start, s.end)]}</td>'
            f"<td><code>{esc(repr(short(s.text, 60)))}</code></td>"
            f'<td class="num">{_where(source, s.start)}</td>'
            f'<td class="num">{format_signed(s.score)}</td></tr>'
        )
    if not drivers:
        drivers.append('<tr><td colspan="4">none: every score is zero</td></tr>')
    pre, driver_rows = "".join(parts), "\n".join(drivers)
    report = "\n".join(
        f"<p>{esc(line)}</p>" for line in describe(expl, lang, threshold=threshold).splitlines()
    )

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
<h2>Report</h2>
<div class="report">
{report}
</div>
</body>
</html>
"""
