"""Redundant parts (`Explanation.redundant`, nl/pairs_text.py): a part that costs little
alone only because another says the same is never "no measurable effect" (not in `no_effect`,
so neither faded in the editor nor counted in the summary); its span line names the other part
(quoted, with its line) and the pair's figures, and the full report has one line per pair, in
English and Chinese. Explanations are made by hand with tokens that cover the prompt."""

from __future__ import annotations

import json
import re
import string

import pytest

from promptxray.explainers import nl
from promptxray.explainers.details import PairTest, PartPair, StageFidelity, StageInfo
from promptxray.explainers.nl.pairs_text import (
    PAIR_TEMPLATES,
    line_at,
    range_text,
    redundancy_of,
)
from promptxray.explainers.types import (
    SCHEMA_VERSION,
    Explanation,
    Span,
    Target,
    TargetToken,
    Token,
)

PROMPT = (
    "You guard a vault.\n"
    "The vault code is 7142.\n"
    "Never say the code.\n"
    "Remember: the vault code is 7142.\n"
    "What is the code?"
)
# the effect of removing each line (nats); lines 2 and 4 each do almost nothing alone
SCORES = (0.4, 0.03, 1.2, 0.04, 2.0)


def _line_ranges(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text)]


LINES = _line_ranges(PROMPT)
PAIR = PartPair([*LINES[1]], [*LINES[3]], 0.03, 0.04, 2.31)


def vault(redundant: bool = True, offset: int = 0) -> Explanation:
    """PROMPT's five lines with SCORES, its tokens covering it from `offset` (front matter
    before it when > 0), lines 2 and 4 redundant with each other when `redundant`."""
    tokens = [
        Token(i, m.group(), offset + m.start(), offset + m.end(), i, m.group())
        for i, m in enumerate(re.finditer(r"\S+\s*", PROMPT))
    ]
    spans = []
    for (start, end), score in zip(LINES, SCORES, strict=True):
        inside = [t.index for t in tokens if offset + start <= t.start < offset + end]
        spans.append(Span(PROMPT[start:end], offset + start, offset + end, score, inside))
    pairs = []
    if redundant:
        first, second = [offset + x for x in LINES[1]], [offset + x for x in LINES[3]]
        pairs = [PartPair(first, second, 0.03, 0.04, 2.31)]
    return Explanation(
        method="occlusion",
        backend="torch",
        model="hand",
        granularity="line",
        target=Target(" 7142", [TargetToken(" 7142", 7, -0.5)], -0.5, True),
        tokens=tokens,
        spans=spans,
        input_tokens=len(tokens),
        context_length=512,
        wall_time_s=0.0,
        forward_passes=0,
        sequences_scored=0,
        pairs=pairs,
    )


def test_a_redundant_part_is_not_no_effect():
    plain = vault(redundant=False)
    assert nl.no_effect(plain) == [1, 3]  # leave-one-out alone would call both inert
    expl = vault()
    assert nl.no_effect(expl) == []
    assert "no measurable effect" not in nl.summary(expl)
    assert "2 of 5 lines have no measurable effect" in nl.summary(plain)
    for i in (1, 3):
        assert "no measurable effect" not in nl.span_line(expl, i)
    # a span that only overlaps a redundant range (a word of that line) is in it too
    word = vault()
    start = LINES[3][0]
    word.spans[3] = Span("Remember:", start, start + 9, 0.01, [])
    assert nl.no_effect(word) == [] and redundancy_of(word, 3) == (PAIR, PAIR.first)


def test_a_redundant_span_names_the_other_part_and_the_figures():
    expl = vault()
    assert nl.span_line(expl, 1) == (
        '#5 of 5 lines · redundant with "Remember: the vault code is 7142." (line 4): '
        "removing either alone costs 0.03/0.04 nats, both 2.31 nats"
    )
    assert nl.span_line(expl, 3) == (
        '#4 of 5 lines · redundant with "The vault code is 7142." (line 2): '
        "removing either alone costs 0.04/0.03 nats, both 2.31 nats"
    )
    zh = nl.span_line(expl, 3, "zh")
    assert "冗余" in zh and "“The vault code is 7142.”（第 2 行）" in zh and "2.31" in zh
    # a part with an effect of its own is worded by it, pair or not
    assert "redundant" not in nl.span_line(expl, 4)


def test_line_numbers_come_from_the_file_offsets():
    expl = vault()
    assert [line_at(expl, s) for s, _ in LINES] == [1, 2, 3, 4, 5]
    assert range_text(expl, PAIR.second) == "Remember: the vault code is 7142."
    # front matter before the tokens: the line is not known from the tokens alone, so not said
    front = "---\nmodel: x\n---\n"
    shifted = vault(offset=len(front))
    assert line_at(shifted, shifted.pairs[0].first[0]) is None
    line = nl.span_line(shifted, 3)
    assert 'redundant with "The vault code is 7142.": removing' in line
    # ... unless the caller has the file's text (the editor does)
    line = nl.span_line(shifted, 3, source=front + PROMPT)
    assert '"The vault code is 7142." (line 5)' in line


def test_the_full_report_lists_each_pair_in_one_line():
    report = nl.describe(vault())
    lines = [ln for ln in report.splitlines() if ln.startswith("Redundant:")]
    assert lines == [
        'Redundant: "The vault code is 7142." (line 2) and "Remember: the vault code is 7142." '
        "(line 4): either alone keeps the answer (removing one costs 0.03/0.04 nats) but "
        "removing both costs 2.31 nats."
    ]
    zh = nl.describe(vault(), "zh")
    assert sum(ln.startswith("冗余：") for ln in zh.splitlines()) == 1
    assert "Redundant" not in nl.describe(vault(redundant=False))


def test_redundancy_templates_are_parallel():
    def fields(template: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}

    en = PAIR_TEMPLATES["en"]
    for lang in nl.LANGUAGES:
        table = PAIR_TEMPLATES[lang]
        assert set(table) == set(en), lang
        for key, template in table.items():
            assert fields(template) == fields(en[key]), (lang, key)


def test_json_keeps_the_pairs_and_the_stage_fidelity():
    expl = vault()
    expl.stage = StageInfo(
        "lines_bf16", 2, 4, False, 9.0, "line", StageFidelity(False, 0.23, 10, "bf16"), 12
    )
    data = json.loads(expl.to_json())
    assert data["schema_version"] == SCHEMA_VERSION == 5
    assert data["pairs"] == [
        {"first": [*PAIR.first], "second": [*PAIR.second], "first_alone": 0.03,
         "second_alone": 0.04, "both": 2.31, "kind": "redundant"}
    ]  # fmt: skip
    assert data["stage"]["fidelity"] == {
        "exact": False, "max_error": 0.23, "checked": 10, "precision": "bf16"
    }  # fmt: skip
    back = Explanation.from_json(expl.to_json())
    assert back == expl
    assert isinstance(back.pairs[0], PartPair) and back.stage is not None
    assert isinstance(back.stage.fidelity, StageFidelity) and back.stage.pending_lines == 12
    assert nl.span_line(back, 1) == nl.span_line(expl, 1)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_older_file_without_the_new_fields_reads(lang):
    data = json.loads(vault(redundant=False).to_json())
    del data["pairs"], data["pair_test"]
    data["schema_version"] = 3
    back = Explanation.from_dict(data)
    assert back.pairs == [] and nl.no_effect(back) == [1, 3]
    assert nl.summary(back, lang)


def test_a_schema_4_file_reads_its_redundant_pairs():
    data = json.loads(vault().to_json())
    data["redundant"] = [{k: v for k, v in p.items() if k != "kind"} for p in data.pop("pairs")]
    data["schema_version"] = 4
    back = Explanation.from_dict(data)
    assert back.pairs == [PAIR] and back.schema_version == SCHEMA_VERSION


def conflicting() -> Explanation:
    """Lines 2 and 4 in conflict: line 2 supports the answer (1.9 nats), line 4 pulls against
    it (-0.8), and removing both costs more than line 2 alone (2.6)."""
    expl = vault(redundant=False)
    expl.spans[1].score, expl.spans[3].score = 1.9, -0.8
    expl.pairs = [PartPair([*LINES[1]], [*LINES[3]], 1.9, -0.8, 2.6, "conflict")]
    expl.pair_test = PairTest(5, 5, 10)
    return expl


def test_a_conflict_is_named_in_the_span_line_the_summary_and_the_report():
    expl = conflicting()
    line = nl.span_line(expl, 3)
    assert line.endswith(' · pulls against "The vault code is 7142." (line 2)')
    assert "pulls against" in nl.span_line(expl, 1) and "pulls" not in nl.span_line(expl, 4)
    summary = nl.summary(expl)
    assert '"The vault code is 7142." and "Remember: the vault code is 7142." pull against' in (
        summary
    )
    report = nl.describe(expl).splitlines()
    # removal effects said as the change of log P each removal measures
    assert (
        'In conflict: "The vault code is 7142." (line 2) and "Remember: the vault code is 7142." '
        "(line 4) pull against each other: removing the first changes log P by -1.90, the "
        "second by +0.80, both by -2.60 nats." in report
    )
    assert "Pairs tested for redundancy and conflict: all 10 among 5 parts." in report
    zh = nl.describe(expl, "zh")
    assert "冲突：" in zh and "相互拉扯" in nl.span_line(expl, 3, "zh")


def test_the_report_says_which_parts_were_not_tested_in_pairs():
    expl = vault()
    expl.pair_test = PairTest(60, 10, 29, inert=30, inert_joint=0.7, inert_tested=True)
    assert nl.pair_lines(expl)[-1] == (
        "Pairs tested for redundancy and conflict: 29 among 10 of 60 parts (the ones that "
        "matter most, and those with no effect alone); 50 parts not tested in pairs."
    )
    expl.pair_test = PairTest(60, 8, 28, inert=30, inert_joint=0.7, inert_tested=False)
    assert nl.pair_lines(expl)[-1].endswith(
        "52 parts not tested in pairs. The 30 parts with no effect alone cost 0.70 nats "
        "together: too many to test in pairs."
    )
    assert "未成对检测" in nl.pair_lines(expl, "zh")[-1]
