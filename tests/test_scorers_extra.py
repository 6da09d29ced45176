"""Scorers that need no training: the step checker and the simulated verifier; gold vs corrupted; the
Verifiers page."""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from engine import scorers, strategies
from engine.analysis import corruptions
from engine.analysis.scorer_quality import within_problem_auroc
from engine.errors import EngineError
from engine.scorers import step_checker
from engine.strategies import Pool
from engine.tasks import arith, get_task


# ---- step checker -------------------------------------------------------------------
@pytest.mark.parametrize("text, scores, why", [
    ("7+4=11\n#### 11\n", [1, 1], None),
    ("66*8=528\n528-71=457\n#### 457", [1, 1, 1], None),
    (" 12 - 5 = 7 \n\n7 * 3 = 21\n####  21", [1, 1, 1], None),                     # spaces and a blank line
    ("7+4=12\n#### 12\n", [0, 1], "arithmetic"),                                    # a slip
    ("48-37=1\n1+33=34\n#### 34", [0, 1, 1], "arithmetic"),
    ("7+4=11\n10-3=7\n#### 7", [1, 0, 1], "chain"),                                 # not from the last result
    ("7+4=11\n11-3=8\n#### 9", [1, 1, 0], "chain"),                                 # answer is not the result
    ("7+4=11\n", [1, 0], "malformed"),                                              # no answer line
    ("30-22==1\n#### 1", [0, 0], "malformed"),
    ("102*6=60-8=44\n#### 44", [0, 0], "malformed"),
    ("abc\n####", [0, 0, 0], "malformed"),
    ("#### 5", [0], "malformed"),
    ("", [0], "malformed"),
    (None, [0], "malformed"),
    ("9" * 5000 + "+1=2\n#### 2", [0, 0], "malformed"),                             # no huge int() on hostile input
    ("6/3=2\n#### 2", [1, 1], None),
    ("7/2=3\n#### 3", [0, 1], "arithmetic"),
    ("7+4=11\n#### 11\ngarbage after the answer", [1, 1], None),
])
def test_step_checker_lines(text, scores, why):
    assert [s for s, _ in step_checker.check(text)] == scores
    assert step_checker.failure(text) == why
    assert step_checker.score_text(text) == pytest.approx(sum(scores) / len(scores))


def test_step_checker_scores_a_frame_without_the_answer_key():
    df = pd.DataFrame({"text": ["7+4=11\n#### 11\n", "7+4=12\n#### 12\n", float("nan")], "idx": [0, 1, 2]})
    out = scorers.get("step-checker").score(None, None, df)
    assert out["score"].tolist() == [1.0, 0.5, 0.0]
    assert out["step_scores"].tolist() == [[1.0, 1.0], [0.0, 1.0], [0.0]]
    assert not scorers.needs_key("step-checker") and not strategies.get("best_of_n:step-checker").needs_key


def test_step_checker_passes_every_gold_solution():
    task = get_task("arith")
    assert all(step_checker.failure(p.solution) is None for p in task.problems)


# ---- simulated verifier -------------------------------------------------------------
def pool(problems=400, n=64, seed=0) -> pd.DataFrame:
    """A large seeded pool: per problem a random share of right samples."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(problems):
        rate = rng.uniform(0.05, 0.95)
        rows += [dict(model_fp="m", task="t", problem_id=f"p{p:04d}", config_key="c", idx=i,
                      correct=bool(rng.random() < rate), answer=None) for i in range(n)]
    df = pd.DataFrame(rows)
    df["answer"] = np.where(df["correct"], "right", [f"wrong{i % 7}" for i in range(len(df))])
    return df


@pytest.mark.parametrize("auc", [0.5, 0.6, 0.75, 0.9, 0.97, 1.0])
def test_simulated_verifier_has_the_requested_within_problem_auroc(auc):
    df = scorers.get(f"simulated-{auc:g}").score(None, None, pool())
    got, n = within_problem_auroc(df)
    assert n > 300 and got == pytest.approx(auc, abs=0.03)


def test_simulated_verifier_is_deterministic_and_keeps_its_noise_across_aucs():
    df = pool(problems=20)
    a = scorers.get("simulated-0.8").score(None, None, df)["score"].to_numpy()
    b = scorers.get("simulated-0.8").score(None, None, df.sample(frac=1, random_state=1).sort_index())["score"]
    assert np.array_equal(a, b.to_numpy())
    assert np.all((a > 0) & (a < 1))
    # the same draw at another quality: wrong samples keep their rank among themselves
    c = scorers.get("simulated-0.9").score(None, None, df)["score"].to_numpy()
    wrong = ~df["correct"].to_numpy()
    assert np.array_equal(np.argsort(a[wrong]), np.argsort(c[wrong]))


def test_simulated_noise_remembered_for_a_pool_is_the_noise_drawn_for_it():
    """A page draws one pool's noise at many AUCs; it is drawn once and kept, and kept draws never stand in for
    another pool's (another sample, or the same samples in another order)."""
    from engine.scorers import simulated
    df = pool(problems=6, n=8)
    simulated._DRAWS.clear()
    first = simulated.noise(df)
    first[:] = 0.0                                         # a caller's changes do not reach the kept draws
    assert len(simulated._DRAWS) == 1 and np.array_equal(simulated.noise(df), simulated._DRAWS.popitem()[1])
    fresh = simulated.noise(df)
    other = df.assign(idx=df["idx"] + 1)
    assert not np.array_equal(simulated.noise(other), fresh)
    shuffled = df.sample(frac=1, random_state=2)
    assert np.array_equal(simulated.noise(shuffled), fresh[shuffled.index.to_numpy()])
    for i in range(2 * simulated._KEEP):                   # it keeps a few pools, not all
        simulated.noise(df.assign(seed_col=i).assign(idx=df["idx"] + 100 * i))
    assert len(simulated._DRAWS) <= simulated._KEEP


def test_simulated_verifier_names_and_key():
    assert "simulated-0.7" in scorers.available() and "step-checker" in scorers.available()
    assert scorers.needs_key("simulated-0.83") and strategies.get("best_of_n:simulated-0.83").needs_key
    assert strategies.get("weighted_majority:simulated-0.6").needs_key
    for bad in ("simulated-0.3", "simulated-1.5", "simulated-x", "simulated-"):
        with pytest.raises(EngineError, match="from 0.5 to 1"):
            scorers.get(bad)
    assert not scorers.needs_key("simulated-x")  # an unusable name is no key reader; get() says why


def test_simulated_verifier_is_not_deployable_and_no_ceiling():
    from engine.analysis import deployable
    from engine.analysis.verdict import _ceiling
    df = pd.DataFrame({"strategy": ["oracle", "majority", "best_of_n:simulated-0.9", "best_of_n:step-checker"]})
    assert deployable(df)["strategy"].tolist() == ["majority", "best_of_n:step-checker"]
    assert _ceiling(df)["strategy"].tolist() == ["oracle"]


def test_simulated_verifier_through_best_of_n_and_weighted_majority():
    df = pool(problems=30, n=16, seed=3)
    ks = [1, 2, 4, 8, 16]
    curves = {}
    for auc in (0.5, 0.8, 1.0):
        scored = scorers.get(f"simulated-{auc:g}").score(None, None, df)
        pools = Pool.per_problem(scored)
        for name in ("best_of_n", "weighted_majority"):
            s = strategies.get(f"{name}:simulated-{auc:g}")
            curves[name, auc] = np.mean([s.curve(p, ks) for p in pools], axis=0)
    oracle = np.mean([strategies.get("oracle").curve(p, ks) for p in Pool.per_problem(df)], axis=0)
    assert np.allclose(curves["best_of_n", 1.0], oracle)  # a perfect verifier is the oracle
    for name in ("best_of_n", "weighted_majority"):
        assert curves[name, 0.5][-1] < curves[name, 0.8][-1] < curves[name, 1.0][-1] + 1e-9
        assert np.all((curves[name, 0.8] >= 0) & (curves[name, 0.8] <= 1))


# ---- gold vs corrupted -------------------------------------------------------------------
def test_corruptions_change_the_answer_and_keep_only_their_mistake():
    task = get_task("arith")
    problems = task.select(25)
    df = corruptions.pairs(task, problems)
    assert set(df["kind"]) == {"gold", *corruptions.KINDS}
    assert df[df["kind"] == "gold"]["correct"].all() and not df[df["kind"] != "gold"]["correct"].any()
    why = df["text"].map(step_checker.failure)
    assert (why[df["kind"] == "nudged"] == "arithmetic").all()         # a slip: the checker sees it
    assert why[df["kind"].isin(["gold", "miscopied", "skipped"])].isna().all()  # consistent arithmetic
    assert not len(df[(df["kind"] == "skipped") & (df["difficulty"] == 1)])    # one step cannot be skipped
    assert corruptions.pairs(task, problems).equals(df)  # seeded


def test_gold_beats_corrupted_per_scorer():
    task = get_task("arith")
    g = corruptions.gold_beats_corrupted(task, ["step-checker", "simulated-1", "self-likelihood"], task.select(20))
    rate = g.groupby(["scorer", "corruption"])["rate"].mean()
    assert rate["step-checker", "nudged"] == 1.0 and rate["step-checker", "miscopied"] == 0.5
    assert (rate["simulated-1"] == 1.0).all()
    assert "self-likelihood" not in set(g["scorer"])  # no log-probability for texts nobody sampled, no model given
    # over all levels: each level's rate weighted by its pairs, which is the rate over all pairs
    pooled = corruptions.pooled(g).set_index(["scorer", "corruption"])
    for (name, kind), d in g.groupby(["scorer", "corruption"]):
        assert pooled.loc[(name, kind), "pairs"] == d["pairs"].sum()
        assert pooled.loc[(name, kind), "rate"] == pytest.approx((d["rate"] * d["pairs"]).sum() / d["pairs"].sum())
    g = corruptions.gold_beats_corrupted(task, ["self-likelihood"], task.select(10), models=["arith-s"])
    assert set(g["model"]) == {"arith-s"} and g["rate"].between(0, 1).all()
    with pytest.raises(EngineError, match="arith"):
        corruptions.pairs(task, [arith.Problem("x", "q", "1", 1, solution="one")])


def test_with_logprob_reproduces_what_sampling_recorded():
    from engine import shipped
    fp = next(m["model_fp"] for m in shipped.manifest()["models"] if m["name"] == "arith-s")
    df = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SAMPLES_FILE, filters=[("model_fp", "==", fp)]).head(40)
    out = corruptions.with_logprob(df, get_task("arith"), "arith-s", batch=16)  # texts of other lengths padded
    assert np.allclose(out["logprob"], df["logprob"], atol=1e-4)
    assert (out["completion_tokens"] == df["completion_tokens"]).all()


def test_corrupt_skips_what_it_cannot_do():
    assert corruptions.corrupt([(3, "+", 4, 7)], "skipped", random.Random(0)) is None
    with pytest.raises(EngineError):
        corruptions.corrupt([(3, "+", 4, 7)], "shuffled", random.Random(0))


# ---- the Verifiers page --------------------------------------------------------------------
def test_verifiers_page_renders_from_the_shipped_sweeps(tmp_path, monkeypatch):
    from tests.test_app import chart, make_app
    monkeypatch.setenv("TTC_SHIPPED", "1")
    at = make_app(tmp_path, problems="40", budget="16")
    at.switch_page("pages/verifiers.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Verifiers"
    assert len(at.dataframe) == 1  # the quality table; gold vs corrupted is in the tab not open (not computed)
    shown = at.dataframe[0].value
    assert {"step checker", "simulated 0.7", "ORM"} <= set(shown["label"])
    assert "simulated 0.7 and simulated 0.9: simulated verifiers at fixed quality" in " ".join(c.value for c in at.caption)
    names = {t["name"] for t in chart(at, "verifier_curves")["data"]}
    assert {"oracle", "majority", "best-of-N · step checker", "best-of-N · simulated 0.8"} <= names
    assert "simulated verifier" in {t.get("name") for t in chart(at, "verifier_quality")["data"]}
    words = " ".join(m.value for m in at.markdown)
    assert "majority vote" in words and "AUROC 0.8" in words
    # the verdict on deployable scorers follows the table: beating the vote, or the closest one below it
    real = shown[shown["key"] == "no"]
    top = real.loc[real["best_of_k"].astype(float).idxmax()]  # the table keeps the registry's order
    assert ("closing" in words) != ("No scorer you could deploy here beats majority vote" in words)
    assert f"{top['label']} (within-problem AUROC" in words
    # and says so where a deployable scorer picks worse than one sample at random (read off the curves chart)
    traces = {t["name"]: dict(zip(t["x"], t["y"])) for t in chart(at, "verifier_curves")["data"] if t.get("x")}
    single = traces["majority"][1]
    below = [n for n in real["label"] if traces[f"best-of-N · {n}"][16] < single]
    assert ("worse than a single sample" in words) == bool(below), (below, single)
    for n in below:
        assert n in words.split("worse than a single sample")[0].rsplit(".", 1)[-1]
    # markers a marker's width apart or closer are named as drawn over each other, and no others
    from ui import figures
    groups = figures.overlapping(real.astype({"within_problem_auroc": float, "best_of_k": float}), "label",
                                 "within_problem_auroc", "best_of_k", 0.012, 0.02)
    said = " ".join(c.value for c in at.caption)
    assert all(" = ".join(g) in said for g in groups) and ("Markers on top of each other" in said) == bool(groups)
    at.slider(key="auc").set_value(0.95).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "best-of-N · simulated 0.95" in {t["name"] for t in chart(at, "verifier_curves")["data"]}
    at = make_app(tmp_path, problems="40", budget="16", ver_tab="Gold solution against a corrupted copy")
    at.switch_page("pages/verifiers.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert set(at.dataframe[1].value["corruption"]) == set(corruptions.KINDS)
    # a handful of pairs per cell: the page says how wide that leaves a rate
    said = " ".join(c.value for c in at.caption)
    assert "gold-and-copy pairs: at " in said and "95% interval spans up to ±" in said
    few = int(said.split("gold-and-copy pairs: at ")[1].split(",")[0])
    assert f"±{98 / few ** 0.5:.0f} points" in said and few <= 8
    table = at.dataframe[1].value
    assert table["all"].between(0, 1).all() and "On the 40 selected problems" in said  # pooled over levels
    assert not any("verifier_curves" in c.proto.id for c in at.get("plotly_chart"))  # only the open tab ran


def test_step_score_aggregates_of_a_whole_column_match_one_list_at_a_time():
    from engine.scorers.learned import _aggregate_lists, _parse_lists
    from engine.verifiers import AGGREGATES, aggregate
    col = pd.Series(["[0.5, 0.25]", None, "[]", "[0.1]", "[0.5, 0.25]", "[0.3, 0.9, 0.2, 0.11, 0.7, 0.6, 0.5, 0.4, 0.33]"],
                    dtype="str")
    codes, lists = _parse_lists(col)
    rows = [lists[c] for c in codes]
    assert rows == [[0.5, 0.25], [], [], [0.1], [0.5, 0.25], [0.3, 0.9, 0.2, 0.11, 0.7, 0.6, 0.5, 0.4, 0.33]]
    for how in AGGREGATES:
        np.testing.assert_allclose(_aggregate_lists(lists, how)[codes], [aggregate(r, how) for r in rows],
                                   rtol=1e-15, atol=0)
    assert list(_aggregate_lists([[], []], "min")) == [0.0, 0.0]


def test_prm_step_auroc_on_shipped_samples_matches_brute_force(tmp_path):
    """The PRM's step scores (shipped, cached) against per-line labels: the pooled AUROC equals a brute-force
    count over (right line, wrong line) pairs, every scored line up to the answer line is counted, and
    ``scorer_quality`` reports it for every PRM aggregation and for no other scorer."""
    from engine import shipped
    from engine.analysis.scorer_quality import scorer_quality, step_auroc
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import SamplingParams
    from engine.results import load_samples
    cache = SampleCache(tmp_path / "c.duckdb")
    shipped.import_into(cache)
    exp = Experiment.build(["arith-s"], "arith", SamplingParams(n=64, temperature=0.8), problems=10)
    task = exp.load_task()
    df = scorers.get("prm-min").score(cache, task, load_samples(cache, exp.models[0], task, exp.selected(), exp.params))
    got, lines = step_auroc(df, task)
    by_id = task.by_id()
    pos, neg = [], []
    for pid, text, ok, steps in zip(df["problem_id"], df["text"], df["correct"], df["step_scores"]):
        lab = arith.local_step_labels(by_id[pid], text or "", bool(ok))
        for s, y in zip(steps, lab):
            (pos if y else neg).append(s)
    assert lines == len(pos) + len(neg) and 0 < len(pos) and 0 < len(neg)
    p, n = np.array(pos)[:, None], np.array(neg)[None, :]
    brute = ((p > n).sum() + 0.5 * (p == n).sum()) / (len(pos) * len(neg))
    assert got == pytest.approx(brute, abs=1e-12) and brute > 0.6
    q = scorer_quality(cache, exp, ["orm", "prm-min", "prm-last", "step-checker"]).set_index("scorer")["step_auroc"]
    assert q["prm-min"] == q["prm-last"] == pytest.approx(got) and q[["orm", "step-checker"]].isna().all()
    gsm = get_task("gsm")  # no gold steps: nothing to label
    assert np.isnan(step_auroc(df.assign(problem_id=gsm.problems[0].id), gsm)[0])
