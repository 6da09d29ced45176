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
from . import Pool, Pools, Strategy, register, seeded_choice

EXACT_LIMIT = 5000   # enumerate every k-subset when there are at most this many
MC_SAMPLES = 1000    # otherwise average over this many seeded random k-subsets
_SEED = 20230531     # fixed, so the Monte Carlo curve is the same in every process
_TOL = 1e-9          # totals this close (relative to the subset's sum of |score|, at least 1) tie
_F32_TIED_ROWS = 0.25   # float32 screening of the vote, unless more rows than this have equal weights of two answers


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
    """One pool, one k, one subset at a time: the plain reference that ``curve_block`` is tested against
    (same subsets, same rule)."""
    n = codes.size
    if not np.any(class_ok > 0):
        return 0.0, 0.0
    if k == 1:  # one sample: it wins when it has an answer
        return float(np.mean(np.where(codes >= 0, class_ok[np.maximum(codes, 0)], 0.0))), 0.0
    if class_ok.size == 1:  # one answer: right iff some drawn sample answered
        return float(class_ok[0] * (1 - math.comb(int(np.sum(codes < 0)), k) / math.comb(n, k))), 0.0
    idx = _subsets(n, k, n_mc, EXACT_LIMIT)
    vals = _subset_values(codes, w, class_ok, idx)
    if math.comb(n, k) <= EXACT_LIMIT:
        return float(vals.mean()), 0.0
    return float(vals.mean()), float(vals.std(ddof=1) / math.sqrt(vals.size))


def _subsets(n: int, k: int, n_mc: int, exact_limit: int) -> np.ndarray:
    """[subsets, k] sample indices: every k-subset when there are at most ``exact_limit``, else
    max(n_mc, 500) uniform random ones, seeded by (n, k) only (so every pool of n samples gets the same)."""
    if math.comb(n, k) <= exact_limit:
        return np.array(list(combinations(range(n), k)), np.int64).reshape(-1, k)
    rng = np.random.default_rng([_SEED, n, k])
    return np.argpartition(rng.random((max(n_mc, 500), n)), k - 1, axis=1)[:, :k]   # uniform k-subsets


def _drawn(n: int, k: int, n_mc: int, exact_limit: int) -> np.ndarray:
    """``_subsets`` as [subsets, samples]: 1 where the subset draws the sample."""
    idx = _subsets(n, k, n_mc, exact_limit)
    drawn = np.zeros((idx.shape[0], n))
    np.put_along_axis(drawn, idx, 1.0, axis=1)
    return drawn


def weighted_majority_at_k(answers, scores, correct, k: int, n_mc: int = MC_SAMPLES) -> tuple[float, float]:
    """(expected accuracy, Monte Carlo standard error; 0 when exact) of the weighted vote over a random k-subset."""
    codes, w, class_ok = _classes(answers, scores, correct)
    if not 1 <= int(k) <= codes.size:
        raise ConfigError(f"k must lie between 1 and the pool size {codes.size}, got {k}")
    pools = Pools.from_pools([Pool(tuple(answers), np.asarray(correct, bool), np.asarray(scores, np.float64))])
    vals, ses = weighted_majority_block(pools.codes, pools.scores, pools.correct, [int(k)], n_mc)
    return float(vals[0, 0]), float(ses[0, 0])


# --------------------------------------------------------------------------- many pools at once

def _recode(codes: np.ndarray, correct: np.ndarray):
    """Per row of [problems, n] answer codes: the answers renumbered 0, 1, .. within the row (-1: no answer),
    the number of distinct answers, and [problems, n] each answer's correctness (the mean of its samples'
    flags, which normally agree), 0-padded."""
    p, n = codes.shape
    order = np.argsort(codes, axis=1, kind="stable")
    sc = np.take_along_axis(codes, order, axis=1)
    pos = np.arange(n)
    new = np.ones((p, n), bool)
    new[:, 1:] = sc[:, 1:] != sc[:, :-1]
    new &= sc >= 0
    dense_sorted = np.where(sc >= 0, np.cumsum(new, axis=1) - 1, -1)
    dense = np.empty_like(dense_sorted)
    np.put_along_axis(dense, order, dense_sorted, axis=1)
    m = new.sum(axis=1)
    answered = dense >= 0
    flat = (np.arange(p)[:, None] * n + np.where(answered, dense, 0))[answered]
    hits = np.bincount(flat, correct[answered].astype(np.float64), p * n).reshape(p, n)
    size = np.bincount(flat, minlength=p * n).reshape(p, n)
    return dense, m, hits / np.maximum(size, 1)


def weighted_majority_block(codes, scores, correct, ks, n_mc: int = MC_SAMPLES, exact_limit: int = EXACT_LIMIT,
                            chunk: int = 1 << 19) -> tuple[np.ndarray, np.ndarray]:
    """[problems, len(ks)] expected accuracy and Monte Carlo standard error of the weighted vote, for every row
    of [problems, n] answer codes (equal codes: equal answers; -1: no answer), scores and correctness.

    The same rule and the same subsets as one pool at a time (every k-subset when there are at most
    ``exact_limit``, else max(n_mc, 500) seeded random ones, shared by all pools of n samples), evaluated for
    all rows at once: every subset's answer totals in every row are one matrix product (subsets x samples
    times samples x answers), in chunks of about ``chunk`` totals.
    """
    codes = np.asarray(codes, np.int64)
    ok = np.asarray(correct, bool)
    if scores is None:
        raise EngineError("weighted majority needs a scorer's scores in the pool")
    w = np.asarray(scores, np.float64)
    if codes.ndim != 2 or not (codes.shape == w.shape == ok.shape) or codes.shape[1] == 0:
        raise ConfigError(f"need one answer, score and correct flag per sample (got {codes.shape}, {w.shape}, "
                          f"{ok.shape})")
    w = np.where(codes >= 0, w, 0.0)
    if np.any(~np.isfinite(w)):
        raise ConfigError("scores of answered samples must be finite to weight a vote")
    p, n = codes.shape
    vals, ses = np.full((p, len(ks)), np.nan), np.full((p, len(ks)), np.nan)
    dense, m, class_ok = _recode(codes, ok)
    any_right = (class_ok > 0).any(axis=1)
    pruned = None
    for j, k in enumerate(ks):
        if int(k) < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        k = int(k)
        if k > n:
            continue
        vals[:, j], ses[:, j] = 0.0, 0.0
        if k == 1:  # one sample: it wins when it has an answer
            per_sample = np.where(dense >= 0, np.take_along_axis(class_ok, np.maximum(dense, 0), axis=1), 0.0)
            vals[:, j] = np.where(any_right, per_sample.mean(axis=1), 0.0)
            continue
        one = any_right & (m == 1)   # one answer: right iff some drawn sample answered
        if one.any():
            z = (codes[one] < 0).sum(axis=1)
            miss = np.array([math.comb(int(c), k) / math.comb(n, k) for c in range(n + 1)])
            vals[one, j] = class_ok[one, 0] * (1 - miss[z])
        hard = np.flatnonzero(any_right & (m > 1))
        if not hard.size:
            continue
        if pruned is None:
            pruned = _prune(dense, w, m, class_ok)
        dense_, m_, class_ok_ = pruned
        if k == 2 and math.comb(n, 2) <= exact_limit:     # every pair, without building subsets
            v, rest = _one_right_answer_pairs(dense_[hard], w[hard], class_ok_[hard])
            vals[hard, j] = v
            step = max(1, chunk // (4 * n * n))            # small chunks stay in the CPU cache
            for lo in range(0, rest.size, step):
                rows = hard[rest[lo:lo + step]]
                vals[rows, j] = _pairs(dense_[rows], w[rows], class_ok_[rows])
            continue
        drawn = _drawn(n, k, n_mc, exact_limit)
        exact = math.comb(n, k) <= exact_limit
        hard = hard[np.argsort(m_[hard], kind="stable")]    # similar answer counts share a chunk
        lo, budget = 0, max(1, chunk // drawn.shape[0])
        while lo < hard.size:
            # the most rows whose [subsets, answers, rows] totals, padded to the chunk's widest row, fit in chunk
            step = max(1, int(np.sum((np.arange(1, hard.size - lo + 1) * m_[hard[lo:]]) <= budget)))
            rows = hard[lo:lo + step]
            v = _block_subset_values(dense_[rows], w[rows], class_ok_[rows, :int(m_[rows].max())], drawn)
            vals[rows, j] = v.mean(axis=0)
            if not exact:
                ses[rows, j] = v.std(axis=0, ddof=1) / math.sqrt(v.shape[0])
            lo += step
    return vals, ses


def _prune(dense, w, m, class_ok):
    """``_recode``'d rows without the answers that can never decide a vote: where all weights are positive and
    one answer is right, an answer whose total over the whole pool is below the right answer's smallest single
    weight (less the largest tolerance) can neither beat nor tie the right answer once that is drawn, and
    without it the vote is wrong anyway. Its samples become non-voters (their |score| still sets the
    tolerance); returns (dense, answers per row, class_ok) like ``_recode``."""
    p, n = dense.shape
    answered = dense >= 0
    rows = np.repeat(np.arange(p), n).reshape(p, n)
    slot = np.where(answered, dense, 0)
    total = np.zeros((p, n))
    np.add.at(total, (rows[answered], slot[answered]), w[answered])
    gold = class_ok.argmax(axis=1)
    one_right = (class_ok.max(axis=1) == 1) & ((class_ok > 0).sum(axis=1) == 1)
    positive = np.where(answered, w > 0, True).all(axis=1)
    right_w = np.where(answered & (dense == gold[:, None]), w, np.inf).min(axis=1)
    bar = right_w - _TOL * np.maximum(1.0, np.abs(w).sum(axis=1))
    cls = np.arange(n)
    keep = (total >= bar[:, None]) | (cls == gold[:, None]) | ~(one_right & positive)[:, None]
    keep &= cls < m[:, None]
    new_id = np.cumsum(keep, axis=1) - 1
    kept = answered & np.take_along_axis(keep, slot, axis=1)
    dense2 = np.where(kept, np.take_along_axis(new_id, slot, axis=1), -1)
    ok2 = np.zeros_like(class_ok)
    ok2[np.nonzero(keep)[0], new_id[keep]] = class_ok[keep]
    return dense2, keep.sum(axis=1), ok2


def _pairs(dense, w, class_ok) -> np.ndarray:
    """Per row: the weighted vote's mean correctness over all pairs of samples (``_recode``'d answers)."""
    r, n = dense.shape
    ok = np.where(dense >= 0, np.take_along_axis(class_ok, np.maximum(dense, 0), axis=1), 0.0)
    first, second = np.triu_indices(n, 1)
    ci, cj, wi, wj = dense[:, first], dense[:, second], w[:, first], w[:, second]
    oki, okj = ok[:, first], ok[:, second]
    tol = _TOL * np.maximum(1.0, np.abs(wi) + np.abs(wj))
    top = np.maximum(wi, wj)
    ti, tj = wi >= top - tol, wj >= top - tol             # two different answers: one wins, or a tie
    split = np.where(ti & tj, (oki + okj) / 2, np.where(ti, oki, okj))
    val = np.where(cj < 0, oki, np.where((ci < 0) | (ci == cj), okj, split))   # no answer scores 0 in ok
    return val.sum(axis=1) / math.comb(n, 2)


def _one_right_answer_pairs(dense, w, class_ok) -> tuple[np.ndarray, np.ndarray]:
    """``_pairs`` of the rows with all weights positive and one right answer, by counting instead of visiting
    every pair: (values, NaN for the rows left to ``_pairs``; positions of those rows).

    Then a pair is right when both samples give the right answer, or one does and the other none, or one gives
    the right answer and the other a wrong one with a smaller weight (a tie, within tol, counts half). Sorted by
    weight and cut where consecutive weights differ by more than twice the largest tolerance, a right sample
    beats every wrong one in the runs below its own; within its run it ties a wrong one of exactly its weight,
    and a row with a run holding right and wrong samples of different weights (a tie or not: only the rule can
    say) is left to ``_pairs``. The counts are whole numbers of halves, exact in floats, so the values are the
    same as ``_pairs``' to the last bit.
    """
    r, n = dense.shape
    m = class_ok.shape[1]
    answered = dense >= 0
    gold = class_ok.argmax(axis=1)
    ok = np.all(class_ok == np.eye(m)[gold], axis=1)
    ok &= np.where(answered, w > 0, True).all(axis=1)
    right = answered & (dense == gold[:, None])
    wrong = answered & ~right
    order = np.argsort(np.where(answered, w, np.inf), axis=1, kind="stable")   # non-voters last
    ws, rs, xs = (np.take_along_axis(a, order, axis=1) for a in (w, right, wrong))
    margin = 2 * _TOL * np.maximum(1.0, 2 * np.where(answered, w, 0.0).max(axis=1, initial=0.0))
    pos = np.arange(n)
    cut = np.ones((r, n), bool)
    cut[:, 1:] = ~(ws[:, 1:] - ws[:, :-1] <= margin[:, None])   # a new run (inf - inf: nan, also cut)
    first = np.maximum.accumulate(np.where(cut, pos, 0), axis=1)             # where each one's run starts
    ends = np.ones((r, n), bool)
    ends[:, :-1] = cut[:, 1:]
    last = np.minimum.accumulate(np.where(ends, pos, n - 1)[:, ::-1], axis=1)[:, ::-1]   # and ends
    below = np.cumsum(xs, axis=1) - xs                          # wrong ones before each position
    x_before = np.take_along_axis(below, first, axis=1)         # wrong ones in the runs below
    x_in = np.take_along_axis(below + xs, last, axis=1) - x_before
    r_in = np.take_along_axis(np.cumsum(rs, axis=1), last, axis=1) - np.take_along_axis(np.cumsum(rs, axis=1) - rs,
                                                                                      first, axis=1)
    flat = np.take_along_axis(ws, last, axis=1) == np.take_along_axis(ws, first, axis=1)
    ok &= ~((x_in > 0) & (r_in > 0) & ~flat).any(axis=1)
    won2 = ((2 * x_before + x_in) * rs).sum(axis=1)             # twice: a tie counts one half
    g, z = right.sum(axis=1), n - answered.sum(axis=1)
    vals = np.where(ok, (g * (g - 1) + 2 * g * z + won2) / 2 / math.comb(n, 2), np.nan)
    return vals, np.flatnonzero(~ok)


def _block_subset_values(dense, w, class_ok, drawn: np.ndarray) -> np.ndarray:
    """[subsets, rows]: the weighted vote's expected correctness in each subset (a row of ``drawn``) of each row
    of ``dense`` answers (``_recode``), ``w`` weights and ``class_ok`` [rows, answers]."""
    fast = _one_right_answer_values(dense, w, class_ok, drawn)
    if fast is not None:
        return fast
    r, n = dense.shape
    m = class_ok.shape[1]
    answered = dense >= 0
    onehot = np.zeros((n, m, r))                        # answers in the middle: reductions over them are fast
    ii, rr = np.nonzero(answered.T)
    onehot[ii, dense.T[ii, rr], rr] = 1.0
    sums = (drawn @ (onehot * w.T[:, None, :]).reshape(n, m * r)).reshape(-1, m, r)
    tol = _TOL * np.maximum(1.0, drawn @ np.abs(w).T)   # [subsets, rows]
    present = (drawn @ onehot.reshape(n, m * r)).reshape(-1, m, r) > 0.5
    sums = np.where(present, sums, -np.inf)              # an absent answer does not take part (its 0 could win)
    top = sums.max(axis=1)
    bar = np.where(np.isfinite(top), top - tol, np.inf)  # nothing answered: nothing is tied
    tied = sums >= bar[:, None, :]
    n_tied = tied.sum(axis=1, dtype=np.int64)
    gold = class_ok.argmax(axis=1)
    if np.array_equal(class_ok, np.eye(m)[gold]):        # one right answer per row (the usual case)
        right = tied[:, gold, np.arange(r)]
    else:
        right = np.einsum("smr,rm->sr", tied.astype(np.float64), class_ok)
    return np.where(n_tied > 0, right / np.maximum(n_tied, 1), 0.0)   # nothing voted: wrong


def _one_right_answer_values(dense, w, class_ok, drawn: np.ndarray) -> np.ndarray | None:
    """``_block_subset_values`` in the usual case, all weights positive and one right answer per row; None
    otherwise (or where a top total is within tolerance of 0), for the general rule to decide.

    Then an absent answer's total 0 is below the top and ties nothing, and only the right answer's total, the
    largest other total and the tolerance decide each subset: the right answer wins where its total is within
    tol of the top, shared with the others tied with it, counted only where the largest other is tied too
    (rare). The right answer is renumbered 0 and the totals come out as [answers, rows, subsets], so its totals
    are the first slab and the largest other is a maximum over whole slabs (much faster than gathering).

    The totals are first summed in float32 (twice as fast). Where the right and the largest other total differ
    by more than twice the row's largest tolerance plus float32's worst error, the larger one wins outright,
    whichever precision decides; only the rows with subsets closer than that (few) are summed again in float64
    for the tolerance rule, with each subset's own tolerance, exactly as before. Where many rows have equal
    weights of two answers (then many totals tie), float64 throughout.
    """
    r, n = dense.shape
    m = class_ok.shape[1]
    answered = dense >= 0
    gold = class_ok.argmax(axis=1)
    if not (np.all(w[answered] > 0) and np.array_equal(class_ok, np.eye(m)[gold])):
        return None
    dT = drawn.T                                         # [samples, subsets] (a view: BLAS reads it as is)
    g = gold[:, None]
    slot = np.where(dense == g, 0, dense + (dense < g))  # the right answer first, the others after it in order
    rr, ii = np.nonzero(answered)

    def totals(rows, dtype):                             # [answers, rows, subsets]
        onehot = np.zeros((m, r, n), dtype)
        onehot[slot[rr, ii], rr, ii] = w[rr, ii]
        onehot = onehot if rows is None else onehot[:, rows]
        return (onehot.reshape(-1, n) @ dT.astype(dtype, copy=False)).reshape(m, onehot.shape[1], -1)

    def rule(sums, rows):                                # [rows, subsets] by the float64 totals of those rows
        right = sums[0]
        other = sums[1:].max(axis=0) if m > 1 else np.zeros_like(right)   # 0: absent, as above
        top = np.maximum(right, other)
        tol = _TOL * np.maximum(1.0, np.abs(w[rows]) @ dT)
        if not np.all((top > tol) | (top == 0)):
            return None
        bar = np.where(top == 0, np.inf, top - tol)      # nothing answered drawn: nothing is tied
        wins = right >= bar
        shared = wins & (other >= bar)
        n_tied = np.ones(wins.shape, np.int64)
        n_tied[shared] += (sums[1:, shared] >= bar[shared]).sum(axis=0)
        return np.where(wins, 1.0 / n_tied, 0.0)

    single = 1e-30 <= w[answered].min() and w.max() <= 1e30   # float32 keeps every weight positive and finite
    if single:
        # equal weights of different answers make equal totals, which float32 cannot tell apart: where many rows
        # have them (scores of a few digits) the float64 recheck would redo most rows, so float64 it is
        order = np.argsort(np.where(answered, w, np.inf), axis=1)
        ws, ss = np.take_along_axis(w, order, axis=1), np.take_along_axis(np.where(answered, slot, -1), order, axis=1)
        same = (ws[:, 1:] == ws[:, :-1]) & (ss[:, 1:] != ss[:, :-1]) & (ss[:, 1:] >= 0) & (ss[:, :-1] >= 0)
        single = same.any(axis=1).mean() <= _F32_TIED_ROWS
    if not single:
        out = rule(totals(None, np.float64), slice(None))
        return None if out is None else np.ascontiguousarray(out.T)   # [subsets, rows], as the general rule
    # twice the row's largest tolerance, plus twice float32's worst error: a float32 total of k of the weights,
    # each rounded too, is off by at most (k + 1) 2^-24 x the sum of the row's k largest (their difference by one
    # more rounding); rounded up to float32 (a wider margin only rechecks more)
    k = int(drawn.sum(axis=1).max())
    top_k = np.sort(np.abs(w), axis=1)[:, n - k:].sum(axis=1, keepdims=True)
    margin = 2 * _TOL * np.maximum(1.0, np.abs(w).sum(axis=1, keepdims=True)) + (2 * k + 4) * 2.0 ** -23 * top_k
    margin = np.nextafter(margin.astype(np.float32), np.inf)
    sums = totals(None, np.float32)
    right = sums[0]                                      # [rows, subsets]
    other = sums[1:].max(axis=0) if m > 1 else np.zeros_like(right)
    diff = right - other
    out = np.ascontiguousarray((diff > margin).T, dtype=np.float64)   # [subsets, rows]: 1 clearly won, else 0
    ri, si = np.nonzero(np.abs(diff, out=diff) <= margin)             # lost clearly: diff < -margin
    keep = (right[ri, si] > 0) | (other[ri, si] > 0)     # nothing answered drawn: wrong, nothing is tied
    rows = np.unique(ri[keep])
    if rows.size:                                        # the rule decides these rows' subsets (the others alike)
        exact = rule(totals(rows, np.float64), rows)
        if exact is None:
            return None
        out[:, rows] = exact.T
    return out


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
        _classes(pool.answers, pool.scores, pool.correct)   # checks
        vals, ses = self.curve_block(Pools.from_pools([pool]), ks)
        return vals[0], ses[0]

    def curve_block(self, pools: Pools, ks) -> tuple[np.ndarray, np.ndarray]:
        return weighted_majority_block(pools.codes, pools.scores, pools.correct, ks)

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
