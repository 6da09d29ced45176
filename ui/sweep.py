"""A sweep running in a background thread, so the page stays live and Stop works.

The thread calls ``engine.runner.run`` model after model; the page polls the
job from a fragment. ``stop()`` sets the runner's ``stop_event``: it finishes
the batch in flight and returns, and everything generated so far is cached.
"""
from __future__ import annotations

import math
import threading
import traceback
from dataclasses import dataclass, field

from engine.errors import EngineError
from engine.runner import Progress, RunResult, run


@dataclass
class SweepJob:
    experiment: object                     # engine.experiment.Experiment: what to fill
    cache: object
    device: str
    stop_event: threading.Event = field(default_factory=threading.Event)
    current: str | None = None
    progress: Progress | None = None
    results: list[RunResult] = field(default_factory=list)
    error: str | None = None
    failed: list[str] = field(default_factory=list)   # models whose run ended in an error
    done: bool = False
    acknowledged: bool = False
    thread: threading.Thread | None = None

    def start(self) -> "SweepJob":
        self.thread = threading.Thread(target=self._work, name="ttc-sweep", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    def _work(self) -> None:
        errors = []
        try:
            exp = self.experiment
            task, problems = exp.load_task(), exp.selected()
            for ref in exp.models:
                if self.stop_event.is_set():
                    break
                self.current, self.progress = ref.name, None
                # one model failing (a server down, a model that will not load) does not keep the others from
                # being sampled: each says what went wrong, and what the others sampled is cached
                try:
                    self.results.append(run(ref, task, problems, exp.params, self.cache,
                                            device=self.device, on_progress=self._on_progress,
                                            stop_event=self.stop_event))
                except EngineError as e:
                    self.failed.append(ref.name)
                    errors.append(str(e))
        except EngineError as e:
            errors.append(str(e))
        except Exception as e:  # a bug: keep the traceback in the server log, tell the user briefly
            traceback.print_exc()
            errors.append(f"unexpected {type(e).__name__}: {e}")
        finally:
            self.error = "\n\n".join(errors) or None
            self.current, self.done = None, True

    @property
    def models(self) -> list:
        return list(self.experiment.models)

    def _on_progress(self, p: Progress) -> None:
        self.progress = p

    def status_line(self) -> str:
        p = self.progress
        if p is None:
            return f"{self.current or ''}: loading model and checking the cache…"
        eta = "–" if math.isnan(p.eta_s) else f"{p.eta_s:.0f} s"
        return (f"{self.current}: {p.done:,}/{p.total:,} new samples ({p.cached:,} cached) · "
                f"{p.rate:.1f} samples/s · ETA {eta}")

    def fraction(self) -> float:
        """Overall progress across models (each model an equal share)."""
        n = max(len(self.models), 1)
        finished = len(self.results)
        p = self.progress
        part = (p.done / p.total) if (p and p.total and self.current) else 0.0
        return min(1.0, (finished + part) / n)

    def summary(self) -> str:
        gen = sum(r.generated for r in self.results)
        cached = sum(r.cached for r in self.results)
        secs = sum(r.elapsed_s for r in self.results)
        word = "Stopped" if self.stopped else "Failed" if self.error and not self.results else \
            "Done, with errors" if self.error else "Done"
        failed = f" {', '.join(self.failed)} failed (below)." if self.failed else ""
        return f"{word}: generated {gen:,} samples in {secs:.0f} s ({cached:,} were already cached).{failed}"
