"""`method="auto"`: run the cheap methods on this prompt, measure each one's faithfulness, and
return the most faithful within a time budget, saying why it was chosen.

The candidates are the methods registered with an `AutoCost` (registry.py), tried in its order
(the usually most faithful per second first, so a good answer exists early); a candidate is
skipped when its predicted cost, calibrated on the first run, would overrun the budget (option
`budget_s`, default 5 s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import AutoReport
from promptxray.explainers.errors import MemoryLimitError
from promptxray.explainers.metrics import (
    CURVE_FRACTIONS,
    ERASER_BINS,
    Faithfulness,
    bin_count,
    faithfulness,
)
from promptxray.explainers.registry import MethodResult, MethodSpec, auto_candidates

DEFAULT_BUDGET_S = 5.0


@dataclass
class Candidate:
    """One method tried by auto, with its faithfulness and cost on this prompt."""

    spec: MethodSpec
    result: MethodResult
    faithfulness: Faithfulness
    seconds: float

    def row(self) -> dict[str, Any]:
        return {
            "method": self.spec.name,
            "score": self.faithfulness.score,
            **self.faithfulness.metrics(),
            "seconds": self.seconds,
        }


@dataclass
class AutoChoice:
    """The chosen method's result, the candidates compared and what was skipped."""

    chosen: Candidate
    tried: list[Candidate]
    skipped: list[str] = field(default_factory=list)  # for time
    budget_s: float = DEFAULT_BUDGET_S
    elapsed_s: float = 0.0
    skipped_memory: list[str] = field(default_factory=list)

    @property
    def spec(self) -> MethodSpec:
        return self.chosen.spec

    @property
    def result(self) -> MethodResult:
        return self.chosen.result

    @property
    def faithfulness(self) -> Faithfulness:
        return self.chosen.faithfulness

    def report(self) -> AutoReport:
        return AutoReport(
            chosen=self.chosen.spec.name,
            criterion="comprehensiveness - sufficiency (ERASER AOPC, in log-probability), "
            "ties by deletion AUC",
            candidates=[c.row() for c in self.tried],
            skipped=self.skipped,
            budget_s=self.budget_s,
            elapsed_s=self.elapsed_s,
            skipped_memory=self.skipped_memory,
        )


def _faithfulness_sequences(n_units: int) -> int:
    """Variants one faithfulness measurement scores (deletion + insertion at each count)."""
    fractions = (*CURVE_FRACTIONS, *ERASER_BINS)
    return 2 * len({bin_count(n_units, f) for f in fractions} | {0, n_units})


def _predicted_cost(spec: MethodSpec, n_units: int, seconds_per_sequence: float) -> float:
    assert spec.auto_cost is not None
    cost = spec.auto_cost.per_unit * n_units + spec.auto_cost.fixed
    return (cost + _faithfulness_sequences(n_units)) * seconds_per_sequence


def choose_method(ctx: MethodContext, started: float) -> AutoChoice:
    """Try the candidates that run on this backend within the budget; keep the most faithful."""
    budget = ctx.option("budget_s", DEFAULT_BUDGET_S, float, lo=0.0)
    specs = [
        s
        for s in auto_candidates()
        if s.runs_on(ctx.backend) and (s.contrastive or not ctx.foil_ids)
    ]
    # a candidate that does not fit in memory is skipped (not replaced by line occlusion)
    strict = replace(ctx, options={**ctx.options, "memory_fallback": False})
    tried: list[Candidate] = []
    skipped: list[str] = []
    skipped_memory: list[str] = []
    seconds_per_sequence = 0.0
    for spec in specs:
        elapsed = time.perf_counter() - started
        if tried:
            predicted = _predicted_cost(spec, len(ctx.units), seconds_per_sequence)
            if elapsed + predicted > budget:
                skipped.append(spec.name)
                continue
        t0 = time.perf_counter()
        sequences_before = ctx.backend.counters.sequences
        try:
            result = spec.fn(strict)
        except MemoryLimitError:
            skipped_memory.append(spec.name)
            continue
        faith = faithfulness(ctx.score_masks, result.scores_per_unit(ctx.units))
        seconds = time.perf_counter() - t0
        tried.append(Candidate(spec, result, faith, seconds))
        ran = max(1, ctx.backend.counters.sequences - sequences_before)
        if not seconds_per_sequence:
            seconds_per_sequence = seconds / ran
    best = max(tried, key=lambda c: (c.faithfulness.score, -c.faithfulness.deletion_auc))
    elapsed = time.perf_counter() - started
    return AutoChoice(best, tried, skipped, budget, elapsed, skipped_memory)
