"""Rank agreement between explanations of the same prompt by different methods."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from promptxray.explainers.metrics import agreement
from promptxray.explainers.types import Explanation


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined figure travels as null."""
    return value if np.isfinite(value) else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def rank_agreement(results: dict[str, Explanation], k: int = 5) -> dict[str, Any]:
    """Pairwise Spearman, Kendall and top-k overlap of the methods' span scores."""
    scores = {m: np.array([s.score for s in e.spans]) for m, e in results.items()}
    pairs: list[dict[str, Any]] = []
    for m1, m2 in combinations(scores, 2):
        if len(scores[m1]) != len(scores[m2]):
            continue
        pairs.append(
            {
                "methods": [m1, m2],
                **{
                    name: _finite(value)
                    for name, value in agreement(scores[m1], scores[m2], k).items()
                },
            }
        )
    summary = "; ".join(
        f"{p['methods'][0]} vs {p['methods'][1]}: Spearman {_num(p['spearman'])}, "
        f"Kendall {_num(p['kendall'])}, "
        f"top-{k} overlap {_pct(p[f'top{k}_overlap'])}"
        for p in pairs
    )
    return {"methods": list(results), "pairs": pairs, "summary": f"promptxray: {summary}"}
