"""Weighted majority vote: each distinct answer totals its scorer's scores; the largest total wins.

Li et al. 2023, "Making Language Models Better Reasoners with Step-Aware Verifier" (voting
verifier); Wu et al. 2024, "Inference Scaling Laws", sec. 3 (weighted majority voting).

Weights are meant to be non-negative (probabilities such as an ORM's P(correct)). Scores of any
sign are accepted and the rule is still "largest sum wins", but with negative scores (e.g.
log-probabilities) every extra vote *lowers* an answer's total, so fewer votes can win.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from ..errors import ConfigError, EngineError
from . import Pool, Strategy, register, seeded_choice

EXACT_LIMIT = 5000   # enumerate every k-subset when there are at most this many
MC_SAMPLES = 1000    # otherwise average over this many seeded random k-subsets
_SEED = 20230531     # fixed, so the Monte Carlo curve is the same in every process
_TOL = 1e-9          # totals this close (relative to the subset's sum of |score|, at least 1) tie


def _classes(answers, scores, correct) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class code per sample, -1 = no answer; weight per sample, 0 without answer; correctness per class)."""
    index: dict = {}
    codes = np.array([-1 if a is None else index.setdefault(a, len(index)) for a in answers], np.int64)
    if scores is None:
        raise EngineError("weighted majority needs a scorer's scores in the pool")
    w = np.asarray(scores, np.float64).reshape(-1)
    ok = np.asarray(correct, np.float64).reshape(-1)
    if not (w.size == ok.size == codes.size) or codes.size == 0:
        raise ConfigError(f"need one answer, score and correct flag per sample (got {codes.size}, {w.size}, {ok.size})")
    w = np.where(codes >= 0, w, 0.0)
    if np.any(~np.isfinite(w)):
        raise ConfigError("scores of answered samples must be finite to weight a vote")
    m = len(index)
    # an answer's correctness (normally all its samples agree; the mean if they do not)
    answered = codes >= 0
    class_ok = np.bincount(codes[answered], ok[answered], m) / np.maximum(np.bincount(codes[answered], minlength=m), 1)
    return codes, w, class_ok


def _subset_values(codes, w, class_ok, idx: np.ndarray) -> np.ndarray:
    """Expected correctness of the weighted vote in each subset (a row of sample indices in ``idx``)."""
    s, k = idx.shape
    m = class_ok.size
    c = codes[idx]
    flat = (np.where(c < 0, m, c) + (m + 1) * np.arange(s)[:, None]).ravel()   # column m: no answer
    wi = w[idx]
    sums = np.bincount(flat, wi.ravel(), s * (m + 1)).reshape(s, m + 1)[:, :m]
    present = np.bincount(flat, minlength=s * (m + 1)).reshape(s, m + 1)[:, :m] > 0
    sums = np.where(present, sums, -np.inf)              # an absent answer does not take part (its 0 could win)
    top = sums.max(axis=1, keepdims=True)
    tol = _TOL * np.maximum(1.0, np.abs(wi).sum(axis=1, keepdims=True))
    tied = present & (sums >= top - tol)
    n_tied = tied.sum(axis=1)
    return np.where(n_tied > 0, (tied @ class_ok) / np.maximum(n_tied, 1), 0.0)   # nothing voted: wrong


def _at_k(codes, w, class_ok, k: int, n_mc: int = MC_SAMPLES) -> tuple[float, float]:
    n = codes.size
    if not np.any(class_ok > 0):
        return 0.0, 0.0
    if k == 1:  # one sample: it wins when it has an answer
        return float(np.mean(np.where(codes >= 0, class_ok[np.maximum(codes, 0)], 0.0))), 0.0
    if class_ok.size == 1:  # one answer: right iff some drawn sample answered
        return float(class_ok[0] * (1 - math.comb(int(np.sum(codes < 0)), k) / math.comb(n, k))), 0.0
    if math.comb(n, k) <= EXACT_LIMIT:
        idx = np.array(list(combinations(range(n), k)), np.int64).reshape(-1, k)
        return float(_subset_values(codes, w, class_ok, idx).mean()), 0.0
    rng = np.random.default_rng([_SEED, n, k])
    idx = np.argpartition(rng.random((max(n_mc, 500), n)), k - 1, axis=1)[:, :k]   # uniform k-subsets
    vals = _subset_values(codes, w, class_ok, idx)
    return float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(vals.size))


def weighted_majority_at_k(answers, scores, correct, k: int, n_mc: int = MC_SAMPLES) -> tuple[float, float]:
    """(expected accuracy, Monte Carlo standard error; 0 when exact) of the weighted vote over a random k-subset."""
    codes, w, class_ok = _classes(answers, scores, correct)
    if not 1 <= int(k) <= codes.size:
        raise ConfigError(f"k must lie between 1 and the pool size {codes.size}, got {k}")
    return _at_k(codes, w, class_ok, int(k), n_mc)


@register
class WeightedMajority(Strategy):
    name = "weighted_majority"
    label = "weighted majority vote"
    short = "weighted vote"
    help = ("weighted majority: each distinct answer sums its samples' scores from the scorer and the largest "
            "total wins; ties are broken uniformly at random; samples without an answer do not vote")
    uses_scorer = True
    order = 30

    def curve_se(self, pool: Pool, ks) -> tuple[np.ndarray, np.ndarray]:
        codes, w, class_ok = _classes(pool.answers, pool.scores, pool.correct)
        vals, ses = np.full(len(ks), np.nan), np.full(len(ks), np.nan)
        for j, k in enumerate(ks):
            if int(k) < 1:
                raise ConfigError(f"k must be at least 1, got {k}")
            if int(k) <= codes.size:
                vals[j], ses[j] = _at_k(codes, w, class_ok, int(k))
        return vals, ses

    def curve(self, pool: Pool, ks) -> np.ndarray:
        return self.curve_se(pool, ks)[0]

    def pick(self, pool: Pool) -> int | None:
        codes, w, class_ok = _classes(pool.answers, pool.scores, pool.correct)
        if class_ok.size == 0:
            return None
        answered = codes >= 0
        sums = np.bincount(codes[answered], w[answered], class_ok.size)
        tol = _TOL * max(1.0, float(np.abs(w).sum()))
        first = [int(np.flatnonzero(codes == c)[0]) for c in np.flatnonzero(sums >= sums.max() - tol)]
        return seeded_choice(sorted(first), pool)
