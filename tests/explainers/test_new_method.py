"""A new leave-one-out method, registered with one decorator and no other change, gets what
occlusion gets: refinement at granularity "auto", the anytime stages, and its own line scores as
the editor's "no measurable effect" hints (no second, line-level run)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from promptxray.explainers.anytime import explain_stages, run_stages, stage_plan
from promptxray.explainers.context import MethodContext
from promptxray.explainers.explain import explain
from promptxray.explainers.registry import (
    MethodResult,
    get_method,
    leave_one_out_method,
    register,
    unregister,
)
from promptxray.explainers.units import group_units
from promptxray.server.scheduler import Engine, Job
from tests.conftest import STORIES
from tests.helpers import F32_NATS, direct_target_logprob, request_for

NAME = "test_pad_occlusion"
STORY = (
    "Once upon a time there was a little girl.\nShe had a red ball and a small dog.\n"
    "One day the dog ran to the park.\nThe little girl named"
)
# a removal effect is the difference of two float32 log-probabilities, each from forwards in
# another batch shape than the plain one it is checked against
NATS = 2 * F32_NATS


def padded(ctx: MethodContext, unit: list[int]) -> list[int]:
    """The prompt ids with the unit's tokens replaced by the pad token (not removed)."""
    drop = {ctx.input.positions[i] for i in unit}
    return [ctx.backend.pad_id if p in drop else t for p, t in enumerate(ctx.input.ids)]


@pytest.fixture
def method() -> Iterator[str]:
    @register(
        NAME,
        "each unit replaced by the pad token: the drop in the target's log-probability",
        score_kind="removal",
        leave_one_out=True,
    )
    def pad_occlusion(ctx: MethodContext) -> MethodResult:
        ablated = ctx.score_variants([padded(ctx, unit) for unit in ctx.units])
        return MethodResult(
            unit_scores=ctx.base_score - ablated, ablated_logprob=[float(x) for x in ablated]
        )

    yield NAME
    unregister(NAME)


def direct_line_effects(stories, text: str, target: list[int]) -> np.ndarray:
    """Each line's effect with its tokens padded out, from plain unbatched forwards."""
    from promptxray.explainers.inputs import build_input
    from promptxray.explainers.prompt.document import parse_document

    doc = parse_document(text, None)
    mi = build_input(doc, stories, None)
    base = direct_target_logprob(stories.model, mi.ids, target)
    effects = []
    for unit in group_units(doc.source, mi.tokens, "line"):
        drop = {mi.positions[i] for i in unit}
        ids = [stories.pad_id if p in drop else t for p, t in enumerate(mi.ids)]
        effects.append(base - direct_target_logprob(stories.model, ids, target))
    return np.array(effects)


def test_a_registered_leave_one_out_method_gets_the_anytime_stages(stories, method):
    request = request_for(STORY, method=method, granularity="auto", max_new_tokens=4)
    plan = stage_plan(request, stories)  # the most it may do (outline, top_lines: if useful)
    assert plan[0] == "outline" and plan[-2:] == ["lines", "refined"] and "blocks" in plan
    stages = list(explain_stages(request, stories))
    names = [s.stage.name for s in stages if s.stage]
    assert names[0] == "blocks" and names[-2:] == ["lines", "refined"]
    assert [n for n in plan if n in names] == list(dict.fromkeys(names))
    lines, final = stages[-2], stages[-1]
    assert lines.method == final.method == method
    assert lines.stage is not None and lines.stage.granularity == "line"
    target = [t.token_id for t in final.target.tokens]
    expected = direct_line_effects(stories, STORY, target)
    # the lines stage: each line of the blocks that matter exact (inert blocks stay whole)
    single = [(STORY.count("\n", 0, s.start), s.score) for s in lines.spans if "\n" not in s.text]
    assert single and all(abs(score - expected[i]) <= NATS for i, score in single)
    # the refined stage is the method's own granularity-"auto" result, refined by its scores
    plain = explain(
        request_for(STORY, method=method, granularity="auto", target_ids=target), backend=stories
    )
    assert [(s.start, s.end) for s in final.spans] == [(s.start, s.end) for s in plain.spans]
    got, want = (np.array([s.score for s in e.spans]) for e in (final, plain))
    assert np.abs(got - want).max() <= NATS
    assert final.hierarchy is not None
    assert np.abs(np.array(final.hierarchy.line_scores) - expected).max() <= NATS
    # the front ends' loop: the earlier stages to the callback, the final one returned
    seen: list[str] = []
    result = run_stages(request, stories, on_stage=lambda s: seen.append(s.stage.name))
    assert seen == names[:-1] and result.stage is not None and result.stage.final


def test_its_own_line_scores_are_the_no_effect_hints(stories, method):
    assert get_method(method).leave_one_out and leave_one_out_method(method) == method
    engine = Engine()
    try:
        request = request_for(STORY, method=method, granularity="line", model=str(STORIES))
        result = engine.run(Job("file:///story.prompt", 1, request))
        assert result.error is None and result.explanation is not None
        # no second run: the hints are the main explanation's own removal effects
        assert result.lines is result.explanation
        # and a method that is not leave-one-out gets them from the default one (occlusion)
        other = request_for(STORY, method="shapley", granularity="line", model=str(STORIES))
        hinted = engine.run(Job("file:///story.prompt", 2, other))
        assert hinted.lines is not None and hinted.lines.method == "occlusion"
        assert hinted.lines is not hinted.explanation
    finally:
        engine.shutdown()


def test_leave_one_out_scores_must_be_removal_effects():
    with pytest.raises(ValueError, match="removal"):
        register(NAME, "not a removal effect", score_kind="estimate", leave_one_out=True)(
            lambda ctx: MethodResult()
        )
    unregister(NAME)
