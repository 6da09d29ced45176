"""python -m engine.train {ladder,verifiers} [--quick] [--out DIR] [--only NAME,...]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EngineError

MODELS_DIR = Path(__file__).resolve().parents[2] / "data" / "models"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__)
    ap.add_argument("what", choices=["ladder", "verifiers"])
    ap.add_argument("--quick", action="store_true", help="miniature models in seconds (for tests)")
    ap.add_argument("--out", type=Path, default=MODELS_DIR, help="where model dirs go (default data/models)")
    ap.add_argument("--only", default="", help="comma-separated subset of names")
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
        else:
            from .verifiers import train_verifiers
            train_verifiers(args.out, quick=args.quick)
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
