"""Scorers: anything that gives each cached sample a score (higher = more likely correct).

One small interface: ``score(cache, task, samples) -> samples`` with a float
``score`` and a list ``step_scores`` column added (empty lists where a scorer
has no steps), plus ``params`` (weights read per token, for FLOPs accounting),
``label`` and ``short``. Scorers are registered by name with a factory; a
name that is a directory is opened as a user's Hugging Face classifier
(``learned.from_directory``). Modules in this package register themselves on
first use, so adding a scorer is one new module plus its tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import pandas as pd

from ..errors import EngineError
from ..plugins import load_all


class Scorer:
    name: str
    label: str
    short: str
    params: ClassVar[int] = 0

    def score(self, cache, task, samples: pd.DataFrame, on_progress=None) -> pd.DataFrame:
        raise NotImplementedError


@dataclass(frozen=True)
class Entry:
    factory: Callable[[], Scorer]
    available: Callable[[], bool] = lambda: True


_REGISTRY: dict[str, Entry] = {}
_instances: dict[str, Scorer] = {}


def register(name: str, factory: Callable[[], Scorer], available: Callable[[], bool] = lambda: True) -> None:
    """Make ``factory()`` available as scorer ``name``; ``available`` says whether its files are there."""
    _REGISTRY[name] = Entry(factory, available)


def _load() -> None:
    load_all(__name__, __path__)


def get(name: str) -> Scorer:
    """A registered scorer by name, or a verifier directory (a Hugging Face classifier) by path."""
    _load()
    name = str(name).strip()
    if name not in _instances:
        if name in _REGISTRY:
            if not _REGISTRY[name].available():
                raise EngineError(f"scorer {name!r} is not available here (its model files are missing; "
                                  "train the shipped verifiers with `python -m engine.train verifiers`)")
            _instances[name] = _REGISTRY[name].factory()
        elif Path(name).expanduser().is_dir():
            from .learned import from_directory
            _instances[name] = from_directory(name)
        else:
            raise EngineError(f"unknown scorer {name!r}: use one of {', '.join(available()) or '(none)'} "
                              "or the path of a verifier directory")
    return _instances[name]


def available(extra_dirs=()) -> list[str]:
    """Registered scorers whose files are present, then any verifier directories the user added."""
    _load()
    return [n for n, e in _REGISTRY.items() if e.available()] + [str(d) for d in extra_dirs]


def unavailable() -> list[str]:
    """Registered scorers whose model files are missing here (for example, verifiers not trained yet)."""
    _load()
    return [n for n, e in _REGISTRY.items() if not e.available()]


def label(name: str) -> str:
    return get(name).label


def short_label(name: str) -> str:
    return get(name).short
