"""Oracle: solved if any of the k samples is correct (pass@k, Chen et al. 2021). Needs the answer key."""
from __future__ import annotations

import numpy as np

from .. import metrics
from . import Pool, Pools, Strategy, register


@register
class Oracle(Strategy):
    name = "oracle"
    label = "oracle (pass@k coverage)"
    short = "oracle"
    help = "oracle: solved if any sample is correct (pass@k); needs the answer key, so it is an upper bound"
    needs_key = True
    order = 0

    def curve(self, pool: Pool, ks) -> np.ndarray:
        return metrics.pass_at_k_matrix([pool.n], [int(pool.correct.sum())], ks)[0]

    def curve_block(self, pools: Pools, ks) -> tuple[np.ndarray, np.ndarray]:
        vals = metrics.pass_at_k_block(pools.correct, ks)
        return vals, np.where(np.isnan(vals), np.nan, 0.0)

    def pick(self, pool: Pool) -> int | None:
        hits = np.flatnonzero(pool.correct)
        return int(hits[0]) if hits.size else None
