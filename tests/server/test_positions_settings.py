"""Server pieces without a model: UTF-16 positions, settings parsing, semantic-token encoding."""

from __future__ import annotations

from lsprotocol import types

from promptxray.explainers.types import Explanation, Span, Target, TargetToken
from promptxray.server import convert
from promptxray.server.positions import PositionMap
from promptxray.server.settings import Settings, parse_settings

TEXT = "ab 日本\r\n😀 x👍🏽y\rlast"


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def test_positions_count_utf16_code_units_and_all_line_ends():
    pmap = PositionMap(TEXT)
    for offset in range(len(TEXT) + 1):
        pos = pmap.position(offset)
        line_start = pmap.line_starts[pos.line]
        assert pos.character == utf16_len(TEXT[line_start:offset])
        assert pmap.offset(pos) == offset
    x = TEXT.index("x")
    assert pmap.position(x) == types.Position(line=1, character=utf16_len("😀 "))
    assert pmap.position(TEXT.index("last")) == types.Position(line=2, character=0)


def test_line_segments_split_spans_at_line_breaks():
    pmap = PositionMap(TEXT)
    pieces = pmap.line_segments(0, TEXT.index("x") + 1)
    assert [TEXT[a:b] for a, b in pieces] == ["ab 日本", "😀 x"]


def test_settings_defaults_and_warnings():
    settings, warnings = parse_settings(
        {"promptxray": {"method": "saliency", "debounceMs": "soon", "bogus": 1, "inlayHints": True}}
    )
    assert settings.method == "saliency" and settings.inlayHints is True
    assert settings.debounceMs == Settings().debounceMs
    assert any("debounceMs" in w for w in warnings) and any("bogus" in w for w in warnings)
    same, warnings = parse_settings("not an object", settings)
    assert same == settings and warnings
    again, warnings = parse_settings({"method": "nope", "granularity": "paragraph"}, settings)
    assert again.method == "occlusion" and again.granularity == Settings().granularity
    assert len(warnings) == 2


def _explanation(text: str, spans: list[Span]) -> Explanation:
    target = Target(" x", [TargetToken(" x", 1, -0.5)], -0.5, True)
    return Explanation("occlusion", "torch", "m", "word", target, [], spans, 3, 10, 0.1, 2, 3)


def test_semantic_tokens_are_utf16_relative_and_split_per_line():
    a, b = TEXT.index("日本"), TEXT.index("x👍🏽y")
    spans = [Span("日本", a, a + 2, 2.0), Span("x👍🏽y", b, b + 4, -1.0)]
    data = convert.semantic_tokens(_explanation(TEXT, spans), PositionMap(TEXT))
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


def test_unnecessary_hints_only_on_lines_under_the_threshold():
    text = "Keep this line\nfiller words here\nand this one\n"
    lines = [(0, 14, 0.9), (15, 32, 0.01), (33, 45, -0.2)]
    spans = [Span(text[a:b], a, b, s, [i, i + 1]) for i, (a, b, s) in enumerate(lines)]
    diags = convert.unnecessary_diagnostics(_explanation(text, spans), PositionMap(text), 0.05)
    assert len(diags) == 1
    (hint,) = diags
    assert hint.severity == types.DiagnosticSeverity.Hint
    assert hint.tags == [types.DiagnosticTag.Unnecessary]
    assert hint.range.start.line == 1 and "saves 2 tokens" in hint.message


def test_inlay_hints_and_code_lenses():
    text = "alpha beta gamma"
    spans = [Span("alpha", 0, 5, 0.5), Span("beta", 6, 10, -2.0), Span("gamma", 11, 16, 0.1)]
    expl = _explanation(text, spans)
    hints = convert.inlay_hints(expl, PositionMap(text), top=2)
    assert [h.label for h in hints] == ["-2.00", "+0.50"]
    assert hints[0].position == types.Position(line=0, character=10)
    lenses = convert.code_lenses("file:///a.prompt", expl, PositionMap(text), 0, "ready")
    commands = [lens.command.command for lens in lenses if lens.command]
    assert "promptxray.explainWith" in commands and "promptxray.setTarget" in commands
    assert "P=0.61" in lenses[0].command.title  # exp(-0.5)


def test_rank_agreement_never_sends_nan():
    import json

    import numpy as np

    from promptxray.explainers.metrics import spearman
    from promptxray.server.compare import rank_agreement

    a = _explanation("Hi", [Span("Hi", 0, 2, 1.0)])
    b = _explanation("Hi", [Span("Hi", 0, 2, 0.5)])
    report = rank_agreement({"occlusion": a, "saliency": b})
    assert report["pairs"][0]["spearman"] is None and "n/a" in report["summary"]
    json.dumps(report, allow_nan=False)
    assert spearman(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == -1.0
