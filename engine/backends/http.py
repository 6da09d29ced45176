"""Any server that speaks the OpenAI completions API: vLLM, SGLang, TGI, llama.cpp, Ollama, ``engine serve``.

A model on a server is named by a spec (commas would split ``--models``, so several endpoints join with +)::

    URL[+URL...]#MODEL[?option=value&...]
    http://gpu1:8000/v1+http://gpu2:8000/v1#meta-llama/Llama-3.2-1B?revision=2024-09&params=1.24e9&key_env=VLLM_KEY

URL is the API base (what the ``openai`` client calls ``base_url``); MODEL the server's model id. Options:
``revision`` (part of the cache key: the weights are not here to hash, so change it when the server's weights
change), ``params`` (parameter count for FLOPs when the server does not report one), ``key_env`` (the NAME of
the environment variable holding the API key; the key is sent as a Bearer header and never stored or
printed), ``name`` (what reports call it; default MODEL@host:port), ``concurrency`` (requests in flight, default 8),
``timeout`` (seconds per request, default 120), ``retries`` (default 4, with exponential backoff from
``backoff`` seconds, default 0.5), ``mode``:

* ``indices`` (auto-detected when ``/v1/models`` says ``"sample_indices": true``, as ``engine serve`` does):
  one request per endpoint with ``n`` samples, naming their indices and the prompt key in extension fields,
  so sample i is exactly the in-process backend's sample i;
* ``seed`` (every other server): one request per sample, ``n=1``, seeded from (seed, prompt key, index),
  so sample i depends only on its index on any server that honours per-request seeds (a server with prefix
  caching prefills the shared prompt once anyway).

Timings are the wall times the client sees: a sample's device time is its request's time shared by the
samples in flight. FLOPs come from a parameter count (given or reported) and are marked estimated in the
model's ``family``.
"""
from __future__ import annotations

import http.client
import itertools
import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from ..errors import ModelError
from ..models.loader import ModelSpec
from ..models.ref import HttpSpec, ModelRef, http_ref, parse_spec  # noqa: F401 (http_ref: re-exported)
from ..models.sampling import RawSample, sample_seed
from . import register


class _Retry(Exception):
    """An answer worth asking again for: timeout, 429, 5xx, malformed or short."""


class _Refused(ModelError):
    """The server said no (4xx other than 429): asking again would not help."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class HttpBackend:
    def __init__(self, ref: ModelRef, device: str | None = None):
        self.ref, self.cfg = ref, parse_spec(ref.source)
        key = None
        if self.cfg.key_env:
            key = os.environ.get(self.cfg.key_env)
            if not key:
                raise ModelError(f"model {ref.name!r}: the environment variable {self.cfg.key_env} (key_env) is not "
                                 "set or empty")
        self._headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        self._next_url = itertools.cycle(self.cfg.urls)
        self._url_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.cfg.concurrency, thread_name_prefix="http-backend")
        info = {}
        for url in self.cfg.urls:  # every endpoint must serve the model: fail now, not mid-sweep
            info = self._model_info(url) or info
        params = self.cfg.params or info.get("params")
        if not params:
            raise ModelError(f"model {ref.name!r}: {self.cfg.urls[0]} reports no parameter count; add params=N to "
                             "the spec (e.g. ...#MODEL?params=7e9) so FLOPs can be estimated")
        self.indices = self.cfg.mode == "indices" or (self.cfg.mode == "auto" and info.get("sample_indices") is True)
        self.spec = ModelSpec(
            name=ref.name, source=ref.source, params=int(params),
            matmul_params=int(self.cfg.params or info.get("matmul_params") or params),
            family=f"http (FLOPs estimated from the {'given' if self.cfg.params else 'server-reported'} "
                   "parameter count)",
            dtype=str(info.get("dtype") or "unknown"), device="http", fingerprint=ref.fingerprint,
            n_layers=info.get("n_layers"), d_model=info.get("d_model"), training=None)

    # ---- one request, with retries ------------------------------------------------
    def _request(self, url: str, body: dict | None, check):
        """``check(json)`` validates an answer (raising ``_Retry``); after ``retries`` more tries: one EngineError."""
        last, asked_wait = "", 0.0
        for attempt in range(self.cfg.retries + 1):
            if attempt:  # a server's Retry-After (capped) wins over the backoff when longer
                time.sleep(max(self.cfg.backoff * 2 ** (attempt - 1), asked_wait))
            req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                         headers=self._headers, method="GET" if body is None else "POST")
            try:
                with urllib.request.urlopen(req, timeout=self.cfg.timeout) as r:
                    raw = r.read()
                try:
                    data = json.loads(raw)
                except ValueError:
                    raise _Retry(f"malformed JSON ({raw[:60]!r})") from None
                return check(data)
            except urllib.error.HTTPError as e:
                msg = _server_message(e)
                if e.code == 429 or e.code >= 500:
                    last = f"HTTP {e.code} {msg}".strip()
                    wait = (e.headers.get("Retry-After") or "") if e.headers else ""
                    asked_wait = min(float(wait), 30.0) if wait.isdigit() else 0.0
                    continue
                hint = ("; the server wants an API key: add ?key_env=NAME to the model's address, NAME being the "
                        "environment variable that holds it" if e.code in (401, 403) and not self.cfg.key_env else "")
                raise _Refused(f"model {self.ref.name!r}: {url} answered HTTP {e.code}: {msg or e.reason}{hint}",
                               e.code) from None
            except _Retry as e:
                last = str(e)
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as e:
                reason = getattr(e, "reason", e)
                last = "timed out" if isinstance(reason, TimeoutError) else f"connection failed ({reason})"
        tries = self.cfg.retries + 1
        raise ModelError(f"model {self.ref.name!r}: {url} failed {'once' if tries == 1 else f'{tries} times'} "
                         f"(last: {last})"
                         + ("; nothing from this batch was cached, rerun to resume" if body is not None else ""))

    def _model_info(self, url: str) -> dict:
        def check(data):
            models = data.get("data") if isinstance(data, dict) else None
            if not isinstance(models, list):
                raise _Retry("malformed /models answer")
            for m in models:
                if isinstance(m, dict) and m.get("id") == self.cfg.model:
                    return m
            ids = ", ".join(str(m.get("id")) for m in models if isinstance(m, dict))
            raise ModelError(f"model {self.ref.name!r}: {url} does not serve {self.cfg.model!r} (it serves: "
                             f"{ids or 'nothing'})")
        try:
            return self._request(f"{url}/models", None, check)
        except _Refused as e:
            if e.code == 404:  # a server without /models: trust the spec
                return {}
            raise

    # ---- sampling --------------------------------------------------------------------
    def generate(self, prompt, params, indices, prompt_key, max_batch=64):
        indices = list(indices)
        if not indices:
            return []
        body = {"model": self.cfg.model, "prompt": prompt, "max_tokens": params.max_new_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "logprobs": 1}
        if params.stop:
            body["stop"] = list(params.stop)
        if self.indices:
            per = math.ceil(len(indices) / len(self.cfg.urls))
            jobs = [(chunk, {**body, "n": len(chunk), "seed": params.seed, "sample_indices": chunk,
                             "prompt_key": prompt_key})
                    for chunk in (indices[i:i + per] for i in range(0, len(indices), per))]
        else:  # 31 bits: llama.cpp and others take 32-bit seeds
            jobs = [([i], {**body, "n": 1, "seed": sample_seed(params.seed, prompt_key, i) & 0x7FFFFFFF})
                    for i in indices]
        in_flight = min(len(jobs), self.cfg.concurrency)
        futures = [self._pool.submit(self._job, chunk, b, in_flight) for chunk, b in jobs]
        try:
            return [s for f in futures for s in f.result()]
        except BaseException:
            for f in futures:  # all or nothing: the caller writes a batch only when every sample came back
                f.cancel()
            raise

    def _job(self, chunk, body, in_flight) -> list[RawSample]:
        with self._url_lock:
            url = next(self._next_url)
        t0 = time.perf_counter()
        parsed = self._request(f"{url}/completions", body, lambda d: _parse(d, len(chunk), bool(body.get("stop"))))
        wall, share = time.perf_counter() - t0, max(1, in_flight // len(self.cfg.urls))
        return [RawSample(index=idx, text=text, prompt_tokens=prompt_tokens, completion_tokens=n_tok, logprob=lp,
                          prefill_s=0.0, decode_s=wall, batch_size=len(chunk) * share, finish=finish,
                          token_logprobs=lps)
                for idx, (text, prompt_tokens, n_tok, lp, finish, lps) in zip(chunk, parsed)]


def _parse(data, n: int, has_stop: bool) -> list[tuple]:
    """Per choice in index order (text, prompt tokens, completion tokens, log-prob, finish, token log-probs) of
    a completions answer, or ``_Retry`` saying what is wrong with it."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        raise _Retry("malformed answer (no choices list)")
    if len(choices) != n:
        raise _Retry(f"{len(choices)} choices for n={n}")
    try:
        if all(isinstance(c.get("index"), int) for c in choices):
            choices = sorted(choices, key=lambda c: c["index"])
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        out = []
        for c in choices:
            if not isinstance(c.get("text"), str) or not c.get("finish_reason"):
                raise _Retry("malformed answer (a choice without text or finish_reason)")
            lps = (c.get("logprobs") or {}).get("token_logprobs")
            if isinstance(lps, list):
                lps = [float(x) for x in lps if x is not None]
                n_tok, lp = len(lps), sum(lps)
            else:  # no logprobs offered: share the usage count, log-probability unknown
                lps, n_tok, lp = None, int(usage.get("completion_tokens") or 0) // n, float("nan")
            if c["finish_reason"] == "length":
                finish = "length"
            elif "stop_reason" in c:  # vLLM's convention: None after an end-of-sequence token
                finish = "stop" if isinstance(c["stop_reason"], str) else "eos"
            else:
                finish = "stop" if has_stop else "eos"
            out.append((c["text"], prompt_tokens, n_tok, lp, finish, lps))
        return out
    except (AttributeError, TypeError, ValueError) as e:
        raise _Retry(f"malformed answer ({type(e).__name__})") from None


def _server_message(e: urllib.error.HTTPError) -> str:
    """The server's own one-line reason (OpenAI, FastAPI or plain text bodies)."""
    try:
        body = e.read()[:2000].decode("utf-8", "replace")
    except Exception:
        return ""
    try:
        d = json.loads(body)
        msg = (d.get("error") or {}).get("message") if isinstance(d.get("error"), dict) else d.get("error") or d.get("detail")
    except (ValueError, AttributeError):
        msg = body
    return " ".join(str(msg or "").split())[:300]


register("http")(HttpBackend)
