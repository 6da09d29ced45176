"""How fast curves are, and where the time goes (issue 12, "curves in a blink"):

    OMP_NUM_THREADS=1 python bench/curves.py            # shipped sweeps, then 10k / 100k / 1M synthetic samples
    OMP_NUM_THREADS=1 python bench/curves.py --max 100000 --repeat 3

1. the shipped sweeps (4 models x 500 problems x 64 samples, scores cached in a temp cache made with
   ``engine.shipped.import_into``, as bench/run.py does): seconds to read the samples from DuckDB, to read
   each scorer's cached scores, and to compute each strategy's curves (k = 1, 2, 4 .. 64, with Monte Carlo
   errors) from what was read, and the bootstrap bands; then ``analysis.curves`` end to end, which is all of
   these (target: under 1 s);
2. synthetic pools (problems x 64 samples: random answers, a random correct one, random scores) of 10k,
   100k and 1M samples: seconds per strategy, to show how the time grows.
Not a pass/fail test; run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SPECS = ["oracle", "majority", "best_of_n:orm", "best_of_n:prm-min", "best_of_n:self-likelihood",
         "weighted_majority:orm"]
KS = [1, 2, 4, 8, 16, 32, 64]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def strategy_curves(strat, df, ks):
    """[problems, len(ks)] accuracy and error, by whatever the engine at hand offers."""
    from engine import strategies
    if hasattr(strategies, "block_curves"):
        return strategies.block_curves(strat, df, ks)
    out = [strat.curve_se(p, ks) for p in strategies.Pool.per_problem(df)]  # before issue 12: a loop
    return np.vstack([v for v, _ in out]), np.vstack([e for _, e in out])


def shipped(tmp: Path, repeat: int) -> None:
    from engine import accounting, analysis, scorers, shipped as ship, strategies
    from engine.analysis.curves import _aggregate
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import SamplingParams, list_shipped
    from engine.results import load_samples, model_info
    cache = SampleCache(tmp / "curves.duckdb")
    load_s, _ = timed(lambda: ship.import_into(cache))
    exp = Experiment.build(list_shipped(), "arith", SamplingParams(n=64, temperature=0.8), problems=500,
                           strategies=SPECS)
    task, problems = exp.load_task(), exp.selected()
    names = sorted({s.partition(":")[2] for s in SPECS if ":" in s})
    print(f"shipped sweeps into a new cache: {load_s:.2f} s")
    for attempt in range(repeat):
        # the steps of analysis.curves one at a time, as curves.blocks takes them
        read, scored, frames, infos = 0.0, {}, {}, {}
        for ref in exp.models:
            with cache.reading():
                secs, df = timed(lambda: load_samples(cache, ref, task, problems, exp.params)
                                 .sort_values(["problem_id", "idx"], kind="stable").reset_index(drop=True))
                read += secs
                frames[(ref.name, None)], infos[ref.name] = df, model_info(cache, ref)
                for name in names:
                    sc = scorers.get(name)
                    read_scores = getattr(sc, "scores", sc.score)   # curves read scores without step lists
                    secs, sdf = timed(lambda: read_scores(cache, task, df)
                                      .sort_values(["problem_id", "idx"], kind="stable").reset_index(drop=True))
                    scored[name] = scored.get(name, 0.0) + secs
                    frames[(ref.name, name)] = sdf
        n = sum(len(frames[(r.name, None)]) for r in exp.models)
        print(f"\n[{attempt + 1}/{repeat}] {n:,} samples of {len(exp.models)} models")
        print(f"  read samples (DuckDB -> pandas)        {read:7.3f} s")
        for name, secs in scored.items():
            print(f"  read cached scores: {name:20s} {secs:7.3f} s")
        costs, costed = 0.0, {}
        for (model, name), df in frames.items():
            sp = scorers.get(name).params if name else 0
            t0 = time.perf_counter()
            withcost = accounting.per_sample(df, infos[model], exp.cost, sp)
            pp = accounting.per_problem(withcost)
            costed[(model, name)] = withcost, pp, accounting.problem_costs(pp, infos[model], KS, exp.cost, sp)
            costs += time.perf_counter() - t0
        print(f"  costs per sample, per problem, per k   {costs:7.3f} s")
        total, bands = 0.0, 0.0
        for spec in SPECS:
            strat = strategies.get(spec)
            secs = 0.0
            for ref in exp.models:
                df, pp, c = costed[(ref.name, strat.scorer)]
                s, (acc, se) = timed(lambda: strategy_curves(strat, df, KS))
                secs += s
                bands += timed(lambda: _aggregate(acc, se, c, pp["difficulty"].to_numpy(), pp["n"].to_numpy(), KS,
                                                  False, {}, infos[ref.name]))[0]
            total += secs
            print(f"  curves: {spec:30s} {secs:7.3f} s")
        print(f"  curves: all {len(SPECS)} strategies          {total:7.3f} s")
        print(f"  bands and means over problems          {bands:7.3f} s")
        secs, _ = timed(lambda: analysis.curves(cache, exp))
        print(f"  analysis.curves end to end (reads, costs, curves, bands): {secs:.2f} s (issue 12's target: < 1 s)")


def synthetic(total: int, n: int = 64, seed: int = 0) -> pd.DataFrame:
    """``total`` samples, ``n`` per problem: per problem a chance of being right, a few wrong answers with one
    common, 10% without an answer, verifier-like scores in (0, 1) that lean towards the right samples (with
    ties: 2 decimals)."""
    rng = np.random.default_rng(seed)
    p = total // n
    skill = rng.beta(1.0, 1.5, (p, 1))
    u = rng.random((p, n))
    wrong = np.minimum(rng.geometric(0.35, (p, n)), 30)
    code = np.where(u < skill, 0, wrong)
    code = np.where(rng.random((p, n)) < 0.1, -1, code)
    correct = code == 0
    score = np.round(np.clip(rng.normal(0.35 + 0.3 * correct, 0.2), 0.01, 0.99), 2)   # like P(correct)
    answer = pd.array(np.where(code < 0, None, code.astype(str)).ravel(), dtype="string")
    return pd.DataFrame({"problem_id": np.repeat([f"p{i:07d}" for i in range(p)], n), "idx": np.tile(np.arange(n), p),
                         "answer": answer, "correct": correct.ravel(), "score": score.ravel()})


def scaling(sizes, repeat: int) -> None:
    from engine import strategies
    specs = ["oracle", "majority", "best_of_n:s", "weighted_majority:s"]
    print(f"\nsynthetic pools, n=64, k = {KS} (best-of-N stands for all three scorers: same work)")
    print(f"{'samples':>10s} {'problems':>9s}  " + "  ".join(f"{s:>20s}" for s in specs) + f"  {'all 6 (est.)':>12s}")
    for total in sizes:
        df = synthetic(total)
        secs = []
        for spec in specs:
            strat = strategies.get(spec)
            secs.append(min(timed(lambda: strategy_curves(strat, df, KS))[0] for _ in range(repeat)))
        six = secs[0] + secs[1] + 3 * secs[2] + secs[3]
        print(f"{total:10,d} {total // 64:9,d}  " + "  ".join(f"{s:18.3f} s" for s in secs) + f"  {six:10.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max", type=int, default=1_000_000, help="largest synthetic size (samples)")
    ap.add_argument("--repeat", type=int, default=2, help="passes over the shipped sweeps (the first loads "
                                                          "the verifiers)")
    ap.add_argument("--skip-shipped", action="store_true")
    args = ap.parse_args()
    if not args.skip_shipped:
        with tempfile.TemporaryDirectory() as d:
            shipped(Path(d), args.repeat)
    scaling([s for s in (10_000, 100_000, 1_000_000) if s <= args.max], 1)


if __name__ == "__main__":
    main()
