"""Measure the shipped ladder on the ``arith`` test set and check what it must show.

``python -m engine.train evaluate [--jobs 2]`` samples every ladder model on all
500 test problems (64 samples each at temperature 0.8, through the cache, so a
rerun only reads), then writes ``data/models/ladder_eval.json``: pass@k overall
and per difficulty level, the fingerprint of each model's files (so a stale
evaluation is detectable), and the verdict on each claim the ladder makes.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

from ..cache import DEFAULT_PATH, SampleCache
from ..models import SamplingParams, list_shipped
from ..models.ref import resolve_model
from ..registry import EVAL_FILE, stale_models  # noqa: F401  (where the record lives, and its staleness)
from ..tasks import get_task


@dataclass(frozen=True)
class EvalSettings:
    task: str = "arith"
    problems: int = 500
    n: int = 64
    temperature: float = 0.8
    ks: tuple[int, ...] = (1, 8, 64)


def check_claims(models: list[dict], k: int = 64) -> dict[str, dict]:
    """The ladder's promises, each with a verdict and the numbers behind it.

    ``models`` is smallest first; each has ``name``, ``pass@1``, ``pass@{k}`` and
    ``levels`` ({level: pass@1}). Pure, so the rules are tested on made-up tables.
    """
    names = [m["name"] for m in models]
    p1 = [m["pass@1"] for m in models]
    p64 = [m[f"pass@{k}"] for m in models]
    largest = models[-1]
    out = {}

    def claim(key, ok, detail):
        out[key] = {"ok": bool(ok), "detail": detail}

    claim("pass@1 rises strictly with size", all(a < b for a, b in zip(p1, p1[1:])),
          " < ".join(f"{n} {v:.3f}" for n, v in zip(names, p1)))
    claim("smallest pass@1 >= 5%", p1[0] >= 0.05, f"{names[0]} {p1[0]:.3f}")
    claim("largest pass@1 <= 90%", p1[-1] <= 0.90, f"{names[-1]} {p1[-1]:.3f}")
    # "clearly above": at least ten points, far outside the bootstrap CI of 500 problems
    claim(f"pass@{k} clearly above pass@1 (>= +10 points) for every model",
          all(b - a >= 0.10 for a, b in zip(p1, p64)),
          ", ".join(f"{n} {a:.3f}->{b:.3f}" for n, a, b in zip(names, p1, p64)))
    claim(f"every smaller model's pass@{k} exceeds the largest's pass@1",
          all(v > largest["pass@1"] for v in p64[:-1]),
          f"{largest['name']} pass@1 {largest['pass@1']:.3f}; "
          + ", ".join(f"{n} pass@{k} {v:.3f}" for n, v in zip(names[:-1], p64[:-1])))
    falls = {}
    for m in models:
        lv = [m["levels"][k] for k in sorted(m["levels"], key=int)]
        falls[m["name"]] = all(a > b for a, b in zip(lv, lv[1:]))
    claim("pass@1 falls strictly with difficulty level for every model", all(falls.values()),
          "; ".join(f"{m['name']} " + " > ".join(f"{m['levels'][k]:.3f}" for k in sorted(m["levels"], key=int))
                    for m in models))
    return out


def _sweep_chunk(model: str, cache_path: str, settings: EvalSettings, start: int, step: int,
                 progress: bool = False) -> int:
    """One worker: every ``step``-th problem from ``start`` (a process of its own, one thread)."""
    import os

    # nothing a worker keeps for a top-up would be read (it ends with the sweep), and each of its loaded models
    # would hold up to the budget (engine/models/prefix.py)
    os.environ.setdefault("TTC_PREFIX_MB", "0")
    import torch
    from tqdm import tqdm
    torch.set_num_threads(1)
    from ..runner import bar_updater, run
    task = get_task(settings.task)
    probs = task.select(settings.problems)[start::step]
    bar = tqdm(desc=f"{model} [{start + 1}/{step}]", unit="sample", position=start, disable=not progress,
               dynamic_ncols=True)
    res = run(model, task, probs, SamplingParams(n=settings.n, temperature=settings.temperature),
              SampleCache(cache_path), on_progress=bar_updater(bar))
    bar.close()
    return res.generated


def sweep(models: list[str], cache_path: Path, settings: EvalSettings, jobs: int = 1, progress: bool = True) -> None:
    """Top up the cache for every model; ``jobs`` processes split the problems between them."""
    from tqdm import tqdm

    from ..runner import bar_updater, run
    task = get_task(settings.task)
    problems = task.select(settings.problems)
    params = SamplingParams(n=settings.n, temperature=settings.temperature)
    cache = SampleCache(cache_path)
    if jobs <= 1:
        for model in models:
            bar = tqdm(desc=model, unit="sample", disable=not progress, dynamic_ncols=True)
            run(model, task, problems, params, cache, on_progress=bar_updater(bar))
            bar.close()
        return
    # one pool for every model (spawn, not fork: torch's thread pools do not survive a fork), so the
    # workers start once; each takes every jobs-th problem of a model
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as ex:
        futs = {(model, j): ex.submit(_sweep_chunk, model, str(cache_path), settings, j, jobs, progress)
                for model in models for j in range(jobs)}
        for model in models:
            done = sum(futs[(model, j)].result() for j in range(jobs))
            if progress:
                print(f"{model}: generated {done} samples in {jobs} processes")


def measure(models: list[str], cache_path: Path, settings: EvalSettings) -> dict:
    from ..results import report, report_by_level
    task = get_task(settings.task)
    problems = task.select(settings.problems)
    params = SamplingParams(n=settings.n, temperature=settings.temperature)
    cache = SampleCache(cache_path)
    refs = {(ref := resolve_model(m)).name: ref for m in models}
    df = report(cache, list(refs.values()), task, problems, params, ks=settings.ks)
    levels = {k: report_by_level(cache, list(refs.values()), task, problems, params, k=k) for k in settings.ks}
    rows = []
    for r in df.to_dict("records"):
        d = {"name": r["model"], "params": int(r["params"]), "fingerprint": refs[r["model"]].fingerprint,
             "problems": int(r["problems"]), "n": int(r["n"])}
        for k in settings.ks:
            d[f"pass@{k}"] = round(float(r[f"pass@{k}"]), 4)
            d[f"pass@{k}_ci95"] = [round(float(r[f"pass@{k}_lo"]), 4), round(float(r[f"pass@{k}_hi"]), 4)]
        d["levels"] = {c[1:]: round(float(v), 4) for c, v in levels[1].loc[r["model"]].items()}
        d["levels_by_k"] = {f"pass@{k}": {c[1:]: round(float(v), 4) for c, v in levels[k].loc[r["model"]].items()}
                            for k in settings.ks}
        rows.append(d)
    return {"command": "python -m engine.train evaluate", "settings": asdict(settings), "models": rows,
            "claims": check_claims(rows, k=max(settings.ks))}


def evaluate(out: Path = EVAL_FILE, cache_path: Path = DEFAULT_PATH, settings: EvalSettings = EvalSettings(),
             jobs: int = 1, progress: bool = True, models: list[str] | None = None) -> dict:
    """``models`` (names or directories, smallest first) defaults to the shipped ladder."""
    models = models or list_shipped()
    if len(models) < 2:
        from ..errors import EngineError
        raise EngineError(f"evaluate compares a ladder of at least 2 models, got {models or 'none'}; "
                          "train them with `python -m engine.train ladder`")
    sweep(models, cache_path, settings, jobs, progress)
    result = measure(models, cache_path, settings)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_result(result: dict) -> None:
    ks = result["settings"]["ks"]
    for m in result["models"]:
        print(f"{m['name']:9s} {m['params']:>9,} params  " + "  ".join(f"pass@{k} {m[f'pass@{k}']:.3f}" for k in ks)
              + "  pass@1 by level " + " ".join(f"{v:.3f}" for v in m["levels"].values()))
    for key, c in result["claims"].items():
        print(f"[{'ok' if c['ok'] else 'MISSED'}] {key}: {c['detail']}")


def default_jobs() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))
