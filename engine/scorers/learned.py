"""Learned verifiers as scorers: the shipped ORM, the shipped PRM under each aggregation,
and any Hugging Face sequence- or token-classification model given by directory.

Scores are cached per (verifier fingerprint, sample), so each sample is scored
once. A PRM's cached row holds its step scores; every aggregation (min, product,
last step, mean) is computed from them, so switching aggregation costs nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

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
        have = self._cached(cache, v.fingerprint, samples)
        seen = samples[KEY].merge(have[KEY].drop_duplicates(), on=KEY, how="left", indicator=True)["_merge"]
        todo = samples[(seen == "left_only").to_numpy()]
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
            have = self._cached(cache, v.fingerprint, samples)
        out = samples.merge(have[KEY + ["score", "step_scores"]], on=KEY, how="left")
        out["step_scores"] = _parse_lists(out["step_scores"])
        if v.kind == "prm" and self.aggregate:
            out["score"] = out["step_scores"].map(lambda st: aggregate(st, self.aggregate))
        return out

    @staticmethod
    def _cached(cache, verifier_fp: str, samples: pd.DataFrame) -> pd.DataFrame:
        frames = [cache.scores(verifier_fp, model_fp=fp, task=t, config_key=ck,
                               problem_ids=g["problem_id"].unique().tolist())
                  for (fp, t, ck), g in samples.groupby(["model_fp", "task", "config_key"], sort=False)]
        return pd.concat(frames, ignore_index=True)


def _parse_lists(col: pd.Series) -> pd.Series:
    """JSON lists (None or NaN: []) as Python lists; each distinct text parsed once, all in one ``json.loads``."""
    codes, uniq = pd.factorize(col, use_na_sentinel=True)
    parsed = json.loads("[" + ",".join(uniq) + "]") if len(uniq) else []
    return pd.Series([list(parsed[c]) if c >= 0 else [] for c in codes], index=col.index, dtype=object)


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
