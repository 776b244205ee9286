"""Anytime explanations: something useful within seconds on a long prompt, then sharper, and
every stage faithful to the final result at its own granularity.

For a leave-one-out method (`MethodSpec.leave_one_out`: occlusion, the default) at granularity
"auto" (the editor's default) the stages are:

0. **outline** (a prompt of more than 2 × OUTLINE_PARTS blocks): a few large runs of whole
   blocks, each scored exactly: a first picture after about two plain forwards, whatever the
   prompt's length;
1. **blocks**: the prompt's natural blocks (sections, chunks of about √lines lines), each
   scored exactly by the method, and the inert ones tested for redundancy (blocks.py): a
   handful of variants;
2. **lines_bf16** (only where the backend scores bf16 fast, e.g. CPUs with AMX): the lines of
   the blocks that matter in bfloat16, the TOP_EXACT largest rescored in fp32; the stage states
   the largest |bf16 − fp32| it saw on them;
3. **top_lines**: exact scores of the lines of the blocks that matter most (the top blocks
   holding COVER of the blocks' |effect|), every other block still whole; shown again after
   each further block that matters, largest first, so the picture sharpens while the user
   watches; skipped when those are all the blocks that matter;
4. **lines**: exact scores of every line of the blocks that matter; inert blocks stay whole,
   their block's exact score standing for their lines (`StageInfo.pending_lines`);
5. **refined**: the remaining lines, then the words and tokens of the lines that matter, with
   the full faithfulness figures, and the lines tested in pairs for redundancy and conflict
   as `explain()` tests them (interactions.py): exactly what `explain()` returns, plus the
   blocks' redundant pairs.

A prompt whose blocks are its lines (a short one) has only "lines" and "refined".
The gradient × input preview the first stage replaces was not faithful: Spearman −0.16 and
0.05 against exact lines on two prompts (bench/README.md). Every stage is a complete
`Explanation` whose `stage` says its granularity and fidelity, yielded as soon as it is done;
a caller that stops iterating, or whose progress callback raises, stops the work between
stages and inside long ones. Other requests have one stage, the plain result. `run_stages` is
the loop every front end runs (the final result; earlier stages to a callback).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from promptxray.explainers.backends.base import Backend
from promptxray.explainers.blocks import (
    Block,
    BlockPass,
    block_pass,
    natural_blocks,
    outline,
)
from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import PairTest, PartPair, StageFidelity, StageInfo
from promptxray.explainers.explain import (
    Prepared,
    StageProgress,
    assemble,
    explain,
    finish,
    line_pairs_into,
    prepare,
    reference_logprobs,
)
from promptxray.explainers.hierarchy import COVER, REFINE_FLOOR, refine, removal_effects
from promptxray.explainers.inputs import ModelInput
from promptxray.explainers.metrics import faithfulness
from promptxray.explainers.registry import AUTO, MethodResult, MethodSpec, get_method
from promptxray.explainers.types import ExplainRequest, Explanation
from promptxray.explainers.units import group_units

BF16 = "bf16"
TOP_EXACT = 10  # lines of the bf16 stage rescored in fp32 (the top by |bf16 score|)


def stage_plan(request: ExplainRequest, backend: Backend) -> list[str]:
    """The stages `explain_stages` will yield for this request on this backend (a prompt whose
    blocks are its lines skips "blocks" and "lines_bf16": the lines are as few)."""
    if request.method == AUTO or request.granularity != "auto":
        return ["final"]
    if not get_method(request.method).leave_one_out:
        return ["final"]
    plan = ["outline", "blocks", "top_lines", "lines", "refined"]
    if BF16 in backend.scoring_precisions:
        plan.insert(2, "lines_bf16")
    return plan


def explain_stages(
    request: ExplainRequest,
    backend: Backend,
    progress: StageProgress | None = None,
    model_input: ModelInput | None = None,
    wanted: Callable[[], list[int]] | None = None,
) -> Iterator[Explanation]:
    """Yield the request's explanation stage by stage (see the module docstring); the last one
    is final and equals `explain(request)`.

    `wanted` (the editor's hovers): file offsets the user asked about since the last call.
    A line there that the stage shown has no exact value for (inside a block shown whole, or
    a bf16 value) is scored next (its whole block, for a block), and that stage is yielded
    again with it: the same stage, sharper where the user looks."""
    plan = stage_plan(request, backend)
    if plan == ["final"]:
        expl = explain(request, backend, progress, model_input)
        expl.stage = StageInfo("final", 1, 1, True, expl.wall_time_s, request.granularity)
        yield expl
        return
    backend, prep = prepare(request, backend, progress, model_input)
    assert prep.doc is not None
    method = get_method(request.method)
    base = prep.ctx
    line_units = group_units(prep.source, base.input.tokens, "line", lead_spaces=base.lead_spaces)
    blocks = natural_blocks(prep.doc, base.input.tokens, line_units)
    floor = base.option("refine_floor", REFINE_FLOOR, float, lo=0)
    exact: dict[int, float] = {}  # line index -> its exact removal effect
    run = _Runner(request, prep, backend, method, plan, progress)
    found = BlockPass(blocks, np.zeros(len(blocks)), list(range(len(blocks))), [])
    redundant: list[PartPair] = []  # the pairs found so far, and what was tested
    pair_test: PairTest | None = None
    block_ranges: list[tuple[int, int]] = []
    shown: _View | None = None  # the stage last shown, as asked lines update it
    split_on_request: set[int] = set()  # blocks split into lines because the user asked

    def show(view: _View) -> Explanation:
        units, values = _mixed(blocks, found.scores, view.expanded, line_units, view.values)
        whole = _whole_lines(blocks, view.expanded)
        kind = "block" if view.name == "blocks" else "line"
        expl = run.stage(view.name, units, values, kind, redundant, view.fidelity, whole)
        expl.pair_test = pair_test
        return expl

    def answer_asked() -> Iterator[Explanation]:
        """Lines the user asked about (hovered) that the shown stage has no exact value for
        (inside a block shown whole, or in bf16): scored now, and the stage shown again."""
        if wanted is None or shown is None:
            return
        asked = {_line_at(base, line_units, offset) for offset in wanted()} - {None}
        blocks_asked = {_block_of(blocks, i) for i in asked if i is not None}
        split = {b for b in blocks_asked if b not in shown.expanded and len(blocks[b].lines) > 1}
        todo = {i for b in split for i in blocks[b].lines} | {
            i for i in asked if i is not None and _block_of(blocks, i) in shown.expanded
        }
        todo = {i for i in todo if i not in exact or shown.values.get(i) != exact[i]}
        if not todo:
            return
        exact.update(_scored(run.ctx(shown.name), method, line_units, sorted(todo - set(exact))))
        fid = shown.fidelity
        for i in sorted(todo):
            if not fid.exact and i in shown.values:  # a bf16 value now measured against fp32
                fid.max_error = max(fid.max_error, abs(shown.values[i] - exact[i]))
                fid.checked += 1
            shown.values[i] = exact[i]
        shown.expanded |= split
        split_on_request.update(split)
        yield show(shown)

    groups = outline(blocks)
    if not groups:
        plan.remove("outline")
    if len(blocks) == len(line_units):  # the blocks are the lines: score them once
        plan[:] = ["lines", "refined"]
    else:
        if groups:  # a long prompt: a few large parts first, about two plain forwards
            units = [[t for b in g for t in blocks[b].tokens] for g in groups]
            effects = removal_effects(run.ctx("outline"), method, units)
            pending = sum(len(blocks[b].lines) for g in groups for b in g)
            yield run.stage("outline", units, effects, "block", [], None, pending)
        found = block_pass(run.ctx("blocks"), method, blocks, floor)
        for block, score in zip(blocks, found.scores, strict=True):
            if len(block.lines) == 1:  # a one-line block's variant is its line's
                exact[block.lines[0]] = float(score)
        first_blocks = covering(found.matter, found.scores)
        split = [b for b in found.matter if len(blocks[b].lines) > 1]
        if not set(split) - set(first_blocks) or not set(split) & set(first_blocks):
            plan.remove("top_lines")  # it would split all the blocks "lines" does, or none
        shown = _View("blocks", set(), dict(exact), StageFidelity())
        first = show(shown)  # the pairs are named by the ranges its spans show
        block_ranges = [(s.start, s.end) for s in first.spans]
        if found.pairs is not None:
            redundant = found.pairs.part_pairs(found.scores, block_ranges)
            pair_test = found.pairs.test
        first.pairs, first.pair_test = list(redundant), pair_test
        yield first
        yield from answer_asked()
    focus = [line for b in found.matter for line in blocks[b].lines]

    if "lines_bf16" in plan:
        ctx = run.ctx("lines_bf16")
        with backend.precision(BF16):  # removal effects within bf16: f(x) in bf16 too
            approx = removal_effects(_rebased(ctx), method, [line_units[i] for i in focus])
        top = [focus[k] for k in np.argsort(-np.abs(approx), kind="stable")[:TOP_EXACT]]
        exact.update(
            zip(top, removal_effects(ctx, method, [line_units[i] for i in top]), strict=True)
        )
        error = max((abs(approx[focus.index(i)] - exact[i]) for i in top), default=0.0)
        scores = {i: exact.get(i, float(v)) for i, v in zip(focus, approx, strict=True)}
        fidelity = StageFidelity(False, float(error), len(top), BF16)
        shown = _View("lines_bf16", set(found.matter), scores, fidelity)
        yield show(shown)
        yield from answer_asked()

    def score_blocks(ctx: MethodContext, chosen: list[int]) -> Iterator[Explanation]:
        """The exact effect of every line of the chosen blocks (one call; block by block when
        the user may ask for lines meanwhile)."""
        for part in [[b] for b in chosen] if wanted is not None else [chosen]:
            lines = [i for b in part for i in blocks[b].lines if i not in exact]
            exact.update(_scored(ctx, method, line_units, lines))
            yield from answer_asked()

    # the lines of the blocks that matter, the largest first: "top_lines" after the blocks
    # holding COVER of their effect and again after each further block, "lines" when done
    done: set[int] = set()
    if "top_lines" in plan:
        ctx = run.ctx("top_lines")
        later = [b for b in found.matter if b not in first_blocks]
        for chunk in [first_blocks, *([b] for b in later[:-1])]:
            yield from score_blocks(ctx, chunk)
            done.update(chunk)
            shown = _View("top_lines", done | split_on_request, dict(exact), StageFidelity())
            yield show(shown)
            yield from answer_asked()
    yield from score_blocks(run.ctx("lines"), [b for b in found.matter if b not in done])
    shown = _View("lines", set(found.matter) | split_on_request, dict(exact), StageFidelity())
    yield show(shown)
    yield from answer_asked()

    ctx = run.ctx("refine")
    exact.update(
        _scored(ctx, method, line_units, [i for i in range(len(line_units)) if i not in exact])
    )
    line_scores = np.array([exact[i] for i in range(len(line_units))])
    hierarchy = refine(ctx, prep.source, method, known=(line_units, line_scores))
    final = replace(prep, ctx=replace(ctx, units=hierarchy.units))
    result = MethodResult(
        unit_scores=hierarchy.scores,
        hierarchy=hierarchy.info(),
        ablated_logprob=[float(base.base_score - v) for v in hierarchy.scores],
    )
    faith = None
    if request.faithfulness:
        faith = faithfulness(final.ctx.score_masks, result.scores_per_unit(final.ctx.units))
    expl = assemble(request, final, backend, method, result, faith)
    expl.pairs, expl.pair_test = list(redundant), pair_test
    assert result.hierarchy is not None
    # the lines, in pairs, as explain() tests them; the blocks' pairs kept
    line_pairs_into(expl, request, final, method, result.hierarchy)
    finish(expl, request, backend, progress)
    expl.stage = run.info("refined", "auto")
    yield expl


@dataclass
class _View:
    """A lines stage as shown: the blocks split into lines and each shown line's value (exact,
    or bf16 where `fidelity` says so)."""

    name: str
    expanded: set[int]
    values: dict[int, float]
    fidelity: StageFidelity


def _line_at(ctx: MethodContext, line_units: list[list[int]], offset: int) -> int | None:
    """The line (index into `line_units`) holding file offset `offset`, if any."""
    tokens = ctx.input.tokens
    for i, unit in enumerate(line_units):
        if tokens[unit[0]].start <= offset < tokens[unit[-1]].end:
            return i
    return None


def _block_of(blocks: list[Block], line: int) -> int:
    """The block holding a line."""
    return next(b for b, block in enumerate(blocks) if line in block.lines)


class _Runner:
    """The stages' shared state: the prepared request, the plan, and how a stage's context
    reports progress and becomes an Explanation."""

    def __init__(
        self,
        request: ExplainRequest,
        prep: Prepared,
        backend: Backend,
        method: MethodSpec,
        plan: list[str],
        progress: StageProgress | None,
    ) -> None:
        self.request, self.prep, self.backend, self.method = request, prep, backend, method
        self.plan, self.progress = plan, progress

    def ctx(self, name: str) -> MethodContext:
        """The request's context, reporting progress under the stage's name."""
        progress = self.progress
        if progress:
            progress(name, 0, 1)
        return replace(
            self.prep.ctx, progress=(lambda d, t: progress(name, d, t)) if progress else None
        )

    def info(
        self,
        name: str,
        granularity: str,
        fidelity: StageFidelity | None = None,
        pending_lines: int = 0,
    ) -> StageInfo:
        """The stage's place in the plan, what its parts are and how exact they are."""
        return StageInfo(
            name,
            self.plan.index(name) + 1,
            len(self.plan),
            name == self.plan[-1],
            time.perf_counter() - self.prep.started,
            granularity,
            fidelity or StageFidelity(),
            pending_lines,
        )

    def stage(
        self,
        name: str,
        units: list[list[int]],
        scores: Sequence[float],
        granularity: str,
        redundant: list[PartPair],
        fidelity: StageFidelity | None = None,
        pending_lines: int = 0,
    ) -> Explanation:
        """An early stage's Explanation: `units` with their `scores` (no faithfulness curves:
        an exact stage needs none, and an approximate one states its measured error)."""
        values = np.asarray(scores, dtype=float)
        base = self.prep.ctx.base_score
        result = MethodResult(unit_scores=values, ablated_logprob=[float(base - v) for v in values])
        prep = replace(self.prep, ctx=replace(self.prep.ctx, units=units))
        expl = assemble(self.request, prep, self.backend, self.method, result, None)
        expl.pairs = list(redundant)
        expl.stage = self.info(name, granularity, fidelity, pending_lines)
        return expl


def _rebased(ctx: MethodContext) -> MethodContext:
    """The context with f(x) rescored in the backend's current precision, so that a removal
    effect is a difference of two figures computed alike."""
    base, foil = reference_logprobs(ctx.backend, ctx.input.ids, ctx.target_ids, ctx.foil_ids)
    return replace(ctx, base_logprobs=base, foil_logprobs=foil)


def _scored(
    ctx: MethodContext, spec: MethodSpec, line_units: list[list[int]], lines: list[int]
) -> dict[int, float]:
    """The exact removal effect of each listed line."""
    values = removal_effects(ctx, spec, [line_units[i] for i in lines])
    return {i: float(v) for i, v in zip(lines, values, strict=True)}


def covering(order: list[int], scores: np.ndarray, share: float = COVER) -> list[int]:
    """The first blocks of `order` (largest |effect| first) that hold `share` of their total
    |effect|: the blocks whose lines are scored first (at least one)."""
    total = float(sum(abs(scores[b]) for b in order))
    chosen: list[int] = []
    held = 0.0
    for b in order:
        if chosen and held >= share * total:
            break
        chosen.append(b)
        held += abs(float(scores[b]))
    return chosen


def _mixed(
    blocks: list[Block],
    block_scores: np.ndarray,
    expanded: set[int],
    line_units: list[list[int]],
    lines: dict[int, float],
) -> tuple[list[list[int]], list[float]]:
    """The units of a lines stage in file order: the lines of the `expanded` blocks, every
    other block whole (with its exact block score)."""
    units: list[list[int]] = []
    scores: list[float] = []
    for b, block in enumerate(blocks):
        if b in expanded:
            units += [line_units[i] for i in block.lines]
            scores += [lines[i] for i in block.lines]
        else:
            units.append(block.tokens)
            scores.append(float(block_scores[b]))
    return units, scores


def _whole_lines(blocks: list[Block], expanded: set[int]) -> int:
    """Lines still inside a whole block (scored line by line in a later stage)."""
    return sum(
        len(block.lines)
        for b, block in enumerate(blocks)
        if b not in expanded and len(block.lines) > 1
    )


def run_stages(
    request: ExplainRequest,
    backend: Backend,
    progress: StageProgress | None = None,
    model_input: ModelInput | None = None,
    on_stage: Callable[[Explanation], None] | None = None,
    wanted: Callable[[], list[int]] | None = None,
) -> Explanation:
    """The request's final explanation. With `on_stage`, each earlier stage of an anytime
    explanation is handed to it as soon as it is ready (it may raise to stop the work); without,
    only the final result is computed (`wanted`: see `explain_stages`). The one stage loop of
    every front end."""
    if on_stage is None:
        return explain(request, backend, progress, model_input)
    for expl in explain_stages(request, backend, progress, model_input, wanted):
        if expl.stage is None or expl.stage.final:
            return expl
        on_stage(expl)
    raise RuntimeError("an anytime explanation ended without a final stage")
