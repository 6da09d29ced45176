"""Cache behaviour against a real DuckDB file and a real (tiny) transformers model."""
import subprocess
import sys
import threading

import duckdb
import pandas as pd
import pytest

from engine.cache import SampleCache, csv_safe
from engine.errors import CacheBusyError, EngineError
from engine.models import SamplingParams
from engine.runner import run
from engine.tasks import get_task

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
SP = SamplingParams(n=4, temperature=1.0, max_new_tokens=12)


@pytest.fixture(scope="module")
def task():
    return get_task("arith")


def texts(cache, n=None):
    df = cache.samples()
    if n is not None:
        df = df[df.idx < n]
    return {(r.problem_id, r.idx): r.text for r in df.itertuples()}


def test_top_up_generates_only_missing(tiny_model, cache, task):
    probs = task.problems[:2]
    r1 = run(tiny_model, task, probs, SP.with_n(3), cache)
    assert (r1.generated, r1.cached) == (6, 0)
    first = texts(cache)
    r2 = run(tiny_model, task, probs, SP.with_n(8), cache, max_batch=3)
    assert (r2.generated, r2.cached) == (10, 6)
    assert len(cache.samples()) == 16
    after = texts(cache, 3)
    assert after == first  # cached samples untouched
    r3 = run(tiny_model, task, probs, SP.with_n(8), cache)
    assert r3.generated == 0 and r3.cached == 16
    runs = cache.runs()
    assert list(runs.status) == ["done", "done"] and list(runs.generated) == [6, 10]


def test_same_samples_regardless_of_batching(tiny_model, tmp_path, task):
    a, b = SampleCache(tmp_path / "a.duckdb"), SampleCache(tmp_path / "b.duckdb")
    run(tiny_model, task, task.problems[:2], SP.with_n(6), a, max_batch=6)
    run(tiny_model, task, task.problems[:2], SP.with_n(2), b, max_batch=1)
    run(tiny_model, task, task.problems[:2], SP.with_n(6), b, max_batch=4)
    assert texts(a) == texts(b)


def test_stop_and_resume(tiny_model, tmp_path, task):
    cache = SampleCache(tmp_path / "c.duckdb")
    stop = threading.Event()
    seen = []

    def on_progress(p):
        seen.append(p.done)
        if p.done >= 4:
            stop.set()  # as the app's Stop button does
    r = run(tiny_model, task, task.problems[:3], SP.with_n(4), cache, max_batch=2,
            on_progress=on_progress, stop_event=stop)
    assert r.stopped and r.generated == 4 and len(cache.samples()) == 4
    assert seen[-1] == 4 and 0 < seen[0] <= 4
    assert cache.runs().status.iloc[-1] == "stopped"
    r2 = run(tiny_model, task, task.problems[:3], SP.with_n(4), cache, max_batch=2)
    assert (r2.generated, r2.cached) == (8, 4)
    ref = SampleCache(tmp_path / "ref.duckdb")
    run(tiny_model, task, task.problems[:3], SP.with_n(4), ref)
    assert texts(cache) == texts(ref)


def test_long_generations_save_and_stop_in_smaller_batches(tiny_model, tmp_path, task, monkeypatch):
    """A batch is capped by new tokens as well as rows, so progress, saving and Stop come more often when each
    sample may run long; the samples are the same as with full batches."""
    import engine.runner
    monkeypatch.setattr(engine.runner, "TOKENS_PER_BATCH", 2 * 16)
    params = SamplingParams(n=6, temperature=0.8, max_new_tokens=16)
    cache = SampleCache(tmp_path / "long.duckdb")
    steps = []
    run(tiny_model, task, task.problems[:1], params, cache, max_batch=64, on_progress=lambda p: steps.append(p.done))
    assert steps == [2, 4, 6] and set(cache.samples().batch_size) == {2}
    monkeypatch.setattr(engine.runner, "TOKENS_PER_BATCH", 8192)
    ref = SampleCache(tmp_path / "ref.duckdb")
    run(tiny_model, task, task.problems[:1], params, ref, max_batch=64)
    assert texts(cache) == texts(ref)


def test_a_gpu_batch_may_hold_more_tokens_than_a_cpu_batch():
    """On a GPU a step costs about the same for many rows as for few (README, Performance): its batches are
    capped at 8 times the new tokens."""
    from engine.runner import TOKENS_PER_BATCH, tokens_per_batch
    assert tokens_per_batch("cpu") == TOKENS_PER_BATCH == 2 ** 18
    assert tokens_per_batch("cuda") == tokens_per_batch("cuda:1") == 8 * TOKENS_PER_BATCH


def test_a_batch_decodes_many_problems_with_the_same_samples(tiny_model, tmp_path, task):
    """By default a batch holds the rows of many problems (sized from the model); the samples are those of
    one problem per batch."""
    params = SamplingParams(n=4, temperature=0.8, max_new_tokens=16)
    wide = SampleCache(tmp_path / "wide.duckdb")
    steps = []
    run(tiny_model, task, task.problems[:5], params, wide, on_progress=lambda p: steps.append(p.done))
    assert steps == [20] and set(wide.samples().batch_size) == {20}
    narrow = SampleCache(tmp_path / "narrow.duckdb")
    run(tiny_model, task, task.problems[:5], params, narrow, max_batch=3)
    assert set(narrow.samples().batch_size) <= {1, 2, 3}
    assert texts(wide) == texts(narrow)


def test_crash_loses_at_most_batch_in_flight(tiny_model, tmp_path, task):
    cache = SampleCache(tmp_path / "crash.duckdb")

    def boom(p):
        if p.done >= 4:
            raise RuntimeError("simulated crash")
    with pytest.raises(RuntimeError):
        run(tiny_model, task, task.problems[:2], SP.with_n(4), cache, max_batch=2, on_progress=boom)
    assert len(cache.samples()) == 4  # both finished batches survived
    assert cache.runs().status.iloc[-1] == "error"
    r = run(tiny_model, task, task.problems[:2], SP.with_n(4), cache, max_batch=2)
    assert r.generated == 4 and len(cache.samples()) == 8


def test_concurrent_threads(tiny_model, tiny_model_b, cache, task):
    errors = []

    def work(model, probs):
        try:
            run(model, task, probs, SP.with_n(3), cache, max_batch=2)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    jobs = [(tiny_model, task.problems[0:2]), (tiny_model_b, task.problems[0:2]),
            (tiny_model, task.problems[2:4]), (tiny_model, task.problems[0:2])]  # last one overlaps the first
    ts = [threading.Thread(target=work, args=j) for j in jobs]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    df = cache.samples()
    assert len(df) == (4 + 2) * 3  # model a: 4 problems, model b: 2 problems, 3 samples each
    assert not df.duplicated(["model_fp", "problem_id", "idx"]).any()


def test_cli_sweep_while_other_process_uses_cache(tiny_model, tmp_path, task):
    """A CLI sweep in another process and this process writing and reading the same file."""
    path = tmp_path / "shared.duckdb"
    cache = SampleCache(path, busy_timeout=120)
    cmd = [sys.executable, "-m", "engine", "sweep", "--models", tiny_model, "--problems", "3", "--n", "4",
           "--max-new-tokens", "8", "--cache", str(path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reads = 0
    while proc.poll() is None or reads < 3:
        run(tiny_model, task, task.problems[3:5], SP.with_n(2 + reads), cache, max_batch=1)
        cache.stats()
        reads += 1
        if reads > 200:
            break
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    df = cache.samples()
    cli_ids = {p.id for p in task.select(3)}  # what `--problems 3` picks: one per level, round-robin
    assert set(df.problem_id) == cli_ids | {p.id for p in task.problems[3:5]}
    assert len(df[df.problem_id.isin(cli_ids)]) == 12


def test_busy_timeout_gives_clear_error(tmp_path):
    path = tmp_path / "locked.duckdb"
    SampleCache(path)
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); "
                               "print('ok', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(CacheBusyError, match="locked"):
            SampleCache(path, busy_timeout=0.5)
    finally:
        holder.kill()


def test_export_and_clear(tiny_model, tiny_model_b, cache, task, tmp_path):
    run(tiny_model, task, task.problems[:2], SP.with_n(2), cache)
    run(tiny_model_b, task, task.problems[:2], SP.with_n(2), cache)
    df = cache.samples()
    for suffix in (".parquet", ".csv"):
        out = cache.export(df, tmp_path / f"x{suffix}")
        back = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
        sent = df if suffix == ".parquet" else csv_safe(df)  # CSV: a text a spreadsheet would run gets a '
        assert len(back) == len(df) == 8
        assert sorted(back.text.fillna("")) == sorted(sent.text.fillna(""))
    with pytest.raises(EngineError, match=".parquet or .csv"):
        cache.export(df, tmp_path / "x.xlsx")
    fp_a = df.model_fp.iloc[0]
    assert cache.clear(model_fp=fp_a) == 4
    assert set(cache.samples().model_fp) == set(df.model_fp) - {fp_a}
    con = duckdb.connect(str(cache.path))  # really on disk, readable by plain duckdb
    assert con.execute("select count(*) from samples").fetchone()[0] == 4
    con.close()


def test_runs_record_how_busy_the_machine_was(cache, tiny_model):
    from engine import planning
    from engine.experiment import Experiment
    exp = Experiment.build([tiny_model], "arith", SamplingParams(n=2, max_new_tokens=8), problems=2)
    run(exp.models[0], exp.load_task(), exp.selected(), exp.params, cache)
    runs = cache.runs()
    assert runs["cpus"].iloc[0] >= 1 and runs["matmul_gflops"].iloc[0] > 0.1 and runs["load_avg"].notna().all()
    # pretend the run began on an overloaded machine: the pages flag it
    with cache._conn() as con:
        con.execute("UPDATE runs SET load_avg = 100, cpus = 2")
    busy = planning.busy_timings(cache, exp)
    assert busy and busy[0]["model"] == "tiny-a" and busy[0]["busy"] == 1 and busy[0]["load"] == 100


def test_samples_cut_at_a_sampled_pad_token_are_dropped_once(tmp_path):
    import duckdb
    from engine.cache import SCHEMA
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))  # a cache as an older version wrote it (no meta table yet)
    con.execute(SCHEMA.split("CREATE TABLE IF NOT EXISTS meta")[0])
    con.execute("INSERT INTO configs VALUES ('k1', '{\"max_new_tokens\": 16}')")
    rows = [("m", "t", "p", "k1", i, "x", "1", True, 5, ct, -1.0, 0.0, 0.0, 1, fin, "cpu", None)
            for i, (ct, fin) in enumerate([(16, "length"), (7, "length"), (7, "eos"), (3, "stop")])]
    con.executemany("INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.executemany("INSERT INTO scores VALUES ('v','m','t','p','k1',?,0.5,'[]')", [[i] for i in range(4)])
    con.close()
    cache = SampleCache(path)
    assert sorted(cache.samples().idx) == [0, 2, 3]  # idx 1: "length" with 7 < 16 tokens, cut at a pad
    assert sorted(cache.scores("v").idx) == [0, 2, 3]
    cache.write_samples([dict(zip(["model_fp", "task", "problem_id", "config_key", "idx", "text", "answer", "correct",
                                   "prompt_tokens", "completion_tokens", "logprob", "prefill_s", "decode_s",
                                   "batch_size", "finish", "device"],
                                  ["m", "t", "p", "k1", 9, "x", "1", True, 5, 2, -1.0, 0.0, 0.0, 1, "length", "cpu"]))])
    assert 9 in set(SampleCache(path).samples().idx)  # the repair runs once, not on every open


def test_a_killed_run_is_marked_interrupted_and_ctrl_c_is_a_stop(tmp_path, tiny_model):
    import subprocess
    import sys
    path = tmp_path / "c.duckdb"
    cache = SampleCache(path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cache.start_run("r1", "m", "t", "k", 1, 1, "cpu")
    with cache._conn() as con:  # as if the process that started it had been killed
        con.execute("UPDATE runs SET pid = ? WHERE run_id = 'r1'", [dead.pid])
    cache.start_run("r2", "m", "t", "k", 1, 1, "cpu")  # this process: alive, left alone
    runs = SampleCache(path).runs().set_index("run_id")
    assert runs.status["r1"] == "interrupted" and runs.status["r2"] == "running"

    def interrupt(progress):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run(tiny_model, get_task("arith"), get_task("arith").problems[:2], SamplingParams(n=2, max_new_tokens=4),
            cache, max_batch=1, on_progress=interrupt)
    last = cache.runs().iloc[-1]
    assert last.status == "stopped" and last.generated == 1  # the finished batch is kept and counted


@pytest.mark.parametrize("damage", ["random", "truncated", "sqlite", "empty"])
def test_a_damaged_cache_is_one_message_and_is_never_deleted(tmp_path, damage, tiny_model):
    import os
    import sqlite3
    from engine.cache import CacheError, move_aside
    path = tmp_path / "c.duckdb"
    if damage == "random":
        path.write_bytes(os.urandom(1 << 16))
    elif damage == "truncated":
        cache = SampleCache(path)
        run(tiny_model, get_task("arith"), get_task("arith").problems[:3], SamplingParams(n=4, max_new_tokens=8),
            cache)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "sqlite":
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    else:
        path.write_bytes(b"")
    before = path.read_bytes()
    with pytest.raises(CacheError) as err:
        c = SampleCache(path)
        c.stats()  # some damage only shows when the file is read
        c.samples()
    msg = str(err.value)
    assert str(path) in msg and "Nothing was deleted" in msg and "mv " in msg and "\n" not in msg
    assert path.read_bytes() == before  # untouched
    moved = move_aside(path)
    assert not path.exists() and moved.read_bytes() == before
    assert SampleCache(path).count() == 0  # a fresh cache starts where the damaged one was


def test_a_read_only_cache_can_be_read_not_written(tmp_path, tiny_model):
    path = tmp_path / "c.duckdb"
    cache = SampleCache(path)
    run(tiny_model, get_task("arith"), get_task("arith").problems[:2], SamplingParams(n=2, max_new_tokens=8), cache)
    ro = SampleCache(path, read_only=True)
    assert len(ro.samples()) == 4 and not ro.stats().empty
    with pytest.raises(EngineError, match="open read-only"):
        ro.write_samples([cache.samples().iloc[0].drop("created_at").to_dict()])


def test_the_cli_names_a_damaged_cache_in_one_line(tmp_path):
    import subprocess
    import sys
    from tests.conftest import ROOT
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"\x00garbage" * 1000)
    r = subprocess.run([sys.executable, "-m", "engine", "stats", "--cache", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "cannot be used" in r.stderr


def test_a_refused_statement_on_a_healthy_cache_is_not_called_damage(cache):
    import duckdb
    with pytest.raises(duckdb.CatalogException):
        with cache._conn() as con:
            con.execute("SELECT * FROM no_such_table")  # a bug: keeps its traceback, the file is fine
    assert cache.count() == 0


def test_a_burst_of_reads_keeps_the_file_open_until_the_first_write(tmp_path):
    cache = SampleCache(tmp_path / "c.duckdb")
    row = dict(zip(["model_fp", "task", "problem_id", "config_key", "idx", "text", "answer", "correct", "prompt_tokens",
                    "completion_tokens", "logprob", "prefill_s", "decode_s", "batch_size", "finish", "device"],
                   ["m", "t", "p", "k", 0, "x", "1", True, 5, 2, -1.0, 0.0, 0.0, 1, "eos", "cpu"]))
    cache.write_samples([row])
    with cache.reading():
        assert cache._open is not None
        with cache.reading():  # nested: the outer one keeps it
            assert len(cache.samples()) == 1 and cache.scores("v").empty and cache._open is not None
        assert len(cache.models()) == 0 and cache._open is not None
        cache.write_samples([{**row, "idx": 1}])  # a write ends the burst: scoring or sampling may follow
        assert cache._open is None
        assert len(cache.samples()) == 2
    assert cache._open is None
    # another process can take the file once the burst is over
    out = subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(cache.path)!r}).close()"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_list_filters_match_pandas(tmp_path):
    """A list filter is one list parameter (``IN (SELECT unnest(?))``): the rows are those pandas picks, for
    no values, one, many and values that match nothing."""
    cache = SampleCache(tmp_path / "f.duckdb")
    cols = ["model_fp", "task", "problem_id", "config_key", "idx", "text", "answer", "correct", "prompt_tokens",
            "completion_tokens", "logprob", "prefill_s", "decode_s", "batch_size", "finish", "device"]
    cache.write_samples([dict(zip(cols, [m, "t", f"p{p}", "k", i, "x", "1", True, 5, 2, -1.0, 0.0, 0.0, 1, "eos",
                                         "cpu"])) for m in ("a", "b") for p in range(30) for i in range(2)])
    cache.write_scores([dict(verifier_fp="v", model_fp="a", task="t", problem_id=f"p{p}", config_key="k", idx=0,
                             score=0.5, step_scores="[]") for p in range(30)])
    every = cache.samples()
    for ids in ([], ["p3"], [f"p{p}" for p in range(0, 30, 2)] + ["nope", "p3'; --"], ["nope"]):
        got = cache.samples(model_fp="a", problem_ids=ids)
        want = every[(every.model_fp == "a") & every.problem_id.isin(ids)]
        assert sorted(zip(got.problem_id, got.idx)) == sorted(zip(want.problem_id, want.idx))
        assert set(cache.scores("v", problem_ids=ids, columns=["problem_id"]).problem_id) == set(ids) - {"nope",
                                                                                                         "p3'; --"}
        assert cache.count(model_fp=["a", "b"], problem_id=ids) == every.problem_id.isin(ids).sum()
        assert cache.export_rows("samples", tmp_path / "x.parquet", model_fp=["a"], problem_id=ids) == len(want)
    assert cache.cached_indices("b", "t", "k", ["p1", "p2"]) == {"p1": {0, 1}, "p2": {0, 1}}


def test_the_machine_speed_probe_is_reused_for_a_while(monkeypatch):
    """Runs that follow each other closely (a sweep's models, a benchmark) share one 20 ms matmul probe; an older
    probe is measured again."""
    from engine import runner
    monkeypatch.setattr(runner, "_probe", {})
    first = runner.machine_conditions()["matmul_gflops"]
    runner._probe["gflops"] = -1.0  # a marker: a new probe would replace it
    assert runner.machine_conditions()["matmul_gflops"] == -1.0
    runner._probe["at"] -= runner.PROBE_TTL_S
    again = runner.machine_conditions()["matmul_gflops"]
    assert again > 0 and first > 0
