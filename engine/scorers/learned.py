"""Learned verifiers as scorers: the shipped ORM, the shipped PRM under each aggregation,
and any Hugging Face sequence- or token-classification model given by directory.

Scores are cached per (verifier fingerprint, sample), so each sample is scored
once. A PRM's cached row holds its step scores; every aggregation (min, product,
last step, mean) is computed from them, so switching aggregation costs nothing.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..verifiers import AGGREGATES, STORED_AGGREGATE, VERIFIERS_DIR, aggregate, describe, load_verifier
from . import Scorer, register

FLUSH_ROWS = 2048
KEY = ["model_fp", "task", "problem_id", "config_key", "idx"]
AGG_LABELS = {"min": "lowest step score", "prod": "product of step scores", "last": "last step score",
              "mean": "mean step score"}


@dataclass(frozen=True, eq=False)
class LearnedScorer(Scorer):
    name: str
    path: str
    aggregate: str | None = None      # PRM only: how step scores become one score
    label: str = ""
    short: str = ""

    @cached_property
    def verifier(self):
        return load_verifier(self.path)

    @cached_property
    def files(self):
        """Kind, fingerprint and size from the files: reading cached scores needs no model loaded."""
        return describe(self.path)

    @property
    def flops_per_s(self) -> float | None:
        return self.files.flops_per_s

    @property
    def params(self) -> int:
        if self.files.params is not None:
            return self.files.params
        return int(sum(p.numel() for p in self.verifier.model.parameters()))

    def score(self, cache, task, samples: pd.DataFrame, on_progress=None) -> pd.DataFrame:
        return self._score(cache, task, samples, on_progress, steps=True)

    def scores(self, cache, task, samples: pd.DataFrame, on_progress=None) -> pd.DataFrame:
        # a PRM's step lists, one per distinct row, cost more to make than the rest of reading the scores, and
        # every one of them is a container the garbage collector then traverses: its scores come from the
        # texts as flat arrays instead
        return self._score(cache, task, samples, on_progress, steps=False)

    def _score(self, cache, task, samples: pd.DataFrame, on_progress, steps: bool) -> pd.DataFrame:
        if samples.empty:
            if not steps:
                return samples.assign(score=pd.Series(dtype=float))
            return samples.assign(score=pd.Series(dtype=float), step_scores=pd.Series(dtype=object))
        v = self.files  # the model itself is loaded only if something is left to score
        # a PRM's cached score is its steps aggregated as the verifier does (written together below): the step
        # lists, the widest column by far, are read only when asked for or aggregated another way
        read_steps = steps or (v.kind == "prm" and bool(self.aggregate) and self.aggregate != STORED_AGGREGATE)
        # one read finds the samples not scored yet and gives the others' scores (usually all there are)
        cached, at = _lookup(cache, v.fingerprint, samples, read_steps)
        if np.any(at < 0):
            v = self.verifier
            todo = samples[at < 0]
            by_id = task.by_id()
            prompts = {pid: task.prompt(by_id[pid]) for pid in todo["problem_id"].unique()}
            # chunks of rows of any problems: the verifier batches them by length; each chunk is one
            # transaction, so a crash loses at most that many scores
            for start in range(0, len(todo), FLUSH_ROWS):
                part = todo.iloc[start:start + FLUSH_ROWS]
                ps, comps = [prompts[p] for p in part["problem_id"]], part["text"].fillna("").tolist()
                made = v.step_scores_many(ps, comps) if v.kind == "prm" else [[] for _ in comps]
                # a PRM's score is an aggregate of the step scores just computed: no second pass
                scores = [aggregate(st, STORED_AGGREGATE) for st in made] if v.kind == "prm" else v.score_many(ps, comps)
                cache.write_scores([dict(verifier_fp=v.fingerprint, **{k: getattr(r, k) for k in KEY}, score=s,
                                         step_scores=json.dumps(st))
                                    for r, s, st in zip(part.itertuples(), scores, made)])
                if on_progress:
                    on_progress(min(start + FLUSH_ROWS, len(todo)), len(todo))
            cached, at = _lookup(cache, v.fingerprint, samples, read_steps)
        # a row still unscored (the cache lost it meanwhile) gets NaN and no steps, as a left join would
        at = np.where(at >= 0, at, len(cached))
        score = np.append(cached["score"].to_numpy(np.float64), np.nan)[at]
        if not steps:
            if read_steps:
                codes, flat, lens = _parse_flat(cached["step_scores"])
                score = _aggregate_flat(flat, lens, self.aggregate)[np.append(codes, -1)[at]]
            return samples.assign(score=score)
        codes, lists = _parse_lists(cached["step_scores"])     # each cached row's list; -1 (no steps): the last, []
        codes = np.append(codes, -1)[at]
        out = samples.assign(score=score,
                             step_scores=pd.Series(lists[codes], index=samples.index, dtype=object))
        if v.kind == "prm" and self.aggregate:
            out["score"] = _aggregate_lists(lists, self.aggregate)[codes]
        return out


def _lookup(cache, verifier_fp: str, samples: pd.DataFrame, steps: bool = True) -> tuple[pd.DataFrame, np.ndarray]:
    """(cached scores of ``samples`` by this verifier, each sample's row in it or -1 if not scored).

    Rows are matched on integer keys (problem's position, idx) within each (model, task, config) group, not by
    merging on five string columns, which cost more than reading the scores: each side's problem ids are
    factorized (one pass over the strings), only the distinct ids are looked up, and the keys, dense integers,
    are matched through a table."""
    frames, at, offset = [], np.full(len(samples), -1, np.int64), 0
    for (fp, t, ck), rows in _groups(samples, ["model_fp", "task", "config_key"]):
        codes, pids = pd.factorize(samples["problem_id"].iloc[rows])
        idx = samples["idx"].iloc[rows].to_numpy(np.int64)
        c = cache.scores(verifier_fp, model_fp=fp, task=t, config_key=ck, problem_ids=list(pids),
                         columns=["problem_id", "idx", "score"] + ["step_scores"] * steps)
        c_codes, c_pids = pd.factorize(c["problem_id"])
        c_idx = c["idx"].to_numpy(np.int64)
        low = min(idx.min(), c_idx.min(initial=0))
        idx, c_idx = idx - low, c_idx - low
        stride = int(max(idx.max(), c_idx.max(initial=0))) + 1
        pos = np.append(pd.Index(pids).get_indexer(c_pids), -1)[c_codes]   # -1: a problem not asked for
        valid = np.flatnonzero(pos >= 0)
        have = pos[valid] * stride + c_idx[valid]                          # unique: the scores' primary key
        want = np.where(codes >= 0, codes * stride + idx, -1)
        if len(pids) * stride <= 8 * (len(want) + len(have)) + 4096:      # a table a few times the rows
            table = np.full(len(pids) * stride + 1, -1, np.int64)          # the last: key -1, no problem
            table[have] = valid
            hit = table[want]
        else:                                                              # sparse keys (a few huge idx)
            hit = pd.Index(have).get_indexer(want)
            hit = np.where(hit >= 0, valid[hit], -1)
        at[rows] = np.where(hit >= 0, hit + offset, -1)
        frames.append(c)
        offset += len(c)
    return pd.concat(frames, ignore_index=True), at


def _groups(df: pd.DataFrame, cols: list[str]):
    """(key, row positions) per group of ``df`` by ``cols``, in first-seen order; one comparison per column,
    not a groupby, where there is one group (usual: one model's samples; its rows: all, a slice, no copy)."""
    if len(df) and all(bool((df[c] == df[c].iloc[0]).all()) for c in cols):
        return [(tuple(df[c].iloc[0] for c in cols), slice(None))]
    return list(df.groupby(cols, sort=False).indices.items())


def _parse_lists(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """JSON lists (None or NaN: []) as (codes, lists): row i's list is ``lists[codes[i]]``. Each distinct text
    is parsed once, all in one ``json.loads``; rows with the same text share its list (read them, don't
    change them), since a list per row cost more than everything else in reading the scores."""
    codes, uniq = pd.factorize(col, use_na_sentinel=True)
    # tolist(): iterating Arrow-backed strings one by one is slower than the parse; the last, [], is code -1's
    parsed = json.loads("[" + ",".join(uniq.tolist() + ["[]"]) + "]")
    return codes, np.fromiter(parsed, dtype=object, count=len(parsed))


# a JSON list of numbers as json.dumps writes them (", " between): what _parse_flat reads without json
_NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_LIST = rf"^\[(?:{_NUM}(?:, {_NUM})*)?\]$"


def _parse_flat(col: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_parse_lists`` as (codes, the lists' numbers laid end to end as float64, each list's length; the last
    list: [], code -1's), without making a Python list per text. Numbers are parsed by Arrow, correctly rounded
    as ``json.loads`` and ``float`` are, so the same floats; a column with any other text (NaN, nesting, other
    spacing) is parsed by ``_parse_lists``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    codes, uniq = pd.factorize(col, use_na_sentinel=True)
    texts = pa.array(np.asarray(uniq, dtype=object), pa.string())
    if len(texts) and not pc.all(pc.match_substring_regex(texts, _LIST)).as_py():
        codes, lists = _parse_lists(col)
        lens = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        return codes, np.fromiter(itertools.chain.from_iterable(lists), dtype=np.float64, count=int(lens.sum())), lens
    parts = pc.split_pattern(pc.utf8_slice_codeunits(texts, 1, -1), ", ")   # "[]" gives one part, ""
    words = pc.list_flatten(parts)
    flat = pc.cast(words.filter(pc.not_equal(words, "")), pa.float64()).to_numpy(zero_copy_only=False)
    lens = np.where(np.asarray(pc.equal(texts, "[]"), bool), 0, pc.list_value_length(parts).to_numpy(zero_copy_only=False))
    return codes, flat, np.append(lens, 0).astype(np.int64)


def _aggregate_lists(lists, how: str) -> np.ndarray:
    """``verifiers.aggregate(l, how)`` of every list, as array operations over the lists laid end to end."""
    if how not in AGGREGATES:
        return np.array([aggregate(st, how) for st in lists], dtype=np.float64)  # its error message
    lens = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.float64, count=int(lens.sum()))
    return _aggregate_flat(flat, lens, how)


def _aggregate_flat(flat: np.ndarray, lens: np.ndarray, how: str) -> np.ndarray:
    """``_aggregate_lists`` of lists given as their numbers end to end and their lengths."""
    if how not in AGGREGATES:
        ends = np.cumsum(lens)                                      # its error message
        return np.array([aggregate(flat[e - n:e].tolist(), how) for e, n in zip(ends, lens)], dtype=np.float64)
    out = np.zeros(len(lens))  # an empty list scores 0
    has = lens > 0
    starts = (np.cumsum(lens) - lens)[has]  # empty lists add no values, so these starts bound the others
    if not has.any():
        return out
    if how == "min":
        out[has] = np.minimum.reduceat(flat, starts)
    elif how == "prod":
        out[has] = np.multiply.reduceat(flat, starts)
    elif how == "last":
        out[has] = flat[starts + lens[has] - 1]
    else:
        out[has] = np.add.reduceat(flat, starts) / lens[has]
    return out


def from_directory(path: str) -> LearnedScorer:
    """A user's verifier directory: an ORM (sequence classifier) or a PRM (token classifier, min of steps)."""
    p = Path(path).expanduser().resolve()
    v = load_verifier(str(p))
    return LearnedScorer(str(path), str(p), "min" if v.kind == "prm" else None,
                         label=f"the verifier in {p.name}", short=p.name)


def _shipped(name: str) -> bool:
    return (VERIFIERS_DIR / name / "config.json").exists()


register("orm", lambda: LearnedScorer("orm", str(VERIFIERS_DIR / "orm"), label="the outcome reward model (ORM)",
                                      short="ORM"), lambda: _shipped("orm"))
for _agg in AGGREGATES:
    register(f"prm-{_agg}", lambda a=_agg: LearnedScorer(f"prm-{a}", str(VERIFIERS_DIR / "prm"), a,
                                                          label=f"the process reward model's {AGG_LABELS[a]}",
                                                          short=f"PRM {a}"),
             lambda: _shipped("prm"))
