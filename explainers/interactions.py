"""What leave-one-out cannot see: pairs of parts whose joint removal is not the sum of their
own, measured exactly as one more removal per pair.

Two parts that say the same thing each cost little when removed alone, so leave-one-out ranks
them last and a user deletes both; two parts that pull against each other each look like a
separate effect. For parts a and b with removal effects e(a), e(b) and e(ab) (nats of the
answer's log-probability), the interaction is e(ab) − e(a) − e(b), and (`pair_kind`):

- **redundant**: neither works against the answer alone (e > −floor), and the interaction is
  at least HIDDEN of what removing both costs: leave-one-out misses at least half of what the
  pair does;
- **conflict**: one supports the answer (e ≥ floor), the other works against it by AGAINST
  nats or more (a part that barely hurts it is no conflict), they do not add up
  (|interaction| ≥ INTERACTION: they act on the same thing), and without the supporting part
  the other still moves the answer by INTERACTION nats or more, one way or the other (a part
  whose removal ruins the answer, such as the question, interacts with every part that hurts
  it, since without it nothing matters, and that is not a conflict);

and in both cases the interaction is at least INTERACTION nats (the answer's odds × 2.7), so
the many small interactions of unrelated parts are not reported. On the default model, a
fact stated twice interacts by 11–17 nats, two contradicting facts by 5.1, and unrelated
lines by at most 1.3 (the vault prompts of tests/explainers/test_interactions.py).

Pairs are tested among few parts only (`find_pairs`): every pair when there are at most
ALL_PAIRS parts; otherwise among the CANDIDATES parts that matter most, among the parts with
no measurable effect alone when removing them together costs the answer (at most INERT_PAIRS
of them), and the SIMILAR pairs of other parts that share most of their words (a fact stated
twice: `shared_words`). `PairTest` records what was and was not tested.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from promptxray.explainers.context import MethodContext
from promptxray.explainers.details import PairKind, PairTest, PartPair
from promptxray.explainers.hierarchy import REFINE_FLOOR, removal_effects
from promptxray.explainers.registry import MethodSpec

FLOOR = REFINE_FLOOR  # nats: an effect under this is no measurable effect
HIDDEN = 0.5  # a redundant pair: at least this share of the joint cost is not seen alone
INTERACTION = 1.0  # nats: the least interaction reported
AGAINST = 0.5  # nats: a part in conflict works against the answer by at least this much
ALL_PAIRS = 8  # up to this many parts, every pair is tested (28 removals at most)
CANDIDATES = 8  # otherwise, pairs among the parts that matter most (28 removals)
INERT_PAIRS = 6  # and among the inert parts, when they matter together (15 removals)
SIMILAR = 12  # and the pairs of other parts sharing most words (12 removals)
SHARED = 0.6  # "most words": this share of the shorter part's words (of 3+ letters)
SHOWN = 5  # pairs kept on an explanation, the largest |interaction| first
OPTION = "pairs"  # request option: false/0 skips the pair test


def pair_kind(a: float, b: float, both: float, floor: float = FLOOR) -> PairKind | None:
    """Whether parts with removal effects `a`, `b` (alone) and `both` (together) are
    redundant, in conflict, or neither (None); the rule is the module docstring's."""
    interaction = both - a - b
    least = max(floor, INTERACTION)
    if a > -floor and b > -floor:
        if interaction >= least and interaction >= HIDDEN * both:
            return "redundant"
        return None
    support, against = max(a, b), min(a, b)
    if support < floor or against > -max(floor, AGAINST) or abs(interaction) < least:
        return None
    # without the supporting part the other still moves the answer: not merely "nothing
    # matters once the question is gone" (a dominant part interacts with everything)
    if abs(both - support) < INTERACTION:
        return None
    return "conflict"


@dataclass
class FoundPairs:
    """The pairs found (unit indices, each with its kind and joint effect) and the coverage."""

    test: PairTest
    # (a, b, both, kind): unit indices, the largest |interaction| first
    pairs: list[tuple[int, int, float, PairKind]] = field(default_factory=list)

    def part_pairs(
        self, scores: Sequence[float], ranges: Sequence[tuple[int, int]]
    ) -> list[PartPair]:
        """The pairs as an Explanation holds them, given each unit's score and file range."""
        return [
            PartPair(
                list(ranges[a]), list(ranges[b]), float(scores[a]), float(scores[b]), both, kind
            )
            for a, b, both, kind in self.pairs[:SHOWN]
        ]

    def units(self) -> set[int]:
        """The units in some pair."""
        return {i for a, b, _, _ in self.pairs for i in (a, b)}


def find_pairs(
    ctx: MethodContext,
    spec: MethodSpec,
    units: list[list[int]],
    scores: Sequence[float],
    floor: float = FLOOR,
    matter: int = CANDIDATES,
    inert: bool = True,
) -> FoundPairs:
    """Test pairs of `units` (with their leave-one-out `scores`) for redundancy and conflict,
    among few parts (module docstring): among the `matter` parts that matter most (0: none)
    and, with `inert`, among the inert ones; every pair when the parts are few and both are
    asked. One batch of removals (and one more for the inert parts together)."""
    n = len(units)
    values = np.asarray(scores, dtype=float)
    quiet = [i for i in range(n) if abs(values[i]) < floor]
    test = PairTest(n, 0, 0, len(quiet))
    if n <= ALL_PAIRS and matter > 0 and inert:
        pairs = list(itertools.combinations(range(n), 2))
        tested: set[int] = set(range(n))
    else:
        ranked = sorted((i for i in range(n) if i not in quiet), key=lambda i: -abs(values[i]))
        chosen = sorted(ranked[:matter])
        inert_chosen = _inert_candidates(ctx, spec, units, quiet, floor, test) if inert else []
        pairs = list(itertools.combinations(chosen, 2))
        pairs += list(itertools.combinations(inert_chosen, 2))
        if matter > 0:  # parts that say much the same, wherever they rank
            known = set(pairs)
            similar = [p for p in shared_words(ctx, units) if p not in known][:SIMILAR]
            test.similar = len(similar)
            pairs += similar
        tested = set(chosen) | set(inert_chosen) | {i for p in pairs for i in p}
    test.tested, test.pairs = len(tested), len(pairs)
    both = removal_effects(ctx, spec, [sorted(units[a] + units[b]) for a, b in pairs])
    found = FoundPairs(test)
    for (a, b), value in zip(pairs, both, strict=True):
        kind = pair_kind(float(values[a]), float(values[b]), float(value), floor)
        if kind is not None:
            found.pairs.append((a, b, float(value), kind))
    found.pairs.sort(key=lambda p: -abs(p[2] - values[p[0]] - values[p[1]]))
    return found


def _inert_candidates(
    ctx: MethodContext,
    spec: MethodSpec,
    units: list[list[int]],
    inert: list[int],
    floor: float,
    test: PairTest,
) -> list[int]:
    """The inert units to test in pairs: all of them (at most INERT_PAIRS) when removing them
    together costs the answer, else none; `test` records the joint removal."""
    if len(inert) < 2:
        return []
    union = sorted(t for i in inert for t in units[i])
    test.inert_joint = float(removal_effects(ctx, spec, [union])[0])
    if abs(test.inert_joint) < floor:
        return []  # together they still have no effect: no pair among them can
    if len(inert) > INERT_PAIRS:
        test.inert_tested = False
        return []
    return inert


STOP_WORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "you",
        "are",
        "with",
        "that",
        "this",
        "your",
        "not",
        "but",
        "any",
        "all",
        "can",
        "has",
    ]
)


def shared_words(ctx: MethodContext, units: list[list[int]]) -> list[tuple[int, int]]:
    """Pairs of units sharing at least SHARED of the shorter one's words (3+ letters, lower
    case, common words left out), the most shared first: the cheap hint that two parts may
    say the same thing (a paraphrase with other words is not found)."""
    tokens = ctx.input.tokens
    words = [
        {
            w
            for w in re.findall(r"\w{3,}", "".join(tokens[i].text for i in unit).lower())
            if w not in STOP_WORDS
        }
        for unit in units
    ]
    found = []
    for a, b in itertools.combinations(range(len(units)), 2):
        small = min(len(words[a]), len(words[b]))
        if small >= 2:
            share = len(words[a] & words[b]) / small
            if share >= SHARED:
                found.append((-share, a, b))
    return [(a, b) for _, a, b in sorted(found)]


def wants_pairs(options: dict[str, object]) -> bool:
    """Whether a request asks for the pair test (option OPTION, default on)."""
    value = options.get(OPTION, True)
    return str(value).strip().lower() not in ("0", "false", "no", "off", "")
