"""CUDA graphs in the GPU's decode loop: the same samples, in how much less time (needs a CUDA GPU).

    python bench/cuda_graphs.py [--models arith-s,arith-xl] [--problems 50] [--n 16]

Times ``sample_many`` (the decode alone: no grading, no cache) three ways, the fastest of 2 runs each, in one
process: the eager loop (``decode._decode``, each step's ~225 kernels launched from Python), the graph's
fixed-shape step run eagerly (``STATIC``), and that step captured and replayed as CUDA graphs (the default).
Then checks that replaying gives the eager fixed-shape step's samples bit for bit (tokens, ends and
log-probabilities) and the eager loop's texts.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.models import SamplingParams, decode, load_model  # noqa: E402
from engine.models.sampling import sample_many  # noqa: E402
from engine.tasks import get_task  # noqa: E402

MODES = {"eager loop": dict(CUDA_GRAPHS=False, STATIC=False),
         "fixed-shape step, eager": dict(CUDA_GRAPHS=False, STATIC=True),
         "CUDA graphs": dict(CUDA_GRAPHS=True, STATIC=False)}


def timed(lm, reqs, sp, repeat=2):
    best = out = None
    for _ in range(repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = sample_many(lm, reqs, sp)
        torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        best = secs if best is None else min(best, secs)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="arith-s,arith-xl")
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--n", type=int, default=16)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs a CUDA GPU")
    task = get_task("arith")
    sp = SamplingParams(n=a.n, temperature=0.8, max_new_tokens=128, stop=task.stop)
    reqs = [(task.prompt(p), f"arith/{p.id}", list(range(a.n))) for p in task.select(a.problems, [1, 2, 3, 4, 5])]
    print(f"{torch.cuda.get_device_name()}; {a.problems} problems x {a.n} samples, T=0.8, max 128 new tokens; "
          "sample_many alone, the fastest of 2 runs")
    for name in a.models.split(","):
        lm = load_model(name, device="cuda")
        sample_many(lm, reqs[:4], sp)  # load kernels and the allocator's cache
        outs, base = {}, None
        for mode, flags in MODES.items():
            for k, v in flags.items():
                setattr(decode, k, v)
            secs, outs[mode] = timed(lm, reqs, sp)
            base = base or secs
            toks = sum(s.completion_tokens for o in outs[mode] for s in o)
            print(f"{name:9s} {mode:24s} {secs:6.2f} s {toks / secs:9.0f} tokens/s {base / secs:5.1f}x")
        decode.CUDA_GRAPHS, decode.STATIC = True, False
        pairs = [(x, y) for o, q in zip(outs["CUDA graphs"], outs["fixed-shape step, eager"]) for x, y in zip(o, q)]
        exact = sum((x.tokens, x.finish, x.token_logprobs) == (y.tokens, y.finish, y.token_logprobs) for x, y in pairs)
        texts = sum((x.text, x.finish) == (y.text, y.finish) for o, q in zip(outs["CUDA graphs"], outs["eager loop"])
                    for x, y in zip(o, q))
        print(f"{name}: replayed graphs give the eager fixed-shape step's samples bit for bit for {exact} of "
              f"{len(pairs)}; the eager loop's texts and ends for {texts}")


if __name__ == "__main__":
    main()
