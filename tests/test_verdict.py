"""The verdict in words, on hand-made curves whose right answer is known."""
import numpy as np
import pandas as pd
import pytest

from engine.analysis.verdict import compare, coverage_sentence, verdict


def curves(small_acc: dict, large_acc: dict, oracle: dict | None = None, width: float = 0.02) -> pd.DataFrame:
    """small (1 FLOP per sample) and large (8 FLOPs per sample), majority vote, accuracy by k; optional oracle."""
    rows = []
    for model, params, per, accs, strategy in (("small", 1, 1.0, small_acc, "majority"),
                                               ("large", 8, 8.0, large_acc, "majority"),
                                               ("small", 1, 1.0, oracle or {}, "oracle"),
                                               ("large", 8, 8.0, {1: large_acc[1]} if oracle else {}, "oracle")):
        for k, a in accs.items():
            rows.append(dict(model=model, params=params, strategy=strategy, k=k, accuracy=a, lo=a - width,
                             hi=a + width, flops=per * k))
    return pd.DataFrame(rows)


def test_small_with_many_samples_clearly_wins():
    df = curves({1: 0.3, 2: 0.3, 4: 0.5, 8: 0.7}, {1: 0.6})
    c = compare(df, "small", "large")
    assert c["small_k"] == 8 and c["winner"] == "small" and c["clear"] and c["budget"] == 8.0
    v = verdict(df)
    assert v["headline"].startswith("A smaller model with more samples beats the largest")
    assert "small × 8 samples (70.0%)" in v["headline"] and "large × 1 (60.0%)" in v["headline"]
    assert "**small wins** by 10.0 points" in v["lines"][0] and "majority vote" in v["lines"][0]


def test_large_once_wins_and_the_oracle_is_only_a_ceiling():
    df = curves({1: 0.3, 2: 0.3, 4: 0.4, 8: 0.45}, {1: 0.6}, oracle={1: 0.3, 2: 0.45, 4: 0.6, 8: 0.75})
    c = compare(df, "small", "large")
    assert c["winner"] == "large" and c["clear"] and c["small_strategy"] == "majority"  # never the oracle
    assert c["ceiling"] == 0.75 and c["ceiling_k"] == 8
    v = verdict(df)
    assert "running the largest model (large) once is clearly better" in v["headline"]
    assert "would reach 75.0%" in v["lines"][0] and "answer key" in v["lines"][0]
    assert "small 75.0% with 8 samples" in v["coverage"]


def test_a_gap_inside_the_noise_is_called_noise():
    df = curves({1: 0.3, 8: 0.61}, {1: 0.6}, width=0.05)
    c = compare(df, "small", "large")
    assert not c["clear"] and c["winner"] == "small"
    assert "within noise" in verdict(df)["lines"][0]
    assert verdict(df)["headline"].startswith("At equal compute the best smaller option only matches the largest")


def test_levels_where_the_answer_differs_are_named():
    overall = curves({1: 0.3, 8: 0.5}, {1: 0.6})
    easy = curves({1: 0.8, 8: 0.99}, {1: 0.9}).assign(difficulty=1)
    hard = curves({1: 0.05, 8: 0.1}, {1: 0.4}).assign(difficulty=2)
    v = verdict(overall, pd.concat([easy, hard]))
    assert v["levels"] == ["Level 1: small × 8 samples with majority vote (99.0%) beats large × 1 (90.0%)."]
    # the pooled headline says it is pooled, and that a level goes the other way (it read as a contradiction)
    assert "over all problems together" in v["headline"]
    assert v["headline"].endswith("Not at every level: at 1 of them a smaller model wins (below).")
    assert "Not at every level" not in verdict(overall, hard)["headline"]


def test_nothing_to_say_without_two_models_or_a_budget():
    assert verdict(curves({1: 0.3}, {1: 0.6})[lambda d: d.model == "small"])["headline"] is None
    # the small model's cheapest point costs more than the large model's one sample: no comparison, and why
    df = curves({1: 0.3}, {1: 0.6})
    df.loc[df.model == "small", "flops"] = 100.0
    assert compare(df, "small", "large") is None and verdict(df)["headline"] is None
    assert verdict(df)["why_none"] == ("No verdict. One sample of small costs more (100) than one of large (8), the "
                                      "largest by parameters, so small has no option within that budget.")
    # beside a model that does compare, it gets its line
    mid = curves({1: 0.3, 4: 0.7}, {1: 0.6}).assign(model=lambda d: d.model.replace("small", "mid"), params=2)
    v = verdict(pd.concat([df, mid[mid.model == "mid"]]))
    assert v["headline"] and any(line.startswith("One sample of small costs more") for line in v["lines"])
    assert coverage_sentence(curves({1: 0.3}, {1: 0.6}), "large") is None


def test_clear_means_the_difference_interval_excludes_zero():
    # half-widths 0.1 each: se of the difference = hypot(0.1, 0.1) / 1.96 = 0.072; clear beyond 0.141
    assert compare(curves({1: 0.3, 8: 0.75}, {1: 0.6}, width=0.1), "small", "large")["clear"]
    assert not compare(curves({1: 0.3, 8: 0.73}, {1: 0.6}, width=0.1), "small", "large")["clear"]


def test_no_verdict_from_models_measured_on_different_problems():
    df = curves({1: 0.3, 8: 0.7}, {1: 0.6}).assign(problems=40)
    df.loc[df.model == "large", "problems"] = 1  # the large model is still being sampled
    v = verdict(df)
    assert v["headline"] is None and "different numbers of problems (small 40, large 1)" in v["pending"]


def test_a_lead_within_noise_is_not_called_better():
    df = curves({1: 0.3, 8: 0.55}, {1: 0.6}, width=0.05)  # large leads by 5 points, intervals of +-5
    c = compare(df, "small", "large")
    assert c["winner"] == "large" and not c["clear"]
    assert verdict(df)["headline"] == ("At equal compute, no smaller model with more samples beats the largest "
                                       "(large) once; its lead over small is within noise on this many problems.")


def test_flops_matched_and_equal_compute_use_the_verdicts_rule():
    from engine.analysis import equal_compute, flops_matched
    df = curves({1: 0.3, 2: 0.6, 4: 0.5, 8: 0.5}, {1: 0.6}).assign(difficulty=1)
    fm = flops_matched(df, "small", "large")
    eq = equal_compute(df, "small", "large")
    c = compare(df, "small", "large")
    # the best option within 8 FLOPs is k=2 (0.6), not the most samples (k=8, 0.5): a tie with large
    assert fm.small_k.iloc[0] == eq.small_k.iloc[0] == c["small_k"] == 2
    assert fm.winner.iloc[0] == "tie" and not fm.clear.iloc[0]


def test_a_small_model_out_of_measured_samples_is_not_called_equal_compute():
    """large costs 8 per sample, small 1: with only 2 samples measured, small spends a quarter of the budget; the
    verdict says so instead of implying the comparison used equal compute."""
    df = curves({1: 0.3, 2: 0.35}, {1: 0.6})
    c = compare(df, "small", "large")
    assert c["capped"] and c["small_k"] == 2 and c["small_cost"] == 2.0 and c["budget"] == 8.0
    v = verdict(df)
    assert "Its 2 samples cost only 2: small ran out of measured samples, not of compute" in v["lines"][0]
    assert "small had too few samples measured to spend the whole budget" in v["headline"]
    full = verdict(curves({1: 0.3, 2: 0.35, 4: 0.4, 8: 0.45}, {1: 0.6}))  # 8 samples: the whole budget
    assert not full["comparisons"][0]["capped"] and "ran out" not in full["lines"][0]
    assert "too few samples" not in full["headline"]


def _blocks_and_curves(small_acc, large_acc, levels=None):
    """Curve rows (majority; small 1 FLOP a sample at k=8, large 8 at k=1) from per-problem accuracies, and the
    blocks they come from, as ``analysis.curves`` would give them."""
    from types import SimpleNamespace

    from engine import metrics
    n = len(small_acc)
    ids = np.array([f"p{i:03d}" for i in range(n)])
    lv = np.ones(n, int) if levels is None else np.asarray(levels)
    rows, blocks = [], []
    for model, params, k, per, acc in (("small", 1, 8, 1.0, small_acc), ("large", 8, 1, 8.0, large_acc)):
        acc = np.asarray(acc, float)
        lo, hi = metrics.bootstrap_ci(acc)
        rows.append(dict(model=model, params=params, strategy="majority", k=k, accuracy=acc.mean(), lo=float(lo),
                         hi=float(hi), flops=per * k, problems=n))
        blocks.append(SimpleNamespace(model=model, strategy="majority", ks=(k,), problem_ids=ids, levels=lv,
                                      acc=acc[:, None]))
    return pd.DataFrame(rows), blocks


def test_the_gap_is_tested_on_per_problem_differences_when_the_blocks_are_there():
    """Both models answer the same problems, and hard problems are hard for both: 3 points ahead on every
    problem is clear, though the two intervals, combined as if independent, overlap zero."""
    from engine.analysis.verdict import Paired
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.85, 300)                    # problems from hard to easy
    small = np.clip(base + 0.03 + rng.normal(0, 0.01, 300), 0, 1)
    df, blocks = _blocks_and_curves(small, base)
    apart = compare(df, "small", "large")
    paired = compare(df, "small", "large", paired=Paired(blocks))
    assert apart["winner"] == paired["winner"] == "small"
    assert not apart["clear"] and paired["clear"]
    assert "**small wins** by 3.0 points" in verdict(df, paired=Paired(blocks))["lines"][0]
    assert "within noise" in verdict(df)["lines"][0]
    # and a difference that is noise stays noise: the small model ahead on some problems, behind on as many
    noise = np.clip(base + rng.choice([-0.3, 0.3], 300), 0, 1)
    df, blocks = _blocks_and_curves(noise, base)
    assert not compare(df, "small", "large", paired=Paired(blocks))["clear"]


def test_a_certain_lead_under_a_point_is_no_win():
    """Both at the ceiling: the small model 100% on every problem, the large one 99.7% (slips on a few). The
    difference is beyond noise but under a point: it matches, it does not win."""
    from engine.analysis.verdict import Paired
    large = np.ones(100)
    large[:8] = [0.97, 0.96, 0.98, 0.97, 0.96, 0.97, 0.98, 0.91]
    df, blocks = _blocks_and_curves(np.ones(100), large)
    c = compare(df, "small", "large", paired=Paired(blocks))
    assert c["clear"] and c["small_lead"] and c["winner"] == "small"
    v = verdict(df, paired=Paired(blocks))
    assert v["headline"].startswith("At equal compute the best smaller option only matches the largest, within a point")
    assert "too small to matter" in v["lines"][0] and "wins" not in v["lines"][0]


def test_running_out_of_samples_is_judged_on_the_chosen_strategys_own_costs():
    """A scorer's compute makes its rows cost more than the budget; the majority vote the verdict picks spent a
    quarter of it, and that is what the capped note is about."""
    df = curves({1: 0.3, 2: 0.35}, {1: 0.6})
    scored = df[df.model == "small"].assign(strategy="best_of_n:orm", flops=lambda d: d.flops + 100.0, accuracy=0.2,
                                            lo=0.18, hi=0.22)
    c = compare(pd.concat([df, scored], ignore_index=True), "small", "large")
    assert c["small_strategy"] == "majority" and c["capped"]


def test_flops_matched_calls_a_lead_under_a_point_no_clear_win_as_the_verdict_does():
    """The per-level bars on Size vs compute said "wins clearly" for 100% against 99.7%, which the verdict calls
    too small to matter."""
    from engine.analysis import flops_matched
    from engine.analysis.verdict import Paired
    large = np.ones(100)
    large[:8] = [0.97, 0.96, 0.98, 0.97, 0.96, 0.97, 0.98, 0.91]
    df, blocks = _blocks_and_curves(np.ones(100), large)
    fm = flops_matched(df, "small", "large", paired=Paired(blocks))
    assert fm.winner.iloc[0] == "small" and not fm.clear.iloc[0] and fm.result.iloc[0] == "under a point"
    assert compare(df, "small", "large", paired=Paired(blocks))["small_lead"]
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.85, 300)
    df, blocks = _blocks_and_curves(np.clip(base + 0.03 + rng.normal(0, 0.01, 300), 0, 1), base)
    fm = flops_matched(df, "small", "large", paired=Paired(blocks))
    assert fm.clear.iloc[0] and fm.result.iloc[0] == "small wins"  # 3 points: a clear win
    # a lead inside the noise is said to be one, not shown as a winner beside an unticked box
    fm = flops_matched(curves({1: 0.3, 8: 0.61}, {1: 0.6}, width=0.05), "small", "large")
    assert fm.winner.iloc[0] == "small" and fm.result.iloc[0] == "within noise"
    # one small sample over the budget: shown, but nobody "wins" an unequal comparison
    dear = curves({1: 0.7}, {1: 0.6})
    dear.loc[dear.model == "small", "flops"] = 100.0
    fm = flops_matched(dear, "small", "large")
    assert not fm.fits.iloc[0] and fm.winner.iloc[0] == "none" and not fm.clear.iloc[0]
    assert fm.result.iloc[0] == "no comparison: one small sample costs more"
    from ui.figures import flops_matched_figure
    assert flops_matched_figure(fm).data[0].x[0] == "all<br>over budget"


def test_one_sample_because_the_verifier_makes_two_too_dear_is_said():
    """Best-of-N by a verifier as big as the largest model: the small model's best option is one sample, and the
    verdict said so without why."""
    df = curves({1: 0.3}, {1: 0.6})
    scored = pd.DataFrame([dict(model="small", params=1, strategy="best_of_n:orm", k=k, accuracy=0.5, lo=0.48,
                                hi=0.52, flops=k * (1.0 + 8.0)) for k in (2, 4)])
    c = compare(pd.concat([df, scored]), "small", "large")
    assert c["small_k"] == 1 and c["two_cost"] == 18.0
    line = verdict(pd.concat([df, scored]))["lines"][0]
    assert "Two samples of small already cost 18, over the budget: the verifier (ORM) reads every sample, at 8 each." \
        in line
    assert compare(curves({1: 0.3, 2: 0.35}, {1: 0.6}), "small", "large")["two_cost"] is None  # two fit the budget
