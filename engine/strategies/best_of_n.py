"""Best-of-N: the sample its scorer rates highest (Cobbe et al. 2021; Brown et al. 2024, sec. 4)."""
from __future__ import annotations

import numpy as np

from .. import metrics
from . import Pool, Pools, Strategy, register, seeded_choice


@register
class BestOfN(Strategy):
    name = "best_of_n"
    label = "best-of-N"
    short = "best-of-N"
    help = ("best-of-N: the sample the scorer rates highest; equal top scores are broken uniformly at random; "
            "only as good as its scorer (a weak one can pick worse answers as N grows)")
    uses_scorer = True
    order = 20

    def curve(self, pool: Pool, ks) -> np.ndarray:
        return metrics.best_of_k_curve(pool.scores, pool.correct, ks)

    def curve_block(self, pools: Pools, ks) -> tuple[np.ndarray, np.ndarray]:
        vals = metrics.best_of_k_block(pools.scores, pools.correct, ks)
        return vals, np.where(np.isnan(vals), np.nan, 0.0)

    def tied(self, pool: Pool) -> list[int]:
        return np.flatnonzero(pool.scores == pool.scores.max()).tolist()

    def pick(self, pool: Pool) -> int | None:
        return seeded_choice(self.tied(pool), pool)
