"""The app through Streamlit's AppTest: widgets, URL state, and errors shown as messages."""
from __future__ import annotations

import base64
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import registry
from engine.cache import SampleCache
from engine.models import SamplingParams
from engine.runner import run
from engine.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]


def make_app(root: Path, **params) -> AppTest:
    """The whole app (router + sidebar) on a temporary cache; ``params`` become the URL's query."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["cache"] = str(root / "samples.duckdb")  # the sidebar's input (never taken from the URL)
    for k, v in params.items():
        at.query_params[k] = v
    return at


def page(root: Path, path: str | None = None, **params) -> AppTest:
    at = make_app(root, **params)
    if path:  # a deep link: url paths are the file names, so the page resolves on the first run
        at.switch_page(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


@pytest.fixture
def root(tmp_path, tiny_model) -> Path:
    registry.add_model(tiny_model, tmp_path)
    return tmp_path


# What the three read-only pages see: two tiny models (with training records, so pretraining can be
# amortised) sampled on the first 4 arith problems (one per level, as the pages' default "all levels"
# selection picks them), 4 samples each at the pages' default temperature.
SMALL = dict(models=["tiny-a", "tiny-b"], problems="4", budget="4")


@pytest.fixture(scope="module")
def filled(tmp_path_factory, tiny_model, tiny_model_b) -> Path:
    root = tmp_path_factory.mktemp("filled")
    cache = SampleCache(root / "samples.duckdb")
    task = get_task("arith")
    problems = task.select(4, sorted({p.difficulty for p in task.problems}))
    for src, tokens in ((tiny_model, 1e6), (tiny_model_b, 2e6)):
        m = shutil.copytree(src, root / "models" / Path(src).name)
        (m / "training_record.json").write_text(json.dumps({"training_tokens": tokens,
                                                            "training_flops": 6 * 1e5 * tokens}))
        registry.add_model(str(m), root)
        run(str(m), task, problems, SamplingParams(n=4, temperature=0.8), cache, device="cpu")
    return root


@pytest.fixture
def no_learned_verifiers(monkeypatch):
    """No learned scorer (as before verifiers are trained): strategies that need one offer self-likelihood only."""
    monkeypatch.setattr("engine.scorers.learned._shipped", lambda name: False)


def _decode(v):
    """Plotly sends numeric arrays as {"dtype", "bdata"} (base64); turn those back into lists."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    if isinstance(v, dict):
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def chart(at: AppTest, key: str) -> dict:
    """A plotly chart's figure (data and layout) by its widget key."""
    for c in at.get("plotly_chart"):
        if key in c.proto.id:
            return _decode(json.loads(c.proto.spec))
    raise KeyError(key)


def html_of(at: AppTest) -> str:
    return " ".join(h.proto.body for h in at.get("html"))


def test_deep_link_to_a_page_gets_the_router_and_shared_sidebar(root):
    # A deep link to a fresh server makes Streamlit run pages/<file>.py directly (its legacy pages/
    # mode; AppTest starts every run in it); common.require_router() reruns through app.py instead.
    at = make_app(root, target="40")
    at.switch_page("pages/planner.py")  # before any run: what /planner?... does on a fresh server
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Planner"
    assert at.text_input(key="cache").value == str(root / "samples.duckdb")  # app.py's sidebar ran
    assert at.selectbox(key="device")


def test_explore_widgets_follow_the_url(root):
    at = page(root, models="tiny-a", problems="3", budget="4", strategy="oracle", temp="0.5", top_p="0.95",
              seed="3")
    assert at.multiselect(key="models").value == ["tiny-a"]
    assert at.select_slider(key="budget").value == 4
    assert at.number_input(key="problems").value == 3
    assert at.slider(key="temp").value == 0.5
    assert at.segmented_control(key="strategy").value == "oracle"
    assert at.number_input(key="top_p").value == 0.95 and at.number_input(key="seed").value == 3
    assert at.selectbox(key="task").value == "arith"
    assert at.button(key="run")
    assert "No samples cached for these settings yet" in texts(at.info)
    assert not at.error


def test_chart_cameras_save_sharp_pngs_named_after_the_chart(filled, no_learned_verifiers):
    """Every chart's camera saved a 300-pixel 'plot-image.png'."""
    at = page(filled, **SMALL)
    configs = [json.loads(c.proto.config) for c in at.get("plotly_chart")]
    assert len(configs) == 3
    names = [c["toImageButtonOptions"]["filename"] for c in configs]
    assert names == ["chart_Accuracy_vs_samples_per_problem", "chart_Accuracy_vs_inference_FLOPs",
                     "chart_Accuracy_vs_latency"]
    assert all(c["toImageButtonOptions"]["scale"] == 3 and not c["displaylogo"] for c in configs)


def test_explore_run_fills_cache_and_draws_three_charts(root):
    at = page(root, models="tiny-a", problems="2", budget="2")
    at.button(key="run").click().run()
    assert not at.exception and not at.error, texts(at.error)
    job = at.session_state["sweep_job"]
    job.thread.join(timeout=120)
    assert job.done and job.error is None
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert len(at.get("plotly_chart")) == 3
    assert SampleCache(root / "samples.duckdb").stats()["samples"].sum() == 4


def test_bad_cache_path_is_a_message_not_a_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    at = make_app(tmp_path)
    at.session_state["cache"] = str(blocker / "sub" / "samples.duckdb")
    at.run()
    assert not at.exception
    assert "cannot create" in texts(at.error)


def test_models_page_lists_models_and_rejects_a_bad_dir(root, tmp_path, tiny_model_b):
    at = page(root, "pages/models_data.py")
    table = at.dataframe[0].value
    assert "tiny-a" in set(table["name"]) and {"params", "training_flops", "size"} <= set(table.columns)
    at.text_input(key="add_model_path").set_value(str(tmp_path / "nope"))
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    assert "does not exist" in texts(at.error)
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    at.text_input(key="add_model_path").set_value(str(not_a_model))
    at.button[0].click().run()
    assert "no config.json" in texts(at.error)
    at.text_input(key="add_model_path").set_value(tiny_model_b)
    at.button[0].click().run()
    assert not at.error and "tiny-b" in texts(at.success)
    assert [m["name"] for m in registry.added_models(root)] == ["tiny-a", "tiny-b"]


def test_models_page_shows_measured_quality_of_what_ships(root):
    at = page(root, "pages/models_data.py")
    heads = texts(at.subheader)
    assert "How good the shipped ladder is" in heads and "How good the verifiers are" in heads
    tables = [e.value for e in at.dataframe]
    ladder = next(t for t in tables if "pass@64" in t.columns)
    assert list(ladder["model"]) == ["arith-s", "arith-m", "arith-l", "arith-xl"]
    assert (ladder["pass@64"] > ladder["pass@1"]).all() and "L5 pass@1" in ladder.columns
    verifiers = next(t for t in tables if "auroc" in t.columns)
    assert {"orm", "prm"} <= set(verifiers["verifier"])
    assert list(verifiers.loc[verifiers["verifier"] == "orm", "source"]) == [
        "all held-out", "arith-s", "arith-m", "arith-l", "arith-xl"]  # the ladder's order, not the alphabet's
    gold = [v for v in verifiers["gold_beats_nudged"] if v != "—"]  # measured on all held-out problems only
    assert gold and all(v.endswith("%") and 0 <= float(v[:-1]) <= 100 for v in gold)
    assert verifiers.loc[verifiers["source"] == "arith-s", "auroc"].between(0.5, 1).all()
    assert verifiers["within_problem_auroc"].between(0.5, 1).all()  # one-class sources (gold, corrupted) left out
    assert not at.warning  # the measurement is of the shipped files


def test_malformed_dataset_shows_the_line(root):
    registry.datasets_dir(root).mkdir()
    (registry.datasets_dir(root) / "bad.csv").write_text("question,answer\nWhat is 1+1?,2\nbroken,row,extra\n")
    at = page(root, "pages/models_data.py", section="Datasets", dataset="bad.csv")
    err = texts(at.error)
    assert "bad.csv" in err and "line 3" in err


def test_dataset_mapping_is_saved_and_becomes_a_task(root):
    registry.datasets_dir(root).mkdir()
    (registry.datasets_dir(root) / "mine.csv").write_text("q,a,level\nWhat is 1+1?,2,1\nWhat is 2+3?,5,2\n")
    at = page(root, "pages/models_data.py", section="Datasets", dataset="mine.csv")
    assert not at.error
    # no column named like a question or an answer: none preselected (the first column read as the answer),
    # and saving waits until both are picked
    assert at.selectbox(key="map_mine.csv_answer_col").value is None and at.button(key="save_mapping").disabled
    assert "No column is named like the question or the answer" in texts(at.caption)
    at.selectbox(key="map_mine.csv_question_col").set_value("q")
    at.selectbox(key="map_mine.csv_answer_col").set_value("a")
    at.selectbox(key="map_mine.csv_difficulty_col").set_value("level").run()
    at.button(key="save_mapping").click().run()
    assert not at.error and "2 problems" in texts(at.success)
    assert "mine.csv" in registry.task_names(root)
    at = page(root, task="mine.csv", models="tiny-a")
    assert at.selectbox(key="task").value == "mine.csv"
    assert at.number_input(key="problems").value == 2


def test_bad_mapping_is_an_error(root):
    registry.datasets_dir(root).mkdir()
    (registry.datasets_dir(root) / "words.csv").write_text("q,a\nWhat is it?,many\n")
    at = page(root, "pages/models_data.py", section="Datasets", dataset="words.csv")
    at.selectbox(key="map_words.csv_question_col").set_value("q")
    at.selectbox(key="map_words.csv_answer_col").set_value("a").run()
    at.button(key="save_mapping").click().run()
    assert not at.exception and "no number found" in texts(at.error)


def test_cache_stats_export_and_confirmed_clear(root, tiny_model):
    cache = SampleCache(root / "samples.duckdb")
    task = get_task("arith")
    run(tiny_model, task, task.problems[:2], SamplingParams(n=2, max_new_tokens=8), cache)
    at = page(root, "pages/models_data.py", section="Cache")
    assert at.metric[0].value == "4"
    assert at.selectbox(key="cache_pick").value == "tiny-a · arith"
    at.button(key="clear").click().run()
    assert "Delete 4 cached samples" in texts(at.warning)
    assert cache.stats()["samples"].sum() == 4  # nothing deleted before confirming
    at.button(key="clear_yes").click().run()
    assert not at.exception
    assert cache.stats().empty
    assert "cache is empty" in texts(at.info)


def test_every_page_renders(root):
    for path in ("pages/size_vs_compute.py", "pages/inspector.py", "pages/planner.py",
                 "pages/models_data.py"):
        page(root, path)


def test_stop_ends_the_sweep_after_the_current_batch(tmp_path, tiny_model, monkeypatch):
    import engine.runner
    from engine.experiment import Experiment
    from engine.models.ref import ModelRef, resolve_model
    from ui.sweep import SweepJob
    cache = SampleCache(tmp_path / "samples.duckdb")
    ref = resolve_model(tiny_model)
    exp = Experiment.build([ref, ModelRef("again", ref.source, ref.fingerprint)], "arith",
                           SamplingParams(n=2, max_new_tokens=8), problems=6)
    monkeypatch.setattr(engine.runner, "TOKENS_PER_BATCH", 16)  # batches of 2 rows (max_new_tokens 8)
    job = SweepJob(exp, cache, "cpu")
    seen = []

    def stop_after_first(p):
        seen.append(p)
        job.stop()
    job._on_progress = stop_after_first
    job.start().thread.join(timeout=120)
    assert job.done and job.stopped and job.error is None
    assert len(job.results) == 1 and job.results[0].stopped  # the second model never started
    assert job.results[0].generated == 2 == cache.stats()["samples"].sum()  # one batch, kept
    assert "Stopped" in job.summary()


def test_one_model_failing_does_not_keep_the_others_from_being_sampled(tmp_path, tiny_model):
    """A server that was down stopped the whole run: the healthy local model beside it was not sampled, and the
    status said "Done: generated 0 samples" above the error."""
    from engine.experiment import Experiment
    from engine.models.ref import ModelRef, resolve_model
    from ui.sweep import SweepJob
    cache = SampleCache(tmp_path / "samples.duckdb")
    exp = Experiment.build([ModelRef("gone", str(tmp_path / "no-such-model"), "0" * 16), resolve_model(tiny_model)],
                           "arith", SamplingParams(n=2, max_new_tokens=8), problems=2)
    job = SweepJob(exp, cache, "cpu")
    job.start().thread.join(timeout=120)
    assert job.done and job.failed == ["gone"] and "no-such-model" in job.error
    assert len(job.results) == 1 and job.results[0].generated == 4 == cache.stats()["samples"].sum()
    assert job.summary().startswith("Done, with errors: generated 4 samples") and "gone failed" in job.summary()


# ---- Size vs compute ---------------------------------------------------------------------
def test_size_vs_compute_frontier_and_flops_matched(filled, no_learned_verifiers):
    at = page(filled, "pages/size_vs_compute.py", **SMALL)
    assert not at.error, texts(at.error)
    assert at.multiselect(key="models").value == ["tiny-a", "tiny-b"]
    assert at.pills(key="verifiers").value == ["oracle", "majority", "best_of_n:self-likelihood"]
    assert at.select_slider(key="ratio").value == "inference only"
    assert "orm, prm-min" in texts(at.caption) and "not trained yet" in texts(at.caption)
    # frontier on FLOPs, dollars, latency + FLOPs-matched bars + the equal-compute heatmap
    assert len(at.get("plotly_chart")) == 5
    fig = chart(at, "frontier_flops")
    points = [t for t in fig["data"] if t["mode"] == "markers"]
    assert [t["name"] for t in points] == ["tiny-a", "tiny-b"]
    assert sum(len(t["x"]) for t in points) == 2 * 3 * 3  # 2 models x 3 strategies x k in 1, 2, 4
    assert fig["data"][-1]["name"] == "frontier" and fig["data"][-1]["line"]["shape"] == "hv"
    assert fig["layout"]["xaxis"]["type"] == "log"
    front = at.dataframe[0].value
    assert list(front.columns[:4]) == ["flops", "model", "strategy", "k"] and len(front) >= 1
    assert "oracle" not in set(front["strategy"])  # the frontier is what you could deploy
    fm = at.dataframe[1].value
    assert list(fm["difficulty"]) == [1, 2, 3, 4] and (fm["small_k"] >= 1).all()
    bars = chart(at, "flops_matched")["data"]
    assert [b["name"] for b in bars] == ["tiny-a × N samples", "tiny-b × 1 sample"]
    assert list(bars[0]["x"]) == [f"L{d}<br>{k} vs 1" for d, k in zip(fm["difficulty"], fm["small_k"])]
    assert "error_y" in bars[0]
    heat = chart(at, "equal_compute")["data"][0]
    assert heat["y"] == ["L1", "L2", "L3", "L4"] and heat["x"][0] == "tiny-b ×1"
    # differences of two accuracies, in points ("-9%" read as a relative change): cells, colour bar and hover
    cells = [t for row in heat["text"] for t in row if t]
    assert cells and all(t.endswith(" pts") and "%" not in t for t in cells)
    z = [v for row in heat["z"] for v in row if v is not None]
    assert all(f"{v:+.0f} pts" in t for v, t in zip(z, cells)) and heat["zmax"] >= 5  # points, not fractions
    assert "(points)" in heat["colorbar"]["title"]["text"] and "points" in heat["hovertemplate"]
    assert at.selectbox(key="small").value == "tiny-a" and at.selectbox(key="large").value == "tiny-b"
    assert at.selectbox(key="fm_verifier").value == "majority"  # the oracle is no deployable strategy
    assert "Verdict." in texts(at.markdown)


def test_pretraining_ratio_moves_the_flops_axis(filled, no_learned_verifiers):
    base = page(filled, "pages/size_vs_compute.py", **SMALL).dataframe[1].value
    at = page(filled, "pages/size_vs_compute.py", ratio="0.01", **SMALL)
    assert not at.error, texts(at.error)
    assert "FLOPs per problem (inference + pretraining)" in texts(at.markdown)
    assert at.dataframe[0].value.columns[0] == "total_flops"
    fm = at.dataframe[1].value
    # 6 N T / R more FLOPs per problem: with R = 0.01 pretraining dwarfs inference
    assert (fm["large_flops"] > 10 * base["large_flops"]).all()


def test_size_vs_compute_empty_cache_points_to_explore(root, no_learned_verifiers):
    at = page(root, "pages/size_vs_compute.py", models="tiny-a")
    assert not at.error and not at.get("plotly_chart")
    assert "run sweeps on **Explore** first" in texts(at.info)
    assert at.get("page_link")


def test_pages_show_engine_errors_as_messages(root):
    (root / registry.ADDED_FILE).write_text("{not json")
    for path in ("pages/size_vs_compute.py", "pages/inspector.py", "pages/planner.py"):
        at = page(root, path)
        assert "is not valid JSON" in texts(at.error), path


# ---- Problem inspector ---------------------------------------------------------------------
def test_inspector_shows_every_sample_the_vote_and_the_pick(filled, no_learned_verifiers):
    at = page(filled, "pages/inspector.py", model="tiny-b", problem="arith-L2-000", budget="4")
    assert not at.error, texts(at.error)
    assert at.selectbox(key="model").value == "tiny-b"
    assert at.selectbox(key="problem").value == "arith-L2-000"
    assert at.segmented_control(key="strategy").value == "majority"
    gold = get_task("arith").by_id()["arith-L2-000"].answer
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Gold answer"] == gold and metrics["Samples"] == "4"
    samples = at.dataframe[0].value
    assert list(samples["idx"]) == [0, 1, 2, 3] and {"answer", "correct"} <= set(samples.columns)
    hist = chart(at, "answer_histogram")["data"][0]
    assert sum(hist["y"]) == 4 and at.get("plotly_chart")[0].proto.spec
    assert set(hist["x"]) == {str(a) if pd.notna(a) else "(none)" for a in samples["answer"]}
    cards = html_of(at)
    assert cards.count('class="ttc-sample"') == 4
    voted = [str(a) for a in samples["answer"] if pd.notna(a)]
    if voted:  # majority vote picks a most common answer: outlined in the histogram, shown first
        top = max(voted.count(a) for a in voted)
        picked = metrics["Pick (majority)"].split(": ")[1]
        assert voted.count(picked) == top
        tied = [a for a in hist["x"] if voted.count(a) == top]
        assert metrics["Most common answer"] == " or ".join(tied) + (" (tie)" if len(tied) > 1 else "")
        first_card = cards.split('class="ttc-sample"')[1]
        assert cards.count("the pick") == 1 and "the pick" in first_card
        assert f"<b>#{samples['idx'][samples['answer'].astype(str) == picked].iloc[0]}</b>" in first_card


def test_inspector_oracle_without_a_correct_sample_picks_nothing(filled, no_learned_verifiers):
    at = page(filled, "pages/inspector.py", model="tiny-a", problem="arith-L1-000", budget="4", strategy="oracle")
    samples = at.dataframe[0].value
    metric = next(m for m in at.metric if m.label == "Pick (oracle)")
    assert (metric.value == "none") == (not samples["correct"].any())


def test_inspector_empty_state(filled, no_learned_verifiers):
    at = page(filled, "pages/inspector.py", model="tiny-a", problem="arith-L5-000")  # never sampled
    assert "Nothing is cached for tiny-a on arith-L5-000" in texts(at.info)
    assert not at.get("plotly_chart") and not at.dataframe


# ---- Planner ---------------------------------------------------------------------------------
def plan_table(at: AppTest):
    return next(d for d in at.dataframe if "meets" in d.value.columns).value


def test_planner_recommends_the_cheapest_and_a_runner_up(filled, no_learned_verifiers):
    at = page(filled, "pages/planner.py", target="0", latency="1000", qpd="1000", **SMALL)
    assert not at.error, texts(at.error)
    assert at.slider(key="target").value == 0 and at.number_input(key="qpd").value == 1000
    assert at.radio(key="pricing").value == "GPU-hour"
    table = plan_table(at)
    # no oracle (it needs the answers), and one sample is one option per model, whatever the strategy
    assert table["meets"].all() and set(table["strategy"]) == {"majority", "best-of-N · self-likelihood",
                                                               "single sample"}
    assert (table[table["k"] == 1]["strategy"] == "single sample").all() and (table["k"] == 1).sum() == 2
    cheapest = table.sort_values("cost_per_1000").iloc[0]
    from engine.analysis.planner import money
    assert f"{money(cheapest.cost_per_1000)} per 1,000 queries" in texts(at.success)
    best = {}
    for m in at.metric:  # the recommended card's metrics come first
        best.setdefault(m.label, m.value)
    assert best["Cost per 1,000 queries"] == money(cheapest.cost_per_1000)
    assert best["Cost per month"] == money(cheapest.cost_per_1000 * 30)  # 1000 a day x 30 days
    assert "Runner-up from another model size" in texts(at.markdown)
    other = table[table.model != cheapest.model].sort_values("cost_per_1000").iloc[0]
    how = "one sample per query" if other.k == 1 else f"over {other.k} samples per query"
    assert f"{other.model} · " in texts(at.markdown) and how in texts(at.markdown)
    # the choice among its alternatives: every candidate plotted, the target line, the two picks ringed
    fig = chart(at, "plan_fig")
    points = [t for t in fig["data"] if t["name"] in set(table["model"])]
    assert sum(len(t["x"]) for t in points) == len(table)
    picks = {t["name"]: (t["x"][0], t["y"][0]) for t in fig["data"] if t["name"] in ("recommended", "runner-up")}
    assert picks["recommended"] == pytest.approx((cheapest.cost_per_1000, cheapest.accuracy))
    assert set(picks) == {"recommended", "runner-up"} and fig["layout"]["xaxis"]["type"] == "log"
    # named on boxes at the picks (a log axis places annotations in log10 units), one above and one below
    notes = {a["text"]: a for a in fig["layout"]["annotations"]}
    for name, (x, y) in picks.items():
        assert notes[name]["x"] == pytest.approx(math.log10(x)) and notes[name]["y"] == pytest.approx(y)
    assert notes["recommended"]["ay"] < 0 < notes["runner-up"]["ay"] and notes["recommended"]["bgcolor"]


def test_planner_per_token_pricing(filled, no_learned_verifiers):
    at = page(filled, "pages/planner.py", target="0", latency="1000", pricing="million tokens", price="1",
              **SMALL)
    assert at.radio(key="pricing").value == "million tokens"
    assert at.number_input(key="price").label == "Price ($ per million tokens)"
    table = plan_table(at)
    # $1 per million tokens: cost per 1,000 queries = tokens per query / 1000; the prompt counts once
    # (prefix caching), each sample adds its completion: cost = a + b k
    for _, t in table.drop_duplicates(["model", "k"]).groupby("model"):
        c = t.set_index("k")["cost_per_1000"].sort_index()
        assert c[4] - c[2] == pytest.approx(2 * (c[2] - c[1]), rel=1e-6) and c[1] > c[2] - c[1]
        assert 0.02 <= c[1] <= 0.2  # 20..200 tokens (prompt + up to 128 new) for one sample
    at = page(filled, "pages/planner.py", target="0", latency="1000", pricing="million tokens", price="1",
              prefix="false", **SMALL)
    table = plan_table(at)
    per_sample = table["cost_per_1000"] / table["k"]
    assert per_sample.groupby(table["model"]).nunique().eq(1).all()  # once per sample: linear in k


def test_planner_says_when_nothing_qualifies(filled, no_learned_verifiers):
    at = page(filled, "pages/planner.py", target="100", **SMALL)
    assert "No cached configuration meets both" in texts(at.warning)
    assert not at.success and not at.metric


def test_planner_empty_cache_points_to_explore(root, no_learned_verifiers):
    at = page(root, "pages/planner.py", models="tiny-a")
    assert "run sweeps on **Explore** first" in texts(at.info)


def test_a_sweep_at_non_default_sampling_settings_can_be_plotted(root, tiny_model, no_learned_verifiers):
    # what `python -m engine sweep --top-p 0.95 --max-new-tokens 24 --seed 7` caches, the pages can read back
    cache = SampleCache(root / "samples.duckdb")
    task = get_task("arith")
    run(tiny_model, task, task.select(2), SamplingParams(n=2, temperature=0.8, top_p=0.95, max_new_tokens=24,
                                                          seed=7), cache)
    at = page(root, "pages/size_vs_compute.py", models="tiny-a", problems="2", budget="2")
    assert not at.get("plotly_chart") and "Nothing is cached" in texts(at.info)  # default settings: not these
    at = page(root, "pages/size_vs_compute.py", models="tiny-a", problems="2", budget="2", top_p="0.95",
              max_tokens="24", seed="7")
    assert not at.error, texts(at.error)
    assert len(at.get("plotly_chart")) >= 3
    at = page(root, "pages/inspector.py", model="tiny-a", problem=task.select(1)[0].id, budget="2", top_p="0.95",
              max_tokens="24", seed="7", strategy="best-of-N", strategy_scorer="self-likelihood")
    assert not at.error, texts(at.error)
    assert "score" in at.dataframe[0].value.columns and "Pick (best-of-N · self-likelihood)" in {
        m.label for m in at.metric}


def test_an_added_verifier_becomes_a_scorer_on_every_page(root, tiny_classifier, no_learned_verifiers):
    at = page(root, "pages/models_data.py")
    at.text_input(key="add_model_path").set_value(tiny_classifier)
    at.radio(key="add_kind").set_value("verifier")
    at.button[0].click().run()
    assert not at.error, texts(at.error)
    assert "a scorer for best-of-N" in texts(at.success)
    assert registry.added_verifiers(root) == [tiny_classifier]
    at = page(root, models="tiny-a", strategy="best-of-N")
    assert tiny_classifier in at.selectbox(key="strategy_scorer").options or \
        "my-rm" in at.selectbox(key="strategy_scorer").options
    at = page(root, "pages/size_vs_compute.py", models="tiny-a")
    assert "best-of-N · my-rm" in at.pills(key="verifiers").options


def test_inspector_lists_only_problems_with_samples_by_default(filled, no_learned_verifiers):
    at = page(filled, "pages/inspector.py", model="tiny-a", budget="4")
    options = at.selectbox(key="problem").options
    assert len(options) == 4 and at.toggle(key="only_sampled").value  # the 4 problems the fixture sampled
    at.toggle(key="only_sampled").set_value(False).run()
    assert len(at.selectbox(key="problem").options) == 500


def test_partial_data_is_named_and_left_out_unless_asked(filled, no_learned_verifiers):
    # 6 problems selected, 4 sampled (one per level); a budget of 8 where 4 are cached
    at = page(filled, "pages/size_vs_compute.py", models=["tiny-a", "tiny-b"], problems="6", budget="4")
    warn = texts(at.warning)
    assert "**tiny-a**: 4 of 6 selected problems" in warn and "**tiny-b**: 4 of 6" in warn
    assert (at.dataframe[0].value["k"] <= 4).all()
    at = page(filled, "pages/size_vs_compute.py", models=["tiny-a", "tiny-b"], problems="4", budget="8")
    assert "0 of 4 selected problems have all 8 samples cached, 4 only some (left out)" in texts(at.warning)
    assert "Nothing is cached" in texts(at.info)
    at = page(filled, "pages/size_vs_compute.py", models=["tiny-a", "tiny-b"], problems="4", budget="8",
              partial="true")
    assert "counted at the k they have" in texts(at.warning) and len(at.get("plotly_chart")) >= 3


def test_a_hardware_profile_replaces_measured_time_on_every_cost_axis(filled, no_learned_verifiers):
    measured = page(filled, "pages/size_vs_compute.py", **SMALL)
    at = page(filled, "pages/size_vs_compute.py", hw="NVIDIA H100 SXM", **SMALL)
    assert not at.error, texts(at.error)
    assert "Projected onto NVIDIA H100 SXM" in texts(at.caption)
    assert "Accuracy vs dollars per 1,000 problems, $3/device-hour, H100 projection" in texts(at.markdown)
    projected = chart(at, "frontier_dollars")["data"][0]["x"]
    assert projected != chart(measured, "frontier_dollars")["data"][0]["x"]
    # the roofline, not this machine's clock: the same numbers as the engine's projection
    from engine import analysis, hardware
    from engine.compute import CostModel
    from engine.experiment import Experiment
    exp = Experiment.build(["tiny-a", "tiny-b"], "arith", SamplingParams(n=4, temperature=0.8), 4, (1, 2, 3, 4),
                           strategies=["oracle", "majority", "best_of_n:self-likelihood"], datasets=str(filled),
                           cost=CostModel(hardware="NVIDIA H100 SXM",
                                          price_per_gpu_hour=hardware.PROFILES["NVIDIA H100 SXM"].price_per_hour,
                                          power_watts=hardware.PROFILES["NVIDIA H100 SXM"].watts))
    df = analysis.curves(SampleCache(filled / "samples.duckdb"), exp)
    tiny_a = df[df.model == "tiny-a"].sort_values(["dollars", "k"])
    assert sorted(projected) == pytest.approx(sorted(tiny_a.dollars * 1000))  # plotted per 1,000 problems
    assert chart(at, "frontier_dollars")["layout"]["xaxis"]["tickformat"] == "$~g"


def test_the_verdict_names_the_winner_with_the_numbers_of_the_curves(filled, no_learned_verifiers):
    from engine import analysis
    from engine.experiment import Experiment
    at = page(filled, "pages/size_vs_compute.py", **SMALL)
    exp = Experiment.build(["tiny-a", "tiny-b"], "arith", SamplingParams(n=4, temperature=0.8), 4, (1, 2, 3, 4),
                           strategies=["oracle", "majority", "best_of_n:self-likelihood"], datasets=str(filled))
    v = analysis.verdict(analysis.curves(SampleCache(filled / "samples.duckdb"), exp),
                         x_label="FLOPs per problem (prompt once)")
    md = texts(at.markdown)
    assert f"**Verdict.** {v['headline']}" in md and v["lines"][0] in md
    assert "tiny-b" in v["headline"]


def test_a_damaged_cache_offers_to_move_it_aside(tmp_path, monkeypatch):
    import os
    monkeypatch.setenv("TTC_SHIPPED", "1")  # as a user runs it: the start-up import meets the damage first
    bad = tmp_path / "samples.duckdb"
    bad.write_bytes(os.urandom(1 << 14))
    at = make_app(tmp_path)
    at.run()
    assert not at.exception and "cannot be used" in texts(at.error) and "Nothing was deleted" in texts(at.error)
    at.button(key="move_aside").click().run()
    assert not at.exception and "Moved to" in texts(at.success)
    assert not bad.exists() and list(tmp_path.glob("samples.duckdb.broken-*"))


def test_a_link_cannot_point_the_server_at_a_path(tmp_path):
    target = tmp_path / "elsewhere" / "x.duckdb"
    at = make_app(tmp_path)
    at.query_params["cache"] = str(target)
    at.run()
    assert not at.exception and not target.exists() and not target.parent.exists()
    assert at.text_input(key="cache").value == str(tmp_path / "samples.duckdb")


def test_server_mode_fixes_the_cache_and_hides_local_paths(tmp_path, monkeypatch):
    monkeypatch.setattr("ui.common.SERVER_MODE", True)
    monkeypatch.setattr("ui.common.DEFAULT_PATH", tmp_path / "hosted.duckdb")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["cache"] = str(tmp_path / "other.duckdb")
    at.run()
    assert not at.exception and not at.text_input  # no path input anywhere
    assert "Hosted mode" in texts(at.caption) and (tmp_path / "hosted.duckdb").exists()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/models_data.py")
    at.run()
    assert not at.exception and not at.get("text_input") and "hosted" in texts(at.info).lower()
