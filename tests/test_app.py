"""The app through Streamlit's AppTest: widgets, URL state, and errors shown as messages."""
from __future__ import annotations

from pathlib import Path

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
    at.query_params["cache"] = str(root / "samples.duckdb")
    for k, v in params.items():
        at.query_params[k] = v
    return at


def page(root: Path, path: str | None = None, **params) -> AppTest:
    at = make_app(root, **params)
    if path:  # pages have custom url paths: AppTest resolves them only after a first run
        at.run()
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
    at = page(root, models="tiny-a", problems="3", budget="4", verifier="oracle", temp="0.5")
    assert at.multiselect(key="models").value == ["tiny-a"]
    assert at.select_slider(key="budget").value == 4
    assert at.number_input(key="problems").value == 3
    assert at.slider(key="temp").value == 0.5
    assert at.selectbox(key="task").value == "arith"
    assert at.button(key="run")
    assert "No samples cached for these settings yet" in texts(at.info)
    assert not at.error


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
    at.query_params["cache"] = str(blocker / "sub" / "samples.duckdb")
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
    at.selectbox(key="map_mine.csv_question_col").set_value("q")
    at.selectbox(key="map_mine.csv_answer_col").set_value("a")
    at.selectbox(key="map_mine.csv_difficulty_col").set_value("level")
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
    at.selectbox(key="map_words.csv_answer_col").set_value("a")
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


def test_stop_ends_the_sweep_after_the_current_batch(tmp_path, tiny_model):
    from ui.sweep import SweepJob
    cache = SampleCache(tmp_path / "samples.duckdb")
    task = get_task("arith")
    job = SweepJob([("tiny-a", tiny_model), ("again", tiny_model)], task, task.problems[:6],
                   SamplingParams(n=2, max_new_tokens=8), cache, "cpu")
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
