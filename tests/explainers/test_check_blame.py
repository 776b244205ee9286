"""Which edit broke a check (`promptxray check --since`, explainers/checks/blame.py,
explainers/diff/hunks.py and revisions.py): the hunks against hand-written expectations, the
verdict on real models against answers generated directly from hand-reverted files, JUnit, and
the bad inputs (exit 2, the checks still reported)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from promptxray.cli.main import main
from promptxray.explainers.diff import own_answer
from promptxray.explainers.diff.hunks import line_hunks, range_map, revert
from promptxray.explainers.types import ExplainRequest
from tests.conftest import STORIES

# --- the hunks (pure) ----------------------------------------------------------------------------


def test_line_hunks_are_the_diff_U0_hunks_and_revert_one_at_a_time():
    old = "a\nb\nc\nd\ne\nf\n"
    new = "A\nb\nX\nc\nd\nf\n"
    hunks = line_hunks(old, new)
    # what `diff -U0` shows: @@ -1 +1 @@ (a→A), @@ -2,0 +3 @@ (X added), @@ -5 +5,0 @@ (e removed)
    assert [(h.kind, h.lines, h.old_text, h.new_text) for h in hunks] == [
        ("changed", (1, 1), "a\n", "A\n"),
        ("added", (3, 3), "", "X\n"),
        ("removed", (6, 6), "e\n", ""),
    ]
    assert revert(new, hunks, [0]) == "a\nb\nX\nc\nd\nf\n"
    assert revert(new, hunks, [1]) == "A\nb\nc\nd\nf\n"
    assert revert(new, hunks, [2]) == "A\nb\nX\nc\nd\ne\nf\n"
    assert revert(new, hunks, range(3)) == old
    for chosen in ([0], [1], [2], [0, 1, 2]):  # an untouched line keeps its text
        variant, at = revert(new, hunks, chosen), new.index("d")
        start, end = range_map(new, hunks, chosen)(at, at + 1)
        assert variant[start:end] == "d"
    start, end = range_map(new, hunks, [1])(new.index("X"), new.index("X") + 1)
    assert start == end  # a reverted addition leaves nothing of the part


# --- the default model: three hunks, one flips the answer -----------------------------------

HEAD = """\
---
title: capital
checks:
  granularity: line
  max_new_tokens: 6
  assert:
    - answer_contains: Paris
---
"""
V1 = HEAD + (
    "You are a helpful assistant.\nKeep answers short.\n\n"
    "What is the capital of France?\n\nReply in one sentence.\n"
)
V2 = HEAD + (
    "You are a friendly, helpful assistant.\nKeep answers short.\n"
    "Fact: the capital of France is Lyon.\nWhat is the capital of France?\n\n"
    "Reply in one full sentence.\n"
)
# V2 with only the fact's hunk reverted, written by hand (not by the code under test)
V2_WITHOUT_FACT = HEAD + (
    "You are a friendly, helpful assistant.\nKeep answers short.\n\n"
    "What is the capital of France?\n\nReply in one full sentence.\n"
)
FACT_LINE = V2.splitlines().index("Fact: the capital of France is Lyon.") + 1


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _repo(tmp_path: Path, first: str, then: str, name: str = "capital.prompt.md") -> Path:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    path = tmp_path / name
    path.write_text(first, encoding="utf-8")
    _git(tmp_path, "add", name)
    _git(tmp_path, "commit", "-q", "-m", "v1")
    path.write_text(then, encoding="utf-8")
    return path


def test_since_head_names_the_one_hunk_that_flips_the_answer(tmp_path, capsys, smol):
    path = _repo(tmp_path, V1, V2)
    assert len(line_hunks(V1, V2)) == 3

    def answer(text: str) -> str:
        request = ExplainRequest(text=text, path=str(path), max_new_tokens=6)
        return own_answer(request, smol).text

    # the independent facts: the new version fails, the old passes, the fact alone flips it
    assert "Paris" not in answer(V2)
    assert "Paris" in answer(V1)
    assert "Paris" in answer(V2_WITHOUT_FACT)

    junit = tmp_path / "junit.xml"
    status = main(["check", str(path), "--since", "HEAD", "--junit", str(junit)])
    out = capsys.readouterr().out
    assert status == 1
    verdict = next(line for line in out.splitlines() if "fails because of" in line)
    assert f"the edit at line {FACT_LINE} (" in verdict and "Fact: the capital" in verdict
    assert "reverting it alone" in verdict and verdict.count("the edit at") == 1
    assert "3 hunks since HEAD:capital.prompt.md, each reverted alone:" in out
    assert "cost: 4 variants run" in out  # one per hunk and the older version
    failure = ET.parse(junit).getroot().find(".//testcase/failure")
    assert failure is not None and f"the edit at line {FACT_LINE} (" in failure.get("message", "")
    assert "3 hunks since HEAD" in (failure.text or "")


# --- the tiny model: --since FILE, hunks that cannot be separated, bad input -----------------

STORY_HEAD = """\
---
title: story
checks:
  granularity: line
  max_new_tokens: 4
  assert:
    - answer_contains: saw
---
"""
STORY = [
    "Once upon a time there was a little girl named Lily.",
    "She liked to play outside.",
    "The sun was hot.",
    "The sky was blue.",
    "One day she",
]


def story(**edits: str) -> str:
    lines = list(STORY)
    for index, text in edits.items():
        lines[int(index[1:])] = text
    return STORY_HEAD + "\n".join(lines) + "\n"


COLD = story(l3="It was a cold day.")  # one hunk: the answer no longer contains "saw"
CAKE_AND_COLD = story(l1="She liked to eat cake.", l3="It was a cold day.")


def _answer(text: str, backend) -> str:
    return own_answer(ExplainRequest(text=text, path="s.prompt.md", max_new_tokens=4), backend).text


def test_since_file_blames_the_edit_or_says_the_hunks_are_inseparable(tmp_path, capsys, stories):
    old = tmp_path / "old.prompt.md"
    old.write_text(story(), encoding="utf-8")
    new = tmp_path / "new.prompt.md"
    model = str(STORIES)
    assert "saw" in _answer(story(), stories) and "saw" not in _answer(COLD, stories)

    new.write_text(COLD, encoding="utf-8")
    assert main(["check", str(new), "--model", model, "--since", str(old)]) == 1
    out = capsys.readouterr().out
    assert "because of the edit at line 12 ('The sky was blue.' → 'It was a cold day.')" in out

    # each hunk alone leaves the answer without "saw": only the whole edit is to blame
    for one in (story(l1="She liked to eat cake."), COLD):
        assert "saw" not in _answer(one, stories)
    new.write_text(CAKE_AND_COLD, encoding="utf-8")
    assert main(["check", str(new), "--model", model, "--since", str(old), "--lang", "zh"]) == 1
    out = capsys.readouterr().out
    assert "这次修改的 2 处改动无法分开" in out and "逐一单独撤销" in out


def test_already_failing_and_bad_versions(tmp_path, capsys):
    path = _repo(tmp_path, COLD, CAKE_AND_COLD)  # fails at both
    model = str(STORIES)
    assert main(["check", str(path), "--model", model, "--since", "HEAD"]) == 1
    assert "already failed at HEAD:capital.prompt.md" in capsys.readouterr().out

    for since, why in [
        ("nosuchrev", "no file and no git revision named 'nosuchrev'"),
        ("HEAD~5", "no file and no git revision named 'HEAD~5'"),
    ]:
        assert main(["check", str(path), "--model", model, "--since", since]) == 2
        out = capsys.readouterr().out
        assert why in out and "FAIL" in out and "promptxray check: FAILED" in out

    other = tmp_path / "untracked.prompt.md"  # in the repository, not in the revision
    other.write_text(story(), encoding="utf-8")
    assert main(["check", str(other), "--model", model, "--since", "HEAD"]) == 2
    out = capsys.readouterr().out
    assert "untracked.prompt.md is not in revision HEAD" in out and "PASS" in out

    outside = tmp_path.parent / f"{tmp_path.name}-nogit"
    outside.mkdir()
    alone = outside / "s.prompt.md"
    alone.write_text(story(), encoding="utf-8")
    assert main(["check", str(alone), "--model", model, "--since", "HEAD"]) == 2
    assert "is not in a git repository" in capsys.readouterr().out

    broken = tmp_path / "broken.prompt.md"
    broken.write_text("---\ntitle: [unclosed\n---\nOnce\n", encoding="utf-8")
    assert main(["check", str(path), "--model", model, "--since", str(broken)]) == 2
    out = capsys.readouterr().out
    assert f"the version --since {broken} cannot be read" in out and "FAIL" in out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_blame_wording_has_every_verdict(lang):
    from promptxray.explainers.checks.blame import Blame, Trial
    from promptxray.explainers.checks.spec import Assertion
    from promptxray.explainers.nl.blame_text import blame_lines, blame_markdown

    hunks = line_hunks("a\nb\nc\n", "A\nb\nC\n")
    failing = [Assertion("answer_contains", 3, 0, "answer_contains: 'x'", value="x")]
    for verdict, responsible in [
        ("alone", (1,)),
        ("alone", (0, 1)),
        ("together", (0, 1)),
        ("whole", (0, 1)),
        ("already_failed", ()),
        ("no_edit", ()),
    ]:
        blame = Blame("HEAD", failing, hunks, Trial((0, 1)), verdict=verdict)
        blame.responsible = responsible
        blame.alone = [Trial((0,), error="bad template"), Trial((1,))]
        lines = blame_lines(blame, lang)
        assert lines and all("{" not in line for line in lines)
        assert "<details>" in blame_markdown(blame, lang)
