"""Selection strategies: how one answer is chosen from a pool of samples of one problem.

A strategy is one small class: a ``name``, a ``label`` for the UI, whether it
needs the answer key, whether it reads a scorer's scores, and two methods:

* ``curve(pool, ks)``: expected accuracy when the strategy sees a uniformly random
  k-subset of the pool, for each k (NaN where k exceeds the pool). Exact where a
  formula exists (``engine.metrics``); otherwise seeded Monte Carlo with its
  standard error from ``curve_se``.
* ``pick(pool)``: the index (into the pool) of the sample the strategy would
  return given the whole pool, or None when it returns nothing; what the inspector shows.

One optional method makes curves fast: ``curve_block(pools, ks)`` gets the pools of
many problems at once as ``Pools`` ([problems, n] arrays, all pools of one size n)
and returns [problems, len(ks)] curves and standard errors, computed with array
operations instead of a Python loop over problems. The base class implements it
by calling ``curve_se`` per pool, so a strategy that only has ``curve`` (or
``curve_se``) works everywhere, just slower. ``block_curves`` is the one entry
point (``engine.analysis.curves`` uses it): it splits a frame of samples into
blocks of equal pool size and calls ``curve_block`` on each.

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


@dataclass(frozen=True, eq=False)
class Pools:
    """The pools of many problems, all of the same size n, as [problems, n] arrays (a row: one problem's samples
    in sample-index order).

    ``codes``: int64 answer codes, equal within a row exactly when the answers are equal, -1 where a sample gave
    no answer; ``correct``: bool; ``scores``: float64 from the strategy's scorer (None without one);
    ``answers``: the answers themselves (object, None for no answer), for what codes cannot say.
    """
    answers: np.ndarray
    codes: np.ndarray
    correct: np.ndarray
    scores: np.ndarray | None = None

    def __len__(self) -> int:
        return self.codes.shape[0]

    @property
    def n(self) -> int:
        return self.codes.shape[1]

    def pool(self, i: int) -> Pool:
        return Pool(tuple(self.answers[i]), self.correct[i], None if self.scores is None else self.scores[i])

    @classmethod
    def from_pools(cls, pools: Sequence[Pool]) -> "Pools":
        """Equal-size ``Pool``s as one block."""
        n = pools[0].n if pools else 0
        if any(p.n != n for p in pools):
            raise EngineError("a block holds pools of one size only")
        answers = np.empty((len(pools), n), object)
        for i, p in enumerate(pools):
            answers[i, :] = list(p.answers)
        codes = pd.factorize(pd.Series(answers.ravel(), dtype=object), use_na_sentinel=True)[0]
        codes = codes.reshape(answers.shape).astype(np.int64)
        answers[codes < 0] = None
        correct = np.array([np.asarray(p.correct, bool) for p in pools]).reshape(len(pools), n)
        scores = None if not pools or pools[0].scores is None else \
            np.array([np.asarray(p.scores, np.float64) for p in pools]).reshape(len(pools), n)
        return cls(answers, codes, correct, scores)

    @classmethod
    def split(cls, df: pd.DataFrame, like: list | None = None) -> list[tuple[np.ndarray, "Pools"]]:
        """Rows of cached samples sorted by problem, then ``idx``, as one block per pool size: a list of
        (positions of its problems in first-seen order, ``Pools``). ``like``: the split of the same rows in the
        same order without their scores (the samples a scorer scored); then only the scores are read from
        ``df``, the rest is shared with ``like`` (factorizing the strings again costs more than the rest)."""
        if like is not None:
            sizes = np.zeros(sum(len(which) for which, _ in like), np.int64)
            for which, pools in like:
                sizes[which] = pools.n
            starts = np.cumsum(sizes) - sizes
            scores = df["score"].to_numpy(np.float64) if "score" in df else None
            return [(which, cls(p.answers, p.codes, p.correct, None if scores is None else
                                scores[starts[which][:, None] + np.arange(p.n)])) for which, p in like]
        if df.empty:
            return []
        # codes, not strings, are compared and gathered: turning a column of strings into Python objects costs more
        pids = pd.factorize(df["problem_id"])[0]
        starts = np.flatnonzero(np.r_[True, pids[1:] != pids[:-1]])
        sizes = np.diff(np.r_[starts, len(pids)])
        codes, uniq = pd.factorize(df["answer"], use_na_sentinel=True)
        codes = codes.astype(np.int64)
        answers = np.append(np.asarray(uniq, dtype=object), None)[codes]   # code -1 (no answer): the None at the end
        correct = df["correct"].to_numpy(bool)
        scores = df["score"].to_numpy(np.float64) if "score" in df else None
        out = []
        for n in np.unique(sizes):
            which = np.flatnonzero(sizes == n)
            idx = (starts[which][:, None] + np.arange(n)).reshape(-1)
            shape = (which.size, int(n))
            out.append((which, cls(answers[idx].reshape(shape), codes[idx].reshape(shape),
                                   correct[idx].reshape(shape),
                                   None if scores is None else scores[idx].reshape(shape))))
        return out


def block_curves(strat: "Strategy", df: pd.DataFrame, ks: Sequence[int],
                 split: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[problems, len(ks)] curve and Monte Carlo standard error of ``strat`` for rows of cached samples sorted
    by problem, then ``idx`` (problems in first-seen order), through ``strat.curve_block`` per pool size.
    ``split``: ``Pools.split(df)``, where the caller has it already (many strategies of one frame)."""
    blocks = Pools.split(df) if split is None else split
    p = sum(len(w) for w, _ in blocks)
    acc, se = np.full((p, len(ks)), np.nan), np.full((p, len(ks)), np.nan)
    for which, pools in blocks:
        acc[which], se[which] = strat.curve_block(pools, ks)
    return acc, se


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

    def tied(self, pool: Pool) -> list[int]:
        """The samples ``pick`` chooses among at random, as equally good ([] where it returns nothing): the
        inspector says when the pick shown is one of several."""
        p = self.pick(pool)
        return [] if p is None else [p]

    def curve_se(self, pool: Pool, ks: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(curve, Monte Carlo standard error per k); exact strategies report 0."""
        vals = self.curve(pool, ks)
        return vals, np.where(np.isnan(vals), np.nan, 0.0)

    def curve_block(self, pools: Pools, ks: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``curve_se`` of every pool in ``pools`` as [problems, len(ks)] arrays. This default loops over the
        pools; a strategy overrides it with array operations over the whole block (same numbers, faster)."""
        out = [self.curve_se(pools.pool(i), ks) for i in range(len(pools))]
        if not out:
            return np.zeros((0, len(ks))), np.zeros((0, len(ks)))
        return np.vstack([v for v, _ in out]), np.vstack([e for _, e in out])

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
