"""How often regenerating a shipped sample gives a different text when the arithmetic runs differently.

The shipped sweeps (data/sweeps) were sampled with one torch thread per process on a 2-core CPU. Another
thread count changes the order of floating-point reductions in matmuls, as other hardware does; a sample
changes only where that moves a token's probability across its seeded uniform draw (a near-tie). This
regenerates the first ``--problems`` problems x ``--n`` samples of each model with ``--threads`` threads and
counts the samples whose text differs from the shipped one:

    python bench/reproducibility.py --threads 2 --problems 50 --n 64
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
    from engine import shipped
    from engine.backends import open_backend
    from engine.experiment import Experiment
    from engine.models import SamplingParams
    ship = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SAMPLES_FILE)
    print(f"torch threads: {torch.get_num_threads()} (shipped: 1); {a.problems} problems x {a.n} samples per model")
    for name in a.models.split(","):
        exp = Experiment.build([name], "arith", SamplingParams(n=a.n, temperature=0.8), problems=a.problems)
        task, backend = exp.load_task(), open_backend(exp.models[0], device="cpu")
        mine = ship[ship.model_fp == exp.models[0].fingerprint].set_index(["problem_id", "idx"]).text
        differ = total = 0
        t0 = time.perf_counter()
        for p in exp.selected():
            for r in backend.generate(task.prompt(p), exp.params, range(a.n), prompt_key=f"{task.name}/{p.id}"):
                total += 1
                differ += r.text != mine[(p.id, r.index)]
        print(f"{name:9s} {differ} of {total} samples differ ({differ / total:.3%}) in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
