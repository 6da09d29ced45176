"""Sampling throughput: the engine against plain Hugging Face ``generate``, and against this machine's matmul rate.

    python bench/sampling.py [--problems 16] [--n 64] [--models arith-s,arith-xl] [--repeat 3] [--contention] [--device cuda]

All figures come from one run, side by side (this machine is noisy; ratios travel better than absolutes):
* engine: its sampling as the runner calls it (``engine_sample``: batched across problems, texts decoded), and
  ``engine.runner.run`` into a new cache (the same, graded and written to DuckDB);
* (a) ``model.generate(num_return_sequences=n)``, one prompt at a time, same prompts and settings;
* (b) a naive loop of single ``generate`` calls (on 2 problems x 8 samples: it is slow);
* the engine's FLOP/s (2 x matmul params per generated token) against a 1024 x 1024 fp32 matmul (on a GPU:
  8192 x 8192 in the model's dtype); on a CPU, samples that agree so far share one computed row, and the rows
  computed per generated token say how much of that work was done;
* ``--contention``: the engine with a competing CPU-bound process, at 2 threads and at the thread count
  ``engine.models.threads.pick_threads`` chooses with one core busy.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.cache import SampleCache  # noqa: E402
from engine.models import SamplingParams, load_model  # noqa: E402
from engine.models.threads import pick_threads  # noqa: E402
from engine.runner import run  # noqa: E402
from engine.tasks import get_task  # noqa: E402

BUSY = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True:\n    a @ a\n"


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def engine_sample(model, task, probs, sp, device=None, repeat: int = 1) -> tuple[float, int, int]:
    """The engine's sampling alone, as the runner calls it (the backend's ``generate_many`` on batches of every
    problem's rows: prefill, decode, texts), without a run's bookkeeping around it (two DuckDB openings of
    about 13 ms each, the writes, grading), which ``generate`` has no part of either. The fastest of
    ``repeat``, each from scratch (nothing kept for a top-up); its tokens, and the rows the decoder computed
    (on a CPU; shared histories make them fewer than the tokens)."""
    from engine.backends import open_backend
    from engine.models import prefix
    from engine.models.ref import resolve_model
    from engine.planning import resolve_params
    backend = open_backend(resolve_model(model), device=device)
    params = resolve_params(task, sp)
    reqs = [(backend.prompt(task, p, params), f"{task.name}/{p.id}", list(range(params.n))) for p in probs]
    per = max(1, backend.rows_per_batch(params) // params.n)  # problems a batch holds, as the runner fills it
    from engine.models import decode
    best, toks = None, 0
    for _ in range(repeat):
        prefix.forget(backend.lm.model)
        decode.ROWS_COMPUTED[0] = 0
        t0 = time.perf_counter()
        outs = [o for i in range(0, len(reqs), per) for o in backend.generate_many(reqs[i:i + per], params)]
        sync(device)
        secs = time.perf_counter() - t0
        best = min(best or secs, secs)
        toks = sum(r.completion_tokens for o in outs for r in o)
    return best, toks, decode.ROWS_COMPUTED[0]


def matmul_gflops(device="cpu", dtype=torch.float32, reps: int = 10) -> float:
    n = 8192 if device == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    a @ a
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ a
    sync(device)
    return reps * 2 * n ** 3 / (time.perf_counter() - t0) / 1e9


def engine_run(model, task, probs, sp, tmp, device=None, repeat: int = 1) -> tuple[float, int]:
    """The fastest of ``repeat`` runs, each into a new cache (the same samples: seeded), each from scratch:
    without what the last one kept in memory for a top-up (engine/models/prefix.py)."""
    from engine.models import load_model, prefix
    best = None
    for _ in range(repeat):
        prefix.forget(load_model(model, device=device).model)
        cache = SampleCache(Path(tmp) / f"{model}-{time.perf_counter_ns()}.duckdb")
        t0 = time.perf_counter()
        run(model, task, probs, sp, cache, device=device)
        secs = time.perf_counter() - t0
        best = min(best or secs, secs)
    return best, int(cache.samples().completion_tokens.sum())


def peak_gflops(device="cpu", dtype=torch.float32, repeat: int = 1) -> float:
    """The best of ``repeat`` matmul measurements: like the engine's fastest run, the machine at its best."""
    return max(matmul_gflops(device, dtype) for _ in range(repeat))


def hf_generate(lm, task, probs, sp, per_call: int) -> tuple[float, int]:
    """Plain generate with ``per_call`` sequences a call (HF's own sampling, so different samples, same work)."""
    tok, model = lm.tokenizer, lm.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    toks, t0 = 0, time.perf_counter()
    with torch.inference_mode():
        for p in probs:
            ids = tok(task.prompt(p), return_tensors="pt", add_special_tokens=False)["input_ids"].to(model.device)
            for _ in range(sp.n // per_call):
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                     temperature=sp.temperature, top_p=None, top_k=None,
                                     max_new_tokens=sp.max_new_tokens, num_return_sequences=per_call,
                                     stop_strings=list(sp.stop), tokenizer=tok, pad_token_id=pad)
                new = out[:, ids.shape[1]:]
                toks += int((new != pad).sum())
    sync(model.device.type)
    return time.perf_counter() - t0, toks


def shared_rows(lm, task, probs, sp) -> float:
    """Batch rows the CPU decoder computes per generated token: samples with the same tokens so far share a row,
    so the FLOP/s above count 2 x params per generated token, not per row computed (1 would be no sharing)."""
    from engine.models import decode
    from engine.models.sampling import sample_many
    computed, real = [], decode._Step.__call__

    def counting(self, ids, pos, state, **kw):
        if isinstance(state, decode._State):  # a decode step, not a prompt's prefill
            computed.append(ids.shape[0])
        return real(self, ids, pos, state, **kw)
    decode._Step.__call__ = counting
    try:
        out = sample_many(lm, [(task.prompt(p), f"arith/{p.id}", list(range(sp.n))) for p in probs], sp)
    finally:
        decode._Step.__call__ = real
    return sum(computed) / sum(r.completion_tokens for o in out for r in o)


def check(a, task, probs, sp) -> None:
    """Batched decoding against generate, one prompt at a time, on this device and dtype."""
    from engine.models import decode, sample
    from engine.models.sampling import sample_many
    for name in a.models.split(","):
        lm = load_model(name, device=a.device)
        reqs = [(task.prompt(p), f"arith/{p.id}", list(range(16))) for p in probs[:4]]
        got = sample_many(lm, reqs, sp)
        real = decode.supports
        decode.supports = lambda model: False
        try:
            ref = [sample(lm, prompt, sp, idx, key, max_batch=16) for prompt, key, idx in reqs]
        finally:
            decode.supports = real
        same = sum(x.text == y.text for g, r in zip(got, ref) for x, y in zip(g, r))
        lp = max(abs(x.logprob - y.logprob) for g, r in zip(got, ref) for x, y in zip(g, r) if x.tokens == y.tokens)
        print(f"check {name} ({lm.model.dtype}): {same} of 64 texts as generate gives; "
              f"largest log-prob gap on equal tokens {lp:.1e}")
        if a.device != "cpu":  # off a CPU finished rows are counted every SYNC_EVERY steps: the same samples?
            reqs = [(task.prompt(p), f"arith/{p.id}", list(range(32))) for p in probs[:64]]
            every, decode.SYNC_EVERY = decode.SYNC_EVERY, 1
            try:
                each = sample_many(lm, reqs, sp)
            finally:
                decode.SYNC_EVERY = every
            lazy = sample_many(lm, reqs, sp)
            same = sum((x.text, x.finish) == (y.text, y.finish) for g, r in zip(each, lazy) for x, y in zip(g, r))
            print(f"check {name}: finished rows counted every {every} steps vs every step: {same} of "
                  f"{sum(map(len, each))} samples the same")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="arith-s,arith-xl")
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--contention", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--baseline-problems", type=int, default=None,
                    help="run baseline (a) on the first this many problems only (default: all)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="engine runs and matmul measurements; the fastest of each counts (this machine's speed "
                         "drifts by 10-20%% within minutes)")
    ap.add_argument("--check", action="store_true",
                    help="first compare the batched decoder with the generate path on 4 problems x 16 samples "
                         "(and, off a CPU, its lazy finish counting with counting every step on 64 x 32)")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    task = get_task("arith")
    probs = task.select(a.problems, [1, 2, 3, 4, 5])
    sp = SamplingParams(n=a.n, temperature=0.8, max_new_tokens=128, stop=task.stop)
    where = torch.cuda.get_device_name() if a.device == "cuda" else f"{torch.get_num_threads()} CPU thread(s)"
    first = load_model(a.models.split(",")[0], device=a.device)
    peak = peak_gflops(a.device, first.model.dtype, a.repeat)
    print(f"{where}; {'8192' if a.device == 'cuda' else '1024'}-square {first.model.dtype} matmul: {peak:.0f} GFLOP/s; "
          f"{a.problems} problems x {a.n} samples, T=0.8, max 128 new tokens; engine and matmul: the fastest of "
          f"{a.repeat}")
    if a.check:
        check(a, task, probs, sp)
    print(f"{'model':9s} {'path':38s} {'tokens/s':>9s} {'engine is':>10s} {'GFLOP/s':>8s} {'of matmul':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models.split(","):
            lm = load_model(name, device=a.device)
            run(name, task, probs[:2], sp.with_n(8), SampleCache(Path(tmp) / "warm.duckdb"), device=a.device)
            flops_tok = 2 * lm.spec.matmul_params
            secs, toks = engine_run(name, task, probs, sp, tmp, a.device, a.repeat)
            eng = toks / secs
            rows = [("engine (batched across problems)", eng)]
            s_a, t_a = hf_generate(lm, task, probs[:a.baseline_problems], sp, per_call=a.n)
            rows.append((f"(a) generate(num_return_sequences={a.n})", t_a / s_a))
            s_b, t_b = hf_generate(lm, task, probs[:2], sp.with_n(8), per_call=1)
            rows.append(("(b) single generate calls (2 x 8)", t_b / s_b))
            for label, rate in rows:
                print(f"{name:9s} {label:38s} {rate:9.0f} {eng / rate:9.1f}x {rate * flops_tok / 1e9:8.1f} "
                      f"{rate * flops_tok / 1e9 / peak:8.1%}")
            if a.device == "cpu":
                print(f"{name:9s} {'rows the engine computed per token':38s} {shared_rows(lm, task, probs, sp):9.2f}")
        if a.contention:
            name = a.models.split(",")[-1]
            busy = subprocess.Popen([sys.executable, "-c", BUSY])
            try:
                time.sleep(2)
                saved = {v: os.environ.pop(v) for v in ("OMP_NUM_THREADS", "TTC_THREADS") if v in os.environ}
                auto = pick_threads(load=1.0)  # what the engine picks on its own with one core busy
                os.environ.update(saved)
                for threads in (2, auto):
                    os.environ["TTC_THREADS"] = str(threads)
                    secs, toks = engine_run(name, task, probs[:4], sp, tmp)
                    print(f"{name:9s} {'beside a busy core, ' + str(threads) + ' thread(s)':38s} {toks / secs:9.0f}")
            finally:
                busy.kill()
                os.environ.pop("TTC_THREADS", None)


if __name__ == "__main__":
    main()
