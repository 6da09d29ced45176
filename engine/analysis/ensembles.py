"""Ensembles of model sizes: one problem's budget split across two models (say 8 samples of arith-s and 2 of
arith-xl), the pooled samples answered by majority vote or by a scorer's best-of-N.

Pooled accuracy has no closed form, so each problem draws ``draws`` seeded random subsets (k_a of model A's
cached pool, k_b of model B's, without replacement) and averages; the reported ``se`` is over problems and
includes that Monte Carlo noise. Each split is compared with the best single-model option (any model, any
deployable strategy, as ``allocation.options`` lists them) that costs no more FLOPs per problem, paired
problem by problem.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from .. import strategies
from ..errors import EngineError
from .allocation import options
from .curves import powers_of_two


class _Side:
    """One model's pools over the common problems as arrays: answer codes, correctness, scores, costs."""

    def __init__(self, block, ids, table: list[dict], draws: int, rng):
        df = block.samples.set_index("problem_id").loc[list(ids)].reset_index()
        n = int(block.sizes.min())
        df = df[df["idx"] < n]
        self.model, self.n, self.ks = block.model, n, list(block.ks)
        p = len(ids)
        self.code = np.array([[-1 if a is None or a != a else t.setdefault(a, len(t)) for a in grp]
                              for t, (_, grp) in zip(table, df.groupby("problem_id", sort=False)["answer"])])
        self.correct = df["correct"].to_numpy(bool).reshape(p, n)
        self.scores = df["score"].to_numpy(float).reshape(p, n) if "score" in df else None
        pos = pd.Index(block.problem_ids).get_indexer(ids)
        self.flops = block.costs["flops"][pos]
        tokens = df.groupby("problem_id", sort=False)["tokens"].mean().to_numpy()
        self.score_flops = 2.0 * block.scorer_params * tokens  # per sample read by the scorer
        self.perm = np.argsort(rng.random((p, draws, n)), axis=2)  # nested prefixes: uniform k-subsets

    def take(self, k: int, what: np.ndarray) -> np.ndarray:
        return np.take_along_axis(what[:, None, :], self.perm[:, :, :k], axis=2)

    def cost(self, k: int) -> np.ndarray:
        return self.flops[:, self.ks.index(k)]


def methods(specs) -> list[str]:
    """How pooled samples can be answered: majority vote, or best-of-N with any scorer among ``specs``."""
    scorers = list(dict.fromkeys(strategies.get(s).scorer for s in specs if strategies.get(s).scorer))
    return ["majority"] + [f"best_of_n:{sc}" for sc in scorers]


def method_label(spec: str) -> str:
    return "majority vote" if spec == "majority" else strategies.short_label(spec)


def pooled(a: _Side, b: _Side, ka: int, kb: int, method: str, right: np.ndarray) -> np.ndarray:
    """Per-problem expected accuracy of answering from k_a samples of ``a`` and k_b of ``b``."""
    ok = np.concatenate([a.take(ka, a.correct), b.take(kb, b.correct)], axis=2).astype(float)
    if method == "majority":
        codes = np.concatenate([a.take(ka, a.code), b.take(kb, b.code)], axis=2)  # [P, R, k]
        p, r, _ = codes.shape
        u = right.shape[1]
        flat = (np.arange(p * r).reshape(p, r, 1) * u + codes)[codes >= 0]
        counts = np.bincount(flat, minlength=p * r * u).reshape(p, r, u)
        top = counts.max(axis=2, keepdims=True)
        tied = (counts == top) & (top > 0)
        acc = np.where(tied.any(2), (tied * right[:, None, :]).sum(2) / np.maximum(tied.sum(2), 1), 0.0)
    else:
        s = np.concatenate([a.take(ka, a.scores), b.take(kb, b.scores)], axis=2)
        top = s == s.max(axis=2, keepdims=True)
        acc = (top * ok).sum(2) / top.sum(2)
    return acc.mean(1)


def ensembles(blocks, pairs=None, method: str = "majority", ks=None, draws: int = 32, seed: int = 0) -> pd.DataFrame:
    """Every split of the budget between two models of ``blocks`` (``curves.blocks`` output) on the grid of
    cached k (powers of two), pooled by ``method`` (``"majority"`` or a scoring spec such as
    ``"best_of_n:orm"``), with the best single-model option within the same FLOPs and the paired gain."""
    blocks = list(blocks)
    single = options(blocks)
    ids = single.problem_ids
    if method != "majority" and not strategies.get(method).scorer:
        raise EngineError(f"pool an ensemble by majority or by a scoring strategy, not {method!r}")
    scorer = None if method == "majority" else strategies.get(method).scorer
    mine: dict = {}
    for b in blocks:  # any block whose samples carry this scorer's scores (majority: one without a scorer)
        if strategies.get(b.strategy).scorer == scorer:
            mine.setdefault(b.model, b)
    if len(mine) < 2:
        raise EngineError(f"an ensemble needs {method_label(method)} measured on at least two models")
    rng = np.random.default_rng(seed)
    table = [dict() for _ in ids]  # answer -> code, shared by both models of a problem
    sides = {m: _Side(b, ids, table, draws, rng) for m, b in mine.items()}
    right = np.zeros((len(ids), max(1, max(len(t) for t in table))))
    for s in sides.values():
        for p in range(len(ids)):
            right[p, s.code[p][s.correct[p] & (s.code[p] >= 0)]] = 1.0
    order = sorted(mine, key=lambda m: mine[m].info["params"])
    pairs = pairs or list(combinations(order, 2))
    mean_single = single.flops.mean(1)
    rows = []
    for ma, mb in pairs:
        a, b = sides[ma], sides[mb]
        grid = ks or powers_of_two(min(a.n, b.n))
        for ka in [k for k in grid if k in a.ks]:
            for kb in [k for k in grid if k in b.ks]:
                acc = pooled(a, b, ka, kb, method, right)
                flops = a.cost(ka) + b.cost(kb)
                if method != "majority":  # the scorer reads every pooled sample
                    flops = flops - (a.cost(ka) - _unscored(a, ka)) - (b.cost(kb) - _unscored(b, kb)) \
                        + ka * a.score_flops + kb * b.score_flops
                f = float(flops.mean())
                within = np.flatnonzero(mean_single <= f * (1 + 1e-9))
                row = dict(method=method, model_a=ma, k_a=ka, model_b=mb, k_b=kb, accuracy=float(acc.mean()),
                           se=float(acc.std(ddof=1) / np.sqrt(len(acc))), flops=f, problems=len(ids))
                if within.size:
                    best = within[np.argmax(single.acc[within].mean(1))]
                    diff = acc - single.acc[best]
                    lab = single.labels.iloc[best]
                    how = "one sample" if lab.k == 1 else f"{strategies.short_label(lab.strategy)} · k={lab.k}"
                    row.update(best_single=f"{lab.model} · {how}",
                               best_single_accuracy=float(single.acc[best].mean()), gain=float(diff.mean()),
                               gain_se=float(diff.std(ddof=1) / np.sqrt(len(diff))))
                    row["clear"] = bool(row["gain"] > 1.96 * row["gain_se"])
                rows.append(row)
    return pd.DataFrame(rows)


def _unscored(side: _Side, k: int) -> np.ndarray:
    """FLOPs of k samples without the scorer's share (the block charges the scorer only from k = 2)."""
    return side.cost(k) - (k * side.score_flops if k > 1 else 0.0)


def summary(df: pd.DataFrame) -> str:
    """Whether any split beats every single model at equal FLOPs, and by how much."""
    if df.empty or "gain" not in df:
        return "No ensemble could be compared with a single model."
    best = df.loc[df["gain"].idxmax()]
    how = method_label(best.method)
    split = (f"{best.k_a} sample{'s' if best.k_a > 1 else ''} of {best.model_a} + {best.k_b} of {best.model_b}, "
             f"pooled by {how}")
    if best["clear"]:
        n = int(df["clear"].sum())
        return (f"Yes: {split} reaches {best.accuracy:.1%}, {100 * best.gain:+.1f} points (± "
                f"{100 * 1.96 * best.gain_se:.1f}) over the "
                f"best single-model option at no more FLOPs ({best.best_single}, {best.best_single_accuracy:.1%}); "
                f"{n} of {len(df)} splits beat every single model beyond noise.")
    return (f"No split beats every single model beyond noise; the closest is {split}: {best.accuracy:.1%} against "
            f"{best.best_single_accuracy:.1%} for {best.best_single} ({100 * best.gain:+.1f} points ± "
            f"{100 * 1.96 * best.gain_se:.1f}).")
