"""The OpenAI-compatible server and the http backend, over real sockets: `python -m engine serve` checked with
the official `openai` client, sweeps through HTTP against in-process sweeps, and a misbehaving server."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.errors import EngineError
from engine.models import SamplingParams
from engine.runner import run
from engine.tasks import get_task
from tests.conftest import ROOT

KEY_ENV, SECRET = "TTC_TEST_HTTP_KEY", "sk-test-d0-not-st0re-9f3a"
COLS = ["problem_id", "idx", "text", "answer", "correct", "prompt_tokens", "completion_tokens", "finish"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def engine_server(models: str = "arith-s", key: str | None = None):
    """`python -m engine serve` on a free port (with an API key when ``key``), until the block ends: its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "engine", "serve", "--models", models, "--port", str(port)]
    env = os.environ.copy()
    if key:
        cmd += ["--api-key-env", KEY_ENV]
        env[KEY_ENV] = key
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    req = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {key}"} if key else {})
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(req, timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"server did not start: {proc.stdout.read()}")
            time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server():
    with engine_server(key=SECRET) as url:
        yield url


def test_server_speaks_openai_completions(server):
    import openai
    client = openai.OpenAI(base_url=server, api_key=SECRET, max_retries=0)
    assert [m.id for m in client.models.list()] == ["arith-s"]
    prompt = get_task("arith").prompt(get_task("arith").problems[0])
    ask = dict(model="arith-s", prompt=prompt, max_tokens=24, temperature=0.8, seed=1, stop=["\n\n", "\nQ:"])
    r = client.completions.create(n=3, logprobs=1, **ask)
    assert len(r.choices) == 3 and {c.finish_reason for c in r.choices} <= {"stop", "length"}
    for c in r.choices:
        assert len(c.logprobs.tokens) == len(c.logprobs.token_logprobs) >= 1
        assert all(lp <= 0 for lp in c.logprobs.token_logprobs)
        assert "".join(c.logprobs.tokens).startswith(c.text)
    assert r.usage.completion_tokens == sum(len(c.logprobs.tokens) for c in r.choices)
    # choice j is sample j: fewer samples are a prefix, an extension field picks any index
    r2 = client.completions.create(n=2, **ask)
    assert [c.text for c in r2.choices] == [c.text for c in r.choices[:2]] and r2.choices[0].logprobs is None
    r3 = client.completions.create(n=1, extra_body={"sample_indices": [2]}, **ask)
    assert r3.choices[0].text == r.choices[2].text
    with pytest.raises(openai.NotFoundError):
        client.completions.create(**{**ask, "model": "nope"})
    with pytest.raises(openai.BadRequestError):
        client.completions.create(**{**ask, "max_tokens": 0})
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError) as e:  # a chat request gets a message saying what is served
        client.chat.completions.create(model="arith-s", messages=[{"role": "user", "content": "2+2"}])
    assert "only GET /v1/models and POST /v1/completions" in str(e.value)


def _rows(cache, fp):
    df = cache.samples(model_fp=fp)
    return df.sort_values(["problem_id", "idx"]).reset_index(drop=True)


def test_sweep_over_http_matches_in_process(server, tmp_path, capsys, monkeypatch):
    from engine.cache import SampleCache
    from engine.cli import main
    from engine.models.ref import resolve_model
    monkeypatch.setenv(KEY_ENV, SECRET)
    db = tmp_path / "c.duckdb"
    common = ["--problems", "3", "--n", "4", "--max-new-tokens", "64", "--cache", str(db)]
    spec = f"{server}#arith-s?key_env={KEY_ENV}&revision=test&concurrency=2"
    assert main(["sweep", "--models", spec, *common]) == 0
    assert main(["sweep", "--models", "arith-s", *common]) == 0
    assert main(["sweep", "--models", spec, *common]) == 0  # resumable: all cached now
    two = f"{server}+{server}#arith-s?key_env={KEY_ENV}&revision=two"  # each problem's samples split in two
    assert main(["sweep", "--models", two, *common]) == 0
    out = capsys.readouterr()
    assert "generated 0, already cached 12" in out.out
    cache = SampleCache(db)
    local = _rows(cache, resolve_model("arith-s").fingerprint)
    assert len(local) == 12
    for s in (spec, two):
        remote = _rows(cache, resolve_model(s).fingerprint)
        assert remote[COLS].equals(local[COLS])
        assert (remote["logprob"] - local["logprob"]).abs().max() < 1e-4
    m = cache.models().set_index("name")
    assert "estimated" in m[m["source"] == spec]["family"].iloc[0]
    assert (m["params"] == 26656).all()
    # the key is sent, never kept: not in the cache file, not in anything printed
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert files and not any(SECRET.encode() in p.read_bytes() for p in files)
    assert SECRET not in out.out + out.err


def test_seed_mode_samples_depend_only_on_their_index(server, cache, monkeypatch):
    """The path for servers without the indices extension: one seeded request per sample."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    task = get_task("arith")
    spec = f"{server}#arith-s?key_env={KEY_ENV}&mode=seed"
    params = SamplingParams(n=2, max_new_tokens=48)
    run(spec, task, task.select(1), params, cache)
    run(spec, task, task.select(1), params.with_n(3), cache)  # tops up index 2 alone
    from engine.cache import SampleCache
    fresh = SampleCache(cache.path.parent / "fresh.duckdb")
    fp = run(spec, task, task.select(1), params.with_n(3), fresh).model_fp  # all three in one call
    assert len(_rows(fresh, fp)) == 3 and _rows(cache, fp)[COLS].equals(_rows(fresh, fp)[COLS])


def test_wrong_key_is_refused_at_once_and_never_printed(server, cache, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-123")
    task = get_task("arith")
    with pytest.raises(EngineError) as e:
        run(f"{server}#arith-s?key_env={KEY_ENV}", task, task.select(1), SamplingParams(n=1), cache)
    assert "HTTP 401" in str(e.value) and "sk-wrong" not in str(e.value) and "?key_env=" not in str(e.value)
    with pytest.raises(EngineError) as e:  # no key sent at all: say how to send one
        run(f"{server}#arith-s", task, task.select(1), SamplingParams(n=1), cache)
    assert "HTTP 401" in str(e.value) and "add ?key_env=NAME" in str(e.value)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(EngineError, match=f"{KEY_ENV}.*not set"):
        run(f"{server}#arith-s?key_env={KEY_ENV}", task, task.select(1), SamplingParams(n=1), cache)


# ---- a real server that misbehaves ----------------------------------------------------------------
class Flaky(BaseHTTPRequestHandler):
    script: list = []   # what each POST answers, in order; the last one repeats
    posts: list = []

    def log_message(self, *args):
        pass

    def _send(self, code, body: bytes):
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (a timeout test)

    def do_GET(self):
        self._send(200, json.dumps({"data": [{"id": "fake", "params": 1000, "sample_indices": True}]}).encode())

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        what = self.script[min(len(self.posts), len(self.script) - 1)]
        self.posts.append({**body, "port": self.server.server_port})
        n = body["n"]
        ok = {"choices": [{"index": j, "text": "1+1=2\n#### 2", "finish_reason": "stop",
                           "logprobs": {"token_logprobs": [-0.5] * 4}} for j in range(n)],
              "usage": {"prompt_tokens": 9, "completion_tokens": 4 * n}}
        if what == "slow":
            time.sleep(1.0)
        if what in ("429", "500"):
            self._send(int(what), b'{"error": {"message": "busy"}}')
        elif what == "garbage":
            self._send(200, b'{"choices": [')
        elif what == "nonsense":
            ok["choices"][0]["logprobs"]["token_logprobs"] = ["x"]
            self._send(200, json.dumps(ok).encode())
        elif what == "short":
            ok["choices"].pop()
            self._send(200, json.dumps(ok).encode())
        else:
            self._send(200, json.dumps(ok).encode())


@pytest.fixture
def flaky():
    Flaky.posts = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _sweep(url, cache):
    task = get_task("arith")
    return run(f"{url}#fake?retries=2&backoff=0.01&timeout=0.4", task, task.select(2), SamplingParams(n=3), cache)


def test_several_endpoints_share_each_problem(flaky, cache):
    Flaky.script = ["ok"]
    second = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=second.serve_forever, daemon=True).start()
    try:
        res = _sweep(f"{flaky}+http://127.0.0.1:{second.server_address[1]}/v1", cache)
    finally:
        second.shutdown()
        second.server_close()
    assert res.generated == 6 and len({b["port"] for b in Flaky.posts}) == 2
    assert sorted(len(b["sample_indices"]) for b in Flaky.posts) == [1, 1, 2, 2]


def test_429_then_ok_is_retried(flaky, cache):
    Flaky.script = ["429", "ok"]
    res = _sweep(flaky, cache)
    assert res.generated == 6 and len(Flaky.posts) == 3  # one retry, then the second problem at once
    assert Flaky.posts[0]["sample_indices"] == [0, 1, 2] and cache.count(model_fp=res.model_fp) == 6


@pytest.mark.parametrize("what,says", [("500", "HTTP 500 busy"), ("garbage", "malformed JSON"),
                                       ("nonsense", "malformed answer (ValueError)"),
                                       ("short", "2 choices for n=3"), ("slow", "timed out")])
def test_bad_answers_retry_then_fail_with_one_clear_error(flaky, cache, what, says):
    Flaky.script = ["ok", what]  # the first problem succeeds; the second never does
    with pytest.raises(EngineError) as e:
        _sweep(flaky, cache)
    msg = str(e.value)
    assert says in msg and "failed 3 times" in msg and "\n" not in msg
    assert len(Flaky.posts) == 1 + 3
    df = cache.samples()
    assert len(df) == 3 and set(df["problem_id"]) == {get_task("arith").select(2)[0].id}  # nothing half-written


def test_cli_prints_one_line(flaky, tmp_path, capsys):
    from engine.cli import main
    Flaky.script = ["500"]
    code = main(["sweep", "--models", f"{flaky}#fake?retries=1&backoff=0", "--problems", "1", "--n", "2",
                 "--cache", str(tmp_path / "c.duckdb")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: model 'fake@127.0.0.1:") and "\n" not in err
    assert main(["sweep", "--models", "http://x#", "--cache", str(tmp_path / "c.duckdb")]) == 2
    assert "URL[+URL...]#MODEL" in capsys.readouterr().err


@pytest.mark.parametrize("text, count", [("135M", 135_000_000), ("1.5B", 1_500_000_000), ("1.35e8", 135_000_000),
                                         ("135,000,000", 135_000_000), (" 12k ", 12_000), ("7", 7), ("2t", 2 * 10**12)])
def test_a_parameter_count_reads_as_people_write_it(text, count):
    from engine.models.ref import http_ref, parse_count
    assert parse_count(text) == count
    assert http_ref(f"http://h:1/v1#m?params={text.strip()}").source.endswith(f"params={text.strip()}")


@pytest.mark.parametrize("text", ["", "M", "lots", "0", "-5M", "0.4", "nan", "inf", "1e400", "5 M B"])
def test_a_parameter_count_that_is_none_is_refused(text):
    from engine.errors import ConfigError
    from engine.models.ref import parse_count, parse_spec
    with pytest.raises(ValueError):
        parse_count(text)
    with pytest.raises(ConfigError, match="params"):
        parse_spec(f"http://h:1/v1#m?params={text}")
