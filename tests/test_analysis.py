"""analysis.py on real cached samples of a tiny model, and its pure parts on hand-made tables."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from engine import analysis, compute, metrics, planning, tasks
from engine.accounting import latency
from engine.errors import EngineError
from engine.experiment import Experiment
from engine.models import SamplingParams
from engine.runner import run
from engine.tasks import Problem, Task, get_task

SP = SamplingParams(n=8, temperature=1.0, max_new_tokens=16)


def toy_task():
    """Problems whose gold answers a random tiny model hits now and then (single digits)."""
    ps = [Problem(id=f"t{i}", question=f"What is {i}?", answer=str(i % 10), difficulty=1 + i % 2) for i in range(6)]
    return Task("toy", ps, lambda p: f"Q: {p.question}\nA: ", stop=("\n",))


tasks.register("toy")(toy_task)  # a task is one registered factory; experiments name it


def experiment(model, strategies=("oracle",), params=SP) -> Experiment:
    return Experiment.build([model], "toy", params, strategies=strategies)


@pytest.fixture(scope="module")
def filled(tiny_model, tmp_path_factory):
    from engine.cache import SampleCache
    cache = SampleCache(tmp_path_factory.mktemp("an") / "c.duckdb")
    task = toy_task()
    run(tiny_model, task, task.problems, SP, cache)
    return cache, task


@pytest.mark.parametrize("verifier", ["oracle", "majority", "best_of_n:self-likelihood",
                                      "weighted_majority:self-likelihood"])
def test_curves_on_real_samples(filled, tiny_model, verifier):
    cache, task = filled
    df = analysis.curves(cache, experiment(tiny_model, [verifier]))
    assert set(df.strategy) == {verifier} and set(df.model) == {"tiny-a"}
    assert list(df.k) == [1, 2, 4, 8]
    assert ((df.lo <= df.accuracy + 1e-12) & (df.accuracy <= df.hi + 1e-12)).all()
    assert df.accuracy.between(0, 1).all()
    # the shared prompt is prefilled once (prefix caching): FLOPs = prompt + k x completion
    per_k = np.diff(df.flops) / np.diff(df.k)
    assert np.allclose(per_k, per_k[0]) and df.flops.iloc[0] > per_k[0]
    linear = analysis.curves(cache, experiment(tiny_model, [verifier]).replace(
        cost=compute.CostModel(prefix_cache=False)))
    assert np.allclose(linear.flops / linear.k, linear.flops.iloc[0])  # once per sample: linear in k
    assert np.allclose(linear.flops.iloc[0], df.flops.iloc[0])  # one sample costs the same either way
    assert (df.dollars > 0).all() and (df.energy_wh > 0).all() and (df.latency_s > 0).all()
    # the k=1 point is the plain mean correctness, whatever the verifier
    s = cache.samples()
    assert df.accuracy.iloc[0] == pytest.approx(s.groupby("problem_id").correct.mean().mean())
    if verifier == "oracle":
        assert df.accuracy.is_monotonic_increasing
        per = s.groupby("problem_id").correct.agg(["count", "sum"])
        expect = np.mean([metrics.pass_at_k(8, int(c), 4) for c in per["sum"]])
        assert df.set_index("k").accuracy[4] == pytest.approx(expect)
    by = analysis.curves(cache, experiment(tiny_model, [verifier]), by_level=True)
    assert set(by.difficulty) == {1, 2} and (by.problems == 3).all()


def test_curves_many_strategies_at_once(filled, tiny_model):
    cache, _ = filled
    specs = ["oracle", "majority", "best_of_n:self-likelihood"]
    df = analysis.curves(cache, experiment(tiny_model, specs))
    assert list(dict.fromkeys(df.strategy)) == specs
    one = analysis.curves(cache, experiment(tiny_model, ["majority"]))
    both = df[df.strategy == "majority"].reset_index(drop=True)
    pd.testing.assert_frame_equal(both, one)
    assert (df.mc_se == 0).all()  # every one of these is exact


def test_curves_bad_strategy(filled, tiny_model):
    with pytest.raises(EngineError, match="unknown strategy"):
        experiment(tiny_model, ["psychic"])


def test_problem_view(filled, tiny_model):
    cache, task = filled
    v = analysis.problem_view(cache, experiment(tiny_model, ["majority"]), task.problems[0].id)
    assert len(v["samples"]) == 8 and v["histogram"]["count"].sum() == 8
    if v["pick"] is not None:  # the pick's answer has the top count (several may tie for it)
        votes = v["histogram"][v["histogram"].answer != "(none)"].set_index("answer")["count"]
        assert votes[v["samples"].answer.iloc[v["pick"]]] == votes.max()


def test_estimate_seconds_uses_measured_rate(filled, tiny_model):
    cache, task = filled
    assert planning.estimate_seconds(cache, experiment(tiny_model)) == 0  # all cached
    more = planning.estimate_seconds(cache, experiment(tiny_model, params=SP.with_n(16)))
    rate = cache.throughput(cache.samples().model_fp.iloc[0])
    assert more == pytest.approx(6 * 8 / rate)


def _table():
    rows = []
    for model, base, flops1, params in [("s", 0.2, 1.0, 10), ("l", 0.5, 8.0, 80)]:
        for k in (1, 2, 4, 8, 16):
            acc = min(0.95, base + 0.1 * math.log2(k))
            rows.append(dict(model=model, params=params, strategy="majority", k=k, accuracy=acc, lo=acc - .05,
                             hi=acc + .05, flops=k * flops1, latency_s=0.1 * (1 + (k > 8)), dollars=k * flops1 * 1e-6,
                             energy_wh=k * 1e-3, tokens=k * 50.0, train_flops=6 * params * 1000.0,
                             train_tokens=1000.0, difficulty=1))
    return pd.DataFrame(rows)


def test_frontier_matches_brute_force():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"flops": rng.integers(1, 20, 40).astype(float), "accuracy": rng.random(40)})
    f = analysis.frontier(df, "flops")
    dominated = {i for i, j in itertools.permutations(df.index, 2)
                 if df.flops[j] <= df.flops[i] and df.accuracy[j] >= df.accuracy[i]
                 and (df.flops[j] < df.flops[i] or df.accuracy[j] > df.accuracy[i])}
    assert set(f.index) == set(df.index) - dominated


def test_flops_matched():
    out = analysis.flops_matched(_table(), small="s", large="l")
    row = out.iloc[0]
    assert row.small_k == 8 and row.large_flops == 8.0 and row.small_flops == 8.0
    assert row.small_accuracy == pytest.approx(0.5) and row.large_accuracy == pytest.approx(0.5)


def test_with_pretraining():
    df = analysis.with_pretraining(_table(), ratio=2.0)
    # each query carries 6ND / (ratio * D / t1) = 6N * t1 / ratio, t1 = tokens of one sample
    assert np.allclose(df.pretrain_flops, 6 * df.params * (df.tokens / df.k) / 2.0)
    assert df.groupby("model").pretrain_flops.nunique().eq(1).all()  # independent of k
    assert np.allclose(df.total_flops, df.flops + df.pretrain_flops)
    with pytest.raises(EngineError):
        analysis.with_pretraining(_table(), ratio=0)


def test_plan():
    df = _table()
    p = analysis.recommend(df, target_accuracy=0.5, latency_budget_s=0.15, queries_per_day=1000)
    ok = df[(df.accuracy >= 0.5) & (df.latency_s <= 0.15)]
    assert p["best"]["cost_per_query"] == pytest.approx(ok.dollars.min())
    assert p["runner_up"]["model"] != p["best"]["model"]
    assert p["best"]["cost_per_month"] == pytest.approx(p["best"]["cost_per_query"] * 1000 * 30)
    assert p["best"]["model"] in p["explanation"]
    none = analysis.recommend(df, target_accuracy=0.99, latency_budget_s=1, queries_per_day=10)
    assert none["best"] is None and "No cached configuration" in none["explanation"]
    with pytest.raises(EngineError):
        analysis.recommend(df, target_accuracy=2, latency_budget_s=1, queries_per_day=1)


def test_plan_says_about_the_same_cost_instead_of_1_0x_cheaper():
    df = _table()
    df["dollars"] = 1e-4 * (1 + 0.01 * (df.model == df.model.iloc[-1]))  # every option within 1% of the others
    p = analysis.recommend(df, target_accuracy=0.0, latency_budget_s=10, queries_per_day=1)
    assert p["runner_up"] is not None and "about the same cost as" in p["explanation"]
    assert "1.0x" not in p["explanation"]


def test_plan_at_equal_price_recommends_the_more_accurate_model():
    """Projected onto a big GPU the small models all cost the same (overhead-bound): the planner recommended
    the least accurate of them, 'about the same cost as' a more accurate one."""
    df = _table()[lambda d: d.k == 1].assign(dollars=[4.77e-7, 4.78e-7])  # s: 20%, l: 50%; l 0.2% dearer
    p = analysis.recommend(df, target_accuracy=0.1, latency_budget_s=1, queries_per_day=1)
    assert p["best"]["model"] == "l" and p["runner_up"]["model"] == "s"
    assert p["explanation"].startswith("s, l cost about the same here") or \
        p["explanation"].startswith("l, s cost about the same here")
    assert "the most accurate of them is recommended" in p["explanation"]
    # a real saving still wins: 10% cheaper is not "the same price"
    cheap = analysis.recommend(df.assign(dollars=[4.3e-7, 4.78e-7]), target_accuracy=0.1, latency_budget_s=1,
                               queries_per_day=1)
    assert cheap["best"]["model"] == "s" and "about the same here" not in cheap["explanation"]
    # the safe option follows the same rule
    unsure = analysis.recommend(df.assign(lo=[0.15, 0.45], dollars=[4.77e-7, 4.77e-7]).pipe(
        lambda d: pd.concat([d, d.assign(model=d.model + "2", accuracy=d.accuracy + 0.01, lo=d.lo + 0.1)])),
        target_accuracy=0.5, latency_budget_s=1, queries_per_day=1)
    assert unsure["best"]["model"] == "l2" and unsure["safe"] is None


def test_plan_never_recommends_a_strategy_that_needs_the_answer_key():
    df = pd.concat([_table(), _table().assign(strategy="oracle", accuracy=1.0, dollars=0.0)])
    p = analysis.recommend(df, target_accuracy=0.5, latency_budget_s=0.15, queries_per_day=1000)
    assert p["best"]["strategy"] == "majority"


def test_latency_model():
    # GPU: a batch takes the same time whatever its rows, so k <= batch is flat, then steps
    assert latency(0.1, 2.0, 64, 1, "cuda") == latency(0.1, 2.0, 64, 64, "cuda") == 2.1
    assert latency(0.1, 2.0, 64, 65, "cuda") == pytest.approx(4.1)
    # CPU: compute bound, rows cost their share of the batch
    assert latency(0.1, 2.0, 64, 16, "cpu") == pytest.approx(0.1 + 0.5)


def test_plan_offers_one_sample_once_and_names_the_binding_limit():
    df = pd.concat([_table(), _table().assign(strategy="best_of_n:orm")])
    p = analysis.recommend(df, target_accuracy=0.0, latency_budget_s=1, queries_per_day=1)
    assert p["best"]["k"] == 1 and p["best"]["label"] == "a single sample"  # not "ORM best-of-N over 1 sample"
    assert p["runner_up"]["k"] == 1 and "with one sample reaches" in p["explanation"]
    assert "over 1 sample" not in p["explanation"]
    slow = analysis.recommend(df, target_accuracy=0.0, latency_budget_s=0.01, queries_per_day=1)
    assert slow["best"] is None and "Latency is the binding limit" in slow["explanation"]
    hard = analysis.recommend(df, target_accuracy=0.99, latency_budget_s=10, queries_per_day=1)
    assert "Accuracy is the binding limit" in hard["explanation"]
    both = analysis.recommend(df, target_accuracy=0.9, latency_budget_s=0.15, queries_per_day=1)
    assert both["best"] is None and "relax one of the two" in both["explanation"]


def test_probe_measures_a_new_model_before_the_estimate(tiny_model, tmp_path):
    from engine.cache import SampleCache
    from engine.runner import probe
    cache = SampleCache(tmp_path / "c.duckdb")
    exp = experiment(tiny_model, params=SP.with_n(16))
    guess = planning.estimate_seconds(cache, exp)
    assert guess == pytest.approx(6 * 16 / 20.0)  # nothing measured: the fixed guess
    probe(exp, cache)
    assert len(cache.samples()) == 8  # eight samples of the first problem, kept
    rate = cache.throughput(exp.models[0].fingerprint)
    assert planning.estimate_seconds(cache, exp) == pytest.approx((6 * 16 - 8) / rate)
    probe(exp, cache)
    assert len(cache.samples()) == 8  # measured once


def test_a_scorer_costs_nothing_at_one_sample_and_its_compute_everywhere_else(filled, tiny_model):
    cache, _ = filled
    both = analysis.curves(cache, experiment(tiny_model, ["majority", "best_of_n:self-likelihood"]))
    from engine.scorers import Scorer, register
    # a scorer with parameters (as a learned verifier has) reads each sample: 2 x params x tokens each
    learned = type("Heavy", (Scorer,), {"name": "heavy", "label": "heavy", "short": "heavy", "params": 1000,
                                        "score": lambda self, c, t, s, on_progress=None: s.assign(
                                            score=1.0, step_scores=[[] for _ in range(len(s))])})
    register("heavy", learned)
    try:
        heavy = analysis.curves(cache, experiment(tiny_model, ["majority", "best_of_n:heavy"])).set_index(
            ["strategy", "k"])
    finally:
        from engine import scorers
        scorers._REGISTRY.pop("heavy")
        scorers._instances.pop("heavy", None)
    for c in ("flops", "device_s", "dollars", "latency_s"):
        assert heavy[c]["best_of_n:heavy", 1] == pytest.approx(heavy[c]["majority", 1])  # nothing to rank
        assert heavy[c]["best_of_n:heavy", 8] > heavy[c]["majority", 8]  # the verifier's work is charged
    extra = heavy.flops["best_of_n:heavy", 8] - heavy.flops["majority", 8]
    tokens = both[both.strategy == "majority"].set_index("k").sample_tokens[8]
    assert extra == pytest.approx(8 * 2 * 1000 * tokens, rel=1e-9)


def test_within_problem_auroc_against_brute_force():
    from engine.analysis.scorer_quality import auroc, within_problem_auroc
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"problem_id": np.repeat(["a", "b", "c", "d"], 6), "score": rng.choice([0.1, 0.5, 0.9], 24),
                       "correct": rng.random(24) < 0.5})
    df.loc[df.problem_id == "d", "correct"] = True  # one class only: left out

    def brute(d):
        p, n = d[d.correct].score.to_numpy(), d[~d.correct].score.to_numpy()
        return np.mean([(x > y) + 0.5 * (x == y) for x in p for y in n])
    expect = [brute(d) for _, d in df.groupby("problem_id") if 0 < d.correct.sum() < len(d)]
    got, n = within_problem_auroc(df)
    assert n == len(expect) and got == pytest.approx(np.mean(expect))
    assert auroc(df.score.to_numpy(), df.correct.to_numpy()) == pytest.approx(brute(df))
    # a scorer that only knows which problem is easy: perfect pooled, chance within each problem
    easy = pd.DataFrame({"problem_id": ["e"] * 4 + ["h"] * 4, "correct": [1, 1, 1, 0, 1, 0, 0, 0],
                         "score": [0.9] * 4 + [0.1] * 4}).astype({"correct": bool})
    assert within_problem_auroc(easy)[0] == 0.5 and auroc(easy.score.to_numpy(), easy.correct.to_numpy()) > 0.7


def test_plan_warns_when_the_interval_reaches_below_the_target():
    df = _table().assign(problems=40)
    p = analysis.recommend(df, target_accuracy=0.5, latency_budget_s=0.15, queries_per_day=1)
    assert "may fall short" in p["explanation"] and p["uncertain"]  # lo = accuracy - 0.05 < 0.5 for the cheapest
    # the cheapest option whose whole interval clears the target is named, and it does clear it
    ok = df[(df.lo >= 0.5) & (df.latency_s <= 0.15)].sort_values("dollars")
    assert p["safe"]["cost_per_query"] == pytest.approx(ok.dollars.min()) and p["safe"]["lo"] >= 0.5
    assert f"{p['safe']['model']} with" in p["explanation"].split("whole interval clears 50%")[1]
    # more problems are advised only where the task has more than were measured
    n = p["best"]["problems"]
    none_sure = analysis.recommend(df.assign(lo=df.accuracy - 0.5), target_accuracy=0.5, latency_budget_s=0.15,
                                   queries_per_day=1, problems_available=n)
    assert none_sure["safe"] is None and "Plan from more problems" not in none_sure["explanation"]
    assert f"all {n} problems of the test set" in none_sure["explanation"]
    more = analysis.recommend(df.assign(lo=df.accuracy - 0.5), target_accuracy=0.5, latency_budget_s=0.15,
                              queries_per_day=1, problems_available=n + 1)
    assert "Plan from more problems" in more["explanation"]
    sure = analysis.recommend(df, target_accuracy=0.15, latency_budget_s=0.15, queries_per_day=1)
    assert "may fall short" not in sure["explanation"] and not sure["uncertain"]


def test_per_problem_costs_match_pandas_groupby_with_gaps_and_pools_of_any_size():
    from engine import accounting
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 9, 30)
    n = int(sizes.sum())
    df = pd.DataFrame({"problem_id": pd.array(np.repeat([f"p{i}" for i in range(30)], sizes), dtype="str"),
                       "idx": np.concatenate([np.arange(s) for s in sizes]),
                       "prompt_tokens": rng.integers(5, 50, n).astype(np.int32),
                       "completion_tokens": rng.integers(1, 99, n).astype(np.int32),
                       "flops": rng.random(n) * 1e10, "device_s": rng.random(n), "prefill_s": rng.random(n),
                       "decode_s": rng.random(n), "batch_size": np.full(n, 4, np.int32),
                       "device": pd.array(["cpu"] * n, dtype="str"),
                       "difficulty": np.repeat(np.arange(30) % 5, sizes).astype(float)})
    df = df.sample(frac=1, random_state=1).reset_index(drop=True)  # problems interleaved
    gappy = df.copy()
    gappy.loc[::7, "device_s"] = np.nan
    gappy.loc[::5, "prefill_s"] = np.nan
    gappy.loc[gappy.problem_id == "p3", "difficulty"] = np.nan
    for d in (df, gappy):
        want = d.groupby("problem_id", sort=False).agg(**{c: (c, how) for c, how in accounting.PER_PROBLEM.items()},
                                                       difficulty=("difficulty", "first"), n=("idx", "count"))
        got = accounting.per_problem(d)
        assert got.index.equals(want.index) and list(got.columns) == list(want.columns)
        assert (got.dtypes == want.dtypes).all()
        for c in want.columns:
            if want[c].dtype.kind == "f":  # means summed in another order: equal to rounding
                np.testing.assert_allclose(got[c], want[c], rtol=1e-14, atol=0)
            else:
                assert got[c].equals(want[c]), c
