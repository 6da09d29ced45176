"""Estimators for repeated sampling: pass@k, best-of-k with a verifier, majority vote, bootstrap CIs.

Every estimator here is *exact* for the question "draw k of the n cached samples of a problem
without replacement; what is the expected score?". Averaging that expectation over all k-subsets
is what makes the estimates unbiased and low-variance compared with literally splitting the pool
into n/k groups (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", sec. 2.1;
Brown et al. 2024, "Large Language Monkeys: Scaling Inference Compute with Repeated Sampling",
sec. 2 and sec. 4 for verifier-based selection and majority voting).

All functions are pure and take plain sequences or numpy arrays; user errors raise
:class:`engine.errors.ConfigError`.
"""
from __future__ import annotations

import math
import operator
from collections import Counter
from functools import lru_cache
from typing import Hashable, Sequence

import numpy as np

from .errors import ConfigError

# Intermediate counts in the majority-vote polynomial are at most max_s C(n, s); keep them well
# inside float64's range (~1.8e308) so no term overflows to inf.
_MAX_FLOAT_COUNT = 1e300


# --------------------------------------------------------------------------- validation helpers

def _int(name: str, value) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        if isinstance(value, float) and value.is_integer():
            v = int(value)
        else:
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if v < 0:
        raise ConfigError(f"{name} must be non-negative, got {v}")
    return v


def _check_k(k, n: int) -> int:
    k = _int("k", k)
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if k > n:
        raise ConfigError(f"k={k} exceeds the number of samples n={n}")
    return k


def _int_array(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ConfigError(f"{name} must hold whole numbers")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu" and arr.size:
        raise ConfigError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise ConfigError(f"{name} must be non-negative")
    return arr


# --------------------------------------------------------------------------- pass@k

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    Chen et al. 2021, "Evaluating Large Language Models Trained on Code", eq. 1 and fig. 3.
    Computed as the product 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge
    binomials and so stays accurate for any n.
    """
    n, c = _int("n", n), _int("c", c)
    if c > n:
        raise ConfigError(f"c={c} correct samples exceeds n={n}")
    k = _check_k(k, n)
    if n - c < k:
        # every k-subset must contain a correct sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_at_k_matrix(n, c, ks: Sequence[int]) -> np.ndarray:
    """pass@k for many problems at once: returns shape [problems, len(ks)].

    ``n`` and ``c`` are per-problem sample and correct counts (n may differ between problems).
    Entries where k exceeds that problem's n are NaN: there is no unbiased estimate there, and
    NaN lets callers average with ``np.nanmean`` or drop the problem explicitly.
    """
    n, c = _int_array("n", n), _int_array("c", c)
    if n.shape != c.shape:
        raise ConfigError(f"n and c differ in length ({n.size} vs {c.size})")
    if np.any(c > n):
        raise ConfigError("c exceeds n for some problem")
    ks = [_int("k", k) for k in ks]
    if any(k < 1 for k in ks):
        raise ConfigError("every k must be at least 1")
    out = np.full((n.size, len(ks)), np.nan)
    # problems repeat the same (n, c) pair a lot (e.g. all-wrong), so compute each pair once
    pairs, inverse = np.unique(np.stack([n, c], axis=1), axis=0, return_inverse=True) if n.size else (
        np.zeros((0, 2), np.int64), np.zeros(0, np.int64))
    inverse = np.asarray(inverse).reshape(-1)
    for j, k in enumerate(ks):
        vals = np.array([pass_at_k(int(pn), int(pc), k) if k <= pn else np.nan for pn, pc in pairs])
        if n.size:
            out[:, j] = vals[inverse]
    return out


# --------------------------------------------------------------------------- best-of-k (verifier)

def best_of_k(scores: Sequence[float], correct: Sequence[bool], k: int) -> float:
    """Expected correctness of picking the highest-scored of k samples drawn from the pool.

    The k samples are a uniformly random k-subset of the n scored samples (Brown et al. 2024,
    sec. 4, "verifiers"). The answer is exact, not Monte Carlo: sort samples into groups of equal
    score; the pick comes from a group with L samples scored strictly lower and g in the group
    exactly when the subset avoids all higher-scored samples and hits the group, which happens in
    C(L+g, k) - C(L, k) of the C(n, k) subsets. Ties are broken uniformly at random, so given
    the group, each of its members is equally likely to be the one picked.
    """
    s, ok = _scores_and_correct(scores, correct)
    k = _check_k(k, s.size)
    return _best_of_k_groups(*_score_groups(s, ok), k)


def best_of_k_curve(scores: Sequence[float], correct: Sequence[bool], ks: Sequence[int]) -> np.ndarray:
    """:func:`best_of_k` for each k in ``ks`` (one problem); NaN where k exceeds the pool size."""
    s, ok = _scores_and_correct(scores, correct)
    groups = _score_groups(s, ok)
    return np.array([_best_of_k_groups(*groups, k) if _k_in_pool(k, s.size) else np.nan for k in ks])


def _scores_and_correct(scores, correct) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=np.float64).reshape(-1)
    if s.size != ok.size:
        raise ConfigError(f"scores and correct differ in length ({s.size} vs {ok.size})")
    if s.size == 0:
        raise ConfigError("need at least one sample")
    if np.any(np.isnan(s)):
        raise ConfigError("verifier scores contain NaN; cannot rank samples")
    if np.any((ok < 0) | (ok > 1)):
        raise ConfigError("correct must hold booleans (or values in [0, 1])")
    return s, ok


def _score_groups(s: np.ndarray, ok: np.ndarray) -> tuple[list[int], list[int], list[float], int]:
    _, inv = np.unique(s, return_inverse=True)
    sizes = np.bincount(inv)
    hits = np.bincount(inv, weights=ok)
    lower = np.cumsum(sizes) - sizes
    return sizes.tolist(), lower.tolist(), hits.tolist(), s.size


def _best_of_k_groups(sizes, lower, hits, n, k) -> float:
    total = math.comb(n, k)
    acc = 0.0
    for g, low, h in zip(sizes, lower, hits):
        if h == 0:
            continue
        # exact integer numerator, one correctly rounded division
        acc += (math.comb(low + g, k) - math.comb(low, k)) / total * (h / g)
    return acc


def _k_in_pool(k, n: int) -> bool:
    k = _int("k", k)
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    return k <= n


# --------------------------------------------------------------------------- majority vote

def majority_at_k(answers: Sequence[Hashable | None], is_correct: Sequence[bool], k: int) -> float:
    """Expected accuracy of plurality voting over k samples drawn without replacement from the pool.

    Samples with equal ``answers`` form a class; ``None`` (or NaN / pandas NA, which is how a
    missing answer comes back from a DataFrame) means the sample gave no answer: it
    still uses up one of the k draws but never votes, and if all k drawn samples abstain the vote
    is wrong. The correct class is the answer of the samples flagged in ``is_correct``. When t
    classes share the top count the winner is uniform among them, so the correct class wins a
    t-way tie with probability 1/t. (Majority voting as a verifier-free baseline: Wang et al.
    2023 "Self-consistency"; Brown et al. 2024, sec. 4.)

    Exact method: with a correct samples in the pool, sum over m = number of correct samples
    drawn. Given m, each other class must draw at most m; its generating polynomial in y (samples
    drawn) and u (classes tied at exactly m) is sum_{x<m} C(b,x) y^x + C(b,m) y^m u. Classes
    smaller than m can never reach m, so they are merged with the abstainers into one "free"
    pool that fills the remaining draws. Weighting tie-count t by 1/(t+1) and dividing by C(n, k)
    gives the exact expectation. All terms are positive, so float64 loses no accuracy to
    cancellation; pools are limited so that no count exceeds float64 range (n ~ 1000).
    """
    a, others, z = _vote_classes(answers, is_correct)
    n = a + sum(others) + z
    k = _check_k(k, n)
    _check_vote_range(n, k)
    return _majority_exact(a, others, z, k)


def majority_at_k_curve(answers: Sequence[Hashable | None], is_correct: Sequence[bool],
                        ks: Sequence[int]) -> np.ndarray:
    """:func:`majority_at_k` for each k in ``ks`` (one problem); NaN where k exceeds the pool size."""
    a, others, z = _vote_classes(answers, is_correct)
    n = a + sum(others) + z
    out = []
    for k in ks:
        if not _k_in_pool(k, n):
            out.append(np.nan)
            continue
        _check_vote_range(n, int(k))
        out.append(_majority_exact(a, others, z, int(k)))
    return np.array(out, dtype=np.float64)


def _vote_classes(answers, is_correct) -> tuple[int, list[int], int]:
    """(size of the correct class, sizes of the other classes, number of abstentions)."""
    answers = [None if _abstains(a) else a for a in answers]
    flags = [bool(f) for f in is_correct]
    if len(answers) != len(flags):
        raise ConfigError(f"answers and is_correct differ in length ({len(answers)} vs {len(flags)})")
    if not answers:
        raise ConfigError("need at least one sample")
    gold = {a for a, f in zip(answers, flags) if f}
    if None in gold:
        raise ConfigError("a sample without an answer (None) is flagged correct")
    if len(gold) > 1:
        raise ConfigError(f"samples flagged correct give different answers ({sorted(map(repr, gold))}); "
                          "normalise answers so the correct ones compare equal")
    counts = Counter(a for a in answers if a is not None)
    a = 0
    if gold:
        (g,) = gold
        if any(ans == g and not f for ans, f in zip(answers, flags)):
            raise ConfigError(f"answer {g!r} is flagged correct for some samples and wrong for others")
        a = counts.pop(g)
    return a, list(counts.values()), sum(ans is None for ans in answers)


def _abstains(answer) -> bool:
    if answer is None:
        return True
    if isinstance(answer, (float, np.floating)):
        return bool(np.isnan(answer))
    # pandas.NA, recognised by name so this module needs no pandas
    return type(answer).__name__ == "NAType"


def _check_vote_range(n: int, k: int) -> None:
    if math.comb(n, min(k, n // 2)) > _MAX_FLOAT_COUNT:
        raise ConfigError(f"majority_at_k supports pools up to about 1000 samples (got n={n}, k={k})")


def _majority_exact(a: int, others: list[int], z: int, k: int) -> float:
    # the expectation depends on the class sizes only, and pools repeat them a lot (all-agree, one stray...)
    return _majority_cached(a, tuple(sorted(others)), z, k)


@lru_cache(maxsize=65536)
def _majority_cached(a: int, others: tuple, z: int, k: int) -> float:
    if a == 0:
        return 0.0
    n = a + sum(others) + z
    total = 0.0
    for m in range(1, min(a, k) + 1):
        rest = k - m  # draws left for the other classes and the free pool
        big = [b for b in others if b >= m]
        free = z + sum(b for b in others if b < m)
        # a tied class takes m draws, so at most rest // m of them fit
        ties = min(len(big), rest // m)
        poly = np.zeros((rest + 1, ties + 1))  # [drawn from big classes, classes tied at m]
        poly[0, 0] = 1.0
        for b in big:
            new = np.zeros_like(poly)
            for x in range(min(m - 1, rest) + 1):
                new[x:, :] += float(math.comb(b, x)) * poly[:rest + 1 - x, :]
            if m <= rest and ties >= 1:
                new[m:, 1:] += float(math.comb(b, m)) * poly[:rest + 1 - m, :-1]
            poly = new
        fill = np.array([float(math.comb(free, rest - s)) for s in range(rest + 1)])
        by_ties = fill @ poly
        total += float(math.comb(a, m)) * float(np.sum(by_ties / np.arange(1, ties + 2)))
    return total / float(math.comb(n, k))


# --------------------------------------------------------------------------- whole blocks at once
#
# The same exact estimators for many problems at once: [problems, n] arrays in, [problems, len(ks)] out,
# with array operations instead of a Python loop over problems (engine.strategies' ``curve_block``). They
# agree with the per-problem functions above to float rounding (tests/test_metrics.py checks 1e-12).

def _block_ks(ks, n: int) -> list[tuple[int, int]]:
    """(column, k) for the ks that fit a pool of n; raises on k < 1."""
    out = []
    for j, k in enumerate(ks):
        if _k_in_pool(k, n):
            out.append((j, int(k)))
    return out


@lru_cache(maxsize=64)
def _comb_table(n: int) -> np.ndarray:
    """float(C(f, d)) for 0 <= f, d <= n (0 where d > f), as the per-problem code rounds them."""
    return np.array([[float(math.comb(f, d)) for d in range(n + 1)] for f in range(n + 1)])


def pass_at_k_block(correct, ks: Sequence[int]) -> np.ndarray:
    """:func:`pass_at_k` of every row of a [problems, n] correctness matrix: [problems, len(ks)]."""
    ok = np.asarray(correct, bool)
    return pass_at_k_matrix(np.full(ok.shape[0], ok.shape[1]), ok.sum(axis=1), ks)


def best_of_k_block(scores, correct, ks: Sequence[int]) -> np.ndarray:
    """:func:`best_of_k` of every row of [problems, n] scores and correctness: [problems, len(ks)].

    Per sample instead of per group of equal scores: a sample in a group with L samples scored lower
    and g in the group is the pick with chance (C(L+g, k) - C(L, k)) / C(n, k) / g.
    """
    s = np.asarray(scores, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    if s.ndim != 2 or s.shape != ok.shape:
        raise ConfigError(f"scores and correct must be [problems, n] of one shape ({s.shape} vs {ok.shape})")
    p, n = s.shape
    out = np.full((p, len(ks)), np.nan)
    if n == 0 or p == 0:
        return out
    if np.any(np.isnan(s)):
        raise ConfigError("verifier scores contain NaN; cannot rank samples")
    if np.any((ok < 0) | (ok > 1)):
        raise ConfigError("correct must hold booleans (or values in [0, 1])")
    order = np.argsort(s, axis=1, kind="stable")
    ss = np.take_along_axis(s, order, axis=1)
    oks = np.take_along_axis(ok, order, axis=1)
    pos = np.arange(n)
    new = np.ones((p, n), bool)
    new[:, 1:] = ss[:, 1:] != ss[:, :-1]
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)           # samples scored lower: L
    last = np.ones((p, n), bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, pos + 1, n)[:, ::-1], axis=1)[:, ::-1]   # L + g
    share = oks / (end - start)
    for j, k in _block_ks(ks, n):
        total = math.comb(n, k)
        frac = np.array([math.comb(m, k) / total for m in range(n + 1)])    # correctly rounded, as best_of_k
        out[:, j] = ((frac[end] - frac[start]) * share).sum(axis=1)
    return out


def vote_classes_block(codes, correct) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of [problems, n] answer codes (-1: no answer) and correctness: (size of the correct class,
    [problems, n] sizes of the other classes in descending order, 0-padded; number of abstentions).
    Raises like :func:`majority_at_k` on inconsistent flags."""
    c = np.asarray(codes, np.int64)
    ok = np.asarray(correct, bool)
    if c.ndim != 2 or c.shape != ok.shape:
        raise ConfigError(f"codes and correct must be [problems, n] of one shape ({c.shape} vs {ok.shape})")
    p, n = c.shape
    if np.any(ok & (c < 0)):
        raise ConfigError("a sample without an answer (None) is flagged correct")
    big = np.iinfo(np.int64).max
    lo = np.where(ok, c, big).min(axis=1, initial=big)
    hi = np.where(ok, c, -1).max(axis=1, initial=-1)
    has = ok.any(axis=1)
    if np.any(has & (lo != hi)):
        raise ConfigError("samples flagged correct give different answers; "
                          "normalise answers so the correct ones compare equal")
    gold = np.where(has, lo, -2)
    if np.any((c == gold[:, None]) & ~ok):
        raise ConfigError("an answer is flagged correct for some samples and wrong for others")
    a = ok.sum(axis=1)
    z = (c < 0).sum(axis=1)
    sc = np.sort(np.where((c < 0) | ok, -1, c), axis=1)     # the other classes' codes; -1 for the rest
    pos = np.arange(n)
    new = np.ones((p, n), bool)
    new[:, 1:] = sc[:, 1:] != sc[:, :-1]
    last = np.ones((p, n), bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, pos + 1, n)[:, ::-1], axis=1)[:, ::-1]
    sizes = np.where(new & (sc >= 0), end - pos, 0)
    return a, -np.sort(-sizes, axis=1), z


def majority_at_k_block(codes, correct, ks: Sequence[int], chunk: int = 1024) -> np.ndarray:
    """:func:`majority_at_k` of every row of [problems, n] answer codes (equal codes: equal answers; -1: no
    answer) and correctness: [problems, len(ks)], NaN where k exceeds n.

    The same sum as :func:`majority_at_k` (over m, the correct samples drawn), run for all rows at once: for
    each m, one polynomial product over the other classes of at least m samples serves every k (rows sorted by
    how many such classes they have, so each step touches only the rows that still have one).
    """
    a, sizes, z = vote_classes_block(codes, correct)
    p, n = sizes.shape
    out = np.full((p, len(ks)), np.nan)
    cols = _block_ks(ks, n)
    if not cols or p == 0:
        return out
    for _, k in cols:
        _check_vote_range(n, k)
    for j, _ in cols:
        out[:, j] = 0.0
    for lo in range(0, p, chunk):
        sl = slice(lo, lo + chunk)
        out[sl] = _majority_block(a[sl], sizes[sl], z[sl], n, cols, out[sl])
    return out


def _majority_block(a, sizes, z, n, cols, out) -> np.ndarray:
    ct = _comb_table(n)
    kmax = max(k for _, k in cols)
    total = np.array([float(math.comb(n, k)) for _, k in cols])
    acc = np.zeros((a.size, len(cols)))
    # below[row, m]: samples in the row's other classes of fewer than m samples (they can never outvote m)
    hist = np.bincount((np.arange(a.size)[:, None] * (n + 1) + sizes).ravel(), minlength=a.size * (n + 1))
    hist = hist.reshape(a.size, n + 1)
    below = np.zeros((a.size, n + 2), np.int64)
    below[:, 1:] = np.cumsum(hist * np.arange(n + 1), axis=1)
    for m in range(1, min(int(a.max(initial=0)), kmax) + 1):
        rows = np.flatnonzero(a >= m)
        big = sizes[rows] >= m
        nbig = big.sum(axis=1)
        order = np.argsort(-nbig, kind="stable")
        rows, nbig = rows[order], nbig[order]
        b = sizes[rows, :max(int(nbig[0]), 1)]
        free = z[rows] + below[rows, m]
        r = kmax - m
        active = np.searchsorted(-nbig, -np.arange(nbig[0]), "left").tolist()  # rows with a j-th big class: a prefix
        if m == 1:  # every big class draws 0 or 1 sample: ties = draws, one dimension
            v = np.zeros((rows.size, r + 1))
            v[:, 0] = 1.0
            for j, c in enumerate(active):
                if r >= 1:
                    v[:c, 1:] = v[:c, 1:] + ct[b[:c, j], 1][:, None] * v[:c, :-1]
            v /= np.arange(1, r + 2)
        else:
            ties = min(int(nbig[0]), r // m)
            poly = np.zeros((rows.size, r + 1, ties + 1))  # [row, drawn from big classes, classes tied at m]
            poly[:, 0, 0] = 1.0
            for j, c in enumerate(active):
                # after j + 1 classes, at most j + 1 of them tie, and they drew at most m (j + 1) samples
                tt, ss = min(j + 1, ties), min(r, m * (j + 1))
                old = poly[:c, :ss + 1, :tt + 1]
                new = np.zeros_like(old)
                bj = b[:c, j]
                for x in range(min(m - 1, ss) + 1):
                    new[:, x:, :] += ct[bj, x][:, None, None] * old[:, :ss + 1 - x, :]
                if m <= ss and tt >= 1:
                    new[:, m:, 1:] += ct[bj, m][:, None, None] * old[:, :ss + 1 - m, :-1]
                poly[:c, :ss + 1, :tt + 1] = new
            v = poly[:, :, 0]   # a sum over the short last axis, unrolled: numpy reduces tiny axes slowly
            for t in range(1, ties + 1):
                v = v + poly[:, :, t] / (t + 1)
        fill = ct[free]                                    # [row, d]: C(free, d)
        weight = ct[a[rows], m]
        for i, (_, k) in enumerate(cols):
            if k < m:
                continue
            rest = k - m
            acc[rows, i] += weight * (v[:, :rest + 1] * fill[:, rest::-1][:, :rest + 1]).sum(axis=1)
    out = out.copy()
    for i, (j, _) in enumerate(cols):
        out[:, j] = acc[:, i] / total[i]
    return out


# --------------------------------------------------------------------------- bootstrap

def bootstrap_ci(values, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval for the mean over problems (Efron & Tibshirani 1993, ch. 13).

    ``values`` is [problems] or [problems, K] of per-problem estimates (e.g. a pass@k matrix).
    Problems are resampled with replacement -- problems, not samples, are the unit, since the
    samples of one problem are not independent of each other. The same resampled problem set is
    used for every column so that intervals along a k-curve are comparable. NaN entries are
    ignored in each mean; a column that is NaN throughout gets a NaN interval.
    Returns (lo, hi), each of shape values.shape[1:] (0-d for 1-D input). Deterministic in ``seed``.
    """
    vals = _values_2d(values)
    n_boot = _int("n_boot", n_boot)
    if n_boot < 1:
        raise ConfigError("n_boot must be at least 1")
    if not (0.0 < float(alpha) < 1.0):
        raise ConfigError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    counts = _resample_counts(vals.shape[0], n_boot, int(seed))
    valid = ~np.isnan(vals)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    if valid.all():  # every resample holds p problems: each mean's denominator is p (exactly, as summed)
        lo, hi = np.percentile((counts @ vals) / float(vals.shape[0]), q, axis=0)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (counts @ np.where(valid, vals, 0.0)) / (counts @ valid.astype(np.float64))
        lo, hi = np.full(vals.shape[1], np.nan), np.full(vals.shape[1], np.nan)
        for j in range(vals.shape[1]):
            col = means[:, j][~np.isnan(means[:, j])]
            if col.size:
                lo[j], hi[j] = np.percentile(col, q)
    shape = np.asarray(values).shape[1:]
    return lo.reshape(shape), hi.reshape(shape)


@lru_cache(maxsize=8)
def _resample_counts(p: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, p]: how often each problem appears in each resample, so a resample mean is one matrix product.
    Kept for the next calls: the blocks of one experiment all have the same problems (and per-level curves
    the same few problem counts, in turn), and drawing this costs more than the rest of an interval."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, p, size=(n_boot, p))
    counts = np.bincount((idx + p * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * p)
    counts = counts.reshape(n_boot, p).astype(np.float64)
    counts.flags.writeable = False
    return counts


def mean_with_ci(values, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(NaN-ignoring mean over problems, lo, hi) -- see :func:`bootstrap_ci`."""
    vals = _values_2d(values)
    valid = ~np.isnan(vals)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, vals, 0.0).sum(axis=0) / valid.sum(axis=0)
    lo, hi = bootstrap_ci(values, n_boot=n_boot, alpha=alpha, seed=seed)
    return mean.reshape(np.asarray(values).shape[1:]), lo, hi


def _values_2d(values) -> np.ndarray:
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim not in (1, 2):
        raise ConfigError(f"values must be [problems] or [problems, K], got shape {vals.shape}")
    if vals.shape[0] == 0:
        raise ConfigError("need at least one problem")
    return vals.reshape(vals.shape[0], -1)
