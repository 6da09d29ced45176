"""One problem up close: every sample with its answer and score, the answer histogram, a strategy's pick."""
from __future__ import annotations

import pandas as pd

from .. import scorers, strategies
from ..cache import SampleCache
from ..results import load_samples


def problem_view(cache: SampleCache, exp, problem_id: str) -> dict:
    """Samples of ``exp``'s first model on one problem, scored by its first strategy's scorer (if any).

    ``pick`` is the row (of ``samples``) the strategy returns given the whole pool; ``steps`` says
    whether the scores come with per-step scores (a PRM) that a page can shade lines by; ``tied``, the rows the
    pick was drawn from at random (more than one: equal top scores).
    """
    task = exp.load_task()
    problem = task.by_id()[problem_id]
    strat = strategies.get(exp.strategies[0])
    df = load_samples(cache, exp.models[0], task, [problem], exp.params)
    empty = {"samples": df, "histogram": pd.DataFrame(columns=["answer", "count", "correct"]), "pick": None,
             "gold": problem.answer, "pick_correct": False, "strategy": strat, "steps": False, "tied": []}
    if df.empty:
        return empty
    if strat.scorer:
        df = scorers.get(strat.scorer).score(cache, task, df)
    df = df.sort_values("idx").reset_index(drop=True)
    hist = (df.assign(answer=df.answer.fillna("(none)")).groupby("answer")
            .agg(count=("idx", "count"), correct=("correct", "max")).reset_index()
            .sort_values("count", ascending=False))
    pool = strategies.Pool.from_frame(df)
    pick = strat.pick(pool)
    steps = "step_scores" in df and bool(df["step_scores"].map(len).any())
    return {**empty, "samples": df, "histogram": hist, "pick": pick,
            "pick_correct": bool(df.correct.iloc[pick]) if pick is not None else False, "steps": steps,
            "tied": strat.tied(pool)}


def telling_problem(cache: SampleCache, exp, ids) -> str | None:
    """A problem worth opening first among ``ids`` (in their order), for ``exp``'s first model: the first whose
    cached pool holds a right answer that the vote misses (its most common answer is wrong, or tied), else the
    first with right and wrong samples, else None. A pool of identical right samples teaches nothing."""
    task = exp.load_task()
    by_id = task.by_id()
    df = load_samples(cache, exp.models[0], task, [by_id[i] for i in ids if i in by_id], exp.params)
    if df.empty:
        return None
    g = df.assign(answer=df["answer"].fillna("(none)"))
    right = g.groupby("problem_id")["correct"].any()
    mixed = right & ~g.groupby("problem_id")["correct"].all()
    counts = g.groupby(["problem_id", "answer"]).agg(n=("idx", "size"), ok=("correct", "max")).reset_index()
    top = counts[counts["n"] == counts.groupby("problem_id")["n"].transform("max")]
    vote_sure = top.groupby("problem_id")["ok"].all() & (top.groupby("problem_id").size() == 1)
    missed = mixed & ~vote_sure.reindex(mixed.index, fill_value=False)
    order = [i for i in ids if i in mixed.index]
    return next((i for i in order if missed[i]), next((i for i in order if mixed[i]), None))
