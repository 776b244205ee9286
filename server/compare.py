"""Rank agreement between explanations of the same prompt by different methods."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from promptxray.explainers.types import Explanation


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's rho needs."""
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    sorted_vals = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation; nan when either side is constant."""
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of the k largest-|score| units the two rankings have in common."""
    k = min(k, len(a))
    if k == 0:
        return float("nan")
    top_a = set(np.argsort(-np.abs(a), kind="stable")[:k])
    top_b = set(np.argsort(-np.abs(b), kind="stable")[:k])
    return len(top_a & top_b) / k


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined figure travels as null."""
    return value if np.isfinite(value) else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def rank_agreement(results: dict[str, Explanation], k: int = 5) -> dict[str, Any]:
    """Pairwise Spearman and top-k overlap of the methods' span scores."""
    scores = {m: np.array([s.score for s in e.spans]) for m, e in results.items()}
    pairs: list[dict[str, Any]] = []
    for m1, m2 in combinations(scores, 2):
        if len(scores[m1]) != len(scores[m2]):
            continue
        pairs.append(
            {
                "methods": [m1, m2],
                "spearman": _finite(spearman(scores[m1], scores[m2])),
                f"top{k}_overlap": _finite(top_k_overlap(scores[m1], scores[m2], k)),
            }
        )
    summary = "; ".join(
        f"{p['methods'][0]} vs {p['methods'][1]}: Spearman {_num(p['spearman'])}, "
        f"top-{k} overlap {_pct(p[f'top{k}_overlap'])}"
        for p in pairs
    )
    return {"methods": list(results), "pairs": pairs, "summary": f"promptxray: {summary}"}
