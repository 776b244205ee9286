"""What an `auto` result says about how it was reached, in both languages: the wording comes
from the typed figures (AutoReport, HierarchyInfo.pruned), and those round-trip through JSON."""

from __future__ import annotations

import pytest

from promptxray.explainers.details import AutoReport, HierarchyInfo, Pruning
from promptxray.explainers.nl.auto_text import AUTO_TEMPLATES, auto_reason, pruning_line


def test_both_languages_have_every_phrase():
    assert set(AUTO_TEMPLATES["en"]) == set(AUTO_TEMPLATES["zh"])


@pytest.mark.parametrize(
    ("pruning", "en", "zh"),
    [
        (Pruning("line", "floor", 3, 0.05), "3 line(s) not refined: no measurable effect", "0.05"),
        (Pruning("word", "cover", 2, 0.8), "outside the top words that hold 80% of", "80%"),
        (
            Pruning("line", "limit", 4, 8.0),
            "beyond the limit of 8 lines (option refine_lines)",
            "8",
        ),
        (Pruning("line", "budget", 5, 0.6), "over the time budget (0.6× the line pass", "0.6"),
    ],
)
def test_each_pruning_rule_is_said_with_its_bound(pruning, en, zh):
    assert en in pruning_line(pruning, "en")
    chinese = pruning_line(pruning, "zh")
    assert zh in chinese and str(pruning.count) in chinese and "未细化" in chinese


def test_the_auto_reason_names_the_choice_the_others_and_what_was_skipped():
    report = AutoReport(
        chosen="occlusion",
        criterion="c",
        candidates=[{"method": "occlusion", "score": 1.5}, {"method": "saliency", "score": 0.25}],
        skipped=["integrated_gradients"],
        budget_s=5.0,
        elapsed_s=2.25,
        skipped_memory=["attention"],
    )
    said = auto_reason(report)
    assert said.startswith("occlusion was the most faithful on this prompt")
    assert (
        "1.500 nats (vs saliency 0.250)" in said and "2 method(s) tried in 2.2 s of a 5 s" in said
    )
    assert "skipped for time: integrated_gradients" in said
    assert "skipped for memory: attention" in said
    assert "因时间跳过：integrated_gradients" in auto_reason(report, "zh")
    with pytest.raises(Exception, match="unknown language"):
        auto_reason(report, "xx")


def test_the_figures_round_trip():
    info = HierarchyInfo([], [], [], pruned=[Pruning("line", "floor", 3, 0.05)])
    from dataclasses import asdict

    assert HierarchyInfo.from_dict(asdict(info)) == info
