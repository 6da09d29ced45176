"""How many threads torch should use for in-process sampling on CPU.

Oversubscription is what hurts on a small machine: two processes with two threads each on two cores ran
sampling 10-15x slower than one thread each. So the count follows the cores that are free now (the 1-minute
load average says how many are busy) shared among this run's worker processes, unless the user set it.
"""
from __future__ import annotations

import math
import os


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pick_threads(workers: int = 1, load: float | None = None) -> int:
    """Threads per worker: ``TTC_THREADS`` or ``OMP_NUM_THREADS`` when set, else the free cores / workers
    (at least 1). ``load`` is the number of busy cores (default: the 1-minute load average)."""
    for var in ("TTC_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").strip().isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    n = cores()
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    free = max(1.0, n - load)
    return max(1, min(n // max(1, workers), math.floor(free / max(1, workers) + 0.5)))
