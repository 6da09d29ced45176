"""The plug-in points (strategies, scorers, backends) and the one experiment object that flows through them."""
from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import analysis, backends, scorers, strategies
from engine.cache import SampleCache
from engine.errors import EngineError
from engine.experiment import Experiment
from engine.models import SamplingParams
from engine.models.loader import MODELS_DIR
from engine.models.ref import ModelRef, resolve_model
from engine.models.sampling import RawSample
from engine.runner import run
from engine.tasks import get_task

from tests.conftest import ROOT


# ---- what was cached before the restructuring is still found ------------------------------------
def test_shipped_model_fingerprint_and_config_key_are_pinned():
    # these two keys address every sample of the shipped ladder's evaluation cache (ladder_eval.json)
    exp = Experiment.build(["arith-s"], "arith", SamplingParams(n=64, temperature=0.8))
    assert exp.models[0].fingerprint == "efe4d2e9b257cf54"
    assert exp.params.key() == "355742bfd42efc0a"
    assert exp.params.stop == ("\n\n", "\nQ:")  # the task's stop strings, resolved once


def test_transformers_backend_reproduces_samples_from_before_the_backend_existed():
    # sha256 of 8 samples of arith-s on arith-L3-000 at T=0.8, recorded with the sampler called directly
    exp = Experiment.build(["arith-s"], "arith", SamplingParams(n=8, temperature=0.8))
    backend = backends.open_backend(exp.models[0], device="cpu")
    task = exp.load_task()
    p = task.by_id()["arith-L3-000"]
    raws = backend.generate(task.prompt(p), exp.params, range(8), prompt_key=f"arith/{p.id}")
    assert hashlib.sha256("|".join(r.text for r in raws).encode()).hexdigest()[:16] == "e93a2175cac54dcd"
    assert backend.spec.fingerprint == exp.models[0].fingerprint


# ---- the experiment object ------------------------------------------------------------------------
def test_experiment_is_frozen_hashable_and_canonical():
    a = Experiment.build(["arith-s"], "arith", SamplingParams(n=4), strategies=["orm", "majority"])
    b = Experiment.build(["arith-s"], "arith", SamplingParams(n=4), strategies=["best_of_n:orm", "majority"])
    assert a == b and hash(a) == hash(b) and a.strategies == ("best_of_n:orm", "majority")
    assert a.replace(levels=(2,)) != a and all(p.difficulty == 2 for p in a.replace(levels=(2,)).selected())
    with pytest.raises(Exception):
        a.task = "other"
    with pytest.raises(EngineError, match="no problems"):
        a.replace(levels=(9,)).selected()
    with pytest.raises(EngineError, match="unknown strategy"):
        a.replace(strategies=["psychic"])


# ---- a new strategy is one class: registered, it works everywhere ---------------------------------
class FirstSample(strategies.Strategy):
    """Test-only: the answer of the first of the k samples drawn (so accuracy is pass@1 for every k)."""
    name = "first_sample"
    label = short = "first sample"
    help = "first sample: whatever the first draw says"

    def curve(self, pool, ks):
        return np.array([pool.correct.mean() if k <= pool.n else np.nan for k in ks])

    def pick(self, pool):
        return 0


@pytest.fixture(scope="module")
def swept(tiny_model, tmp_path_factory):
    cache = SampleCache(tmp_path_factory.mktemp("ext") / "c.duckdb")
    exp = Experiment.build([tiny_model], "arith", SamplingParams(n=4, max_new_tokens=12), problems=5)
    run(exp.models[0], exp.load_task(), exp.selected(), exp.params, cache)
    return cache, exp


@pytest.fixture
def first_sample():
    strategies.register(FirstSample)
    yield
    strategies._REGISTRY.pop(FirstSample.name)


def test_a_registered_strategy_is_listed_and_plotted(swept, first_sample):
    cache, exp = swept
    assert "first_sample" in strategies.available()
    df = analysis.curves(cache, exp.replace(strategies=["first_sample", "oracle"]))
    first = df[df.strategy == "first_sample"]
    oracle = df[df.strategy == "oracle"]
    assert np.allclose(first.accuracy, oracle.accuracy.iloc[0])  # pass@1 at every k
    view = analysis.problem_view(cache, exp.replace(strategies=["first_sample"]), exp.selected()[0].id)
    assert view["pick"] == 0


def test_every_module_in_a_plugin_package_registers_itself():
    for pkg, names in (("strategies", {c.__module__.rsplit(".", 1)[-1] for c in strategies.kinds()}),):
        modules = {p.stem for p in (ROOT / "engine" / pkg).glob("*.py") if p.stem != "__init__"}
        assert modules <= names, f"{pkg}: {modules - names} register nothing"
    assert {"oracle", "majority", "best_of_n", "weighted_majority"} <= {c.name for c in strategies.kinds()}
    assert "transformers" in backends.kinds() and "self-likelihood" in scorers.available()


# ---- a new backend is one opener: the runner, the cache and the analysis take it as it is --------
class CountingBackend:
    """Test-only backend: sample i answers i, so of 100 samples exactly one hits a gold answer below 100."""

    def __init__(self, ref, device=None):
        from engine.models.loader import ModelSpec
        self.spec = ModelSpec(name=ref.name, source=ref.source, params=1000, matmul_params=1000, family="count",
                              dtype="none", device="cpu", fingerprint=ref.fingerprint, n_layers=None,
                              d_model=None, training=None)

    def generate(self, prompt, params, indices, prompt_key, max_batch=64):
        return [RawSample(index=i, text=f"#### {i}\n", prompt_tokens=10, completion_tokens=4, logprob=-1.0,
                          prefill_s=0.001, decode_s=0.004, batch_size=len(indices), finish="stop")
                for i in indices]


def test_a_registered_backend_serves_the_whole_pipeline(tmp_path, monkeypatch):
    monkeypatch.setitem(backends._OPENERS, "counting", CountingBackend)  # what backends.register("counting") does
    ref = ModelRef("counter", "nowhere", "c0ffee", backend="counting")
    exp = Experiment.build([ref], "arith", SamplingParams(n=100, temperature=0.0), problems=5, levels=[1])
    cache = SampleCache(tmp_path / "c.duckdb")
    res = run(ref, exp.load_task(), exp.selected(), exp.params, cache)
    assert res.generated == 500 and cache.stats()["samples"].sum() == 500
    df = analysis.curves(cache, exp.replace(strategies=["oracle", "majority"])).set_index(["strategy", "k"])
    hit = np.mean([0 <= int(p.answer) < 100 for p in exp.selected()])
    assert hit > 0
    # one correct sample in 100: pass@k = k / 100 (Chen et al.'s estimator, exact here)
    for k in (1, 8, 64):
        assert df.accuracy["oracle", k] == pytest.approx(hit * k / 100)
    assert df.accuracy["majority", 1] == pytest.approx(hit / 100)
    with pytest.raises(EngineError, match="unknown backend"):
        backends.open_backend(ModelRef("x", "y", "z", backend="nope"))


# ---- scorers ----------------------------------------------------------------------------------------
def test_prm_aggregations_come_from_one_set_of_cached_step_scores(swept):
    cache, exp = swept
    task = exp.load_task()
    base = analysis.curves(cache, exp.replace(strategies=["best_of_n:prm-min"]))
    assert not base.empty
    from engine.results import load_samples
    samples = load_samples(cache, exp.models[0], task, exp.selected(), exp.params)
    rows_before = len(cache.scores(scorers.get("prm-min").verifier.fingerprint))
    assert rows_before == len(samples)  # scored once, cached
    for agg, fn in (("min", min), ("prod", np.prod), ("last", lambda s: s[-1]), ("mean", np.mean)):
        df = scorers.get(f"prm-{agg}").score(cache, task, samples)
        expect = [float(fn(s)) if len(s) else 0.0 for s in df.step_scores]
        assert np.allclose(df.score, expect)
    assert len(cache.scores(scorers.get("prm-min").verifier.fingerprint)) == rows_before  # nothing re-scored


def test_scores_that_had_to_be_computed_come_back_like_cached_ones(tmp_path, tiny_model):
    """``scores`` (no step lists) gives the same frame whether it had to run the PRM first or read the cache;
    it once returned the freshly computed step lists too, and a PRM's scores of the other aggregations."""
    from engine.results import load_samples
    cache = SampleCache(tmp_path / "c.duckdb")
    exp = Experiment.build([tiny_model], "arith", SamplingParams(n=3, max_new_tokens=12), problems=3)
    run(exp.models[0], exp.load_task(), exp.selected(), exp.params, cache)
    task = exp.load_task()
    samples = load_samples(cache, exp.models[0], task, exp.selected(), exp.params)
    fresh = scorers.get("prm-mean").scores(cache, task, samples)   # scores every sample, then aggregates
    assert "step_scores" not in fresh
    pd.testing.assert_frame_equal(fresh, scorers.get("prm-mean").scores(cache, task, samples), check_exact=True)
    steps = scorers.get("prm-min").score(cache, task, samples)["step_scores"]
    assert np.allclose(fresh["score"], [float(np.mean(s)) if len(s) else 0.0 for s in steps], rtol=1e-12, atol=0)


def test_learned_scores_come_back_in_the_samples_order_and_only_missing_ones_are_scored(swept, tiny_classifier):
    """A user's verifier on a cache where half the samples are scored already: the other half is scored, every
    row gets the score the verifier gives its own text (matched by problem and index, whatever the row order),
    and a second call scores nothing."""
    from engine.results import load_samples
    from engine.verifiers import load_verifier
    cache, exp = swept
    task = exp.load_task()
    samples = load_samples(cache, exp.models[0], task, exp.selected(), exp.params)
    sc = scorers.get(tiny_classifier)
    first = samples.iloc[::2]
    sc.score(cache, task, first)
    fp = sc.verifier.fingerprint
    assert len(cache.scores(fp)) == len(first)
    shuffled = samples.sample(frac=1.0, random_state=3)
    got = sc.score(cache, task, shuffled)
    assert len(cache.scores(fp)) == len(samples) and (got.index == shuffled.index).all()
    by_id = task.by_id()
    direct = load_verifier(tiny_classifier).score_many([task.prompt(by_id[p]) for p in shuffled["problem_id"]],
                                                       shuffled["text"].fillna("").tolist())
    assert np.allclose(got["score"], direct, atol=1e-6)
    sc.score(cache, task, shuffled)
    assert len(cache.scores(fp)) == len(samples)


def test_a_users_classifier_directory_is_a_scorer(swept, tiny_classifier):
    from engine.results import load_samples
    cache, exp = swept
    path = tiny_classifier
    spec = f"best_of_n:{path}"
    df = analysis.curves(cache, exp.replace(strategies=[spec, f"weighted_majority:{path}"]))
    assert set(df.strategy) == {spec, f"weighted_majority:{path}"} and df.accuracy.between(0, 1).all()
    samples = load_samples(cache, exp.models[0], exp.load_task(), exp.selected(), exp.params)
    scored = scorers.get(path).score(cache, exp.load_task(), samples)
    assert scored.score.between(0, 1).all() and scored.score.nunique() > 1  # softmax of label 1 of 2
    assert strategies.short_label(spec) == "best-of-N · my-rm"


def test_self_likelihood_ranks_by_mean_token_logprob(swept):
    cache, exp = swept
    from engine.results import load_samples
    samples = load_samples(cache, exp.models[0], exp.load_task(), exp.selected(), exp.params)
    df = scorers.get("self-likelihood").score(cache, exp.load_task(), samples)
    mean_lp = samples.logprob / samples.completion_tokens.clip(lower=1)
    assert (df.score.rank().to_numpy() == mean_lp.rank().to_numpy()).all() and (df.score > 0).all()


def test_unknown_scorer_is_a_clear_error():
    with pytest.raises(EngineError, match="unknown scorer 'psychic'"):
        scorers.get("psychic")


# ---- who may know what -------------------------------------------------------------------------------
STRATEGY_LITERAL = re.compile(r"""(==|!=|\bin)\s*[\(\[{]?\s*["'](oracle|majority|orm|prm|best_of_n|weighted_majority)""")


def test_no_page_or_ui_module_compares_strategy_names():
    for f in list((ROOT / "pages").glob("*.py")) + list((ROOT / "ui").glob("*.py")) + [ROOT / "app.py"]:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            assert not STRATEGY_LITERAL.search(line), f"{f.name}:{n}: {line.strip()}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_engine_layers():
    for f in (ROOT / "engine").rglob("*.py"):
        assert not any(i.startswith("streamlit") for i in _imports(f)), f"{f} imports streamlit"
        if f.name != "cache.py":
            assert "duckdb" not in _imports(f), f"{f} speaks SQL; only cache.py may"
    catalogue = _imports(ROOT / "engine" / "registry.py")
    assert not any(i.endswith(("runner", "train")) or ".train" in i for i in catalogue), catalogue


# ---- the README's example strategy works as printed ---------------------------------------------
def _readme_strategy_source() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split('"""Confident majority', 1)[1].split("```", 1)[0]
    return '"""Confident majority' + block


def test_readme_example_strategy_is_one_module_that_works(tmp_path):
    import importlib.util
    source = _readme_strategy_source()
    assert len([l for l in source.splitlines() if l.strip()]) <= 20
    spec = importlib.util.spec_from_loader("engine.strategies.readme_example", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "engine.strategies"
    exec(compile(source, "README.md", "exec"), mod.__dict__)
    try:
        _check_confident_majority()
    finally:
        strategies._REGISTRY.pop("confident_majority")


def _check_confident_majority():
    import itertools
    strat = strategies.get("confident_majority:orm")
    rng = np.random.default_rng(1)
    for _ in range(30):
        n = int(rng.integers(1, 7))
        answers = tuple(rng.choice(["1", "2", "3"], n).tolist())
        correct = np.array([a == "1" for a in answers])
        scores = rng.choice([0.2, 0.5, 0.9], n)
        pool = strategies.Pool(answers, correct, scores)
        for k in range(1, n + 1):
            total = 0.0
            subsets = list(itertools.combinations(range(n), k))
            for sub in subsets:
                votes = {}
                for i in sub:
                    if scores[i] >= 0.5:
                        votes[answers[i]] = votes.get(answers[i], 0) + 1
                if votes:
                    top = [a for a, c in votes.items() if c == max(votes.values())]
                    total += ("1" in top) / len(top)
            assert strat.curve(pool, [k])[0] == pytest.approx(total / len(subsets), abs=1e-12)
    assert "confident_majority:orm" in strategies.available(["orm"])


def test_two_different_models_under_one_name_are_refused_not_merged(tiny_model, tiny_model_b, tmp_path):
    """Two directories both called rv2_model: report printed two rows of that name, the strategy table merged
    them, and --curves wrote duplicate rows. The app refused such an addition; the engine now does too."""
    import shutil

    from engine.errors import EngineError
    from engine.experiment import Experiment
    a, b = tmp_path / "a" / "mine", tmp_path / "b" / "mine"
    shutil.copytree(tiny_model, a)
    shutil.copytree(tiny_model_b, b)
    with pytest.raises(EngineError, match="two different models are both called 'mine'.*rename one directory"):
        Experiment.build([str(a), str(b)])
    assert len(Experiment.build([str(a), str(a)]).models) == 1   # the same model twice: once
    with pytest.raises(EngineError, match="both called"):
        Experiment.build([str(a)]).replace(models=[str(a), str(b)])
