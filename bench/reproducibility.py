"""How often regenerating a shipped sample gives a different text when the arithmetic runs differently.

The shipped sweeps (data/sweeps) were sampled one problem at a time through ``generate``, with one torch
thread per process on a 2-core CPU. The engine now decodes many problems per batch, and another thread count
changes the order of floating-point reductions in matmuls, as other hardware does; a sample changes only
where that moves a token's probability across its seeded uniform draw (a near-tie). This regenerates the
first ``--problems`` problems x ``--n`` samples of each model through the runner (batched as a sweep is) with
``--threads`` threads and counts the samples whose text differs from the shipped one:

    python bench/reproducibility.py --threads 2 --problems 50 --n 64
    python bench/reproducibility.py --threads 1 --problems 500 --models arith-s,arith-m,arith-l,arith-xl
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--models", default="arith-s,arith-xl")
    a = ap.parse_args()
    import pandas as pd
    import torch
    torch.set_num_threads(a.threads)
    import os
    import tempfile
    os.environ["TTC_THREADS"] = str(a.threads)  # what the runner's backend sets torch to
    from engine import shipped
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import SamplingParams
    from engine.runner import run
    ship = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SAMPLES_FILE)
    print(f"torch threads: {a.threads} (shipped: 1); {a.problems} problems x {a.n} samples per model")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            exp = Experiment.build([name], "arith", SamplingParams(n=a.n, temperature=0.8), problems=a.problems)
            cache = SampleCache(f"{tmp}/{name}.duckdb")
            t0 = time.perf_counter()
            run(exp.models[0], exp.load_task(), exp.selected(), exp.params, cache, device="cpu")
            secs = time.perf_counter() - t0
            mine = cache.samples().set_index(["problem_id", "idx"]).text
            theirs = ship[ship.model_fp == exp.models[0].fingerprint].set_index(["problem_id", "idx"]).text
            differ = int((theirs.reindex(mine.index) != mine).sum())
            print(f"{name:9s} {differ} of {len(mine)} samples differ ({differ / len(mine):.3%}) in {secs:.0f} s")


if __name__ == "__main__":
    main()
