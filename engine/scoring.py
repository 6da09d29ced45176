"""Verifier scores for cached samples, computed once and cached beside them."""
from __future__ import annotations

import json
from typing import Sequence

import pandas as pd

from .cache import SampleCache
from .models.params import SamplingParams
from .results import load_samples
from .tasks import Problem, Task
from .verifiers import load_verifier


def ensure_scores(cache: SampleCache, verifier: str, model: str, task: Task, problems: Sequence[Problem],
                  params: SamplingParams, on_progress=None) -> pd.DataFrame:
    """Scores of ``verifier`` for every cached sample of (model, task, problems, params).

    Only samples without a cached score are scored; the result has one row per
    sample with ``score`` and ``step_scores`` (a list, empty for an ORM).
    """
    v = load_verifier(verifier)
    df = load_samples(cache, model, task, problems, params)
    if df.empty:
        return df.assign(score=pd.Series(dtype=float), step_scores=pd.Series(dtype=object))
    have = cache.scores(v.fingerprint, model_fp=df.model_fp.iloc[0], task=task.name,
                        config_key=df.config_key.iloc[0], problem_ids=df.problem_id.unique().tolist())
    done = set(zip(have.problem_id, have.idx))
    todo = df[[(p, i) not in done for p, i in zip(df.problem_id, df.idx)]]
    by_id = task.by_id()
    for n_done, (pid, grp) in enumerate(todo.groupby("problem_id", sort=False)):
        prompt = task.prompt(by_id[pid])
        comps = grp.text.fillna("").tolist()
        steps = v.step_scores(prompt, comps) if v.kind == "prm" else [[] for _ in comps]
        scores = v.score(prompt, comps)
        cache.write_scores([dict(verifier_fp=v.fingerprint, model_fp=r.model_fp, task=r.task, problem_id=r.problem_id,
                                 config_key=r.config_key, idx=r.idx, score=s, step_scores=json.dumps(st))
                            for r, s, st in zip(grp.itertuples(), scores, steps)])
        if on_progress:
            on_progress(n_done + 1, todo.problem_id.nunique())
    have = cache.scores(v.fingerprint, model_fp=df.model_fp.iloc[0], task=task.name,
                        config_key=df.config_key.iloc[0], problem_ids=df.problem_id.unique().tolist())
    out = df.merge(have[["problem_id", "idx", "score", "step_scores"]], on=["problem_id", "idx"], how="left")
    out["step_scores"] = out.step_scores.map(lambda s: json.loads(s) if isinstance(s, str) else [])
    return out
