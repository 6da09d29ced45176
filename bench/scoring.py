"""How fast the shipped verifiers score samples on this machine, in FLOP/s (not a test):

    python bench/scoring.py [--samples 2048] [--record]

Scores random shipped samples with each shipped verifier as the engine does (batched across problems, sorted by
length) and counts what the cost model charges for it: 2 x verifier params x the sample's tokens (prompt +
completion). ``--record`` writes the rate into each verifier's training record (``scoring``), where the cost
model reads it: the time of a scorer's FLOPs is then its own measured rate, as a model's sampling time is the
one measured when it sampled.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    import pandas as pd
    import torch

    from engine import shipped
    from engine.models.loader import RECORD_FILE
    from engine.tasks import get_task
    from engine.verifiers import VERIFIERS_DIR, describe, load_verifier, shipped_verifiers
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--record", action="store_true", help="write each rate into the verifier's training record")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    df = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SAMPLES_FILE).sample(args.samples, random_state=0)
    task = get_task("arith")
    by_id = task.by_id()
    prompts = [task.prompt(by_id[p]) for p in df["problem_id"]]
    texts = df["text"].fillna("").tolist()
    tokens = int((df["prompt_tokens"] + df["completion_tokens"]).sum())
    for name in shipped_verifiers():
        v = load_verifier(name, device="cpu")
        run = v.step_scores_many if v.kind == "prm" else v.score_many
        run(prompts[:64], texts[:64])  # warm up
        t0 = time.perf_counter()
        run(prompts, texts)
        secs = time.perf_counter() - t0
        params = describe(name).params
        rate = 2.0 * params * tokens / secs
        print(f"{name}: {len(texts):,} samples in {secs:.2f} s = {len(texts) / secs:,.0f} samples/s, "
              f"{rate / 1e9:.2f} GFLOP/s (2 x {params:,} params x {tokens:,} tokens)")
        if args.record:
            path = VERIFIERS_DIR / name / RECORD_FILE
            rec = json.loads(path.read_text())
            rec["scoring"] = {"flops_per_s": round(rate), "device": "cpu", "threads": torch.get_num_threads(),
                              "samples": len(texts), "date": datetime.date.today().isoformat(),
                              "command": "python bench/scoring.py --record"}
            path.write_text(json.dumps(rec, indent=2) + "\n")
            print(f"  recorded in {path}")


if __name__ == "__main__":
    main()
