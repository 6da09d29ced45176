"""The planner: the cheapest measured configuration that meets an accuracy target and a latency budget."""
from __future__ import annotations

import pandas as pd

from .. import strategies
from ..errors import EngineError


def recommend(df: pd.DataFrame, target_accuracy: float, latency_budget_s: float, queries_per_day: float,
              cost_col: str = "dollars") -> dict:
    """Best row of ``curves`` output meeting both limits, and the best one from another model size.

    Strategies that need the answer key (the oracle) are never candidates: no deployed system has it.
    """
    if not 0 <= target_accuracy <= 1:
        raise EngineError(f"target accuracy must be between 0 and 1, got {target_accuracy}")
    if latency_budget_s <= 0 or queries_per_day < 0:
        raise EngineError("latency budget must be positive and queries per day non-negative")
    if not df.empty:
        df = df[[not strategies.get(s).needs_key for s in df.strategy]]
    ok = df[(df.accuracy >= target_accuracy) & (df.latency_s <= latency_budget_s)].sort_values(cost_col)
    if ok.empty:
        best = df.sort_values("accuracy", ascending=False).head(1)
        hint = (f" The most accurate cached option is {best.model.iloc[0]} with "
                f"{strategies.label(best.strategy.iloc[0])} at k={best.k.iloc[0]} ({best.accuracy.iloc[0]:.1%})."
                if not best.empty else "")
        return {"best": None, "runner_up": None,
                "explanation": "No cached configuration meets both the accuracy target and the latency budget."
                + hint + " Lower the target, raise the budget, or run larger sample budgets."}

    def describe(r):
        per_q = float(r[cost_col])
        return dict(model=r.model, strategy=r.strategy, label=strategies.label(r.strategy), k=int(r.k),
                    accuracy=float(r.accuracy), latency_s=float(r.latency_s), cost_per_query=per_q,
                    cost_per_1000=per_q * 1000, cost_per_month=per_q * queries_per_day * 30, flops=float(r.flops))
    best = describe(ok.iloc[0])
    other = ok[ok.model != best["model"]]
    runner = describe(other.iloc[0]) if not other.empty else None
    text = (f"{best['model']} with {best['label']} over {best['k']} "
            f"sample{'s' if best['k'] > 1 else ''} reaches {best['accuracy']:.1%} at ${best['cost_per_1000']:.4f} "
            f"per 1,000 queries")
    if runner:
        ratio = runner["cost_per_1000"] / best["cost_per_1000"] if best["cost_per_1000"] > 0 else float("inf")
        text += (f", {ratio:.1f}x cheaper than the best {runner['model']} option "
                 f"({runner['label']}, k={runner['k']}, {runner['accuracy']:.1%}).")
    else:
        text += "; no other model size meets the target."
    return {"best": best, "runner_up": runner, "explanation": text}
