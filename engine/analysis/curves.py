"""Accuracy against samples per problem, for every model and selection strategy of an experiment.

One row per (model, strategy, k[, difficulty]): mean accuracy over problems with
its 95% bootstrap interval, the Monte Carlo standard error where a strategy has
no exact formula (``mc_se``, 0 otherwise), and per-problem costs at k samples
(``engine.accounting``): FLOPs, device seconds, dollars, energy, tokens, and
p50 latency over problems.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .. import accounting, metrics, scorers, strategies
from ..cache import SampleCache
from ..errors import EngineError
from ..results import load_samples, model_info


def powers_of_two(n: int) -> list[int]:
    return [2 ** i for i in range(int(math.log2(max(1, n))) + 1)]


@dataclass(frozen=True, eq=False)
class Block:
    """One (model, selection strategy) of an experiment, per problem: what curves, allocation, stopping and
    ensembles are all computed from.

    ``samples``: the cached samples (sorted by problem, then index) with their cost columns and, for a
    scoring strategy, the scorer's ``score``; ``problem_ids``, ``levels``, ``sizes``: per problem, in that
    order; ``acc``, ``se``: [problems, len(ks)] expected accuracy of k samples and its Monte Carlo standard
    error; ``costs``: [problems, len(ks)] arrays per cost (``accounting.problem_costs``).
    """
    model: str
    strategy: str
    ks: tuple
    info: dict
    scorer_params: int
    samples: pd.DataFrame
    problem_ids: np.ndarray
    levels: np.ndarray
    sizes: np.ndarray
    acc: np.ndarray
    se: np.ndarray
    costs: dict

    def pools(self) -> list:
        return strategies.Pool.per_problem(self.samples)


def blocks(cache: SampleCache, exp, ks: Sequence[int] | None = None, include_partial: bool = False,
           on_progress=None):
    """Yield a ``Block`` per (model, strategy) of ``exp`` from what is cached; never samples.

    Only problems whose pool is complete (``exp.params.n`` samples) count, unless ``include_partial``:
    then a problem with m < n samples counts at k <= m. Scorers score cached samples they have not seen
    yet (and cache the scores); ``on_progress(what, done, total)`` hears about that scoring.
    """
    task, problems = exp.load_task(), exp.selected()
    ks = tuple(ks or powers_of_two(exp.params.n))
    chosen = [strategies.get(s) for s in exp.strategies]
    with cache.reading():  # every model's samples and scores: one opening of the file (~20 ms each)
        models = cache.models()
        read = [(ref, _read(cache, exp, ref, task, problems, chosen, include_partial, on_progress, models))
                for ref in exp.models]
    for ref, got in read:
        if got is None:
            continue
        base, info, scored = got
        costed = {}  # costs and pools depend on the scorer only (None: none), not on the strategy: once per scorer
        # the first scorer's per-problem costs and pools: another scorer's of the same samples differ in flops and
        # scores only, so they are taken from these (reading the strings again cost more than the rest)
        first = []
        for strat in chosen:
            if strat.scorer not in costed:
                sc = scorers.get(strat.scorer) if strat.scorer else None
                df, sparams = (scored[strat.scorer], sc.params) if sc else (base, 0)
                df = accounting.per_sample(df, info, exp.cost, sparams)
                same = _same_rows(df, base)
                pp = accounting.per_problem(df, like=first[0][0] if same and first else None)
                split = strategies.Pools.split(df, like=first[0][1] if same and first else None)
                if same and not first:
                    first.append((pp, split))
                # texts and step scores stay in the cache: nothing computed from a block reads them, blocks are
                # kept in memory, and a list per row slows every garbage collection while they live
                costed[strat.scorer] = (df.drop(columns=["text", "step_scores"], errors="ignore"), sparams, pp,
                                        accounting.problem_costs(pp, info, ks, exp.cost, sparams,
                                                                 sc.flops_per_s if sc else None), split)
            df, sparams, pp, costs, split = costed[strat.scorer]
            acc, se = strategies.block_curves(strat, df, ks, split)
            yield Block(ref.name, strat.spec, ks, info, sparams, df,
                        pp.index.to_numpy(), pp["difficulty"].to_numpy(), pp["n"].to_numpy(), acc, se, costs)


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether ``a`` and ``b`` hold the same samples in the same order (a scorer's frame and the samples it
    scored), so that their pools differ in the scores only."""
    return len(a) == len(b) and all(a[c].equals(b[c]) for c in ("problem_id", "idx", "answer", "correct"))


def _read(cache: SampleCache, exp, ref, task, problems, chosen, include_partial: bool, on_progress, models=None):
    """(samples, model info, {scorer: samples with its scores}) of one model for ``blocks``, sorted by problem,
    then index; None where no problem counts. ``models``: the cache's models table, read once for all models."""
    base = load_samples(cache, ref, task, problems, exp.params)
    if not include_partial and not base.empty:
        size = base.groupby("problem_id")["idx"].transform("count")
        base = base[size >= exp.params.n]
    if base.empty:
        return None
    base = _by_problem(base)
    info = model_info(cache, ref, models)
    scored: dict[str, pd.DataFrame] = {}
    for name in dict.fromkeys(st.scorer for st in chosen if st.scorer):  # each scorer once
        hook = (lambda d, t, what=f"{ref.name}: scoring with {name}": on_progress(what, d, t)) \
            if on_progress else None
        scorer = scorers.get(name)
        read = getattr(scorer, "scores", scorer.score)   # without step scores (blocks never read them), if it can
        out = read(cache, task, base, on_progress=hook)
        # a scorer keeps the samples' order and index (then they are sorted already), or they are sorted again
        scored[name] = out if isinstance(out.index, pd.RangeIndex) and _same_rows(out, base) else _by_problem(out)
    return base, info, scored


def _by_problem(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` sorted by problem, then idx (stable), with a fresh index; as it is where it is so already (usual:
    the cache reads in that order, and scorers keep it), which is cheaper to check than to sort."""
    codes, uniq = pd.factorize(df["problem_id"])
    idx = df["idx"].to_numpy()
    step = np.diff(codes)
    if not (np.all((step > 0) | ((step == 0) & (np.diff(idx) >= 0))) and pd.Index(uniq).is_monotonic_increasing):
        df = df.sort_values(["problem_id", "idx"], kind="stable")
    return df if isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1 \
        else df.reset_index(drop=True)


def curves(cache: SampleCache, exp, ks: Sequence[int] | None = None, by_level: bool = False,
           include_partial: bool = False, on_progress=None) -> pd.DataFrame:
    """Curves for ``exp`` (an ``Experiment``): one row per (model, strategy, k[, difficulty]).

    ``problems`` and ``samples`` on each row say how many stand behind it (see ``blocks`` for which
    problems count).
    """
    return from_blocks(blocks(cache, exp, ks, include_partial, on_progress), by_level)


def from_blocks(bl, by_level: bool = False) -> pd.DataFrame:
    """``curves`` of already computed ``blocks`` (so a page's overall and per-level curves share one pass)."""
    rows = []
    for b in bl:
        rows += _aggregate(b.acc, b.se, b.costs, b.levels, b.sizes, b.ks, by_level,
                           dict(model=b.model, params=int(b.info["params"]), strategy=b.strategy), b.info)
    return pd.DataFrame(rows)


COSTS = ("flops", "tokens", "sample_tokens", "device_s", "dollars", "energy_wh", "latency_s")


def _aggregate(mat, se, costs, levels, sizes, ks, by_level: bool, head: dict, info: dict) -> list[dict]:
    groups = [(None, np.ones(len(mat), bool))]
    if by_level:
        groups = [(lvl, levels == lvl) for lvl in sorted({v for v in levels if not pd.isna(v)})]
    rows = []
    for lvl, sel in groups:
        if not sel.any():
            continue
        m, e, size = mat[sel], se[sel], sizes[sel]
        cost = {c: costs[c][sel] for c in COSTS}   # the group's rows, taken once, not per k
        lo, hi = metrics.bootstrap_ci(m)
        for j, k in enumerate(ks):
            ok = ~np.isnan(m[:, j])
            if not ok.any():
                continue
            row = dict(head, k=k, accuracy=float(np.mean(m[ok, j])), lo=float(lo[j]), hi=float(hi[j]),
                       mc_se=float(np.sqrt(np.sum(e[ok, j] ** 2)) / ok.sum()), problems=int(ok.sum()),
                       samples=int(size[ok].sum()), train_flops=float(info["training_flops"] or 0),
                       train_tokens=float(info["training_tokens"] or 0))
            for c in COSTS:  # latency: the median problem's wait; the rest: mean cost per problem
                col = cost[c][ok, j]
                row[c] = float(np.median(col) if c == "latency_s" else np.mean(col))
            if by_level:
                row["difficulty"] = int(lvl)
            rows.append(row)
    return rows


def with_pretraining(df: pd.DataFrame, ratio: float) -> pd.DataFrame:
    """Add amortised pretraining FLOPs per problem (Snell et al. 2024, sec. 7).

    ``ratio`` R = inference tokens over a model's life / its pretraining tokens
    D, with inference tokens counted at one sample per query: the model serves
    Q = R x D / t1 queries (t1 = tokens of one sample), so each query carries
    6ND / Q = 6N x t1 / R of pretraining, however many samples it then draws.
    A small R (few queries) makes a big model's pretraining weigh more per
    query, which is when test-time compute on a smaller model pays off.
    """
    if ratio <= 0:
        raise EngineError(f"inference/pretraining token ratio must be positive, got {ratio}")
    out = df.copy()
    t1 = out.sample_tokens if "sample_tokens" in out else out.tokens / out.k
    served = ratio * out.train_tokens / t1.where(t1 > 0, np.nan)
    out["pretrain_flops"] = (out.train_flops / served).fillna(0.0)
    out["total_flops"] = out.flops + out.pretrain_flops
    return out
