"""``Experiment``: one frozen, hashable value that says what to measure.

Models (resolved refs), the task and which of its problems, how to sample
(``SamplingParams``, with the task's stop strings resolved once), which
selection strategies to compare, and the cost assumptions. Pages build it from
widgets and pass it whole to ``st.cache_data``; the CLI builds it from flags;
the engine (runner, analysis, planning) consumes it. Like vLLM's
``SamplingParams``, it is the one config that flows from input to cache.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

from . import registry, scorers, strategies
from .compute import CostModel
from .errors import EngineError
from .models.params import SamplingParams
from .models.ref import ModelRef
from .planning import resolve_params
from .tasks import Problem, Task


@dataclass(frozen=True)
class Experiment:
    models: tuple[ModelRef, ...]
    task: str                                  # built-in task, dataset path, or uploaded dataset's file name
    params: SamplingParams
    problems: int | None = None                # how many (balanced across levels); None: all
    levels: tuple[int, ...] = ()               # () means every level
    strategies: tuple[str, ...] = ("oracle",)  # canonical specs, e.g. "best_of_n:orm"
    cost: CostModel = field(default_factory=CostModel)
    datasets: str | None = None                # folder of uploaded datasets and added models (the app's root)

    @classmethod
    def build(cls, models: Sequence[ModelRef | str], task: str = "arith", params: SamplingParams | None = None,
              problems: int | None = None, levels: Sequence[int] = (), strategies: Sequence[str] = ("oracle",),
              cost: CostModel | None = None, datasets: str | None = None) -> "Experiment":
        """Resolve model names, the task's stop strings and strategy aliases; errors say what is wrong."""
        if problems is not None and problems < 1:
            raise EngineError(f"the number of problems must be at least 1, got {problems}")
        refs = _distinct(m if isinstance(m, ModelRef) else registry.model_ref(m, datasets) for m in models)
        t = registry.load_task(task, datasets)
        return cls(refs, task, resolve_params(t, params or SamplingParams()), problems,
                   tuple(int(x) for x in levels), _canonical(strategies), cost or CostModel(), datasets)

    @classmethod
    def shipped(cls) -> "Experiment | None":
        """What the shipped sweeps hold (``engine.shipped``): every shipped model, all problems, their sampling
        settings; None where nothing ships."""
        from .models.loader import list_shipped
        from .shipped import manifest
        man = manifest()
        if not man or not list_shipped():
            return None
        params = SamplingParams(n=int(man["params"]["n"]), temperature=man["params"]["temperature"])
        return cls.build(list_shipped(), man["task"], params)

    def replace(self, **changes) -> "Experiment":
        if "strategies" in changes:
            changes["strategies"] = _canonical(changes["strategies"])
        if "models" in changes:
            changes["models"] = _distinct(m if isinstance(m, ModelRef) else registry.model_ref(m, self.datasets)
                                          for m in changes["models"])
        return dataclasses.replace(self, **changes)

    def load_task(self) -> Task:
        return registry.load_task(self.task, self.datasets)

    def selected(self) -> list[Problem]:
        """The problems measured: ``problems`` of them, balanced across ``levels`` (see ``Task.select``)."""
        task = self.load_task()
        out = task.select(self.problems, list(self.levels) or None)
        if not out:
            raise EngineError(f"no problems in task {task.name!r} at levels {list(self.levels)}")
        return out

    def model(self, name: str) -> ModelRef:
        for m in self.models:
            if m.name == name:
                return m
        raise EngineError(f"model {name!r} is not part of this experiment")


def _canonical(specs: Sequence[str]) -> tuple[str, ...]:
    """Specs with aliases resolved and duplicates dropped; an unknown strategy or scorer fails here, early."""
    out = []
    for s in specs:
        strat = strategies.get(s)
        if strat.scorer:
            scorers.get(strat.scorer)  # opens nothing yet: a learned scorer loads its model on first use
        out.append(strat.spec)
    return tuple(dict.fromkeys(out))


def _distinct(refs) -> tuple:
    """``refs`` with repeats dropped. Curves, verdicts and CSVs name models by name, so two different models
    under one name (two directories called the same) would merge into one row: refused, as adding them is."""
    out: dict[str, ModelRef] = {}
    for r in refs:
        if r.name in out and out[r.name].fingerprint != r.fingerprint:
            raise EngineError(f"two different models are both called {r.name!r} ({out[r.name].source} and "
                              f"{r.source}): results are named by model, so rename one directory")
        out.setdefault(r.name, r)
    return tuple(out.values())
