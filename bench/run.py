"""The benchmarks that have a home so far, measured side by side in one run (not pass/fail tests):

    python bench/run.py            # about a minute on 2 cores; run it on a quiet machine

1. curves: every default strategy's curves (k = 1..64, bands) for the shipped sweeps (4 models x 500
   problems x 64 samples), with verifier scores already cached;
2. app: the first render of Explore on a new cache (the shipped sweeps load on the way) and a re-render
   with everything cached, through Streamlit's AppTest;
3. top-up: n=16 then topped up to 64 against a fresh n=64, arith-xl on 32 problems.
Sampling throughput against plain HF generate is bench/sampling.py; where the curves' time goes (DuckDB reads
against computation, per strategy, and 10k..1M synthetic samples) is bench/curves.py.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_curves(tmp: Path) -> list[tuple[str, float, str]]:
    from engine import analysis, shipped
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import SamplingParams, list_shipped
    cache = SampleCache(tmp / "curves.duckdb")
    load_s, _ = timed(lambda: shipped.import_into(cache))
    exp = Experiment.build(list_shipped(), "arith", SamplingParams(n=64, temperature=0.8), problems=500,
                           strategies=["oracle", "majority", "best_of_n:orm", "best_of_n:prm-min",
                                       "best_of_n:self-likelihood", "weighted_majority:orm"])
    first, df = timed(lambda: analysis.curves(cache, exp))
    again, _ = timed(lambda: analysis.curves(cache, exp))
    n = int(df.samples.max()) * len(exp.models)
    return [("shipped sweeps into a new cache", load_s, "128k samples + 256k scores"),
            (f"curves, 6 strategies x 7 k, {n:,} samples (first call)", first, "end to end: reads, costs, bands"),
            ("curves, same again (verifiers loaded)", again, "issue 12's target: < 1 s")]


def bench_app(tmp: Path) -> list[tuple[str, float, str]]:
    from streamlit.testing.v1 import AppTest
    os.environ["TTC_SHIPPED"] = "1"
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["cache"] = str(tmp / "app" / "samples.duckdb")
    cold, _ = timed(at.run)
    charts = len(at.get("plotly_chart"))
    warm, _ = timed(at.run)
    return [(f"app: first render of Explore on a new cache ({charts} charts)", cold, "shipped sweeps load"),
            ("app: re-render, everything cached", warm, "")]


def bench_topup(tmp: Path) -> list[tuple[str, float, str]]:
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import SamplingParams
    from engine.runner import run
    exp = Experiment.build(["arith-xl"], "arith", SamplingParams(n=64, temperature=0.8), problems=32)
    task, probs = exp.load_task(), exp.selected()
    run(exp.models[0], task, probs[:1], exp.params.with_n(4), SampleCache(tmp / "warm.duckdb"))  # load the model
    a = SampleCache(tmp / "a.duckdb")
    fresh, _ = timed(lambda: run(exp.models[0], task, probs, exp.params, a))
    b = SampleCache(tmp / "b.duckdb")
    part, _ = timed(lambda: run(exp.models[0], task, probs, exp.params.with_n(16), b))
    top, _ = timed(lambda: run(exp.models[0], task, probs, exp.params, b))
    return [("fresh n=64, arith-xl, 32 problems", fresh, ""),
            ("the top-up alone: 16 -> 64 samples", top, f"{top / fresh:.2f}x the fresh run (48/64 = 0.75x the work)"),
            ("n=16, then topped up to 64", part + top, f"{(part + top) / fresh:.2f}x the fresh run")]


def main() -> None:
    import torch
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with tempfile.TemporaryDirectory() as d:
        rows = []
        for bench in (bench_curves, bench_app, bench_topup):
            rows += bench(Path(d))
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':{width}s}  seconds  note")
    for name, secs, note in rows:
        print(f"{name:{width}s}  {secs:7.2f}  {note}")


if __name__ == "__main__":
    main()
