"""Fill the cache: generate only the samples that are missing, batch by batch."""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence

from .backends import open_backend
from .cache import SampleCache
from .errors import ConfigError
from .models import SamplingParams
from .models.ref import ModelRef, resolve_model
from .planning import missing, resolve_params
from .tasks import Problem, Task
from .tasks.prompts import render


@dataclass
class Progress:
    done: int            # samples generated in this run so far
    total: int           # samples this run has to generate
    cached: int          # samples that were already in the cache
    elapsed_s: float
    model: str

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float:
        return (self.total - self.done) / self.rate if self.rate > 0 else float("nan")


def bar_updater(bar) -> Callable[[Progress], None]:
    """An ``on_progress`` callback that drives a tqdm bar (its total is known only once the run plans)."""
    def update(p: Progress) -> None:
        bar.total = p.total
        bar.update(p.done - bar.n)
    return update


PROBE_TTL_S = 30.0  # a matmul rate measured this recently still stands (runs of a sweep follow each other closely)
_probe: dict = {}


def machine_conditions() -> dict:
    """How busy and how fast this machine is right now: 1-minute load average, CPU count, and the FP32 matmul
    rate of a 512 x 512 product (about 20 ms, so measured at most every ``PROBE_TTL_S``), recorded with each run
    so a page can flag timings taken under load."""
    import os

    import torch
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if time.monotonic() - _probe.get("at", -PROBE_TTL_S) >= PROBE_TTL_S:
        a = torch.randn(512, 512)
        a @ a  # warm-up
        t0, reps = time.perf_counter(), 8
        for _ in range(reps):
            a @ a
        _probe.update(at=time.monotonic(), gflops=reps * 2 * 512 ** 3 / (time.perf_counter() - t0) / 1e9)
    return {"load_avg": load, "cpus": os.cpu_count(), "matmul_gflops": _probe["gflops"]}


@dataclass
class RunResult:
    model: str
    model_fp: str
    config_key: str
    generated: int
    cached: int
    elapsed_s: float
    stopped: bool


TOKENS_PER_BATCH = 2 ** 18  # new tokens a batch may generate at most (rows x max_new_tokens)
# On a GPU a decode step of a small model costs its kernel launches, about as much for 16,384 rows as for 2,048:
# capped at 2,048 rows (128 new tokens), 256 problems x 64 samples of arith-xl took 7.7 s on an H200, in one
# batch 2.1 s. A batch there may hold 8 times the tokens (the backend's memory and FLOPs caps still hold).
GPU_TOKENS_PER_BATCH = 8 * TOKENS_PER_BATCH


def tokens_per_batch(device: str) -> int:
    """New tokens one batch may generate on ``device`` (a batch is the unit of progress, saving and Stop)."""
    return GPU_TOKENS_PER_BATCH if str(device).startswith("cuda") else TOKENS_PER_BATCH

# a backend that does not size its batches (a server's): 64 rows and 8,192 new tokens at most, so a long
# generation on a remote server still saves and can stop every couple of minutes
DEFAULT_ROWS, DEFAULT_TOKENS = 64, 8192


def _batches(problems: Sequence[Problem], todo: dict, rows: int, across: bool):
    """Lists of (problem, sample indices) of at most ``rows`` rows in all: many problems per batch when the
    backend decodes them together (``across``), else one problem's chunk."""
    batch, size = [], 0
    for p in problems:
        left = todo[p.id]
        while left:
            take = left[:rows - size]
            batch.append((p, take))
            size += len(take)
            left = left[len(take):]
            if size == rows or not across:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def run(model: ModelRef | str, task: Task, problems: Sequence[Problem], params: SamplingParams,
        cache: SampleCache, max_batch: int | None = None, device: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        stop_event: threading.Event | None = None) -> RunResult:
    """Top up the cache to ``params.n`` samples for each problem.

    Each generated batch is written in its own transaction before the next one
    starts, so an interrupted run loses at most the batch in flight and a
    rerun resumes where it stopped. ``stop_event`` ends the run after the
    current batch. A batch holds at most ``max_batch`` rows (default: what the backend picks for this model
    and device) and ``tokens_per_batch(device)`` new tokens; a backend with ``generate_many`` fills it with the
    rows of many problems.
    """
    params = resolve_params(task, params)
    if max_batch is not None and (not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1):
        raise ConfigError(f"the batch size must be a whole number of at least 1, got {max_batch!r}")
    backend = open_backend(resolve_model(model), device=device)
    spec = backend.spec
    # a backend with a tokenizer here formats prompts itself (chat templates); others get the plain prompt
    prompt_of = getattr(backend, "prompt", None) or (lambda t, p, sp: render(t, p, sp.prompt_format))
    fits = getattr(backend, "check_prompt", None)  # optional: a backend that knows its context refuses up front
    # a batch is the unit of progress, saving and Stop: long generations get fewer rows per batch, so a
    # 4,096-token run still saves and can stop every couple of minutes
    many = getattr(backend, "generate_many", None)
    if max_batch is None:
        max_batch = backend.rows_per_batch(params) if hasattr(backend, "rows_per_batch") else \
            max(1, min(DEFAULT_ROWS, DEFAULT_TOKENS // max(1, params.max_new_tokens)))
    max_batch = min(max_batch, max(1, tokens_per_batch(spec.device) // max(1, params.max_new_tokens)))
    run_id = uuid.uuid4().hex[:12]
    done, stopped = 0, False
    with cache.reading(writes=True):  # the bookkeeping up to the first batch: one opening of the file, not four
        cache.put_model(spec)
        cache.put_config(params)
        todo = missing(cache, spec.fingerprint, task, problems, params)
        total = sum(len(v) for v in todo.values())
        cached = len(problems) * params.n - total
        if total:
            prompt_of(task, problems[0], params)  # a format the model cannot take fails before anything starts
        if fits:
            for p in problems:
                if todo[p.id]:
                    fits(prompt_of(task, p, params), params, p.id)
        t0 = time.perf_counter()
        if total:
            cache.start_run(run_id, spec.fingerprint, task.name, params.key(), len(problems), params.n,
                            spec.device, **machine_conditions())
    status, recorded = "error", False
    try:
        batches = list(_batches(problems, todo, max_batch, many is not None))
        for i, batch in enumerate(batches):
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            requests = [(prompt_of(task, p, params), f"{task.name}/{p.id}", idx) for p, idx in batch]
            if many is not None:
                outs = many(requests, params)
            else:
                outs = [backend.generate(prompt, params, idx, prompt_key=key, max_batch=max_batch)
                        for prompt, key, idx in requests]
            rows, key = [], params.key()
            for (p, _), raws in zip(batch, outs):
                graded: dict[str, tuple] = {}  # samples of one problem often repeat a text: grade it once
                for r in raws:
                    if r.text not in graded:
                        graded[r.text] = task.grade(p, r.text)
                    answer, correct = graded[r.text]
                    rows.append(dict(model_fp=spec.fingerprint, task=task.name, problem_id=p.id,
                                     config_key=key, idx=r.index, text=r.text, answer=answer,
                                     correct=bool(correct), prompt_tokens=r.prompt_tokens,
                                     completion_tokens=r.completion_tokens, logprob=r.logprob,
                                     prefill_s=r.prefill_s, decode_s=r.decode_s, batch_size=r.batch_size,
                                     finish=r.finish, device=spec.device))
            done += len(rows)
            if i + 1 < len(batches):
                cache.write_samples(rows)
            else:  # the last batch and the run's record: one opening of the file, not two (~20 ms)
                with cache.reading(writes=True):
                    cache.write_samples(rows)
                    cache.finish_run(run_id, done, "done")
                recorded = True
            if on_progress:
                on_progress(Progress(done, total, cached, time.perf_counter() - t0, spec.name))
        status = "stopped" if stopped else "done"
    except KeyboardInterrupt:
        status = "stopped"  # Ctrl-C is the user stopping the run, not an error; finished batches are kept
        raise
    finally:
        if hasattr(backend, "finish"):  # optional: a backend lets go of what it kept between batches
            backend.finish()
        if total and not recorded:
            cache.finish_run(run_id, done, status)
    return RunResult(spec.name, spec.fingerprint, params.key(), done, cached, time.perf_counter() - t0, stopped)


def probe(exp, cache: SampleCache, device: str | None = None, samples: int = 8,
          stop_event: threading.Event | None = None) -> None:
    """Measure the speed of every model of ``exp`` that this cache has never timed: ``samples`` samples of
    its first selected problem (they are kept: the sweep that follows needs them anyway)."""
    task, first = exp.load_task(), exp.selected()[:1]
    for ref in exp.models:
        if cache.throughput(ref.fingerprint) is None:
            run(ref, task, first, exp.params.with_n(min(samples, exp.params.n)), cache, device=device,
                stop_event=stop_event)
