"""Property-based checks of the estimators (hypothesis): every value a probability, pass@k never falling
with k, exact expectations matching a seeded resampling of k-subsets, and the order of samples irrelevant."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import metrics
from engine.strategies import Pool, get
from engine.strategies.weighted_majority import EXACT_LIMIT, weighted_majority_at_k

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None)  # no files in the tree
DRAWS = 3000  # resampled k-subsets: standard error at most 0.5 / sqrt(3000) = 0.009, tolerance 0.05


@st.composite
def pools(draw, max_n=12):
    """A problem's samples: answers from a small alphabet (None: no answer), "a" the right one, and scores
    with ties (drawn from a few levels)."""
    n = draw(st.integers(1, max_n))
    answers = draw(st.lists(st.sampled_from([None, "a", "b", "c"]), min_size=n, max_size=n))
    scores = draw(st.lists(st.sampled_from([0.1, 0.5, 0.5, 0.9, 0.2]), min_size=n, max_size=n))
    k = draw(st.integers(1, n))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    return answers, np.array([a == "a" for a in answers]), np.array(scores), k, seed


def _resampled(answers, correct, scores, k, seed, rule):
    """The mean over seeded random k-subsets (without replacement) of what ``rule`` scores a subset."""
    rng = np.random.default_rng(seed)
    n = len(answers)
    total = 0.0
    for _ in range(DRAWS):
        idx = rng.choice(n, size=k, replace=False)
        total += rule([answers[i] for i in idx], correct[idx], scores[idx], rng)
    return total / DRAWS


def _vote(answers, correct, scores, rng, weights=None):
    tally: dict = {}
    for j, a in enumerate(answers):
        if a is not None:
            tally[a] = tally.get(a, 0.0) + (1.0 if weights is None else scores[j])
    if not tally:
        return 0.0
    top = max(tally.values())
    winners = [a for a, v in tally.items() if abs(v - top) < 1e-9]
    return winners.count("a") / len(winners)


def _best(answers, correct, scores, rng):
    top = np.flatnonzero(scores == scores.max())
    return float(correct[top].mean())  # a tie is broken uniformly: the chance a right one is picked


@FAST
@given(st.integers(1, 300), st.data())
def test_pass_at_k_is_a_probability_and_never_falls_with_k(n, data):
    c = data.draw(st.integers(0, n))
    vals = [metrics.pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert all(0.0 <= v <= 1.0 for v in vals)
    assert all(b >= a - 1e-12 for a, b in zip(vals, vals[1:]))
    assert abs(vals[0] - c / n) < 1e-9


@FAST
@given(pools())
def test_every_estimator_is_a_probability(pool):
    answers, correct, scores, k, _ = pool
    for v in (metrics.majority_at_k(answers, correct, k), metrics.best_of_k(scores, correct, k),
              weighted_majority_at_k(answers, scores, correct, k)[0]):
        assert 0.0 <= v <= 1.0 + 1e-12


@FAST
@given(pools(), st.randoms(use_true_random=False))
def test_sample_order_does_not_matter(pool, rnd):
    answers, correct, scores, k, _ = pool
    perm = list(range(len(answers)))
    rnd.shuffle(perm)
    a2, c2, s2 = [answers[i] for i in perm], correct[perm], scores[perm]
    assert abs(metrics.majority_at_k(answers, correct, k) - metrics.majority_at_k(a2, c2, k)) < 1e-9
    assert abs(metrics.best_of_k(scores, correct, k) - metrics.best_of_k(s2, c2, k)) < 1e-9
    n = len(answers)
    ks = list(range(1, n + 1))
    for spec in ("oracle", "majority", "best_of_n:self-likelihood"):
        s = get(spec)
        assert np.allclose(s.curve(Pool(tuple(answers), correct, scores), ks),
                           s.curve(Pool(tuple(a2), c2, s2), ks), atol=1e-9)


@FAST
@given(pools())
def test_exact_majority_matches_resampled_subsets(pool):
    answers, correct, scores, k, seed = pool
    exact = metrics.majority_at_k(answers, correct, k)
    assert abs(exact - _resampled(answers, correct, scores, k, seed, _vote)) < 0.05


@FAST
@given(pools())
def test_exact_best_of_k_matches_resampled_subsets(pool):
    answers, correct, scores, k, seed = pool
    exact = metrics.best_of_k(scores, correct, k)
    assert abs(exact - _resampled(answers, correct, scores, k, seed, _best)) < 0.05


@FAST
@given(pools(max_n=10))
def test_weighted_majority_matches_resampled_subsets(pool):
    import math
    answers, correct, scores, k, seed = pool
    value, se = weighted_majority_at_k(answers, scores, correct, k)
    if math.comb(len(answers), k) <= EXACT_LIMIT:
        assert se == 0.0
    rule = lambda a, c, s, rng: _vote(a, c, s, rng, weights=True)  # noqa: E731
    assert abs(value - _resampled(answers, correct, scores, k, seed, rule)) < 0.05 + 4 * se


@FAST
@given(pools())
def test_pass_at_k_bounds_every_strategy(pool):
    """No selection beats the oracle: pass@k is the chance some drawn sample is right."""
    answers, correct, scores, _, _ = pool
    ks = list(range(1, len(answers) + 1))
    p = Pool(tuple(answers), correct, scores)
    ceiling = get("oracle").curve(p, ks)
    for spec in ("majority", "best_of_n:self-likelihood", "weighted_majority:self-likelihood"):
        assert np.all(get(spec).curve(p, ks) <= ceiling + 1e-9)
