"""Tests of the text and HTML renderers on hand-built explanations (no model needed)."""

from __future__ import annotations

import math
import re
from typing import Any

from promptxray.explainers.render import render_html, render_text, score_levels
from promptxray.explainers.types import Explanation, Span, Target, TargetToken, Token

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SOURCE = "---\nmodel: tiny\n---\nThe capital of France is\nParis, said the atlas.\n"


def make_expl(source: str, parts: list[tuple[Any, float | None]], **kw: Any) -> Explanation:
    """An Explanation whose spans are `parts`: (substring or (start, end), score)."""
    spans, tokens = [], []
    for i, (where, score) in enumerate(parts):
        if isinstance(where, str):
            start = source.index(where)
            end = start + len(where)
        else:
            start, end = where
        text = source[start:end]
        tokens.append(Token(i, text, start, end, 100 + i, text, score))
        spans.append(Span(text, start, end, score, [i]))
    target = Target(" Paris", [TargetToken(" Paris", 7, math.log(0.83))], math.log(0.83), False)
    fields: dict[str, Any] = dict(
        method="occlusion",
        backend="torch",
        model="tiny/model",
        granularity="word",
        target=target,
        tokens=tokens,
        spans=spans,
        input_tokens=len(tokens),
        context_length=2048,
        wall_time_s=1.5,
        forward_passes=6,
        sequences_scored=6,
        metrics={"completeness_error": 0.01},
    )
    fields.update(kw)
    return Explanation(**fields)


PARTS: list[tuple[Any, float | None]] = [
    ("The", 0.1),
    ("capital", 1.2),
    ("of", -0.05),
    ("France", 2.5),
    ("is", 0.3),
    ("atlas", -0.9),
]


def test_plain_text_has_whole_source_brackets_and_no_escapes() -> None:
    out = render_text(make_expl(SOURCE, PARTS), SOURCE, color=False, top_k=2)
    assert "\x1b" not in out
    assert "[[France]]" in out and "[[capital]]" in out
    assert "[[atlas]]" not in out and "[[The]]" not in out
    assert SOURCE.replace("France", "[[France]]").replace("capital", "[[capital]]") in out
    assert "P=0.83" in out and "occlusion" in out and "tiny/model" in out
    # figures are said in words, by the summary or the report the CLI prints after this
    assert "completeness_error" not in out


def test_html_carries_the_full_report() -> None:
    expl = make_expl(SOURCE, PARTS)
    page = render_html(expl, SOURCE)
    assert "<h2>Report</h2>" in page and "The model&#x27;s answer &quot;" in page
    assert "Top drivers: removing" in page  # make_expl's method is occlusion: removal wording
    assert "的概率为" in render_html(expl, SOURCE, lang="zh")


def test_colored_text_strips_to_plain_layout() -> None:
    expl = make_expl(SOURCE, PARTS)
    colored = render_text(expl, SOURCE, color=True)
    assert "\x1b[" in colored
    plain = render_text(expl, SOURCE, color=False)
    assert ANSI.sub("", colored) == plain.replace("[[", "").replace("]]", "")
    assert SOURCE in ANSI.sub("", colored)
    assert colored.count("48;2;") == len(PARTS)  # every scored span is tinted
    for line in colored.splitlines():  # every coloured line resets before it ends
        if "\x1b[48" in line or ";48;" in line:
            assert line.endswith("\x1b[0m") or line.rindex("\x1b[0m") > line.rindex(";48;")


def test_color_reset_at_line_ends_for_multiline_span() -> None:
    src = "first line\nsecond line\n"
    out = render_text(make_expl(src, [((0, 22), 1.0)], granularity="line"), src)
    assert "first line\x1b[0m\n" in out
    assert ANSI.sub("", out).count("first line\nsecond line\n") == 1


def test_top_drivers_ordered_by_abs_score() -> None:
    out = render_text(make_expl(SOURCE, PARTS), SOURCE, color=False, top_k=4)
    drivers = out.split("Top drivers:")[1]
    order = [drivers.index(repr(w)) for w in ("France", "capital", "atlas", "is")]
    assert order == sorted(order)
    assert "+2.500" in drivers and "-0.900" in drivers
    assert "'The'" not in drivers
    assert "4:16" in drivers  # France: line 4, column 16


def test_negative_and_positive_colors_differ() -> None:
    src = "good bad"
    out = render_text(make_expl(src, [("good", 1.0), ("bad", -1.0)]), src)
    pos_code = re.search(r"(\x1b\[[0-9;]*m)good", out)
    neg_code = re.search(r"(\x1b\[[0-9;]*m)bad", out)
    assert pos_code and neg_code and pos_code.group(1) != neg_code.group(1)
    page = render_html(make_expl(src, [("good", 1.0), ("bad", -1.0)]), src)
    pos_bg = re.search(r'background: ([^"]+)" title="[^"]*">good<', page)
    neg_bg = re.search(r'background: ([^"]+)" title="[^"]*">bad<', page)
    assert pos_bg and neg_bg and pos_bg.group(1) != neg_bg.group(1)


def test_html_escapes_user_text() -> None:
    src = "Say <script>alert(1)</script> & stop"
    expl = make_expl(src, [("<script>", 1.0), ("&", -0.5)], model="evil<b>&model")
    expl.target.text = "<img src=x>"
    page = render_html(expl, src, title="<i>t</i>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&amp;</span> stop" in page and "evil&lt;b&gt;&amp;model" in page
    assert "<img" not in page and "<i>t</i>" not in page
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "background: #fff" in page


def test_html_titles_carry_score_and_rank() -> None:
    page = render_html(make_expl(SOURCE, PARTS), SOURCE)
    assert 'title="score +2.500 — rank #1 of 6"' in page
    assert 'title="score -0.050 — rank #6 of 6"' in page
    for _, score in PARTS:
        assert f"score {score:+.3f} — rank #" in page
    assert page.count('class="tok"') == len(PARTS)


def test_cjk_and_emoji_survive() -> None:
    src = "東京は日本の首都です 🗼✨\nOK"
    expl = make_expl(src, [("東京", 1.0), ("🗼", -0.4), ("首都", 0.2)])
    assert src in ANSI.sub("", render_text(expl, src))
    assert "[[東京]]" in render_text(expl, src, color=False)
    page = render_html(expl, src)
    assert ">東京</span>" in page and ">🗼</span>" in page and "✨" in page


def test_zero_and_none_scores_do_not_crash() -> None:
    src = "alpha beta gamma"
    expl = make_expl(src, [("alpha", 0.0), ("beta", None), ("gamma", 0.0)])
    for color in (True, False):
        out = render_text(expl, src, color=color)
        assert "alpha beta gamma" in out and "[[" not in out and "\x1b" not in out
    assert "rank #" in render_html(expl, src)
    mixed = make_expl(src, [("alpha", 0.0), ("beta", None), ("gamma", -1.0)])
    assert "[[gamma]]" in render_text(mixed, src, color=False)
    assert score_levels(mixed.spans) == {0: 0, 1: 0, 2: -5}


def test_duplicate_placeholder_spans_render_once_with_summed_score() -> None:
    src = "Translate: hello world"
    parts: list[tuple[Any, float | None]] = [("Translate", 0.2), ("hello", 0.5), ("hello", 0.7)]
    expl = make_expl(src, parts)
    plain = render_text(expl, src, color=False, top_k=1)
    assert plain.count("[[hello]]") == 1 and "[[hello]][[hello]]" not in plain
    assert "+1.200" in plain
    colored = ANSI.sub("", render_text(expl, src))
    assert colored.count("hello") == 2  # once in the source, once in the drivers
    page = render_html(expl, src)
    assert page.count(">hello</span>") == 1
    assert 'title="score +1.200 — rank #1 of 2"' in page


def test_score_levels_scale() -> None:
    spans = [Span("a", 0, 1, 2.0), Span("b", 1, 2, -1.0), Span("c", 2, 3, 0.0)]
    assert score_levels(spans) == {0: 5, 1: -3, 2: 0}
    assert score_levels([spans[0], Span("d", 3, 4, 0.01)]) == {0: 5, 1: 1}
    assert score_levels([]) == {}
