"""What an edit changed (explainers/diff/, nl/diff_text.py, `promptxray diff`) on the tiny real
model: a line edited and a line added between two versions of a prompt."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from promptxray.cli.main import main
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.diff import (
    ExplanationDiff,
    align,
    diff_explanations,
    explain_versions,
    rescore_target,
)
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.explain import explain
from promptxray.explainers.nl.diff_text import render_diff_markdown, render_diff_text
from promptxray.explainers.nl.figures import format_signed
from promptxray.explainers.types import ExplainRequest, Span
from tests.conftest import STORIES

OLD = "Once upon a time\nthere was a little girl.\nShe had a red ball.\nOne day she"
NEW = (
    "Once upon a time\nthere was a little boy.\nHe liked to play.\nShe had a red ball.\nOne day she"
)


def request(text: str, path: str, **kw: object) -> ExplainRequest:
    base = ExplainRequest(
        text=text, path=path, granularity="line", model=str(STORIES), faithfulness=False
    )
    return replace(base, **kw)


@pytest.fixture(scope="module")
def versions(stories):
    before = stories.score_cache
    diff, old, new = explain_versions(
        request(OLD, "old.prompt"), request(NEW, "new.prompt"), stories
    )
    assert stories.score_cache is before  # the score cache is left as it was found
    return diff, old, new


def test_an_edited_line_changes_by_the_difference_of_its_two_scores(versions):
    diff, old, new = versions
    edited = [p for p in diff.parts if p.edited]
    assert len(edited) == 1
    part = edited[0]
    assert (part.old_text, part.new_text) == ("there was a little girl.", "there was a little boy.")
    assert part.old_index is not None and part.new_index is not None
    assert part.change == pytest.approx(  # the same two floats subtracted: exact
        new.spans[part.new_index].score - old.spans[part.old_index].score
    )
    assert (part.old_score, part.new_score) == (
        old.spans[part.old_index].score,
        new.spans[part.new_index].score,
    )
    # offsets point into each version's own file
    assert OLD[part.old_start : part.old_end] == part.old_text
    assert NEW[part.new_start : part.new_end] == part.new_text
    assert (part.old_line, part.new_line) == (2, 2)
    if abs(part.change) < diff.threshold:
        assert part.status == "same"
    else:
        grew = abs(part.new_score) >= abs(part.old_score)
        assert part.status == ("gained" if grew else "lost")


def test_an_added_line_is_new_and_unchanged_lines_pair_with_themselves(versions):
    diff, _, new = versions
    added = [p for p in diff.parts if p.status == "new"]
    assert [p.text for p in added] == ["He liked to play."]
    assert added[0].old_score is None and added[0].change == added[0].new_score
    assert NEW[added[0].new_start : added[0].new_end] == "He liked to play."
    assert not [p for p in diff.parts if p.status == "removed"]
    assert [p.new_index for p in diff.parts] == list(range(len(new.spans)))  # document order
    same_text = [p for p in diff.parts if p.old_text == p.new_text]
    assert {p.text for p in same_text} == {"Once upon a time", "She had a red ball.", "One day she"}
    for p in same_text:
        assert p.change == pytest.approx(p.new_score - p.old_score)  # same floats: exact


def test_the_new_version_is_scored_against_the_old_answer_and_its_own_is_reported(versions):
    diff, old, new = versions
    assert diff.same_target and diff.comparable
    assert [t.token_id for t in new.target.tokens] == [t.token_id for t in old.target.tokens]
    assert (diff.old_answer, diff.new_answer) == (old.target.text, old.target.text)
    assert (diff.old_prob, diff.new_prob) == (old.target.prob, new.target.prob)
    own = explain(request(NEW, "new.prompt"))
    assert diff.new_own_answer == own.target.text
    # the same generation and forward as a plain explain, in the same shapes: equal to rounding
    assert diff.new_own_prob == pytest.approx(own.target.prob, rel=1e-6)
    # on this model the edit changes the answer; the diff says so before anything else
    assert diff.answer_changed == (own.target.text != old.target.text) is True
    text = render_diff_text(diff, OLD, NEW)
    lines = text.splitlines()
    assert lines[1].startswith("The answer changed:") and repr(own.target.text) in lines[1]
    assert "scored against the old answer" in lines[2]
    assert "'He liked to play.'" in text and "edited from 'there was a little girl.'" in text
    assert "forward passes" in text and len(lines) <= 12
    assert set(diff.forward_passes) == {"old", "new", "new_own_answer"}
    # the one policy the server's diffWithSaved follows too: rescore only a changed answer
    assert rescore_target(old, own.target) is old.target
    assert rescore_target(old, old.target) is None
    md = render_diff_markdown(diff, OLD, NEW)
    assert "| + new | `He liked to play.` | 3:1 |" in md
    assert md.index("The answer changed") < md.index("| Part |")


def test_the_diff_is_json_and_reads_back(versions):
    diff, _, _ = versions
    data = json.loads(diff.to_json())
    assert data["parts"][0]["status"] in ("same", "gained", "lost")
    assert ExplanationDiff.from_json(diff.to_json()) == diff


def test_the_diff_reads_in_chinese_with_the_same_parts_and_figures(versions):
    diff, _, _ = versions
    english = render_diff_text(diff, OLD, NEW).splitlines()
    chinese = render_diff_text(diff, OLD, NEW, lang="zh").splitlines()
    assert len(chinese) == len(english) and chinese[0] == english[0]  # the head names no words
    assert chinese[1].startswith("回答变了")
    assert f"“{diff.old_answer}”" in chinese[1] and f"“{diff.new_own_answer}”" in chinese[1]
    assert chinese[2].startswith("各部分按旧回答") and "not comparable" not in "".join(chinese)
    listed = [ln for ln in chinese if ln.startswith("  ")]
    assert len(listed) == min(5, len(diff.changes()))
    for line, part in zip(listed, diff.changes(), strict=False):
        assert f"“{part.text}”" in line and format_signed(part.change) in line
    assert any("新增" in ln and "“He liked to play.”" in ln for ln in listed)
    words = {"new": "新增", "removed": "删除", "gained": "增强", "lost": "减弱", "same": "不变"}
    tally = chinese[-2]
    assert [f"{words[s]} {n}" for s, n in diff.counts().items() if n] == [
        item for item in tally.split(" · ")[0].removeprefix("各部分：").split("，")
    ]
    md = render_diff_markdown(diff, OLD, NEW, lang="zh")
    assert md.startswith("# promptxray：") and "| | 部分 | 位置 | 旧 | 新 | 变化 |" in md
    assert "| + 新增 | `He liked to play.` | 3:1 |" in md
    with pytest.raises(InvalidRequestError, match="unknown language 'fr'"):
        render_diff_text(diff, OLD, NEW, lang="fr")


def test_own_answers_and_other_methods_are_not_comparable(stories, versions):
    _, old, new = versions
    own_diff, _, own_new = explain_versions(
        request(OLD, "old.prompt"), request(NEW, "new.prompt"), stories, same_target=False
    )
    assert own_new.target.text == own_diff.new_own_answer == own_diff.new_answer
    assert own_diff.answer_changed and not own_diff.same_target and not own_diff.comparable
    assert "not comparable" in render_diff_text(own_diff, OLD, NEW)
    other = replace(new, method="saliency", score_kind=ScoreKind.SALIENCE)
    mixed = diff_explanations(old, other, OLD, NEW)
    assert not mixed.comparable
    assert [(m.what, m.old, m.new) for m in mixed.mismatches] == [
        ("method", "occlusion", "saliency"),
        ("score_kind", "removal", "salience"),
    ]
    assert "The methods differ (occlusion vs saliency): not comparable." in render_diff_text(
        mixed, OLD, NEW
    )


def test_identical_versions_change_nothing(versions):
    _, old, _ = versions
    diff = diff_explanations(old, old, OLD, OLD)
    assert {p.status for p in diff.parts} == {"same"} and not diff.answer_changed
    assert "No part's score moved" in render_diff_text(diff, OLD, OLD)


def test_cli_diff_text_and_json(tmp_path: Path, capsys, stories):
    old, new = tmp_path / "old.prompt", tmp_path / "new.prompt"
    old.write_text(OLD, encoding="utf-8")
    new.write_text(NEW, encoding="utf-8")
    before = stories.score_cache
    assert main(["diff", str(old), str(new), "--model", str(STORIES)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("promptxray diff · occlusion · line · stories260K")
    assert "The answer changed" in text and "+ 'He liked to play.' 3:1 new" in text
    assert main(["diff", str(old), str(new), "--model", str(STORIES), "--lang", "zh"]) == 0
    text = capsys.readouterr().out
    assert "回答变了" in text and "+ “He liked to play.” 3:1 新增" in text

    code = main(["diff", str(old), str(new), "--model", str(STORIES), "-f", "json", "-g", "word"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    diff = ExplanationDiff.from_dict(data)
    assert diff.granularity == "word" and diff.same_target and diff.answer_changed
    added = {p.text for p in diff.parts if p.status == "new"}
    assert {"boy", "He", "liked", "play"} <= added
    assert {p.text for p in diff.parts if p.status == "removed"} == {"girl"}
    for p in diff.parts:
        if p.new_start is not None:
            assert NEW[p.new_start : p.new_end] == p.new_text
        if p.old_start is not None:
            assert OLD[p.old_start : p.old_end] == p.old_text
    assert stories.score_cache is before
    assert main(["diff", str(old), str(tmp_path / "missing.prompt")]) == 2


def spans(texts: list[str]) -> list[Span]:
    return [Span(t, 0, len(t), 0.0) for t in texts]


def test_alignment_pairs_edits_and_keeps_every_part_once():
    old = spans(["a b c", "the cat sat", "x", "gone entirely"])
    new = spans(["a b c", "new line", "the cat sat down", "x"])
    assert align(old, new) == [(0, 0), (None, 1), (1, 2), (2, 3), (3, None)]
    many_old, many_new = spans([f"o{i}" for i in range(200)]), spans([f"n{i}" for i in range(60)])
    pairs = align(many_old, many_new)  # over PAIR_LIMIT: not paired, nothing lost
    assert sorted(i for i, _ in pairs if i is not None) == list(range(200))
    assert sorted(j for _, j in pairs if j is not None) == list(range(60))
