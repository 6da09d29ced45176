"""The planner: the cheapest measured configuration that meets an accuracy target and a latency budget."""
from __future__ import annotations

import pandas as pd

from .. import strategies
from ..accounting import compact
from ..errors import EngineError
from .verdict import deployable


def money(x: float) -> str:
    """Dollars readable at any scale: cents for whole dollars, three significant digits below."""
    return f"${x:,.2f}" if abs(x) >= 1 else f"${x:.3g}"


def recommend(df: pd.DataFrame, target_accuracy: float, latency_budget_s: float, queries_per_day: float,
              cost_col: str = "dollars", problems_available: int | None = None) -> dict:
    """Best row of ``curves`` output meeting both limits, and the best one from another model size.

    Strategies that need the answer key (the oracle) are never candidates: no deployed system has it. Where the
    pick's 95% interval reaches below the target, the cheapest option whose whole interval clears it is named
    too (``safe``). ``problems_available``: problems the task has, to advise more only where there are more.
    """
    if not 0 <= target_accuracy <= 1:
        raise EngineError(f"target accuracy must be between 0 and 1, got {target_accuracy}")
    if latency_budget_s <= 0 or queries_per_day < 0:
        raise EngineError("latency budget must be positive and queries per day non-negative")
    df = candidates(df)
    ok = df[(df.accuracy >= target_accuracy) & (df.latency_s <= latency_budget_s)].sort_values(cost_col)
    if ok.empty:
        return {"best": None, "runner_up": None, "explanation": _why_none(df, target_accuracy, latency_budget_s)}

    def describe(r):
        per_q = float(r[cost_col])
        label = strategies.label(r.strategy) if r.k > 1 else "a single sample"
        return dict(model=r.model, strategy=r.strategy, label=label, k=int(r.k), lo=float(r.lo), hi=float(r.hi),
                    problems=int(r.get("problems", 0)),
                    accuracy=float(r.accuracy), latency_s=float(r.latency_s), cost_per_query=per_q,
                    cost_per_1000=per_q * 1000, cost_per_month=per_q * queries_per_day * 30, flops=float(r.flops))
    best = describe(_cheapest(ok, cost_col))
    other = ok[ok.model != best["model"]]
    runner = describe(_cheapest(other, cost_col)) if not other.empty else None

    def how(r):
        return "one sample" if r["k"] == 1 else f"{r['label']} over {r['k']} samples"
    text = (f"{best['model']} with {how(best)} reaches {best['accuracy']:.1%} at {money(best['cost_per_1000'])} "
            f"per 1,000 queries")
    tied = _tied(ok, cost_col)
    if tied.model.nunique() > 1:  # e.g. small models on a big GPU, bound by per-step overhead, not by size
        text = (f"{', '.join(dict.fromkeys(tied.model))} cost about the same here (within "
                f"{TIE - 1:.0%} of the cheapest), so the most accurate of them is recommended: " + text)
    if runner:
        ratio = runner["cost_per_1000"] / best["cost_per_1000"] if best["cost_per_1000"] > 0 else float("inf")
        cheaper = f"{ratio:.1f}x cheaper than" if ratio >= 1.05 else "about the same cost as"
        text += f", {cheaper} the best {runner['model']} option ({how(runner)}, {runner['accuracy']:.1%})."
    else:
        text += "; no other model size meets the target."
    uncertain = best["lo"] < target_accuracy
    safe = None
    if uncertain:
        n = best["problems"]
        more = problems_available is None or n < problems_available
        text += (f" Measured on {'all ' if not more and n else ''}{n or 'few'} problems"
                 f"{' of the test set' if not more and n else ''}, its 95% interval ({best['lo']:.1%}-"
                 f"{best['hi']:.1%}) reaches below the target: it may fall short.")
        sure = ok[ok.lo >= target_accuracy]
        if not sure.empty:
            safe = describe(_cheapest(sure, cost_col))
            text += (f" The cheapest option whose whole interval clears {target_accuracy:.0%}: {safe['model']} "
                     f"with {how(safe)} ({safe['accuracy']:.1%}, {safe['lo']:.1%}-{safe['hi']:.1%}) at "
                     f"{money(safe['cost_per_1000'])} per 1,000 queries.")
        elif more:
            text += " Plan from more problems (cached or sampled) to be sure."
        else:
            text += " No option measured here clears it with its whole interval."
    return {"best": best, "runner_up": runner, "explanation": text, "uncertain": uncertain, "safe": safe}


TIE = 1.05  # costs within 5% of each other count as the same price: the more accurate option is then the pick


def _tied(ok: pd.DataFrame, cost_col: str) -> pd.DataFrame:
    """The options (sorted by cost) that cost about as little as the cheapest."""
    return ok[ok[cost_col] <= float(ok[cost_col].iloc[0]) * TIE]


def _cheapest(ok: pd.DataFrame, cost_col: str) -> pd.Series:
    """The cheapest option, the most accurate one where several cost about the same: at equal price nobody
    should be sold a less accurate model (a projection onto a big GPU prices the small models alike)."""
    return _tied(ok, cost_col).sort_values(["accuracy", cost_col], ascending=[False, True], kind="stable").iloc[0]


def candidates(df: pd.DataFrame) -> pd.DataFrame:
    """Deployable rows (no answer key), with one sample counted once per model: at k=1 every strategy
    returns that sample, so a "verifier over one sample" is not offered as a separate option."""
    if df.empty:
        return df
    df = deployable(df)
    return pd.concat([df[df.k > 1], df[df.k == 1].drop_duplicates("model")]).sort_index()


def _why_none(df: pd.DataFrame, target: float, latency_budget_s: float) -> str:
    """Which limit binds, and the option closest to meeting it."""
    if df.empty:
        return "Nothing is cached to plan from."
    accurate = df[df.accuracy >= target]
    fast = df[df.latency_s <= latency_budget_s]
    base = "No cached configuration meets both the accuracy target and the latency budget."
    if accurate.empty:
        b = df.sort_values("accuracy", ascending=False).iloc[0]
        return (f"{base} Accuracy is the binding limit: the most accurate cached option is {b.model} with "
                f"{strategies.label(b.strategy)} at k={b.k} ({b.accuracy:.1%}). Lower the target, or measure "
                "larger sample budgets or models.")
    if fast.empty:
        f = df.sort_values("latency_s").iloc[0]
        return (f"{base} Latency is the binding limit: even the fastest option, {f.model} with "
                f"{f.k} sample{'s' if f.k > 1 else ''}, takes {f.latency_s:.3g} s (p50). Raise the latency budget.")
    b = accurate.sort_values("latency_s").iloc[0]
    return (f"{base} Options that reach {target:.0%} take at least {b.latency_s:.3g} s ({b.model}, k={b.k}), "
            f"and options within {latency_budget_s:g} s reach at most {fast.accuracy.max():.1%}: "
            "relax one of the two.")


def allocation_note(allocated: pd.DataFrame, target_accuracy: float, fixed: pd.DataFrame,
                    difficulty: str | None = None) -> str | None:
    """What allocating compute by difficulty (``allocation.allocate``'s cross-validated curve) would cost to reach
    the target, in FLOPs per problem (an allocated policy mixes models, so FLOPs are its common unit), against
    the fixed setting (``candidates`` rows) that reaches it with the fewest FLOPs: not the recommendation, which
    is the cheapest in dollars and can take more FLOPs than another setting."""
    reach = allocated[allocated.accuracy >= target_accuracy]
    fixed = fixed[fixed.accuracy >= target_accuracy] if not fixed.empty else fixed
    how = f"; difficulty from {difficulty}" if difficulty else ""
    if reach.empty:
        return (f"Allocating compute by difficulty does not reach {target_accuracy:.0%} either (at most "
                f"{allocated.accuracy.max():.1%}, cross-validated{how})." if fixed.empty else None)
    f = float(reach.flops.min())
    text = (f"Allocating compute by difficulty (a model, strategy and k per difficulty bin) reaches "
            f"{target_accuracy:.0%} at {compact(f)} FLOPs per problem, cross-validated{how}")
    if fixed.empty:
        text += ", which no single setting measured here does"
    else:
        r = fixed.sort_values("flops").iloc[0]
        ratio = float(r.flops) / f
        how = "one sample" if r.k == 1 else f"{strategies.short_label(r.strategy)}, k={r.k}"
        text += (": " + (f"{ratio:.2g}x less compute than" if ratio >= 1.05 else
                         f"{1 / ratio:.2g}x more compute than" if ratio <= 1 / 1.05 else "about the compute of")
                 + f" the single setting that reaches it with the fewest FLOPs ({r.model}, {how}: "
                 f"{compact(float(r.flops))} FLOPs)")
    return text + "; see Compute allocation."


def extrapolation_note(fit_table: pd.DataFrame, target_accuracy: float, coverage: pd.DataFrame | None = None) -> str | None:
    """When nothing deployable reaches the target: how many samples each model's coverage (pass@k, the oracle:
    only a perfect verifier gets it) needs to reach it: measured where ``coverage`` (the oracle's curve rows:
    model, k, accuracy) reaches it within the samples cached, else by the fitted coverage law (extrapolated)."""
    from .fits import samples_for
    models = list(dict.fromkeys(fit_table.model))
    measured, fitted = [], []
    for m in models:
        cov = coverage[(coverage.model == m) & (coverage.accuracy >= target_accuracy)] if coverage is not None \
            else pd.DataFrame()
        if not cov.empty:
            r = cov.sort_values("k").iloc[0]
            measured.append(f"{m} at {int(r.k)} ({r.accuracy:.1%})")
            continue
        k = samples_for(fit_table, m, target_accuracy)
        fitted.append(f"{m} about {k:,.0f}" if k < float("inf") else f"{m} never (its fit plateaus below)")
    parts = []
    if measured:
        parts.append(f"measured, coverage reaches {target_accuracy:.0%} within the samples cached: "
                     + ", ".join(measured))
    if fitted:
        parts.append(f"extrapolated, not measured (by the Beta fit of coverage), it would take samples per problem "
                     f"of {', '.join(fitted)}")
    return ("Samples per problem for a perfect verifier: " + "; ".join(parts) + ". Coverage (pass@k: some sample "
            "right) is the oracle's ceiling, which needs the answer key; majority vote and learned verifiers stay "
            "below it.")
