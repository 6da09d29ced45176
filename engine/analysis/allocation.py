"""Compute-optimal allocation by difficulty (Snell et al. 2024, sec. 3.2 and 5): each problem gets the model,
selection strategy and k chosen for its difficulty bin, under a budget on mean FLOPs per problem.

Every (model, deployable strategy, k) measured by ``analysis.curves.blocks`` is an *option* with a
per-problem accuracy and cost. Problems fall into difficulty bins three ways:

* ``oracle``: the reference model's own pass@1 on the problem (uses the answer key: an upper bound);
* ``predicted``: how much the reference model's first ``probe`` samples agree, with their mean token
  log-probability breaking ties; no answer key, and the probe samples are charged to every problem;
* ``level``: the task's own difficulty label.

Per budget, the policy (one option per bin) maximises mean accuracy subject to mean cost <= budget, a
multiple-choice knapsack solved exactly by merging per-bin Pareto fronts. Its accuracy is estimated by
k-fold cross-validation over problems: a problem's policy is always chosen from the other folds' labels.
Uniform baselines (one option for every problem, from one strategy family) are chosen the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import strategies
from ..errors import EngineError

HOW = ("predicted", "oracle", "level")


@dataclass(frozen=True, eq=False)
class Options:
    """Per-problem accuracy and FLOPs of every option: ``acc``/``flops`` [options, problems]."""
    labels: pd.DataFrame          # model, strategy, k per option
    acc: np.ndarray
    flops: np.ndarray
    problem_ids: np.ndarray
    levels: np.ndarray


def options(blocks) -> Options:
    """Options from ``curves.blocks`` output: deployable strategies only, problems every block measured, and
    one sample counted once per model (every strategy returns that sample at k = 1)."""
    blocks = [b for b in blocks if not strategies.get(b.strategy).needs_key]
    if not blocks:
        raise EngineError("allocation needs at least one deployable strategy (the oracle uses the answer key)")
    common = set(blocks[0].problem_ids)
    for b in blocks[1:]:
        common &= set(b.problem_ids)
    if not common:
        raise EngineError("the models were measured on different problems; nothing to allocate over")
    ids = np.array(sorted(common, key=str), dtype=object)
    labels, acc, flops, seen = [], [], [], set()
    levels = None
    for b in blocks:
        pos = pd.Index(b.problem_ids).get_indexer(ids)
        levels = b.levels[pos] if levels is None else levels
        for j, k in enumerate(b.ks):
            if (k == 1 and b.model in seen) or np.isnan(b.acc[pos, j]).any():
                continue
            labels.append(dict(model=b.model, strategy=b.strategy if k > 1 else "one sample", k=int(k),
                               params=int(b.info["params"])))
            acc.append(b.acc[pos, j])
            flops.append(b.costs["flops"][pos, j])
        seen.add(b.model)
    return Options(pd.DataFrame(labels), np.vstack(acc), np.vstack(flops), ids, levels)


def difficulty(blocks, opts: Options, how: str = "predicted", bins: int = 5, reference: str | None = None,
               probe: int = 4) -> tuple[np.ndarray, np.ndarray, str]:
    """(bin per problem, 0 = easiest; FLOPs charged per problem for finding it; a description)."""
    if how not in HOW:
        raise EngineError(f"unknown difficulty measure {how!r}: use one of {', '.join(HOW)}")
    if how == "level":
        lv = np.asarray(opts.levels, float)
        _, b = np.unique(lv, return_inverse=True)
        return b, np.zeros(len(b)), "the task's difficulty level"
    ref = _reference(blocks, reference)
    df = ref.samples.set_index("problem_id").loc[list(opts.problem_ids)].reset_index()
    probe = max(1, min(int(probe), int(ref.sizes.min())))
    if how == "oracle":
        ease = df.groupby("problem_id", sort=False)["correct"].mean()
        charged, text = np.zeros(len(opts.problem_ids)), f"{ref.model}'s pass@1 (uses the answer key)"
    else:
        first = df[df["idx"] < probe]
        g = first.groupby("problem_id", sort=False)
        agree = g["answer"].agg(lambda a: a.value_counts().max() / probe if a.notna().any() else 0.0)
        per_tok = (first["logprob"] / first["completion_tokens"].clip(lower=1)).groupby(first["problem_id"],
                                                                                       sort=False).mean()
        ease = agree + 1e-3 * np.tanh(per_tok.reindex(agree.index).fillna(-10))
        j = list(ref.ks).index(probe) if probe in ref.ks else None
        pos = pd.Index(ref.problem_ids).get_indexer(opts.problem_ids)
        charged = ref.costs["flops"][pos, j] if j is not None else \
            np.array([np.interp(probe, ref.ks, row) for row in ref.costs["flops"][pos]])
        text = f"agreement among {ref.model}'s first {probe} samples (charged to every problem)"
    ease = ease.reindex(opts.problem_ids).to_numpy(float)
    # equal-size bins by rank, easiest first; ties in a seeded random order (problem ids sort by level, and
    # breaking ties by id would slip the level label into the bins)
    tiebreak = np.random.default_rng(0).permutation(len(ease))
    rank = np.argsort(np.lexsort((tiebreak, -ease)), kind="stable")
    b = np.minimum(rank * bins // len(rank), bins - 1)
    return b.astype(int), np.asarray(charged, float), text


def _per_sample_flops(b) -> float:
    """A block's mean FLOPs for one sample (by parameters where k=1 is not among its ks)."""
    return float(np.nanmean(b.costs["flops"][:, list(b.ks).index(1)])) if 1 in b.ks else float(b.info["params"])


def _reference(blocks, name):
    """The model whose first samples predict difficulty: ``name``, else the one whose samples cost least (its
    probe is charged to every problem: a model that rambles to its token limit was a costly, useless probe)."""
    blocks = list(blocks)
    if name is None:
        name = min(blocks, key=lambda b: (_per_sample_flops(b), b.info["params"])).model
    for b in blocks:
        if b.model == name:
            return b
    raise EngineError(f"reference model {name!r} is not measured here")


def pareto(cost: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Indices of the options no other option beats on both (cheaper-or-equal and more accurate), by cost."""
    order = np.lexsort((-acc, cost))
    keep, best = [], -np.inf
    for i in order:
        if acc[i] > best + 1e-12:
            keep.append(i)
            best = acc[i]
    return np.array(keep, dtype=int)


def front(acc: np.ndarray, cost: np.ndarray, weights: np.ndarray) -> list[tuple[float, float, tuple]]:
    """Every Pareto-optimal policy (mean cost, mean accuracy, option per bin) for per-bin ``acc``/``cost``
    [bins, options] and bin ``weights`` (shares of problems), cheapest first."""
    out = [(0.0, 0.0, ())]
    for b in range(acc.shape[0]):
        keep = pareto(cost[b], acc[b])
        merged = [(c + weights[b] * cost[b, o], a + weights[b] * acc[b, o], ch + (int(o),))
                  for c, a, ch in out for o in keep]
        m = np.array([(c, a) for c, a, _ in merged])
        out = [merged[i] for i in pareto(m[:, 0], m[:, 1])]
    return out


def choose(policies, budget: float):
    """The most accurate policy of ``front`` output costing at most ``budget`` (None if none does)."""
    within = [p for p in policies if p[0] <= budget * (1 + 1e-9)]
    return max(within, key=lambda p: p[1])[2] if within else None


def _bin_means(x: np.ndarray, bins: np.ndarray, nbins: int, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[bins, options] means of ``x`` [options, problems] over the selected problems, and the bins' shares."""
    means = np.zeros((nbins, x.shape[0]))
    share = np.zeros(nbins)
    for b in range(nbins):
        m = sel & (bins == b)
        share[b] = m.sum()
        if m.any():
            means[b] = x[:, m].mean(1)
    return means, share / max(share.sum(), 1)


def cv_choices(opts: Options, bins: np.ndarray, budgets, allowed: np.ndarray | None = None,
               extra: np.ndarray | None = None, folds: int = 2, seed: int = 0) -> np.ndarray:
    """[budgets, problems]: the option (index into ``opts``; -1: nothing fits) each problem gets, chosen from
    the other folds' labels only. ``extra``: FLOPs charged to every problem (the difficulty probe), paid out of
    the budget; ``allowed`` limits the options (a uniform baseline passes one bin and its family's options)."""
    nb = int(bins.max()) + 1
    idx = np.flatnonzero(np.ones(len(opts.acc), bool) if allowed is None else allowed)
    fold = np.random.default_rng(seed).permutation(len(opts.problem_ids)) % folds
    extra = np.zeros(len(fold)) if extra is None else extra
    out = np.full((len(budgets), len(fold)), -1)
    for f in range(folds):
        train, test = fold != f, fold == f
        a, w = _bin_means(opts.acc[idx], bins, nb, train)
        c, _ = _bin_means(opts.flops[idx], bins, nb, train)
        policies = front(a, c, w)
        for j, budget in enumerate(budgets):
            pick = choose(policies, budget - extra[train].mean())
            if pick is not None:
                out[j, test] = idx[np.asarray(pick)[bins[test]]]
    return out


def cross_validated(opts: Options, bins: np.ndarray, budgets, allowed: np.ndarray | None = None,
                    extra: np.ndarray | None = None, folds: int = 2, seed: int = 0) -> pd.DataFrame:
    """Per budget: accuracy (with its standard error over problems) and mean FLOPs per problem of the policy
    ``cv_choices`` gives each problem; budgets where some fold can afford nothing are left out."""
    chosen = cv_choices(opts, bins, budgets, allowed, extra, folds, seed)
    extra = np.zeros(chosen.shape[1]) if extra is None else extra
    ok = (chosen >= 0).all(1)
    chosen = chosen[ok]
    cols = np.arange(chosen.shape[1])[None, :]
    hit, cost = opts.acc[chosen, cols], opts.flops[chosen, cols] + extra[None, :]
    return pd.DataFrame(dict(budget=np.asarray(budgets, float)[ok], accuracy=hit.mean(1),
                             se=hit.std(1, ddof=1) / np.sqrt(hit.shape[1]), flops=cost.mean(1)))


def families(opts: Options) -> dict[str, np.ndarray]:
    """Uniform baselines by name: which options each may use. One sample of any model belongs to every family."""
    strat = opts.labels["strategy"]
    single = (strat == "one sample").to_numpy()
    out = {"majority": single | (strat == "majority").to_numpy()}
    for s in sorted(set(strat) - {"one sample", "majority"}):
        out[strategies.short_label(s)] = single | (strat == s).to_numpy()
    out["best single option"] = np.ones(len(strat), bool)
    return out


def allocate(blocks, how: str = "predicted", bins: int = 5, reference: str | None = None, probe: int = 4,
             points: int = 40, folds: int = 2, seed: int = 0) -> dict:
    """The whole study: cross-validated accuracy against mean FLOPs per problem for the allocated policy and
    each uniform baseline (``curves``), the compute ratio at which allocation matches each uniform
    best-of-N's best accuracy (``ratios``), and the policy fitted on all problems at each budget
    (``policy``: one row per budget and bin), with the difficulty measure described (``difficulty``)."""
    blocks = list(blocks)
    opts = options(blocks)
    if len(opts.problem_ids) < 2 * folds:
        raise EngineError(f"allocation needs at least {2 * folds} problems measured by every model, "
                          f"got {len(opts.problem_ids)}")
    b, probe_flops, text = difficulty(blocks, opts, how, bins, reference, probe)
    mean_cost = opts.flops.mean(1)
    budgets = np.geomspace(mean_cost.min(), mean_cost.max() + probe_flops.mean(), points)
    largest = int(opts.labels[opts.labels.k == 1].params.idxmax())
    budgets = np.unique(np.r_[budgets, mean_cost[largest]])  # one sample of the largest model: the verdict's budget
    curves = [cross_validated(opts, b, budgets, extra=probe_flops, folds=folds, seed=seed).assign(
        policy="allocated by difficulty")]
    for name, allowed in families(opts).items():
        curves.append(cross_validated(opts, np.zeros_like(b), budgets, allowed, folds=folds, seed=seed)
                      .assign(policy=f"uniform {name}"))
    curves = pd.concat(curves, ignore_index=True)
    return dict(curves=curves, ratios=ratios(curves), policy=policy(opts, b, budgets, probe_flops),
                difficulty=text, problems=len(opts.problem_ids), bins=int(b.max()) + 1,
                one_sample=dict(model=opts.labels.model[largest], flops=float(mean_cost[largest])))


def ratios(curves: pd.DataFrame) -> pd.DataFrame:
    """For each uniform baseline: its best cross-validated accuracy, the FLOPs where it first gets there, the
    FLOPs where allocation first matches it, and their ratio (> 1: allocation is cheaper; NaN: it never
    matches)."""
    alloc = curves[curves.policy == "allocated by difficulty"].sort_values("flops")
    rows = []
    for name, u in curves[curves.policy != "allocated by difficulty"].groupby("policy", sort=False):
        best = u.loc[u.accuracy.idxmax()]
        reach = u[u.accuracy >= best.accuracy - 1e-12].flops.min()
        match = alloc[alloc.accuracy >= best.accuracy - 1e-12]
        at = float(match.flops.min()) if not match.empty else np.nan
        rows.append(dict(baseline=name, best_accuracy=float(best.accuracy), best_se=float(best.se),
                         baseline_flops=float(reach), allocated_flops=at,
                         ratio=float(reach / at) if at == at and at > 0 else np.nan,
                         allocated_best=float(alloc.accuracy.max())))
    return pd.DataFrame(rows)


def policy(opts: Options, bins: np.ndarray, budgets, extra: np.ndarray) -> pd.DataFrame:
    """The policy to deploy at each budget, chosen on all problems: per bin, the option, its in-bin accuracy and
    FLOPs (``extra``, the probe, included), next to the best uniform option within the same budget in that bin
    (``uniform_*``): where the savings come from."""
    nb = int(bins.max()) + 1
    every = np.ones(len(bins), bool)
    a, w = _bin_means(opts.acc, bins, nb, every)
    c, _ = _bin_means(opts.flops, bins, nb, every)
    policies = front(a, c, w)
    uniform = front(opts.acc.mean(1)[None], opts.flops.mean(1)[None], np.ones(1))
    name = [f"{r.model} · {r.strategy}" + (f" · k={r.k}" if r.k > 1 else "") for r in opts.labels.itertuples()]
    rows = []
    for budget in budgets:
        pick, one = choose(policies, budget - extra.mean()), choose(uniform, budget)
        if pick is None:
            continue
        for b, o in enumerate(pick):
            row = dict(budget=float(budget), bin=b, share=float(w[b]), **opts.labels.iloc[o].to_dict(),
                       accuracy=float(a[b, o]), flops=float(c[b, o] + extra[bins == b].mean()))
            if one is not None:
                row.update(uniform=name[one[0]], uniform_accuracy=float(a[b, one[0]]),
                           uniform_flops=float(c[b, one[0]]))
            rows.append(row)
    return pd.DataFrame(rows)


def summary(result: dict) -> list[str]:
    """The findings in words, one line per uniform baseline: what allocation by difficulty saves against it."""
    lines = [f"Difficulty from {result['difficulty']}; {result['problems']} problems in {result['bins']} bins; "
             "accuracy cross-validated (each problem's policy is chosen on the other problems)."]
    top = result["ratios"].best_accuracy.max()
    for r in result["ratios"].itertuples():
        if r.ratio == r.ratio:
            line = (f"Against {r.baseline} (at best {r.best_accuracy:.1%}): allocation matches it with "
                    f"{r.ratio:.2g}x {'less' if r.ratio >= 1 else 'more'} compute.")
        else:
            noise = abs(r.allocated_best - r.best_accuracy) <= 1.96 * r.best_se
            line = (f"Against {r.baseline} (at best {r.best_accuracy:.1%}): allocation never matches it; its "
                    f"best is {r.allocated_best:.1%}" + (", within noise." if noise else "."))
        if r.baseline.endswith("best single option") and r.best_accuracy < top:
            # it holds every option, yet ends below one family: picking among more options on half the problems
            # overfits that half more (cross-validated)
            # "It" read as allocation, which may well be above every baseline: name the subject
            line += (f" This baseline can choose any single option, yet ends below one limited to one kind "
                     f"({top:.1%}): it picks on the other problems, and with more options to pick from it picks "
                     "worse for these.")
        lines.append(line)
    return lines
