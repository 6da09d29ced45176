"""Everything the app plots, as DataFrames: accuracy-vs-compute curves per verifier,
Pareto frontiers, FLOPs-matched comparisons, the planner, and one-problem views.

Accounting per problem when a strategy uses k samples:
- ``flops``: k x mean inference FLOPs of one sample (``compute.flops_per_sample``),
  plus, for learned verifiers, 2 x verifier params x tokens it reads per sample.
- ``device_s``: sum of the k samples' shares of their batch's wall time
  (decode_s / batch_size + prefill_s / batch_size); what dollars and energy use.
- ``latency_s``: wall time a user waits for k samples of one problem decoded
  together (see ``latency``: flat in k up to the batch cap on a GPU, linear in
  k on a CPU), from the measured prefill and batch decode times; p50 over problems.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from . import compute, metrics
from .cache import SampleCache
from .errors import EngineError
from .models.params import SamplingParams
from .results import load_samples, model_info
from .tasks import Problem, Task

VERIFIERS = ("oracle", "majority", "orm", "prm")
VERIFIER_LABELS = {"oracle": "oracle (pass@k coverage)", "majority": "majority vote",
                   "orm": "ORM best-of-N", "prm": "PRM best-of-N (min)"}


def latency(prefill_s: float, decode_s: float, batch_size: int, k: int, device: str) -> float:
    """Wall time to get k samples of one prompt, from one measured batch.

    A GPU decodes a batch in about the same time whatever its row count (up to
    the batch cap), so k samples cost ceil(k / batch) batches. A CPU is compute
    bound: a batch's time grows with its rows, so k rows cost k/batch of it.
    """
    b = max(1, batch_size)
    if str(device).startswith("cuda"):
        return prefill_s + math.ceil(k / b) * decode_s
    return prefill_s + decode_s * k / b


def powers_of_two(n: int) -> list[int]:
    return [2 ** i for i in range(int(math.log2(max(1, n))) + 1)]


def _samples(cache, model, task, problems, params, verifier, verifier_model=None) -> pd.DataFrame:
    if verifier in ("orm", "prm"):
        from .scoring import ensure_scores
        return ensure_scores(cache, verifier_model or verifier, model, task, problems, params)
    return load_samples(cache, model, task, problems, params)


def _per_problem_accuracy(grp: pd.DataFrame, verifier: str, ks: Sequence[int]) -> np.ndarray:
    grp = grp.sort_values("idx")
    n = len(grp)
    valid = [k for k in ks if k <= n]
    correct = grp.correct.to_numpy(bool)
    if verifier == "oracle":
        vals = metrics.pass_at_k_matrix(np.array([n]), np.array([correct.sum()]), valid)[0]
    elif verifier == "majority":
        vals = metrics.majority_at_k_curve(grp.answer.where(grp.answer.notna(), None).tolist(), correct, valid)
    elif verifier in ("orm", "prm"):
        vals = metrics.best_of_k_curve(grp.score.to_numpy(float), correct, valid)
    else:
        raise EngineError(f"unknown verifier {verifier!r}: use one of {', '.join(VERIFIERS)}")
    out = np.full(len(ks), np.nan)
    out[: len(valid)] = vals
    return out


def _verifier_params(verifier: str, verifier_model: str | None = None) -> int:
    if verifier not in ("orm", "prm"):
        return 0
    from .verifiers import load_verifier
    v = load_verifier(verifier_model or verifier)
    return int(sum(p.numel() for p in v.model.parameters()))


def curves(cache: SampleCache, models: Sequence[str], task: Task, problems: Sequence[Problem],
           params: SamplingParams, verifier: str = "oracle", ks: Sequence[int] | None = None,
           cost: compute.CostModel | None = None, by_level: bool = False,
           verifier_model: str | None = None) -> pd.DataFrame:
    """One row per (model, k[, difficulty]): accuracy with 95% bootstrap CI and its costs.

    ``verifier_model`` overrides which verifier directory "orm"/"prm" use (default: shipped).
    """
    if verifier not in VERIFIERS:
        raise EngineError(f"unknown verifier {verifier!r}: use one of {', '.join(VERIFIERS)}")
    cost = cost or compute.CostModel()
    ks = list(ks or powers_of_two(params.n))
    vparams = _verifier_params(verifier, verifier_model)
    rows = []
    for model in models:
        df = _samples(cache, model, task, problems, params, verifier, verifier_model)
        if df.empty:
            continue
        info = model_info(cache, model)
        df = df.assign(
            flops=compute.flops_per_sample(info["matmul_params"], df.prompt_tokens.to_numpy(),
                                           df.completion_tokens.to_numpy(), info["n_layers"], info["d_model"])
            + 2.0 * vparams * (df.prompt_tokens + df.completion_tokens).to_numpy(),
            device_s=(df.decode_s + df.prefill_s) / df.batch_size,
            tokens=df.prompt_tokens + df.completion_tokens)
        probs = []
        for pid, grp in df.groupby("problem_id", sort=False):
            grp = grp.sort_values("idx")
            acc = _per_problem_accuracy(grp, verifier, ks)
            first = grp.iloc[0]
            probs.append(dict(
                problem_id=pid, difficulty=first.difficulty, acc=acc,
                flops1=grp.flops.mean(), dev1=grp.device_s.mean(), tok1=grp.tokens.mean(),
                lat=[latency(first.prefill_s, first.decode_s, int(first.batch_size), k, first.device) for k in ks]))
        groups = [(None, probs)]
        if by_level:
            groups = [(lvl, [p for p in probs if p["difficulty"] == lvl])
                      for lvl in sorted({p["difficulty"] for p in probs if p["difficulty"] is not None})]
        for lvl, ps in groups:
            if not ps:
                continue
            mat = np.vstack([p["acc"] for p in ps])
            lo, hi = metrics.bootstrap_ci(mat)
            for j, k in enumerate(ks):
                col = mat[:, j]
                if np.all(np.isnan(col)):
                    continue
                dev = k * float(np.mean([p["dev1"] for p in ps]))
                tok = k * float(np.mean([p["tok1"] for p in ps]))
                row = dict(model=model, params=int(info["params"]), verifier=verifier, k=k,
                           accuracy=float(np.nanmean(col)), lo=float(lo[j]), hi=float(hi[j]), problems=len(ps),
                           flops=k * float(np.mean([p["flops1"] for p in ps])),
                           latency_s=float(np.median([p["lat"][j] for p in ps])),
                           device_s=dev, tokens=tok,
                           dollars=float(cost.dollars(dev, tok)), energy_wh=float(cost.energy_wh(dev)),
                           train_flops=float(info["training_flops"] or 0),
                           train_tokens=float(info["training_tokens"] or 0))
                if by_level:
                    row["difficulty"] = int(lvl)
                rows.append(row)
    return pd.DataFrame(rows)


def curves_by_level(*args, **kwargs) -> pd.DataFrame:
    return curves(*args, by_level=True, **kwargs)


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
    t1 = out.tokens / out.k
    served = ratio * out.train_tokens / t1.where(t1 > 0, np.nan)
    out["pretrain_flops"] = (out.train_flops / served).fillna(0.0)
    out["total_flops"] = out.flops + out.pretrain_flops
    return out


def frontier(df: pd.DataFrame, x: str = "flops", y: str = "accuracy") -> pd.DataFrame:
    """Pareto-optimal rows: no other row is both cheaper on ``x`` and at least as accurate."""
    if df.empty:
        return df
    d = df.sort_values([x, y], ascending=[True, False])
    keep, best = [], -np.inf
    for i, row in d.iterrows():
        if row[y] > best:
            keep.append(i)
            best = row[y]
    return d.loc[keep]


def flops_matched(df: pd.DataFrame, small: str, large: str, x: str = "flops") -> pd.DataFrame:
    """Per difficulty level: ``large`` with 1 sample vs ``small`` at the largest k within the same FLOPs."""
    out = []
    levels = sorted(df.difficulty.unique()) if "difficulty" in df else [None]
    for lvl in levels:
        d = df if lvl is None else df[df.difficulty == lvl]
        big = d[(d.model == large) & (d.k == 1)]
        sm = d[d.model == small]
        if big.empty or sm.empty:
            continue
        budget = float(big[x].iloc[0])
        within = sm[sm[x] <= budget * 1.0001]
        pick = within.sort_values("k").iloc[-1] if not within.empty else sm.sort_values("k").iloc[0]
        out.append(dict(difficulty=lvl, large=large, large_accuracy=float(big.accuracy.iloc[0]),
                        large_flops=budget, small=small, small_k=int(pick.k),
                        small_accuracy=float(pick.accuracy), small_flops=float(pick[x]),
                        small_lo=float(pick.lo), small_hi=float(pick.hi),
                        large_lo=float(big.lo.iloc[0]), large_hi=float(big.hi.iloc[0]),
                        winner=small if pick.accuracy > big.accuracy.iloc[0] else large))
    return pd.DataFrame(out)


def plan(df: pd.DataFrame, target_accuracy: float, latency_budget_s: float, queries_per_day: float,
         cost_col: str = "dollars") -> dict:
    """Cheapest configuration meeting accuracy and latency, and the best one from another model size."""
    if not 0 <= target_accuracy <= 1:
        raise EngineError(f"target accuracy must be between 0 and 1, got {target_accuracy}")
    if latency_budget_s <= 0 or queries_per_day < 0:
        raise EngineError("latency budget must be positive and queries per day non-negative")
    ok = df[(df.accuracy >= target_accuracy) & (df.latency_s <= latency_budget_s)].sort_values(cost_col)
    if ok.empty:
        best = df.sort_values("accuracy", ascending=False).head(1)
        hint = (f" The most accurate cached option is {best.model.iloc[0]} with {best.verifier.iloc[0]} at "
                f"k={best.k.iloc[0]} ({best.accuracy.iloc[0]:.1%})." if not best.empty else "")
        return {"best": None, "runner_up": None,
                "explanation": "No cached configuration meets both the accuracy target and the latency budget."
                + hint + " Lower the target, raise the budget, or run larger sample budgets."}

    def describe(r):
        per_q = float(r[cost_col])
        return dict(model=r.model, verifier=r.verifier, k=int(r.k), accuracy=float(r.accuracy),
                    latency_s=float(r.latency_s), cost_per_query=per_q, cost_per_1000=per_q * 1000,
                    cost_per_month=per_q * queries_per_day * 30, flops=float(r.flops))
    best = describe(ok.iloc[0])
    other = ok[ok.model != best["model"]]
    runner = describe(other.iloc[0]) if not other.empty else None
    text = (f"{best['model']} with {VERIFIER_LABELS.get(best['verifier'], best['verifier'])} over {best['k']} "
            f"sample{'s' if best['k'] > 1 else ''} reaches {best['accuracy']:.1%} at ${best['cost_per_1000']:.4f} "
            f"per 1,000 queries")
    if runner:
        ratio = runner["cost_per_1000"] / best["cost_per_1000"] if best["cost_per_1000"] > 0 else float("inf")
        text += (f", {ratio:.1f}x cheaper than the best {runner['model']} option "
                 f"({runner['verifier']}, k={runner['k']}, {runner['accuracy']:.1%}).")
    else:
        text += "; no other model size meets the target."
    return {"best": best, "runner_up": runner, "explanation": text}


def problem_view(cache: SampleCache, model: str, task: Task, problem: Problem, params: SamplingParams,
                 verifier: str = "oracle", verifier_model: str | None = None) -> dict:
    """Every sample of one problem with answer, correctness, score, step scores; the vote and the pick."""
    df = _samples(cache, model, task, [problem], params, verifier, verifier_model)
    if df.empty:
        return {"samples": df, "histogram": pd.DataFrame(columns=["answer", "count", "correct"]), "pick": None}
    df = df.sort_values("idx").reset_index(drop=True)
    hist = (df.assign(answer=df.answer.fillna("(none)")).groupby("answer")
            .agg(count=("idx", "count"), correct=("correct", "max")).reset_index()
            .sort_values("count", ascending=False))
    if verifier in ("orm", "prm"):
        pick = int(df.score.idxmax())
    elif verifier == "majority":
        voted = hist[hist.answer != "(none)"]
        top = voted.answer.iloc[0] if not voted.empty else None
        pick = int(df.index[df.answer == top][0]) if top is not None else None
    else:
        hits = df.index[df.correct]
        pick = int(hits[0]) if len(hits) else None
    return {"samples": df, "histogram": hist, "pick": pick,
            "gold": problem.answer, "pick_correct": bool(df.correct.iloc[pick]) if pick is not None else False}


def estimate_seconds(cache: SampleCache, models: Sequence[str], task: Task, problems: Sequence[Problem],
                     params: SamplingParams, fallback_samples_per_s: float = 20.0) -> float:
    """Seconds to fill what is missing, from each model's measured throughput in this cache."""
    from .results import model_fp
    from .runner import plan as plan_missing, resolve_params
    params = resolve_params(task, params)
    total = 0.0
    for m in models:
        try:
            fp = model_fp(cache, m)
        except EngineError:
            total += len(problems) * params.n / fallback_samples_per_s
            continue
        missing = sum(len(v) for v in plan_missing(cache, fp, task, problems, params).values())
        rate = cache.throughput(fp) or fallback_samples_per_s
        total += missing / rate
    return total
