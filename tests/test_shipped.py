"""The precomputed sweeps that ship in data/sweeps: they match the shipped models, reproduce, and load safely."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from engine import shipped
from engine.backends import open_backend
from engine.cache import SampleCache
from engine.experiment import Experiment
from engine.models import SamplingParams
from engine.models.loader import MODELS_DIR, fingerprint, list_shipped
from engine.verifiers import VERIFIERS_DIR

MAN = shipped.manifest()
pytestmark = pytest.mark.skipif(MAN is None, reason="no shipped sweeps (python -m engine.train ship)")


def test_sweeps_match_the_shipped_model_and_verifier_files():
    assert [m["name"] for m in MAN["models"]] == list_shipped()
    assert shipped.stale() == [], "a model changed since the sweeps were written: rerun evaluate and ship"
    for name, fp in MAN["verifiers"].items():
        assert fingerprint(str(VERIFIERS_DIR / name)) == fp, f"verifier {name} changed: rerun ship"
    assert MAN["samples"] == len(MAN["models"]) * 500 * 64
    samples = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SAMPLES_FILE)
    assert len(samples) == MAN["samples"] and not samples.duplicated(["model_fp", "problem_id", "idx"]).any()
    assert set(samples.model_fp) == {m["model_fp"] for m in MAN["models"]}
    assert (samples.config_key == MAN["config_key"]).all()
    assert sum(p.stat().st_size for p in shipped.SWEEPS_DIR.iterdir()) < 30e6


def test_rescoring_on_this_cpu_reproduces_the_shipped_verifier_scores():
    """The shipped scores were computed on an H200 in float32; the shipped verifiers on this CPU agree to
    about 6e-7 (measured on 512 samples), so a user's own rescoring ranks the samples the same way."""
    import numpy as np
    from engine.tasks import get_task
    from engine.verifiers import aggregate, load_verifier
    key = ["model_fp", "task", "problem_id", "config_key", "idx"]
    samples = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SAMPLES_FILE).sample(96, random_state=1)
    scores = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SCORES_FILE)
    task = get_task("arith")
    by_id = task.by_id()
    for name, fp in MAN["verifiers"].items():
        v = load_verifier(name, device="cpu")
        s = scores[scores.verifier_fp == fp].merge(samples, on=key)
        assert len(s) == len(samples)
        prompts, texts = [task.prompt(by_id[p]) for p in s.problem_id], s.text.fillna("").tolist()
        new = v.score_many(prompts, texts) if v.kind == "orm" else \
            [aggregate(st, "min") for st in v.step_scores_many(prompts, texts)]
        assert np.abs(np.asarray(new) - s.score.to_numpy()).max() < 1e-5, name


@pytest.mark.parametrize("model,problem", [("arith-s", "arith-L3-007"), ("arith-xl", "arith-L5-011")])
def test_regenerating_a_cell_reproduces_the_shipped_samples(model, problem):
    """Same model, prompt, config and sample index: the same text, on this CPU (README: how rarely other
    hardware differs)."""
    exp = Experiment.build([model], "arith", SamplingParams(n=64, temperature=0.8))
    assert exp.params.key() == MAN["config_key"]
    task = exp.load_task()
    backend = open_backend(exp.models[0], device="cpu")
    raws = backend.generate(task.prompt(task.by_id()[problem]), exp.params, range(16), prompt_key=f"arith/{problem}")
    ship = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SAMPLES_FILE,
                           filters=[("model_fp", "==", exp.models[0].fingerprint), ("problem_id", "==", problem)])
    ship = ship.sort_values("idx").head(16)
    assert [r.text for r in raws] == ship.text.tolist()
    assert [r.completion_tokens for r in raws] == ship.completion_tokens.tolist()


def test_a_batched_sweep_reproduces_the_shipped_samples(tmp_path):
    """The runner's batches hold many problems' rows (engine.models.decode); the shipped samples were drawn
    one problem at a time through generate. Same texts and token counts (README, Reliability: 2 of 128,000
    differ, by a near-tie, none of them here)."""
    from engine.runner import run
    exp = Experiment.build(["arith-s"], "arith", SamplingParams(n=64, temperature=0.8), problems=20)
    cache = SampleCache(tmp_path / "c.duckdb")
    run(exp.models[0], exp.load_task(), exp.selected(), exp.params, cache)
    mine = cache.samples().sort_values(["problem_id", "idx"]).reset_index(drop=True)
    assert mine.batch_size.min() > 64  # rows of several problems per batch
    ship = pd.read_parquet(shipped.SWEEPS_DIR / shipped.SAMPLES_FILE,
                           filters=[("model_fp", "==", exp.models[0].fingerprint),
                                    ("problem_id", "in", sorted(set(mine.problem_id)))])
    ship = ship.sort_values(["problem_id", "idx"]).reset_index(drop=True)
    assert len(mine) == len(ship) == 20 * 64
    assert mine.text.tolist() == ship.text.tolist()
    assert mine.completion_tokens.tolist() == ship.completion_tokens.tolist()


def test_import_is_fast_idempotent_and_never_overwrites(tmp_path):
    cache = SampleCache(tmp_path / "c.duckdb")
    fp = MAN["models"][0]["model_fp"]
    mine = dict(model_fp=fp, task="arith", problem_id="arith-L1-000", config_key=MAN["config_key"], idx=0,
                text="my own sample", answer="1", correct=False, prompt_tokens=1, completion_tokens=1, logprob=0.0,
                prefill_s=0.0, decode_s=0.0, batch_size=1, finish="eos", device="cpu")
    cache.write_samples([mine])
    done = shipped.import_into(cache)
    assert done["samples"] == MAN["samples"] - 1 and done["scores"] == MAN["scores"] and done["stale"] == []
    kept = cache.samples(model_fp=fp, problem_ids=["arith-L1-000"], max_idx=1)
    assert kept.text.tolist() == ["my own sample"]
    assert shipped.import_into(cache) == {"samples": 0, "scores": 0, "stale": []}
    models = cache.models()
    assert list(models.name) == list_shipped() and models.source.str.startswith(str(MODELS_DIR)).all()


def test_a_cache_with_the_sweeps_draws_every_page_without_running_anything(tmp_path):
    from engine import analysis
    cache = SampleCache(tmp_path / "c.duckdb")
    shipped.import_into(cache)
    exp = Experiment.build(list_shipped(), "arith", SamplingParams(n=16, temperature=0.8), problems=50,
                           strategies=["oracle", "majority", "best_of_n:orm", "best_of_n:prm-min"])
    df = analysis.curves(cache, exp)
    assert set(df.model) == set(list_shipped()) and (df.problems == 50).all()
    assert len(cache.scores(MAN["verifiers"]["orm"])) == MAN["samples"]  # scored already: no waiting


def test_stale_sweeps_are_not_loaded(tmp_path):
    man = json.loads(shipped.MANIFEST.read_text())
    man["models"][0]["model_fp"] = "0" * 16  # as if arith-s had been retrained since
    d = tmp_path / "sweeps"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps(man))
    cache = SampleCache(tmp_path / "c.duckdb")
    assert shipped.import_into(cache, d) == {"samples": 0, "scores": 0, "stale": ["arith-s"]}
    assert cache.count() == 0


def test_the_app_starts_full(tmp_path, monkeypatch):
    from tests.test_app import make_app
    monkeypatch.setenv("TTC_SHIPPED", "1")
    at = make_app(tmp_path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 3 and "Verdict." in " ".join(m.value for m in at.markdown)
    assert SampleCache(tmp_path / "samples.duckdb").count() == MAN["samples"]


def test_pages_open_on_all_the_shipped_sweeps_hold_and_say_so_when_shown_less(tmp_path, monkeypatch):
    """A page opens on everything shipped (500 problems x 64 samples: a 50 x 16 slice of it recommended another
    model and crowned another winner); lowered, its data note says how to use the rest; at another temperature
    (not shipped) it does not. With the shipped sweeps off, pages open on 50 x 16, which a first Run fills fast."""
    from tests.test_app import make_app
    monkeypatch.setenv("TTC_SHIPPED", "1")
    at = make_app(tmp_path)
    at.run()
    assert (at.number_input(key="problems").value, at.select_slider(key="budget").value) == (500, 64)
    assert "Every curve: 500 problems × 64 samples per model, all cached." in " ".join(c.value for c in at.caption)
    assert shipped.size("arith") == (500, 64) and shipped.size("gsm") is None
    assert shipped.holds(Experiment.build(list_shipped(), "arith", SamplingParams(n=64, temperature=0.8),
                                          problems=500)) == (500, 64)
    assert shipped.holds(Experiment.build(["arith-s"], "arith", SamplingParams(n=16, temperature=0.7))) is None
    at = make_app(tmp_path, problems="50", budget="16")
    at.run()
    assert "The shipped sweeps hold 500 problems × 64 samples for these models" in " ".join(c.value for c in at.caption)
    for page in ("pages/verifiers.py", "pages/size_vs_compute.py"):  # every page opens on the same data
        at = make_app(tmp_path)
        at.switch_page(page)
        at.run()
        assert not at.exception and at.number_input(key="problems").value == 500, page
    monkeypatch.setenv("TTC_SHIPPED", "0")
    at = make_app(tmp_path / "off")
    at.run()
    assert (at.number_input(key="problems").value, at.select_slider(key="budget").value) == (50, 16)


def test_the_cache_table_lists_models_smallest_first_with_whole_token_counts(tmp_path):
    """Models & data's cache table: the ladder in size order (not arith-l, arith-m, arith-s, arith-xl) and token
    totals as whole numbers (DuckDB's sum of integers is a 128-bit integer, which pandas made 1162060.000000)."""
    cache = SampleCache(tmp_path / "c.duckdb")
    shipped.import_into(cache)
    st = cache.stats()
    assert list(st["model"]) == ["arith-s", "arith-m", "arith-l", "arith-xl"]
    assert st["completion_tokens"].dtype.kind == "i" and (st["completion_tokens"] > 1_000_000).all()


def test_coverage_counted_by_the_database_matches_the_cached_indices(tmp_path):
    """What every page says before it plots (complete, partial and missing pools per model) is counted in SQL;
    brute force: the same from every cached index, on a cache with holes and indices past the budget."""
    from engine import planning
    cache = SampleCache(tmp_path / "c.duckdb")
    shipped.import_into(cache)
    rng = np.random.default_rng(0)
    fp = Experiment.build(["arith-m"], "arith", SamplingParams(n=64)).models[0].fingerprint
    with cache._conn() as con:  # holes: about one sample in 20 of one model gone, and one problem's whole pool
        con.execute("DELETE FROM samples WHERE model_fp = ? AND hash(problem_id, idx) % 20 = 0", [fp])
        con.execute("DELETE FROM samples WHERE model_fp = ? AND problem_id = (SELECT min(problem_id) FROM samples)",
                    [fp])
    for n, problems in ((16, 120), (64, 500), (int(rng.integers(2, 64)), 37)):
        exp = Experiment.build(list_shipped(), "arith", SamplingParams(n=n, temperature=0.8), problems=problems)
        task = exp.load_task()
        for row, ref in zip(planning.coverage(cache, exp), exp.models):
            left = [len(v) for v in planning.missing(cache, ref.fingerprint, task, exp.selected(), exp.params).values()]
            assert row == dict(model=ref.name, selected=problems, complete=sum(m == 0 for m in left),
                               partial=sum(0 < m < n for m in left), none=sum(m == n for m in left),
                               samples=problems * n - sum(left)), (n, ref.name)
    assert any(r["partial"] for r in planning.coverage(cache, exp.replace(problems=500)))  # the holes were seen


def test_the_shipped_scorer_quality_is_what_the_sweeps_give(tmp_path):
    """The record read on Models & data (instead of seconds of measuring) is the measurement of these sweeps
    and verifiers: one model's rows measured again agree to the record's 10 digits."""
    from engine import scorers
    from engine.analysis.scorer_quality import scorer_quality
    rec = shipped.quality()
    assert rec is not None, "scorer_quality.json is missing or stale: rerun `python -m engine.train ship`"
    names = scorers.available()
    assert set(rec.scorer) == set(names) and set(rec.model) == set(list_shipped())
    cache = SampleCache(tmp_path / "c.duckdb")
    shipped.import_into(cache)
    model = list_shipped()[-1]
    exp = Experiment.shipped().replace(models=[model])
    mine = rec[rec.model == model].reset_index(drop=True)
    now = scorer_quality(cache, exp, mine.scorer.tolist())
    pd.testing.assert_frame_equal(now[mine.columns], mine, check_exact=False, rtol=1e-9, atol=0)


def test_scorer_quality_measures_only_what_the_record_lacks_and_nothing_when_stale(tmp_path, monkeypatch,
                                                                                  tiny_classifier):
    from engine.analysis import scorer_quality as sq
    asked = []
    real = sq.scorer_quality
    monkeypatch.setattr(sq, "scorer_quality", lambda cache, exp, names: asked.append(list(names)) or
                        real(cache, exp.replace(problems=20), names))
    cache = SampleCache(tmp_path / "c.duckdb")
    shipped.import_into(cache)
    names = ["prm-min", tiny_classifier, "orm"]
    out = sq.recorded_or_measured(cache, Experiment.shipped(), names)
    assert asked == [[tiny_classifier]]           # the shipped scorers come from the record
    assert out.scorer.tolist() == names * len(list_shipped())  # per model, in the order asked
    assert out.model.tolist() == [m for m in list_shipped() for _ in names]
    rec = shipped.quality()
    assert out[out.scorer == "orm"].reset_index(drop=True).equals(rec[rec.scorer == "orm"].reset_index(drop=True))
    # a retrained verifier: the record is not of it, so everything is measured again
    monkeypatch.setattr(shipped, "_identity", lambda man: {"config_key": man["config_key"], "models": {},
                                                           "verifiers": {}})
    asked.clear()
    assert shipped.quality() is None
    sq.recorded_or_measured(cache, Experiment.shipped(), ["orm"])
    assert asked == [["orm"]]
    # settings the sweeps do not hold exactly (fewer problems or samples) are measured, not read
    monkeypatch.undo()
    monkeypatch.setattr(sq, "scorer_quality", lambda cache, exp, names: asked.append(list(names)) or real(cache, exp, names))
    asked.clear()
    for exp in (Experiment.shipped().replace(problems=20), Experiment.shipped().replace(params=SamplingParams(
            n=16, temperature=0.8))):
        assert shipped.covers(Experiment.shipped()) and not shipped.covers(exp)
        assert sq.recorded_or_measured(cache, exp.replace(models=exp.models[:1]), ["orm"]).samples.iloc[0] == \
            len(exp.selected()) * exp.params.n
    assert asked == [["orm"], ["orm"]]


def test_models_and_data_and_verifiers_show_the_shipped_scorer_quality_without_measuring(tmp_path, monkeypatch):
    """Measuring every scorer on the sweeps took 3-4 s at each first visit (Verifiers: 2 s); the pages now read
    the record."""
    from engine import scorers
    from engine.analysis import scorer_quality as sq
    from tests.test_app import page, texts

    def refuse(*a, **k):
        raise AssertionError("measured what the record holds")
    monkeypatch.setenv("TTC_SHIPPED", "1")
    monkeypatch.setattr(sq, "scorer_quality", refuse)
    at = page(tmp_path, "pages/models_data.py")
    assert "How well each scorer ranks the samples of one problem" in texts(at.subheader)
    table = next(e.value for e in at.dataframe if "within_problem_auroc" in e.value.columns
                 and "scorer" in e.value.columns)
    names = scorers.available()
    assert table["scorer"].tolist() == [scorers.short_label(n) for n in names] * len(list_shipped())
    assert table["within_problem_auroc"].between(0.5, 1).all() and (table["samples"] == 500 * 64).all()
    at = page(tmp_path, "pages/verifiers.py")   # its quality table too, on the model it opens on
    assert "Each scorer on" in texts(at.subheader) and not at.error


def test_reading_cached_scores_and_counting_a_verifiers_cost_load_no_verifier(tmp_path, monkeypatch):
    """A learned scorer's cached scores and its parameter count come from its files (fingerprint, safetensors
    header): loading the model took 0.3 s per verifier at a page's first use, for nothing to score."""
    from engine.results import load_samples
    from engine.scorers import learned
    from engine.verifiers import describe, load_verifier
    for name in MAN["verifiers"]:
        assert describe(name).params == sum(p.numel() for p in load_verifier(name, device="cpu").model.parameters())
        assert describe(name).fingerprint == MAN["verifiers"][name]
    cache = SampleCache(tmp_path / "c.duckdb")
    shipped.import_into(cache)
    exp = Experiment.shipped().replace(models=list_shipped()[:1], problems=30)
    samples = load_samples(cache, exp.models[0], exp.load_task(), exp.selected(), exp.params)

    def refuse(*a, **k):
        raise AssertionError("loaded a verifier with nothing to score")
    monkeypatch.setattr(learned, "load_verifier", refuse)
    for agg in (None, "min", "mean"):
        sc = learned.LearnedScorer("s", str(VERIFIERS_DIR / ("orm" if agg is None else "prm")), agg)
        assert sc.params > 800_000 and sc.scores(cache, exp.load_task(), samples)["score"].notna().all()


def test_the_quality_record_is_read_back_only_for_the_sweeps_and_verifiers_it_measured(tmp_path):
    """What ``python -m engine.train ship`` writes beside the sweeps comes back as written; a record of other
    sweeps (another config) or of a verifier since retrained is not used."""
    import shutil
    d = tmp_path / "sweeps"
    d.mkdir()
    shutil.copy(shipped.MANIFEST, d / shipped.MANIFEST.name)
    rows = [dict(model="arith-s", scorer="orm", pooled_auroc=0.8, within_problem_auroc=0.7, step_auroc=None,
                 problems=390, samples=32000)]
    shipped.write_quality(rows, d)
    back = shipped.quality(d)
    got = back.to_dict("records")[0]
    assert np.isnan(got.pop("step_auroc")) and got == {k: v for k, v in rows[0].items() if k != "step_auroc"}
    rec = json.loads((d / shipped.QUALITY_FILE).read_text())
    for key, other in (("config_key", "0" * 16), ("verifiers", {"orm": "0" * 16, "prm": MAN["verifiers"]["prm"]})):
        (d / shipped.QUALITY_FILE).write_text(json.dumps(dict(rec, **{key: other})))
        assert shipped.quality(d) is None, key


def test_the_verdict_tests_the_gap_on_the_problems_both_models_answered(tmp_path, monkeypatch):
    """arith-l with 8 samples and majority vote against arith-xl once, on all 500 problems: 62.1% against 66.8%.
    The two intervals, combined as if independent, overlap zero ("within noise" was the page's verdict); the
    per-problem differences (the same problems for both) put the gap's interval at about [-6.9, -2.4] points."""
    from tests.test_app import page, texts
    monkeypatch.setenv("TTC_SHIPPED", "1")
    at = page(tmp_path)
    said = texts(at.markdown)
    assert "running the largest model (arith-xl) once is clearly better than any smaller model" in said
    assert "**arith-l** with 8 samples and majority vote answers 62.1%: **arith-xl wins** by 4.7 points" in said
    assert "within noise" not in said
    # pooled over levels; Explore names the level that goes the other way, as Size vs compute does
    assert "Not at every level: at 1 of them a smaller model wins (below)." in said
    assert "Level 2: arith-l × 8 samples with majority vote (97.1%) beats arith-xl × 1 (91.7%)." in said
    assert "Compared among the strategies selected that need no answer key: majority vote." in texts(at.caption)
    at = page(tmp_path, "pages/size_vs_compute.py", ratio="1")   # the footnote says which compute is equal
    assert "Equal compute means equal inference plus pretraining FLOPs per problem" in texts(at.caption)


def test_a_model_keeps_its_colour_whatever_else_is_selected(tmp_path, monkeypatch):
    """arith-xl was drawn in arith-m's colour when only arith-s and arith-xl were picked (colours went by position
    in the selection); the shared legend still lists only the models on the charts."""
    from tests.test_app import chart, html_of, page
    monkeypatch.setenv("TTC_SHIPPED", "1")

    def colours(at):
        fig = next(chart(at, c.proto.id) for c in at.get("plotly_chart"))
        return {t["name"]: t["line"]["color"] for t in fig["data"] if t.get("mode") == "lines+markers"}
    every = colours(page(tmp_path))
    assert set(every) == set(list_shipped()) and len(set(every.values())) == 4
    at = page(tmp_path, models=["arith-s", "arith-xl"])
    assert colours(at) == {m: every[m] for m in ("arith-s", "arith-xl")}
    legend = html_of(at).split("ttc-legend", 1)[1].split("</div>", 1)[0]
    assert "arith-xl" in legend and "arith-m" not in legend


def test_a_verifiers_time_is_charged_at_its_own_measured_rate_not_its_generators(tmp_path):
    """Best-of-64 by the ORM cost arith-s $2.73 per 1,000 problems against arith-xl's $0.71: the ORM's FLOPs were
    charged at each generator's own rate, and the 27k-parameter arith-s is slow per FLOP. Charged at the ORM's
    measured rate (its training record, `bench/scoring.py`), scoring costs every model the same per token, and
    the larger model costs more."""
    from engine import analysis, scorers
    orm = scorers.get("orm")
    assert orm.flops_per_s and 1e9 < orm.flops_per_s < 1e12
    cache = SampleCache(tmp_path / "c.duckdb")
    shipped.import_into(cache)
    exp = Experiment.build(["arith-s", "arith-xl"], "arith", SamplingParams(n=64, temperature=0.8), problems=100,
                           strategies=["majority", "best_of_n:orm"])
    cv = analysis.curves(cache, exp, ks=[64]).set_index(["model", "strategy"])
    for m in ("arith-s", "arith-xl"):
        scoring = cv.loc[(m, "best_of_n:orm"), "device_s"] - cv.loc[(m, "majority"), "device_s"]
        flops = cv.loc[(m, "best_of_n:orm"), "flops"] - cv.loc[(m, "majority"), "flops"]
        assert scoring == pytest.approx(flops / orm.flops_per_s, rel=1e-6)
    assert cv.loc[("arith-xl", "best_of_n:orm"), "dollars"] > cv.loc[("arith-s", "best_of_n:orm"), "dollars"]
    assert cv.loc[("arith-xl", "best_of_n:orm"), "latency_s"] > cv.loc[("arith-s", "best_of_n:orm"), "latency_s"]


def test_explore_says_why_measured_dollars_do_not_follow_model_size(tmp_path, monkeypatch):
    """At 64 samples and majority vote, arith-m (60k parameters) costs less measured than arith-s (27k): per-step
    overhead, not size. The cost table says so; with a hardware projection, where cost follows size, it does not."""
    from tests.test_app import page, texts
    monkeypatch.setenv("TTC_SHIPPED", "1")
    said = texts(page(tmp_path).caption)
    assert "Measured when sampled, arith-m costs less than arith-s though it takes more FLOPs" in said
    assert "costs less than" not in texts(page(tmp_path, hw="NVIDIA H100 SXM").caption)


def test_a_page_that_reads_the_cache_opens_without_importing_torch_or_transformers(tmp_path):
    """Importing them took 3-4 s of a new server's first page (before: 7.4 s to Explore's first render in a new
    process, now about 2 s); they load when something samples or scores new texts."""
    import subprocess
    import sys
    code = f"""
import os, sys
os.environ["TTC_SHIPPED"] = "1"
from streamlit.testing.v1 import AppTest
for page in (None, "pages/verifiers.py", "pages/size_vs_compute.py"):
    at = AppTest.from_file("app.py", default_timeout=300)
    at.session_state["cache"] = {str(tmp_path / "samples.duckdb")!r}
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
"""
    from engine.models.loader import MODELS_DIR
    out = subprocess.run([sys.executable, "-c", code], cwd=MODELS_DIR.parents[1], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_no_sign_of_an_nvidia_driver_means_cpu_without_asking_torch(monkeypatch):
    import shutil

    from engine.models import loader
    monkeypatch.setattr(loader.os.path, "exists", lambda p: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert not loader.nvidia_visible()
    monkeypatch.setattr(loader.os.path, "exists", lambda p: p == "/dev/nvidiactl")
    assert loader.nvidia_visible()


def test_the_inspector_says_when_the_pick_is_one_of_several_equal_top_scores(tmp_path, monkeypatch):
    """arith-s on arith-L1-019, best-of-N by the ORM: the pick was #7 though #0 has the same score; nothing said
    the tie was broken at random."""
    from tests.test_app import page, texts
    monkeypatch.setenv("TTC_SHIPPED", "1")
    at = page(tmp_path, "pages/inspector.py", model="arith-s", problem="arith-L1-019", strategy="best-of-N",
              strategy_scorer="orm")
    said = texts(at.caption)
    samples = at.dataframe[0].value
    top = samples[samples["score"] == samples["score"].max()]
    assert len(top) > 1 and f"{len(top)} samples share the top score ({top['score'].iloc[0]:.3f})" in said
    right = int(top["correct"].sum())
    assert ("all of them are right" if right == len(top) else "none of them is right" if right == 0 else
            f"right with probability {right}/{len(top)}") in said
    picked = int(next(m.value for m in at.metric if m.label.startswith("Pick")).split(":")[0].lstrip("#"))
    assert picked in set(top["idx"])


def test_the_gold_vs_corrupted_record_is_what_scoring_gives_and_the_page_reads_it(tmp_path, monkeypatch):
    """Verifiers' gold-vs-corrupted tab scored only the first 100 problems (25 s for all 500): 20 pairs a cell,
    whose noise read as a pattern (ORM nudged 80/60/45/70/40% against 82/67/58/54/42% on all 500). The record
    written with the sweeps holds every problem; scoring some again gives the same, and only scorers it lacks
    are scored."""
    from engine.analysis import corruptions
    from engine.tasks import get_task
    task = get_task("arith")
    rec = shipped.gold(task)
    assert rec is not None and rec["problem_id"].nunique() == len(task.problems)
    some = task.select(15)
    ids = {p.id for p in some}
    again = corruptions.wins(task, ["step-checker", "orm", "self-likelihood"], some, models=["arith-s"])
    mine = rec[rec["problem_id"].isin(ids) & rec["scorer"].isin(["step-checker", "orm", "self-likelihood"])
               & rec["model"].isin([None, "arith-s"])]
    key = ["scorer", "problem_id", "corruption"]
    a, b = again.sort_values(key).reset_index(drop=True), mine.sort_values(key).reset_index(drop=True)
    assert len(a) == len(b) > 0 and a[key].equals(b[key]) and np.allclose(a["win"], b["win"])
    # recorded scorers come from the record, others are scored; the rates are the same either way
    mixed = corruptions.gold_beats_corrupted(task, ["orm", "simulated-0.8"], some, recorded=True)
    assert set(mixed["scorer"]) == {"orm", "simulated-0.8"}
    assert mixed[mixed.scorer == "orm"].reset_index(drop=True).equals(
        corruptions.gold_beats_corrupted(task, ["orm"], some).reset_index(drop=True))
    assert corruptions.all_recorded(task, ["orm", "self-likelihood"], list_shipped())
    assert not corruptions.all_recorded(task, ["orm", "simulated-0.8"])
    # another task's gold solutions, or other verifiers: the record is not read
    d = tmp_path / "sweeps"
    d.mkdir()
    shutil.copy(shipped.MANIFEST, d / shipped.MANIFEST.name)
    shipped.write_gold(rec, task, d)
    assert shipped.gold(task, d) is not None
    import dataclasses
    other = dataclasses.replace(task, problems=task.problems[1:])
    assert shipped.gold(other, d) is None
    man = json.loads((d / shipped.MANIFEST.name).read_text())
    (d / shipped.MANIFEST.name).write_text(json.dumps(dict(man, config_key="0" * 16)))
    assert shipped.gold(task, d) is None
    # the page, on every selected problem
    from tests.test_app import page, texts
    monkeypatch.setenv("TTC_SHIPPED", "1")
    at = page(tmp_path, "pages/verifiers.py", ver_tab="Gold solution against a corrupted copy")
    said = texts(at.caption)
    assert "On the 500 selected problems" in said and "At most 100" not in said
    table = next(d.value for d in at.dataframe if "corruption" in d.value.columns)
    row = table[(table["scorer"] == "ORM") & (table["corruption"] == "nudged")].iloc[0]
    share = [float(v.rstrip("%")) / 100 if isinstance(v, str) else v  # a column with a dash is shown as text
             for v in (row[c] for c in ("L1", "L2", "L3", "L4", "L5", "all"))]
    assert [round(100 * v) for v in share] == [82, 67, 58, 54, 42, 61]


def test_a_cli_sweep_of_a_shipped_model_takes_the_shipped_samples_instead_of_sampling_them_again(tmp_path):
    """`sweep` on a fresh cache regenerated what the shipped sweeps hold; a later `report` then loaded them
    anyway. It now imports them first, and generates nothing for a cell they cover."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    r = subprocess.run([sys.executable, "-m", "engine", "sweep", "--models", "arith-s", "--problems", "8", "--n", "16",
                        "--cache", str(tmp_path / "c.duckdb")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TTC_SHIPPED": "1"})
    assert r.returncode == 0, r.stderr
    assert "loaded the shipped sweeps" in r.stderr and "arith-s: generated 0, already cached 128" in r.stdout
    exp = Experiment.build(["arith-s"], "arith", SamplingParams(n=16, temperature=0.9), problems=8)
    assert shipped.overlaps(Experiment.build(["arith-s"], "arith", SamplingParams(n=16), problems=8)) \
        and not shipped.overlaps(exp)  # another temperature: nothing shipped to take


def test_the_cli_verdict_weighs_every_power_of_two_whatever_k_the_table_shows(tmp_path):
    """arith-m against one arith-xl sample with the step checker: --k 1,4,16,64 said a tie at 16 samples, --k
    1,8,64 "arith-xl wins" at 8, the app (every power of two) arith-m ahead at 32. One question, three answers."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    said = []
    for k in ("1,8,64", "1,4,16,64"):
        r = subprocess.run([sys.executable, "-m", "engine", "report", "--models", "ladder", "--problems", "500",
                            "--n", "64", "--k", k, "--strategy", "oracle,majority,best_of_n:step-checker",
                            "--cache", str(tmp_path / "c.duckdb")], cwd=ROOT, capture_output=True, text=True,
                           timeout=300, env={**os.environ, "TTC_SHIPPED": "1"})
        assert r.returncode == 0, r.stderr
        said.append(r.stdout.split("\nverdict: ")[1])
    assert said[0] == said[1] and "arith-m × 32 samples (68.6%) vs arith-xl × 1 (66.8%)" in said[0]
