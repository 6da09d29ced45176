"""The CLI end to end on a tiny real model: sweep fills the cache, report reads it."""
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT


def cli(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def swept(tiny_model, tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "c.duckdb"
    common = ["--models", tiny_model, "--problems", "4", "--n", "8", "--max-new-tokens", "16", "--cache", str(db)]
    first = cli("sweep", *common[:-5], "4", *common[-4:])  # n=4 first ...
    second = cli("sweep", *common)                          # ... then topped up to 8
    return db, common, first, second


def test_sweep_is_resumable(swept):
    _, _, first, second = swept
    assert "generated 16, already cached 0" in first.stdout
    assert "generated 16, already cached 16" in second.stdout


def test_report_table_and_csv(swept, tmp_path, tiny_model):
    db, common, _, _ = swept
    out = tmp_path / "r.csv"
    r = cli("report", *common, "--k", "1,2,8,64", "--csv", str(out))
    assert "pass@1" in r.stdout and "pass@8" in r.stdout and "pass@64" not in r.stdout  # k>n skipped ...
    assert "note: k=64 skipped: only 8 samples per problem" in r.stderr                  # ... and said so
    asked = list(common)
    asked[asked.index("--n") + 1] = "16"
    more = cli("report", *asked, "--k", "1")
    assert "8 of 16 samples per problem are cached" in more.stderr
    strict = cli("report", *asked, "--k", "1", "--strict", check=False)
    assert strict.returncode == 3 and "--strict" in strict.stderr
    # every k above what is cached: no table without an accuracy column, one message and a failing exit
    none = cli("report", *common, "--k", "64,128", check=False)
    assert none.returncode == 2 and "every k is above the 8 samples per problem cached" in none.stderr
    assert "Traceback" not in none.stderr
    df = pd.read_csv(out)
    assert len(df) == 1 and df.n.iloc[0] == 8 and df.problems.iloc[0] == 4
    assert 0 <= df["pass@1"].iloc[0] <= df["pass@2"].iloc[0] <= df["pass@8"].iloc[0] <= 1
    assert df.flops_per_sample.iloc[0] > 0 and df.tokens_total.iloc[0] > 0
    # the prompt apart, as the app counts it with prefix caching: one sample = prompt + one extra sample
    assert df.prompt_flops.iloc[0] > 0 and df.flops_per_extra_sample.iloc[0] > 0
    assert df.prompt_flops.iloc[0] + df.flops_per_extra_sample.iloc[0] == pytest.approx(df.flops_per_sample.iloc[0])
    assert "prompt_flops" in r.stdout and "flops_per_extra_sample" in r.stdout
    assert df["pass@1_lo"].iloc[0] <= df["pass@1"].iloc[0] <= df["pass@1_hi"].iloc[0]


def test_report_compares_strategies_like_the_app(swept, tmp_path, tiny_model):
    db, common, _, _ = swept
    out = tmp_path / "curves.csv"
    r = cli("report", *common, "--k", "1,2,8", "--strategy",
            "oracle,majority,best_of_n:self-likelihood,weighted_majority:self-likelihood", "--curves", str(out))
    assert "accuracy by selection strategy" in r.stdout and "weighted_majority:self-likelihood" in r.stdout
    df = pd.read_csv(out)
    assert list(dict.fromkeys(df.strategy)) == ["oracle", "majority", "best_of_n:self-likelihood",
                                                "weighted_majority:self-likelihood"]
    assert sorted(df.k.unique()) == [1, 2, 8] and (df.problems == 4).all()
    # the same numbers the app computes from the same experiment
    from engine import analysis
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import SamplingParams
    exp = Experiment.build([tiny_model], "arith", SamplingParams(n=8, temperature=0.8, max_new_tokens=16), 4,
                           strategies=list(dict.fromkeys(df.strategy)))
    app = analysis.curves(SampleCache(db), exp, ks=[1, 2, 8])
    assert app.accuracy.to_numpy() == pytest.approx(df.accuracy.to_numpy())
    # k=1: every strategy sees one sample, so all agree with pass@1
    assert df[df.k == 1].accuracy.nunique() == 1


def test_scorers_command_reports_within_problem_quality(swept):
    db, common, _, _ = swept
    out = cli("scorers", *common, "--scorer", "self-likelihood").stdout
    assert "within_problem_auroc" in out and "self-likelihood" in out and "tiny-a" in out


def test_strategies_command_lists_strategies_and_scorers():
    out = cli("strategies").stdout
    assert "weighted_majority:SCORER" in out and "self-likelihood" in out and "ties" in out


def test_export(swept, tmp_path):
    db, common, _, _ = swept
    r = cli("export", *common, "--out", str(tmp_path / "s.parquet"))
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == 32 and "note:" not in r.stderr
    # each sample beside its question and gold answer, so the file reads on its own
    from engine.tasks import get_task
    df, by_id = pd.read_parquet(tmp_path / "s.parquet"), get_task("arith").by_id()
    assert all(df.question == df.problem_id.map(lambda i: by_id[i].question))
    assert all(df.gold == df.problem_id.map(lambda i: by_id[i].answer))


def test_export_says_what_it_lacks(swept, tmp_path):
    db, common, _, _ = swept
    more = [("16" if a == "8" and common[i - 1] == "--n" else a) for i, a in enumerate(common)]
    r = cli("export", *more, "--out", str(tmp_path / "s.parquet"))
    assert "32 of 64 samples" in r.stderr and len(pd.read_parquet(tmp_path / "s.parquet")) == 32
    r = cli("export", *more, "--out", str(tmp_path / "t.parquet"), "--strict", check=False)
    assert r.returncode == 3 and "--strict" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["sweep", "--n", "0"], "n must be"),
    (["sweep", "--models", "/no/such/dir", "--problems", "1", "--n", "1"], "does not exist"),
    (["sweep", "--problems", "-1"], "--problems"),
    (["sweep", "--task", "nosuchtask"], "unknown task"),
    (["sweep", "--temperature", "hot"], "invalid float"),
    (["sweep", "--levels", "a,b"], "--levels"),
    (["report", "--models", "/no/such/dir", "--problems", "1"], "not a local directory"),
    (["frobnicate"], "invalid choice"),
    (["report", "--problems", "1", "--strategy", "psychic"], "unknown strategy"),
    (["sweep", "--models", "arith-zz", "--problems", "1"], "unknown model 'arith-zz': not a shipped model (arith-s"),
    (["report", "--problems", "1", "--k", "abc"], "--k must be comma-separated integers"),
    pytest.param(["sweep", "--models", "arith-s", "--problems", "1", "--n", "1", "--device", "cuda"], "no CUDA GPU",
                 marks=pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is visible")),
    (["sweep", "--models", "", "--problems", "1"], "--models names no model"),
    (["sweep", "--models", ",", "--problems", "1"], "--models names no model"),
    (["sweep", "--models", "arith-s", "--problems", "1", "--n", "1", "--batch", "-3"], "batch size must be"),
    (["sweep", "--models", "arith-s", "--problems", "1", "--n", "1", "--batch", "0"], "batch size must be"),
    (["report", "--problems", "1", "--csv", "/nonexistent/x.csv"], "does not exist"),
    (["export", "--problems", "1", "--out", "/nonexistent/x.csv"], "does not exist"),
    (["report", "--problems", "1", "--hardware", "abacus"], "unknown hardware profile"),
    (["report", "--problems", "1", "--strategy", "best_of_n"], "needs a scorer"),
    (["report", "--problems", "1", "--strategy", "best_of_n:nope"], "unknown scorer"),
])
def test_bad_arguments_one_line(args, needle, tmp_path):
    r = cli(*args, "--cache", str(tmp_path / "x.duckdb"), check=False) if args[0] != "frobnicate" else cli(*args, check=False)
    assert r.returncode != 0
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0] and "Traceback" not in r.stderr


def test_a_read_command_on_a_fresh_cache_reads_the_shipped_sweeps(tmp_path):
    """As the app does on its first start, `report` (and the other commands that read results) first loads the
    shipped ladder sweeps into an empty cache, and says so once; TTC_SHIPPED=0 turns that off."""
    import os
    db = str(tmp_path / "c.duckdb")
    args = [sys.executable, "-m", "engine", "report", "--models", "arith-s,arith-xl", "--problems", "20", "--n", "8",
            "--k", "1,8", "--cache", db]
    env = {**os.environ, "TTC_SHIPPED": "1"}
    first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr
    assert "loaded the shipped sweeps" in first.stderr and "arith-xl" in first.stdout and "pass@8" in first.stdout
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0 and "loaded the shipped sweeps" not in again.stderr and again.stdout == first.stdout
    off = subprocess.run(args[:-1] + [str(tmp_path / "d.duckdb")], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "TTC_SHIPPED": "0"})
    assert off.returncode != 0 and "sweep` first" in off.stderr and "Traceback" not in off.stderr


def test_models_and_datasets_added_in_the_app_work_by_name_with_the_same_cache(tiny_model, tmp_path):
    """A model added and a dataset uploaded on Models & data live beside the cache; the CLI said "unknown model"
    and "file not found" for them, and could not list them."""
    from engine import registry
    registry.add_model(tiny_model, tmp_path)
    data = registry.save_dataset("mine.csv", b"q,a\nWhat is 1+1?,2\nWhat is 2+3?,5\n", tmp_path)
    registry.save_mapping(data, {"question_col": "q", "answer_col": "a"})
    cache = ["--cache", str(tmp_path / "samples.duckdb")]
    listed = cli("models", *cache)
    assert "tiny-a" in listed.stdout and "added" in listed.stdout
    r = cli("sweep", "--models", "tiny-a", "--task", "mine.csv", "--problems", "2", "--n", "2", "--max-new-tokens",
            "8", *cache)
    assert "tiny-a: generated 4" in r.stdout
    # a file given by path reads the mapping saved beside it, as the app does
    r = cli("report", "--models", tiny_model, "--task", str(data), "--problems", "2", "--n", "2",
            "--max-new-tokens", "8", "--k", "1", *cache)
    assert "pass@1" in r.stdout and "Traceback" not in r.stderr
