"""From cached samples to the tables the CLI prints (and the evaluation records)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import accounting, compute, metrics
from .cache import SampleCache
from .errors import EngineError
from .models.params import SamplingParams
from .models.ref import ModelRef, resolve_model
from .planning import resolve_params
from .tasks import Problem, Task


def load_samples(cache: SampleCache, model: ModelRef | str, task: Task, problems: Sequence[Problem],
                 params: SamplingParams) -> pd.DataFrame:
    """The first ``params.n`` cached samples per problem for this model and config."""
    ref = resolve_model(model)
    params = resolve_params(task, params)
    df = cache.samples(model_fp=ref.fingerprint, task=task.name, config_key=params.key(),
                       problem_ids=[p.id for p in problems], max_idx=params.n)
    diff = {p.id: p.difficulty for p in problems}
    codes, ids = pd.factorize(df["problem_id"])
    if len(df) and codes.min() >= 0:  # each problem's level looked up once, not once per sample
        df["difficulty"] = pd.Series(ids, dtype=df["problem_id"].dtype).map(diff).array.take(codes)
    else:
        df["difficulty"] = df["problem_id"].map(diff)
    df["model"] = ref.name
    return df


def model_info(cache: SampleCache, model: ModelRef | str, models: pd.DataFrame | None = None) -> dict:
    """What the cache recorded about a model when it was sampled (parameter counts, training record).
    ``models``: ``cache.models()``, where the caller has read it already (for many models: one read)."""
    ref = resolve_model(model)
    m = cache.models() if models is None else models
    row = m[m["model_fp"] == ref.fingerprint]
    if row.empty:
        raise EngineError(f"model {ref.name!r}: no samples cached yet; run a sweep first")
    return row.iloc[0].to_dict()


def per_problem(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("problem_id").agg(n=("idx", "count"), c=("correct", "sum"),
                                        difficulty=("difficulty", "first")).reset_index()


def report(cache: SampleCache, models: Sequence[ModelRef | str], task: Task, problems: Sequence[Problem],
           params: SamplingParams, ks: Sequence[int] = (1, 8, 64),
           cost: compute.CostModel | None = None) -> pd.DataFrame:
    """Per model: pass@k with 95% bootstrap CI, tokens, FLOPs, time, dollars, energy."""
    cost = cost or compute.CostModel()
    rows = []
    for model in models:
        ref = resolve_model(model)
        df = load_samples(cache, ref, task, problems, params)
        if df.empty:
            raise EngineError(f"no cached samples for model {ref.name!r} on task {task.name!r} with these "
                              f"settings; run `python -m engine sweep` first")
        info = model_info(cache, ref)
        df = accounting.per_sample(df, info, cost)
        pp = per_problem(df)
        kk = [k for k in ks if k <= pp["n"].min()]
        mat = metrics.pass_at_k_matrix(pp["n"].to_numpy(), pp["c"].to_numpy(), kk)
        lo, hi = metrics.bootstrap_ci(mat)
        secs = df["device_s"].sum()
        # the prompt's FLOPs apart: with prefix caching (what the app's curves count) k samples of a problem cost
        # prompt + k x extra; flops_per_sample counts the prompt in every sample (x64 read 3x the app's cost)
        prompt = compute.flops_per_sample(info["matmul_params"], df["prompt_tokens"].to_numpy(), 0,
                                          info["n_layers"], info["d_model"])
        row = {"model": ref.name, "params": int(info["params"]), "problems": len(pp),
               "n": int(pp["n"].min())}
        for j, k in enumerate(kk):
            row[f"pass@{k}"] = float(np.nanmean(mat[:, j]))
            row[f"pass@{k}_lo"], row[f"pass@{k}_hi"] = float(lo[j]), float(hi[j])
        row.update({
            "completion_tokens_mean": float(df["completion_tokens"].mean()),
            "tokens_total": int(df["tokens"].sum()),
            "flops_per_sample": float(df["flops"].mean()),
            "prompt_flops": float(np.mean(prompt)),
            "flops_per_extra_sample": float((df["flops"].to_numpy() - prompt).mean()),
            "flops_total": float(df["flops"].sum()),
            "device_s_total": float(secs),
            "samples_per_s": float(len(df) / secs) if secs > 0 else float("nan"),
            "dollars_total": float(df["dollars"].sum()),
            "energy_wh_total": float(df["energy_wh"].sum()),
        })
        rows.append(row)
    return pd.DataFrame(rows)


def report_by_level(cache: SampleCache, models: Sequence[ModelRef | str], task: Task, problems: Sequence[Problem],
                    params: SamplingParams, k: int = 1) -> pd.DataFrame:
    """pass@k per model (rows) and difficulty level (columns)."""
    out = {}
    for model in models:
        ref = resolve_model(model)
        pp = per_problem(load_samples(cache, ref, task, problems, params))
        if pp.empty or pp.difficulty.isna().all():
            continue
        pp["v"] = metrics.pass_at_k_matrix(pp["n"].to_numpy(), pp["c"].to_numpy(), [k])[:, 0]
        out[ref.name] = pp.groupby("difficulty").v.mean()
    df = pd.DataFrame(out).T
    df.columns = [f"L{int(c)}" for c in df.columns]
    return df
