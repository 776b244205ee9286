"""Explanation -> LSP: hovers, diagnostics, semantic tokens, inlay hints and code lenses.

Pure functions of an `Explanation` and the document text. Every sentence comes from the
interpretation layer (`promptxray.explainers.nl`) in the user's language, with the one
"no measurable effect" threshold (setting `unnecessaryThreshold`); this module only lays the
sentences and figures out as LSP objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from lsprotocol import types

from promptxray.explainers import nl
from promptxray.explainers.nl.front_text import front_words, lens_title, why_not_title
from promptxray.explainers.types import STRUCTURE_GRANULARITIES, Explanation, Span
from promptxray.server.positions import PositionMap

if TYPE_CHECKING:
    from promptxray.explainers.alternatives import Alternative

SOURCE = "promptxray"
TOKEN_TYPES = ["xrayPositive", "xrayNegative"]
TOKEN_MODIFIERS = ["level1", "level2", "level3", "level4", "level5"]
LEGEND = types.SemanticTokensLegend(token_types=TOKEN_TYPES, token_modifiers=TOKEN_MODIFIERS)
TOP_DRIVERS = 3
DRIVER_SHARE = 0.2  # a driver diagnostic needs at least this share of the largest |score|
SHOW_REPORT = "promptxray.showReport"  # the command behind the hover's "Full report" link
WHY_NOT = "promptxray.whyNot"  # re-explain why the answer rather than a foil


def _max_abs(expl: Explanation) -> float:
    return max((abs(s.score) for s in expl.spans), default=0.0) or 1.0


def escape_md(text: str) -> str:
    """Plain text inside Markdown: keep line breaks, neutralise emphasis, links and headings."""
    for ch in "\\*_`[]<>":
        text = text.replace(ch, "\\" + ch)
    text = re.sub(r"^( {0,3})(#{1,6})(?=\s|$)", r"\1\\\2", text, flags=re.MULTILINE)
    return text.replace("\n", "  \n")


def _code(text: str) -> str:
    """`text` as inline code, whatever backticks it holds."""
    text = " ".join(text.split()) or repr(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def command_link(title: str, command: str, arguments: list[object]) -> str:
    """A Markdown link that runs a command (VS Code's `command:` URI form)."""
    return f"[{title}](command:{command}?{quote(json.dumps(arguments))})"


def hover_markdown(
    uri: str,
    expl: Explanation,
    index: int,
    lang: str = "en",
    threshold: float = nl.NO_EFFECT_NATS,
    source: str | None = None,
) -> str:
    """The hover of one span, readable in three seconds: the span's effect and rank, the run
    (method and raw score, backend, model, time), a short summary of the whole prompt with the
    one faithfulness verdict, the model's own account in one line, and a link to the report.
    `source`, the document's text, gives a redundant part's partner its line number."""
    span = expl.spans[index]
    lines = [
        f"{_code(span.text)} · {escape_md(nl.span_line(expl, index, lang, threshold, source))}",
        f"{expl.method} score {span.score:+.3g} · {expl.backend} · {expl.model} · "
        f"{expl.wall_time_s:.2f} s",
        escape_md(nl.summary(expl, lang, threshold)),
    ]
    note = nl.stage_note(expl, lang)
    if note:  # an early stage of an anytime explanation: say what it is, what still runs
        lines.insert(0, f"*{escape_md(note)}*")
    if expl.self_explanation is not None:
        lines.append(escape_md(nl.self_explanation_line(expl.self_explanation, lang)))
    lines.append(command_link(front_words(lang)["report_link"], SHOW_REPORT, [uri]))
    return "\n\n".join(lines)


def driver_diagnostics(
    expl: Explanation, pmap: PositionMap, lang: str = "en", threshold: float = nl.NO_EFFECT_NATS
) -> list[types.Diagnostic]:
    """Information on the spans that raise the answer's probability most."""
    quiet = set(nl.no_effect(expl, threshold))
    cutoff = DRIVER_SHARE * _max_abs(expl)
    ranked = sorted(range(len(expl.spans)), key=lambda i: -abs(expl.spans[i].score))
    top = [i for i in ranked if expl.spans[i].score > 0][:TOP_DRIVERS]
    return [
        types.Diagnostic(
            range=pmap.range(expl.spans[i].start, expl.spans[i].end),
            message=nl.span_line(expl, i, lang, threshold, pmap.text),
            severity=types.DiagnosticSeverity.Information,
            source=SOURCE,
        )
        for i in top
        if expl.spans[i].score >= cutoff and i not in quiet
    ]


def part_diagnostics(
    expl: Explanation, pmap: PositionMap, lang: str = "en", threshold: float = nl.NO_EFFECT_NATS
) -> list[types.Diagnostic]:
    """Structure-level granularities (sentence, section, message, example, variable): one
    Information diagnostic per part, since a prompt has few parts and each one's effect is
    the answer (a variable used twice sits on its first use)."""
    return [
        types.Diagnostic(
            range=pmap.range(span.start, span.end),
            message=nl.span_line(expl, i, lang, threshold, pmap.text),
            severity=types.DiagnosticSeverity.Information,
            source=SOURCE,
        )
        for i, span in enumerate(expl.spans)
    ]


def result_diagnostics(
    expl: Explanation, pmap: PositionMap, lang: str = "en", threshold: float = nl.NO_EFFECT_NATS
) -> list[types.Diagnostic]:
    """The diagnostics of a result: one per part at the structure levels, else the drivers."""
    if expl.granularity in STRUCTURE_GRANULARITIES:
        return part_diagnostics(expl, pmap, lang, threshold)
    return driver_diagnostics(expl, pmap, lang, threshold)


def pair_diagnostics(
    uri: str, expl: Explanation, pmap: PositionMap, lang: str = "en"
) -> list[types.Diagnostic]:
    """One diagnostic per redundant or conflicting pair (`Explanation.pairs`), on its first
    part, its related information at the other: a Warning for parts that pull against each
    other, Information for parts that say the same thing."""
    out = []
    for pair in expl.pairs:
        conflict = pair.kind == "conflict"
        other = types.Location(uri=uri, range=pmap.range(pair.second[0], pair.second[1]))
        out.append(
            types.Diagnostic(
                range=pmap.range(pair.first[0], pair.first[1]),
                message=nl.pair_sentence(expl, pair, lang, pmap.text),
                severity=(
                    types.DiagnosticSeverity.Warning
                    if conflict
                    else types.DiagnosticSeverity.Information
                ),
                code=pair.kind,
                source=SOURCE,
                related_information=[
                    types.DiagnosticRelatedInformation(
                        location=other, message=nl.pair_related(expl, pair, lang)
                    )
                ],
            )
        )
    return out


def unnecessary_diagnostics(
    lines: Explanation, pmap: PositionMap, threshold: float, lang: str = "en"
) -> list[types.Diagnostic]:
    """Hints (tagged unnecessary, shown faded) on the lines with no measurable effect."""
    return [
        types.Diagnostic(
            range=pmap.range(lines.spans[i].start, lines.spans[i].end),
            message=nl.no_effect_line(lines, i, lang, threshold),
            severity=types.DiagnosticSeverity.Hint,
            tags=[types.DiagnosticTag.Unnecessary],
            source=SOURCE,
        )
        for i in nl.no_effect(lines, threshold)
        if lines.spans[i].text.strip()
    ]


def explain_prompt_lens(
    uri: str, pmap: PositionMap, start: int, prompt_line: int, lang: str = "en"
) -> types.CodeLens:
    """ "Explain this prompt" above a prompt found in a code file."""
    line = pmap.line_of(start)
    at = types.Position(line=line, character=0)
    return types.CodeLens(
        range=types.Range(start=at, end=at),
        command=types.Command(
            title=front_words(lang)["lens_explain_prompt"],
            command="promptxray.explain",
            arguments=[uri, {"prompt_line": prompt_line}],
        ),
    )


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


def _places(expl: Explanation, span: Span, text: str) -> list[tuple[int, int]]:
    """Where a span is coloured: its own range, and each later run of its tokens when they lie
    apart in the file (a variable used twice: the span sits on its first use)."""
    places = [(span.start, span.end)]
    runs: list[list[int]] = []
    for i in span.token_indices:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs[1:]:
        a = min(expl.tokens[i].start for i in run)
        b = max(expl.tokens[i].end for i in run)
        piece = text[a:b]
        if piece.strip():
            a, b = a + len(piece) - len(piece.lstrip()), b - len(piece) + len(piece.rstrip())
        places.append((a, b))
    return places


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
        for start, end in _places(expl, span, pmap.text):
            for a, b in pmap.line_segments(start, end):
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


def inlay_hints(
    expl: Explanation,
    pmap: PositionMap,
    top: int = 5,
    lang: str = "en",
    threshold: float = nl.NO_EFFECT_NATS,
) -> list[types.InlayHint]:
    """Scores after the strongest spans; the tooltip is the span's line."""
    ranked = sorted(range(len(expl.spans)), key=lambda i: -abs(expl.spans[i].score))[:top]
    return [
        types.InlayHint(
            position=pmap.position(expl.spans[i].end),
            label=f"{expl.spans[i].score:+.2f}",
            kind=types.InlayHintKind.Parameter,
            padding_left=True,
            tooltip=nl.span_line(expl, i, lang, threshold, pmap.text),
        )
        for i in ranked
    ]


def code_lenses(
    uri: str,
    expl: Explanation | None,
    pmap: PositionMap,
    body_start: int,
    state: str,
    foils: Sequence[Alternative] = (),
    lang: str = "en",
    prompt_line: int | None = None,
) -> list[types.CodeLens]:
    """On the prompt's first line: what is explained (or the state) and the commands; with
    `foils` (the model's own alternative answers), a "why not …?" lens for each (its
    argument: the alternative's whole text).
    `prompt_line`: the prompt of a code file they are about (its 1-based line)."""
    line = pmap.line_of(body_start)
    where = types.Range(
        start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
    )
    t = front_words(lang)
    again: list[object] = [uri] if prompt_line is None else [uri, {"prompt_line": prompt_line}]
    commands: list[tuple[str, str, list[object]]] = [
        (lens_title(expl, state, lang), "promptxray.explain", again),
        (t["lens_reexplain"], "promptxray.explain", again),
        (t["lens_explain_with"], "promptxray.explainWith", [uri]),
        (t["lens_set_target"], "promptxray.setTarget", [uri]),
    ]
    if expl is not None:
        shown = expl.foil.text if expl.foil else None
        commands += [
            (why_not_title(f.text, f.prob, lang, f.sentence_start), WHY_NOT, [uri, f.text])
            for f in foils
            if f.text != shown
        ]
        if shown is not None:
            commands.append((t["lens_drop_foil"], WHY_NOT, [uri, None]))
    return [
        types.CodeLens(range=where, command=types.Command(title=t, command=c, arguments=a))
        for t, c, a in commands
    ]
