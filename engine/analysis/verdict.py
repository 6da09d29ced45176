"""The verdict in words: at the compute of one sample from the largest model, does a smaller model with
many samples and a deployable selection strategy do better?

Only strategies that need no answer key count for the verdict (a deployed system has no key); the
oracle, when measured, is quoted as the ceiling a perfect verifier would reach. "Clearly" means the
difference's 95% interval excludes zero. Given the per-problem accuracies (``Paired``, from the curves'
blocks) that interval is a bootstrap over problems of the per-problem differences: both models answer
the same problems, and what makes one problem hard makes it hard for both, so the paired interval is
the right one (and narrower). Without them it comes from the two curves' intervals, each half-width /
1.96 taken as a standard error, added in quadrature, as if independent: wider, so a difference called
clear is clear, but a real one may be called noise. A clear lead under a point (both models at a
ceiling: 100% against 99.7%) is said to be too small to matter.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import metrics, scorers, strategies
from ..accounting import compact

TOL = 1.0001  # FLOPs within 0.01% count as equal (floating-point sums of the same costs)
MATTERS = 0.01  # a lead under a point, however certain, does not make a winner


class Paired:
    """Each (model, strategy)'s per-problem accuracy at every k, from ``curves.blocks``: what the paired test
    of two curve points needs."""

    def __init__(self, blocks):
        # the arrays only (small, and cheap to copy into a cache), not the blocks' samples
        self._by = {(b.model, b.strategy): (tuple(b.ks), b.problem_ids, b.levels, b.acc) for b in blocks}

    def _per_problem(self, row, level) -> pd.Series | None:
        ks, ids, levels, acc = self._by.get((row["model"], row["strategy"]), ((), None, None, None))
        if int(row["k"]) not in ks:
            return None
        sel = np.ones(len(ids), bool) if level is None else levels == level
        return pd.Series(acc[sel, ks.index(int(row["k"]))], index=ids[sel])

    def interval(self, a: pd.Series, b: pd.Series, level=None) -> tuple[float, float] | None:
        """95% bootstrap interval of curve point ``a``'s accuracy minus ``b``'s over the problems both hold (of
        difficulty ``level``); None where either is not in the blocks."""
        va, vb = self._per_problem(a, level), self._per_problem(b, level)
        if va is None or vb is None:
            return None
        d = (va - vb).dropna()  # aligned by problem: only problems both measured
        if len(d) < 2:
            return None
        lo, hi = metrics.bootstrap_ci(d.to_numpy())
        return float(lo), float(hi)


def deployable(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of strategies a deployed system can run: those that need no answer key."""
    return df[[not strategies.get(s).needs_key for s in df["strategy"]]]


def _ceiling(df: pd.DataFrame) -> pd.DataFrame:
    """The oracle's rows: a strategy that reads the key through a scorer (a simulated verifier) is no ceiling."""
    return df[[strategies.get(s).needs_key and not strategies.get(s).scorer for s in df["strategy"]]]


def gap_is_clear(a: pd.Series, b: pd.Series, paired: Paired | None = None, level=None) -> bool:
    """Whether accuracy ``a`` differs from ``b`` beyond noise: the 95% interval of the difference excludes zero.
    With ``paired``, a bootstrap of the per-problem differences; else from the two bootstrap intervals (each
    half-width / 1.96 a standard error, added in quadrature: as if independent, so wider)."""
    iv = paired.interval(a, b, level) if paired is not None else None
    if iv is not None:
        return bool(iv[0] > 0 or iv[1] < 0)
    se = math.hypot((a["hi"] - a["lo"]) / (2 * 1.96), (b["hi"] - b["lo"]) / (2 * 1.96))
    return bool(abs(float(a["accuracy"] - b["accuracy"])) > 1.96 * se)


def best_within(rows: pd.DataFrame, budget: float, x: str) -> pd.Series | None:
    """The most accurate row within ``budget`` (ties: fewer samples)."""
    within = rows[rows[x] <= budget * TOL]
    if within.empty:
        return None
    return within.sort_values(["accuracy", "k"], ascending=[False, True]).iloc[0]


def compare(df: pd.DataFrame, small: str, large: str, x: str = "flops", paired: Paired | None = None,
            level=None) -> dict | None:
    """``large`` with one sample against ``small``'s best deployable option at no more ``x``.

    Returns None when either model lacks a deployable one-sample point. Keys: budget, large_acc,
    large_lo/hi, small_k, small_strategy, small_acc, small_lo/hi, small_cost (its ``x``), capped (that
    strategy's most samples measured cost at most half the budget: the sample budget, not the compute, stops
    it), ceiling (oracle accuracy at that budget, or None), winner (the model ahead, however slightly), clear
    (whether the lead is beyond noise: ``gap_is_clear``, paired where ``paired`` holds both; ``level``: the
    difficulty ``df`` is of), small_lead (a clear lead under ``MATTERS``).
    """
    dep = deployable(df)
    big = dep[(dep["model"] == large) & (dep["k"] == 1)]
    if big.empty:
        return None
    big = big.iloc[0]
    budget = float(big[x])
    best = best_within(dep[dep["model"] == small], budget, x)
    if best is None:
        return None
    if "problems" in df and best["problems"] != big["problems"]:
        return None  # measured on different problems (one model still being sampled): no fair comparison
    ceil = best_within(_ceiling(df)[lambda d: d["model"] == small], budget, x)
    # the chosen strategy's own samples: another strategy's (a scorer's compute) may cost more than the budget
    most = dep[(dep["model"] == small) & (dep["strategy"] == best["strategy"])][x].max()
    gap = float(best["accuracy"] - big["accuracy"])
    # one sample only because two cost too much (a verifier's reading of each sample, often): worth saying why
    two = dep[(dep["model"] == small) & (dep["k"] == 2)]
    two = two.loc[two[x].idxmin()] if int(best["k"]) == 1 and not two.empty and two[x].min() > budget * TOL else None
    winner = small if gap > 0 else large
    clear = gap_is_clear(best, big, paired, level)
    return dict(small=small, large=large, budget=budget, large_acc=float(big["accuracy"]),
                large_lo=float(big["lo"]), large_hi=float(big["hi"]), small_k=int(best["k"]),
                small_strategy=best["strategy"], small_acc=float(best["accuracy"]), small_lo=float(best["lo"]),
                small_hi=float(best["hi"]), small_cost=float(best[x]), capped=bool(2 * most <= budget * TOL),
                ceiling=None if ceil is None else float(ceil["accuracy"]),
                ceiling_k=None if ceil is None else int(ceil["k"]), winner=winner, clear=clear,
                small_lead=clear and abs(gap) < MATTERS,
                two_cost=None if two is None else float(two[x]), two_strategy=None if two is None else two["strategy"])


def sentence(c: dict, x_label: str = "FLOPs per problem") -> str:
    """One comparison in words."""
    k = c["small_k"]
    small_how = (f"**{c['small']}** with {k} samples and {strategies.label(c['small_strategy'])}" if k > 1
                 else f"**{c['small']}** with one sample")
    head = (f"At {compact(c['budget'])} {x_label}, the cost of one {c['large']} sample, **{c['large']}** once answers "
            f"{c['large_acc']:.1%} and {small_how} answers {c['small_acc']:.1%}: ")
    points = abs(c["small_acc"] - c["large_acc"]) * 100
    if c.get("small_lead"):
        verdict = (f"{c['winner']} is ahead by {points:.1f} points: beyond noise, but under a point, too small to "
                   "matter.")
    elif c["clear"]:
        verdict = f"**{c['winner']} wins** by {points:.1f} points (95% interval of the difference excludes 0)."
    else:
        verdict = f"{c['winner']} is ahead by {points:.1f} points, within noise on this many problems."
    tail = ""
    if c.get("two_cost") is not None:
        scorer = strategies.get(c["two_strategy"]).scorer
        tail += (f" Two samples of {c['small']} already cost {compact(c['two_cost'])}, over the budget"
                 + (f": the verifier ({scorers.short_label(scorer)}) reads every sample, at "
                    f"{compact((c['two_cost'] - 2 * c['small_cost']) / 2)} each." if scorer and
                    c["two_cost"] > 2 * c["small_cost"] * TOL else "."))
    if c.get("capped"):  # "at equal compute" would overstate it: the small model spent a fraction of the budget
        tail += (f" Its {k} sample{'s' if k > 1 else ''} cost only {compact(c['small_cost'])}: {c['small']} ran out "
                 "of measured samples, not of compute (a larger sample budget lets it spend the whole budget).")
    if c["ceiling"] is not None and c["ceiling"] > c["small_acc"] + 0.005:
        tail += (f" With a perfect verifier (an answer key, which no deployed system has) {c['small']} would "
                f"reach {c['ceiling']:.1%} at the same compute.")
    return head + verdict + tail


def verdict(df: pd.DataFrame, by_level: pd.DataFrame | None = None, x: str = "flops",
            x_label: str = "FLOPs per problem", paired: Paired | None = None) -> dict:
    """The page's verdict from the curves on screen.

    ``df``: curve rows of several models (``analysis.curves``); ``by_level``: the same per difficulty
    level, for the levels where the answer differs; ``paired``: the blocks the curves came from, for the
    paired test (without it, the wider independent one). Returns ``headline`` (a sentence, or None when the
    data cannot answer), ``lines`` (one sentence per smaller model), ``levels`` (where the level's winner
    differs from the overall one), ``comparisons`` (the numbers) and ``coverage`` (the pass@k finding,
    when the oracle was measured); without a headline, ``pending`` (the models are still being measured on
    different problems) or ``why_none`` (no smaller model has an option within the budget) says why.
    """
    out = {"headline": None, "lines": [], "levels": [], "comparisons": [], "coverage": None, "pending": None,
           "why_none": None}
    if df.empty or df["model"].nunique() < 2:
        return out
    order = df.drop_duplicates("model").sort_values("params")["model"].tolist()
    large = order[-1]
    comps = [c for c in (compare(df, m, large, x, paired) for m in order[:-1]) if c is not None]
    dearer = _dearer(df, order, large, x)
    if not comps:
        if dearer and len(dearer) == len(order) - 1:
            out["why_none"] = "No verdict. " + " ".join(dearer)
            return out
        if "problems" in df and df.groupby("model")["problems"].max().nunique() > 1:
            counts = df.groupby("model", sort=False)["problems"].max()
            out["pending"] = ("No verdict yet: the models were measured on different numbers of problems ("
                              + ", ".join(f"{m} {n}" for m, n in counts.items())
                              + "); it appears once they share the same problems.")
        return out
    out["comparisons"] = comps
    out["lines"] = [sentence(c, x_label) for c in comps] + dearer
    winners = [c for c in comps if c["winner"] != large and c["clear"] and not c["small_lead"]]
    close = [c for c in comps if c["winner"] != large and (not c["clear"] or c["small_lead"])]
    if winners:
        best = max(winners, key=lambda c: c["small_acc"])
        out["headline"] = (f"A smaller model with more samples beats the largest at equal compute: "
                           f"{best['small']} × {best['small_k']} samples ({best['small_acc']:.1%}) vs "
                           f"{large} × 1 ({best['large_acc']:.1%}).")
    elif close:
        best = max(close, key=lambda c: c["small_acc"])
        within = "within a point" if best["small_lead"] else "within noise"
        out["headline"] = (f"At equal compute the best smaller option only matches the largest, {within}: "
                           f"{best['small']} × {best['small_k']} samples ({best['small_acc']:.1%}) vs "
                           f"{large} × 1 ({best['large_acc']:.1%}).")
    elif all(c["clear"] and not c["small_lead"] for c in comps):
        out["headline"] = (f"At equal compute, running the largest model ({large}) once is clearly better than "
                           "any smaller model with more samples and a strategy that needs no answer key, over all "
                           "problems together.")
    else:
        noisy = [c["small"] for c in comps if not c["clear"]]
        tiny = [c["small"] for c in comps if c["small_lead"]]
        why = "; ".join(([f"its lead over {', '.join(noisy)} is within noise on this many problems"] if noisy else [])
                        + ([f"it leads {', '.join(tiny)} by under a point"] if tiny else []))
        out["headline"] = (f"At equal compute, no smaller model with more samples beats the largest ({large}) once; "
                           f"{why}.")
    capped = [c["small"] for c in comps if c.get("capped")]
    if capped:
        out["headline"] += (f" ({', '.join(capped)} had too few samples measured to spend the whole budget: a larger "
                            "sample budget compares at truly equal compute.)")
    if by_level is not None and not by_level.empty and "difficulty" in by_level:
        for lvl in sorted(by_level["difficulty"].dropna().unique()):
            d = by_level[by_level["difficulty"] == lvl]
            level = [compare(d, m, large, x, paired, lvl) for m in order[:-1]]
            flips = [c for c in level if c is not None and c["clear"] and not c["small_lead"] and c["winner"] != large]
            if flips and not winners and not close:
                c = max(flips, key=lambda c: c["small_acc"])
                how = f" with {strategies.label(c['small_strategy'])}" if c["small_k"] > 1 else ""
                out["levels"].append(f"Level {int(lvl)}: {c['small']} × {c['small_k']} samples{how} "
                                     f"({c['small_acc']:.1%}) beats {large} × 1 ({c['large_acc']:.1%}).")
            elif (winners or close) and all(c is None or (c["winner"] == large and c["clear"] and not c["small_lead"])
                                            for c in level):
                big = deployable(d)[lambda r: (r["model"] == large) & (r["k"] == 1)]
                if not big.empty:
                    out["levels"].append(f"Level {int(lvl)}: {large} once ({big['accuracy'].iloc[0]:.1%}) "
                                         "clearly beats every smaller model at equal compute.")
    if out["levels"] and not winners and not close:  # the pooled answer does not hold at every level
        out["headline"] += (f" Not at every level: at {len(out['levels'])} of them a smaller model wins "
                            "(below).")
    out["coverage"] = coverage_sentence(df, large)
    return out


def _dearer(df: pd.DataFrame, order: list, large: str, x: str) -> list[str]:
    """A sentence per smaller model (by parameters) whose one sample costs more than one of ``large``: it has no
    option within the verdict's budget (a model that rambles to its token limit can cost more than a bigger one)."""
    dep = deployable(df)
    big = dep[(dep["model"] == large) & (dep["k"] == 1)]
    if big.empty:
        return []
    budget, out = float(big[x].iloc[0]), []
    for m in order[:-1]:
        own = dep[dep["model"] == m]
        if not own.empty and float(own[x].min()) > budget * TOL:
            out.append(f"One sample of {m} costs more ({compact(float(own[x].min()))}) than one of {large} "
                       f"({compact(budget)}), the largest by parameters, so {m} has no option within that budget.")
    return out


def coverage_sentence(df: pd.DataFrame, large: str) -> str | None:
    """Coverage (pass@k, needs the answer key) of each smaller model at its largest k against the largest's
    pass@1, when every smaller model's coverage exceeds it (the Large Language Monkeys finding)."""
    cov = _ceiling(df)
    if cov.empty or large not in set(cov["model"]):
        return None
    one = cov[(cov["model"] == large) & (cov["k"] == 1)]
    if one.empty:
        return None
    top = cov.sort_values("k").groupby("model").tail(1)
    smaller = top[top["model"] != large].sort_values("params")
    if smaller.empty or not (smaller["accuracy"] > one["accuracy"].iloc[0]).all():
        return None
    parts = ", ".join(f"{r.model} {r.accuracy:.1%} with {r.k}" for r in smaller.itertuples())
    return (f"Coverage: with enough samples every smaller model *contains* a right answer more often than "
            f"{large} gets one in a single try ({one['accuracy'].iloc[0]:.1%}): {parts} samples. Coverage needs "
            "an answer key to pick the right sample; what a deployed system gets is the verdict above.")
