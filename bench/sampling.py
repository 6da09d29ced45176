"""Throughput of the sampler: n samples as one shared-prefix batch vs one at a time.

Prints ratios measured in one run (this machine is noisy, absolute numbers less so):
    python bench/sampling.py [--model arith-m] [--n 64] [--problems 5]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.models import SamplingParams, load_model, sample  # noqa: E402
from engine.tasks import get_task  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="arith-m")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--problems", type=int, default=5)
    a = ap.parse_args()
    lm = load_model(a.model)
    task = get_task("arith")
    probs = task.select(a.problems, [1, 2, 3, 4, 5])
    sp = SamplingParams(n=a.n, temperature=0.8, max_new_tokens=128, stop=task.stop)
    sample(lm, task.prompt(probs[0]), sp, [0], "warmup")
    timings = {}
    for label, batch in (("batched", a.n), ("batch=8", 8), ("one-at-a-time", 1)):
        t0 = time.perf_counter()
        toks = 0
        for p in probs:
            out = sample(lm, task.prompt(p), sp, list(range(a.n)), f"bench/{p.id}", max_batch=batch)
            toks += sum(s.completion_tokens for s in out)
        timings[label] = (time.perf_counter() - t0, toks)
    base = timings["one-at-a-time"][0]
    print(f"model {a.model} ({lm.spec.params:,} params, {lm.spec.device}), {a.problems} problems x {a.n} samples")
    for label, (secs, toks) in timings.items():
        print(f"{label:>14}: {a.problems * a.n / secs:7.1f} samples/s  {toks / secs:8.0f} tokens/s  "
              f"speedup x{base / secs:.1f}")


if __name__ == "__main__":
    main()
