"""Models & data: a model on an OpenAI-compatible server, and a GGUF import, added from the app (AppTest)."""
import pytest
from streamlit.testing.v1 import AppTest

from engine import registry
from engine.cache import SampleCache
from engine.experiment import Experiment
from engine.models import SamplingParams
from engine.runner import run
from tests.conftest import ROOT
from tests.test_app import page
from tests.test_http import engine_server, free_port


@pytest.fixture(scope="module")
def server():
    with engine_server() as url:
        yield url


def models_page(root):
    return page(root, "pages/models_data.py")


def submit(at, label):
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, [e.value for e in at.exception]


def errors(at):
    return [e.value for e in at.error]


def test_an_endpoint_is_checked_then_listed_and_offered_on_explore(tmp_path, server):
    at = models_page(tmp_path)
    for url, model, key_env, params, words in [
            ("localhost:8000", "arith-s", "", "", "write the API base"),
            (server, "", "", "", "enter the model id"),
            (server, "arith-s", "sk-123 secret", "", "NAME of an environment variable"),
            (server, "arith-s", "", "lots", "e.g. 135M"),
            (server, "arith-s", "", "-5M", "at least 1"),
            (server, "nope", "", "", "does not serve 'nope'"),
            (f"http://127.0.0.1:{free_port()}/v1", "arith-s", "", "", "connection failed")]:
        at.text_input(key="ep_url").set_value(url)
        at.text_input(key="ep_model").set_value(model)
        at.text_input(key="ep_key_env").set_value(key_env)
        at.text_input(key="ep_params").set_value(params)
        submit(at, "Check and add")
        assert len(errors(at)) == 1 and words in errors(at)[0], (url, errors(at))
        assert registry.added_models(tmp_path) == []
    at.text_input(key="ep_url").set_value(server)
    at.text_input(key="ep_model").set_value("arith-s")
    at.text_input(key="ep_key_env").set_value("")
    at.text_input(key="ep_params").set_value("1.5M")  # as the app's tables write counts
    at.text_input(key="ep_revision").set_value("v1")
    submit(at, "Check and add")
    assert not errors(at) and "arith-s@127.0.0.1" in at.success[0].value and "1,500,000 parameters" in at.success[0].value
    [row] = registry.added_models(tmp_path)
    assert row["source"] == f"{server}#arith-s?params=1500000&revision=v1" and row["params"] == 1_500_000

    at = page(tmp_path)  # Explore is the first page
    assert row["name"] in at.multiselect(key="models").options

    # and it samples through the server like any listed model (the runner gets an http ref from the list)
    exp = Experiment.build([row["name"]], "arith", SamplingParams(n=2, max_new_tokens=8), problems=1,
                           datasets=str(tmp_path))
    cache = SampleCache(tmp_path / "samples.duckdb")
    assert run(exp.models[0], exp.load_task(), exp.selected(), exp.params, cache).generated == 2
    assert exp.models[0].backend == "http" and len(cache.samples(model_fp=exp.models[0].fingerprint)) == 2


def test_a_gguf_import_needs_a_gguf_file(tmp_path):
    at = models_page(tmp_path)
    (tmp_path / "x.gguf").write_bytes(b"not a gguf file")
    for path, words in [("", "enter the path"), (str(tmp_path / "missing.gguf"), "no such file"),
                        (str(tmp_path / "x.gguf"), "not a GGUF file")]:
        at.text_input(key="gguf_path").set_value(path)
        submit(at, "Import and add")
        assert len(errors(at)) == 1 and words in errors(at)[0], (path, errors(at))
    assert registry.added_models(tmp_path) == []


def test_a_gguf_file_is_imported_and_offered_on_explore(tmp_path, monkeypatch):
    from tests.test_gguf import write_gguf
    monkeypatch.setenv("TTC_MODELS_DIR", str(tmp_path / "models"))
    write_gguf(tmp_path / "tiny.gguf")
    at = models_page(tmp_path)
    at.text_input(key="gguf_path").set_value(str(tmp_path / "tiny.gguf"))
    submit(at, "Import and add")
    assert not errors(at) and "tiny-gguf-" in at.success[0].value
    [row] = registry.added_models(tmp_path)
    assert row["source"].startswith(str(tmp_path / "models" / "tiny-gguf-"))
    submit(at, "Import and add")  # the same file again: converted once, listed once
    assert "already in the list" in errors(at)[0]
    at = page(tmp_path)
    assert row["name"] in at.multiselect(key="models").options


def test_hosted_mode_offers_neither_form(tmp_path, monkeypatch):
    monkeypatch.setattr("ui.common.SERVER_MODE", True)
    monkeypatch.setattr("ui.common.DEFAULT_PATH", tmp_path / "hosted.duckdb")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/models_data.py")
    at.run()
    assert not at.exception and not at.get("text_input")  # no GGUF path, no endpoint URL
    assert "nor sends requests to an address a visitor gives" in " ".join(i.value for i in at.info)
