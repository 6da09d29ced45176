"""The sample cache: one DuckDB file, the only module in the project that speaks SQL.

Concurrency strategy: short-lived connections with retry. DuckDB lets one
process at a time open a file for writing, so nothing here keeps a connection
open: every call connects, does one transaction and closes (``reading`` keeps
the file open across a burst of reads, and ends at the first write). Another process
(a CLI sweep beside the app) that finds the file locked retries with backoff
for up to ``busy_timeout`` seconds. Inside one process, threads (Streamlit
sessions) share one lock, so their transactions never interleave.
Writes are ``INSERT OR IGNORE`` on the full sample key: two writers producing
the same deterministic sample is harmless.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from .errors import CacheBusyError, EngineError

# TTC_CACHE points the app, CLI and tests at another cache file (tests use a temporary one).
DEFAULT_PATH = Path(os.environ.get("TTC_CACHE") or Path(__file__).resolve().parents[1] / "cache" / "samples.duckdb")

SAMPLE_COLS = ["model_fp", "task", "problem_id", "config_key", "idx", "text", "answer", "correct",
               "prompt_tokens", "completion_tokens", "logprob", "prefill_s", "decode_s", "batch_size",
               "finish", "device", "created_at"]

SCORE_COLS = {"verifier_fp", "model_fp", "task", "problem_id", "config_key", "idx", "score", "step_scores"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    model_fp VARCHAR PRIMARY KEY, name VARCHAR, source VARCHAR, params BIGINT, matmul_params BIGINT,
    family VARCHAR, dtype VARCHAR, n_layers INTEGER, d_model INTEGER, training_flops DOUBLE,
    training_tokens BIGINT, registered_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS configs (config_key VARCHAR PRIMARY KEY, params_json VARCHAR);
CREATE TABLE IF NOT EXISTS samples (
    model_fp VARCHAR, task VARCHAR, problem_id VARCHAR, config_key VARCHAR, idx INTEGER,
    text VARCHAR, answer VARCHAR, correct BOOLEAN, prompt_tokens INTEGER, completion_tokens INTEGER,
    logprob DOUBLE, prefill_s DOUBLE, decode_s DOUBLE, batch_size INTEGER, finish VARCHAR,
    device VARCHAR, created_at TIMESTAMP,
    PRIMARY KEY (model_fp, task, problem_id, config_key, idx));
CREATE TABLE IF NOT EXISTS scores (
    verifier_fp VARCHAR, model_fp VARCHAR, task VARCHAR, problem_id VARCHAR, config_key VARCHAR,
    idx INTEGER, score DOUBLE, step_scores VARCHAR,
    PRIMARY KEY (verifier_fp, model_fp, task, problem_id, config_key, idx));
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, started_at TIMESTAMP, finished_at TIMESTAMP, model_fp VARCHAR,
    task VARCHAR, config_key VARCHAR, problems INTEGER, n INTEGER, generated INTEGER, status VARCHAR,
    device VARCHAR);
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS load_avg DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS cpus INTEGER;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS matmul_gflops DOUBLE;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pid INTEGER;
"""

_process_lock = threading.RLock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _frame(con, sql: str, args: list) -> pd.DataFrame:
    """A query's rows as pandas, through Arrow: three times faster than ``.df()`` where most of a table is text
    (samples, scores), with the same frame. Where a whole-number or truth column holds a NULL (Arrow would make
    it float or object, DuckDB a nullable type) or nothing matched, ``.df()`` makes it, as it always did."""
    import pyarrow as pa
    tab = con.sql(sql, params=args).to_arrow_table()
    if tab.num_rows and not any(c.null_count for c, f in zip(tab.columns, tab.schema)
                                if pa.types.is_integer(f.type) or pa.types.is_boolean(f.type)):
        return tab.to_pandas()
    return con.execute(sql, args).df()


class CacheError(EngineError):
    """The cache file cannot be used as it is (damaged, not a DuckDB file)."""

    def __init__(self, path, detail: str):
        super().__init__(f"cache {path} cannot be used: {detail}. Nothing was deleted. Move it aside "
                         f"(mv '{path}' '{path}.broken') to start a fresh cache (the shipped sweeps reload on "
                         "the next start), or restore it from a backup.")
        self.path = Path(path)


def _damaged(path, e: Exception) -> CacheError:
    return CacheError(path, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}")


_SQLITE = b"SQLite format 3\x00"
_NUMBER = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with text cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a
    carriage return: the OWASP rule) prefixed with an apostrophe. Problem ids and texts come from user files.
    Numeric columns, and text that is just a number (an answer of -5), stay as they are."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            s = out[c]
            risky = s.map(lambda v: isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"))
            risky &= ~s.where(risky, "").astype(str).str.match(_NUMBER)
            out[c] = s.where(~risky, "'" + s.where(risky, "").astype(str))
    return out


def _check_is_duckdb(path: Path) -> None:
    """Refuse files that are clearly not DuckDB databases before DuckDB tries to (it would fetch an extension
    for a SQLite file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise CacheError(path, e.strerror or "unreadable") from None
    if head.startswith(_SQLITE):
        raise CacheError(path, "it is a SQLite database, not a DuckDB file")
    if not head:
        raise CacheError(path, "the file is empty")


def move_aside(path: str | Path) -> Path:
    """Rename a damaged cache file (and its WAL) out of the way, never deleting it; returns the new path."""
    path = Path(path)
    target = path.with_name(f"{path.name}.broken-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    with _process_lock:
        try:
            path.rename(target)
            wal = Path(str(path) + ".wal")
            if wal.exists():
                wal.rename(Path(str(target) + ".wal"))
        except OSError as e:
            raise EngineError(f"cache {path}: could not move it aside: {e.strerror}") from None
    return target


def _quote(path) -> str:
    """A path inside a single-quoted SQL string literal."""
    return str(path).replace("'", "''")


def _now():
    return datetime.now(timezone.utc).replace(tzinfo=None)


class SampleCache:
    """``read_only``: open an existing file for reading only (also chosen when the file is not writable)."""

    def __init__(self, path: str | Path = DEFAULT_PATH, busy_timeout: float = 60.0, read_only: bool = False):
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._open = None  # the connection that ``reading`` keeps, if any
        self._writes = False  # whether writes leave that connection open
        if self.path.exists():
            _check_is_duckdb(self.path)
        self.read_only = read_only or (self.path.exists() and not os.access(self.path, os.W_OK))
        if self.read_only:
            if not self.path.exists():
                raise EngineError(f"cache {self.path}: no such file to open read-only")
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EngineError(f"cache: cannot create {self.path.parent}: {e.strerror}") from None
        with self._conn() as con:
            con.execute(SCHEMA)
        self._migrate()
        self._mark_interrupted()

    def _mark_interrupted(self) -> None:
        """Runs still "running" that no live process of this machine owns were killed: say so.

        A run records its process id; one whose process is gone (kill -9, a crash, a closed laptop) would
        otherwise stay "running" forever. Its finished batches are in the cache.
        """
        with self._conn() as con:
            rows = con.execute("SELECT run_id, pid FROM runs WHERE status = 'running'").fetchall()
            dead = [r for r, pid in rows if pid is not None and not _alive(int(pid))]
            for run_id in dead:
                con.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", [run_id])

    def _migrate(self) -> None:
        """One-time repairs of caches written by older versions, each recorded in ``meta``."""
        with self._conn() as con:
            if con.execute("SELECT count(*) FROM meta WHERE key = 'pad_truncation_dropped'").fetchone()[0]:
                return
            # Older samplers cut a completion at a *sampled* pad token (finish "length", fewer tokens than
            # max_new_tokens). Drop those samples and their scores, so the next top-up regenerates them whole.
            dropped = 0
            for key, params_json in con.execute("SELECT config_key, params_json FROM configs").fetchall():
                limit = json.loads(params_json).get("max_new_tokens")
                if limit is None:
                    continue
                bad = ("FROM samples s WHERE s.config_key = ? AND s.finish = 'length' AND s.completion_tokens < ?")
                n = con.execute(f"SELECT count(*) {bad}", [key, limit]).fetchone()[0]
                if n:
                    con.execute("DELETE FROM scores sc WHERE EXISTS (SELECT 1 " + bad + " AND s.model_fp = sc.model_fp "
                                "AND s.task = sc.task AND s.problem_id = sc.problem_id AND s.idx = sc.idx "
                                "AND s.config_key = sc.config_key)", [key, limit])
                    con.execute("DELETE FROM samples WHERE config_key = ? AND finish = 'length' "
                                "AND completion_tokens < ?", [key, limit])
                    dropped += n
            con.execute("INSERT OR IGNORE INTO meta VALUES ('pad_truncation_dropped', ?)", [str(dropped)])

    @contextmanager
    def reading(self, writes: bool = False):
        """Keep the file open across a burst of reads (one model's samples and scores, say). Each call inside still
        takes the lock and its own connection, but connecting to a file this process has open is free, while
        opening it costs ~10 ms, often more than the read. The file stays locked to other processes meanwhile
        (they wait, as for a long transaction), so the first write ends the burst: what leads to a write (scoring,
        sampling) can take long. ``writes``: the burst also holds across writes, for a few quick ones (a run's
        bookkeeping before it samples)."""
        deadline = time.monotonic() + self.busy_timeout
        with _process_lock:
            nested = self._open is not None
            if not nested:
                self._open = self._connect(deadline)
                self._writes = writes
        try:
            yield
        finally:
            if not nested:
                self._close_open()

    def _close_open(self) -> None:
        with _process_lock:
            if self._open is not None:
                self._open.close()
                self._open, self._writes = None, False

    def _connect(self, deadline: float):
        """A new connection, retrying while another process holds the file, until ``deadline``."""
        delay = 0.01
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.IOException as e:
                msg = str(e)
                if "lock" in msg.lower() and time.monotonic() <= deadline:
                    time.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 0.5)
                    continue
                if "lock" in msg.lower():
                    raise CacheBusyError(f"cache {self.path} stayed locked by another process for "
                                         f"{self.busy_timeout:.0f}s; try again when it finishes.") from None
                raise _damaged(self.path, e) from None
            except duckdb.Error as e:
                raise _damaged(self.path, e) from None

    @contextmanager
    def _conn(self, read: bool = False):
        """One short-lived connection. Errors of a damaged file become one ``CacheError`` naming the file;
        a refused statement on a healthy file stays what it is (a bug keeps its traceback). Anything but a
        ``read`` ends a ``reading`` burst first."""
        deadline = time.monotonic() + self.busy_timeout
        if not read and not self._writes:
            self._close_open()
        with _process_lock:
            con = self._connect(deadline)
            try:
                yield con
            except (duckdb.ProgrammingError, duckdb.IntegrityError, duckdb.DataError) as e:
                # a statement the file refused (or a bug in this module): the file itself is fine
                if self.read_only and "read-only" in str(e).lower():
                    raise EngineError(f"cache {self.path} is open read-only: it can be read, not written. "
                                      "Point the app or --cache at a writable file to sample.") from None
                raise
            except duckdb.Error as e:  # I/O, checksum, serialization, internal: the file is damaged
                raise _damaged(self.path, e) from None
            finally:
                con.close()

    # ---- writes -------------------------------------------------------------
    def put_model(self, spec) -> None:
        tr = spec.training or {}
        with self._conn() as con:
            con.execute("INSERT OR REPLACE INTO models VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        [spec.fingerprint, spec.name, spec.source, spec.params, spec.matmul_params, spec.family,
                         spec.dtype, spec.n_layers, spec.d_model, tr.get("training_flops"),
                         tr.get("training_tokens"), _now()])

    def put_config(self, params) -> None:
        with self._conn() as con:
            con.execute("INSERT OR IGNORE INTO configs VALUES (?, ?)",
                        [params.key(), json.dumps(params.identity(), sort_keys=True)])

    def write_samples(self, rows: list[dict]) -> None:
        """One transaction per call: a crash loses at most the rows of this call."""
        if not rows:
            return
        import pyarrow as pa
        now = _now()  # Arrow, not pandas: DuckDB scans its strings without converting Python objects (a third faster)
        table = pa.Table.from_pylist([{**r, "created_at": now} for r in rows]).select(SAMPLE_COLS)
        with self._conn() as con:
            con.register("new_rows", table)
            con.execute("INSERT OR IGNORE INTO samples SELECT * FROM new_rows")

    def write_scores(self, rows: list[dict]) -> None:
        if not rows:
            return
        df = pd.DataFrame(rows)[["verifier_fp", "model_fp", "task", "problem_id", "config_key", "idx",
                                 "score", "step_scores"]]
        with self._conn() as con:
            con.register("new_rows", df)
            con.execute("INSERT OR IGNORE INTO scores SELECT * FROM new_rows")

    def start_run(self, run_id, model_fp, task, config_key, problems, n, device, load_avg=None, cpus=None,
                  matmul_gflops=None) -> None:
        """``load_avg``/``cpus``/``matmul_gflops``: how busy and how fast the machine was as the run began."""
        with self._conn() as con:
            con.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        [run_id, _now(), None, model_fp, task, config_key, problems, n, 0, "running", device,
                         load_avg, cpus, matmul_gflops, os.getpid()])

    def finish_run(self, run_id, generated: int, status: str) -> None:
        with self._conn() as con:
            con.execute("UPDATE runs SET finished_at=?, generated=?, status=? WHERE run_id=?",
                        [_now(), generated, status, run_id])

    def clear(self, model_fp: str | None = None, task: str | None = None) -> int:
        """Delete samples (and their scores) of one model and/or task; returns rows removed."""
        where, args = self._where(model_fp=model_fp, task=task)
        with self._conn() as con:
            n = con.execute(f"SELECT count(*) FROM samples {where}", args).fetchone()[0]
            con.execute(f"DELETE FROM samples {where}", args)
            con.execute(f"DELETE FROM scores {where}", args)
        return n

    # ---- reads --------------------------------------------------------------
    @staticmethod
    def _where(**filters):
        clauses, args = [], []
        for col, val in filters.items():
            if val is None:
                continue
            if isinstance(val, (list, tuple, set)):
                # one list parameter: DuckDB binds it faster than one parameter per value (500 problems: ~10 ms)
                val = list(val)
                clauses.append(f"{col} IN (SELECT unnest(?))" if val else "FALSE")
                args += [val] if val else []
            else:
                clauses.append(f"{col} = ?")
                args.append(val)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def cached_indices(self, model_fp, task, config_key, problem_ids) -> dict[str, set[int]]:
        where, args = self._where(model_fp=model_fp, task=task, config_key=config_key, problem_id=list(problem_ids))
        with self._conn() as con:
            rows = con.execute(f"SELECT problem_id, idx FROM samples {where}", args).fetchall()
        out: dict[str, set[int]] = {pid: set() for pid in problem_ids}
        for pid, idx in rows:
            out[pid].add(idx)
        return out

    def pool_sizes(self, model_fps, task, config_key, problem_ids, below: int) -> dict[str, dict[str, int]]:
        """Per model and problem, how many of indices 0..``below``-1 are cached (problems with none left out):
        counted by the database, not by fetching every index (128k rows took 0.2 s on each page render)."""
        where, args = self._where(model_fp=list(model_fps), task=task, config_key=config_key,
                                  problem_id=list(problem_ids))
        with self._conn(read=True) as con:
            rows = con.execute(f"SELECT model_fp, problem_id, count(*) FROM samples {where} AND idx < ? "
                               "GROUP BY ALL", args + [below]).fetchall()
        out: dict[str, dict[str, int]] = {fp: {} for fp in model_fps}
        for fp, pid, n in rows:
            out[fp][pid] = n
        return out

    def samples(self, model_fp=None, task=None, config_key=None, problem_ids=None, max_idx=None) -> pd.DataFrame:
        where, args = self._where(model_fp=model_fp, task=task, config_key=config_key,
                                  problem_id=list(problem_ids) if problem_ids is not None else None)
        if max_idx is not None:
            where += (" AND " if where else "WHERE ") + "idx < ?"
            args.append(max_idx)
        with self._conn(read=True) as con:
            return _frame(con, f"SELECT * FROM samples {where} ORDER BY model_fp, problem_id, idx", args)

    def scores(self, verifier_fp, model_fp=None, task=None, config_key=None, problem_ids=None,
               columns=None) -> pd.DataFrame:
        """Cached scores; ``columns`` (names of the scores table) reads only those, which is much faster than
        turning every key column into pandas strings."""
        where, args = self._where(verifier_fp=verifier_fp, model_fp=model_fp, task=task, config_key=config_key,
                                  problem_id=list(problem_ids) if problem_ids is not None else None)
        cols = "*"
        if columns is not None:
            bad = set(columns) - SCORE_COLS
            if bad:
                raise EngineError(f"scores table has no column(s) {sorted(bad)}")
            cols = ", ".join(columns)
        with self._conn(read=True) as con:
            return _frame(con, f"SELECT {cols} FROM scores {where}", args)

    def models(self) -> pd.DataFrame:
        with self._conn(read=True) as con:
            return con.execute("SELECT * FROM models ORDER BY params").df()

    def configs(self) -> pd.DataFrame:
        with self._conn() as con:
            return con.execute("SELECT * FROM configs").df()

    def runs(self) -> pd.DataFrame:
        with self._conn() as con:
            return con.execute("SELECT * FROM runs ORDER BY started_at").df()

    def stats(self) -> pd.DataFrame:
        """Samples per (model, task, config) with their token totals, smallest model first."""
        with self._conn() as con:
            return con.execute("""
                SELECT m.name AS model, s.model_fp, s.task, s.config_key, count(DISTINCT s.problem_id) AS problems,
                       count(*) AS samples, max(s.idx) + 1 AS max_n,
                       sum(s.completion_tokens)::BIGINT AS completion_tokens, avg(s.correct::INT) AS mean_correct
                FROM samples s LEFT JOIN models m USING (model_fp)
                GROUP BY ALL ORDER BY any_value(m.params) NULLS LAST, model, task""").df()

    def run_conditions(self, model_fps, task, config_key) -> pd.DataFrame:
        """Runs that generated samples for these models, task and config, with the machine's load then."""
        where, args = self._where(model_fp=list(model_fps), task=task, config_key=config_key)
        with self._conn() as con:
            return con.execute(f"SELECT r.*, m.name FROM runs r LEFT JOIN models m USING (model_fp) {where} "
                               "AND generated > 0 ORDER BY started_at", args).df()

    def throughput(self, model_fp: str) -> float | None:
        """Measured samples per wall-clock second for a model (None if never sampled)."""
        with self._conn() as con:
            n, secs = con.execute("SELECT count(*), sum((decode_s + prefill_s) / batch_size) FROM samples "
                                  "WHERE model_fp = ?", [model_fp]).fetchone()
        return n / secs if n and secs else None

    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    # ---- shipped sweeps: whole tables to and from Parquet -----------------------
    def export_rows(self, table: str, path: str | Path, **filters) -> int:
        """Write the rows of ``samples`` or ``scores`` matching ``filters`` to a zstd Parquet file, in key order."""
        if table not in ("samples", "scores"):
            raise EngineError(f"export_rows: no table {table!r}")
        where, args = self._where(**filters)
        key = "model_fp, problem_id, idx" if table == "samples" else "verifier_fp, model_fp, problem_id, idx"
        with self._conn() as con:
            df = con.execute(f"SELECT * FROM {table} {where} ORDER BY {key}", args).df()
        if table == "samples":
            df = df[SAMPLE_COLS]
        out = duckdb.connect()  # in-memory: writing the file never holds the cache
        try:
            out.register("rows", df)
            out.execute(f"COPY rows TO '{_quote(path)}' (FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 19)")
        finally:
            out.close()
        return len(df)

    def import_rows(self, table: str, path: str | Path) -> int:
        """Add the rows of a Parquet file to ``samples`` or ``scores``; rows already cached are kept as they are.
        Returns how many were new."""
        if table not in ("samples", "scores"):
            raise EngineError(f"import_rows: no table {table!r}")
        with self._conn() as con:
            before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            con.execute(f"INSERT OR IGNORE INTO {table} SELECT * FROM read_parquet('{_quote(path)}')")
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] - before

    def put_model_row(self, row: dict) -> None:
        """Record a model from a dict of the ``models`` table's columns (keeps an existing entry)."""
        cols = ["model_fp", "name", "source", "params", "matmul_params", "family", "dtype", "n_layers", "d_model",
                "training_flops", "training_tokens"]
        with self._conn() as con:
            con.execute("INSERT OR IGNORE INTO models VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        [row.get(c) for c in cols] + [_now()])

    def count(self, table: str = "samples", **filters) -> int:
        if table not in ("samples", "scores"):
            raise EngineError(f"count: no table {table!r}")
        where, args = self._where(**filters)
        with self._conn() as con:
            return con.execute(f"SELECT count(*) FROM {table} {where}", args).fetchone()[0]

    # ---- export ---------------------------------------------------------------
    @staticmethod
    def export(df: pd.DataFrame, path: str | Path) -> Path:
        """Write a query result to Parquet or CSV (chosen by the file suffix)."""
        path = Path(path)
        fmt = {".parquet": "PARQUET", ".csv": "CSV"}.get(path.suffix.lower())
        if fmt is None:
            raise EngineError(f"export: {path.name} must end in .parquet or .csv")
        if fmt == "CSV":
            df = csv_safe(df)
        con = duckdb.connect()  # in-memory: exporting never touches the cache file
        try:
            con.register("result", df)
            con.execute(f"COPY result TO '{_quote(path)}' (FORMAT {fmt}"
                        + (", HEADER" if fmt == "CSV" else "") + ")")
        finally:
            con.close()
        return path
