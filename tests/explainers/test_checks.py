"""Assertions in a prompt's front matter (`checks:`), checked against its explanation: the
syntax and its errors (with line numbers), the evidence, and `promptxray check` end to end on
the tiny real model (report, JUnit XML, exit status)."""

from __future__ import annotations

import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from promptxray.cli.check import FileRun, report
from promptxray.cli.main import main
from promptxray.explainers.checks import Part, check, evaluate, load_checks
from promptxray.explainers.types import Explanation, Span, Target, TargetToken
from tests.conftest import DATA, STORIES

CHECKS = DATA / "checks"
PASSING = CHECKS / "passing.prompt.md"
FAILING = CHECKS / "failing.prompt.md"
BODY = """\
# Story

Once upon a time there was a little girl named Lily.
She liked to play outside.

# Notes

The sun was hot.
One day she
"""


def front(checks: str, body: str = BODY) -> str:
    return f"---\ntitle: t\n{checks}---\n{body}"


def errors_of(text: str, path: str = "p.prompt.md") -> list[tuple[int, str]]:
    spec = load_checks(text, path)
    assert spec is not None
    return [(e.line, e.message) for e in spec.errors]


# --- syntax ------------------------------------------------------------------------------------


def test_valid_checks_are_read_with_their_settings_and_lines():
    spec = load_checks(PASSING.read_text(), str(PASSING))
    assert spec is not None and spec.errors == []
    assert (spec.granularity, spec.max_new_tokens, spec.no_effect_threshold) == ("line", 4, 0.1)
    kinds = [(a.line, a.kind) for a in spec.assertions]
    assert kinds == [
        (8, "answer_contains"),
        (9, "min_probability"),
        (10, "min_share"),
        (11, "no_effect"),
    ]
    share, heading = spec.assertions[2], spec.assertions[3]
    assert share.share == 0.5 and share.part is not None
    text = PASSING.read_text()
    assert [text[a:b] for a, b in share.part.ranges] == ["One day she"]
    assert heading.part is not None
    assert [text[a:b] for a, b in heading.part.ranges] == ["# Story"]


def test_parts_by_line_section_variable_and_text_resolve_to_file_offsets():
    body = "system:\nBe brief.\n\nuser:\n# Task\nName the capital of {{country}}.\n## Detail\n"
    body += "One word.\n# Other\nThanks, {{country}}.\n"
    text = (
        "---\ninputs:\n  country: {sample: France}\nchecks:\n"
        "  - no_effect: {line: 13}\n"  # "Be brief."
        "  - no_effect: Task\n"
        "  - no_effect: '# Task'\n"
        "  - min_share: {variable: country, share: 0.1}\n"
        "  - min_share: {part: '{{country}}', share: 0.1}\n"
        "  - no_effect: {section: '## Detail'}\n"
        "---\n" + body
    )
    spec = load_checks(text, "q.prompty")
    assert spec is not None and spec.errors == []
    parts = [a.part for a in spec.assertions]
    assert all(p is not None for p in parts)

    def covered(part: Part | None) -> list[str]:
        assert part is not None
        return [text[a:b] for a, b in part.ranges]

    assert covered(parts[0]) == ["Be brief."]
    assert covered(parts[1]) == ["Task"]  # a bare string is a text of the prompt
    assert covered(parts[2]) == ["# Task\nName the capital of {{country}}.\n## Detail\nOne word.\n"]
    assert covered(parts[3]) == ["{{country}}", "{{country}}"] == covered(parts[4])
    assert covered(parts[5]) == ["## Detail\nOne word.\n"]


def test_every_invalid_assertion_is_an_error_with_its_line():
    text = front(
        "checks:\n"  # line 3
        "  method: nope\n"  # 4
        "  colour: red\n"  # 5
        "  assert:\n"  # 6
        "    - answer_contains: ''\n"  # 7
        "    - min_probability: 1.5\n"  # 8
        "    - no_effect: {line: 2}\n"  # 9: the front matter
        "    - no_effect: {line: 99}\n"  # 10
        "    - min_share: {section: Nope, share: 0.2}\n"  # 11
        "    - min_share: {text: One day, share: 2}\n"  # 12
        "    - foo: 3\n"  # 13
        "    - no_effect: '{{name}}'\n"  # 14
        "    - no_effect: 5\n"  # 15
        "    - just a string\n"  # 16
        "    - min_share: {part: {line: 21}}\n"  # 17
        "    - no_effect: {line: 21}\n"  # 18: valid (# Story)
        "    - no_effect: {line: 22}\n"  # 19: a blank line
    )
    errors = errors_of(text)
    lines = [line for line, _ in errors]
    assert lines == [4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19]
    said = dict(errors)
    assert "unknown method 'nope'" in said[4]
    assert "unknown key 'colour'" in said[5]
    assert "non-empty text" in said[7]
    assert "min_probability must be between 0 and 1, not 1.5" in said[8]
    assert "line 2 is in the front matter" in said[9]
    assert "line 99 is not in the file" in said[10]
    assert "no Markdown heading 'Nope'" in said[11]
    assert "share must be between 0 and 1, not 2" in said[12]
    assert "unknown assertion 'foo'" in said[13]
    assert "no {{name}} in the prompt" in said[14]
    assert "{line: N}" in said[15]
    assert "a mapping with one key" in said[16]
    assert "missing share" in said[17]
    assert "holds no text the model reads" in said[19]
    spec = load_checks(text, "p.prompt.md")
    assert spec is not None and [a.line for a in spec.assertions] == [18]


def test_malformed_check_blocks_are_errors_with_lines():
    assert errors_of(front("checks: 3\n"))[0][0] == 3
    assert "no `assert:` list" in errors_of(front("checks:\n  method: occlusion\n"))[0][1]
    assert errors_of(front("checks: []\n")) == [(3, "the list of assertions is empty")]
    assert load_checks(front("other: 1\n"), "p.prompt.md") is None


def test_checks_in_a_plain_text_prompt_are_an_error_not_prompt_text():
    text = front("checks:\n  - answer_contains: x\n")
    assert errors_of(text, "p.txt")[0][0] == 3
    assert "rename the file to .prompt.md" in errors_of(text, "p.txt")[0][1]
    assert load_checks(BODY, "p.txt") is None


# --- evidence ----------------------------------------------------------------------------------


def explanation(spans: list[tuple[int, int, float]], method: str = "occlusion") -> Explanation:
    target = Target(" Paris", [TargetToken(" Paris", 1, -0.5)], -0.5, True)
    return Explanation(
        method=method,
        backend="torch",
        model="m",
        granularity="word",
        target=target,
        tokens=[],
        spans=[Span("x", a, b, score) for a, b, score in spans],
        input_tokens=0,
        context_length=0,
        wall_time_s=0.0,
        forward_passes=0,
        sequences_scored=0,
    )


def test_a_parts_effect_is_the_sum_of_the_overlapping_spans_and_its_share_of_the_total():
    text = front(
        "checks:\n"
        "  - min_share: {line: 17, share: 0.5}\n"  # "The sun was hot."
        "  - no_effect: {line: 17}\n"
        "  - no_effect: {text: sun}\n"
        "  - answer_contains: Paris\n"
        "  - min_probability: 0.7\n"
    )
    spec = load_checks(text, "p.prompt.md")
    assert spec is not None and spec.errors == []
    part = spec.assertions[0].part
    assert part is not None
    ((a, b),) = part.ranges
    assert text[a:b] == "The sun was hot."
    # one span crossing the line's start, two inside it ("The sun" = a..a+7), one elsewhere
    spans = [(a - 2, a + 1, 0.5), (a + 2, a + 4, 1.0), (a + 5, b, -0.5), (b + 3, b + 8, 2.0)]
    share, no_effect, sun, answer, prob = evaluate(spec, explanation(spans))
    # float64 sums of the given scores: pytest's 1e-6 relative is ample
    assert share.evidence.effect == pytest.approx(1.0) and share.evidence.spans == 3
    assert share.evidence.share == pytest.approx(1.0 / 4.0)
    assert share.status == "fail" and "share 25.0% < 50%" in share.detail
    assert no_effect.status == "fail" and "|effect| >= 0.05 nats" in no_effect.detail
    assert sun.evidence.effect == pytest.approx(-0.5) and sun.evidence.spans == 1
    assert answer.status == "pass" and "contains 'Paris'" in answer.detail
    assert prob.status == "fail" and "P(answer)=0.61 < 0.7" in prob.detail
    quiet = evaluate(spec, explanation([(a, b, 0.01), (b + 3, b + 8, 2.0)]))
    assert [r.status for r in quiet[:3]] == ["fail", "pass", "pass"]
    salience = check(spec.assertions[1], explanation([(a, b, 0.0)], "saliency"))
    assert salience.status == "error" and "needs scores in nats" in salience.detail


def test_the_evidence_and_the_report_read_in_chinese_with_the_same_figures():
    text = front(
        "checks:\n"
        "  - min_share: {line: 17, share: 0.5}\n"  # "The sun was hot."
        "  - no_effect: {line: 17}\n"
        "  - answer_contains: Paris\n"
        "  - min_probability: 0.7\n"
        "  - maybe: 1\n"
    )
    spec = load_checks(text, "p.prompt.md")
    assert spec is not None and len(spec.errors) == 1
    ((a, b),) = spec.assertions[0].part.ranges
    expl = explanation([(a, a + 7, 1.0), (a + 8, b, -0.5), (b + 3, b + 8, 1.5)])
    share, no_effect, answer, prob = evaluate(spec, expl, "zh")
    english = evaluate(spec, expl)
    assert [r.status for r in (share, no_effect, answer, prob)] == [r.status for r in english]
    assert share.status == "fail" and "占比 16.7% < 50%" in share.detail  # 0.5 / 3
    assert no_effect.detail.startswith("效应 +0.500（removal，occlusion/word）")
    assert "|效应| >= 0.05 nats" in no_effect.detail and "2 个片段" in no_effect.detail
    assert answer.status == "pass" and answer.detail == "回答“ Paris”（P=0.61）包含“Paris”"
    assert prob.status == "fail" and "P(回答)=0.61 < 0.7" in prob.detail
    salience = check(spec.assertions[1], explanation([(a, b, 0.0)], "saliency"), lang="zh")
    assert salience.status == "error" and "no_effect 需要以 nats 为单位的得分" in salience.detail

    run = FileRun("p.prompt.md", spec, expl, [share, no_effect, answer, prob], seconds=1.5)
    out = io.StringIO()
    report([run], out, "zh")
    lines = out.getvalue().splitlines()
    assert lines[0] == "p.prompt.md：回答“ Paris” P=0.61 · occlusion · word · 1.5 秒"
    assert "无效的检查：unknown assertion 'maybe'" in lines[-2]  # its own line, last in the file
    assert lines[-1] == (
        "promptxray check：未通过：1 个文件中共 5 项检查：1 项通过，3 项未通过，1 项出错"
    )


# --- promptxray check, on the tiny model -------------------------------------------------------


@pytest.fixture
def model(stories) -> str:  # the session's loaded model: the CLI reuses it
    return str(STORIES)


def test_a_folder_with_a_failing_prompt_exits_1_with_evidence_and_junit(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
):
    junit = tmp_path / "report.xml"
    status = main(["check", str(CHECKS), "--model", model, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert status == 1
    lines = out.splitlines()
    failing = [ln for ln in lines if ln.lstrip().startswith("FAIL")]
    assert [ln.split()[1] for ln in failing] == [f"{FAILING}:9:", f"{FAILING}:10:"]
    assert "min_probability: 0.9" in failing[0] and "P(answer)=" in failing[0]
    assert "< 0.9" in failing[0] and "answer 'saw" in failing[0]
    assert "no_effect: line 21" in failing[1] and "effect +" in failing[1]
    assert ">= 0.1 nats" in failing[1]
    assert sum(ln.lstrip().startswith("PASS") for ln in lines) == 6
    assert lines[-1] == (
        "promptxray check: FAILED: 8 checks in 2 files: 6 passed, 2 failed, 0 errors"
    )

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == (
            "8",
            "2",
            "0",
        )
    cases = suite.findall("testcase")
    assert len(cases) == 8
    assert {c.get("classname") for c in cases} == {str(PASSING), str(FAILING)}
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == [
        "line 9: min_probability: 0.9",
        "line 10: no_effect: line 21",
    ]
    failure = failed[1].find("failure")
    assert failure is not None and failure.get("type") == "AssertionFailed"
    assert "effect +" in (failure.get("message") or "")
    assert "share: " in (failure.text or "") and "answer: 'saw" in (failure.text or "")
    assert all(c.find("error") is None for c in cases)


def test_all_passing_exits_0(tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]):
    shutil.copy(PASSING, tmp_path / "good.prompt.md")
    (tmp_path / "notes.txt").write_text("no checks here\n")
    (tmp_path / "plain.prompt.md").write_text("---\ntitle: x\n---\nOnce upon a time\n")
    status = main(["check", str(tmp_path), "--model", model])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.splitlines()[-1].startswith("promptxray check: OK: 4 checks in 1 file: 4 passed")


def test_invalid_checks_exit_2_with_line_numbers_and_junit_errors(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
):
    bad = tmp_path / "bad.prompt.md"
    bad.write_text(
        front(
            "checks:\n"
            "  granularity: line\n"
            "  assert:\n"
            "    - answer_contains: saw\n"  # 6: checked
            "    - no_effect: {section: Missing}\n"  # 7
            "    - min_share: {line: 13, share: 1.5}\n"  # 8
            "    - maybe: 1\n"  # 9
        )
    )
    junit = tmp_path / "j.xml"
    status = main(["check", str(bad), "--model", model, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert status == 2
    errors = [ln.split()[1] for ln in out.splitlines() if ln.lstrip().startswith("ERROR")]
    assert errors == [f"{bad}:7:", f"{bad}:8:", f"{bad}:9:"]
    assert "no Markdown heading 'Missing'" in out and "not 1.5" in out
    assert "unknown assertion 'maybe'" in out
    assert f"PASS  {bad}:6:" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "0", "3")
    assert len(suite.findall("testcase/error")) == 3


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["check", str(tmp_path)]) == 2  # an empty folder: nothing to check
    assert "no prompt files with checks" in capsys.readouterr().err
    plain = tmp_path / "a.prompt.md"
    plain.write_text("Once upon a time\n")
    assert main(["check", str(plain)]) == 2  # a file given by name must have checks
    assert "has no checks" in capsys.readouterr().out
