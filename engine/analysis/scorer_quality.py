"""How well a scorer ranks samples: pooled over problems, and within one problem (what best-of-N relies on).

Pooled AUROC mixes problems, so a scorer that only recognises easy problems looks good. Best-of-N picks
within one problem's samples, so the number that matters is the AUROC *within* a problem: over problems
that have both right and wrong samples, the chance that a right sample outscores a wrong one (ties count
half), averaged. 0.5 is guessing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import scorers
from ..cache import SampleCache
from ..results import load_samples


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC with ties counted half; NaN without both classes."""
    pos, neg = int(positive.sum()), int((~positive).sum())
    if not pos or not neg:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def within_problem_auroc(df: pd.DataFrame) -> tuple[float, int]:
    """(mean AUROC within each problem that has right and wrong samples, how many such problems)."""
    ranks = df.groupby("problem_id")["score"].rank(method="average")
    g = df.assign(r=ranks, pos=df["correct"].astype(bool)).groupby("problem_id")
    pos = g["pos"].sum()
    n = g["pos"].count()
    neg = n - pos
    rank_pos = g.apply(lambda d: d.loc[d["pos"], "r"].sum(), include_groups=False)
    ok = (pos > 0) & (neg > 0)
    if not ok.any():
        return float("nan"), 0
    vals = (rank_pos[ok] - pos[ok] * (pos[ok] + 1) / 2) / (pos[ok] * neg[ok])
    return float(vals.mean()), int(ok.sum())


def scorer_quality(cache: SampleCache, exp, names=None) -> pd.DataFrame:
    """Per model of ``exp`` and scorer: pooled AUROC, within-problem AUROC and the problems behind it."""
    task, problems = exp.load_task(), exp.selected()
    rows = []
    for ref in exp.models:
        base = load_samples(cache, ref, task, problems, exp.params)
        if base.empty:
            continue
        for name in names or scorers.available():
            df = scorers.get(name).score(cache, task, base)
            within, n = within_problem_auroc(df)
            rows.append(dict(model=ref.name, scorer=name, pooled_auroc=auroc(df["score"].to_numpy(float),
                                                                              df["correct"].to_numpy(bool)),
                             within_problem_auroc=within, problems=n, samples=len(df)))
    return pd.DataFrame(rows)
