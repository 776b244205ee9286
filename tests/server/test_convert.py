"""Explanation -> LSP without a model: semantic tokens, hints, lenses and the hover's layout.
Every sentence must be the interpretation layer's (`nl`), with the threshold passed through."""

from __future__ import annotations

import json
import math
from urllib.parse import unquote

from lsprotocol import types

from promptxray.explainers import nl
from promptxray.explainers.alternatives import Alternative
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.types import Explanation, Span, Target, TargetToken
from promptxray.server import convert
from promptxray.server.positions import PositionMap

TEXT = "ab 日本\r\n😀 x👍🏽y\rlast"
URI = "file:///a.prompt"


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _explanation(
    spans: list[Span],
    granularity: str = "word",
    score_kind: ScoreKind = ScoreKind.REMOVAL,
    **extra,
) -> Explanation:
    target = Target(" x", [TargetToken(" x", 1, -0.5)], -0.5, True)
    return Explanation(
        "occlusion", "torch", "m", granularity, target, [], spans, 3, 10, 0.1, 2, 3,
        score_kind=score_kind, **extra,
    )  # fmt: skip


def test_semantic_tokens_are_utf16_relative_and_split_per_line():
    a, b = TEXT.index("日本"), TEXT.index("x👍🏽y")
    spans = [Span("日本", a, a + 2, 2.0), Span("x👍🏽y", b, b + 4, -1.0)]
    data = convert.semantic_tokens(_explanation(spans), PositionMap(TEXT))
    assert data == [
        0,
        utf16_len("ab "),
        2,
        0,
        1 << 4,  # strongest positive: level5
        1,
        utf16_len("😀 "),
        utf16_len("x👍🏽y"),
        1,
        1 << 2,  # negative, half as strong
    ]
    assert convert.LEGEND.token_types == ["xrayPositive", "xrayNegative"]


def test_unnecessary_hints_follow_the_threshold_and_speak_nl():
    text = "Keep this line\nfiller words here\nand this one\n"
    lines = [(0, 14, 0.9), (15, 32, 0.01), (33, 45, -0.2)]
    spans = [Span(text[a:b], a, b, s, [i, i + 1]) for i, (a, b, s) in enumerate(lines)]
    expl = _explanation(spans, granularity="line")
    diags = convert.unnecessary_diagnostics(expl, PositionMap(text), 0.05)
    (hint,) = diags
    assert hint.severity == types.DiagnosticSeverity.Hint
    assert hint.tags == [types.DiagnosticTag.Unnecessary]
    assert hint.range.start.line == 1
    assert hint.message == nl.no_effect_line(expl, 1, "en", 0.05)
    assert "0.010 < 0.050 nats" in hint.message and "saves 2 token(s)" in hint.message
    wider = convert.unnecessary_diagnostics(expl, PositionMap(text), 0.5, "zh")
    assert [d.range.start.line for d in wider] == [1, 2]
    assert wider[1].message == nl.no_effect_line(expl, 2, "zh", 0.5)
    unsigned = _explanation(spans, granularity="line", score_kind=ScoreKind.SALIENCE)
    assert convert.unnecessary_diagnostics(unsigned, PositionMap(text), 0.5) == []


def test_driver_diagnostics_are_span_lines_of_the_strongest_positive_spans():
    text = "alpha beta gamma delta"
    spans = [
        Span("alpha", 0, 5, 2.0),
        Span("beta", 6, 10, -3.0),
        Span("gamma", 11, 16, 0.1),
        Span("delta", 17, 22, 0.03),
    ]
    ablated = [-0.5 - s.score for s in spans]
    expl = _explanation(spans, ablated_logprob=ablated)
    diags = convert.driver_diagnostics(expl, PositionMap(text))
    assert [d.message for d in diags] == [nl.span_line(expl, 0)]
    assert diags[0].severity == types.DiagnosticSeverity.Information


def test_inlay_hints_and_code_lenses():
    text = "alpha beta gamma"
    spans = [Span("alpha", 0, 5, 0.5), Span("beta", 6, 10, -2.0), Span("gamma", 11, 16, 0.1)]
    expl = _explanation(spans)
    hints = convert.inlay_hints(expl, PositionMap(text), top=2)
    assert [h.label for h in hints] == ["-2.00", "+0.50"]
    assert hints[0].position == types.Position(line=0, character=10)
    assert hints[0].tooltip == nl.span_line(expl, 1)
    lenses = convert.code_lenses(URI, expl, PositionMap(text), 0, "ready")
    commands = [lens.command.command for lens in lenses if lens.command]
    assert "promptxray.explainWith" in commands and "promptxray.setTarget" in commands
    assert lenses[0].command is not None and "P=0.61" in lenses[0].command.title  # exp(-0.5)
    titles = [lens.command.title for lens in lenses if lens.command]
    assert titles[1:] == ["Re-explain", "Explain with…", "Set target…"]
    beta = Alternative("beta is the answer, and a long one at that.", math.log(0.25), 0, "end")
    zh = convert.code_lenses(URI, expl, PositionMap(text), 0, "ready", [beta], lang="zh")
    zh_titles = [lens.command.title for lens in zh if lens.command]
    assert "P=0.61" in zh_titles[0] and "重新解释" in zh_titles
    # a whole alternative answer, quoted short, with its probability; the argument: all of it
    assert "为什么不是“beta is the answer, and a l…”（P=0.25）？" in zh_titles
    why = [lens.command for lens in zh if lens.command and lens.command.title.startswith("为什么")]
    assert why[0].command == "promptxray.whyNot" and why[0].arguments == [URI, beta.text]


def test_hover_is_span_line_run_summary_and_a_report_link():
    spans = [Span("Say *hi* to [Bob]", 0, 17, 1.5), Span("# not a heading", 18, 33, 0.01)]
    metrics = {"comprehensiveness_logprob": 3.0, "sufficiency_logprob": 0.5}
    expl = _explanation(spans, "line", ablated_logprob=[-2.0, -0.51], metrics=metrics)
    hover = convert.hover_markdown(URI, expl, 0, "en", 0.05)
    first, run, summary, link = hover.split("\n\n")
    assert first.startswith("`Say *hi* to [Bob]` · #1 of 2 lines")  # "#1" is no heading
    plain = first.replace("\\", "")
    assert plain.endswith(nl.span_line(expl, 0, "en", 0.05))
    assert run == "occlusion score +1.5 · torch · m · 0.10 s"
    assert summary.replace("\\", "") == nl.summary(expl, "en", 0.05)
    assert "\\*hi\\*" in summary and "\\[Bob\\]" in summary  # no accidental emphasis or links
    assert summary.count("Faithfulness") == 1
    target = link[link.index("command:") : -1]
    assert target.startswith("command:" + convert.SHOW_REPORT + "?")
    assert json.loads(unquote(target.split("?", 1)[1])) == [URI]
    assert math.isclose(expl.ablated_prob(0) or 0, math.exp(-2.0))  # exp of the given float64


def test_hover_in_chinese_with_another_threshold():
    spans = [Span("a", 0, 1, 0.2), Span("b", 2, 3, 1.0)]
    expl = _explanation(spans)
    hover = convert.hover_markdown(URI, expl, 0, "zh", 0.5)
    assert nl.span_line(expl, 0, "zh", 0.5) in hover.replace("\\", "")
    assert nl.summary(expl, "zh", 0.5) in hover.replace("\\", "")


def test_rank_agreement_never_sends_nan():
    import numpy as np

    from promptxray.explainers.metrics import spearman
    from promptxray.server.compare import rank_agreement

    a = _explanation([Span("Hi", 0, 2, 1.0)])
    b = _explanation([Span("Hi", 0, 2, 0.5)])
    report = rank_agreement({"occlusion": a, "saliency": b})
    assert report["pairs"][0]["spearman"] is None and "n/a" in report["summary"]
    json.dumps(report, allow_nan=False)
    assert spearman(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == -1.0
