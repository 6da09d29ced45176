"""A simulated verifier of chosen quality: ``simulated-AUC`` (``simulated-0.8``), AUC from 0.5 to 1.

Equal-variance Gaussian scores: a sample's noise z ~ N(0, 1) plus d' = sqrt(2) Phi^-1(AUC) if it is
correct, so a correct sample outscores an incorrect one (of the same problem or not) with probability
Phi(d' / sqrt 2) = AUC. The score is Phi(z + d' correct - d'/2), in (0, 1), which ranks the same and keeps
weighted votes positive. The noise is seeded by the sample's cache key alone, so a sample keeps its draw at
every AUC: raising the AUC moves each curve smoothly instead of redrawing it.

It reads the answer key (``correct``), like the oracle: a teaching device showing how best-of-N moves
between majority vote and the oracle as verifier quality rises (Brown et al. 2024, sec. 4), never a
deployable strategy.
"""
from __future__ import annotations

import hashlib
import math
import threading

import numpy as np
from scipy.stats import norm

from ..errors import EngineError
from . import Scorer, no_steps, register_family

PREFIX = "simulated"
LISTED = ("simulated-0.7", "simulated-0.9")
SEED = 20240731
MAX_D = 12.0  # AUC 1 would need an infinite d'; at 12 a wrong sample outscores a right one with p ~ 1e-17
KEY = ("model_fp", "task", "problem_id", "config_key", "idx")


def d_prime(auc: float) -> float:
    return min(MAX_D, math.sqrt(2) * float(norm.ppf(auc)))


_DRAWS: dict = {}  # a few samples' draws, by (seed, a digest of their keys): every AUC draws the same noise
_KEEP = 8
_LOCK = threading.Lock()  # the app's sessions run in threads


def noise(samples, seed: int = SEED) -> np.ndarray:
    """One N(0, 1) draw per sample, a function of (seed, the sample's key columns) only."""
    import pandas as pd
    cols = [c for c in KEY if c in samples]
    if "idx" not in cols:
        raise EngineError("the simulated verifier needs each sample's index (column 'idx')")
    # a page asks for one pool's draws at many AUCs, and hashing each key in Python is most of a draw's cost
    digest = hashlib.blake2b(pd.util.hash_pandas_object(samples[cols], index=False).to_numpy().tobytes(),
                             digest_size=16).digest()
    with _LOCK:
        hit = _DRAWS.get((seed, tuple(cols), digest))
    if hit is not None:
        return hit.copy()
    keys = [f"{seed}|" + "|".join(map(str, row)) for row in zip(*(samples[c].tolist() for c in cols))]
    # 53 bits: (m + 0.5) / 2**53 is exact in float64, strictly inside (0, 1), so Phi^-1 stays finite
    u = [((int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little") >> 11) + 0.5)
         / 2 ** 53 for k in keys]
    out = norm.ppf(np.asarray(u, np.float64))
    with _LOCK:
        if len(_DRAWS) >= _KEEP:
            _DRAWS.pop(next(iter(_DRAWS)))
        _DRAWS[(seed, tuple(cols), digest)] = out
    return out.copy()


class Simulated(Scorer):
    needs_key = True

    def __init__(self, auc: float, seed: int = SEED):
        self.auc, self.seed = float(auc), seed
        self.name = f"{PREFIX}-{self.auc:g}"
        self.label = f"a simulated verifier with within-problem AUROC {self.auc:g} (reads the answer key)"
        self.short = f"simulated {self.auc:g}"

    def score(self, cache, task, samples, on_progress=None):
        d = d_prime(self.auc)
        x = noise(samples, self.seed) + d * samples["correct"].to_numpy(np.float64) - d / 2
        return samples.assign(score=norm.cdf(x), step_scores=no_steps(len(samples)))


def from_param(param: str) -> Simulated:
    try:
        auc = float(param)
    except ValueError:
        auc = float("nan")
    if not 0.5 <= auc <= 1.0:
        raise EngineError(f"simulated verifier: the AUROC after '{PREFIX}-' must be a number from 0.5 to 1, "
                          f"got {param!r} (for example {PREFIX}-0.8)")
    return Simulated(auc)


register_family(PREFIX, from_param, LISTED)
