"""Selection strategies: how one answer is chosen from a pool of samples of one problem.

A strategy is one small class: a ``name``, a ``label`` for the UI, whether it
needs the answer key, whether it reads a scorer's scores, and two methods:

* ``curve(pool, ks)``: expected accuracy when the strategy sees a uniformly random
  k-subset of the pool, for each k (NaN where k exceeds the pool). Exact where a
  formula exists (``engine.metrics``); otherwise seeded Monte Carlo with its
  standard error from ``curve_se``.
* ``pick(pool)``: the index (into the pool) of the sample the strategy would
  return given the whole pool, or None when it returns nothing; what the inspector shows.

A strategy that reads scores is instantiated with a scorer name, and is referred
to as ``"name:scorer"`` (``"best_of_n:orm"``). Every module in this package is
imported on first use, so adding a strategy is one new module with a
``@register``-ed class (and its tests); nothing else changes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd

from ..errors import EngineError
from ..plugins import load_all

# Names kept from before strategies and scorers were split (old links and scripts keep working).
ALIASES = {"orm": "best_of_n:orm", "prm": "best_of_n:prm-min"}
# What a page preselects; each is dropped where its scorer is not available.
DEFAULTS = ("oracle", "majority", "best_of_n:orm", "best_of_n:prm-min", "best_of_n:self-likelihood")


@dataclass(frozen=True, eq=False)
class Pool:
    """The samples of one problem, in sample-index order.

    ``answers``: extracted answer per sample (None: the sample gave none);
    ``correct``: bool per sample; ``scores``: one float per sample from the
    strategy's scorer (None for strategies that use no scorer).
    """
    answers: tuple
    correct: np.ndarray
    scores: np.ndarray | None = None

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> "Pool":
        """From rows of cached samples (``answer``, ``correct``, optional ``score``) of one problem, in ``idx``
        order."""
        return cls.per_problem(df.assign(problem_id=0))[0]

    @classmethod
    def per_problem(cls, df: pd.DataFrame) -> list["Pool"]:
        """One pool per problem of rows sorted by problem, then ``idx`` (array slices: no per-problem pandas)."""
        pids = df["problem_id"].to_numpy()
        bounds = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1], True]) if len(pids) else np.array([0])
        answers = [None if pd.isna(a) else a for a in df["answer"].to_numpy(object)]
        correct = df["correct"].to_numpy(bool)
        scores = df["score"].to_numpy(np.float64) if "score" in df else None
        return [cls(tuple(answers[a:b]), correct[a:b], None if scores is None else scores[a:b])
                for a, b in zip(bounds[:-1], bounds[1:])]

    @property
    def n(self) -> int:
        return len(self.answers)


class Strategy:
    name: ClassVar[str]
    label: ClassVar[str]             # long name, for sentences and tables
    short: ClassVar[str]             # a few characters, for widgets and legends
    help: ClassVar[str]              # one sentence for UI help: what it does, and how it breaks ties
    needs_key: ClassVar[bool] = False
    uses_scorer: ClassVar[bool] = False

    def __init__(self, scorer: str | None = None):
        if self.uses_scorer and not scorer:
            raise EngineError(f"strategy {self.name!r} needs a scorer: write it as {self.name}:SCORER "
                              f"(for example {self.name}:orm)")
        if not self.uses_scorer and scorer:
            raise EngineError(f"strategy {self.name!r} uses no scorer; drop ':{scorer}'")
        self.scorer = scorer
        if scorer and not self.needs_key:
            from .. import scorers
            self.needs_key = scorers.needs_key(scorer)  # a scorer that reads the key makes the strategy a ceiling

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.scorer}" if self.scorer else self.name

    def curve(self, pool: Pool, ks: Sequence[int]) -> np.ndarray:
        raise NotImplementedError

    def curve_se(self, pool: Pool, ks: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(curve, Monte Carlo standard error per k); exact strategies report 0."""
        vals = self.curve(pool, ks)
        return vals, np.where(np.isnan(vals), np.nan, 0.0)

    def pick(self, pool: Pool) -> int | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<strategy {self.spec}>"


_REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: make a strategy available by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"two strategies are named {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    load_all(__name__, __path__)


def kinds() -> list[type[Strategy]]:
    """Every registered strategy class, in registration order."""
    _load_builtins()
    return sorted(_REGISTRY.values(), key=lambda c: getattr(c, "order", 100))


def get(spec: str) -> Strategy:
    """``"majority"`` or ``"best_of_n:orm"`` (a strategy and its scorer) as a strategy object."""
    _load_builtins()
    spec = ALIASES.get(str(spec).strip(), str(spec).strip())
    name, _, scorer = spec.partition(":")
    if name not in _REGISTRY:
        raise EngineError(f"unknown strategy {name!r}: use one of {', '.join(c.name for c in kinds())}")
    return _REGISTRY[name](scorer or None)


def available(scorers: Sequence[str] = ()) -> list[str]:
    """Every strategy spec: those without a scorer, then each scoring strategy with each of ``scorers``."""
    out = []
    for cls in kinds():
        out += [f"{cls.name}:{s}" for s in scorers] if cls.uses_scorer else [cls.name]
    return out


def defaults(specs: Sequence[str]) -> list[str]:
    """The preselected specs (``DEFAULTS``) among ``specs``."""
    return [s for s in DEFAULTS if s in specs]


def short_label(spec: str) -> str:
    """Short display name, e.g. ``best-of-N · ORM`` (the UI's widget labels)."""
    from .. import scorers
    s = get(spec)
    return s.short + (f" · {scorers.short_label(s.scorer)}" if s.scorer else "")


def label(spec: str) -> str:
    from .. import scorers
    s = get(spec)
    return s.label + (f" by {scorers.label(s.scorer)}" if s.scorer else "")


def seeded_choice(options: Sequence[int], pool: Pool) -> int:
    """One of tied ``options``, uniformly but reproducibly (seeded by the pool's answers)."""
    if len(options) == 1:
        return int(options[0])
    seed = int.from_bytes(hashlib.sha256("|".join(map(str, pool.answers)).encode()).digest()[:8], "little")
    return int(np.random.default_rng(seed).choice(list(options)))
