"""Does a scorer check the arithmetic? Gold solutions against copies with one mistake put in.

Three corruptions of an ``arith`` gold solution, each at one seeded step, later steps recomputed from it
so that the only mistake is the one put in:

- ``nudged``: the step's result is off by a little (a calculation slip);
- ``miscopied``: an operand from the story is copied wrong and computed correctly (a misreading);
- ``skipped``: the step is left out (levels 2-5 only: level 1 has one step).

A scorer passes a pair when it scores the gold solution above the corrupted one (a tie counts half).
Scoring happens in a throwaway cache, so the user's cache never holds these made-up solutions. Nobody
sampled these texts, so a scorer that reads the sampling model's log-probability (self-likelihood) scores
them as if a given model had: its probability of each text, computed in one forward pass.
"""
from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pandas as pd

from .. import scorers
from ..cache import SampleCache
from ..errors import EngineError
from ..tasks import Task, arith

KINDS = ("nudged", "miscopied", "skipped")
TRIES = 20


def _write(steps) -> str:
    return arith.format_solution(steps) + "\n"


def corrupt(steps, kind: str, rng: random.Random) -> str | None:
    """One corrupted copy of the gold ``steps`` ([(a, op, b, c)]) whose final answer differs from gold, or
    None when ``kind`` does not apply (skipping the only step) or no try changed the answer."""
    steps = [tuple(s) for s in steps]
    gold = steps[-1][3]
    for _ in range(TRIES):
        k = rng.randrange(len(steps))
        a, op, b, c = steps[k]
        if kind == "nudged":
            wrong = c + rng.choice([-10, -2, -1, 1, 2, 10]) if c > 10 else c + rng.choice([1, 2, 3])
            out = arith.rerun(steps[:k] + [(a, op, b, wrong)] + steps[k + 1:], k + 1)
        elif kind == "miscopied":
            b2 = b + rng.choice([-1, 1]) * rng.choice([1, 2, 10]) if b > 10 else b + rng.choice([-1, 1, 2])
            if b2 < 1 or b2 == b:
                continue
            out = arith.rerun(steps[:k] + [(a, op, b2, arith.apply_op(a, op, b2))] + steps[k + 1:], k + 1)
        elif kind == "skipped":
            if len(steps) < 2:
                return None
            out = arith.rerun(steps[:k] + steps[k + 1:], k)
        else:
            raise EngineError(f"unknown corruption {kind!r}: use one of {', '.join(KINDS)}")
        if out and out[-1][3] != gold:
            return _write(out)
    return None


def pairs(task: Task, problems=None, seed: int = 0) -> pd.DataFrame:
    """Sample-shaped rows (``problem_id``, ``idx``, ``text``, ``answer``, ``correct``, ``kind``, ``difficulty``):
    each problem's gold solution (idx 0) and one copy per corruption kind."""
    rows = []
    for p in problems if problems is not None else task.problems:
        steps = arith.gold_steps(p)
        if not steps:
            raise EngineError(f"problem {p.id}: no worked solution in the a<op>b=c format to corrupt "
                              "(gold-vs-corrupted needs the arith task)")
        texts = [("gold", _write(steps))]
        for kind in KINDS:
            text = corrupt(steps, kind, random.Random(f"{seed}-{p.id}-{kind}"))
            if text is not None:
                texts.append((kind, text))
        for i, (kind, text) in enumerate(texts):
            answer, ok = task.grade(p, text)
            rows.append(dict(problem_id=p.id, idx=i, text=text, answer=answer, correct=ok, kind=kind,
                             difficulty=p.difficulty))
    # the columns scorers read from a cached sample; gold and corrupted copies have no log-probability
    return pd.DataFrame(rows).assign(model_fp="gold-vs-corrupted", task=task.name, config_key="gold-vs-corrupted",
                                     logprob=float("nan"), completion_tokens=0)


def with_logprob(df: pd.DataFrame, task: Task, model: str, batch: int = 32) -> pd.DataFrame:
    """``df`` with ``logprob`` and ``completion_tokens`` as if ``model`` had sampled each text: teacher-forced
    at temperature 1, the end-of-sequence token included, as sampling records them. Texts of similar length go
    through the model ``batch`` at a time, padded on the right (which a causal model's earlier positions never
    see): arith-s on 380 texts, 0.56 s one at a time, 0.28 s so."""
    import torch

    from ..models.loader import load_model
    lm = load_model(model, "cpu")
    tok, net, by_id = lm.tokenizer, lm.model, task.by_id()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    seqs = [(tok(task.prompt(by_id[pid]), add_special_tokens=False)["input_ids"],
             tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id])
            for pid, text in zip(df["problem_id"], df["text"])]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]) + len(seqs[i][1]))
    lps = [0.0] * len(seqs)
    with torch.no_grad():
        for at in range(0, len(order), batch):
            rows = order[at:at + batch]
            ids = torch.full((len(rows), max(len(p) + len(c) for p, c in (seqs[i] for i in rows))), pad)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(rows):
                p, c = seqs[i]
                ids[r, :len(p) + len(c)], mask[r, :len(p) + len(c)] = torch.tensor(p + c), 1
            logp = net(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
            for r, i in enumerate(rows):
                p, c = seqs[i]
                lps[i] = float(logp[r, len(p) - 1:len(p) + len(c) - 1].gather(1, torch.tensor(c)[:, None]).sum())
    return df.assign(logprob=lps, completion_tokens=[len(c) for _, c in seqs])


WIN_COLS = ["scorer", "model", "problem_id", "corruption", "level", "win"]
RATE_COLS = ["scorer", "model", "corruption", "level", "rate", "pairs"]


def gold_beats_corrupted(task: Task, names, problems=None, seed: int = 0, models=(), recorded: bool = False
                         ) -> pd.DataFrame:
    """Per scorer, corruption kind and level: how often gold outscores its corrupted copy (``rate``, ties
    half) over ``pairs`` problems. A scorer that needs a log-probability (self-likelihood) is scored once per
    model in ``models`` (names or ``ModelRef``s; that model's name in ``model``, None for other scorers), and
    left out without any. ``recorded``: take what ``python -m engine.train ship`` recorded for the shipped
    task, scorers and models (``shipped.gold``), scoring only the rest."""
    return rates(recorded_or_scored(task, names, problems, seed, models) if recorded else
                 wins(task, names, problems, seed, models))


def wins(task: Task, names, problems=None, seed: int = 0, models=()) -> pd.DataFrame:
    """One row per (scorer, model, problem, corruption): 1 where gold outscores the copy, 0.5 on a tie, else 0."""
    df = pairs(task, problems, seed)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = SampleCache(Path(tmp) / "scratch.duckdb")
        for name in names:
            scored = scorers.get(name).score(cache, task, df)
            if not scored["score"].isna().any():
                out.append(_wins(scored, name, None))
                continue
            out += [_wins(scorers.get(name).score(cache, task, with_logprob(df, task, getattr(m, "source", m))),
                          name, getattr(m, "name", m)) for m in models]
    return pd.concat(out, ignore_index=True)[WIN_COLS] if out else pd.DataFrame(columns=WIN_COLS)


def recorded_or_scored(task: Task, names, problems=None, seed: int = 0, models=()) -> pd.DataFrame:
    """``wins``, taking the shipped record's rows where it holds the scorer (and, for self-likelihood, the
    model) and the problem, and scoring only the rest: every problem of the test set took 25 s to score."""
    from .. import shipped
    problems = list(problems if problems is not None else task.problems)
    have = shipped.gold(task) if seed == 0 else None
    if have is None:
        return wins(task, names, problems, seed, models)
    kept, todo = _plan(have, names, {p.id for p in problems}, models)
    out = [o for o in kept + [wins(task, [name], problems, seed, ms) for name, ms in todo] if not o.empty]
    if not out:
        return pd.DataFrame(columns=WIN_COLS)
    rank = {n: i for i, n in enumerate(names)}  # the scorers in the order asked, recorded or scored
    return pd.concat(out, ignore_index=True)[WIN_COLS].sort_values(
        "scorer", key=lambda c: c.map(rank), kind="stable").reset_index(drop=True)


def _plan(have: pd.DataFrame, names, ids: set, models) -> tuple[list, list]:
    """What the record ``have`` (``shipped.gold``) gives for ``names`` on problems ``ids``: (its rows to use,
    [(scorer, models to score it for)] for the rest). A scorer scored per model (self-likelihood) is taken
    from the record for the shipped models it holds, with the same files, and scored for the others."""
    fps = have.attrs.get("models", {})
    have = have[have["problem_id"].isin(ids)]

    def whole(rows) -> bool:
        return bool(ids) and rows["problem_id"].nunique() == len(ids)
    kept, todo = [], []
    for name in names:
        mine = have[have["scorer"] == name]
        if mine["model"].notna().any():
            recs = {m: mine[mine["model"] == getattr(m, "name", m)] if _same_model(m, fps) else mine.iloc[:0]
                    for m in models}
            kept += [r for r in recs.values() if whole(r)]
            missing = [m for m, r in recs.items() if not whole(r)]
            if missing:
                todo.append((name, missing))
        elif whole(mine):
            kept.append(mine)
        else:
            todo.append((name, models))
    return kept, todo


def rates(w: pd.DataFrame) -> pd.DataFrame:
    """``wins`` as rates per scorer, model, corruption and level (``pairs``: the rows behind each), in the order
    the scorers come."""
    if w.empty:
        return pd.DataFrame(columns=RATE_COLS)
    t = w.assign(model=w["model"].fillna("")).groupby(["scorer", "model", "corruption", "level"], sort=False)
    t = t["win"].agg(["mean", "size"]).reset_index().rename(columns={"mean": "rate", "size": "pairs"})
    # scorers and models as they come; within each, the corruptions in KINDS order, then the levels
    first = {k: i for i, k in enumerate(dict.fromkeys(zip(t["scorer"], t["model"])))}
    t = t.assign(_o=[first[k] for k in zip(t["scorer"], t["model"])], _c=t["corruption"].map(KINDS.index))
    t = t.sort_values(["_o", "_c", "level"], kind="stable").reset_index(drop=True)
    return t.assign(model=t["model"].replace("", None))[RATE_COLS]


def _wins(scored: pd.DataFrame, name: str, model: str | None) -> pd.DataFrame:
    gold = scored[scored["kind"] == "gold"].set_index("problem_id")["score"]
    bad = scored[scored["kind"] != "gold"]
    g = bad["problem_id"].map(gold)
    win = (g > bad["score"]).astype(float) + 0.5 * (g == bad["score"])
    return pd.DataFrame({"scorer": name, "model": model, "problem_id": bad["problem_id"].to_numpy(),
                         "corruption": bad["kind"].to_numpy(), "level": bad["difficulty"].to_numpy(),
                         "win": win.to_numpy()})


def pooled(rates: pd.DataFrame) -> pd.DataFrame:
    """``gold_beats_corrupted``'s rates over every level together (weighted by pairs), one row per scorer, model
    and corruption in the order they first appear."""
    keys = ["scorer", "model", "corruption"]
    t = rates.assign(wins=rates["rate"] * rates["pairs"], model=rates["model"].fillna(""))
    t = t.groupby(keys, sort=False)[["wins", "pairs"]].sum().reset_index()
    return t.assign(rate=t["wins"] / t["pairs"], model=t["model"].replace("", None))[keys + ["rate", "pairs"]]


def all_recorded(task: Task, names, models=()) -> bool:
    """Whether the shipped record holds every scorer in ``names`` (and, for one scored per model, every model)
    on every problem of ``task``: then any selection of them costs nothing to score."""
    from .. import shipped
    have = shipped.gold(task)
    return have is not None and not _plan(have, names, {p.id for p in task.problems}, models)[1]


def _same_model(m, fps: dict) -> bool:
    """Whether ``m`` (a name or ``ModelRef``) is a model the record scored: a shipped name, with the same files."""
    name = getattr(m, "name", m)
    return name in fps and getattr(m, "fingerprint", fps[name]) == fps[name]
