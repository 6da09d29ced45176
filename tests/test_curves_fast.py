"""The fast paths behind ``analysis.curves`` (issue 12) against the plain ones they stand for: each gives the same
numbers to the last bit, and falls back where it cannot."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import accounting, analysis, scorers, strategies
from engine.results import load_samples
from engine.scorers import learned
from engine.strategies import weighted_majority as wm


def _rows(rng, p, n, values):
    """[p, n] answer codes (-1: none), correctness (one right answer, code 0, in most rows) and scores."""
    codes = np.where(rng.random((p, n)) < 0.15, -1, rng.integers(0, int(rng.integers(2, 8)), (p, n)))
    codes[:, 0] = np.maximum(codes[:, 0], 0)
    correct = (codes == 0) & (rng.random(p) < 0.9)[:, None]
    return codes, correct, rng.choice(values, (p, n))


# exact ties (0.1 + 0.2 vs 0.3, equal scores), ties within the vote's tolerance, and scores just outside it that
# float32 cannot tell apart: the float32 screen must send all of these to the float64 rule
TIES = [0.1, 0.2, 0.3, 0.30000000000000004, 0.3 + 1.5e-9, 0.3 + 3e-9, 0.3 + 3e-8, 0.5, 0.5 + 1e-7, 0.7]


# totals a few float32 steps apart: float32 alone would order some of them wrongly
NEAR = [v + i * 1e-9 for v in (0.02, 0.05, 0.1, 0.2, 0.3, 0.9) for i in (-20, -3, 0, 2, 30)]


@pytest.mark.parametrize("values", [TIES, NEAR, "continuous", [1e-35, 2e-35, 3e-35], [2e30, 1e30, 3e30]])
@pytest.mark.parametrize("tied_rows", [wm._F32_TIED_ROWS, 1.0])
def test_weighted_fast_subset_values_match_the_plain_rule_on_big_pools(values, tied_rows, monkeypatch):
    """Pools of up to 64 samples with many answers: the float32 screen and its float64 recheck give every subset
    the value of the plain one-pool rule, also where ties abound (forced: they would take float64 throughout, as
    tiny or huge weights do)."""
    monkeypatch.setattr(wm, "_F32_TIED_ROWS", tied_rows)
    rng = np.random.default_rng(3)
    for trial in range(40):
        p, n = int(rng.integers(1, 8)), int(rng.integers(4, 65 if trial % 2 else 16))
        vals = rng.random(n * p) + 0.01 if values == "continuous" else values
        codes, correct, w = _rows(rng, p, n, vals)
        w = np.where(codes >= 0, w, 0.0)
        dense, m, class_ok = wm._recode(codes, correct)
        k = int(rng.integers(2, n + 1))
        idx, drawn = wm._subsets(n, k, 200, 0), wm._drawn(n, k, 200, 0)
        width = int(m.max())
        got = wm._block_subset_values(dense, w, class_ok[:, :width], drawn)
        for i in range(p):
            assert np.array_equal(got[:, i], wm._subset_values(dense[i], w[i], class_ok[i, :m[i]], idx)), (trial, i)


@pytest.mark.parametrize("values", [TIES, "continuous"])
def test_weighted_pairs_by_counting_match_every_pair(values):
    """k = 2 by counting (one right answer, positive weights) equals the visit of every pair to the last bit;
    rows it cannot count (a right and a wrong weight within tolerance, two right answers, a zero weight) are
    left to the pairs, and both kinds occur."""
    rng = np.random.default_rng(5)
    left = counted = 0
    for trial in range(40):
        p, n = int(rng.integers(1, 9)), int(rng.integers(2, 40))
        vals = rng.random(n * p) + 0.01 if values == "continuous" else values
        codes, correct, w = _rows(rng, p, n, vals)
        if trial % 5 == 0:
            w[0, -1] = 0.0                                   # a zero weight: not this path
        w = np.where(codes >= 0, w, 0.0)
        dense, m, class_ok = wm._recode(codes, correct)
        dense, m, class_ok = wm._prune(dense, w, m, class_ok)
        if trial % 7 == 0:
            class_ok[:, 1] = class_ok[:, 0]                  # two right answers: not this path
        vals_, rest = wm._one_right_answer_pairs(dense, w, class_ok)
        ref = wm._pairs(dense, w, class_ok)
        done = np.setdiff1d(np.arange(p), rest)
        assert np.array_equal(vals_[done], ref[done]) and np.isnan(vals_[rest]).all()
        left, counted = left + rest.size, counted + done.size
    assert left and counted


def test_weighted_block_on_the_shipped_sweeps_matches_the_reference_rule(shipped_cache):
    """Every k of the weighted vote on real ORM scores: the block (float32 screen, counted pairs) and the
    one-subset-at-a-time reference agree, on a sample of problems."""
    cache, exp = shipped_cache
    task = exp.load_task()
    df = load_samples(cache, exp.models[1], task, exp.selected()[:40], exp.params)
    df = scorers.get("orm").scores(cache, task, df.sort_values(["problem_id", "idx"]).reset_index(drop=True))
    (_, pools), = strategies.Pools.split(df)
    ks = [1, 2, 4, 8, 16, 32, 64]
    vals, ses = wm.weighted_majority_block(pools.codes, pools.scores, pools.correct, ks)
    for i in range(len(pools)):
        c, w, ok = wm._classes([None if x < 0 else int(x) for x in pools.codes[i]], pools.scores[i], pools.correct[i])
        for j, k in enumerate(ks):
            value, se = wm._at_k(c, w, ok, k)
            assert vals[i, j] == pytest.approx(value, abs=1e-12) and ses[i, j] == pytest.approx(se, abs=1e-12)


def test_pools_split_like_takes_only_the_scores():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 6, 30)
    df = pd.DataFrame({"problem_id": np.repeat([f"p{i:02d}" for i in range(30)], sizes),
                       "idx": np.concatenate([np.arange(s) for s in sizes]),
                       "answer": pd.array(rng.choice(["1", "2", None], sizes.sum()), dtype="str"),
                       "correct": rng.random(sizes.sum()) < 0.5})
    base = strategies.Pools.split(df)
    scored = df.assign(score=rng.random(len(df)))
    for (w1, a), (w2, b) in zip(strategies.Pools.split(scored), strategies.Pools.split(scored, like=base)):
        assert np.array_equal(w1, w2) and np.array_equal(a.codes, b.codes) and np.array_equal(a.correct, b.correct)
        assert np.array_equal(a.scores, b.scores) and (a.answers == b.answers).all()
    assert all(p.scores is None for _, p in strategies.Pools.split(df, like=strategies.Pools.split(scored)))


def test_per_problem_like_recomputes_only_flops():
    rng = np.random.default_rng(2)
    n = 40
    df = pd.DataFrame({"problem_id": np.repeat(["a", "b", "c", "d"], 10), "idx": np.tile(np.arange(10), 4),
                       "prompt_tokens": rng.integers(5, 9, n), "completion_tokens": rng.integers(1, 50, n),
                       "flops": rng.random(n), "device_s": rng.random(n), "prefill_s": rng.random(n),
                       "decode_s": rng.random(n), "batch_size": 8, "device": "cpu", "difficulty": 1})
    other = df.assign(flops=df["flops"] + 2.0 * 1e6 * (df["prompt_tokens"] + df["completion_tokens"]))
    like = accounting.per_problem(df)
    pd.testing.assert_frame_equal(accounting.per_problem(other, like=like), accounting.per_problem(other),
                                  check_exact=True)


def test_step_lists_parsed_flat_match_json():
    """Step-score texts parsed by Arrow into flat arrays: the same floats and the same aggregates as the JSON
    lists; texts it does not read (NaN, other spacing) go through JSON."""
    from engine.verifiers import AGGREGATES
    for texts in (["[0.5, 0.25]", None, "[]", "[0.1]", "[0.5, 0.25]", "[1e-05, 3, -2.5E+3, 0.30000000000000004]"],
                  ["[NaN, 0.5]", "[0.1,0.2]", "[]"]):
        col = pd.Series(texts, dtype="str")
        codes, lists = learned._parse_lists(col)
        codes2, flat, lens = learned._parse_flat(col)
        assert np.array_equal(codes, codes2) and lens.tolist() == [len(x) for x in lists]
        assert np.array_equal(flat, np.array([x for lst in lists for x in lst], dtype=np.float64), equal_nan=True)
        for how in AGGREGATES:
            assert np.array_equal(learned._aggregate_flat(flat, lens, how), learned._aggregate_lists(lists, how),
                                  equal_nan=True)
    with pytest.raises(ValueError):
        learned._aggregate_flat(np.array([0.5]), np.array([1, 0]), "median")


@pytest.fixture(scope="module")
def shipped_cache(tmp_path_factory):
    from engine import shipped
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import SamplingParams, list_shipped
    if not {"orm", "prm-min"} <= set(scorers.available()):
        pytest.skip("the shipped verifiers are not here")
    cache = SampleCache(tmp_path_factory.mktemp("fast") / "c.duckdb")
    shipped.import_into(cache)
    exp = Experiment.build(list_shipped()[:2], "arith", SamplingParams(n=64, temperature=0.8), problems=60,
                           strategies=["oracle", "majority", "best_of_n:orm", "best_of_n:prm-min",
                                       "best_of_n:self-likelihood", "weighted_majority:orm"])
    return cache, exp


@pytest.mark.parametrize("name", ["orm", "prm-min", "prm-prod", "prm-mean", "prm-last", "self-likelihood"])
def test_scores_without_steps_equal_score(shipped_cache, name):
    cache, exp = shipped_cache
    task = exp.load_task()
    df = load_samples(cache, exp.models[0], task, exp.selected(), exp.params)
    full, short = scorers.get(name).score(cache, task, df), scorers.get(name).scores(cache, task, df)
    assert "step_scores" not in short
    pd.testing.assert_frame_equal(full.drop(columns="step_scores"), short, check_exact=True)
    # rows in another order, some the cache never scored, two models' samples at once: matched by key
    other = load_samples(cache, exp.models[1], task, exp.selected()[:5], exp.params)
    mixed = pd.concat([df.iloc[::-1], other, df.iloc[:3].assign(idx=df["idx"].iloc[:3] + 1000)], ignore_index=True)
    got = scorers.get(name).scores(cache, task, mixed.iloc[:-3]) if name != "self-likelihood" else None
    if got is not None:
        ref = pd.concat([full.iloc[::-1], scorers.get(name).score(cache, task, other)], ignore_index=True)
        assert np.array_equal(got["score"].to_numpy(), ref["score"].to_numpy())
        cached, at = learned._lookup(cache, scorers.get(name).verifier.fingerprint, mixed)
        assert (at[-3:] == -1).all() and (at[:-3] >= 0).all()
        key = cached[["problem_id", "idx"]].iloc[at[:-3]].reset_index(drop=True)
        pd.testing.assert_frame_equal(key, mixed[["problem_id", "idx"]].iloc[:-3].reset_index(drop=True),
                                      check_dtype=False)


def test_curves_unchanged_by_a_scorer_that_reorders_its_rows(shipped_cache, monkeypatch):
    """Curves read the samples in key order and take a scorer's rows as they are only where they are the same
    samples in the same order; a scorer that returns them shuffled gives the same curves."""
    cache, exp = shipped_cache
    want = analysis.curves(cache, exp, by_level=True)
    orig = learned.LearnedScorer.scores

    def shuffled(self, *a, **k):
        out = orig(self, *a, **k)
        return out.sample(frac=1.0, random_state=0)

    monkeypatch.setattr(learned.LearnedScorer, "scores", shuffled)
    pd.testing.assert_frame_equal(analysis.curves(cache, exp, by_level=True), want, check_exact=True)
    monkeypatch.setattr(learned.LearnedScorer, "scores", lambda self, *a, **k: orig(self, *a, **k).iloc[::-1])
    pd.testing.assert_frame_equal(analysis.curves(cache, exp, by_level=True), want, check_exact=True)


def test_load_samples_levels_as_a_per_sample_lookup(shipped_cache):
    cache, exp = shipped_cache
    task, problems = exp.load_task(), exp.selected()
    df = load_samples(cache, exp.models[0], task, problems, exp.params)
    want = df["problem_id"].map({p.id: p.difficulty for p in problems})
    pd.testing.assert_series_equal(df["difficulty"], want, check_names=False, check_exact=True)
    assert len(df) == 64 * len(problems)


@pytest.mark.parametrize("huge", [False, True])
def test_score_lookup_matches_keys_as_a_merge_would(huge):
    """Each sample finds its cached score row by (model, task, config, problem, idx), whatever the order of
    either side, with missing rows -1; keys far apart (a huge idx) take a hash lookup instead of a table."""
    rng = np.random.default_rng(4)
    samples = pd.DataFrame({"model_fp": np.repeat(["m1", "m2"], 30), "task": "t", "config_key": "c",
                            "problem_id": rng.choice(["p1", "p2", "p3"], 60), "idx": rng.permutation(60) % 20})
    samples = samples.drop_duplicates(["model_fp", "problem_id", "idx"]).reset_index(drop=True)
    if huge:
        samples.loc[0, "idx"] = 10 ** 9
    cached = samples.sample(frac=0.8, random_state=1).assign(score=lambda d: rng.random(len(d)), step_scores="[]")

    class Cache:
        def scores(self, verifier_fp, model_fp, task, config_key, problem_ids, columns):
            c = cached[(cached.model_fp == model_fp) & cached.problem_id.isin(problem_ids)]
            return c[columns].reset_index(drop=True)

    got, at = learned._lookup(Cache(), "v", samples)
    for i, row in samples.iterrows():
        hit = cached[(cached.model_fp == row.model_fp) & (cached.problem_id == row.problem_id) & (cached.idx == row.idx)]
        if hit.empty:
            assert at[i] == -1
        else:
            assert (got.iloc[at[i]][["problem_id", "idx", "score"]].tolist()
                    == hit.iloc[0][["problem_id", "idx", "score"]].tolist())
    assert (at == -1).sum() == len(samples) - len(cached)
