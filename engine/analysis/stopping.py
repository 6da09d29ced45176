"""Adaptive stopping, simulated on cached pools: draw samples one at a time and stop once the answer is settled.

Two rules, each applied to a problem's samples in a random order (``orders`` seeded permutations of the
cached pool, averaged, so the result does not hinge on one order):

* ``majority``: Adaptive-Consistency's Beta rule (Aggarwal et al. 2023, sec. 3): with v1 and v2 votes for
  the two most common answers, stop when P(p > 1/2) >= ``threshold`` for p ~ Beta(v1 + 1, v2 + 1), and
  answer the majority (ties broken uniformly at random, as in ``metrics.majority_at_k``).
* ``verifier``: stop at the first sample whose score reaches ``threshold`` and answer it; at the cap,
  answer the highest-scored sample seen.

Both stop at ``max_samples`` at the latest. Results carry the mean samples used and the accuracy, and
the fixed-k majority vote at the same mean samples (a policy that draws floor(m) or ceil(m) samples at
random achieves the straight line between the two, so interpolation is exact, not optimistic).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betainc

from .. import metrics, strategies
from ..errors import EngineError
from ..strategies import Pool


def settled(v1, v2) -> np.ndarray:
    """P(p > 1/2) for p ~ Beta(v1 + 1, v2 + 1): how sure the leading answer's share beats the runner-up's."""
    return 1.0 - betainc(np.asarray(v1, float) + 1.0, np.asarray(v2, float) + 1.0, 0.5)


def codes(answers) -> tuple[np.ndarray, int]:
    """Answers as small integers (-1: no answer), and how many distinct answers there are."""
    table: dict = {}
    out = np.array([-1 if a is None else table.setdefault(a, len(table)) for a in answers], dtype=np.int64)
    return out, len(table)


def _orders(n: int, orders: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((orders, n)), axis=1)


def majority_rule(pool: Pool, thresholds, max_samples: int | None = None, orders: int = 16,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(expected samples used, expected accuracy), one per threshold, of the Beta stopping rule on one pool."""
    t = np.atleast_1d(np.asarray(thresholds, float))
    n = min(pool.n, max_samples or pool.n)
    code, u = codes(pool.answers)
    if u == 0:
        return np.full(len(t), float(n)), np.zeros(len(t))
    right = np.zeros(u)
    right[np.unique(code[pool.correct & (code >= 0)])] = 1.0
    drawn = code[_orders(pool.n, orders, seed)[:, :n]]           # [orders, n]
    counts = np.cumsum(drawn[..., None] == np.arange(u), axis=1)  # [orders, n, u] votes after each draw
    top2 = -np.sort(-counts, axis=2)[..., :2] if u > 1 else np.concatenate([counts, 0 * counts], axis=2)
    sure = settled(top2[..., 0], top2[..., 1])                   # [orders, n]
    sure[:, -1] = np.inf                                         # the cap always stops
    at = np.argmax(sure[None] >= t[:, None, None], axis=2)       # [T, orders]: first draw where the rule fires
    final = counts[np.arange(orders)[None, :], at]               # [T, orders, u]
    best = final.max(axis=2, keepdims=True)
    tied = (final == best) & (best > 0)
    acc = np.where(tied.any(2), (tied * right).sum(2) / np.maximum(tied.sum(2), 1), 0.0)
    return (at + 1).mean(1), acc.mean(1)


def verifier_rule(pool: Pool, thresholds, max_samples: int | None = None, orders: int = 16,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(expected samples used, expected accuracy), one per threshold, of stopping at the first sample scored
    at least the threshold."""
    if pool.scores is None:
        raise EngineError("the verifier stopping rule needs a scorer's scores")
    t = np.atleast_1d(np.asarray(thresholds, float))
    n = min(pool.n, max_samples or pool.n)
    perm = _orders(pool.n, orders, seed)[:, :n]
    s, ok = pool.scores[perm], pool.correct[perm].astype(float)  # [orders, n]
    hit = s[None] >= t[:, None, None]                            # [T, orders, n]
    fired = hit.any(axis=2)
    at = np.where(fired, np.argmax(hit, axis=2), n - 1)
    # at the cap: the best-scored sample seen (equal top scores broken uniformly at random)
    top = s == s.max(axis=1, keepdims=True)
    fallback = (top * ok).sum(1) / top.sum(1)
    acc = np.where(fired, ok[np.arange(orders)[None, :], at], fallback[None, :])
    return (at + 1).mean(1), acc.mean(1)


RULES = {"majority": majority_rule, "verifier": verifier_rule}
THRESHOLDS = {"majority": (0.8, 0.9, 0.95, 0.99), "verifier": (0.5, 0.7, 0.9)}      # what the CLI reports
GRID = {"majority": (0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999), "verifier": (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)}
DEFAULT = {"majority": 0.95, "verifier": 0.9}


def stoppable(specs) -> list[str]:
    """The strategies a stopping rule applies to: majority vote, and every strategy with a scorer (whose scores
    the verifier rule reads)."""
    return [s for s in specs if strategies.get(s).scorer or strategies.get(s).name == "majority"]


def rule_of(spec: str) -> str:
    return "verifier" if strategies.get(spec).scorer else "majority"


def rule_label(spec: str) -> str:
    return ("majority settled (Beta rule)" if rule_of(spec) == "majority"
            else f"verifier confident ({strategies.short_label(spec)})")


def simulate(block, rule: str, thresholds, max_samples: int | None = None, orders: int = 16,
             seed: int = 0) -> pd.DataFrame:
    """One row per threshold for one ``Block`` (``analysis.curves``): mean samples used, accuracy with its
    standard error over problems, mean FLOPs per problem, and fixed-k majority (and, for the verifier rule,
    fixed-k best-of-N with the same scorer) at the same mean samples."""
    if rule not in RULES:
        raise EngineError(f"unknown stopping rule {rule!r}: use one of {', '.join(RULES)}")
    pools = block.pools()
    cap = min(max_samples or block.sizes.max(), int(block.sizes.min()))
    ks = np.arange(1, cap + 1)
    thresholds = np.atleast_1d(np.asarray(thresholds, float))
    per = [RULES[rule](p, thresholds, cap, orders, seed + i) for i, p in enumerate(pools)]
    used, acc = np.array([u for u, _ in per]), np.array([a for _, a in per])  # [problems, T]
    means = used.mean(0)
    # fixed-k baselines only at the whole k around each mean (exact majority curves are not cheap)
    near = sorted({int(k) for m in means for k in (np.floor(m), np.ceil(m))} | {cap})
    same_size = strategies.Pools.split(block.samples)   # the pools again, as blocks of one pool size
    fixed_major = _at(same_size, near, ks, lambda b, kk: metrics.majority_at_k_block(b.codes, b.correct, kk))
    fixed_best = None
    if rule == "verifier":
        fixed_best = _at(same_size, near, ks, lambda b, kk: metrics.best_of_k_block(b.scores, b.correct, kk))
    flops = _flops_by_k(block, ks, scored_always=rule == "verifier")
    rows = []
    for j, t in enumerate(thresholds):
        f = np.array([np.interp(u, ks, flops[i]) for i, u in enumerate(used[:, j])])
        m, a = float(used[:, j].mean()), acc[:, j]
        row = dict(model=block.model, strategy=block.strategy, rule=rule, threshold=float(t), max_samples=cap,
                   mean_samples=m, accuracy=float(a.mean()), se=float(a.std(ddof=1) / np.sqrt(len(a)))
                   if len(a) > 1 else np.nan, flops=float(f.mean()), problems=len(pools),
                   fixed_majority=float(np.interp(m, ks, fixed_major)),
                   saved=1.0 - m / cap, majority_at_cap=float(fixed_major[cap - 1]))
        if fixed_best is not None:
            row["fixed_best_of_n"] = float(np.interp(m, ks, fixed_best))
        rows.append(row)
    return pd.DataFrame(rows)


def _at(same_size, near, ks, curve) -> np.ndarray:
    """A fixed-k curve averaged over problems, filled in at the k in ``near`` (NaN elsewhere); ``same_size`` is
    ``Pools.split`` output and ``curve(pools, near)`` a [problems, len(near)] block estimator."""
    out = np.full(len(ks), np.nan)
    out[np.asarray(near) - 1] = np.vstack([curve(b, near) for _, b in same_size]).mean(0)
    return out


def _flops_by_k(block, ks, scored_always: bool = False) -> np.ndarray:
    """[problems, len(ks)] FLOPs of k samples per problem. Costs are affine in k (prompt once, then per
    sample), except that a scorer is charged only from k = 2 on; a rule that scores every sample it draws
    (``scored_always``) pays it at k = 1 too, so it follows the k >= 2 line down to k = 1."""
    grid, cost = np.asarray(block.ks, float), block.costs["flops"]
    if scored_always and (grid >= 2).sum() >= 2:
        j = grid >= 2
        slope = (cost[:, j][:, -1] - cost[:, j][:, 0]) / (grid[j][-1] - grid[j][0])
        return cost[:, j][:, :1] + (np.asarray(ks, float)[None, :] - grid[j][0]) * slope[:, None]
    return np.vstack([np.interp(ks, grid, row) for row in cost])


def summary(df: pd.DataFrame) -> list[str]:
    """One sentence per model and rule: samples saved and the accuracy it costs against the full budget and
    against fixed-k majority at the same mean samples."""
    out = []
    for r in df.itertuples():
        base = r.fixed_best_of_n if r.rule == "verifier" else r.fixed_majority
        what = "fixed-k best-of-N" if r.rule == "verifier" else "fixed-k majority"
        rule = "majority rule" if r.rule == "majority" else f"{strategies.short_label(r.strategy)} confidence rule"
        gap = (r.accuracy - base) * 100
        # in words, who is ahead at the same samples, and whether that is more than the noise of the rule's
        # accuracy over these problems (its 95% interval; the fixed-k baseline's is about as wide)
        se = getattr(r, "se", None)
        noise = 1.96 * 100 * se if se is not None and se == se else None  # (se == se: not NaN)
        said = (f"is level with {what}" if abs(gap) < 0.5 else
                f"is {abs(gap):.1f} points {'above' if gap > 0 else 'below'} {what}")
        if noise is not None and abs(gap) >= 0.5:
            said += f", {'within' if abs(gap) < noise else 'beyond'} noise (± {noise:.1f} points over problems)"
        out.append(f"{r.model}, {rule} at {r.threshold:g}: {r.mean_samples:.1f} of {r.max_samples} samples "
                   f"on average ({r.saved:.0%} saved), accuracy {r.accuracy:.1%} (majority@{r.max_samples}: "
                   f"{r.majority_at_cap:.1%}; {what} at the same mean samples: {base:.1%}): it {said} "
                   "at equal samples.")
    return out
