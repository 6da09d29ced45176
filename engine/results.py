"""From cached samples to the numbers users see (tables the CLI prints, data the app plots)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import compute, metrics
from .cache import SampleCache
from .errors import EngineError
from .models.loader import fingerprint, resolve_source
from .models.params import SamplingParams
from .runner import resolve_params
from .tasks import Problem, Task


def model_fp(cache: SampleCache, model: str) -> str:
    """Fingerprint of a model without loading it (local dirs hash files; others by cached name)."""
    src = resolve_source(model)
    from pathlib import Path
    if Path(src).is_dir():
        return fingerprint(src)
    m = cache.models()
    hit = m[(m["name"] == model) | (m["source"] == model)]
    if hit.empty:
        raise EngineError(f"model {model!r}: not a local directory and never sampled into this cache")
    return hit["model_fp"].iloc[0]


def load_samples(cache: SampleCache, model: str, task: Task, problems: Sequence[Problem],
                 params: SamplingParams) -> pd.DataFrame:
    """The first ``params.n`` cached samples per problem for this model and config."""
    params = resolve_params(task, params)
    df = cache.samples(model_fp=model_fp(cache, model), task=task.name, config_key=params.key(),
                       problem_ids=[p.id for p in problems], max_idx=params.n)
    diff = {p.id: p.difficulty for p in problems}
    df["difficulty"] = df["problem_id"].map(diff)
    df["model"] = model
    return df


def model_info(cache: SampleCache, model: str) -> dict:
    fp = model_fp(cache, model)
    m = cache.models()
    row = m[m["model_fp"] == fp]
    if row.empty:
        raise EngineError(f"model {model!r}: no samples cached yet; run a sweep first")
    return row.iloc[0].to_dict()


def per_problem(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("problem_id").agg(n=("idx", "count"), c=("correct", "sum"),
                                        difficulty=("difficulty", "first")).reset_index()


def report(cache: SampleCache, models: Sequence[str], task: Task, problems: Sequence[Problem],
           params: SamplingParams, ks: Sequence[int] = (1, 8, 64),
           cost: compute.CostModel | None = None) -> pd.DataFrame:
    """Per model: pass@k with 95% bootstrap CI, tokens, FLOPs, time, dollars, energy."""
    cost = cost or compute.CostModel()
    rows = []
    for model in models:
        df = load_samples(cache, model, task, problems, params)
        if df.empty:
            raise EngineError(f"no cached samples for model {model!r} on task {task.name!r} with these "
                              f"settings; run `python -m engine sweep` first")
        info = model_info(cache, model)
        pp = per_problem(df)
        kk = [k for k in ks if k <= pp["n"].min()]
        mat = metrics.pass_at_k_matrix(pp["n"].to_numpy(), pp["c"].to_numpy(), kk)
        lo, hi = metrics.bootstrap_ci(mat)
        flops = compute.flops_per_sample(info["matmul_params"], df["prompt_tokens"].to_numpy(),
                                         df["completion_tokens"].to_numpy(), info["n_layers"], info["d_model"])
        # the batch's wall time is shared by its rows: per-sample device time is the share
        secs = (df["decode_s"] / df["batch_size"]).to_numpy() + (df["prefill_s"] / df["batch_size"]).to_numpy()
        row = {"model": model, "params": int(info["params"]), "problems": len(pp), "n": int(pp["n"].min())}
        for j, k in enumerate(kk):
            row[f"pass@{k}"] = float(np.nanmean(mat[:, j]))
            row[f"pass@{k}_lo"], row[f"pass@{k}_hi"] = float(lo[j]), float(hi[j])
        row.update({
            "completion_tokens_mean": float(df["completion_tokens"].mean()),
            "tokens_total": int(df["prompt_tokens"].sum() + df["completion_tokens"].sum()),
            "flops_per_sample": float(np.mean(flops)),
            "flops_total": float(np.sum(flops)),
            "device_s_total": float(secs.sum()),
            "samples_per_s": float(len(df) / secs.sum()) if secs.sum() > 0 else float("nan"),
            "dollars_total": float(np.sum(cost.dollars(secs, df["prompt_tokens"] + df["completion_tokens"]))),
            "energy_wh_total": float(np.sum(cost.energy_wh(secs))),
        })
        rows.append(row)
    return pd.DataFrame(rows)


def report_by_level(cache: SampleCache, models: Sequence[str], task: Task, problems: Sequence[Problem],
                    params: SamplingParams, k: int = 1) -> pd.DataFrame:
    """pass@k per model (rows) and difficulty level (columns)."""
    out = {}
    for model in models:
        pp = per_problem(load_samples(cache, model, task, problems, params))
        if pp.empty or pp.difficulty.isna().all():
            continue
        pp["v"] = metrics.pass_at_k_matrix(pp["n"].to_numpy(), pp["c"].to_numpy(), [k])[:, 0]
        out[model] = pp.groupby("difficulty").v.mean()
    df = pd.DataFrame(out).T
    df.columns = [f"L{int(c)}" for c in df.columns]
    return df
