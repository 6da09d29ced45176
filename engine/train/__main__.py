"""python -m engine.train {ladder,verifiers,evaluate,ship} [--quick] [--out DIR] [--only NAME,...] [--jobs J]
       python -m engine.train verifiers [--device cuda] [--jobs J] [--out DIR] [--cache FILE]

ladder: train the shipped models; verifiers: train the ORM and PRM (recipe v2, the
shipped one; --recipe v1 is the first, weaker recipe) into OUT/verifiers; evaluate:
measure the shipped ladder on the test set (500 problems x 64 samples) and check the
claims it makes, writing data/models/ladder_eval.json; ship: write that evaluation's
samples and verifier scores to data/sweeps/ (what a new cache starts with).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EngineError

MODELS_DIR = Path(__file__).resolve().parents[2] / "data" / "models"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["ladder", "verifiers", "evaluate", "ship"])
    ap.add_argument("--quick", action="store_true", help="miniature models in seconds (for tests)")
    ap.add_argument("--out", type=Path, default=MODELS_DIR, help="where model dirs go (default data/models)")
    ap.add_argument("--only", default="", help="comma-separated subset of names")
    ap.add_argument("--jobs", type=int, default=0,
                    help="evaluate, verifiers v2: sampling processes, one thread each (evaluate default: cores, at most 4; v2: 1)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="evaluate, ship: DuckDB file (default cache/samples.duckdb); verifiers v2: the training-sample cache (default OUT/verifiers/train_samples.duckdb)")
    ap.add_argument("--recipe", choices=["v1", "v2"], default="v2",
                    help="verifiers: v2 (default, the shipped ones: many samples per problem, pairwise within a "
                         "problem, from arith-xl's weights; see engine/train/verifiers_v2.py) or v1 (the first recipe)")
    ap.add_argument("--preset", choices=["cpu", "gpu", "quick"], default=None,
                    help="verifiers v2: data and batch sizes (default: gpu with --device cuda, else cpu)")
    ap.add_argument("--device", default="cpu", help="verifiers v2: cpu or cuda")
    ap.add_argument("--problems", type=int, default=None, help="verifiers v2: override the preset's problem count")
    ap.add_argument("--samples", type=int, default=None, help="verifiers v2: override samples per problem per model")
    ap.add_argument("--epochs", type=int, default=None, help="verifiers v2: override the preset's epochs")
    ap.add_argument("--sample-device", default="cpu",
                    help="verifiers v2: where the ladder samples (default cpu; with --jobs J, J one-thread processes)")
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
            import json

            from .. import scorers
            from ..analysis.corruptions import wins
            from ..analysis.scorer_quality import scorer_quality
            from ..cache import DEFAULT_PATH, SampleCache
            from ..experiment import Experiment
            from ..models import list_shipped
            from ..shipped import GOLD_FILE, QUALITY_FILE, SWEEPS_DIR, write, write_gold, write_quality
            from ..tasks import get_task
            cache = SampleCache(args.cache or DEFAULT_PATH)
            man = write(cache)
            print(f"wrote {man['samples']:,} samples and {man['scores']:,} scores to {SWEEPS_DIR}")
            q = scorer_quality(cache, Experiment.shipped(), scorers.available())
            write_quality(json.loads(q.to_json(orient="records")))  # via JSON: plain numbers, NaN as null
            print(f"wrote each scorer's quality on them to {SWEEPS_DIR / QUALITY_FILE}")
            task = get_task(man["task"])
            write_gold(wins(task, scorers.available(), task.problems, models=list_shipped()), task)
            print(f"wrote each scorer's gold-vs-corrupted results to {SWEEPS_DIR / GOLD_FILE}")
        elif args.recipe == "v2":
            from .verifiers_v2 import train_verifiers_v2
            preset = "quick" if args.quick else args.preset or ("gpu" if args.device.startswith("cuda") else "cpu")
            # orm/ and prm/ go to OUT/verifiers, as v1's do; the ladder models are the shipped ones
            train_verifiers_v2(args.out / "verifiers", MODELS_DIR, preset=preset,
                               device=args.device, cache_path=args.cache, problems=args.problems,
                               samples=args.samples, epochs=args.epochs, jobs=max(1, args.jobs),
                               sample_device=args.sample_device)
        else:
            from .verifiers import train_verifiers
            train_verifiers(args.out, quick=args.quick)
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
