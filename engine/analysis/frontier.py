"""Pareto frontiers over (cost, accuracy) and FLOPs-matched comparisons of two model sizes."""
from __future__ import annotations

import numpy as np
import pandas as pd


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


def flops_matched(df: pd.DataFrame, small: str, large: str, x: str = "flops") -> pd.DataFrame:
    """Per difficulty level: ``large`` with 1 sample vs ``small`` at the largest k within the same FLOPs."""
    out = []
    levels = sorted(df.difficulty.unique()) if "difficulty" in df else [None]
    for lvl in levels:
        d = df if lvl is None else df[df.difficulty == lvl]
        big = d[(d.model == large) & (d.k == 1)]
        sm = d[d.model == small]
        if big.empty or sm.empty:
            continue
        budget = float(big[x].iloc[0])
        within = sm[sm[x] <= budget * 1.0001]
        pick = within.sort_values("k").iloc[-1] if not within.empty else sm.sort_values("k").iloc[0]
        out.append(dict(difficulty=lvl, large=large, large_accuracy=float(big.accuracy.iloc[0]),
                        large_flops=budget, small=small, small_k=int(pick.k),
                        small_accuracy=float(pick.accuracy), small_flops=float(pick[x]),
                        small_lo=float(pick.lo), small_hi=float(pick.hi),
                        large_lo=float(big.lo.iloc[0]), large_hi=float(big.hi.iloc[0]),
                        winner=small if pick.accuracy > big.accuracy.iloc[0] else large))
    return pd.DataFrame(out)
