"""The interpretation layer (`explainers/nl`): span lines, summaries and the one "no measurable
effect" rule, checked against numbers computed here; typed results and their JSON (schema 2,
reading schema 1); explain() orchestration (self-explanation, a given tokenised input, where
the body starts); and the layering (the library and CLI run without the front ends' packages)."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from promptxray.explainers import nl
from promptxray.explainers.details import HierarchyInfo, ScoreKind
from promptxray.explainers.explain import explain
from promptxray.explainers.nl import format_prob
from promptxray.explainers.registry import list_methods
from promptxray.explainers.types import SCHEMA_VERSION, Explanation
from tests.conftest import REPO, STORIES
from tests.explainers.nl.test_nl import hand_made
from tests.helpers import request_for

STORY = "Once upon a time there was a\nlittle girl named"


@pytest.fixture(scope="module")
def occ(stories) -> Explanation:
    return explain(request_for(STORY, method="occlusion", granularity="word"), backend=stories)


def test_span_line_states_the_measured_removal(occ):
    for i, span in enumerate(occ.spans):
        text = nl.span_line(occ, i, threshold=0.0)
        rank = 1 + sum(abs(s.score) > abs(span.score) for s in occ.spans)
        assert text.startswith(f"#{rank} of {len(occ.spans)} words")
        assert occ.ablated_logprob is not None
        after = math.exp(occ.ablated_logprob[i])
        assert f"{format_prob(occ.target.prob)} → {format_prob(after)}" in text


def test_one_threshold_governs_no_effect_everywhere(occ):
    scores = sorted(abs(s.score) for s in occ.spans)
    threshold = (scores[2] + scores[3]) / 2  # exactly three spans fall under it
    quiet = [i for i, s in enumerate(occ.spans) if abs(s.score) < threshold]
    assert nl.no_effect(occ, threshold) == quiet and len(quiet) == 3
    for i in range(len(occ.spans)):
        assert ("no measurable effect" in nl.span_line(occ, i, threshold=threshold)) == (i in quiet)
    assert f"3 of {len(occ.spans)} words have no measurable effect" in nl.summary(
        occ, threshold=threshold
    )
    assert f"3 of {len(occ.spans)} parts" in nl.describe(occ, threshold=threshold)
    assert "no measurable effect" not in nl.summary(occ, threshold=0.0)


def test_summary_is_short_and_states_faithfulness_once(occ):
    text = nl.summary(occ)
    assert len(text) < 400 and text.count("Faithfulness") == 1
    top = max(occ.spans, key=lambda s: s.score)
    assert f'"{" ".join(top.text.split())}"' in text
    zh = nl.summary(occ, "zh")
    assert zh.count("忠实度") == 1


def test_verdict_follows_comprehensiveness_minus_sufficiency():
    def with_figures(comp: float, suff: float) -> Explanation:
        return hand_made(metrics={"comprehensiveness_logprob": comp, "sufficiency_logprob": suff})

    assert nl.verdict(with_figures(7.0, 5.3)).startswith("Faithfulness: good")
    assert nl.verdict(with_figures(5.5, 5.3)).startswith("Faithfulness: fair")
    assert nl.verdict(with_figures(2.0, 11.0)).startswith("Faithfulness: weak")
    assert nl.verdict(hand_made(metrics={})) == "Faithfulness was not measured."


def test_score_kind_sets_the_wording():
    salience = hand_made(method="saliency", scores=(2, 1, 0.5, 0.01, 0, 1.5))
    assert salience.score_kind is ScoreKind.SALIENCE  # from the registry: no kind was given
    assert nl.no_effect(salience) == []  # an unsigned salience never claims "no effect"
    assert "unsigned" in nl.span_line(salience, 0)
    estimate = hand_made(method="integrated_gradients")
    assert "by integrated_gradients" in nl.span_line(estimate, 0)
    assert "raises log P" in nl.span_line(estimate, 0)
    assert "lowers log P" in nl.span_line(estimate, 1)


def test_score_kinds_say_what_a_score_means():
    """Each kind's properties, written out here, and the kinds every method and file gets."""
    in_nats = {ScoreKind.REMOVAL, ScoreKind.ESTIMATE}
    signed = {*in_nats, ScoreKind.AGREEMENT}  # a drop in sampled agreement: signed, not nats
    for kind in ScoreKind:
        assert kind.in_nats == (kind in in_nats) and kind.signed == (kind in signed)
        assert kind.about_answer == (kind is not ScoreKind.ACTIVATION)
        expected = {"removal": "removal", "estimate": "signed", "agreement": "signed"}.get(
            kind.value, "unsigned"
        )
        assert kind.family == expected and str(kind) == kind.value
    for spec in list_methods():  # a hand-made Explanation gets its method's registered kind
        assert hand_made(method=spec.name).score_kind is spec.score_kind
    assert hand_made(method="not_a_method").score_kind is ScoreKind.ESTIMATE
    data = hand_made(method="saliency").to_dict()
    assert type(data["score_kind"]) is str and data["score_kind"] == "salience"
    assert Explanation.from_dict(data).score_kind is ScoreKind.SALIENCE


def test_typed_results_round_trip_and_version_1_still_reads(stories):
    expl = explain(
        request_for(STORY, method="occlusion", granularity="auto", self_explain=True),
        backend=stories,
    )
    assert isinstance(expl.hierarchy, HierarchyInfo) and expl.faithfulness is not None
    assert expl.self_explanation is not None
    data = json.loads(expl.to_json())
    assert data["schema_version"] == SCHEMA_VERSION and data["score_kind"] == "removal"
    assert Explanation.from_json(expl.to_json()) == expl
    # the same result as a version-1 file wrote it: typed parts were keys of `details`
    v1 = dict(data, schema_version=1)
    v1["details"] = {
        **data["details"],
        **{k: data[k] for k in ("ablated_logprob", "hierarchy", "faithfulness")},
        "self_explanation": data["self_explanation"],
    }
    for key in ("score_kind", "body_start", "ablated_logprob", "hierarchy", "faithfulness"):
        v1.pop(key)
    for key in ("self_explanation", "auto", "counterfactuals"):
        v1.pop(key)
    old = Explanation.from_dict(v1)
    assert old == expl


def test_explain_reports_the_body_and_accepts_a_tokenised_input(stories):
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import parse_document

    text = "---\ntitle: t\n---\n" + STORY
    request = request_for(text, path="x.prompt.md", granularity="word")
    plain = explain(request, backend=stories)
    assert plain.body_start == text.index("Once")
    given = build_input(parse_document(text, "x.prompt.md"), stories)
    reused = explain(request, backend=stories, model_input=given)
    # the same ids, so the same forwards in the same shapes: equal to rounding
    assert [s.score for s in reused.spans] == pytest.approx([s.score for s in plain.spans])


def test_library_never_imports_its_front_ends():
    for path in (REPO / "explainers").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(
                    ("promptxray.server", "promptxray.chat_ui", "promptxray.cli", "pygls")
                ), f"{path.relative_to(REPO)} imports {name}"
                assert not name.startswith(("gradio", "lsprotocol")), path


def test_cli_explains_without_the_front_ends_packages(tmp_path: Path):
    """`pip install promptxray` alone: pygls, lsprotocol and gradio cannot be imported."""
    prompt = tmp_path / "p.prompt"
    prompt.write_text(STORY, encoding="utf-8")
    code = (
        "import sys\n"
        "for name in ('pygls', 'lsprotocol', 'gradio'):\n"
        "    sys.modules[name] = None\n"
        "from promptxray.cli import main\n"
        f"rc = main(['explain', {str(prompt)!r}, '--model', {str(STORIES)!r}, '-f', 'json'])\n"
        "assert rc == 0, rc\n"
        "assert main(['lsp']) == 2\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["score_kind"] == "removal"
    assert "pip install 'promptxray[lsp]'" in done.stderr


def test_cli_prints_the_summary_and_the_report_only_when_verbose(tmp_path: Path, capsys):
    from promptxray.cli import main

    prompt = tmp_path / "p.prompt"
    prompt.write_text(STORY, encoding="utf-8")
    base = ["explain", str(prompt), "--model", str(STORIES), "--color", "never"]
    assert main(base) == 0
    short = capsys.readouterr().out
    assert "Top drivers:" in short and "Faithfulness: " in short  # the list and the verdict
    assert short.count("Faithfulness") == 1 and "comprehensiveness" not in short
    assert main([*base, "-v"]) == 0
    full = capsys.readouterr().out
    summary = short.splitlines()[-1]  # the same summary, then the report
    assert summary in full.splitlines() and "comprehensiveness" in full
    assert "The model's answer" in full
