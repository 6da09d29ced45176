"""Estimators against brute-force enumeration of every k-subset of small pools."""
import itertools
import math
import time
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.metrics import (best_of_k, best_of_k_block, best_of_k_curve, bootstrap_ci, majority_at_k,
                            majority_at_k_block, majority_at_k_curve, mean_with_ci, pass_at_k, pass_at_k_block,
                            pass_at_k_matrix)

TOL = 1e-12


# ------------------------------------------------------------------ brute force (exact fractions)

def subsets(n, k):
    return list(itertools.combinations(range(n), k))


def brute_pass(correct, k):
    subs = subsets(len(correct), k)
    return float(Fraction(sum(any(correct[i] for i in s) for s in subs), len(subs)))


def brute_best(scores, correct, k):
    subs = subsets(len(scores), k)
    total = Fraction(0)
    for s in subs:
        top = max(scores[i] for i in s)
        winners = [i for i in s if scores[i] == top]
        # uniform tie-break: average correctness over the tied winners
        total += Fraction(sum(bool(correct[i]) for i in winners), len(winners))
    return float(total / len(subs))


def brute_majority(answers, gold, k):
    subs = subsets(len(answers), k)
    total = Fraction(0)
    for s in subs:
        votes = Counter(answers[i] for i in s if answers[i] is not None)
        if not votes:
            continue
        top = max(votes.values())
        winners = [a for a, c in votes.items() if c == top]
        if gold in winners:
            total += Fraction(1, len(winners))
    return float(total / len(subs))


def random_pools(seed, count):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield rng, int(rng.integers(1, 9))


# ------------------------------------------------------------------ pass@k

def test_pass_at_k_matches_enumeration():
    for rng, n in random_pools(1, 40):
        correct = rng.random(n) < rng.random()
        for k in range(1, n + 1):
            assert abs(pass_at_k(n, int(correct.sum()), k) - brute_pass(correct, k)) < TOL


def test_pass_at_k_edges():
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 3) == 1.0
    assert pass_at_k(10, 1, 10) == 1.0  # all samples drawn, the one correct included
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3, abs=TOL)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2), abs=TOL)
    # large n: stays accurate where C(n, k) would be astronomically large
    n, c, k = 10_000, 7, 500
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)
    assert pass_at_k(np.int64(8), np.int64(2), np.int64(3)) == pytest.approx(brute_pass([1, 1] + [0] * 6, 3))


@pytest.mark.parametrize("args", [(5, 1, 6), (-1, 0, 1), (5, -1, 1), (5, 1, -1), (5, 1, 0), (5, 6, 1), (5.5, 1, 1)])
def test_pass_at_k_bad_inputs(args):
    with pytest.raises(ConfigError):
        pass_at_k(*args)


def test_pass_at_k_matrix():
    n = np.array([4, 8, 8, 2, 8])
    c = np.array([1, 0, 8, 1, 3])
    ks = [1, 2, 4, 8]
    m = pass_at_k_matrix(n, c, ks)
    assert m.shape == (5, 4)
    for i in range(5):
        for j, k in enumerate(ks):
            if k > n[i]:
                assert np.isnan(m[i, j])
            else:
                assert m[i, j] == pytest.approx(pass_at_k(int(n[i]), int(c[i]), k), abs=TOL)
    assert np.isnan(m[0, 3]) and np.isnan(m[3, 2]) and not np.isnan(m[1, 3])
    assert m[2, 0] == 1.0 and m[1, 3] == 0.0
    assert pass_at_k_matrix([], [], [1, 2]).shape == (0, 2)


def test_pass_at_k_matrix_bad_inputs():
    with pytest.raises(ConfigError):
        pass_at_k_matrix([4, 4], [5, 1], [1])  # c > n
    with pytest.raises(ConfigError):
        pass_at_k_matrix([4, 4], [1], [1])
    with pytest.raises(ConfigError):
        pass_at_k_matrix([4, -4], [1, 1], [1])
    with pytest.raises(ConfigError):
        pass_at_k_matrix([4, 4], [1, 1], [0])


# ------------------------------------------------------------------ best-of-k

def test_best_of_k_matches_enumeration_with_ties():
    for rng, n in random_pools(2, 60):
        # few distinct scores so ties are common
        scores = rng.integers(0, int(rng.integers(1, 4)), n).astype(float).tolist()
        correct = (rng.random(n) < 0.5).tolist()
        curve = best_of_k_curve(scores, correct, list(range(1, n + 2)))
        for k in range(1, n + 1):
            want = brute_best(scores, correct, k)
            assert abs(best_of_k(scores, correct, k) - want) < TOL
            assert abs(curve[k - 1] - want) < TOL
        assert np.isnan(curve[n])


def test_best_of_k_distinct_scores_and_identities():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=7).tolist()
    correct = [True, False, False, True, False, False, False]
    for k in range(1, 8):
        assert abs(best_of_k(scores, correct, k) - brute_best(scores, correct, k)) < TOL
    # a verifier that scores exactly the correctness is pass@k
    n, c = 256, 9
    correct = [True] * c + [False] * (n - c)
    for k in (1, 16, 100, 256):
        assert best_of_k([float(x) for x in correct], correct, k) == pytest.approx(pass_at_k(n, c, k), abs=TOL)
    # an uninformative (constant) verifier picks uniformly: accuracy c/n at every k
    assert best_of_k([0.5] * n, correct, 64) == pytest.approx(c / n, abs=TOL)
    # k=1 is always plain accuracy, whatever the scores
    assert best_of_k(scores, [True, False, True, False, False, False, False], 1) == pytest.approx(2 / 7, abs=TOL)


def test_best_of_k_bad_inputs():
    with pytest.raises(ConfigError):
        best_of_k([0.1, 0.2], [True], 1)
    with pytest.raises(ConfigError):
        best_of_k([0.1, 0.2], [True, False], 3)
    with pytest.raises(ConfigError):
        best_of_k([0.1, float("nan")], [True, False], 1)
    with pytest.raises(ConfigError):
        best_of_k([], [], 1)


# ------------------------------------------------------------------ majority@k

def test_majority_matches_enumeration():
    # alphabet with abstentions (None); "a" is the gold answer when present
    for rng, n in random_pools(4, 80):
        alphabet = [None, "a", "b", "c", "d"][: int(rng.integers(2, 6))]
        answers = [alphabet[i] for i in rng.integers(0, len(alphabet), n)]
        flags = [a == "a" for a in answers]
        curve = majority_at_k_curve(answers, flags, list(range(1, n + 2)))
        for k in range(1, n + 1):
            want = brute_majority(answers, "a", k)
            assert abs(majority_at_k(answers, flags, k) - want) < TOL, (answers, k)
            assert abs(curve[k - 1] - want) < TOL
        assert np.isnan(curve[n])


def test_majority_hand_cases():
    # 2-2 tie at k=4: the correct class wins half the time
    assert majority_at_k(["x", "x", "y", "y"], [True, True, False, False], 4) == pytest.approx(0.5, abs=TOL)
    # three-way tie at k=3: 1/3
    assert majority_at_k(["x", "y", "z"], [True, False, False], 3) == pytest.approx(1 / 3, abs=TOL)
    # all abstain -> wrong; abstentions still use up draws
    assert majority_at_k([None, None, None], [False] * 3, 2) == 0.0
    assert majority_at_k(["x", None, None], [True, False, False], 2) == pytest.approx(2 / 3, abs=TOL)
    # NaN and pandas NA (missing answers read back from a DataFrame) abstain like None
    pd = pytest.importorskip("pandas")
    for missing in (float("nan"), np.nan, pd.NA):
        assert majority_at_k(["x", missing, float("nan")], [True, False, False], 2) == pytest.approx(2 / 3, abs=TOL)
    # no correct sample at all
    assert majority_at_k(["y", "z", None], [False] * 3, 2) == 0.0
    # pool x,y,y,y,None at k=3 (10 draws): the 3 draws {x,y,None} are 1-1 ties worth 1/2 each,
    # the 3 draws {x,y,y} lose, draws without x lose -> 1.5/10
    ans = ["x", "y", "y", "y", None]
    assert majority_at_k(ans, [True, False, False, False, False], 3) == pytest.approx(0.15, abs=TOL)
    # k=1 is plain accuracy (abstentions count as wrong)
    assert majority_at_k(["x", "x", "y", None, None], [True, True, False, False, False], 1) == pytest.approx(0.4)


def test_majority_large_pool_identities_and_speed():
    n, c = 256, 11
    # only correct answers and abstentions: majority@k == pass@k
    ans = ["42"] * c + [None] * (n - c)
    flags = [a == "42" for a in ans]
    ks = [1, 4, 32, 128, 256]
    got = majority_at_k_curve(ans, flags, ks)
    assert got == pytest.approx([pass_at_k(n, c, k) for k in ks], abs=1e-12)
    # 16 equal classes: by symmetry each wins with probability 1/16 at every k
    t = time.perf_counter()
    ans = [str(i % 16) for i in range(n)]
    got = majority_at_k_curve(ans, [a == "3" for a in ans], ks)
    assert got == pytest.approx([1 / 16] * len(ks), abs=1e-12)
    # every sample different: a 256-way tie structure must stay fast and symmetric
    ans = [str(i) for i in range(n)]
    assert majority_at_k(ans, [a == "0" for a in ans], 200) == pytest.approx(1 / n, abs=1e-12)
    assert time.perf_counter() - t < 5
    # dominant correct class: accuracy rises towards 1 with k
    ans = ["a"] * 100 + [str(i % 50) for i in range(156)]
    curve = majority_at_k_curve(ans, [x == "a" for x in ans], [1, 8, 64, 256])
    assert curve[0] == pytest.approx(100 / 256) and np.all(np.diff(curve) > 0) and curve[-1] == 1.0


def test_majority_bad_inputs():
    with pytest.raises(ConfigError):
        majority_at_k(["x", "y"], [True], 1)
    with pytest.raises(ConfigError):
        majority_at_k(["x", "y"], [True, True], 1)  # two different answers both "correct"
    with pytest.raises(ConfigError):
        majority_at_k(["x", "x"], [True, False], 1)  # same answer, inconsistent flags
    with pytest.raises(ConfigError):
        majority_at_k([None, "x"], [True, False], 1)
    with pytest.raises(ConfigError):
        majority_at_k([float("nan"), "x"], [True, False], 1)
    with pytest.raises(ConfigError):
        majority_at_k(["x", "y"], [True, False], 3)
    with pytest.raises(ConfigError):
        majority_at_k([], [], 1)


# ------------------------------------------------------------------ whole blocks at once (curve_block)

def random_block(rng, p, n, labels=4, none=0.2):
    """[p, n] answer codes (-1: no answer; some rows without a correct answer), correctness, tied scores."""
    codes = rng.integers(0, int(rng.integers(1, labels + 1)), (p, n))
    codes = np.where(rng.random((p, n)) < none, -1, codes)
    gold = rng.integers(-1, labels, p)
    correct = (codes == gold[:, None]) & (codes >= 0)
    scores = rng.choice([0.0, 0.1, 0.2, 0.5, 0.9, -1.0], (p, n))
    return codes, correct, scores


def as_answers(row):
    return [None if c < 0 else f"a{c}" for c in row]


def test_block_estimators_match_per_problem_and_enumeration():
    rng = np.random.default_rng(12)
    for _ in range(150):
        n, p = int(rng.integers(1, 9)), int(rng.integers(1, 5))
        codes, correct, scores = random_block(rng, p, n)
        ks = list(range(1, n + 2))                                   # k = n, and k > n (NaN)
        got = {"pass": pass_at_k_block(correct, ks), "best": best_of_k_block(scores, correct, ks),
               "vote": majority_at_k_block(codes, correct, ks)}
        for i in range(p):
            per = {"pass": pass_at_k_matrix([n], [int(correct[i].sum())], ks)[0],
                   "best": best_of_k_curve(scores[i], correct[i], ks),
                   "vote": majority_at_k_curve(as_answers(codes[i]), correct[i], ks)}
            gold = next((a for a, f in zip(as_answers(codes[i]), correct[i]) if f), None)
            brute = {"pass": [brute_pass(correct[i], k) for k in ks[:-1]],
                     "best": [brute_best(list(scores[i]), correct[i], k) for k in ks[:-1]],
                     "vote": [brute_majority(as_answers(codes[i]), gold, k) if gold else 0.0 for k in ks[:-1]]}
            for name in got:
                np.testing.assert_allclose(got[name][i], per[name], rtol=0, atol=TOL, err_msg=name)
                np.testing.assert_allclose(got[name][i, :-1], brute[name], rtol=0, atol=TOL, err_msg=name)
                assert np.isnan(got[name][i, -1])


def test_block_estimators_on_pools_of_64():
    rng = np.random.default_rng(5)
    p, n, ks = 40, 64, [1, 2, 3, 4, 8, 16, 31, 32, 63, 64]
    codes = np.where(rng.random((p, n)) < 0.1, -1, np.minimum(rng.geometric(0.3, (p, n)), 40))
    codes[:3] = rng.integers(0, 60, (3, n))                           # many answers given once
    codes[3] = 7                                                      # everyone agrees
    correct = codes == 1
    scores = np.round(rng.random((p, n)), 1)                          # many ties
    vote, best = majority_at_k_block(codes, correct, ks), best_of_k_block(scores, correct, ks)
    for i in range(p):
        np.testing.assert_allclose(vote[i], majority_at_k_curve(as_answers(codes[i]), correct[i], ks), atol=TOL)
        np.testing.assert_allclose(best[i], best_of_k_curve(scores[i], correct[i], ks), atol=TOL)
    np.testing.assert_allclose(pass_at_k_block(correct, ks),
                               pass_at_k_matrix(np.full(p, n), correct.sum(axis=1), ks), atol=0)


def test_block_estimators_bad_inputs():
    with pytest.raises(ConfigError):
        majority_at_k_block([[0, 1]], [[True, True]], [1])            # two different answers both "correct"
    with pytest.raises(ConfigError):
        majority_at_k_block([[0, 0]], [[True, False]], [1])           # same answer, inconsistent flags
    with pytest.raises(ConfigError):
        majority_at_k_block([[-1, 0]], [[True, False]], [1])          # no answer flagged correct
    with pytest.raises(ConfigError):
        best_of_k_block([[0.1, float("nan")]], [[True, False]], [1])
    with pytest.raises(ConfigError):
        best_of_k_block([[0.1, 0.2]], [[True, False]], [0])
    assert majority_at_k_block(np.zeros((0, 4), int), np.zeros((0, 4), bool), [1, 2]).shape == (0, 2)


# ------------------------------------------------------------------ bootstrap

def test_bootstrap_deterministic_and_contains_mean():
    rng = np.random.default_rng(5)
    vals = rng.random((200, 3))
    lo1, hi1 = bootstrap_ci(vals, seed=7)
    lo2, hi2 = bootstrap_ci(vals, seed=7)
    lo3, _ = bootstrap_ci(vals, seed=8)
    assert np.array_equal(lo1, lo2) and np.array_equal(hi1, hi2)
    assert not np.array_equal(lo1, lo3)
    assert lo1.shape == (3,)
    mean = vals.mean(axis=0)
    assert np.all(lo1 < mean) and np.all(mean < hi1)
    # roughly mean +- 1.96 * standard error for a large sample
    se = vals.std(axis=0, ddof=1) / np.sqrt(200)
    assert np.allclose(hi1 - lo1, 2 * 1.96 * se, rtol=0.2)


def test_bootstrap_shrinks_with_more_problems():
    rng = np.random.default_rng(6)
    small, large = rng.random(25), rng.random(2500)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s.shape == () and float(hi_s - lo_s) > 5 * float(hi_l - lo_l)


def test_bootstrap_nan_and_constant():
    lo, hi = bootstrap_ci(np.full(10, 0.25))
    assert float(lo) == float(hi) == 0.25
    vals = np.array([[1.0, np.nan, np.nan], [0.0, 1.0, np.nan], [1.0, 1.0, np.nan], [0.0, np.nan, np.nan]])
    lo, hi = bootstrap_ci(vals, n_boot=500)
    assert 0.0 <= lo[0] < 0.5 < hi[0] <= 1.0
    assert lo[1] == hi[1] == 1.0  # NaNs ignored, not treated as 0
    assert np.isnan(lo[2]) and np.isnan(hi[2])
    mean, mlo, mhi = mean_with_ci(vals, n_boot=500)
    assert mean[0] == 0.5 and mean[1] == 1.0 and np.isnan(mean[2])
    assert np.array_equal(mlo, lo, equal_nan=True) and np.array_equal(mhi, hi, equal_nan=True)



def test_bootstrap_without_nan_takes_a_shortcut_to_the_same_interval():
    """Complete columns skip the NaN bookkeeping (a resample's mean divides by p); the interval is bit-identical
    to the general path's, which a NaN column beside them forces."""
    rng = np.random.default_rng(9)
    for vals in (rng.random((300, 4)), np.round(rng.random((57, 3)), 2)):
        lo, hi = bootstrap_ci(vals, seed=3)
        lo2, hi2 = bootstrap_ci(np.column_stack([vals, np.full(len(vals), np.nan)]), seed=3)
        assert np.array_equal(lo, lo2[:-1]) and np.array_equal(hi, hi2[:-1]) and np.isnan(lo2[-1])

def test_mean_with_ci_1d_and_bad_inputs():
    m, lo, hi = mean_with_ci([0.0, 1.0, 1.0, 1.0])
    assert float(m) == 0.75 and 0.0 <= float(lo) <= 0.75 <= float(hi) <= 1.0
    for bad in [dict(values=np.zeros((0,))), dict(values=np.zeros((2, 2, 2))),
                dict(values=[1.0], alpha=0.0), dict(values=[1.0], alpha=1.5), dict(values=[1.0], n_boot=0)]:
        with pytest.raises(ConfigError):
            bootstrap_ci(**bad)
