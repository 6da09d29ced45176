"""Command line: ``python -m engine {sweep,report,models,tasks,stats,export,clear}``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import EngineError

DEFAULT_MODELS = "ladder"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one readable line, not a usage dump
        # the top parser also reports a subcommand's unknown flags: point at both helps there
        see = f"`{self.prog} --help`" if self.prog != PROG else f"`{PROG} --help` or `{PROG} COMMAND --help`"
        print(f"error: {message} (see {see})", file=sys.stderr)
        sys.exit(2)


PROG = "python -m engine"


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
                   help="comma-separated shipped names, model dirs, hub ids or servers (URL#MODEL, see README "
                        "'Scaling out'); 'ladder' = all shipped (default)")
    p.add_argument("--task", default="arith", help="arith, gsm, or path to a .jsonl/.csv dataset (default arith)")
    p.add_argument("--problems", type=int, default=100, help="how many problems (default 100)")
    p.add_argument("--levels", default="", help="difficulty levels, e.g. 1,2,3 (default all)")
    p.add_argument("--n", type=int, default=64, help="samples per problem (default 64)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prompt-format", choices=("auto", "plain", "chat"), default="auto",
                   help="auto (default): the chat template for models that have one, else the task's plain prompt")
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
                            max_new_tokens=args.max_new_tokens, seed=args.seed, prompt_format=args.prompt_format)
    strategies = [s for s in getattr(args, "strategy", "oracle").split(",") if s.strip()]
    cost = CostModel(hardware=getattr(args, "hardware", None) or MEASURED, prefix_cache=getattr(args, "prefix_cache", True))
    # the folder beside the cache: models added and datasets uploaded in the app resolve by name here too
    from .registry import root_of
    exp = Experiment.build(_models(args.models), args.task, params, args.problems, levels, strategies, cost,
                           datasets=str(root_of(getattr(args, "cache", None))))
    exp.selected()  # fails early, with a message, on levels the task lacks
    return exp


def _cache(args, shipped: bool = False):
    """The cache file; ``shipped``: a command that reads results first imports the shipped ladder sweeps into it,
    as the app does on its first start (cheap once done; ``TTC_SHIPPED=0`` turns it off), so `report` on a fresh
    clone reads them instead of asking for a sweep."""
    from .cache import DEFAULT_PATH, SampleCache
    cache = SampleCache(args.cache or DEFAULT_PATH)
    if shipped and os.environ.get("TTC_SHIPPED", "1") != "0":
        from . import shipped as ship
        done = ship.import_into(cache)
        if done["samples"] or done["scores"]:
            print(f"note: loaded the shipped sweeps into {cache.path} first ({done['samples']:,} samples, "
                  f"{done['scores']:,} verifier scores; once per cache file)", file=sys.stderr)
    return cache


def cmd_sweep(args) -> int:
    from tqdm import tqdm

    from .runner import run
    exp = _experiment(args)
    task, problems, params = exp.load_task(), exp.selected(), exp.params
    from . import shipped
    cache = _cache(args, shipped=shipped.overlaps(exp))  # never sample again what ships
    for model in exp.models:
        bars = []  # created on first progress so a model that fails to load prints only its error

        def on_progress(p, bars=bars, model=model):
            if not bars:
                # the bar appears after the first batch: its clock starts when the run did, and the rate is the
                # run's average (smoothing on, the first update over a few microseconds read 111,476 samples/s)
                bars.append(tqdm(desc=model.name, unit="sample", total=p.total, dynamic_ncols=True, smoothing=0))
                bars[0].start_t -= p.elapsed_s
                bars[0].last_print_t -= p.elapsed_s
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

    from .cache import csv_safe
    from .results import report, report_by_level
    _writable(args.csv, "--csv")
    _writable(args.curves, "--curves")
    exp = _experiment(args)
    task, problems, params, cache = exp.load_task(), exp.selected(), exp.params, _cache(args, shipped=True)
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
    if len(skipped) == len(ks):  # a table of no accuracy column is no answer
        raise EngineError(f"--k {args.k}: every k is above the {int(df['n'].min())} samples per problem cached "
                          f"(of {params.n} asked); pick k up to {int(df['n'].min())}, or sample more first "
                          "(`python -m engine sweep --n ...`)")
    if skipped:
        print(f"note: k={','.join(map(str, skipped))} skipped: only {int(df['n'].min())} samples per problem",
              file=sys.stderr)
    cols = ["model", "params", "problems", "n"] + [c for c in df.columns if c.startswith("pass@") and "_" not in c] \
        + ["completion_tokens_mean", "prompt_flops", "flops_per_extra_sample", "device_s_total"]
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(df[cols].to_string(index=False))
    if args.by_level:
        for k in ks:
            lv = report_by_level(cache, exp.models, task, problems, params, k=k)
            if not lv.empty and k <= params.n:
                print(f"\npass@{k} by difficulty level")
                print(lv.to_string(float_format="{:.3f}".format))
    if exp.strategies != ("oracle",) or args.curves:
        from .analysis import Paired, verdict
        from .analysis.curves import blocks, from_blocks, powers_of_two
        # the verdict weighs every power of two up to n, as the app does, whatever k the table shows: on --k
        # 1,8,64 it could only pick 8 samples where 32 were best, and said "arith-xl wins" where the app did not
        asked = [k for k in ks if k <= params.n]
        bl = list(blocks(cache, exp, ks=sorted(set(asked) | set(powers_of_two(params.n))),
                         on_progress=_scoring_bars()))
        cv = from_blocks(bl)
        table = cv[cv["k"].isin(asked)].pivot_table(index=["model", "strategy"], columns="k", values="accuracy",
                                                    sort=False)
        table.columns = [f"acc@{k}" for k in table.columns]
        print("\naccuracy by selection strategy (exact expectation over k-subsets of the cached samples); "
              f"costs in --curves and the verdict: {exp.cost.hardware}, FLOPs with the prompt counted "
              f"{'once per problem (prefix caching)' if exp.cost.prefix_cache else 'once per sample'}")
        print(table.to_string(float_format="{:.3f}".format))
        v = verdict(cv, paired=Paired(bl))
        if v["headline"]:
            lines = [v["headline"]] + v["lines"] + ([v["coverage"]] if v["coverage"] else [])
            print("\nverdict: " + "\n  ".join(lines).replace("**", ""))
        elif v["why_none"] or v["pending"]:
            print("\nverdict: " + (v["why_none"] or v["pending"]))
        if args.curves:
            csv_safe(cv[cv["k"].isin(asked)]).to_csv(args.curves, index=False)
            print(f"wrote {args.curves}")
    if args.csv:
        csv_safe(df).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if short and args.strict:
        print("error: --strict: fewer problems or samples are cached than asked (see the notes above)",
              file=sys.stderr)
        return 3
    return 0


def _scoring_bars():
    """A progress hook that shows a bar per (model, scorer) with samples to score."""
    from tqdm import tqdm
    bars: dict = {}

    def scoring(what, done, total):
        bar = bars.get(what) or bars.setdefault(what, tqdm(desc=what, total=total, unit="problem"))
        bar.update(done - bar.n)
        if done == total:
            bar.close()
    return scoring


def _blocks(args, exp):
    """Per-problem curves of every model and strategy, from complete pools only (with a note when short)."""
    from .analysis.curves import blocks, powers_of_two
    out = list(blocks(_cache(args, shipped=True), exp, powers_of_two(exp.params.n), on_progress=_scoring_bars()))
    asked = len(exp.selected())
    for b in out:
        if len(b.problem_ids) < asked and b.strategy == out[0].strategy:
            print(f"note: {b.model}: {len(b.problem_ids)} of {asked} problems have all {exp.params.n} samples "
                  "cached; only those are used (`python -m engine sweep` fills the rest)", file=sys.stderr)
    if not out:
        raise EngineError("nothing cached for these settings: run `python -m engine sweep` (or "
                          "`python -m engine import-shipped`) first")
    return out


def _default_strategies(args) -> None:
    """Deployable default strategies when --strategy is not given (the oracle needs the answer key)."""
    if not args.strategy:
        from . import scorers, strategies
        args.strategy = ",".join(s for s in strategies.defaults(strategies.available(scorers.available()))
                                 if not strategies.get(s).needs_key)


def _table(df, path) -> None:
    import pandas as pd
    with pd.option_context("display.width", 220, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(df.to_string(index=False))
    if path:
        _write_csv(df, path)


def _write_csv(df, path) -> None:
    from .cache import csv_safe
    csv_safe(df).to_csv(path, index=False)  # model names and ids come from users: no spreadsheet formulas
    print(f"wrote {path}")


def cmd_allocate(args) -> int:
    from .analysis import allocation, ensembles, stopping
    from .accounting import compact
    _writable(args.csv, "--csv")
    _default_strategies(args)
    exp = _experiment(args)
    blocks = _blocks(args, exp)
    if args.view == "allocation":
        res = allocation.allocate(blocks, how=args.difficulty, bins=args.bins, reference=args.reference,
                                  probe=args.probe)
        print("\n".join(allocation.summary(res)) + "\n")
        _table(res["ratios"], None)
        pol = res["policy"]
        budget = args.budget or res["one_sample"]["flops"]
        at = pol[pol.budget == pol.budget[pol.budget <= budget].max()] if (pol.budget <= budget).any() else pol[:0]
        print(f"\npolicy within {compact(budget)} FLOPs per problem (default: one sample of {res['one_sample']['model']}; "
              "chosen on all problems; bin 0 = easiest), next to the best uniform option within that budget:")
        _table(at, None)
        if args.csv:
            _table(res["curves"], args.csv)
    elif args.view == "stopping":
        from . import strategies
        rows, seen = [], set()
        for b in blocks:  # the majority rule once per model; the verifier rule once per model and scorer
            key = (b.model, strategies.get(b.strategy).scorer)
            if key in seen or b.strategy not in stopping.stoppable([b.strategy]):
                continue
            seen.add(key)
            rule = stopping.rule_of(b.strategy)
            rows.append(stopping.simulate(b, rule, args.thresholds or stopping.THRESHOLDS[rule]))
        if not rows:
            raise EngineError("adaptive stopping needs majority or best_of_n:SCORER in --strategy")
        import pandas as pd
        df = pd.concat(rows, ignore_index=True)
        print("\n".join(stopping.summary(df)) + "\n")
        _table(df, args.csv)
    else:
        import pandas as pd
        methods = ensembles.methods(exp.strategies)
        df = pd.concat([ensembles.ensembles(blocks, method=m) for m in methods], ignore_index=True)
        for m in methods:
            print(ensembles.summary(df[df.method == m]))
        print()
        _table(df.sort_values("gain", ascending=False).head(args.top), None)
        if args.csv:
            _write_csv(df, args.csv)
    return 0


def cmd_fit(args) -> int:
    from .analysis import fits
    _writable(args.csv, "--csv")
    _writable(args.curves, "--curves")
    exp = _experiment(args)
    table, curve = fits.fits(_blocks(args, exp), fit_samples=args.fit_samples, target=args.target, boot=args.boot)
    print("\n".join(fits.summary(table)) + "\n")
    cols = ["model", "level", "form", "problems", "p1", "p2", "predicted", "lo", "hi", "measured", "residual",
            "quality", "pass@1024", "pass@10000"]
    shown = table[cols].assign(level=[("all" if lvl is None or lvl != lvl else int(lvl)) for lvl in table["level"]])
    _table(shown, args.csv)  # the all-levels rows say "all", not NaN
    if args.curves:
        _write_csv(curve, args.curves)
    return 0


def cmd_models(args) -> int:
    from .models.loader import list_shipped, shipped_dir, training_record
    for kind in ("lm", "verifier"):
        for name in list_shipped(kind):
            d = shipped_dir(name, kind)
            rec = training_record(d)
            print(f"{name:16s} {kind:9s} {rec.get('params', 0):>10,} params  "
                  f"{rec.get('training_flops', 0):.2e} train FLOPs  {d}")
    from .models.gguf import imported
    for d in imported():
        rec = training_record(d)
        print(f"{d.name:16s} {'gguf':9s} {rec.get('params', 0):>10,} params  license {rec.get('license')}  {d}")
    from .registry import added_models, root_of
    root = root_of(getattr(args, "cache", None))
    for r in added_models(root):  # added on Models & data, beside this cache: usable by name with the same --cache
        print(f"{r['name']:16s} {'added':9s} {'':>10s}          {r['source']}")
    return 0


def cmd_import_gguf(args) -> int:
    from .models.gguf import import_gguf
    d, new = import_gguf(args.path, args.name)
    print(f"{'imported' if new else 'already imported'}: {d} (use it as --models {d.name})")
    return 0


def cmd_scorers(args) -> int:
    import pandas as pd

    from . import scorers
    from .analysis import scorer_quality as sq
    exp = _experiment(args)
    names = [n.strip() for n in args.scorer.split(",") if n.strip()] or scorers.available()
    for n in names:
        scorers.get(n)  # an unknown name fails here, in one line, before any work
    if args.best_of is not None and not 1 <= args.best_of <= exp.params.n:
        raise EngineError(f"--best-of must be between 1 and --n ({exp.params.n}), got {args.best_of}")
    cache = _cache(args, shipped=True)
    q = sq.verifier_table(cache, exp, names, args.best_of) if args.best_of else sq.scorer_quality(cache, exp, names)
    if q.empty:
        raise EngineError("no cached samples for these models and settings; run `python -m engine sweep` first")
    def show():
        return pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format",
                                 "{:.3f}".format)
    with show():
        print(q.drop(columns=["k"], errors="ignore").to_string(index=False))
    print("\nwithin_problem_auroc: chance that a right sample outscores a wrong one of the same problem "
          "(what best-of-N needs; 0.5 = guessing), over problems with both; step_auroc (PRMs): step scores "
          "against per-line labels (is this line right given the one before), pooled over lines")
    if args.best_of:
        print(f"best_of_k, majority, pass: accuracy at k={args.best_of} (best-of-N by the scorer, majority vote, "
              "the oracle); gap_closed: (best_of_k - majority) / (pass - majority)")
    if args.split:
        with show():
            print("\nstep checker: share of each model's wrong samples it catches, by first failed check; misread = "
                  "every line checks out (only the answer key catches it); false_alarm = share of right samples "
                  "failing a check\n" + sq.step_checker_split(cache, exp).to_string(index=False))
    if args.corruptions:
        from .analysis.corruptions import gold_beats_corrupted
        g = gold_beats_corrupted(exp.load_task(), names, exp.selected(), models=exp.models)
        g["scorer"] = [f"{s} ({m})" if isinstance(m, str) else s for s, m in zip(g["scorer"], g["model"])]
        table = g.pivot_table(index=["scorer", "corruption"], columns="level", values="rate", sort=False)
        table["all"] = g.assign(w=g["rate"] * g["pairs"]).groupby(["scorer", "corruption"], sort=False).apply(
            lambda d: d["w"].sum() / d["pairs"].sum(), include_groups=False)
        skipped = [n for n in names if not any(s == n or s.startswith(f"{n} (") for s in g["scorer"])]
        with show():
            print("\ngold beats corrupted: share of problems where the scorer rates the gold solution above a copy "
                  "with one result nudged / one operand miscopied / one step skipped (ties half), by level"
                  + (f"; not scorable on unsampled texts: {', '.join(skipped)}" if skipped else "")
                  + "; self-likelihood (MODEL): as if MODEL had sampled the texts"
                  + "\n" + table.to_string())
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
    if not args.files:
        for name in list_tasks():
            t = get_task(name)
            print(f"{name}: {len(t.problems)} problems from {t.source}")
        return 0
    bad = 0
    for f in args.files:  # each file: its task id (what the cache keys on), or the one line saying what is wrong
        try:
            t = get_task(f)
            print(f"{f}: {len(t.problems)} problems, task {t.name}")
        except EngineError as e:
            bad += 1
            print(f"error: {e}", file=sys.stderr)
    return 2 if bad else 0


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
    cache = _cache(args, shipped=True)
    problems = exp.selected()
    parts = [load_samples(cache, m, exp.load_task(), problems, exp.params) for m in exp.models]
    # the question and gold answer beside each sample: the file reads on its own (a slide, a notebook)
    asked = pd.DataFrame({"problem_id": [p.id for p in problems], "question": [p.question for p in problems],
                          "gold": [p.answer for p in problems]})
    df = pd.concat(parts)
    df = df.merge(asked, on="problem_id", how="left") if len(df) else df
    cache.export(df, args.out)
    print(f"wrote {len(df)} samples to {args.out}")
    short = [(m.name, len(d)) for m, d in zip(exp.models, parts) if len(d) < len(problems) * exp.params.n]
    for name, have in short:  # say what the file lacks instead of letting it pass for the whole sweep
        print(f"note: {name}: {have} of {len(problems) * exp.params.n} samples ({len(problems)} problems x "
              f"{exp.params.n}) are cached and exported", file=sys.stderr)
    if short and args.strict:
        print("error: --strict: fewer samples are cached than asked (see the notes above)", file=sys.stderr)
        return 3
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


def cmd_serve(args) -> int:
    from .serve import serve
    serve(_models(args.models), host=args.host, port=args.port, device=args.device, api_key_env=args.api_key_env)
    return 0


def build_parser():
    ap = _Parser(prog=PROG, description="Model size vs test-time compute: sampling engine")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    p = sub.add_parser("sweep", help="fill the cache with samples (resumable)")
    _common(p)
    p.add_argument("--batch", type=int, default=None,
                   help="max rows decoded at once, across problems (default: sized from the model and device)")
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
    p = sub.add_parser("allocate", help="spend compute where it pays: allocation by difficulty, adaptive "
                                        "stopping, ensembles of model sizes (from cached samples)")
    _common(p)
    p.add_argument("--view", choices=("allocation", "stopping", "ensembles"), default="allocation")
    p.add_argument("--strategy", default="",
                   help="strategies to allocate over (default: every deployable default, e.g. "
                        "majority,best_of_n:orm,...)")
    p.add_argument("--difficulty", choices=("predicted", "oracle", "level"), default="predicted",
                   help="how problems are binned by difficulty (default predicted: needs no answer key)")
    p.add_argument("--bins", type=int, default=5)
    p.add_argument("--reference", default=None, help="model whose samples bin difficulty (default: the smallest)")
    p.add_argument("--probe", type=int, default=4, help="samples of the reference model that predict difficulty")
    p.add_argument("--budget", type=float, default=None, help="FLOPs per problem for the printed policy")
    p.add_argument("--thresholds", type=lambda v: [float(x) for x in v.split(",")], default=None,
                   help="stopping thresholds, comma-separated")
    p.add_argument("--top", type=int, default=10, help="ensemble splits to print (all go to --csv)")
    p.add_argument("--csv", type=Path, default=None, help="write every point (what the app plots) to this CSV")
    p.set_defaults(fn=cmd_allocate)
    p = sub.add_parser("fit", help="fit coverage scaling laws (power law, Beta) and extrapolate pass@k")
    _common(p)
    p.add_argument("--fit-samples", type=int, default=16, help="fit on each problem's first N samples (default 16)")
    p.add_argument("--target", type=int, default=None, help="predict pass@TARGET (default: all cached samples)")
    p.add_argument("--boot", type=int, default=100, help="bootstrap resamples for the bands (default 100)")
    p.add_argument("--csv", type=Path, default=None, help="write the fit table to this CSV")
    p.add_argument("--curves", type=Path, default=None, help="write fitted and measured curves to this CSV")
    p.set_defaults(fn=cmd_fit)
    p = sub.add_parser("scorers", help="how well each scorer ranks cached samples (pooled and within a problem)")
    _common(p)
    p.add_argument("--scorer", default="", help="comma-separated scorers (default: every available one)")
    p.add_argument("--best-of", type=int, default=None, metavar="K",
                   help="also best-of-K accuracy next to majority@K and pass@K, and the share of that gap closed")
    p.add_argument("--split", action="store_true",
                   help="also what the step checker catches among wrong samples (arithmetic slips vs misreadings)")
    p.add_argument("--corruptions", action="store_true",
                   help="also how often each scorer rates a gold solution above a corrupted copy, by kind and level")
    p.set_defaults(fn=cmd_scorers)
    p = sub.add_parser("export", help="write cached samples to .parquet or .csv")
    _common(p)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--strict", action="store_true", help="exit with status 3 when fewer samples are cached than asked")
    p.set_defaults(fn=cmd_export)
    simple = [("models", "list shipped models and verifiers, and the models added beside --cache", cmd_models, True),
              ("import-shipped", "load the shipped ladder sweeps (data/sweeps) into the cache", cmd_import_shipped,
               True),
              ("strategies", "list selection strategies and scorers", cmd_strategies, False),
              ("tasks", "list built-in tasks, or check dataset files (tasks FILE...)", cmd_tasks, False),
              ("stats", "what the cache holds", cmd_stats, True)]
    for name, text, fn, takes_cache in simple:
        p = sub.add_parser(name, help=text)
        if takes_cache:
            p.add_argument("--cache", type=Path, default=None)
        p.set_defaults(fn=fn)
    sub.choices["tasks"].add_argument("files", nargs="*", help=".jsonl/.json/.csv files to check")
    p = sub.choices["models"].add_subparsers(dest="models_cmd", parser_class=_Parser).add_parser(
        "import-gguf", help="convert a GGUF file once into a Hugging Face directory (safetensors) under models/")
    p.add_argument("path", type=Path)
    p.add_argument("--name", default=None, help="what to call it (default: the name the file declares)")
    p.set_defaults(fn=cmd_import_gguf)
    p = sub.add_parser("serve", help="serve models through an OpenAI-compatible /v1/completions API")
    p.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated shipped names or model dirs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    p.add_argument("--api-key-env", default=None,
                   help="name of an environment variable holding the key clients must send (default: no key)")
    p.set_defaults(fn=cmd_serve)
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
