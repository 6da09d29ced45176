"""analysis.py on real cached samples of a tiny model, and its pure parts on hand-made tables."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from engine import analysis, compute, metrics
from engine.errors import EngineError
from engine.models import SamplingParams
from engine.runner import run
from engine.tasks import Problem, Task, get_task

SP = SamplingParams(n=8, temperature=1.0, max_new_tokens=16)


def toy_task():
    """Problems whose gold answers a random tiny model hits now and then (single digits)."""
    ps = [Problem(id=f"t{i}", question=f"What is {i}?", answer=str(i % 10), difficulty=1 + i % 2) for i in range(6)]
    return Task("toy", ps, lambda p: f"Q: {p.question}\nA: ", stop=("\n",))


@pytest.fixture(scope="module")
def filled(tiny_model, tmp_path_factory):
    from engine.cache import SampleCache
    cache = SampleCache(tmp_path_factory.mktemp("an") / "c.duckdb")
    task = toy_task()
    run(tiny_model, task, task.problems, SP, cache)
    return cache, task


@pytest.mark.parametrize("verifier", ["oracle", "majority"])
def test_curves_on_real_samples(filled, tiny_model, verifier):
    cache, task = filled
    df = analysis.curves(cache, [tiny_model], task, task.problems, SP, verifier=verifier)
    assert list(df.k) == [1, 2, 4, 8]
    assert ((df.lo <= df.accuracy + 1e-12) & (df.accuracy <= df.hi + 1e-12)).all()
    assert df.accuracy.between(0, 1).all()
    assert np.allclose(df.flops / df.k, df.flops.iloc[0])  # linear in k
    assert (df.dollars > 0).all() and (df.energy_wh > 0).all() and (df.latency_s > 0).all()
    # the k=1 point is the plain mean correctness, whatever the verifier
    s = cache.samples()
    assert df.accuracy.iloc[0] == pytest.approx(s.groupby("problem_id").correct.mean().mean())
    if verifier == "oracle":
        assert df.accuracy.is_monotonic_increasing
        per = s.groupby("problem_id").correct.agg(["count", "sum"])
        expect = np.mean([metrics.pass_at_k(8, int(c), 4) for c in per["sum"]])
        assert df.set_index("k").accuracy[4] == pytest.approx(expect)
    by = analysis.curves_by_level(cache, [tiny_model], task, task.problems, SP, verifier=verifier)
    assert set(by.difficulty) == {1, 2} and (by.problems == 3).all()


def test_curves_bad_verifier(filled, tiny_model):
    cache, task = filled
    with pytest.raises(EngineError, match="unknown verifier"):
        analysis.curves(cache, [tiny_model], task, task.problems, SP, verifier="psychic")


def test_problem_view(filled, tiny_model):
    cache, task = filled
    v = analysis.problem_view(cache, tiny_model, task, task.problems[0], SP, verifier="majority")
    assert len(v["samples"]) == 8 and v["histogram"]["count"].sum() == 8
    if v["pick"] is not None:
        top = v["histogram"][v["histogram"].answer != "(none)"].answer.iloc[0]
        assert v["samples"].answer.iloc[v["pick"]] == top


def test_estimate_seconds_uses_measured_rate(filled, tiny_model):
    cache, task = filled
    assert analysis.estimate_seconds(cache, [tiny_model], task, task.problems, SP) == 0  # all cached
    more = analysis.estimate_seconds(cache, [tiny_model], task, task.problems, SP.with_n(16))
    rate = cache.throughput(cache.samples().model_fp.iloc[0])
    assert more == pytest.approx(6 * 8 / rate)


def _table():
    rows = []
    for model, base, flops1, params in [("s", 0.2, 1.0, 10), ("l", 0.5, 8.0, 80)]:
        for k in (1, 2, 4, 8, 16):
            acc = min(0.95, base + 0.1 * math.log2(k))
            rows.append(dict(model=model, params=params, verifier="majority", k=k, accuracy=acc, lo=acc - .05,
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
    p = analysis.plan(df, target_accuracy=0.5, latency_budget_s=0.15, queries_per_day=1000)
    ok = df[(df.accuracy >= 0.5) & (df.latency_s <= 0.15)]
    assert p["best"]["cost_per_query"] == pytest.approx(ok.dollars.min())
    assert p["runner_up"]["model"] != p["best"]["model"]
    assert p["best"]["cost_per_month"] == pytest.approx(p["best"]["cost_per_query"] * 1000 * 30)
    assert p["best"]["model"] in p["explanation"]
    none = analysis.plan(df, target_accuracy=0.99, latency_budget_s=1, queries_per_day=10)
    assert none["best"] is None and "No cached configuration" in none["explanation"]
    with pytest.raises(EngineError):
        analysis.plan(df, target_accuracy=2, latency_budget_s=1, queries_per_day=1)


def test_latency_model():
    # GPU: a batch takes the same time whatever its rows, so k <= batch is flat, then steps
    assert analysis.latency(0.1, 2.0, 64, 1, "cuda") == analysis.latency(0.1, 2.0, 64, 64, "cuda") == 2.1
    assert analysis.latency(0.1, 2.0, 64, 65, "cuda") == pytest.approx(4.1)
    # CPU: compute bound, rows cost their share of the batch
    assert analysis.latency(0.1, 2.0, 64, 16, "cpu") == pytest.approx(0.1 + 0.5)
