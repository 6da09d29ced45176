"""Pareto frontiers over (cost, accuracy) and FLOPs-matched comparisons of two model sizes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .verdict import MATTERS, TOL, best_within, gap_is_clear


def frontier(df: pd.DataFrame, x: str = "flops", y: str = "accuracy") -> pd.DataFrame:
    """Pareto-optimal rows: no other row is both cheaper on ``x`` and at least as accurate."""
    if df.empty:
        return df
    d = df.sort_values([x, y], ascending=[True, False])
    keep, best = [], -np.inf
    for i, row in d.iterrows():
        if row[y] > best:
            keep.append(i)
            best = row[y]
    return d.loc[keep]


def flops_matched(df: pd.DataFrame, small: str, large: str, x: str = "flops", paired=None) -> pd.DataFrame:
    """Per difficulty level: ``large`` with 1 sample vs ``small``'s best option that costs no more.

    The same rule as the verdict and ``equal_compute``: the most accurate point within the budget (ties:
    fewer samples). ``winner`` is a model name or "tie"; ``clear`` says whether the 95% interval of the
    difference excludes zero (``verdict.gap_is_clear``, on per-problem differences where ``paired``, a
    ``verdict.Paired``, holds both) and the gap is at least ``verdict.MATTERS``, as the verdict calls a win;
    ``result`` says it in words: "<model> wins", "within noise", or "under a point" (certain, but too small to
    matter). Where one sample of ``small`` costs more than the budget (``fits`` false) the row shows its one
    sample, with no winner.
    """
    out = []
    levels = sorted(df.difficulty.unique()) if "difficulty" in df else [None]
    for lvl in levels:
        d = df if lvl is None else df[df.difficulty == lvl]
        big = d[(d.model == large) & (d.k == 1)]
        if big.empty:
            continue
        big = big.iloc[0]
        pick = best_within(d[d.model == small], float(big[x]), x)
        fits = pick is not None
        if pick is None:  # shown, but no comparison: one sample of the small model costs more (a rambling model)
            pick = d[d.model == small].sort_values("k").iloc[0] if (d.model == small).any() else None
        if pick is None:
            continue
        gap = float(pick.accuracy - big.accuracy)
        winner = (small if gap > 0 else large if gap < 0 else "tie") if fits else "none"
        sure = fits and gap_is_clear(pick, big, paired, lvl)
        clear = abs(gap) >= MATTERS and sure
        out.append(dict(difficulty=lvl, large=large, large_accuracy=float(big.accuracy), large_flops=float(big[x]),
                        small=small, small_k=int(pick.k), small_accuracy=float(pick.accuracy),
                        small_flops=float(pick[x]), small_lo=float(pick.lo), small_hi=float(pick.hi),
                        large_lo=float(big.lo), large_hi=float(big.hi),
                        winner=winner, clear=clear, fits=fits,
                        result=f"{winner} wins" if clear else "under a point" if sure else "within noise" if fits
                        else f"no comparison: one {small} sample costs more"))
    return pd.DataFrame(out)


def equal_compute(df: pd.DataFrame, small: str, large: str, x: str = "flops") -> pd.DataFrame:
    """Who wins at equal compute, per difficulty level and budget.

    Budgets are the costs (``x``) of ``large`` with k = 1, 2, 4, ... samples; at each, ``small`` takes its
    most accurate point that costs no more (ties: fewer samples), as in the verdict. ``df`` holds one
    strategy's curves (by level or overall).
    Rows: difficulty, budget, large_k, large_accuracy, small_k, small_accuracy, gap (small - large), winner,
    capped (the budget would buy ``small`` at least twice its largest cached k: raise the sample budget).
    """
    out = []
    levels = sorted(df["difficulty"].dropna().unique()) if "difficulty" in df else [None]
    for lvl in levels:
        d = df if lvl is None else df[df["difficulty"] == lvl]
        sm = d[d["model"] == small]
        for _, big in d[d["model"] == large].sort_values("k").iterrows():
            pick = best_within(sm, float(big[x]), x)
            if pick is None:
                continue
            gap = float(pick["accuracy"] - big["accuracy"])
            # twice the largest cached k would still fit the budget: more samples were affordable
            capped = float(sm[x].max()) * 2 <= big[x] * TOL
            out.append(dict(difficulty=lvl, budget=float(big[x]), large_k=int(big["k"]),
                            large_accuracy=float(big["accuracy"]), small_k=int(pick["k"]),
                            small_accuracy=float(pick["accuracy"]), gap=gap, capped=bool(capped),
                            winner=small if gap > 0 else large if gap < 0 else "tie"))
    return pd.DataFrame(out)


def crossover(eq: pd.DataFrame) -> float | None:
    """The smallest budget from which ``large`` wins at every larger budget (overall rows), if any."""
    d = eq[eq["difficulty"].isna()] if "difficulty" in eq and eq["difficulty"].isna().any() else eq
    if d.empty:
        return None
    by_budget = d.groupby("budget")["gap"].mean().sort_index()
    large_wins = (by_budget < 0).to_numpy()
    if not large_wins.any() or large_wins.all():
        return None
    for i in range(len(large_wins)):
        if large_wins[i:].all():
            return float(by_budget.index[i])
    return None
