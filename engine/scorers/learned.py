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

from ..verifiers import AGGREGATES, VERIFIERS_DIR, aggregate, load_verifier
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

    @property
    def params(self) -> int:
        return int(sum(p.numel() for p in self.verifier.model.parameters()))

    def score(self, cache, task, samples: pd.DataFrame, on_progress=None) -> pd.DataFrame:
        if samples.empty:
            return samples.assign(score=pd.Series(dtype=float), step_scores=pd.Series(dtype=object))
        v = self.verifier
        # one read finds the samples not scored yet and gives the others' scores (usually all there are)
        cached, at = _lookup(cache, v.fingerprint, samples)
        todo = samples[at < 0]
        if not todo.empty:
            by_id = task.by_id()
            prompts = {pid: task.prompt(by_id[pid]) for pid in todo["problem_id"].unique()}
            # chunks of rows of any problems: the verifier batches them by length; each chunk is one
            # transaction, so a crash loses at most that many scores
            for start in range(0, len(todo), FLUSH_ROWS):
                part = todo.iloc[start:start + FLUSH_ROWS]
                ps, comps = [prompts[p] for p in part["problem_id"]], part["text"].fillna("").tolist()
                steps = v.step_scores_many(ps, comps) if v.kind == "prm" else [[] for _ in comps]
                # a PRM's score is an aggregate of the step scores just computed: no second pass
                scores = [aggregate(st, v.aggregate) for st in steps] if v.kind == "prm" else v.score_many(ps, comps)
                cache.write_scores([dict(verifier_fp=v.fingerprint, **{k: getattr(r, k) for k in KEY}, score=s,
                                         step_scores=json.dumps(st))
                                    for r, s, st in zip(part.itertuples(), scores, steps)])
                if on_progress:
                    on_progress(min(start + FLUSH_ROWS, len(todo)), len(todo))
            cached, at = _lookup(cache, v.fingerprint, samples)
        # a row still unscored (the cache lost it meanwhile) gets NaN and no steps, as a left join would
        at = np.where(at >= 0, at, len(cached))
        score = np.append(cached["score"].to_numpy(np.float64), np.nan)[at]
        codes, lists = _parse_lists(pd.concat([cached["step_scores"], pd.Series([None])], ignore_index=True).iloc[at])
        out = samples.assign(score=score,
                             step_scores=pd.Series(lists[codes], index=samples.index, dtype=object))
        if v.kind == "prm" and self.aggregate:
            out["score"] = _aggregate_lists(lists, self.aggregate)[codes]
        return out


def _lookup(cache, verifier_fp: str, samples: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """(cached scores of ``samples`` by this verifier, each sample's row in it or -1 if not scored).

    Rows are matched on integer keys (problem's position, idx) within each (model, task, config) group, not by
    merging on five string columns, which cost more than reading the scores."""
    frames, at, offset = [], np.full(len(samples), -1, np.int64), 0
    for (fp, t, ck), rows in samples.groupby(["model_fp", "task", "config_key"], sort=False).indices.items():
        g = samples.iloc[rows]
        pids = pd.Index(g["problem_id"].unique())
        c = cache.scores(verifier_fp, model_fp=fp, task=t, config_key=ck, problem_ids=pids.tolist(),
                         columns=["problem_id", "idx", "score", "step_scores"])
        stride = int(max(g["idx"].max(), c["idx"].max() if len(c) else 0)) + 1
        have = pd.Index(pids.get_indexer(c["problem_id"]).astype(np.int64) * stride + c["idx"].to_numpy(np.int64))
        want = pids.get_indexer(g["problem_id"]).astype(np.int64) * stride + g["idx"].to_numpy(np.int64)
        hit = have.get_indexer(want)  # cached keys are unique: the scores table's primary key
        at[rows] = np.where(hit >= 0, hit + offset, -1)
        frames.append(c)
        offset += len(c)
    return pd.concat(frames, ignore_index=True), at


def _parse_lists(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """JSON lists (None or NaN: []) as (codes, lists): row i's list is ``lists[codes[i]]``. Each distinct text
    is parsed once, all in one ``json.loads``; rows with the same text share its list (read them, don't
    change them), since a list per row cost more than everything else in reading the scores."""
    codes, uniq = pd.factorize(col, use_na_sentinel=True)
    # tolist(): iterating Arrow-backed strings one by one is slower than the parse; the last, [], is code -1's
    parsed = json.loads("[" + ",".join(uniq.tolist() + ["[]"]) + "]")
    return codes, np.fromiter(parsed, dtype=object, count=len(parsed))


def _aggregate_lists(lists, how: str) -> np.ndarray:
    """``verifiers.aggregate(l, how)`` of every list, as array operations over the lists laid end to end."""
    if how not in AGGREGATES:
        return np.array([aggregate(st, how) for st in lists], dtype=np.float64)  # its error message
    lens = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.float64, count=int(lens.sum()))
    out = np.zeros(len(lists))  # an empty list scores 0
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
