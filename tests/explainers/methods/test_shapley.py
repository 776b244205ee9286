"""Shapley values: exact ones against closed forms and brute-force permutations, sampled ones
converging to them, and efficiency (values sum to v(all) - v(none)) on a real model."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import promptxray.explainers.methods.shapley  # noqa: F401  (registers "shapley")
from promptxray.explainers.errors import InvalidRequestError
from promptxray.explainers.explain import explain, prepare
from promptxray.explainers.methods.shapley import (
    all_coalitions,
    exact_shapley,
    sampled_shapley,
)
from promptxray.explainers.registry import get_method
from tests.helpers import F32_NATS, request_for

PROMPT = "Once upon a time there was a little girl"


def weighted_game(weights, pair, pair_bonus, trio, trio_bonus, constant=0.0):
    """v(S) = constant + sum of weights in S + a bonus for a pair and one for a trio.

    Shapley values in closed form: w_i, plus bonus/2 to each of the pair and bonus/3 to each
    of the trio (a unanimity game's value is split equally among its members)."""
    weights = np.asarray(weights, dtype=float)

    def v(masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        return (
            constant
            + masks @ weights
            + pair_bonus * masks[:, list(pair)].all(axis=1)
            + trio_bonus * masks[:, list(trio)].all(axis=1)
        )

    expected = weights.copy()
    expected[list(pair)] += pair_bonus / 2
    expected[list(trio)] += trio_bonus / 3
    return v, expected


def random_game(n: int, seed: int):
    """An arbitrary game: a random value for every coalition, looked up by its bits."""
    table = np.random.default_rng(seed).normal(size=2**n)
    bits = 1 << np.arange(n)

    def v(masks: np.ndarray) -> np.ndarray:
        return table[np.asarray(masks, dtype=bool) @ bits]

    return v


def brute_force_shapley(v, n: int) -> np.ndarray:
    """The definition: average marginal contribution over all n! orders, one coalition a call."""
    phi = np.zeros(n)
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        mask = np.zeros(n, dtype=bool)
        before = v(mask[None])[0]
        for player in order:
            mask[player] = True
            after = v(mask[None])[0]
            phi[player] += after - before
            before = after
    return phi / len(orders)


def test_all_coalitions_enumerates_each_subset_once():
    masks = all_coalitions(4)
    assert masks.shape == (16, 4)
    assert len({row.tobytes() for row in masks}) == 16
    assert masks[5].tolist() == [True, False, True, False]


def test_exact_values_match_closed_form():
    v, expected = weighted_game(
        [1.5, -2.0, 0.25, 3.0, 0.0, -0.5],
        pair=(0, 1),
        pair_bonus=4.0,
        trio=(2, 3, 5),
        trio_bonus=-1.5,
        constant=7.0,
    )
    phi = exact_shapley(v, 6)
    # float64 arithmetic on exact games (here and below): rounding only, 1e-12
    np.testing.assert_allclose(phi, expected, atol=1e-12)
    full, empty = v(np.array([[True] * 6, [False] * 6]))
    assert phi.sum() == pytest.approx(full - empty, abs=1e-12)


def test_exact_values_of_a_symmetric_game_are_equal():
    # v(S) = |S|^2: every player is alike, so each gets v(N)/n.
    phi = exact_shapley(lambda m: np.asarray(m).sum(axis=1).astype(float) ** 2, 5)
    np.testing.assert_allclose(phi, np.full(5, 25 / 5), atol=1e-12)


def test_exact_values_match_brute_force_permutations():
    v = random_game(5, seed=3)
    np.testing.assert_allclose(exact_shapley(v, 5), brute_force_shapley(v, 5), atol=1e-12)


def test_exact_scores_all_coalitions_in_one_call():
    calls = []

    def v(masks):
        calls.append(len(masks))
        return np.asarray(masks).sum(axis=1).astype(float)

    exact_shapley(v, 7)
    assert calls == [128]


@pytest.mark.parametrize("antithetic", [True, False])
def test_sampled_values_converge_to_exact(antithetic):
    n = 7
    v = random_game(n, seed=11)
    exact = exact_shapley(v, n)
    few, _ = sampled_shapley(v, n, samples=16, seed=1, antithetic=antithetic)
    many, stderr = sampled_shapley(v, n, samples=4000, seed=1, antithetic=antithetic)
    err_few = np.abs(few - exact).max()
    err_many = np.abs(many - exact).max()
    assert err_many < err_few
    assert err_many < 0.1  # the game's values are O(1); the error falls like 1/sqrt(samples)
    # The reported standard errors describe the actual error (1e-9: where stderr is 0).
    assert np.all(np.abs(many - exact) < 5 * stderr + 1e-9)
    # Each permutation's marginals telescope, so efficiency holds for any number of samples.
    full, empty = v(np.array([[True] * n, [False] * n]))
    assert few.sum() == pytest.approx(full - empty, abs=1e-12)  # float64 telescoping sums


def test_sampled_values_are_exact_for_additive_games_and_two_players():
    v, expected = weighted_game(
        [1.0, -2.0, 0.5], pair=(0, 1), pair_bonus=0.0, trio=(), trio_bonus=0
    )
    phi, stderr = sampled_shapley(v, 3, samples=6, seed=0)
    # float64 arithmetic on an exact game: rounding only, 1e-12
    np.testing.assert_allclose(phi, expected, atol=1e-12)
    np.testing.assert_allclose(stderr, 0.0, atol=1e-12)
    # With two players an antithetic pair covers both orders.
    v2 = random_game(2, seed=5)
    phi2, _ = sampled_shapley(v2, 2, samples=2, seed=4)
    np.testing.assert_allclose(phi2, exact_shapley(v2, 2), atol=1e-12)


def test_sampled_values_batch_permutations_into_few_calls():
    calls = []

    def v(masks):
        calls.append(len(masks))
        return np.asarray(masks).sum(axis=1).astype(float)

    sampled_shapley(v, 9, samples=32, seed=0)
    assert calls == [32 * 10]
    calls.clear()
    sampled_shapley(v, 9, samples=32, seed=0, rows_per_call=100)
    assert len(calls) == math.ceil(32 / 10) and sum(calls) == 320


def test_sampled_values_depend_on_seed_only():
    v = random_game(6, seed=2)
    a, _ = sampled_shapley(v, 6, samples=8, seed=7)
    b, _ = sampled_shapley(v, 6, samples=8, seed=7)
    c, _ = sampled_shapley(v, 6, samples=8, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_exact_shapley_is_efficient_on_a_real_model(stories):
    expl = explain(
        request_for(
            PROMPT,
            method="shapley",
            granularity="word",
            max_new_tokens=3,
            options={"exact_max": 10},
        ),
        backend=stories,
    )
    n = len(expl.spans)
    assert 2 <= n <= 10
    assert expl.metrics["shapley_exact"] == 1.0
    assert expl.metrics["shapley_samples"] == 0.0
    assert expl.details["coalitions"] == 2**n
    # the same cached float32 score read back: only float64 conversion, 1e-9
    assert expl.details["v_all"] == pytest.approx(expl.target.logprob, abs=1e-9)
    total = sum(s.score for s in expl.spans)
    # v(all) - v(none) re-scored in a batch of two against the coalitions' batches: two
    # log-probs, each within F32_NATS
    gap = 2 * F32_NATS
    assert total == pytest.approx(expl.details["v_all"] - expl.details["v_none"], abs=gap)
    assert expl.metrics["shapley_efficiency_gap"] < gap
    assert all(type(v) is float for k, v in expl.metrics.items() if k.startswith("shapley_"))


@pytest.mark.parametrize("exact_max", [10, 2])
def test_method_batches_its_scoring(stories, exact_max):
    # Exact: all coalitions in one call; sampled: all permutations' coalitions in one call.
    # The second call fetches v(all) and v(none), already memoised, so it runs no forward.
    request = request_for(
        PROMPT,
        method="shapley",
        granularity="word",
        max_new_tokens=3,
        options={"exact_max": exact_max, "samples": 4},
    )
    _, prep = prepare(request, stories)
    sizes = []
    score_masks = prep.ctx.score_masks

    def counting(masks):
        sizes.append(len(masks))
        return score_masks(masks)

    prep.ctx.score_masks = counting
    passes = stories.counters.forward_passes
    result = get_method("shapley").fn(prep.ctx)
    n = len(prep.ctx.units)
    assert sizes == [2**n if exact_max >= n else 4 * (n + 1), 2]
    assert stories.counters.forward_passes - passes <= 2
    assert result.unit_scores is not None and len(result.unit_scores) == n


def test_sampled_shapley_is_efficient_on_a_real_model(stories):
    request = request_for(
        PROMPT,
        method="shapley",
        granularity="word",
        max_new_tokens=3,
        options={"exact_max": 2, "samples": 6, "seed": 3},
    )
    expl = explain(request, backend=stories)
    n = len(expl.spans)
    assert n > 2
    assert expl.metrics["shapley_exact"] == 0.0
    assert expl.metrics["shapley_samples"] == 6.0
    assert expl.metrics["shapley_efficiency_gap"] < 2 * F32_NATS  # as above
    assert len(expl.details["stderr"]) == n
    assert all(s is not None and s >= 0 for s in expl.details["stderr"])
    again = explain(request, backend=stories)
    # the same seeded float32 run again: equal to rounding
    assert [s.score for s in again.spans] == pytest.approx([s.score for s in expl.spans])


def test_sampled_shapley_on_tokens(stories):
    expl = explain(
        request_for(
            "Once upon a time",
            method="shapley",
            granularity="token",
            max_new_tokens=2,
            options={"exact_max": 0, "samples": "4", "antithetic": "false"},
        ),
        backend=stories,
    )
    assert expl.metrics["shapley_exact"] == 0.0
    assert expl.details["antithetic"] is False
    assert expl.metrics["shapley_efficiency_gap"] < 2 * F32_NATS  # as above
    # one token a span: each token's score is its span's float
    assert [t.score for t in expl.tokens] == pytest.approx([s.score for s in expl.spans])


@pytest.mark.parametrize(
    "options",
    [{"exact_max": 30}, {"samples": 0}, {"antithetic": "maybe"}, {"exact_max": "ten"}],
)
def test_bad_options_are_reported(stories, options):
    with pytest.raises(InvalidRequestError):
        explain(
            request_for(PROMPT, method="shapley", target=" named", options=options),
            backend=stories,
        )
