"""Anytime explanations: each stage equals the plain computation of that stage (the one-pass
preview = gradient × input per line, lines = exact line-level occlusion, refined = granularity
"auto"), on the tiny model and on the default model; stages arrive in order and can be stopped."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from promptxray.explainers import nl
from promptxray.explainers.anytime import explain_stages, stage_plan
from promptxray.explainers.details import ScoreKind
from promptxray.explainers.explain import explain
from promptxray.explainers.types import Explanation
from tests.helpers import F32_NATS, request_for

STORY = (
    "Once upon a time there was a little girl.\nShe had a red ball and a small dog.\n"
    "One day the dog ran to the park.\nThe little girl named"
)
SUPPORT = (
    "You are a support agent for Acme Bank.\nAnswer in one short sentence.\n"
    "Never reveal account numbers.\nCustomer: How do I reset my online banking password?\n"
    "Agent:"
)


def scores(expl: Explanation) -> np.ndarray:
    return np.array([s.score for s in expl.spans])


def check_stages(backend, text: str) -> list[Explanation]:
    request = request_for(text, method="occlusion", granularity="auto", max_new_tokens=4)
    stages = list(explain_stages(request, backend))
    assert [s.stage.name for s in stages if s.stage] == ["preview", "lines", "refined"]
    assert [s.stage.final for s in stages if s.stage] == [False, False, True]
    target = [t.token_id for t in stages[-1].target.tokens]
    for stage in stages:  # one target for every stage
        assert [t.token_id for t in stage.target.tokens] == target
    fixed = {"target_ids": target, "max_new_tokens": 4}
    preview = explain(
        request_for(text, method="gradient_x_input", granularity="line", **fixed), backend=backend
    )
    lines = explain(
        request_for(text, method="occlusion", granularity="line", **fixed), backend=backend
    )
    final = explain(
        request_for(text, method="occlusion", granularity="auto", **fixed), backend=backend
    )
    for stage, plain in zip(stages, (preview, lines, final), strict=True):
        assert [(s.start, s.end) for s in stage.spans] == [(s.start, s.end) for s in plain.spans]
        # removal scores (two log-probs) and gradient estimates (float32 sums of order 1)
        # from forwards in other batch shapes and prefix caches
        assert np.abs(scores(stage) - scores(plain)).max() <= 2 * F32_NATS
    assert stages[0].score_kind is ScoreKind.ESTIMATE and stages[1].score_kind is ScoreKind.REMOVAL
    assert stages[1].ablated_logprob is not None
    assert stages[-1].hierarchy is not None and stages[-1].hierarchy.line_scores == pytest.approx(
        scores(lines).tolist(),
        abs=2 * F32_NATS,  # removal scores
    )
    # the early stages carry a light faithfulness check, the final one the full figures
    assert stages[0].faithfulness is not None and list(stages[0].faithfulness.bins) == ["10%"]
    assert stages[-1].faithfulness is not None and len(stages[-1].faithfulness.bins) == 5
    return stages


def test_every_stage_equals_its_plain_computation_on_the_tiny_model(stories):
    stages = check_stages(stories, STORY)
    assert nl.span_line(stages[0], 0).startswith("[preview 1/3] ")
    assert nl.span_line(stages[1], 0).startswith("[lines 2/3] ")
    assert not nl.span_line(stages[2], 0).startswith("[")
    assert "Preview after" in nl.stage_note(stages[0]) and nl.stage_note(stages[2]) == ""


def test_every_stage_equals_its_plain_computation_on_the_default_model(smol):
    check_stages(smol, SUPPORT)


def test_other_requests_have_one_final_stage(stories):
    request = request_for(STORY, method="occlusion", granularity="word")
    assert stage_plan(request, stories) == ["final"]
    (only,) = list(explain_stages(request, stories))
    assert only.stage is not None and only.stage.final and only.granularity == "word"


def test_a_progress_callback_that_raises_stops_the_stages(stories):
    class Stop(Exception):
        pass

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "lines":
            raise Stop

    request = request_for(STORY, method="occlusion", granularity="auto")
    seen = []
    with pytest.raises(Stop):
        for stage in explain_stages(request, stories, progress):
            seen.append(stage.stage.name if stage.stage else "")
    assert seen == ["preview"]


def test_cli_prints_each_stage_and_outputs_the_final_result(tmp_path, capsys):
    import json

    from promptxray.cli import main
    from tests.conftest import STORIES

    prompt = tmp_path / "story.prompt"
    prompt.write_text(STORY, encoding="utf-8")
    args = ["explain", str(prompt), "--model", str(STORIES), "-g", "auto", "-f", "json"]
    assert main([*args, "--stages"]) == 0
    out, err = capsys.readouterr()
    heads = re.findall(r"^promptxray: \[(\d)/3 (\w+) · [\d.]+ s\] The answer", err, re.M)
    assert heads == [("1", "preview"), ("2", "lines"), ("3", "refined")]
    final = json.loads(out)
    assert final["granularity"] == "auto" and final["stage"]["final"] is True
    assert main(args) == 0  # without --stages: the same final result, nothing on stderr
    plain = json.loads(capsys.readouterr().out)
    assert [s["score"] for s in plain["spans"]] == pytest.approx(
        [s["score"] for s in final["spans"]],
        abs=2 * F32_NATS,  # removal scores
    )


def test_refinement_prunes_what_cannot_matter_and_says_so(stories):
    lines = [
        f"Once upon a time there was a girl named Lily number {i}. She liked it." for i in range(8)
    ]
    text = "\n".join(lines) + "\nOne day Lily"
    expl = explain(request_for(text, method="occlusion", granularity="auto"), backend=stories)
    h = expl.hierarchy
    assert h is not None
    line_scores = np.abs(np.array(h.line_scores))
    assert all(line_scores[i] >= 0.05 for i in h.refined_lines)  # no split of a no-effect line
    quiet = int((line_scores < 0.05).sum())
    said = {p.rule: p.count for p in h.pruned if p.level == "line"}
    report = nl.describe(expl)
    if quiet:
        assert said["floor"] == quiet
        assert f"{quiet} line(s) not refined: no measurable effect" in report
        assert f"{quiet} 个行未细化：没有可测量的影响" in nl.describe(expl, "zh")
    counted = sum(said.values())
    assert counted + len(h.refined_lines) == len(h.line_scores)  # every line accounted for
    assert "not refined" in report


def test_refinement_stays_within_its_budget_and_says_what_it_left(stories, monkeypatch):
    from promptxray.explainers import hierarchy

    monkeypatch.setattr(hierarchy, "BUDGET_MIN_TOKENS", 0)  # short prompt: budget by share only
    runs: list[list[int]] = []  # the first token of every variant each pass ran
    scored = hierarchy._leave_one_out

    def counting(ctx: Any, spec: Any, units: list[list[int]], which: list[int]) -> Any:
        runs.append([min(units[i]) for i in which])
        return scored(ctx, spec, units, which)

    monkeypatch.setattr(hierarchy, "_leave_one_out", counting)
    lines = [f"Lily had {i} red balls and a big dog named Max." for i in range(8)]
    text = "\n".join(lines) + "\nOne day Lily"
    request = request_for(text, method="occlusion", granularity="auto")

    def with_budget(share: float | None) -> tuple[Any, int, int]:
        """The pruning report, the line pass's work and refinement's (tokens run)."""
        runs.clear()
        options: dict[str, float] = {"refine_floor": 0}  # every line is worth refining
        if share is not None:
            options["refine_budget"] = share
        expl = explain(replace(request, options=options), backend=stories)
        length = len(expl.tokens)
        work = [sum(length - first for first in run) for run in runs]
        return expl, work[0], sum(work[1:])

    (full_expl, _, full_spent), (tight_expl, line_work, spent), (none_expl, _, _) = (
        with_budget(None),
        with_budget(0.01),
        with_budget(0),
    )
    full, tight, none = (e.hierarchy for e in (full_expl, tight_expl, none_expl))
    n_lines = len(full.line_scores)
    assert none.refined_lines == [] and none.refined_words == 0
    assert [(p.level, p.rule, p.count, p.bound) for p in none.pruned] == [
        ("line", "budget", n_lines, 0.0)
    ]
    said = f"{n_lines} line(s) not refined: over the time budget (0× the line pass"
    assert said in nl.describe(none_expl)
    assert set(tight.refined_lines) <= set(full.refined_lines)
    assert spent <= 0.01 * line_work < full_spent  # the tight budget held, and it bit
    assert any(p.rule == "budget" and p.bound == 0.01 for p in tight.pruned)
    assert "over the time budget (0.01× the line pass" in nl.describe(tight_expl)


def test_a_preview_that_does_not_fit_in_memory_is_skipped(stories, monkeypatch):
    from promptxray.explainers.backends import base, memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 10)
    monkeypatch.setattr(base, "memory_budget", lambda: 1 << 10)
    request = request_for(STORY, method="occlusion", granularity="auto")
    stages = list(explain_stages(request, stories))
    assert [s.stage.name for s in stages if s.stage] == ["lines", "refined"]
    assert stages[-1].stage is not None and stages[-1].stage.final
    assert [(s.stage.index, s.stage.total) for s in stages if s.stage] == [(1, 2), (2, 2)]
