"""``python -m engine serve``: the engine's models behind an OpenAI-compatible completions API.

``GET /v1/models`` and ``POST /v1/completions`` (FastAPI + uvicorn), so other tools (the ``openai`` client,
evaluation harnesses, the engine's own ``http`` backend on another machine) can reach the ladder.

Which samples a request gets: choice ``j`` is sample index ``sample_indices[j]`` (an extension field; without
it, indices ``0..n-1``) of the prompt under (``seed``, ``prompt_key``, the sampling fields), drawn by the
in-process transformers backend with its per-index RNG (seed = sha256(seed|prompt_key|index)). So asking for
``n=8`` returns the same first four choices as ``n=4``, and a client that sends the engine's prompt key
(``prompt_key``, default "") and indices gets exactly the samples an in-process sweep makes.

``/v1/models`` reports each model's parameter counts, shape and weights fingerprint, and
``"sample_indices": true`` so the ``http`` backend knows it may ask for many indices in one request.
``logprobs`` (any value) returns each chosen token and its log-probability under the model at T=1;
``top_logprobs`` is null (only the sampled token's log-probability is computed). As in OpenAI's API,
``max_tokens`` defaults to 16 and ``temperature`` to 1; ``seed`` defaults to 0. Requests to one model run one
at a time (on a CPU, concurrent ones only slow each other down).
"""
# no `from __future__ import annotations`: FastAPI reads the request model's annotation at runtime
import hmac
import itertools
import os
import socket
import threading
import time
import uuid

from .errors import EngineError

MAX_REQUEST_N = 1024


def make_app(models: list[str], device: str | None = None, api_key: str | None = None):
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel

    from .backends import open_backend
    from .models.params import SamplingParams
    from .models.ref import resolve_model

    served = {}
    for m in models:
        ref = resolve_model(m)
        # one lock per model: concurrent generate() calls on a CPU only slow each other down
        served[ref.name] = (open_backend(ref, device), threading.Lock())

    class CompletionRequest(BaseModel):
        model: str
        prompt: str | list[str]
        n: int | None = None
        max_tokens: int | None = None
        temperature: float | None = None
        top_p: float | None = None
        seed: int | None = None
        logprobs: int | None = None
        stop: str | list[str] | None = None
        stream: bool | None = None
        echo: bool | None = None
        sample_indices: list[int] | None = None  # extension: which sample indices the choices are
        prompt_key: str = ""                     # extension: the engine's key of this prompt (seeds its samples)

    app = FastAPI(title="ttc engine", docs_url=None, redoc_url=None)

    def error(status: int, message: str, param: str | None = None):
        kind = {401: "authentication_error", 404: "not_found_error"}.get(status, "invalid_request_error")
        return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)

    @app.exception_handler(RequestValidationError)
    def bad_request(request, exc):  # OpenAI answers 400 with one message, not FastAPI's 422 list
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e.get("loc", ())[1:])
        return error(400, f"{where}: {e.get('msg')}", where or None)

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if api_key is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return error(401, "missing or wrong API key (send Authorization: Bearer <key>)")
        return await call_next(request)

    @app.get("/v1/models")
    def list_models():
        data = []
        for name, (b, _) in served.items():
            s = b.spec
            data.append({"id": name, "object": "model", "created": 0, "owned_by": "ttc-engine",
                         "params": s.params, "matmul_params": s.matmul_params, "n_layers": s.n_layers,
                         "d_model": s.d_model, "dtype": s.dtype, "revision": s.fingerprint, "device": s.device,
                         "sample_indices": True})
        return {"object": "list", "data": data}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest):
        if req.model not in served:
            return error(404, f"model {req.model!r} is not served here; serving {', '.join(served)}", "model")
        if req.stream or req.echo:
            return error(400, "stream and echo are not supported", "stream" if req.stream else "echo")
        prompt = req.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                return error(400, "send one prompt per request (a string)", "prompt")
            prompt = prompt[0]
        indices = req.sample_indices if req.sample_indices is not None else list(range(req.n or 1))
        if not indices or len(indices) > MAX_REQUEST_N or (req.n is not None and req.n != len(indices)):
            return error(400, f"n must be 1..{MAX_REQUEST_N} and equal len(sample_indices) when both are given", "n")
        if len(set(indices)) != len(indices) or min(indices) < 0:
            return error(400, "sample_indices must be distinct non-negative integers", "sample_indices")
        try:
            params = SamplingParams(n=len(indices), temperature=1.0 if req.temperature is None else req.temperature,
                                    top_p=1.0 if req.top_p is None else req.top_p,
                                    max_new_tokens=16 if req.max_tokens is None else req.max_tokens,
                                    stop=req.stop or (), seed=req.seed or 0)
        except EngineError as e:
            return error(400, str(e))
        backend, lock = served[req.model]
        check = getattr(backend, "check_prompt", None)  # a prompt past the model's positions is a 400, not a 500
        try:
            if check:
                check(prompt, params, req.prompt_key or "prompt")
        except EngineError as e:
            return error(400, str(e), "prompt")
        with lock:
            raws = backend.generate(prompt, params, indices, prompt_key=req.prompt_key)
        tok = getattr(getattr(backend, "lm", None), "tokenizer", None)
        choices = []
        for j, r in enumerate(raws):
            lp = None
            if req.logprobs is not None and r.tokens is not None:
                pieces = [tok.decode([t]) if tok is not None else str(t) for t in r.tokens]
                lp = {"tokens": pieces, "token_logprobs": r.token_logprobs, "top_logprobs": None,
                      "text_offset": [0, *itertools.accumulate(len(p) for p in pieces)][:len(pieces)]}
            # vLLM's convention: stop_reason names the stop string; None after an end-of-sequence token
            stop_reason = None
            if r.finish == "stop":
                full = tok.decode(r.tokens or [], skip_special_tokens=True) if tok is not None else ""
                stop_reason = next((s for s in params.stop if s in full), params.stop[0])
            choices.append({"index": j, "text": r.text, "logprobs": lp, "stop_reason": stop_reason,
                            "finish_reason": "length" if r.finish == "length" else "stop"})
        completion = sum(r.completion_tokens for r in raws)
        prompt_tokens = raws[0].prompt_tokens if raws else 0
        return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
                "model": req.model, "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                          "total_tokens": prompt_tokens + completion}}

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def elsewhere(path: str):  # chat.completions and the like: one OpenAI-style message, not a bare 404
        return error(404, f"/{path} is not served here: only GET /v1/models and POST /v1/completions (text "
                          "completions; no chat endpoint)")

    return app


def serve(models: list[str], host: str = "127.0.0.1", port: int = 8000, device: str | None = None,
          api_key_env: str | None = None) -> None:
    import uvicorn
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise EngineError(f"--api-key-env {api_key_env}: that environment variable is not set or empty")
    if not 0 < port < 65536:
        raise EngineError(f"--port must be in 1..65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:  # uvicorn would log a traceback-like error; say it in one line first
            s.bind((host, port))
        except OSError as e:
            raise EngineError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    app = make_app(models, device, api_key)
    print(f"serving {', '.join(models)} at http://{host}:{port}/v1 (OpenAI completions"
          f"{', key from $' + api_key_env if api_key else ''}); Ctrl-C stops", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
