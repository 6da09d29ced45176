"""Hostile input: a corpus of broken, odd and malicious dataset files, through the CLI and the app's upload.

Every file either loads (the expected number of problems) or gets exactly one clear message, never a traceback;
nothing is written outside the data folder, nothing hangs (every run has a timeout), and nothing in a file is
ever executed or rendered as markdown or HTML. The small text files live in tests/hostile/; the big, binary and
generated ones are made here at test time.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import registry
from engine.cache import SampleCache
from engine.errors import EngineError

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).parent / "hostile"
Q = b'{"question": "Q?", "answer": "1"}\n'


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data.csv", b"0" * 20_000_000)
    return buf.getvalue()


def _generated() -> dict[str, bytes]:
    many = "".join(json.dumps({"question": f"What is {i}+1?", "answer": str(i + 1)}) + "\n" for i in range(20_000))
    wide = ["question", "answer"] + [f"c{i}" for i in range(20_000)]
    return {
        "empty.jsonl": b"",
        "blank_lines.jsonl": b"\n  \n\n",
        "empty.csv": b"",
        "header_only.csv": b"question,answer\n",
        "binary.jsonl": bytes(range(256)) * 4,
        "binary_high.csv": bytes(range(128, 256)) * 4,
        "utf16_bom.jsonl": Q.decode().encode("utf-16"),
        "utf16_no_bom.csv": "question,answer\nQ?,1\n".encode("utf-16-le"),
        "utf32.jsonl": Q.decode().encode("utf-32"),
        "utf8_bom.csv": "\ufeffquestion,answer\nQ?,1\n".encode(),
        "utf8_bom.jsonl": b"\xef\xbb\xbf" + Q,
        "nul_byte.jsonl": b'{"question": "Q\x00?", "answer": "1"}\n',
        "nul_escaped.jsonl": b'{"question": "Q\\u0000?", "answer": "1"}\n',
        "gzip_bomb.jsonl": gzip.compress(b"0" * 20_000_000),
        "zip_bomb.csv": _zip_bomb(),
        "huge_int.jsonl": b'{"question": 123456789012345678901234567890, "answer": ' + b"7" * 5000 + b"}\n",
        "deep_array.jsonl": b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "deep_object.json": b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
        "million_chars.jsonl": json.dumps({"question": "x" * 1_000_000, "answer": "1"}).encode() + b"\n",
        "huge_file.jsonl": json.dumps({"question": "y" * 21_000_000, "answer": "1"}).encode() + b"\n",
        "many_rows.jsonl": many.encode(),
        "wide.csv": (",".join(wide) + "\n" + ",".join(["Q?", "1"] + ["v"] * 20_000) + "\n").encode(),
        "crlf.csv": b"question,answer\r\nQ?,1\r\nR?,2\r\n",
        "control_chars.csv": b"question,answer\n\x1b[31mred\x1b[0m? \x07,1\n",
        "long_question.jsonl": json.dumps({"question": "z " * 1000, "answer": "1"}).encode() + b"\n",
        "bad_suffix.txt": b"question,answer\nQ?,1\n",
    }


def corpus() -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted(HOSTILE.iterdir()) if p.is_file()}
    files.update(_generated())
    return files


# what each file gives: ("ok", problems) or ("error", words the one message contains); APP where the app's
# column guesses (an "id" or "difficulty" column is mapped) or its upload limit make the outcome differ
EXPECT = {
    "formula_injection.csv": ("ok", 3), "html_script.jsonl": ("ok", 2), "markdown_id.jsonl": ("ok", 1),
    "markdown_answer.jsonl": ("error", "no number found"), "prompt_injection.jsonl": ("ok", 2),
    "dup_keys.jsonl": ("error", "duplicate key 'answer'"), "dup_keys_array.json": ("error", "duplicate key 'question'"),
    "lone_surrogate.jsonl": ("error", "surrogate"), "surrogate_pair.jsonl": ("ok", 1),
    "tab_separated.csv": ("ok", 2), "one_column.csv": ("error", "missing column 'question'"),
    "nan_inf.jsonl": ("error", "no number found"), "duplicate_columns.csv": ("error", "duplicate column"),
    "duplicate_ids.csv": ("ok", 2), "missing_columns.csv": ("error", "missing column 'question'"),
    "unclosed_quote.csv": ("error", "quot"), "json_scalar.json": ("error", "expected a JSON object"),
    "trailing_garbage.json": ("error", "invalid JSON"), "huge_difficulty.csv": ("ok", 1),
    "zero_width_gold.jsonl": ("ok", 1), "gsm8k_formats.jsonl": ("ok", 3),
    "empty.jsonl": ("error", "empty"), "blank_lines.jsonl": ("error", "empty"), "empty.csv": ("error", "empty"),
    "header_only.csv": ("error", "no data rows"), "binary.jsonl": ("error", "NUL bytes"),
    "binary_high.csv": ("error", "not UTF-8"), "utf16_bom.jsonl": ("error", "UTF-16"),
    "utf16_no_bom.csv": ("error", "UTF-16"), "utf32.jsonl": ("error", "UTF-32"), "utf8_bom.csv": ("ok", 1),
    "utf8_bom.jsonl": ("ok", 1), "nul_byte.jsonl": ("error", "NUL bytes"), "nul_escaped.jsonl": ("ok", 1),
    "gzip_bomb.jsonl": ("error", "gzip archive"), "zip_bomb.csv": ("error", "zip archive"),
    "huge_int.jsonl": ("ok", 1), "deep_array.jsonl": ("error", "nested too deeply"),
    "deep_object.json": ("error", "nested too deeply"), "million_chars.jsonl": ("error", "1,000,000 characters"),
    "huge_file.jsonl": ("error", "21,000,000 characters"), "many_rows.jsonl": ("ok", 20_000),
    "wide.csv": ("ok", 1), "crlf.csv": ("ok", 2), "control_chars.csv": ("ok", 1), "long_question.jsonl": ("ok", 1),
    "bad_suffix.txt": ("error", "unknown task"),
}
APP = {"duplicate_ids.csv": ("error", "duplicate id 'a'"), "huge_difficulty.csv": ("error", "not an integer"),
       "one_column.csv": ("error", "has only one column"), "missing_columns.csv": ("ok", 1),
       "huge_file.jsonl": ("error", "upload limit"),
       "bad_suffix.txt": ("error", "unsupported file type")}


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    for name, data in corpus().items():
        (d / name).write_bytes(data)
    return d


def test_the_corpus_is_complete():
    files = corpus()
    assert len(files) >= 40 and set(files) == set(EXPECT)
    assert sum(p.stat().st_size for p in HOSTILE.iterdir()) < 10_000  # what is committed stays tiny


def _cli(*args, timeout=120, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env={**os.environ, **(env or {})})


def test_cli_gives_each_file_one_line(hostile_dir):
    paths = sorted(hostile_dir.iterdir())
    t0 = time.perf_counter()
    r = _cli("tasks", *paths)
    secs = time.perf_counter() - t0
    assert "Traceback" not in r.stderr and r.returncode == 2, r.stderr[-2000:]
    lines = r.stdout.splitlines() + r.stderr.splitlines()
    assert len(lines) == len(paths), lines
    for p in paths:
        (mine,) = [ln for ln in lines if ln.startswith((f"{p}: ", f"error: {p}: ", f"error: {p}, "))
                   or f"{str(p)!r}" in ln]
        kind, what = EXPECT[p.name]
        if kind == "ok":
            assert mine.startswith(f"{p}: {what} problems, task "), mine
        else:
            assert mine.startswith("error: ") and what.lower() in mine.lower(), mine
            assert len(mine) < 600, mine  # one readable line, not a dump of the file
    assert secs < 60, secs


def test_wide_csv_parses_quickly(hostile_dir):
    from engine.tasks.files import load_task_file
    t0 = time.perf_counter()
    load_task_file(hostile_dir / "wide.csv")  # 20,000 columns: 6 s when the duplicate check was quadratic
    assert time.perf_counter() - t0 < 1


def test_app_upload_gives_each_file_one_message_or_a_task(hostile_dir, tmp_path):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["cache"] = str(tmp_path / "samples.duckdb")
    at.query_params["section"] = "Datasets"
    at.switch_page("pages/models_data.py")
    at.run()
    wrong = []
    for p in sorted(hostile_dir.iterdir()):
        kind, what = APP.get(p.name, EXPECT[p.name])
        if p.suffix not in (".jsonl", ".json", ".csv"):  # the uploader itself refuses it; so would the engine
            with pytest.raises(EngineError, match=what):
                registry.save_dataset(p.name, p.read_bytes(), tmp_path)
            continue
        at.file_uploader(key="upload").set_value((p.name, p.read_bytes(), "application/octet-stream")).run()
        assert not at.exception, (p.name, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        if not errors and at.get("button") and any(b.proto.id.endswith("save_mapping") for b in at.button):
            at.button(key="save_mapping").click().run()
            assert not at.exception, (p.name, [e.value for e in at.exception])
            errors = [e.value for e in at.error]
        if kind == "ok":
            good = not errors and f"{what} problems read" in " ".join(s.value for s in at.success)
        else:
            good = len(errors) == 1 and what.lower() in errors[0].replace("\\", "").lower()
        if not good:
            wrong.append((p.name, errors))
        registry.task_names(tmp_path)  # a bad file in the folder never breaks the task list of every page
    assert not wrong, wrong
    # nothing landed outside the data folder: the cache file, and uploads under datasets/
    outside = [q for q in tmp_path.rglob("*") if q.is_file() and registry.datasets_dir(tmp_path) not in q.parents
               and not q.name.startswith("samples.duckdb")]
    assert not outside, outside


@pytest.mark.parametrize("name", ["../../escape.jsonl", "..\\..\\win.jsonl", "/etc/passwd.jsonl", ".hidden.jsonl",
                                  "a" * 246 + ".csv", "b" * 296 + ".jsonl", "<script>x</script>.jsonl",
                                  "=cmd|calc.csv", "データ.jsonl", "a\nb.jsonl", " .jsonl"])
def test_upload_names_cannot_leave_the_data_folder_or_break_the_task_list(tmp_path, name):
    data = b"question,answer\nQ?,1\n" if name.endswith(".csv") else Q
    saved = registry.save_dataset(name, data, tmp_path)
    assert saved.parent == registry.datasets_dir(tmp_path) and len(saved.name) <= 110
    registry.save_mapping(saved, {})
    assert saved.name in registry.task_names(tmp_path)


def test_a_bad_file_name_in_the_folder_never_breaks_the_task_list(tmp_path):
    d = registry.datasets_dir(tmp_path)
    d.mkdir()
    (d / ("c" * 245 + ".jsonl")).write_bytes(Q)  # fits, but its ".mapping.json" would not
    (d / "ok.jsonl").write_bytes(Q)
    registry.save_mapping(d / "ok.jsonl", {})
    assert registry.task_names(tmp_path)[-1] == "ok.jsonl"
    assert registry.task_version("c" * 245 + ".jsonl", tmp_path) == 0.0


def test_one_file_gets_one_task_id_in_the_app_and_the_cli(tmp_path):
    src = tmp_path / "mini gsm.jsonl"  # a space: the app stores it as mini_gsm.jsonl
    src.write_text("".join(json.dumps({"question": f"Q{i}?", "answer": f"#### {i}"}) + "\n" for i in range(3)))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["cache"] = str(tmp_path / "app" / "samples.duckdb")
    at.query_params["section"] = "Datasets"
    at.switch_page("pages/models_data.py")
    at.run()
    at.file_uploader(key="upload").set_value((src.name, src.read_bytes(), "application/json")).run()
    at.button(key="save_mapping").click().run()
    assert not at.exception and "3 problems read" in at.success[0].value
    app_task = registry.load_task("mini_gsm.jsonl", tmp_path / "app")
    r = _cli("tasks", src)
    assert r.returncode == 0 and r.stdout.strip().endswith(f"task {app_task.name}"), (r.stdout, app_task.name)
    from engine.tasks import get_task
    assert [p.id for p in get_task(str(src)).problems] == [p.id for p in app_task.problems]


def test_sweeps_through_the_cli(hostile_dir, tiny_model, tmp_path):
    """The tokenizer and the model see hostile text: it samples, or is refused before any sampling."""
    db = tmp_path / "s.duckdb"
    common = ["--models", tiny_model, "--problems", "2", "--n", "1", "--max-new-tokens", "4", "--cache", db]
    r = _cli("sweep", "--task", hostile_dir / "html_script.jsonl", *common)
    assert r.returncode == 0 and "generated 2" in r.stdout, r.stderr[-2000:]
    r = _cli("sweep", "--task", hostile_dir / "prompt_injection.jsonl", *common)
    assert r.returncode == 0 and "generated 2" in r.stdout, r.stderr[-2000:]
    r = _cli("sweep", "--task", hostile_dir / "long_question.jsonl", *common)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "past the 512 positions" in r.stderr, r.stderr
    assert [ln for ln in r.stderr.splitlines() if "positions" in ln][0].startswith("error: problem 'long_question-1'")
    r = _cli("sweep", "--task", hostile_dir / "lone_surrogate.jsonl", *common)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.splitlines()[-1].startswith("error: ")
    assert "surrogate" in r.stderr.splitlines()[-1], r.stderr
    assert len(SampleCache(db).samples()) == 4  # the refused ones sampled nothing


def test_prompt_past_the_context_is_refused_before_sampling(tiny_model, tmp_path):
    from engine.errors import ConfigError
    from engine.models import SamplingParams
    from engine.runner import run
    from engine.tasks.files import load_task_file
    path = tmp_path / "near.jsonl"
    path.write_text(json.dumps({"question": "ok?", "answer": "1"}) + "\n"
                    + json.dumps({"question": "w " * 200, "answer": "1"}) + "\n")
    task = load_task_file(path)
    cache = SampleCache(tmp_path / "c.duckdb")
    with pytest.raises(ConfigError, match="lower max_new_tokens to at most"):
        run(tiny_model, task, task.problems, SamplingParams(n=1, max_new_tokens=200), cache, device="cpu")
    assert cache.samples().empty  # refused up front: not even the short problem was sampled
    run(tiny_model, task, task.problems, SamplingParams(n=1, max_new_tokens=8), cache, device="cpu")
    assert len(cache.samples()) == 2


def test_csv_exports_neutralise_formulas_and_keep_numbers(tiny_model, tmp_path):
    model = tmp_path / "=HYPERLINK(1)"
    shutil.copytree(tiny_model, model)
    data = tmp_path / "-evil.jsonl"  # problem ids -evil-1, -evil-2
    data.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n" + json.dumps({"question": "2+2?",
                                                                                         "answer": "4"}) + "\n")
    db = tmp_path / "s.duckdb"
    common = ["--models", model, f"--task={data}", "--problems", "2", "--n", "2", "--max-new-tokens", "4",
              "--cache", db]
    assert _cli("sweep", *common).returncode == 0
    r = _cli("report", *common, "--k", "1", "--csv", tmp_path / "r.csv")
    assert r.returncode == 0, r.stderr
    r = _cli("export", *common, "--out", tmp_path / "s.csv")
    assert r.returncode == 0, r.stderr
    report = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert report[0]["model"] == "'=HYPERLINK(1)" and float(report[0]["pass@1"]) >= 0
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert {r["model"] for r in rows} == {"'=HYPERLINK(1)"}
    assert {r["problem_id"] for r in rows} == {"'-evil-1", "'-evil-2"}
    assert all(float(r["logprob"]) <= 0 and not r["logprob"].startswith("'") for r in rows)  # numbers stay numbers
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    assert not [v for r in rows for k, v in r.items() if v.startswith(dangerous) and k != "logprob"]


def test_user_text_is_never_rendered_as_markdown(tmp_path):
    """An id like ![x](http://...) would load a remote image in a markdown element; so would an error quoting
    a line of the file."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["cache"] = str(tmp_path / "samples.duckdb")
    at.query_params["section"] = "Datasets"
    at.switch_page("pages/models_data.py")
    at.run()
    at.file_uploader(key="upload").set_value(("markdown_answer.jsonl", (HOSTILE / "markdown_answer.jsonl")
                                              .read_bytes(), "application/json")).run()
    at.button(key="save_mapping").click().run()
    (err,) = [e.value for e in at.error]
    assert "\\!\\[x\\]\\(http\\://example.invalid/b.png\\)" in err
    at.file_uploader(key="upload").set_value(("markdown_id.jsonl", (HOSTILE / "markdown_id.jsonl").read_bytes(),
                                              "application/json")).run()
    at.button(key="save_mapping").click().run()
    assert not at.error and not at.exception
    pid = "![x](http://example.invalid/a.png)"
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["cache"] = str(tmp_path / "samples.duckdb")
    at.query_params.update(task="markdown_id.jsonl", problem=pid)
    at.switch_page("pages/inspector.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert pid in [t.value for t in at.text]  # shown as text, as written
    md = " ".join(str(e.value) for kind in ("markdown", "info", "caption", "error", "warning", "success")
                  for e in at.get(kind))
    assert "](http" not in md and "\\!\\[x\\]" in md


def test_hosted_sessions_have_a_sample_budget(tmp_path, monkeypatch):
    monkeypatch.setattr("ui.common.SERVER_MODE", True)
    monkeypatch.setattr("ui.common.DEFAULT_PATH", tmp_path / "hosted.duckdb")
    monkeypatch.setattr("ui.common.SERVER_MAX_SAMPLES", 100)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/explore.py")
    at.run()
    at.button(key="run").click().run()
    assert not at.exception
    (err,) = [e.value for e in at.error]
    assert "Hosted mode" in err and "100" in err and "sweep_job" not in at.session_state
    assert SampleCache(tmp_path / "hosted.duckdb").samples().empty  # refused before anything was sampled


def test_a_model_directory_name_that_reads_as_markup_is_refused(tmp_path, tiny_model):
    import shutil

    from engine import registry
    from engine.errors import ModelError
    bad = shutil.copytree(tiny_model, tmp_path / "[x](http:evil)")
    with pytest.raises(ModelError, match="letters, digits"):
        registry.add_model(str(bad), tmp_path)
    assert registry.added_models(tmp_path) == []
