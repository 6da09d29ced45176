"""Scorers: anything that gives each cached sample a score (higher = more likely correct).

One small interface: ``score(cache, task, samples) -> samples`` with a float
``score`` and a list ``step_scores`` column added (empty lists where a scorer
has no steps; ``scores`` is the same without them), plus ``params`` (weights
read per token, for FLOPs accounting),
``label`` and ``short``. Scorers are registered by name with a factory; a
name that is a directory is opened as a user's Hugging Face classifier
(``learned.from_directory``). A family of scorers with a parameter in the name
(``simulated-0.8``) registers once with ``register_family``. A scorer that reads
the answer key sets ``needs_key``; a strategy using it is then not deployable.
Modules in this package register themselves on
first use, so adding a scorer is one new module plus its tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import pandas as pd

from ..errors import EngineError
from ..plugins import load_all


class Scorer:
    name: str
    label: str
    short: str
    params: ClassVar[int] = 0
    # FLOP/s it scores at, as measured (None: not measured; its time is then charged at its generator's rate)
    flops_per_s: ClassVar[float | None] = None
    # True for a scorer that reads the answer key (a simulation, like the oracle): never deployable
    needs_key: ClassVar[bool] = False

    def score(self, cache, task, samples: pd.DataFrame, on_progress=None) -> pd.DataFrame:
        raise NotImplementedError

    def scores(self, cache, task, samples: pd.DataFrame, on_progress=None) -> pd.DataFrame:
        """``score`` without the ``step_scores`` column (what curves read). A scorer whose steps cost much to
        turn into lists (a PRM's, read back from the cache) skips making them here."""
        return self.score(cache, task, samples, on_progress=on_progress).drop(columns=["step_scores"],
                                                                               errors="ignore")


@dataclass(frozen=True)
class Entry:
    factory: Callable[[], Scorer]
    available: Callable[[], bool] = lambda: True


_REGISTRY: dict[str, Entry] = {}
_FAMILIES: dict[str, tuple[Callable[[str], Scorer], tuple[str, ...]]] = {}
_instances: dict[str, Scorer] = {}


def no_steps(n: int) -> np.ndarray:
    """The ``step_scores`` column of a scorer without steps: one empty list shared by all ``n`` rows (read it,
    don't change it). A new list per row cost more than the scoring: every one is a container that Python's
    garbage collector goes on traversing."""
    col = np.empty(n, dtype=object)
    col.fill([])
    return col


def register(name: str, factory: Callable[[], Scorer], available: Callable[[], bool] = lambda: True) -> None:
    """Make ``factory()`` available as scorer ``name``; ``available`` says whether its files are there."""
    _REGISTRY[name] = Entry(factory, available)


def register_family(prefix: str, factory: Callable[[str], Scorer], listed: tuple[str, ...] = ()) -> None:
    """Scorers named ``prefix-PARAM`` (``simulated-0.8``): ``factory(PARAM)`` makes one, raising ``EngineError``
    on a bad PARAM; ``listed`` are the names ``available()`` offers."""
    _FAMILIES[prefix] = (factory, tuple(listed))


def _family(name: str):
    prefix, _, param = name.rpartition("-")
    return (_FAMILIES[prefix][0], param) if prefix in _FAMILIES else None


def needs_key(name: str) -> bool:
    """Whether scorer ``name`` reads the answer key; False for names that do not resolve (a verifier
    directory is a learned verifier, and resolving one would load it)."""
    _load()
    name = str(name).strip()
    if name in _REGISTRY or _family(name):
        try:
            return get(name).needs_key
        except EngineError:
            return False
    return False


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
        elif _family(name):
            factory, param = _family(name)
            _instances[name] = factory(param)
        elif Path(name).expanduser().is_dir():
            from .learned import from_directory
            _instances[name] = from_directory(name)
        else:
            families = "".join(f", {prefix}-PARAM" for prefix in _FAMILIES)
            raise EngineError(f"unknown scorer {name!r}: use one of {', '.join(available()) or '(none)'}{families} "
                              "or the path of a verifier directory")
    return _instances[name]


def available(extra_dirs=()) -> list[str]:
    """Registered scorers whose files are present, the listed members of each family, then any verifier
    directories the user added."""
    _load()
    return ([n for n, e in _REGISTRY.items() if e.available()] + [n for _, listed in _FAMILIES.values() for n in listed]
            + [str(d) for d in extra_dirs])


def unavailable() -> list[str]:
    """Registered scorers whose model files are missing here (for example, verifiers not trained yet)."""
    _load()
    return [n for n, e in _REGISTRY.items() if not e.available()]


def label(name: str) -> str:
    return get(name).label


def short_label(name: str) -> str:
    return get(name).short
