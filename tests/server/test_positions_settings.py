"""Server pieces without a model: UTF-16 positions and settings parsing."""

from __future__ import annotations

from dataclasses import replace

from lsprotocol import types

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


def test_which_settings_re_explain_and_which_only_re_show():
    base = Settings()
    assert replace(base, language="zh").explain_key() == base.explain_key()
    assert replace(base, language="zh").show_key() != base.show_key()
    assert replace(base, unnecessaryThreshold=1.0).explain_key() == base.explain_key()
    on = replace(base, selfExplain=True)
    assert on.explain_key() != base.explain_key()  # the model is asked why: a new result
    assert replace(on, language="zh").explain_key() != on.explain_key()  # asked in Chinese
