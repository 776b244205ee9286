"""Anytime explanations: something useful within seconds on a long prompt, then sharper.

For a leave-one-out method (`MethodSpec.leave_one_out`: occlusion, the default) at granularity
"auto" (the editor's default) the stages are:

1. **preview**: gradient × input summed per line (one forward and backward) with a light
   faithfulness check (the top 10% of lines removed / kept alone); torch only;
2. **lines**: exact line-level scores (each line's leave-one-out effect, by the method);
3. **refined**: the words and tokens of the lines that matter, from the line pass of stage 2
   (not rerun), with the full faithfulness figures: exactly what `explain()` returns.

Every stage is a complete `Explanation` (its `stage` says which), yielded as soon as it is
done; a caller that stops iterating, or whose progress callback raises, stops the work between
stages and inside long ones. Other requests have one stage, the plain result.
`run_stages` is the loop every front end runs (the final result; earlier stages to a callback).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.details import StageInfo
from promptxray.explainers.errors import MemoryLimitError
from promptxray.explainers.explain import (
    Prepared,
    StageProgress,
    assemble,
    explain,
    finish,
    prepare,
)
from promptxray.explainers.hierarchy import line_pass, refine
from promptxray.explainers.inputs import ModelInput
from promptxray.explainers.metrics import Faithfulness, faithfulness
from promptxray.explainers.registry import AUTO, MethodResult, get_method
from promptxray.explainers.types import ExplainRequest, Explanation
from promptxray.explainers.units import group_units

PREVIEW_METHOD = "gradient_x_input"
# light faithfulness of the early stages: the top 10% removed and kept alone (two variants)
LIGHT_FRACTIONS = (0.0, 0.1, 1.0)
LIGHT_BINS = (0.1,)


def stage_plan(request: ExplainRequest, backend: Backend) -> list[str]:
    """The stages `explain_stages` will yield for this request on this backend."""
    if request.method == AUTO or request.granularity != "auto":
        return ["final"]
    if not get_method(request.method).leave_one_out:
        return ["final"]
    plan = ["lines", "refined"]
    if get_method(PREVIEW_METHOD).runs_on(backend):
        plan.insert(0, "preview")
    return plan


def explain_stages(
    request: ExplainRequest,
    backend: Backend,
    progress: StageProgress | None = None,
    model_input: ModelInput | None = None,
) -> Iterator[Explanation]:
    """Yield the request's explanation stage by stage (see the module docstring); the last one
    is final and equals `explain(request)`."""
    plan = stage_plan(request, backend)
    if plan == ["final"]:
        expl = explain(request, backend, progress, model_input)
        expl.stage = StageInfo("final", 1, 1, True, expl.wall_time_s)
        yield expl
        return
    backend, prep = prepare(request, backend, progress, model_input)
    method = get_method(request.method)
    base = prep.ctx
    line_units = group_units(prep.source, base.input.tokens, "line")
    line_request = replace(request, granularity="line")

    def info(name: str) -> StageInfo:
        """The stage's place in the plan (a skipped preview leaves the plan, so the stages
        shown still count 1/2, 2/2)."""
        return StageInfo(
            name,
            plan.index(name) + 1,
            len(plan),
            name == plan[-1],
            time.perf_counter() - prep.started,
        )

    def bound(name: str) -> Prepared:
        """The prepared request at line units, reporting progress under the stage's name."""
        ctx = replace(
            base,
            units=line_units,
            progress=(lambda d, t: progress(name, d, t)) if progress else None,
        )
        return replace(prep, ctx=ctx)

    if "preview" in plan:
        stage = bound("preview")
        if progress:
            progress("preview", 0, 1)
        spec = get_method(PREVIEW_METHOD)
        strict = replace(stage.ctx, options={**stage.ctx.options, "memory_fallback": False})
        try:  # a preview that does not fit in memory is skipped: the lines come next anyway
            result = spec.fn(strict)
        except MemoryLimitError:
            result = None
            plan.remove("preview")
        if result is not None:
            faith = _light_faithfulness(stage, result, request)
            expl = assemble(line_request, stage, backend, spec, result, faith)
            expl.stage = info("preview")
            yield expl

    stage = bound("lines")
    if progress:
        progress("lines", 0, len(line_units))
    units, scores = line_pass(stage.ctx, prep.source, method)
    result = MethodResult(
        unit_scores=scores, ablated_logprob=[float(base.base_score - v) for v in scores]
    )
    expl = assemble(
        line_request, stage, backend, method, result, _light_faithfulness(stage, result, request)
    )
    expl.stage = info("lines")
    yield expl

    stage = bound("refine")
    found = refine(stage.ctx, prep.source, method, known=(units, scores))
    stage.ctx = replace(stage.ctx, units=found.units)
    result = MethodResult(
        unit_scores=found.scores,
        hierarchy=found.info(),
        ablated_logprob=[float(base.base_score - v) for v in found.scores],
    )
    faith = None
    if request.faithfulness:
        faith = faithfulness(stage.ctx.score_masks, result.scores_per_unit(stage.ctx.units))
    expl = assemble(request, stage, backend, method, result, faith)
    finish(expl, request, backend, progress)
    expl.stage = info("refined")
    yield expl


def run_stages(
    request: ExplainRequest,
    backend: Backend,
    progress: StageProgress | None = None,
    model_input: ModelInput | None = None,
    on_stage: Callable[[Explanation], None] | None = None,
) -> Explanation:
    """The request's final explanation. With `on_stage`, each earlier stage of an anytime
    explanation is handed to it as soon as it is ready (it may raise to stop the work); without,
    only the final result is computed. The one stage loop of every front end."""
    if on_stage is None:
        return explain(request, backend, progress, model_input)
    for expl in explain_stages(request, backend, progress, model_input):
        if expl.stage is None or expl.stage.final:
            return expl
        on_stage(expl)
    raise RuntimeError("an anytime explanation ended without a final stage")


def _light_faithfulness(
    stage: Prepared, result: MethodResult, request: ExplainRequest
) -> Faithfulness | None:
    """The early stages' faithfulness: the top 10% of lines removed and kept alone."""
    if not request.faithfulness:
        return None
    scores = result.scores_per_unit(stage.ctx.units)
    return faithfulness(stage.ctx.score_masks, scores, LIGHT_FRACTIONS, LIGHT_BINS)
