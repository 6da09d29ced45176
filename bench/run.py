"""Every speed benchmark, measured side by side in one run, with the target each is held to (not pass/fail
tests; run on a quiet machine):

    python bench/run.py              # about a minute on 2 cores
    python bench/run.py --ladder     # and the app-sized top-up and the whole ladder (about 2 minutes more)

1. sampling: engine tokens/s against plain ``generate(num_return_sequences=64)``, arith-s and arith-xl,
   16 problems x 64 samples (the engine's sampling as the runner calls it, and a whole run with its grading and
   cache writes), and its FLOP/s (2 x params per generated token) against a 1024-square fp32
   matmul measured in the same run (bench/sampling.py has the naive loop and the busy-core test);
2. curves: every default strategy's curves (k = 1..64, bands) for the shipped sweeps (4 models x 500
   problems x 64 samples), with verifier scores already cached, and for 1M synthetic samples (bench/curves.py
   says where the time goes);
3. app: the first render of Explore on a new cache (the shipped sweeps load on the way), in a new process
   (imports included) and in this one, a re-render with everything cached, and every other page's first visit
   after that, through Streamlit's AppTest;
4. top-up: n=16 then topped up to 64 against a fresh n=64, arith-xl on 32 problems, in the process that ran
   the 16 (the app's case: it keeps what that run computed, engine/models/prefix.py) and in a new one;
5. with --ladder: the top-up on arith-xl's 500 problems (the app's default size), and sampling the whole ladder
   (4 models x 500 problems x 64) into an empty cache, 2 processes.
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


def bench_sampling(tmp: Path) -> list[tuple[str, float, str]]:
    from bench.sampling import engine_run, engine_sample, hf_generate, peak_gflops
    from engine.cache import SampleCache
    from engine.models import SamplingParams, load_model
    from engine.runner import run
    from engine.tasks import get_task
    task = get_task("arith")
    probs = task.select(16, [1, 2, 3, 4, 5])
    sp = SamplingParams(n=64, temperature=0.8, max_new_tokens=128, stop=task.stop)
    rows, peak = [], peak_gflops(repeat=3)
    for name, target in (("arith-s", 5), ("arith-xl", 3)):
        lm = load_model(name)
        run(name, task, probs[:2], sp.with_n(8), SampleCache(tmp / f"warm-{name}.duckdb"))
        secs, toks, computed = engine_sample(name, task, probs, sp, repeat=3)
        s_a, t_a = hf_generate(lm, task, probs, sp, per_call=64)
        s_r, t_r = engine_run(name, task, probs, sp, tmp, repeat=3)
        base = t_a / s_a
        share = toks / secs * 2 * lm.spec.matmul_params / 1e9 / peak   # 2 x params per generated token
        done = computed * 2 * lm.spec.matmul_params / secs / 1e9 / peak  # per row really computed
        rows.append((f"sampling {name}, 16 problems x 64: engine (fastest of 3)", secs,
                     f"{toks / secs:,.0f} tokens/s, {toks / secs / base:.1f}x generate(num_return_sequences=64) "
                     f"({base:,.0f}); target >= {target}x; {share:.1%} of a {peak:.0f} GFLOP/s matmul (best of 3)"
                     + ("; target >= 50%" if name == "arith-xl" else "")
                     + f"; counting every generated token at 2 x params (computed: {computed / toks:.2f} "
                       f"rows a token, {done:.1%})"))
        rows.append((f"  the same as a run: also graded, written to a new DuckDB cache", s_r,
                     f"{t_r / s_r:,.0f} tokens/s, {t_r / s_r / base:.1f}x generate"))
    return rows


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
    from bench.curves import KS, strategy_curves, synthetic
    from engine import strategies
    df = synthetic(1_000_000)
    big = sum(timed(lambda: strategy_curves(strategies.get(spec), df, KS))[0] * times
              for spec, times in (("oracle", 1), ("majority", 1), ("best_of_n:s", 3), ("weighted_majority:s", 1)))
    return [("shipped sweeps into a new cache", load_s, "128k samples + 256k scores"),
            (f"curves, 6 strategies x 7 k, {n:,} samples (first call)", first, "end to end: reads, costs, bands"),
            ("curves, same again (verifiers loaded)", again, "target: < 1 s"),
            ("curves of the same 6 strategies, 1M synthetic samples", big, "target: < 8 s")]


COLD = """
import os, sys, time
os.environ["TTC_SHIPPED"] = "1"
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=300)
at.session_state["cache"] = sys.argv[1]
at.run()
print(time.perf_counter() - t0, len(at.get("plotly_chart")), len(at.exception))
"""


def bench_app(tmp: Path) -> list[tuple[str, float, str]]:
    import subprocess
    from streamlit.testing.v1 import AppTest
    os.environ["TTC_SHIPPED"] = "1"
    # what a new server's first visitor waits for: imports included (torch and transformers are not needed)
    out = subprocess.run([sys.executable, "-c", COLD, str(tmp / "cold" / "samples.duckdb")], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    cold_process = [("app: first render of Explore in a new process (imports, shipped sweeps load)", float(out[0]),
                     f"{out[1]} charts, {out[2]} errors; target: < 4 s")]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["cache"] = str(tmp / "app" / "samples.duckdb")
    cold, _ = timed(at.run)
    charts = len(at.get("plotly_chart"))
    warm, _ = timed(at.run)
    rows = cold_process + [(f"app: first render of Explore on a new cache ({charts} charts), this process", cold,
                            "shipped sweeps load; target: < 4 s"),
            ("app: re-render, everything cached", warm, "target: < 0.5 s")]
    # every other page's first visit after that (imports and the sweeps already in: what its own work costs)
    for page in ("size_vs_compute", "inspector", "verifiers", "allocation", "planner", "models_data"):
        at.switch_page(f"pages/{page}.py")
        secs, _ = timed(at.run)
        errors = len(at.exception)
        rows.append((f"app: first visit of {page}", secs, f"{len(at.get('plotly_chart'))} charts"
                     + (f", {errors} errors" if errors else "")))
    return rows


def _topup_runs(tmp: Path, problems: int):
    """A timer of arith-xl runs at T=0.8 on ``problems`` problems: ``timed_run(cache, n, keep)`` times a run of n
    samples into ``cache`` (``keep``: with what this process's earlier runs kept for a top-up, the app's case;
    else without, as in a new process), and the loaded model."""
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import SamplingParams, load_model, prefix
    from engine.runner import run
    exp = Experiment.build(["arith-xl"], "arith", SamplingParams(n=64, temperature=0.8), problems=problems)
    task, probs = exp.load_task(), exp.selected()
    run(exp.models[0], task, probs[:1], exp.params.with_n(4), SampleCache(tmp / "warm.duckdb"))  # load the model
    model = load_model(exp.models[0].source).model

    def timed_run(cache: str, n: int, keep: bool = False) -> float:
        if not keep:
            prefix.forget(model)
        return timed(lambda: run(exp.models[0], task, probs, exp.params.with_n(n), SampleCache(tmp / cache)))[0]
    return timed_run, model


def bench_topup(tmp: Path) -> list[tuple[str, float, str]]:
    timed_run, _ = _topup_runs(tmp, 32)

    def fastest(*runs) -> list[float]:
        """Each step's fastest of three rounds, each round into new caches (single runs of about a second
        moved by 10% from one to the next)."""
        best = None
        for r in range(3):
            secs = [timed_run(f"{r}-{cache}", n, keep) for cache, n, keep in runs]
            best = secs if best is None else [min(a, b) for a, b in zip(best, secs)]
        return best
    fresh, = fastest(("a.duckdb", 64, False))
    part, top = fastest(("b.duckdb", 16, False), ("b.duckdb", 64, True))  # the app's case: this process ran the 16
    _, cold = fastest(("c.duckdb", 16, False), ("c.duckdb", 64, False))  # the CLI's: a new process, texts cached
    only, = fastest(("d.duckdb", 48, False))  # as many new samples as the top-up draws, nothing cached
    return [("fresh n=64, arith-xl, 32 problems (fastest of 3)", fresh, ""),
            ("the top-up alone: 16 -> 64, in the process that ran the 16", top,
             f"{top / fresh:.2f}x the fresh run (48/64 = 0.75x the samples); target: <= 0.8x"),
            ("n=16, then topped up to 64, in one process", part + top, f"{(part + top) / fresh:.2f}x the fresh run"),
            ("the top-up alone, in a new process (only texts cached)", cold,
             f"{cold / fresh:.2f}x the fresh run; {cold / only:.2f}x a fresh run of the 48 samples it adds"),
            ("fresh n=48 (as many samples as the top-up adds)", only, f"{only / fresh:.2f}x the fresh 64")]


def bench_topup_app(tmp: Path) -> list[tuple[str, float, str]]:
    """The top-up at the app's default size, arith-xl on all 500 problems (one round each: about a minute)."""
    from engine.models import prefix
    timed_run, model = _topup_runs(tmp, 500)
    fresh = timed_run("app-a.duckdb", 64)
    timed_run("app-b.duckdb", 16)
    top = timed_run("app-b.duckdb", 64, keep=True)
    return [("fresh n=64, arith-xl, 500 problems", fresh, ""),
            ("the top-up alone: 16 -> 64, 500 problems, in the process that ran the 16", top,
             f"{top / fresh:.2f}x the fresh run; {prefix.held(model):,} nodes kept "
             f"({prefix.budget() / 2 ** 20:.0f} MB budget)")]


def bench_ladder(tmp: Path) -> list[tuple[str, float, str]]:
    """What ``python -m engine.train evaluate`` samples, into an empty cache (without rewriting its record)."""
    from engine.models import list_shipped
    from engine.train.evaluate import EvalSettings, default_jobs, sweep
    jobs = default_jobs()
    secs, _ = timed(lambda: sweep(list_shipped(), tmp / "ladder.duckdb", EvalSettings(), jobs=jobs, progress=False))
    return [(f"the ladder, 4 models x 500 problems x 64, empty cache, {jobs} processes", secs, "target: <= 90 s")]


def main() -> None:
    import argparse

    import torch
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ladder", action="store_true",
                    help="also the top-up on 500 problems and the whole ladder into an empty cache")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with tempfile.TemporaryDirectory() as d:
        rows = []
        for bench in (bench_sampling, bench_curves, bench_app, bench_topup) + \
                ((bench_topup_app, bench_ladder) if args.ladder else ()):
            rows += bench(Path(d))
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':{width}s}  seconds  note")
    for name, secs, note in rows:
        print(f"{name:{width}s}  {secs:7.2f}  {note}")


if __name__ == "__main__":
    main()
