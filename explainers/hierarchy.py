"""`granularity="auto"`: attribute lines first, then the words inside the lines that matter,
then the tokens inside the words that matter, so a long prompt gets line-level answers at the
cost of one pass over its lines and detail only where it pays.

Every unit's score is its own removal effect on the target, measured in the full prompt by a
leave-one-out method (`MethodSpec.leave_one_out`: occlusion, or any method registered so), so a
refined word's score is exactly what the method gives it at word level. Each level is one
batched call that reuses the prompt's key/value prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import HierarchyInfo, Pruning
from promptxray.explainers.registry import MethodSpec
from promptxray.explainers.units import group_units

COVER = 0.8  # refine the top units until they hold this share of the level's total |score|
REFINE_LINES = 8  # at most this many lines are split into words (option refine_lines)
REFINE_WORDS = 8  # at most this many words are split into tokens (option refine_words)
# a line or word whose |effect| is under this many nats is not split (option refine_floor):
# the "no measurable effect" threshold of explainers/nl
REFINE_FLOOR = 0.05
# refinement may cost at most this share of the line pass's work (option refine_budget), and
# never less than BUDGET_MIN_TOKENS: work is counted in tokens run (each variant runs from its
# first edit to the end, after the shared prefix), the cost that dominates on long prompts
REFINE_BUDGET = 0.6
BUDGET_MIN_TOKENS = 8192
# methods that are not leave-one-out: word units up to this many prompt tokens, lines above
AUTO_WORD_LIMIT = 512


@dataclass
class Hierarchy:
    """The final partition into units (lines, words and tokens), their scores, and the
    line-level pass (kept: the language server's line hints come from it)."""

    units: list[list[int]]
    scores: np.ndarray
    kinds: list[str]
    line_units: list[list[int]]
    line_scores: np.ndarray
    refined_lines: list[int] = field(default_factory=list)
    refined_words: int = 0
    pruned: list[Pruning] = field(default_factory=list)

    def info(self) -> HierarchyInfo:
        """The typed record an Explanation carries (levels and the line pass)."""
        return HierarchyInfo(
            unit_kinds=list(self.kinds),
            line_scores=[float(s) for s in self.line_scores],
            line_token_indices=self.line_units,
            refined_lines=self.refined_lines,
            refined_words=self.refined_words,
            pruned=list(self.pruned),
        )


def removal_effects(ctx: MethodContext, spec: MethodSpec, units: list[list[int]]) -> np.ndarray:
    """Each unit's removal effect by the leave-one-out method `spec`, in one call (its scores
    do not depend on which other units are scored beside)."""
    if not units:
        return np.zeros(0)
    return np.asarray(spec.fn(replace(ctx, units=units)).scores_per_unit(units), dtype=float)


def _leave_one_out(
    ctx: MethodContext, spec: MethodSpec, units: list[list[int]], which: list[int]
) -> np.ndarray:
    """The removal effect of each unit listed in `which`."""
    return removal_effects(ctx, spec, [units[i] for i in which])


@dataclass
class Budget:
    """Tokens refinement may still run (see REFINE_BUDGET); `share` is for the message."""

    left: float
    share: float

    def take(self, cost: float) -> bool:
        """Spend `cost` if it fits."""
        if cost > self.left:
            return False
        self.left -= cost
        return True


def _cost(units: list[list[int]], length: int) -> int:
    """Tokens run to score each unit's leave-one-out variant: from its first token to the end
    of the prompt (the prefix before it is reused)."""
    return sum(length - min(unit) for unit in units if unit)


def _worth_refining(
    scores: np.ndarray,
    candidates: list[int],
    limit: int,
    floor: float = 0.0,
    costs: dict[int, int] | None = None,
    budget: Budget | None = None,
) -> tuple[list[int], dict[str, int]]:
    """The candidates with the largest |score|, until they cover COVER of the total, at most
    `limit`, none under `floor` nats (a unit with no measurable effect is not split: its parts
    could only matter by cancelling each other) and only while splitting fits the `budget`
    (a candidate too costly for what is left is passed over for cheaper ones). Also: how many
    were pruned by which rule ("floor", "cover", "limit", "budget")."""
    pruned = {"floor": 0, "cover": 0, "limit": 0, "budget": 0}
    total = float(np.abs(scores).sum())
    if total == 0.0 or limit <= 0:
        pruned["floor" if total == 0.0 else "limit"] = len(candidates)
        return [], pruned
    chosen: list[int] = []
    covered = 0.0
    for i in sorted(candidates, key=lambda i: -abs(scores[i])):
        if abs(scores[i]) < floor:
            pruned["floor"] += 1
        elif covered >= COVER * total:
            pruned["cover"] += 1
        elif len(chosen) >= limit:
            pruned["limit"] += 1
        elif budget is not None and costs is not None and not budget.take(costs[i]):
            pruned["budget"] += 1
        else:
            chosen.append(i)
            covered += abs(scores[i])
    return chosen, pruned


def _pruned(
    level: str, pruned: dict[str, int], limit: int, floor: float, budget: Budget
) -> list[Pruning]:
    """What a refinement step left unsplit, by rule, with the bound each rule applied."""
    bounds = {"floor": floor, "cover": COVER, "limit": float(limit), "budget": budget.share}
    return [Pruning(level, rule, n, bounds[rule]) for rule, n in pruned.items() if n]


def line_pass(
    ctx: MethodContext, source: str, spec: MethodSpec
) -> tuple[list[list[int]], np.ndarray]:
    """The line units and each line's removal effect by `spec` (one batched call)."""
    line_units = group_units(source, ctx.input.tokens, "line", lead_spaces=ctx.lead_spaces)
    return line_units, _leave_one_out(ctx, spec, line_units, list(range(len(line_units))))


def refine(
    ctx: MethodContext,
    source: str,
    spec: MethodSpec,
    known: tuple[list[list[int]], np.ndarray] | None = None,
) -> Hierarchy:
    """Lines, then words in the lines that matter, then tokens in the words that matter, each
    scored by the leave-one-out method `spec`. `known`: the line pass when it was already run
    (an anytime explanation's line stage)."""
    if not spec.leave_one_out:
        raise ValueError(f"method {spec.name!r} does not score units by leave-one-out")
    tokens = ctx.input.tokens
    line_units, line_scores = known if known is not None else line_pass(ctx, source, spec)
    word_units = group_units(source, tokens, "word", lead_spaces=ctx.lead_spaces)
    word_of = {t: w for w, unit in enumerate(word_units) for t in unit}

    max_lines = ctx.option("refine_lines", REFINE_LINES, int, lo=0)
    if not ctx.backend.capabilities.scoring.logprobs:  # text only: words cost samples each
        max_lines = 0
    max_words = ctx.option("refine_words", REFINE_WORDS, int, lo=0)
    floor = ctx.option("refine_floor", REFINE_FLOOR, float, lo=0)
    share = ctx.option("refine_budget", REFINE_BUDGET, float, lo=0)
    length = len(tokens)
    budget = Budget(max(share * _cost(line_units, length), BUDGET_MIN_TOKENS), share)
    splittable = [i for i, unit in enumerate(line_units) if len({word_of[t] for t in unit}) > 1]
    words_of_line = {i: sorted({word_of[t] for t in line_units[i]}) for i in splittable}
    line_costs = {i: _cost([word_units[w] for w in ws], length) for i, ws in words_of_line.items()}
    chosen, pruned = _worth_refining(line_scores, splittable, max_lines, floor, line_costs, budget)
    lines = sorted(chosen)
    pruned_parts = _pruned("line", pruned, max_lines, floor, budget)

    words_in = {li: words_of_line[li] for li in lines}
    words = [w for li in lines for w in words_in[li]]
    word_scores = dict(zip(words, _leave_one_out(ctx, spec, word_units, words), strict=True))

    # without the model's tokenizer the tokens are characters: words are the finest level
    multi = [w for w in words if len(word_units[w]) > 1 and not ctx.lead_spaces]
    ranked = np.zeros(len(word_units))
    for w, s in word_scores.items():
        ranked[w] = s
    word_costs = {w: _cost([[t] for t in word_units[w]], length) for w in multi}
    chosen_words, pruned = _worth_refining(ranked, multi, max_words, floor, word_costs, budget)
    split_words = set(chosen_words)
    pruned_parts += _pruned("word", pruned, max_words, floor, budget)
    token_units = [[t] for w in sorted(split_words) for t in word_units[w]]
    token_scores = dict(
        zip(
            [u[0] for u in token_units],
            _leave_one_out(ctx, spec, token_units, list(range(len(token_units)))),
            strict=True,
        )
    )

    units: list[list[int]] = []
    scores: list[float] = []
    kinds: list[str] = []
    for li, unit in enumerate(line_units):
        if li not in words_in:
            units.append(unit)
            scores.append(float(line_scores[li]))
            kinds.append("line")
            continue
        for w in words_in[li]:
            members = [t for t in word_units[w] if t in set(unit)]
            if w in split_words:
                for t in members:
                    units.append([t])
                    scores.append(float(token_scores[t]))
                    kinds.append("token")
            else:
                units.append(members)
                scores.append(float(word_scores[w]))
                kinds.append("word")
    order = sorted(range(len(units)), key=lambda i: min(units[i]))
    return Hierarchy(
        units=[units[i] for i in order],
        scores=np.array([scores[i] for i in order]),
        kinds=[kinds[i] for i in order],
        line_units=line_units,
        line_scores=line_scores,
        refined_lines=lines,
        refined_words=len(split_words),
        pruned=pruned_parts,
    )
