"""The words about anytime stages (`nl/stage_text.py`): every front end's short tag states the
stage's parts, place and fidelity (an approximate stage its measured error), and the note says
what the stage is and what still runs, in English and Chinese; a final result has neither.
Explanations are made by hand, so every figure checked here is known."""

from __future__ import annotations

import string
from dataclasses import replace

import pytest

from promptxray.explainers import nl
from promptxray.explainers.details import StageFidelity, StageInfo
from promptxray.explainers.nl.stage_text import STAGE_TEMPLATES
from promptxray.explainers.types import Explanation
from tests.explainers.nl.test_nl import CJK, hand_made

BF16 = StageFidelity(exact=False, max_error=0.2345, checked=10, precision="bf16")


def staged(stage: StageInfo | None) -> Explanation:
    """hand_made's six parts (one of them, 0.01, under the no-effect threshold) at `stage`."""
    expl = hand_made()
    expl.stage = stage
    return expl


BLOCKS = StageInfo("blocks", 1, 3, False, 3.14, "block")
LINES_BF16 = StageInfo("lines_bf16", 2, 4, False, 9.04, "line", BF16, pending_lines=12)
LINES = StageInfo("lines", 2, 3, False, 20.37, "line", pending_lines=12)
REFINED = StageInfo("refined", 3, 3, True, 31.0, "auto")


@pytest.mark.parametrize(
    ("stage", "en", "zh"),
    [
        (BLOCKS, "[blocks 1/3 · exact] ", "[分块 1/3 · 精确] "),
        (LINES_BF16, "[lines 2/4 · bf16 ±0.23 nats] ", "[逐行 2/4 · bf16 ±0.23 nats] "),
        (LINES, "[lines 2/3 · exact] ", "[逐行 2/3 · 精确] "),
    ],
)
def test_an_early_stage_is_tagged_with_its_parts_place_and_fidelity(stage, en, zh):
    expl = staged(stage)
    assert nl.stage_tag(expl) == en and nl.stage_tag(expl, "zh") == zh
    # every front end's line about a span starts with it (hover, diagnostic, inlay hint)
    assert nl.span_line(expl, 0).startswith(en) and nl.span_line(expl, 0, "zh").startswith(zh)
    # the CLI's --stages log: the same tag with the seconds
    assert nl.timed_stage_tag(expl) == f"{en}{stage.seconds:.1f} s · "
    assert nl.timed_stage_tag(expl, "zh") == f"{zh}{stage.seconds:.1f} 秒 · "


def test_an_approximate_stage_states_its_measured_error():
    for error, said in ((0.2345, "±0.23 nats"), (0.004, "±0.004 nats"), (1.5, "±1.50 nats")):
        fidelity = StageFidelity(exact=False, max_error=error, checked=10, precision="bf16")
        expl = staged(StageInfo("lines_bf16", 2, 4, False, 9.0, "line", fidelity))
        assert f"bf16 {said}" in nl.stage_tag(expl) and "exact]" not in nl.stage_tag(expl)
        assert said.removeprefix("±").removesuffix(" nats") in nl.stage_note(expl)


def test_a_final_or_single_result_has_no_tag_and_no_note():
    for stage in (REFINED, StageInfo("final", 1, 1, True, 2.0, "word"), None):
        expl = staged(stage)
        for lang in nl.LANGUAGES:
            assert nl.stage_tag(expl, lang) == "" and nl.stage_note(expl, lang) == ""
        assert nl.span_line(expl, 0).startswith("#1 of 6 words")
    # the CLI's --stages log closes with the final stage: its name, place and seconds only
    assert nl.timed_stage_tag(staged(REFINED)) == "[refined 3/3] 31.0 s · "
    assert nl.timed_stage_tag(staged(REFINED), "zh") == "[细化 3/3] 31.0 秒 · "
    single = staged(StageInfo("final", 1, 1, True, 2.0, "word"))
    assert nl.timed_stage_tag(single) == "[final 1/1] 2.0 s · "
    assert nl.timed_stage_tag(staged(None)) == ""


def test_each_stage_note_says_what_it_is_and_what_still_runs():
    assert nl.stage_note(staged(BLOCKS)) == (
        "Exact effect of each of the prompt's 6 blocks after 3.1 s; the lines of the blocks "
        "that matter are being scored."
    )
    assert nl.stage_note(staged(LINES_BF16)) == (
        "Lines in bf16 after 9.0 s, within 0.23 nats of exact on the 10 lines checked (those "
        "10 are exact); exact lines are running."
    )
    assert nl.stage_note(staged(LINES)) == (
        "Exact line effects after 20.4 s; 12 lines in blocks with no effect are scored with "
        "the final result; words and tokens are being refined."
    )
    one = StageInfo("lines", 2, 3, False, 20.37, "line", pending_lines=1)
    assert "; 1 line in a block with no effect is scored" in nl.stage_note(staged(one))
    # no pending lines (every block was split, or each is one line): not mentioned
    none = StageInfo("lines", 1, 2, False, 5.0, "line")
    assert nl.stage_note(staged(none)) == (
        "Exact line effects after 5.0 s; words and tokens are being refined."
    )


def test_each_stage_note_in_chinese():
    assert nl.stage_note(staged(BLOCKS), "zh") == (
        "3.1 秒后：提示中 6 个块各自的精确效果；重要块中的各行正在计算。"
    )
    bf16 = nl.stage_note(staged(LINES_BF16), "zh")
    assert "bf16" in bf16 and "0.23" in bf16 and "10 行" in bf16 and CJK.search(bf16)
    lines = nl.stage_note(staged(LINES), "zh")
    assert lines.startswith("20.4 秒后的精确逐行效果") and "12 行" in lines
    none = StageInfo("lines", 1, 2, False, 5.0, "line")
    assert nl.stage_note(staged(none), "zh") == "5.0 秒后的精确逐行效果；词和词元正在细化。"


def test_a_stage_ranks_its_own_parts():
    """A blocks stage ranks blocks and a lines stage lines, whatever the request's granularity."""
    assert "#1 of 6 blocks" in nl.span_line(staged(BLOCKS), 0)
    # a lines stage that still shows some blocks whole ranks "parts"; with none, lines
    assert "#1 of 6 parts (lines, and blocks still whole)" in nl.span_line(staged(LINES), 0)
    assert "#1 of 6 lines" in nl.span_line(staged(replace(LINES, pending_lines=0)), 0)
    assert "共 6 个块" in nl.span_line(staged(BLOCKS), 0, "zh")
    assert "removing this block lowers" in nl.span_line(staged(BLOCKS), 0)  # a drop of 2.0
    assert "removing this line lowers" in nl.span_line(staged(LINES), 0)


def test_an_unknown_stage_is_still_worded_from_its_figures():
    exact = staged(StageInfo("sections", 1, 3, False, 1.0, "section"))
    assert nl.stage_tag(exact) == "[sections 1/3 · exact] "
    assert nl.stage_note(exact).startswith("Exact sections after 1.0 s")
    approx = staged(StageInfo("sections_bf16", 1, 3, False, 1.0, "section", BF16))
    assert "within 0.23 nats of exact on the 10 parts checked" in nl.stage_note(approx)


def test_stage_templates_are_parallel():
    def fields(template: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}

    assert set(STAGE_TEMPLATES) == set(nl.LANGUAGES)
    en = STAGE_TEMPLATES["en"]
    for lang in nl.LANGUAGES:
        table = STAGE_TEMPLATES[lang]
        assert set(table) == set(en), lang
        for key, template in table.items():
            assert fields(template) == fields(en[key]), (lang, key)


def test_the_stage_fields_survive_json():
    expl = staged(LINES_BF16)
    back = Explanation.from_json(expl.to_json())
    assert back.stage == expl.stage and isinstance(back.stage.fidelity, StageFidelity)
    assert back.stage.fidelity.max_error == pytest.approx(0.2345)
    assert nl.stage_tag(back) == nl.stage_tag(expl)
