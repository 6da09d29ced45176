"""How well a scorer ranks samples: pooled over problems, and within one problem (what best-of-N relies on).

Pooled AUROC mixes problems, so a scorer that only recognises easy problems looks good. Best-of-N picks
within one problem's samples, so the number that matters is the AUROC *within* a problem: over problems
that have both right and wrong samples, the chance that a right sample outscores a wrong one (ties count
half), averaged. 0.5 is guessing.

What that buys: best-of-k next to majority@k and pass@k, with the share of that gap closed
(``verifier_table``); the simulated verifier's best-of-k across AUROCs (``simulated_sweep``); a PRM's
step-level AUROC (``step_auroc``); and what the step checker catches among a model's wrong samples
(``step_checker_split``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import scorers
from ..cache import SampleCache
from ..results import load_samples


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC with ties counted half; NaN without both classes."""
    pos, neg = int(positive.sum()), int((~positive).sum())
    if not pos or not neg:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def within_problem_auroc(df: pd.DataFrame) -> tuple[float, int]:
    """(mean AUROC within each problem that has right and wrong samples, how many such problems)."""
    by = df["problem_id"]
    right = df["correct"].astype(bool)
    ranks = df.groupby(by)["score"].rank(method="average")
    pos = right.groupby(by).sum()
    neg = right.groupby(by).count() - pos
    rank_pos = ranks.where(right, 0.0).groupby(by).sum()  # the right samples' ranks: half-integers, summed exactly
    ok = (pos > 0) & (neg > 0)
    if not ok.any():
        return float("nan"), 0
    vals = (rank_pos[ok] - pos[ok] * (pos[ok] + 1) / 2) / (pos[ok] * neg[ok])
    return float(vals.mean()), int(ok.sum())


def _cached(cache: SampleCache, exp):
    """(model ref, its cached samples of ``exp``) for each model with any."""
    task, problems = exp.load_task(), exp.selected()
    for ref in exp.models:
        df = load_samples(cache, ref, task, problems, exp.params)
        if not df.empty:
            yield ref, df


def scorer_quality(cache: SampleCache, exp, names=None) -> pd.DataFrame:
    """Per model of ``exp`` and scorer: pooled AUROC, within-problem AUROC and the problems behind it; for a
    PRM also its step-level AUROC (``step_auroc``)."""
    task = exp.load_task()
    rows = []
    for ref, base in _cached(cache, exp):
        steps = {}  # the aggregations of one PRM share its step scores: their step-level AUROC once
        for name in names or scorers.available():
            sc = scorers.get(name)
            prm = bool(getattr(sc, "aggregate", None))  # a PRM: step scores, aggregated
            first = prm and sc.path not in steps
            # step lists cost much to make; only a PRM's first aggregation reads them (its step-level AUROC)
            df = sc.score(cache, task, base) if first else sc.scores(cache, task, base)
            within, n = within_problem_auroc(df)
            if first:
                steps[sc.path] = step_auroc(df, task)[0]
            rows.append(dict(model=ref.name, scorer=name, pooled_auroc=auroc(df["score"].to_numpy(float),
                                                                              df["correct"].to_numpy(bool)),
                             within_problem_auroc=within, step_auroc=steps[sc.path] if prm else np.nan,
                             problems=n, samples=len(df)))
    return pd.DataFrame(rows)


def recorded_or_measured(cache: SampleCache, exp, names) -> pd.DataFrame:
    """``scorer_quality(cache, exp, names)``: where ``exp`` is what the shipped sweeps hold (``shipped.covers``),
    their recorded rows for the scorers recorded (``shipped.quality``, written with them); the rest (a user's
    scorers, other settings) measured now. Each model's scorers in the order of ``names``."""
    from .. import shipped
    names = list(names)
    have = shipped.quality() if shipped.covers(exp) else None
    if have is not None:
        have = have[have["model"].isin([m.name for m in exp.models]) & have["scorer"].isin(names)]
    todo = [n for n in names if have is None or n not in set(have["scorer"])]
    out = pd.concat(([have] if have is not None else []) + ([scorer_quality(cache, exp, todo)] if todo else []),
                    ignore_index=True)
    if out.empty:
        return out
    rank = {"scorer": {n: i for i, n in enumerate(names)}, "model": {m.name: i for i, m in enumerate(exp.models)}}
    return out.sort_values(["model", "scorer"], key=lambda c: c.map(rank[c.name]), kind="stable").reset_index(drop=True)


def best_of_k(cache: SampleCache, exp, names, k: int) -> pd.DataFrame:
    """Per model and scorer: best-of-k accuracy next to majority@k, pass@k (the oracle) and one sample's accuracy
    (``single``: what picking at random gets), and the share of the gap from majority to pass@k that it closes
    (negative: worse than the vote)."""
    from .curves import curves
    specs = ["oracle", "majority"] + [f"best_of_n:{n}" for n in names]
    cv = curves(cache, exp.replace(strategies=specs), ks=sorted({1, k}))
    if cv.empty:
        return pd.DataFrame(columns=["model", "scorer", "k", "best_of_k", "majority", "pass", "single", "gap_closed"])
    single = cv[(cv["k"] == 1) & (cv["strategy"] == "majority")].set_index("model")["accuracy"]
    acc = cv[cv["k"] == k].pivot_table(index="model", columns="strategy", values="accuracy", sort=False)
    rows = []
    for model, r in acc.iterrows():
        for n in names:
            gap = r["oracle"] - r["majority"]
            rows.append(dict(model=model, scorer=n, k=k, best_of_k=r[f"best_of_n:{n}"], majority=r["majority"],
                             **{"pass": r["oracle"]}, single=single.get(model, float("nan")),
                             gap_closed=(r[f"best_of_n:{n}"] - r["majority"]) / gap if gap > 0 else float("nan")))
    return pd.DataFrame(rows)


def verifier_table(cache: SampleCache, exp, names=None, k: int | None = None, recorded: bool = False) -> pd.DataFrame:
    """``scorer_quality`` and ``best_of_k`` side by side: per model and scorer, how well it ranks and what
    best-of-k (default: the whole pool) makes of it. ``recorded``: the shipped sweeps' recorded scorer quality
    where it applies (``recorded_or_measured``)."""
    names = list(names or scorers.available())
    q = (recorded_or_measured if recorded else scorer_quality)(cache, exp, names)
    if q.empty:
        return q
    return q.merge(best_of_k(cache, exp, names, int(k or exp.params.n)), on=["model", "scorer"], how="left")


def simulated_sweep(cache: SampleCache, exp, aucs, k: int | None = None) -> pd.DataFrame:
    """Best-of-k accuracy (with its 95% interval) of the simulated verifier at each AUROC in ``aucs``, per
    model, next to majority@k and pass@k: how far verifier quality moves best-of-N from the vote to the
    oracle."""
    from .curves import curves
    from ..scorers.simulated import PREFIX
    k = int(k or exp.params.n)
    specs = {f"best_of_n:{PREFIX}-{float(a):g}": float(a) for a in aucs}
    cv = curves(cache, exp.replace(strategies=["oracle", "majority", *specs]), ks=[k])
    if cv.empty:
        return pd.DataFrame(columns=["model", "auc", "k", "accuracy", "lo", "hi", "majority", "pass"])
    ref = cv.pivot_table(index="model", columns="strategy", values="accuracy", sort=False)
    sim = cv[cv["strategy"].isin(specs)]
    return pd.DataFrame(dict(model=sim["model"], auc=sim["strategy"].map(specs), k=k, accuracy=sim["accuracy"],
                             lo=sim["lo"], hi=sim["hi"], majority=sim["model"].map(ref["majority"]),
                             **{"pass": sim["model"].map(ref["oracle"])})).reset_index(drop=True)


def step_auroc(df: pd.DataFrame, task) -> tuple[float, int]:
    """(AUROC of a PRM's ``step_scores`` against per-line labels, lines counted) over the rows of ``df``.

    Labels: is this line right given the one before (``arith.local_step_labels``), for every line up to the
    answer line; NaN and 0 for tasks whose problems carry no gold steps (only ``arith``'s do)."""
    from ..tasks import arith
    by_id = task.by_id()
    if df.empty or not all(arith.gold_steps(by_id[p]) for p in df["problem_id"].unique()):
        return float("nan"), 0
    scores, labels, seen = [], [], {}
    for pid, text, ok, steps in zip(df["problem_id"], df["text"], df["correct"], df["step_scores"]):
        key = (pid, text, bool(ok))  # samples repeat: each distinct one labelled once
        lab = seen.get(key)
        if lab is None:
            lab = seen[key] = arith.local_step_labels(by_id[pid], text if isinstance(text, str) else "", bool(ok))
        n = min(len(lab), len(steps))  # lines after the answer line get scores but no label
        scores += list(steps[:n])
        labels += lab[:n]
    return auroc(np.asarray(scores, float), np.asarray(labels, bool)), len(labels)


def step_checker_split(cache: SampleCache, exp) -> pd.DataFrame:
    """What the step checker catches among each model's wrong samples, per level and over all levels.

    ``caught``: share of wrong samples failing some check, split by the first reason (an ``arithmetic`` slip,
    a broken ``chain``: a step not starting from the last result or an answer not repeating it, a
    ``malformed`` line or no answer line); ``misread``: wrong samples whose every line checks out (the
    problem was misread: only the answer key catches these); ``false_alarm``: share of right samples failing
    a check.
    """
    from ..scorers.step_checker import failure
    rows = []
    for ref, df in _cached(cache, exp):
        df = df.assign(why=[failure(t) or "passes" for t in df["text"]])
        for level, g in [*df.groupby("difficulty"), ("all", df)]:
            wrong, right = g[~g["correct"].astype(bool)], g[g["correct"].astype(bool)]
            share = wrong["why"].value_counts(normalize=True)
            rows.append(dict(model=ref.name, level=level, wrong=len(wrong), caught=1 - share.get("passes", 0.0),
                             arithmetic=share.get("arithmetic", 0.0), chain=share.get("chain", 0.0),
                             malformed=share.get("malformed", 0.0), misread=share.get("passes", 0.0),
                             false_alarm=float((right["why"] != "passes").mean()) if len(right) else float("nan")))
    return pd.DataFrame(rows)


def auc_needed(sweep: pd.DataFrame, target: float) -> float | None:
    """The within-problem AUROC at which the simulated verifier's best-of-k first reaches ``target`` accuracy
    (linear between measured AUROCs), from one model's ``simulated_sweep``; None if it never does."""
    s = sweep.sort_values("auc")
    x, y = s["auc"].to_numpy(float), s["accuracy"].to_numpy(float)
    hit = np.flatnonzero(y >= target)
    if not hit.size:
        return None
    i = int(hit[0])
    if i == 0 or y[i] == y[i - 1]:
        return float(x[i])
    return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
