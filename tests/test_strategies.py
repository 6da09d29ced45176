"""Every registered strategy's curve against brute force over all k-subsets; picks; the registry.

The brute-force rules below are written from each strategy's definition, not by calling it:
draw every k-subset, apply the rule with uniform tie-breaking as an expectation, and average.
(hypothesis is not installed in the venv, so the pools come from a seeded generator.)
"""
from __future__ import annotations

import math
import random
from fractions import Fraction
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from engine import metrics, strategies
from engine.errors import EngineError
from engine.strategies import Pool
from engine.strategies import weighted_majority as wm

SPECS = ["oracle", "majority", "best_of_n:anything", "weighted_majority:anything"]
SCORE_VALUES = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, -0.3, -1.5]   # small set: many ties, 0.1 + 0.2 == 0.3


def _exact(x) -> Fraction:
    """A score as the decimal it was written as, so sums tie exactly when they should."""
    return Fraction(float(x)).limit_denominator(1000)


# --------------------------------------------------------------------------- brute-force rules

def _oracle(sub, pool):
    return Fraction(int(any(pool.correct[i] for i in sub)))


def _class_correct(pool, answer):
    return bool(next(pool.correct[i] for i, a in enumerate(pool.answers) if a == answer))


def _vote(totals: dict, pool) -> Fraction:
    """Uniform tie among the answers with the largest total: share of them that are correct."""
    if not totals:
        return Fraction(0)
    top = max(totals.values())
    tied = [a for a, t in totals.items() if t == top]
    return Fraction(sum(_class_correct(pool, a) for a in tied), len(tied))


def _majority(sub, pool):
    totals = {}
    for i in sub:
        if pool.answers[i] is not None:
            totals[pool.answers[i]] = totals.get(pool.answers[i], 0) + 1
    return _vote(totals, pool)


def _weighted(sub, pool):
    totals = {}
    for i in sub:
        if pool.answers[i] is not None:
            totals[pool.answers[i]] = totals.get(pool.answers[i], Fraction(0)) + _exact(pool.scores[i])
    return _vote(totals, pool)


def _best_of_n(sub, pool):
    top = max(_exact(pool.scores[i]) for i in sub)
    tied = [i for i in sub if _exact(pool.scores[i]) == top]
    return Fraction(sum(bool(pool.correct[i]) for i in tied), len(tied))


RULES = {"oracle": _oracle, "majority": _majority, "best_of_n": _best_of_n, "weighted_majority": _weighted}


def brute_curve(spec, pool, ks):
    rule = RULES[spec.partition(":")[0]]
    out = []
    for k in ks:
        if k > pool.n:
            out.append(np.nan)
            continue
        subs = list(combinations(range(pool.n), k))
        out.append(float(sum(rule(s, pool) for s in subs) / len(subs)))
    return np.array(out)


# --------------------------------------------------------------------------- random small pools

def random_pool(rng: random.Random) -> Pool:
    n = rng.randint(1, 8)
    kind = rng.random()
    labels = ["a", "b", 7, "d"][:rng.randint(1, 4)]
    answers = [None if rng.random() < 0.2 else rng.choice(labels) for _ in range(n)]
    if kind < 0.1:                                    # every sample answers the same, correctly
        answers, gold = ["a"] * n, "a"
    elif kind < 0.25:                                 # all wrong
        gold = None
    else:
        gold = rng.choice(labels)
    if kind > 0.9:                                    # nothing answered
        answers = [None] * n
    correct = np.array([a is not None and a == gold for a in answers])
    scores = np.array([rng.choice(SCORE_VALUES[:rng.randint(2, len(SCORE_VALUES))]) for _ in range(n)])
    return Pool(tuple(answers), correct, scores)


POOLS = [random_pool(random.Random(seed)) for seed in range(200)]


@pytest.mark.parametrize("spec", SPECS)
def test_curve_matches_brute_force_on_random_pools(spec):
    strat = strategies.get(spec)
    for pool in POOLS:
        ks = list(range(1, pool.n + 2))
        assert math.comb(pool.n, pool.n // 2) <= wm.EXACT_LIMIT      # weighted vote takes the exact path
        got, want = strat.curve(pool, ks), brute_curve(spec, pool, ks)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"{spec} on {pool}")
        vals, se = strat.curve_se(pool, ks)
        np.testing.assert_array_equal(vals, got)
        np.testing.assert_array_equal(se[:-1], 0.0)
        assert np.isnan(got[-1]) and np.isnan(se[-1])


HAND_POOLS = [
    Pool(("a", "b", "a", "b"), np.array([1, 0, 1, 0], bool), np.array([0.5, 0.5, 0.5, 0.5])),   # vote + score ties
    Pool(("a", "b", "b", None, "a", "c"), np.array([0, 1, 1, 0, 0, 0], bool),
         np.array([0.1, 0.2, 0.1, 0.9, 0.3, 0.3])),                                             # 0.1+0.2 == 0.3
    Pool((None, None, None), np.zeros(3, bool), np.array([0.2, 0.1, 0.3])),                      # nothing answered
    Pool(("x", "x", "x"), np.ones(3, bool), np.array([0.2, 0.2, 0.9])),                          # all correct
    Pool(("x", "y", "z", "y"), np.zeros(4, bool), np.array([0.9, 0.1, 0.4, 0.4])),               # all wrong
    Pool(("a", "b", "b", "a", None), np.array([0, 1, 1, 0, 0], bool),
         np.array([-1.0, -0.5, -0.5, -0.2, -3.0])),                                             # negative scores
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("pool", HAND_POOLS)
def test_curve_matches_brute_force_on_hand_pools(spec, pool):
    ks = [1, 2, 3, pool.n, pool.n + 5]
    np.testing.assert_allclose(strategies.get(spec).curve(pool, ks), brute_curve(spec, pool, ks), atol=1e-12)


def test_weighted_majority_tie_within_float_rounding():
    # 0.1 + 0.2 != 0.3 in floats; the vote still treats it as the tie it is
    pool = Pool(("a", "a", "b"), np.array([1, 1, 0], bool), np.array([0.1, 0.2, 0.3]))
    assert strategies.get("weighted_majority:s").curve(pool, [3])[0] == pytest.approx(0.5, abs=1e-15)


# --------------------------------------------------------------------------- Monte Carlo path

def _mc_pool(equal_scores: bool) -> Pool:
    rng = np.random.default_rng(3)
    n = 40
    answers = [None if r < 0.1 else int(c) for r, c in zip(rng.random(n), rng.integers(0, 5, n))]
    if equal_scores:
        correct = np.array([a == 0 for a in answers])
        scores = np.full(n, 0.7)
    else:  # 3 correct samples score 1; wrong ones 0.05, so 10 of them total at most 0.5 < 1
        answers = ["gold" if i < 3 else a for i, a in enumerate(answers)]
        correct = np.array([a == "gold" for a in answers])
        scores = np.where(correct, 1.0, 0.05)
    return Pool(tuple(answers), correct, scores)


@pytest.mark.parametrize("equal_scores", [True, False])
def test_monte_carlo_agrees_with_exact_reference(equal_scores):
    pool, k = _mc_pool(equal_scores), 10
    assert math.comb(pool.n, k) > wm.EXACT_LIMIT
    strat = strategies.get("weighted_majority:s")
    vals, se = strat.curve_se(pool, [k])
    if equal_scores:   # equal weights: plain majority vote
        ref = metrics.majority_at_k(pool.answers, pool.correct, k)
    else:              # the gold answer wins exactly when drawn: pass@k
        ref = metrics.pass_at_k(pool.n, int(pool.correct.sum()), k)
    assert se[0] > 0
    assert abs(vals[0] - ref) < 4 * se[0], (vals[0], ref, se[0])
    again = strat.curve_se(pool, [k])
    assert vals[0] == again[0][0] and se[0] == again[1][0]
    assert strat.curve(pool, [k])[0] == vals[0]
    assert 0.0 < ref < 1.0


def test_weighted_majority_k1_and_function():
    pool = HAND_POOLS[1]
    assert strategies.get("weighted_majority:s").curve(pool, [1])[0] == pytest.approx(2 / 6)
    v, se = wm.weighted_majority_at_k(pool.answers, pool.scores, pool.correct, 6)
    assert (v, se) == (pytest.approx(float(brute_curve("weighted_majority:s", pool, [6])[0])), 0.0)


# --------------------------------------------------------------------------- pick

def test_pick_each_strategy():
    tie = Pool(("a", "b", "b", None, "a"), np.array([1, 0, 0, 0, 1], bool), np.array([0.4, 0.9, 0.1, 0.9, 0.2]))
    none = Pool((None, None), np.zeros(2, bool), np.array([0.5, 0.5]))
    assert strategies.get("oracle").pick(tie) == 0
    assert strategies.get("oracle").pick(none) is None
    assert strategies.get("majority").pick(tie) in (0, 1)
    assert strategies.get("majority").pick(none) is None
    assert strategies.get("best_of_n:s").pick(tie) in (1, 3)
    assert strategies.get("best_of_n:s").pick(tie) == strategies.get("best_of_n:s").pick(tie)   # seeded
    w = strategies.get("weighted_majority:s")
    assert w.pick(tie) == 1                                    # b: 1.0 against a: 0.6 (the None's 0.9 does not vote)
    assert w.pick(none) is None
    decimal_tie = Pool(("a", "b", "a"), np.array([0, 1, 0], bool), np.array([0.1, 0.3, 0.2]))
    assert w.pick(decimal_tie) in (0, 1)
    negative = Pool(("a", "a", "b"), np.array([1, 1, 0], bool), np.array([-1.0, -1.0, -1.5]))
    assert w.pick(negative) == 2                               # negative scores: more votes, lower total


# --------------------------------------------------------------------------- registry

def test_registry():
    with pytest.raises(EngineError, match="weighted_majority") as err:
        strategies.get("unknown")
    assert all(name in str(err.value) for name in ("oracle", "majority", "best_of_n"))
    for bad in ("best_of_n", "weighted_majority", "majority:orm"):
        with pytest.raises(EngineError):
            strategies.get(bad)
    specs = strategies.available(["orm", "prm-min"])
    assert {"oracle", "majority", "best_of_n:orm", "weighted_majority:orm", "weighted_majority:prm-min"} <= set(specs)
    assert strategies.get("orm").spec == "best_of_n:orm"
    assert strategies.get("prm").spec == "best_of_n:prm-min"
    cls = type(strategies.get("weighted_majority:orm"))
    assert (cls.name, cls.uses_scorer, cls.order, cls.short) == ("weighted_majority", True, 30, "weighted vote")
    assert [c.name for c in strategies.kinds()][:4] == ["oracle", "majority", "best_of_n", "weighted_majority"]


# --------------------------------------------------------------------------- whole blocks (curve_block)

def _frame(pools) -> pd.DataFrame:
    """Pools as rows of cached samples (problem, idx, answer, correct, score), sorted as curves reads them."""
    rows = [dict(problem_id=f"p{i:03d}", idx=j, answer=a, correct=bool(c), score=float(s))
            for i, p in enumerate(pools) for j, (a, c, s) in enumerate(zip(p.answers, p.correct, p.scores))]
    df = pd.DataFrame(rows)
    df["answer"] = df["answer"].astype(object).where(df["answer"].notna(), None)
    return df


@pytest.mark.parametrize("spec", SPECS)
def test_block_curves_match_per_pool_on_ragged_pools(spec):
    """The array path (pools of mixed sizes, grouped by size) gives the per-pool numbers, SEs included."""
    strat = strategies.get(spec)
    pools = POOLS[:120] + HAND_POOLS + [_mc_pool(False), _mc_pool(True)]
    ks = [1, 2, 3, 4, 8, 10, 40]                       # k = n for some pools, k > n (NaN) for most
    acc, se = strategies.block_curves(strat, _frame(pools), ks)
    for i, pool in enumerate(pools):
        want, want_se = strat.curve_se(pool, ks)
        np.testing.assert_allclose(acc[i], want, rtol=0, atol=1e-12, err_msg=f"{spec} on {pool}")
        np.testing.assert_allclose(se[i], want_se, rtol=0, atol=1e-12, err_msg=f"{spec} on {pool}")
    by_default = strategies.Strategy.curve_block(strat, strategies.Pools.from_pools([POOLS[0]]), ks)
    np.testing.assert_allclose(by_default[0], acc[:1], atol=1e-12)


def test_a_strategy_with_only_curve_works_in_blocks():
    class FirstDraw(strategies.Strategy):
        name, label, short, help = "first_draw_test", "first draw", "first", "first draw"

        def curve(self, pool, ks):
            return np.array([pool.correct.mean() if k <= pool.n else np.nan for k in ks])

    pools = POOLS[:30]
    acc, se = strategies.block_curves(FirstDraw(), _frame(pools), [1, 4])
    np.testing.assert_allclose(acc, [FirstDraw().curve(p, [1, 4]) for p in pools], atol=0)
    assert np.all((se == 0) | np.isnan(acc))


@pytest.mark.parametrize("values", [SCORE_VALUES, [0.02, 0.05, 0.1, 0.2, 0.3, 0.9]])   # positive: answers
def test_weighted_block_matches_the_one_subset_at_a_time_reference(values, monkeypatch):  # that cannot win drop
    """Vectorised over problems, the weighted vote uses the same subsets and rule as the plain reference."""
    monkeypatch.setattr(wm, "EXACT_LIMIT", 20)                                           # the reference's limit
    rng = np.random.default_rng(8)
    for _ in range(60):
        p, n = int(rng.integers(1, 5)), int(rng.integers(1, 16))
        codes = np.where(rng.random((p, n)) < 0.2, -1, rng.integers(0, int(rng.integers(1, 7)), (p, n)))
        correct = (codes == rng.integers(-1, 3, p)[:, None]) & (codes >= 0)
        scores = np.where(correct, rng.choice(values[-3:], (p, n)), rng.choice(values, (p, n)))
        ks = list(range(1, n + 1))
        vals, ses = wm.weighted_majority_block(codes, scores, correct, ks, exact_limit=20)   # MC for most k
        for i in range(p):
            c, w, ok = wm._classes([None if x < 0 else int(x) for x in codes[i]], scores[i], correct[i])
            for j, k in enumerate(ks):
                value, se = wm._at_k(c, w, ok, k)
                assert vals[i, j] == pytest.approx(value, abs=1e-12) and ses[i, j] == pytest.approx(se, abs=1e-12)


def test_weighted_fast_subset_values_match_the_plain_rule():
    """Positive weights and one right answer per row (the usual case) take a faster evaluation; on random rows
    with many exact ties every subset gets the value the plain one-pool rule gives it, and rows it leaves to the
    general rule (zero or negative weights, no right answer, two) get them too."""
    rng = np.random.default_rng(11)
    took = set()
    for trial in range(80):
        p, n = int(rng.integers(1, 6)), int(rng.integers(2, 12))
        codes = np.where(rng.random((p, n)) < 0.15, -1, rng.integers(0, int(rng.integers(1, 6)), (p, n)))
        codes[:, 0] = np.maximum(codes[:, 0], 0)                          # every row answers somewhere
        right = rng.integers(-1, 3, p)[:, None]
        correct = (codes == right) | ((trial % 7 == 0) & (codes == 1))  # now and then two right answers
        values = SCORE_VALUES if trial % 3 == 0 else [0.1, 0.2, 0.3, 0.5]   # 0.1 + 0.2 ties 0.3
        w = np.where(codes >= 0, rng.choice(values, (p, n)), 0.0)
        dense, m, class_ok = wm._recode(codes, correct)
        k = int(rng.integers(1, n + 1))
        idx, drawn = wm._subsets(n, k, 60, 0), wm._drawn(n, k, 60, 0)
        width = int(m.max())
        took.add(wm._one_right_answer_values(dense, w, class_ok[:, :width], drawn) is not None)
        got = wm._block_subset_values(dense, w, class_ok[:, :width], drawn)
        for i in range(p):
            assert np.array_equal(got[:, i], wm._subset_values(dense[i], w[i], class_ok[i, :m[i]], idx)), (trial, i)
    assert took == {True, False}


def test_weighted_monte_carlo_is_unbiased_and_its_error_is_right(monkeypatch):
    """Forced onto Monte Carlo, tiny pools against every k-subset: within a few reported SEs, and the spread
    over seeds matches the reported SE."""
    pools = [HAND_POOLS[1], HAND_POOLS[5], POOLS[7], Pool(("a", "b", "a", "c", None, "b", "a"),
                                                          np.array([1, 0, 1, 0, 0, 0, 1], bool),
                                                          np.array([0.2, 0.5, 0.1, 0.9, 0.3, 0.2, 0.3]))]
    block = strategies.Pools.from_pools([pools[-1]])
    for pool in pools:
        one = strategies.Pools.from_pools([pool])
        for k in range(2, pool.n):
            exact = brute_curve("weighted_majority:s", pool, [k])[0]
            v, se = wm.weighted_majority_block(one.codes, one.scores, one.correct, [k], exact_limit=0)
            assert abs(v[0, 0] - exact) <= 4 * se[0, 0] + 1e-12, (pool, k, v, se, exact)
    k, estimates, reported = 3, [], []
    for seed in range(40):
        monkeypatch.setattr(wm, "_SEED", seed)
        v, se = wm.weighted_majority_block(block.codes, block.scores, block.correct, [k], n_mc=200, exact_limit=0)
        estimates.append(v[0, 0])
        reported.append(se[0, 0])
    exact = brute_curve("weighted_majority:s", pools[-1], [k])[0]
    assert abs(np.mean(estimates) - exact) < 4 * np.mean(reported) / math.sqrt(len(estimates))
    assert 0.7 < np.std(estimates, ddof=1) / np.mean(reported) < 1.4
