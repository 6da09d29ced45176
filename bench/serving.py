"""Sampling over HTTP against in process, measured side by side in one run (not a test):

    python bench/serving.py [--problems 50] [--n 16]

Starts `python -m engine serve --models arith-s` on a free port (its own process, one thread) and sweeps
the same selection into fresh caches three ways: in process; over HTTP with the indices extension (one
request of n samples per problem, what `engine serve` offers); over HTTP in seed mode (one request per
sample, what a generic OpenAI server gets). The server and this process share the machine's cores.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--n", type=int, default=16)
    args = ap.parse_args()
    import torch

    from engine.cache import SampleCache
    from engine.models import SamplingParams
    from engine.runner import run
    from engine.tasks import get_task
    torch.set_num_threads(1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--models", "arith-s", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        task = get_task("arith")
        problems, params = task.select(args.problems), SamplingParams(n=args.n)
        print(f"arith-s, {args.problems} problems x {args.n} samples, T=0.8; load average {os.getloadavg()[0]:.2f}")
        with tempfile.TemporaryDirectory() as d:
            for label, model in [("in process", "arith-s"), ("HTTP, indices (n per request)", f"{url}#arith-s"),
                                 ("HTTP, seed mode (1 per request)", f"{url}#arith-s?mode=seed")]:
                res = run(model, task, problems, params, SampleCache(Path(d) / f"{len(label)}.duckdb"))
                print(f"{label:34s} {res.generated / res.elapsed_s:6.1f} samples/s  ({res.elapsed_s:.1f} s)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
