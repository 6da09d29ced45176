"""Self-likelihood: how probable the sampling model itself found the completion.

The score is exp(mean token log-probability), the geometric-mean probability
per token, in (0, 1]: it ranks samples exactly as the mean log-probability does
(best-of-N), and stays positive, so weighted voting adds up sensible weights.
Needs no second model: the log-probability is recorded with every sample (at
temperature 1), so scoring is free and nothing is cached.
"""
from __future__ import annotations

import numpy as np

from . import Scorer, no_steps, register


class SelfLikelihood(Scorer):
    name = "self-likelihood"
    label = "the model's own per-token probability (geometric mean)"
    short = "self-likelihood"

    def score(self, cache, task, samples, on_progress=None):
        tokens = np.maximum(samples["completion_tokens"].to_numpy(np.float64), 1.0)
        return samples.assign(score=np.exp(samples["logprob"].to_numpy(np.float64) / tokens),
                              step_scores=no_steps(len(samples)))


register(SelfLikelihood.name, SelfLikelihood)
