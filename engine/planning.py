"""Run planning: what a selection still lacks in the cache, and how long filling it will take."""
from __future__ import annotations

from typing import Sequence

from .cache import SampleCache
from .models.params import SamplingParams
from .tasks import Problem, Task


def resolve_params(task: Task, params: SamplingParams) -> SamplingParams:
    """Use the task's stop strings when the caller gave none (so keys agree everywhere)."""
    if not params.stop and task.stop:
        return SamplingParams(**{**params.__dict__, "stop": task.stop})
    return params


def missing(cache: SampleCache, model_fp: str, task: Task, problems: Sequence[Problem],
            params: SamplingParams) -> dict[str, list[int]]:
    """Per problem, the sample indices below ``params.n`` not yet cached."""
    have = cache.cached_indices(model_fp, task.name, params.key(), [p.id for p in problems])
    return {p.id: [i for i in range(params.n) if i not in have[p.id]] for p in problems}


def estimate_seconds(cache: SampleCache, exp, fallback_samples_per_s: float = 20.0) -> float:
    """Seconds to fill what ``exp`` lacks, from each model's measured throughput in this cache
    (``runner.probe`` measures models it has never timed; the fallback is only a guess)."""
    task, problems = exp.load_task(), exp.selected()
    total = 0.0
    for ref in exp.models:
        todo = sum(len(v) for v in missing(cache, ref.fingerprint, task, problems, exp.params).values())
        total += todo / (cache.throughput(ref.fingerprint) or fallback_samples_per_s)
    return total


def coverage(cache: SampleCache, exp) -> list[dict]:
    """Per model of ``exp``: how many selected problems have a complete pool (``n`` samples), a partial one,
    or none, and how many samples are cached: what a page says before it plots."""
    task, problems = exp.load_task(), exp.selected()
    n = exp.params.n
    have = cache.pool_sizes([m.fingerprint for m in exp.models], task.name, exp.params.key(),
                            [p.id for p in problems], n)
    out = []
    for ref in exp.models:
        left = [n - have[ref.fingerprint].get(p.id, 0) for p in problems]
        out.append(dict(model=ref.name, selected=len(problems), complete=sum(m == 0 for m in left),
                        partial=sum(0 < m < n for m in left), none=sum(m == n for m in left),
                        samples=len(problems) * n - sum(left)))
    return out


def problems_with_samples(cache: SampleCache, exp) -> list[str]:
    """Ids of the task's problems that have any sample of ``exp``'s first model at its settings."""
    task = exp.load_task()
    have = cache.cached_indices(exp.models[0].fingerprint, task.name, exp.params.key(), [p.id for p in task.problems])
    return [pid for pid, idx in have.items() if idx]


BUSY = 1.0  # load average per CPU above which timings are flagged


def busy_timings(cache: SampleCache, exp) -> list[dict]:
    """Models of ``exp`` whose samples were (partly) timed while the machine was busy: load average above
    ``BUSY`` per CPU when a run began. Measured latency and dollars of those models may be inflated."""
    task = exp.load_task()
    runs = cache.run_conditions([m.fingerprint for m in exp.models], task.name, exp.params.key())
    out = []
    for name, g in runs.groupby("name", sort=False):
        g = g[g["load_avg"].notna() & g["cpus"].notna()]
        busy = g[g["load_avg"] > BUSY * g["cpus"]]
        if not busy.empty:
            out.append(dict(model=name, runs=len(g), busy=len(busy), load=float(busy["load_avg"].max()),
                            cpus=int(busy["cpus"].iloc[0]), gflops=float(g["matmul_gflops"].median())))
    return out
