"""python -m engine.train {ladder,verifiers,evaluate,ship} [--quick] [--out DIR] [--only NAME,...] [--jobs J]

ladder: train the shipped models; verifiers: train the ORM and PRM on their
samples; evaluate: measure the shipped ladder on the test set (500 problems x 64
samples) and check the claims it makes, writing data/models/ladder_eval.json; ship: write that
evaluation's samples and verifier scores to data/sweeps/ (what a new cache starts with).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EngineError

MODELS_DIR = Path(__file__).resolve().parents[2] / "data" / "models"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__)
    ap.add_argument("what", choices=["ladder", "verifiers", "evaluate", "ship"])
    ap.add_argument("--quick", action="store_true", help="miniature models in seconds (for tests)")
    ap.add_argument("--out", type=Path, default=MODELS_DIR, help="where model dirs go (default data/models)")
    ap.add_argument("--only", default="", help="comma-separated subset of names")
    ap.add_argument("--jobs", type=int, default=0,
                    help="evaluate: sampling processes, one thread each (default: cores, at most 4)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="evaluate, ship: DuckDB file (default cache/samples.duckdb)")
    args = ap.parse_args(argv)
    try:
        if args.what == "ladder":
            from .lm import LADDER, quick, train_lm
            recipes = [quick(r) for r in LADDER] if args.quick else LADDER
            if args.only:
                recipes = [r for r in recipes if r.name in args.only.split(",")]
            for r in recipes:
                rec = train_lm(r, args.out / r.name)
                print(f"{r.name}: {rec['params']:,} params, {rec['training_tokens']:,} tokens, "
                      f"loss {rec['final_loss']}, {rec['wall_time_s']}s")
        elif args.what == "evaluate":
            from ..cache import DEFAULT_PATH
            from .evaluate import EVAL_FILE, default_jobs, evaluate, print_result
            result = evaluate(EVAL_FILE, args.cache or DEFAULT_PATH, jobs=args.jobs or default_jobs())
            print_result(result)
            print(f"wrote {EVAL_FILE}")
        elif args.what == "ship":
            from ..cache import DEFAULT_PATH, SampleCache
            from ..shipped import SWEEPS_DIR, write
            man = write(SampleCache(args.cache or DEFAULT_PATH))
            print(f"wrote {man['samples']:,} samples and {man['scores']:,} scores to {SWEEPS_DIR}")
        else:
            from .verifiers import train_verifiers
            train_verifiers(args.out, quick=args.quick)
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
