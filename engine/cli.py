"""Command line: ``python -m engine {sweep,report,models,tasks,stats,export,clear}``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import EngineError

DEFAULT_MODELS = "ladder"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one readable line, not a usage dump
        print(f"error: {message} (see `python -m engine {self.prog.split()[-1]} --help`)", file=sys.stderr)
        sys.exit(2)


def _models(arg: str) -> list[str]:
    from .models import list_shipped
    if arg == "ladder":
        names = list_shipped()
        if not names:
            raise EngineError("no shipped models found under data/models; pass --models DIR[,DIR]")
        return names
    names = [m.strip() for m in arg.split(",") if m.strip()]
    if not names:
        raise EngineError(f"--models names no model ({arg!r}): give shipped names, directories or hub ids, "
                          "comma-separated, or 'ladder'")
    return names


def _writable(path: Path | None, flag: str) -> None:
    """Fail before any work when an output file could not be written."""
    if path is not None and not Path(path).expanduser().resolve().parent.is_dir():
        raise EngineError(f"{flag} {path}: the folder {Path(path).parent} does not exist")


def _common(p):
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help="comma-separated shipped names, model dirs or hub ids; 'ladder' = all shipped (default)")
    p.add_argument("--task", default="arith", help="task name or path to a .jsonl/.csv dataset (default arith)")
    p.add_argument("--problems", type=int, default=100, help="how many problems (default 100)")
    p.add_argument("--levels", default="", help="difficulty levels, e.g. 1,2,3 (default all)")
    p.add_argument("--n", type=int, default=64, help="samples per problem (default 64)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=None, help="DuckDB file (default cache/samples.duckdb)")


def _experiment(args):
    """The flags as one ``Experiment`` (models resolved, the task's stop strings applied)."""
    from .compute import CostModel
    from .experiment import Experiment
    from .hardware import MEASURED
    from .models import SamplingParams
    try:
        levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        raise EngineError(f"--levels must be comma-separated integers, got {args.levels!r}") from None
    if args.problems < 1:
        raise EngineError(f"--problems must be at least 1, got {args.problems}")
    params = SamplingParams(n=args.n, temperature=args.temperature, top_p=args.top_p,
                            max_new_tokens=args.max_new_tokens, seed=args.seed)
    strategies = [s for s in getattr(args, "strategy", "oracle").split(",") if s.strip()]
    cost = CostModel(hardware=getattr(args, "hardware", None) or MEASURED, prefix_cache=getattr(args, "prefix_cache", True))
    exp = Experiment.build(_models(args.models), args.task, params, args.problems, levels, strategies, cost)
    exp.selected()  # fails early, with a message, on levels the task lacks
    return exp


def _cache(args):
    from .cache import DEFAULT_PATH, SampleCache
    return SampleCache(args.cache or DEFAULT_PATH)


def cmd_sweep(args) -> int:
    from tqdm import tqdm

    from .runner import run
    exp = _experiment(args)
    task, problems, params = exp.load_task(), exp.selected(), exp.params
    cache = _cache(args)
    for model in exp.models:
        bars = []  # created on first progress so a model that fails to load prints only its error

        def on_progress(p, bars=bars, model=model):
            if not bars:
                bars.append(tqdm(desc=model.name, unit="sample", total=p.total, dynamic_ncols=True))
            bars[0].set_postfix(cached=p.cached, refresh=False)
            bars[0].update(p.done - bars[0].n)
        res = run(model, task, problems, params, cache, max_batch=args.batch, device=args.device,
                  on_progress=on_progress)
        if bars:
            bars[0].close()
        print(f"{model.name}: generated {res.generated}, already cached {res.cached}, "
              f"{res.elapsed_s:.1f}s ({res.generated / max(res.elapsed_s, 1e-9):.0f} samples/s)")
    return 0


def cmd_report(args) -> int:
    import pandas as pd

    from .results import report, report_by_level
    _writable(args.csv, "--csv")
    _writable(args.curves, "--curves")
    exp = _experiment(args)
    task, problems, params, cache = exp.load_task(), exp.selected(), exp.params, _cache(args)
    try:
        ks = sorted({int(k) for k in args.k.split(",") if k.strip()})
    except ValueError:
        raise EngineError(f"--k must be comma-separated integers, got {args.k!r}") from None
    if not ks or ks[0] < 1:
        raise EngineError(f"--k values must be at least 1, got {args.k!r}")
    df = report(cache, exp.models, task, problems, params, ks=ks)
    short = False
    for r in df.itertuples():  # say what was asked and not measured, instead of dropping it quietly
        if r.problems < len(problems) or r.n < params.n:
            short = True
            print(f"note: {r.model}: {r.problems} of {len(problems)} problems and {r.n} of {params.n} samples per "
                  "problem are cached; the table uses what is there (`python -m engine sweep` fills the rest)",
                  file=sys.stderr)
    skipped = [k for k in ks if k > int(df["n"].min())]
    if skipped:
        print(f"note: k={','.join(map(str, skipped))} skipped: only {int(df['n'].min())} samples per problem",
              file=sys.stderr)
    cols = ["model", "params", "problems", "n"] + [c for c in df.columns if c.startswith("pass@") and "_" not in c] \
        + ["completion_tokens_mean", "flops_per_sample", "device_s_total"]
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(df[cols].to_string(index=False))
    if args.by_level:
        for k in ks:
            lv = report_by_level(cache, exp.models, task, problems, params, k=k)
            if not lv.empty and k <= params.n:
                print(f"\npass@{k} by difficulty level")
                print(lv.to_string(float_format="{:.3f}".format))
    if exp.strategies != ("oracle",) or args.curves:
        from tqdm import tqdm

        from .analysis import curves, verdict
        bars: dict = {}

        def scoring(what, done, total):  # a bar per (model, scorer) that has samples to score
            bar = bars.get(what) or bars.setdefault(what, tqdm(desc=what, total=total, unit="problem"))
            bar.update(done - bar.n)
            if done == total:
                bar.close()
        cv = curves(cache, exp, ks=[k for k in ks if k <= params.n], on_progress=scoring)
        table = cv.pivot_table(index=["model", "strategy"], columns="k", values="accuracy", sort=False)
        table.columns = [f"acc@{k}" for k in table.columns]
        print("\naccuracy by selection strategy (exact expectation over k-subsets of the cached samples); "
              f"costs in --curves and the verdict: {exp.cost.hardware}, FLOPs with the prompt counted "
              f"{'once per problem (prefix caching)' if exp.cost.prefix_cache else 'once per sample'}")
        print(table.to_string(float_format="{:.3f}".format))
        v = verdict(cv)
        if v["headline"]:
            lines = [v["headline"]] + v["lines"] + ([v["coverage"]] if v["coverage"] else [])
            print("\nverdict: " + "\n  ".join(lines).replace("**", ""))
        if args.curves:
            cv.to_csv(args.curves, index=False)
            print(f"wrote {args.curves}")
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if short and args.strict:
        print("error: --strict: fewer problems or samples are cached than asked (see the notes above)",
              file=sys.stderr)
        return 3
    return 0


def cmd_models(args) -> int:
    from .models.loader import list_shipped, shipped_dir, training_record
    for kind in ("lm", "verifier"):
        for name in list_shipped(kind):
            d = shipped_dir(name, kind)
            rec = training_record(d)
            print(f"{name:16s} {kind:9s} {rec.get('params', 0):>10,} params  "
                  f"{rec.get('training_flops', 0):.2e} train FLOPs  {d}")
    return 0


def cmd_scorers(args) -> int:
    import pandas as pd

    from . import scorers
    from .analysis.scorer_quality import scorer_quality
    exp = _experiment(args)
    names = [n.strip() for n in args.scorer.split(",") if n.strip()] or scorers.available()
    q = scorer_quality(_cache(args), exp, names)
    if q.empty:
        raise EngineError("no cached samples for these models and settings; run `python -m engine sweep` first")
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(q.to_string(index=False))
    print("\nwithin_problem_auroc: chance that a right sample outscores a wrong one of the same problem "
          "(what best-of-N needs; 0.5 = guessing), over problems with both")
    return 0


def cmd_import_shipped(args) -> int:
    from . import shipped
    done = shipped.import_into(_cache(args))
    if done["stale"]:
        raise EngineError(f"the shipped sweeps are out of date for {', '.join(done['stale'])} (model files changed); "
                          "rerun `python -m engine.train evaluate` and `python -m engine.train ship`")
    print(f"imported {done['samples']:,} samples and {done['scores']:,} verifier scores "
          f"({'already there' if not done['samples'] and not done['scores'] else 'new'})")
    return 0


def cmd_strategies(args) -> int:
    from . import scorers, strategies
    for cls in strategies.kinds():
        print(f"{cls.name + (':SCORER' if cls.uses_scorer else ''):26s} {cls.help}")
    print("\nscorers: " + ", ".join(scorers.available()) + " (or the path of a verifier directory)")
    return 0


def cmd_tasks(args) -> int:
    from .tasks import get_task, list_tasks
    for name in list_tasks():
        t = get_task(name)
        print(f"{name}: {len(t.problems)} problems from {t.source}")
    return 0


def cmd_stats(args) -> int:
    cache = _cache(args)
    df = cache.stats()
    print(df.to_string(index=False) if not df.empty else "cache is empty")
    print(f"{cache.path}: {cache.size_bytes() / 1e6:.1f} MB")
    return 0


def cmd_export(args) -> int:
    import pandas as pd

    from .results import load_samples
    _writable(args.out, "--out")
    exp = _experiment(args)
    cache = _cache(args)
    df = pd.concat([load_samples(cache, m, exp.load_task(), exp.selected(), exp.params) for m in exp.models])
    cache.export(df, args.out)
    print(f"wrote {len(df)} samples to {args.out}")
    return 0


def cmd_clear(args) -> int:
    from .models.ref import resolve_model
    cache = _cache(args)
    fp = resolve_model(args.model).fingerprint if args.model else None
    if not args.yes:
        raise EngineError("clear deletes cached samples; add --yes to confirm")
    n = cache.clear(model_fp=fp, task=args.task)
    print(f"deleted {n} samples")
    return 0


def build_parser():
    ap = _Parser(prog="python -m engine", description="Model size vs test-time compute: sampling engine")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    p = sub.add_parser("sweep", help="fill the cache with samples (resumable)")
    _common(p)
    p.add_argument("--batch", type=int, default=64, help="max rows decoded at once (memory cap)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.set_defaults(fn=cmd_sweep)
    p = sub.add_parser("report", help="pass@k, tokens, FLOPs and time per model")
    _common(p)
    p.add_argument("--k", default="1,8,64", help="k values (default 1,8,64; those above n are skipped)")
    p.add_argument("--csv", type=Path, default=None, help="also write the table to this CSV")
    p.add_argument("--by-level", action="store_true", help="also print pass@k per difficulty level")
    p.add_argument("--strategy", default="oracle",
                   help="selection strategies to compare, comma-separated; a strategy that reads scores names "
                        "its scorer after a colon, e.g. oracle,majority,best_of_n:orm,weighted_majority:prm-min "
                        "(`python -m engine strategies` lists them)")
    p.add_argument("--hardware", default=None,
                   help="cost curves on a projected accelerator instead of measured time, e.g. 'NVIDIA H100 SXM' "
                        "(see engine/hardware.py)")
    p.add_argument("--strict", action="store_true",
                   help="exit with status 3 when fewer problems or samples are cached than asked")
    p.add_argument("--no-prefix-cache", dest="prefix_cache", action="store_false",
                   help="count each problem's prompt once per sample instead of once per problem")
    p.add_argument("--curves", type=Path, default=None,
                   help="write every curve point (what the app plots: accuracy, CI and costs per model, "
                        "strategy and k) to this CSV")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("scorers", help="how well each scorer ranks cached samples (pooled and within a problem)")
    _common(p)
    p.add_argument("--scorer", default="", help="comma-separated scorers (default: every available one)")
    p.set_defaults(fn=cmd_scorers)
    p = sub.add_parser("export", help="write cached samples to .parquet or .csv")
    _common(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(fn=cmd_export)
    simple = [("models", "list shipped models and verifiers", cmd_models, False),
              ("import-shipped", "load the shipped ladder sweeps (data/sweeps) into the cache", cmd_import_shipped,
               True),
              ("strategies", "list selection strategies and scorers", cmd_strategies, False),
              ("tasks", "list built-in tasks", cmd_tasks, False),
              ("stats", "what the cache holds", cmd_stats, True)]
    for name, text, fn, takes_cache in simple:
        p = sub.add_parser(name, help=text)
        if takes_cache:
            p.add_argument("--cache", type=Path, default=None)
        p.set_defaults(fn=fn)
    p = sub.add_parser("clear", help="delete cached samples of one model and/or task")
    p.add_argument("--model", default=None)
    p.add_argument("--task", default=None)
    p.add_argument("--yes", action="store_true")
    p.add_argument("--cache", type=Path, default=None)
    p.set_defaults(fn=cmd_clear)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished batches are cached; rerun the same command to resume", file=sys.stderr)
        return 130
