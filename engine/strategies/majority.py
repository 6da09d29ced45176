"""Majority vote (self-consistency, Wang et al. 2023): the most common answer among the k samples."""
from __future__ import annotations

from collections import Counter

import numpy as np

from .. import metrics
from . import Pool, Pools, Strategy, register, seeded_choice


@register
class Majority(Strategy):
    name = "majority"
    label = "majority vote"
    short = "majority"
    help = ("majority: the most common answer; samples without an answer do not vote; a tie between answers "
            "is broken uniformly at random")
    order = 10

    def curve(self, pool: Pool, ks) -> np.ndarray:
        return metrics.majority_at_k_curve(pool.answers, pool.correct, ks)

    def curve_block(self, pools: Pools, ks) -> tuple[np.ndarray, np.ndarray]:
        vals = metrics.majority_at_k_block(pools.codes, pools.correct, ks)
        return vals, np.where(np.isnan(vals), np.nan, 0.0)

    def pick(self, pool: Pool) -> int | None:
        counts = Counter(a for a in pool.answers if a is not None)
        if not counts:
            return None
        top = max(counts.values())
        winner = seeded_choice(sorted(i for i, a in enumerate(counts) if counts[a] == top), pool)
        answer = list(counts)[winner]
        return pool.answers.index(answer)
