"""The Lasso surrogate: the numpy fit against least squares and planted sparse weights, the fit
figures, and a held-out R² bound on the default model."""

from __future__ import annotations

import numpy as np
import pytest

import promptxray.explainers.methods.surrogate  # noqa: F401  (registers "surrogate")
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.explain import explain, prepare
from promptxray.explainers.methods.surrogate import (
    fit_lasso,
    r2_score,
    sample_masks,
    spearman,
    surrogate_fit,
)
from promptxray.explainers.registry import get_method
from tests.helpers import request_for


def planted(n=20, k=200, noise=0.05, seed=0):
    """Masks and scores = intercept + masks @ w + noise, with w non-zero on four units."""
    rng = np.random.default_rng(seed)
    w = np.zeros(n)
    w[[1, 4, 9, n - 5]] = [3.0, -2.0, 1.5, 0.8]
    masks = sample_masks(n, k, 0.5, seed)
    scores = -6.0 + masks @ w + rng.normal(scale=noise, size=k)
    return masks, scores, w


def test_sample_masks_shape_rate_and_seed():
    a = sample_masks(10, 500, 0.3, seed=1)
    assert a.shape == (500, 10) and a.dtype == bool
    assert a.mean() == pytest.approx(0.3, abs=0.03)  # binomial sd 0.0065: 4.6 sd
    np.testing.assert_array_equal(a, sample_masks(10, 500, 0.3, seed=1))
    assert not np.array_equal(a, sample_masks(10, 500, 0.3, seed=2))


def test_lasso_without_penalty_is_least_squares():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 6))
    y = X @ rng.normal(size=6) + 2.5 + rng.normal(scale=0.3, size=60)
    w, b = fit_lasso(X, y, alpha=0.0, tol=1e-12)
    design = np.hstack([X, np.ones((60, 1))])
    expected, *_ = np.linalg.lstsq(design, y, rcond=None)
    # float64 coordinate descent stopped at tol=1e-12 (changes in w): 1e-7 of convergence
    np.testing.assert_allclose(w, expected[:6], atol=1e-7)
    assert b == pytest.approx(expected[6], abs=1e-7)


def test_lasso_satisfies_its_optimality_conditions():
    # KKT: X_j·r/m = alpha·sign(w_j) where w_j != 0, and |X_j·r/m| <= alpha where w_j == 0.
    masks, scores, _ = planted(n=12, k=80, noise=0.5, seed=2)
    X = masks.astype(float)
    alpha = 0.1
    w, b = fit_lasso(X, scores, alpha, tol=1e-12)
    grad = X.T @ (scores - X @ w - b) / len(scores)
    on = w != 0
    assert on.any() and (~on).any()
    # KKT holds to the descent's convergence (tol=1e-12 on w): 1e-6 on the gradient
    np.testing.assert_allclose(grad[on], alpha * np.sign(w[on]), atol=1e-6)
    assert np.all(np.abs(grad[~on]) <= alpha + 1e-6)
    assert np.sum(scores - X @ w - b) == pytest.approx(0.0, abs=1e-8)  # intercept is fitted


def test_lasso_with_a_large_penalty_predicts_the_mean():
    masks, scores, _ = planted()
    w, b = fit_lasso(masks.astype(float), scores, alpha=100.0)
    assert np.all(w == 0)
    assert b == pytest.approx(scores.mean())  # float64 mean


def test_constant_columns_get_zero_weight():
    X = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=float)
    y = np.array([1.0, 2.0, 0.0, 3.0])
    w, b = fit_lasso(X, y, alpha=0.0, tol=1e-12)
    np.testing.assert_allclose(w, [0.0, 2.0, 1.0], atol=1e-9)  # exact data, float64 descent
    assert b == pytest.approx(0.0, abs=1e-9)


def test_surrogate_recovers_planted_sparse_weights():
    masks, scores, w = planted()
    fit = surrogate_fit(masks, scores)
    # The default penalty (0.01 x the scores' std) shrinks weights by about 4·alpha ~ 0.1;
    # the bounds are statistical (planted weights, noise 0.05), not float ones.
    np.testing.assert_allclose(fit.coef, w, atol=0.15)
    assert np.all(np.abs(fit.coef[w == 0]) < 0.05)
    assert fit.intercept == pytest.approx(-6.0, abs=0.2)
    assert fit.alpha == pytest.approx(0.01 * scores.std())
    assert fit.r2 > 0.99 and fit.lds > 0.99
    assert fit.predictions.shape == scores.shape


def test_surrogate_held_out_figures_fall_with_noise():
    masks, clean, _ = planted(k=64, noise=0.05)
    _, noisy, _ = planted(k=64, noise=3.0)
    good, bad = surrogate_fit(masks, clean), surrogate_fit(masks, noisy)
    assert good.r2 > 0.99 and bad.r2 < 0.6
    assert good.lds > bad.lds


def test_r2_and_spearman():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert r2_score(y, y) == 1.0
    assert r2_score(y, np.full(4, y.mean())) == 0.0
    assert spearman(y, y**3) == pytest.approx(1.0)  # float64 on exact ranks
    assert spearman(y, -y) == pytest.approx(-1.0)
    assert spearman(y, np.ones(4)) == 0.0
    # Ties get their average rank: ranks [0, 1.5, 1.5, 3] against [0, 1, 2, 3].
    assert spearman(y, np.array([0.0, 5.0, 5.0, 9.0])) == pytest.approx(0.9486832980505138)


def test_surrogate_method_scores_all_masks_in_one_call(stories):
    request = request_for(
        "Once upon a time there was a little girl",
        method="surrogate",
        granularity="word",
        max_new_tokens=3,
        options={"samples": 24, "seed": 1},
    )
    _, prep = prepare(request, stories)
    calls = []
    score_masks = prep.ctx.score_masks

    def counting(masks):
        calls.append(len(masks))
        return score_masks(masks)

    prep.ctx.score_masks = counting
    result = get_method("surrogate").fn(prep.ctx)
    assert calls == [24]
    assert result.unit_scores is not None and len(result.unit_scores) == len(prep.ctx.units)
    assert result.metrics["surrogate_samples"] == 24.0
    assert -1.0 <= result.metrics["surrogate_lds"] <= 1.0
    assert {"intercept", "alpha", "folds"} <= set(result.details)
    expl = explain(request, backend=stories)
    # the same seeded samples and forwards: equal to rounding
    assert [s.score for s in expl.spans] == pytest.approx(list(result.unit_scores))
    assert expl.metrics["surrogate_r2"] == pytest.approx(result.metrics["surrogate_r2"])


@pytest.mark.parametrize(
    "options", [{"keep_prob": 1.0}, {"keep_prob": 0}, {"samples": 3}, {"alpha": -1}]
)
def test_bad_options_are_reported(stories, options):
    with pytest.raises(InvalidRequestError):
        explain(
            request_for("Once upon a time", method="surrogate", target=" there", options=options),
            backend=stories,
        )


# Held-out R² measured at k=32, seed 0 (word granularity, 4 generated target tokens, chat
# template): 0.856 and 0.939, LDS 0.936 and 0.915 (seeds 1 and 2 gave R² 0.74-0.94). The
# bounds leave a wide margin. Each case scores 32 masks of ~35 tokens, a few seconds on a CPU.
SMOL_PROMPTS = ["What is the capital of France?", "Name a primary color."]


@pytest.mark.parametrize("prompt", SMOL_PROMPTS)
def test_surrogate_fits_the_default_model(smol, prompt):
    request = request_for(
        prompt, method="surrogate", granularity="word", max_new_tokens=4, faithfulness=False
    )
    expl = explain(request, backend=smol)
    assert expl.metrics["surrogate_samples"] == 32.0
    assert expl.metrics["surrogate_r2"] > 0.6, expl.metrics
    assert expl.metrics["surrogate_lds"] > 0.7, expl.metrics
    assert all(type(v) is float for k, v in expl.metrics.items() if k.startswith("surrogate_"))
