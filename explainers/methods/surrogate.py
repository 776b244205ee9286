"""Surrogate (ContextCite-style) attribution: score random keep-masks of the units, fit a sparse
linear model of the target's log-probability on the mask bits, and report its weights.

A weight is the change in log-probability the surrogate predicts when its unit is kept rather
than dropped, with the other units varied at random; the Lasso keeps few units non-zero. How
far to trust the weights is reported as the surrogate's held-out fit: R² and the LDS (Spearman
correlation of predicted and actual log-probabilities) on out-of-fold predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from promptxray.explainers.context import MethodContext
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.registry import MethodResult, register


def sample_masks(n: int, k: int, keep_prob: float, seed: int = 0) -> np.ndarray:
    """k random keep-masks over n units, [k, n] bool, each unit kept with `keep_prob`."""
    return np.random.default_rng(seed).random((k, n)) < keep_prob


def fit_lasso(
    X: np.ndarray, y: np.ndarray, alpha: float, max_iter: int = 10_000, tol: float = 1e-7
) -> tuple[np.ndarray, float]:
    """Lasso with intercept by cyclic coordinate descent: (weights, intercept).

    Minimises 1/(2m) ||y - X w - b||² + alpha ||w||₁ (scikit-learn's scaling), working on the
    centred Gram matrix so each coordinate update is O(n). Stops when no weight moves by more
    than `tol` times the largest weight. Constant columns get weight 0."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    m, n = X.shape
    if m == 0:
        raise ValueError("fit_lasso needs at least one sample")
    x_mean, y_mean = X.mean(axis=0), float(y.mean())
    Xc = X - x_mean
    gram = Xc.T @ Xc / m
    corr = Xc.T @ (y - y_mean) / m
    diag = np.diag(gram).copy()
    active = [j for j in range(n) if diag[j] > 1e-12]
    w = np.zeros(n)
    gw = np.zeros(n)  # gram @ w, kept up to date
    for _ in range(max_iter):
        biggest = 0.0
        for j in active:
            rho = corr[j] - gw[j] + diag[j] * w[j]
            new = math.copysign(max(abs(rho) - alpha, 0.0), rho) / diag[j]
            step = new - w[j]
            if step != 0.0:
                gw += step * gram[:, j]
                w[j] = new
                biggest = max(biggest, abs(step))
        if biggest <= tol * max(float(np.abs(w).max(initial=0.0)), 1e-12):
            break
    return w, y_mean - float(x_mean @ w)


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination; for constant y, 1.0 if matched exactly, else 0.0."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot <= 1e-24:
        return 1.0 if ss_res <= 1e-24 else 0.0
    return 1.0 - ss_res / ss_tot


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..m-1 with ties given their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (first + (counts - 1) / 2.0)[inverse.reshape(-1)]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties averaged); 0.0 when either side is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denom if denom > 0 else 0.0


@dataclass
class SurrogateFit:
    """A fitted surrogate: weights and intercept from all masks, fit figures from held-out ones.

    `alpha` is the absolute penalty of the final fit (`alpha_relative` times the standard
    deviation of the scores); `predictions` are the out-of-fold predictions the figures use."""

    coef: np.ndarray
    intercept: float
    alpha: float
    alpha_relative: float
    r2: float
    lds: float
    folds: int
    predictions: np.ndarray


def surrogate_fit(
    masks: np.ndarray,
    scores: np.ndarray,
    alpha: float = 0.01,
    folds: int = 4,
    seed: int = 0,
) -> SurrogateFit:
    """Fit the Lasso surrogate score ≈ intercept + masks @ coef and measure how well it predicts.

    `alpha` is relative: each fit's penalty is alpha times the standard deviation of its
    training scores, so the same value suits any prompt and target (log-probability spreads
    vary from a fraction of a nat to tens of nats). R² and LDS are computed once over the
    pooled out-of-fold predictions of a `folds`-fold split (shuffled with `seed`); the reported
    weights come from a refit on all masks."""
    X = np.asarray(masks, dtype=np.float64)
    y = np.asarray(scores, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"masks {X.shape} and scores {y.shape} do not match")
    k = len(y)
    folds = min(folds, k)
    if folds < 2:
        raise ValueError("surrogate_fit needs at least 2 masks and 2 folds")
    order = np.random.default_rng(seed).permutation(k)
    predictions = np.empty(k)
    for held in np.array_split(order, folds):
        train = np.setdiff1d(order, held)
        w, b = fit_lasso(X[train], y[train], alpha * float(y[train].std()))
        predictions[held] = X[held] @ w + b
    penalty = alpha * float(y.std())
    coef, intercept = fit_lasso(X, y, penalty)
    return SurrogateFit(
        coef=coef,
        intercept=intercept,
        alpha=penalty,
        alpha_relative=alpha,
        r2=r2_score(y, predictions),
        lds=spearman(y, predictions),
        folds=folds,
        predictions=predictions,
    )


@register(
    "surrogate",
    "sparse linear surrogate (ContextCite-style): Lasso weights of kept units fitted to the "
    "target's log-probability on random ablations, with its held-out R² and LDS",
)
def surrogate(ctx: MethodContext) -> MethodResult:
    n = len(ctx.units)
    k = ctx.option("samples", 32, int, lo=4)
    keep_prob = ctx.option("keep_prob", 0.5, float, lo=0.0)
    if not 0.0 < keep_prob < 1.0:
        raise InvalidRequestError(f"option keep_prob={keep_prob!r} must be between 0 and 1")
    alpha = ctx.option("alpha", 0.01, float, lo=0.0)
    folds = ctx.option("folds", 4, int, lo=2)
    seed = ctx.option("seed", 0, int, lo=0)

    masks = sample_masks(n, k, keep_prob, seed)
    scores = ctx.score_masks(masks)
    fit = surrogate_fit(masks, scores, alpha=alpha, folds=folds, seed=seed)
    return MethodResult(
        unit_scores=fit.coef,
        metrics={
            "surrogate_r2": fit.r2,
            "surrogate_lds": fit.lds,
            "surrogate_samples": float(k),
        },
        details={
            "intercept": fit.intercept,
            "alpha": fit.alpha,
            "alpha_relative": fit.alpha_relative,
            "folds": fit.folds,
            "keep_prob": keep_prob,
            "seed": seed,
        },
    )
