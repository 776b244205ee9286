"""How far an explanation can be trusted, measured on the model it explains.

Faithfulness: remove (deletion) or keep only (insertion) the units an explanation ranks
highest, and see what happens to the target. ERASER comprehensiveness and sufficiency
(DeYoung et al., 2020) average that over the 1/5/10/20/50% bins (AOPC); the deletion and
insertion curves (Petsiuk et al., 2018) are summarised by their areas. All variants of one
explanation are scored in one batched call of the same backend.

Agreement: Spearman and Kendall rank correlation and top-k overlap between two explanations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from promptxray.explainers.details import FaithfulnessCurves

ERASER_BINS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)
CURVE_FRACTIONS: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)

# f(masks [M, n] of kept units) -> the target's summed log-probability per row
ScoreFn = Callable[[np.ndarray], np.ndarray]


def attribution_order(scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Units from the most to the least supportive of the target (ties: earlier first)."""
    values = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    return np.argsort(-values, kind="stable")


def bin_count(n: int, fraction: float) -> int:
    """How many of n units make the top `fraction` (at least one once fraction > 0)."""
    return min(n, math.ceil(round(fraction * n, 9)))


@dataclass
class Faithfulness:
    """Deletion/insertion curves (target log-probability after removing / keeping the top-k
    units) and the figures derived from them; probabilities are of the whole target."""

    counts: list[int]
    fractions: list[float]
    deletion_logprob: list[float]
    insertion_logprob: list[float]
    comprehensiveness: float
    sufficiency: float
    deletion_auc: float
    insertion_auc: float
    bins: dict[str, dict[str, float]]
    # the same AOPC in log-probability (nats): scale-free, so it still separates rankings when
    # a long target's whole probability is small
    comprehensiveness_logprob: float = 0.0
    sufficiency_logprob: float = 0.0

    def metrics(self) -> dict[str, float]:
        """The headline figures, for Explanation.metrics."""
        return {
            "comprehensiveness": self.comprehensiveness,
            "sufficiency": self.sufficiency,
            "deletion_auc": self.deletion_auc,
            "insertion_auc": self.insertion_auc,
            "comprehensiveness_logprob": self.comprehensiveness_logprob,
            "sufficiency_logprob": self.sufficiency_logprob,
        }

    def curves(self) -> FaithfulnessCurves:
        """The curves and per-bin values, for Explanation.faithfulness."""
        return FaithfulnessCurves(
            fractions=self.fractions,
            counts=self.counts,
            deletion_logprob=self.deletion_logprob,
            insertion_logprob=self.insertion_logprob,
            bins=self.bins,
            units="probability of the whole target; AOPC over bins "
            + "/".join(f"{b:.0%}" for b in ERASER_BINS),
        )

    @property
    def score(self) -> float:
        """One number for ranking explanations: comprehensiveness minus sufficiency, in
        log-probability (a whole target's probability can be too small to compare in)."""
        return self.comprehensiveness_logprob - self.sufficiency_logprob


def faithfulness(
    score: ScoreFn,
    unit_scores: Sequence[float] | np.ndarray,
    curve_fractions: Sequence[float] = CURVE_FRACTIONS,
    bins: Sequence[float] = ERASER_BINS,
) -> Faithfulness:
    """Deletion and insertion curves, their areas, and ERASER comprehensiveness/sufficiency
    AOPC for one ranking of n units, with every variant scored in one `score` call."""
    n = len(unit_scores)
    if n == 0:
        raise ValueError("an explanation with no units has no faithfulness figures")
    order = attribution_order(unit_scores)
    curve_counts = sorted({bin_count(n, f) for f in curve_fractions} | {0, n})
    bin_counts = [bin_count(n, f) for f in bins]
    counts = sorted(set(curve_counts) | set(bin_counts))

    masks = []
    for k in counts:  # deletion: all but the top k; insertion: only the top k
        deleted = np.ones(n, dtype=bool)
        deleted[order[:k]] = False
        masks.append(deleted)
    for k in counts:
        masks.append(~masks[counts.index(k)])
    logprobs = np.asarray(score(np.array(masks)), dtype=np.float64)
    deletion = dict(zip(counts, logprobs[: len(counts)], strict=True))
    insertion = dict(zip(counts, logprobs[len(counts) :], strict=True))

    p_full = math.exp(deletion[0])
    per_bin = {
        f"{b:.0%}": {
            "k": float(k),
            "comprehensiveness": p_full - math.exp(deletion[k]),
            "sufficiency": p_full - math.exp(insertion[k]),
            "comprehensiveness_logprob": deletion[0] - deletion[k],
            "sufficiency_logprob": deletion[0] - insertion[k],
        }
        for b, k in zip(bins, bin_counts, strict=True)
    }
    x = np.array([k / n for k in curve_counts])
    del_p = np.exp([deletion[k] for k in curve_counts])
    ins_p = np.exp([insertion[k] for k in curve_counts])
    return Faithfulness(
        counts=list(curve_counts),
        fractions=[float(v) for v in x],
        deletion_logprob=[float(deletion[k]) for k in curve_counts],
        insertion_logprob=[float(insertion[k]) for k in curve_counts],
        comprehensiveness=float(np.mean([v["comprehensiveness"] for v in per_bin.values()])),
        sufficiency=float(np.mean([v["sufficiency"] for v in per_bin.values()])),
        deletion_auc=_trapezoid(del_p, x),
        insertion_auc=_trapezoid(ins_p, x),
        bins=per_bin,
        comprehensiveness_logprob=float(
            np.mean([v["comprehensiveness_logprob"] for v in per_bin.values()])
        ),
        sufficiency_logprob=float(np.mean([v["sufficiency_logprob"] for v in per_bin.values()])),
    )


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


# --- agreement between two explanations ------------------------------------------------------
def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's rho needs."""
    values = np.asarray(values, dtype=np.float64)
    order = values.argsort(kind="stable")
    out = np.empty(len(values))
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        out[order[i : j + 1]] = (i + j) / 2
        i = j + 1
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation; nan when either side is constant."""
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall(a: np.ndarray, b: np.ndarray, block: int = 512) -> float:
    """Kendall's tau-b (ties counted as neither concordant nor discordant); nan when either
    side is constant. Pairs are compared in blocks so long prompts stay within memory."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    concordant_minus_discordant = 0.0
    ties_a = ties_b = 0.0
    n = len(a)
    for start in range(0, n, block):
        da = np.sign(a[start : start + block, None] - a[None, :])
        db = np.sign(b[start : start + block, None] - b[None, :])
        concordant_minus_discordant += float((da * db).sum())
        ties_a += float((da == 0).sum())
        ties_b += float((db == 0).sum())
    pairs = n * (n - 1)  # ordered pairs, as summed above (the diagonal counts as a tie)
    denom = math.sqrt((pairs - (ties_a - n)) * (pairs - (ties_b - n)))
    return concordant_minus_discordant / denom if denom > 0 else float("nan")


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of the k largest-|score| units the two rankings have in common."""
    k = min(k, len(a))
    if k == 0:
        return float("nan")
    top_a = set(np.argsort(-np.abs(a), kind="stable")[:k])
    top_b = set(np.argsort(-np.abs(b), kind="stable")[:k])
    return len(top_a & top_b) / k


def agreement(a: np.ndarray, b: np.ndarray, k: int = 5) -> dict[str, float]:
    """Spearman, Kendall and top-k overlap of two explanations of the same units."""
    if len(a) != len(b):
        raise ValueError("explanations of different units cannot be compared")
    return {
        "spearman": spearman(a, b),
        "kendall": kendall(a, b),
        f"top{k}_overlap": top_k_overlap(a, b, k),
    }
