"""Verifier recipe v2: many policy samples per problem, contrastive within a problem (issue 11).

v1 (``verifiers.py``, still the default) sees 6 samples per problem per ladder model and learns to rank
*problems* (pooled AUROC ~0.86, within a problem ~0.53). v2 follows Cobbe et al. 2021 (GSM8K verifiers):

- data: arith *train*-distribution problems (``arith.train_stream``, never a test question), many samples
  per problem (``samples``, default 32) from every ladder model through ``engine.runner.run`` into a
  SampleCache (a rerun does not resample), labelled by the task's checker; plus each problem's gold
  solution and ``corrupted`` hard negatives (one line's result off by a digit, the rest carried on from it,
  as the ladder's own slips look). Identical texts of one problem are kept once (easy problems' 32 equal
  right answers teach little and cost a lot); held-out metrics use every sample.
- labels: ORM = the checker's verdict. PRM = per line, *this line* is right (its arithmetic is right, it
  starts from the previous line's result and applies the question's next operation; what
  ``engine/scorers/step_checker.py`` recomputes, plus the question); the ``#### N`` line gets the outcome
  label. So the PRM's lowest step score (``prm-min``) and its last step score both aim at the outcome.
  Dense labels (``dense`` > 0): every character of a line is also labelled on the PRM head, "this line is
  right up to here" against the line a right solution would have at that point (``expected_lines``); the
  scorer reads only the line ends, so the format is unchanged, but the backbone gets a target at every
  digit of a result (which the LM it started from already predicts) instead of one per line.
- model: one backbone started from a ladder LM's weights (default arith-xl: it already predicts the next
  digit of a result, which is what checking a line needs), a per-token head (PRM) and a head read at the
  last token (ORM), trained jointly with: binary cross-entropy on steps and outcomes, a within-problem
  pairwise (Bradley-Terry) loss on both the ORM logit and the PRM's weakest-step logit, and the LM loss on
  right solutions (auxiliary, keeps the arithmetic the backbone came with). Saved as two ordinary
  Hugging Face classifiers (LlamaForSequenceClassification / LlamaForTokenClassification) with the same
  tokenizer and text format, so ``engine.verifiers.load_verifier`` and the scorers read them unchanged.
- batches hold whole groups of one problem's samples (the pairwise loss needs them); checkpoints every
  ``ckpt_every`` steps (resumable), seeded, tqdm progress, ``--device cuda`` for a GPU.
- evaluation on held-out train-distribution problems: pooled and within-problem AUROC (mean over problems
  with right and wrong samples) per ladder model, and best-of-N vs majority@N and pass@N.
"""
from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..cache import SampleCache
from ..models import SamplingParams
from ..models.loader import MODELS_DIR, RECORD_FILE
from ..runner import bar_updater, run
from ..tasks import Task, arith
from ..verifiers import step_end_offsets, verifier_text
from .lm import clipped_step
from .tokenizer import build_tokenizer
from .verifiers import auroc, split, with_gold

STEP = re.compile(r"^\s*(-?\d{1,30})\s*([-+*])\s*(-?\d{1,30})\s*=\s*(-?\d{1,30})\s*$")


@dataclass(frozen=True)
class RecipeV2:
    problems: int = 360          # training + held-out problems (arith train stream)
    samples: int = 32            # samples per problem per ladder model
    corrupted: int = 2           # hard negatives per problem (gold with one slipped digit)
    max_group: int = 32          # at most this many distinct texts of one problem per batch group
    init_from: str = "arith-xl"  # ladder LM whose weights start the backbone
    epochs: int = 4
    batch: int = 64              # rows per step (whole problem groups)
    lr: float = 1e-3
    pair_weight: float = 1.0     # within-problem pairwise loss
    lm_weight: float = 0.3       # auxiliary LM loss on right solutions
    holdout: float = 0.2
    seed: int = 7
    ckpt_every: int = 100        # steps between checkpoints
    eval_batch: int = 128
    dense: float = 0.0           # weight of per-character labels (is the line right up to here?) on the PRM head


CPU = RecipeV2()
# The shipped pair (H200, 2026-11-26): 256k ladder samples with --jobs 14 in 331 s, 180 steps in 48 s;
# held-out within-problem AUROC 0.59. A smaller, longer run (500 problems, max_group 32, batch 256,
# lr 1e-3, 10 epochs = 351 steps, sampled on the GPU) did worse (0.54): more problems beat more steps.
GPU = RecipeV2(problems=1000, samples=64, corrupted=4, max_group=48, epochs=4, batch=512, lr=2e-3,
               eval_batch=1024, ckpt_every=100)
QUICK = RecipeV2(problems=12, samples=4, corrupted=1, max_group=4, init_from="arith-m", epochs=1, batch=16,
                 ckpt_every=5)
PRESETS = {"cpu": CPU, "gpu": GPU, "quick": QUICK}


# ---------------------------------------------------------------- data

def train_task(r: RecipeV2) -> Task:
    stream = arith.train_stream(r.seed + 1000)  # a seed of its own: not v1's problems, never a test question
    probs = []
    seen = set()
    for p in stream:
        if p.question in seen:
            continue
        seen.add(p.question)
        probs.append(replace(p, id=f"v2-{len(probs):05d}"))
        if len(probs) == r.problems:
            break
    return Task("arith-vtrain2", probs, arith.prompt, stop=arith.STOP, source=f"arith.train_stream({r.seed + 1000})")


def slip(p, rng: random.Random) -> str:
    """Gold with one line's result off by a digit (or a near miss) and the later lines carried on from it."""
    steps = arith.gold_steps(p)
    k = rng.randrange(len(steps))
    a, op, b, c = steps[k]
    s = str(c)
    while True:
        kind = rng.random()
        if kind < 0.6 and s:  # one digit changed
            j = rng.randrange(len(s))
            d = str((int(s[j]) + rng.choice([-2, -1, 1, 1, 2])) % 10)
            new = int(s[:j] + d + s[j + 1:]) if not (j == 0 and d == "0" and len(s) > 1) else c + 10
        elif kind < 0.8:
            new = c + rng.choice([-10, -1, 1, 10])
        else:  # operand misread: right arithmetic on a wrong number (kept if a later try changes the result)
            b = max(1, b + rng.choice([-10, -1, 1, 10]))
            new = arith.apply_op(a, op, b)
        if new != c and new >= 0:
            break
    return arith.format_solution(arith.rerun(steps[:k] + [(a, op, b, new)] + steps[k + 1:], k + 1))


def _sample_chunk(model: str, cache_path: str, r: RecipeV2, start: int, step: int, device: str) -> int:
    """One sampling worker (a process of its own, one thread): every ``step``-th problem from ``start``."""
    torch.set_num_threads(1)
    task = train_task(r)
    params = SamplingParams(n=r.samples, temperature=0.8, max_new_tokens=128)
    return run(model, task, task.problems[start::step], params, SampleCache(cache_path), device=device).generated


def expected_lines(p, completion: str) -> list[str | None]:
    """Per non-blank line up to the ``####`` line: the line a right solution would have *here*, given the
    previous line's result as written (the question's next operation on it, or ``#### <it>`` once the
    operations are done); None where the previous line had no result to start from."""
    gold = arith.gold_steps(p)
    prev: int | None = gold[0][0] if gold else None
    out: list[str | None] = []
    for i, line in enumerate(x for x in completion.rstrip("\n").split("\n") if x.strip()):
        if prev is None:
            exp = None
        elif i < len(gold):
            _, op, b, _ = gold[i]
            exp = f"{prev}{op}{b}={arith.apply_op(prev, op, b)}"
        else:
            exp = f"#### {prev}"
        out.append(exp)
        if line.strip().startswith("####"):
            break
        m = STEP.match(line)
        prev = int(m.group(4)) if m else None
    return out


def build_rows(r: RecipeV2, models: list[str], cache: SampleCache, device: str | None = "cpu", progress=True,
               jobs: int = 1) -> list[dict]:
    """Sample (or read from the cache) every ladder model on the training problems; label every row.

    ``jobs`` > 1: that many processes (one thread each, spawned) split the problems, as ``evaluate --jobs``
    does; tiny models sample about as fast per process on a CPU core as on a GPU."""
    from ..results import load_samples
    task = train_task(r)
    params = SamplingParams(n=r.samples, temperature=0.8, max_new_tokens=128)
    rows = []
    for m in models:
        if jobs > 1:
            from concurrent.futures import ProcessPoolExecutor
            from multiprocessing import get_context
            t0 = time.time()
            with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as ex:
                done = sum(f.result() for f in [ex.submit(_sample_chunk, m, str(cache.path), r, j, jobs, device)
                                                 for j in range(jobs)])
            if progress:
                print(f"sampling {Path(m).name}: {done:,} new samples in {time.time() - t0:.0f}s ({jobs} processes)")
        else:
            bar = tqdm(desc=f"sampling {Path(m).name}", unit="sample", disable=not progress)
            run(m, task, task.problems, params, cache, device=device, on_progress=bar_updater(bar))
            bar.close()
        df = load_samples(cache, m, task, task.problems, params)
        rows += [dict(problem_id=x.problem_id, completion=x.text if isinstance(x.text, str) else "",
                      source=Path(m).name) for x in df.itertuples()]
    rows = with_gold(task, rows, slip, r.corrupted, r.seed, arith.local_step_labels)
    if r.dense:
        by_id = task.by_id()
        for row in rows:
            row["expected"] = expected_lines(by_id[row["problem_id"]], row["completion"])
    return rows


def dedupe(rows) -> list[dict]:
    seen, out = set(), []
    for x in rows:
        k = (x["problem_id"], x["completion"].rstrip("\n"))
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


# ---------------------------------------------------------------- model

class Joint(torch.nn.Module):
    """A Llama backbone with a per-token head (PRM), a last-token head (ORM) and the LM head (auxiliary)."""

    def __init__(self, base_dir: Path):
        super().__init__()
        from transformers import LlamaForCausalLM
        lm = LlamaForCausalLM.from_pretrained(base_dir)
        self.config = lm.config
        self.model = lm.model
        self.lm_head = lm.lm_head
        h = self.config.hidden_size
        self.prm = torch.nn.Linear(h, 1, bias=True)
        self.orm = torch.nn.Linear(h, 1, bias=False)
        for lin in (self.prm, self.orm):
            torch.nn.init.normal_(lin.weight, std=0.02)
        torch.nn.init.zeros_(self.prm.bias)

    def forward(self, input_ids, attention_mask):
        hs = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = (attention_mask * torch.arange(input_ids.shape[1], device=input_ids.device)).argmax(-1)
        orm = self.orm(hs[torch.arange(len(hs), device=hs.device), last])[:, 0]
        return hs, self.prm(hs)[..., 0], orm

    def save(self, out: Path, tok) -> None:
        """Two ordinary HF classifiers: ``out/orm`` (sequence) and ``out/prm`` (token), sharing the backbone."""
        from transformers import LlamaConfig, LlamaForSequenceClassification, LlamaForTokenClassification
        cfg = LlamaConfig(**{k: v for k, v in self.config.to_dict().items()
                             if k not in ("architectures", "tie_word_embeddings")})
        cfg.num_labels, cfg.tie_word_embeddings = 1, False
        cfg.pad_token_id = tok.pad_token_id
        backbone = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        for kind, cls, head in (("orm", LlamaForSequenceClassification, self.orm),
                                ("prm", LlamaForTokenClassification, self.prm)):
            m = cls(cfg)
            m.model.load_state_dict(backbone)
            m.score.load_state_dict({k: v.detach().cpu() for k, v in head.state_dict().items()})
            m.eval()
            m.save_pretrained(out / kind)
            tok.save_pretrained(out / kind)


def encode(tok, batch, device):
    texts = [verifier_text(x["prompt"], x["completion"]) for x in batch]
    enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=512,
              add_special_tokens=False, return_offsets_mapping=True)
    step = torch.full(enc["input_ids"].shape, -1.0)
    lm = torch.full(enc["input_ids"].shape, -100, dtype=torch.long)
    for j, x in enumerate(batch):
        ends = step_end_offsets(x["prompt"], x["completion"])
        offs = enc["offset_mapping"][j].tolist()
        pos = {a: t for t, (a, b) in enumerate(offs) if b - a == 1}
        for off, lab in zip(ends, x.get("step_labels", [])):
            if off in pos:
                step[j, pos[off]] = float(lab)
        if x.get("correct"):  # LM target: the completion's next characters
            n_prompt = len(x["prompt"])
            ids = enc["input_ids"][j]
            for t, (a, b) in enumerate(offs[:-1]):
                if a >= n_prompt - 1 and b - a == 1 and enc["attention_mask"][j, t + 1]:
                    lm[j, t] = ids[t + 1]
    y = torch.tensor([float(x.get("correct", 0)) for x in batch])
    dense = torch.full(enc["input_ids"].shape, -1.0)
    for j, x in enumerate(batch):
        if "expected" not in x:
            continue
        offs = enc["offset_mapping"][j].tolist()
        pos = {a: t for t, (a, b) in enumerate(offs) if b - a == 1}
        start = len(x["prompt"])
        lines = [ln for ln in x["completion"].rstrip("\n").split("\n")]
        at = start
        k = 0
        for ln in lines:
            if ln.strip() and k < len(x["expected"]):
                exp = x["expected"][k]
                ok = exp is not None
                for c, ch in enumerate(ln):
                    ok = ok and c < len(exp) and exp[c] == ch
                    if at + c in pos:
                        dense[j, pos[at + c]] = float(ok)
                k += 1
            at += len(ln) + 1
    ids = enc["input_ids"].to(device)
    return ids, enc["attention_mask"].to(device), step.to(device), y.to(device), lm.to(device), dense.to(device)


def weakest(step_logits, step_labels):
    masked = step_logits.masked_fill(step_labels < 0, float("inf"))
    w = masked.min(-1).values
    return torch.where(torch.isinf(w), torch.zeros_like(w), w)


def pairwise(scores, y, groups):
    """Mean over problems of the Bradley-Terry loss over (right, wrong) pairs of that problem's rows."""
    g = torch.as_tensor(groups, device=scores.device)
    mask = (g[:, None] == g[None, :]) & (y > 0.5)[:, None] & (y < 0.5)[None, :]
    if not mask.any():
        return scores.sum() * 0
    per = torch.nn.functional.softplus(scores[None, :] - scores[:, None])  # -(s_right - s_wrong)
    # each pair weighted 1 / (its problem's pairs): every problem counts the same
    row_pairs = torch.zeros_like(scores).index_add_(0, g.long(), mask.float().sum(1))  # pairs per group id
    w = mask.float() / row_pairs[g.long()][:, None].clamp(min=1)
    n_groups = (row_pairs > 0).sum()
    return (per * w).sum() / n_groups


def batches(train_rows, r: RecipeV2, epoch: int):
    """Whole problem groups (at most ``max_group`` rows each, right and wrong both kept when present)."""
    rng = random.Random(f"{r.seed}-{epoch}")
    by_p: dict[str, list[dict]] = {}
    for x in train_rows:
        by_p.setdefault(x["problem_id"], []).append(x)
    pids = sorted(by_p)
    rng.shuffle(pids)
    out, cur = [], []
    for pid in pids:
        rows = by_p[pid][:]
        rng.shuffle(rows)
        if len(rows) > r.max_group:
            pos = [x for x in rows if x["correct"]]
            neg = [x for x in rows if not x["correct"]]
            half = r.max_group // 2
            take = pos[:max(half, r.max_group - len(neg))] + neg[:max(half, r.max_group - len(pos))]
            rows = take[: r.max_group]
        cur += rows
        if len(cur) >= r.batch:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def fit(r: RecipeV2, train_rows, out: Path, base_dir: Path, device: str, progress=True):
    torch.manual_seed(r.seed)
    tok = build_tokenizer()
    tok.padding_side = "right"
    model = Joint(base_dir).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.01)
    n_steps = sum(len(batches(train_rows, r, e)) for e in range(r.epochs))
    warm = max(1, n_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.05, 1 - (s - warm) / max(1, n_steps - warm)))
    ckpt = out / "ckpt.pt"
    step, elapsed, losses, tokens = 0, 0.0, [], 0
    if ckpt.exists():
        st = torch.load(ckpt, weights_only=False, map_location=device)
        model.load_state_dict(st["model"]), opt.load_state_dict(st["opt"]), sched.load_state_dict(st["sched"])
        step, elapsed, losses, tokens = st["step"], st["elapsed"], st["losses"], st["tokens"]
        torch.set_rng_state(st["rng"])
    bar = tqdm(total=n_steps, initial=step, desc="v2 verifiers", disable=not progress)
    g = 0
    t0 = time.time()
    model.train()
    for epoch in range(r.epochs):
        for b in batches(train_rows, r, epoch):
            g += 1
            if g <= step:
                continue
            ids, att, slab, y, lm, dense = encode(tok, b, device)
            hs, sl, ol = model(ids, att)
            m = slab >= 0
            bce = torch.nn.functional.binary_cross_entropy_with_logits
            loss = bce(sl[m], slab[m]) + bce(ol, y)
            if r.dense and (dense >= 0).any():
                md = dense >= 0
                loss = loss + r.dense * bce(sl[md], dense[md])
            ids_ = {pid: k for k, pid in enumerate(dict.fromkeys(x["problem_id"] for x in b))}
            groups = [ids_[x["problem_id"]] for x in b]
            loss = loss + r.pair_weight * (pairwise(ol, y, groups) + pairwise(weakest(sl, slab), y, groups)) / 2
            if r.lm_weight and (lm >= 0).any():
                sel = lm >= 0
                logits = model.lm_head(hs[sel])
                loss = loss + r.lm_weight * torch.nn.functional.cross_entropy(logits, lm[sel])
            losses.append(clipped_step(model, opt, loss, sched))
            tokens += int(att.sum())
            step = g
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if step % r.ckpt_every == 0 or step == n_steps:
                tmp = ckpt.with_suffix(".tmp")
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "step": step, "elapsed": elapsed + time.time() - t0, "losses": losses,
                            "tokens": tokens, "rng": torch.get_rng_state()}, tmp)
                os.replace(tmp, ckpt)
    bar.close()
    elapsed += time.time() - t0
    model.eval()
    return model, tok, dict(steps=n_steps, tokens=tokens, wall_time_s=round(elapsed, 1),
                            final_loss=round(float(np.mean(losses[-20:])), 4) if losses else None)


# ---------------------------------------------------------------- evaluation

def score_rows(model, tok, rows, device, batch=128) -> tuple[np.ndarray, np.ndarray]:
    """(ORM probability, PRM lowest step probability) per row; identical texts of a problem scored once."""
    key = [(x["prompt"], x["completion"].rstrip("\n")) for x in rows]
    uniq = list(dict.fromkeys(key))
    first = {k: i for i, k in reversed(list(enumerate(key)))}
    todo = [dict(prompt=p, completion=c, step_labels=[0] * len(step_end_offsets(p, c))) for p, c in uniq]
    o_all, p_all = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(todo), batch):
            ids, att, slab, _, _, _ = encode(tok, todo[i:i + batch], device)
            _, sl, ol = model(ids, att)
            o_all.append(torch.sigmoid(ol).float().cpu().numpy())
            ps = torch.sigmoid(sl).masked_fill(slab < 0, 2.0).min(-1).values
            p_all.append(torch.where(ps > 1.5, torch.zeros_like(ps), ps).float().cpu().numpy())
    o, p = (np.concatenate(o_all), np.concatenate(p_all)) if todo else (np.zeros(0), np.zeros(0))
    idx = {k: j for j, k in enumerate(uniq)}
    del first
    sel = np.array([idx[k] for k in key], dtype=int)
    return o[sel], p[sel]


def within_auroc(scores, labels, groups) -> tuple[float, int]:
    by: dict = {}
    for s, y, g in zip(scores, labels, groups):
        by.setdefault(g, ([], []))
        by[g][0].append(s), by[g][1].append(y)
    vals = [auroc(s, y) for s, y in by.values() if 0 < sum(y) < len(y)]
    return (float(np.mean(vals)) if vals else float("nan")), len(vals)


def best_of(scores, labels, groups, answers=None, seed=0) -> dict:
    """best-of-N (ties broken at random), majority@N (when answers are given) and pass@N, over all rows."""
    rng = np.random.default_rng(seed)
    by: dict = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    bo, pas, maj = [], [], []
    for g, ix in by.items():
        s = np.asarray([scores[i] for i in ix])
        y = np.asarray([labels[i] for i in ix], bool)
        top = np.flatnonzero(s == s.max())
        bo.append(float(y[rng.choice(top)]))
        pas.append(float(y.any()))
        if answers is not None:
            cnt = Counter(answers[i] for i in ix if answers[i] is not None)
            if cnt:
                best = max(cnt.values())
                winners = [a for a, c in cnt.items() if c == best]
                ok = {answers[i] for i in ix if labels[i]}
                maj.append(float(np.mean([a in ok for a in winners])))
            else:
                maj.append(0.0)
    out = {"best_of": float(np.mean(bo)), "pass": float(np.mean(pas))}
    if answers is not None:
        out["majority"] = float(np.mean(maj))
        gap = out["pass"] - out["majority"]
        out["gap_closed"] = (out["best_of"] - out["majority"]) / gap if gap > 0 else None
    return out


def evaluate(model, tok, held_rows, device, batch=128) -> dict:
    o, p = score_rows(model, tok, held_rows, device, batch)
    out = {}
    for src in sorted({x["source"] for x in held_rows}):
        ix = [i for i, x in enumerate(held_rows) if x["source"] == src]
        y = np.array([held_rows[i]["correct"] for i in ix], bool)
        g = [held_rows[i]["problem_id"] for i in ix]
        ans = [_answer(held_rows[i]["completion"]) for i in ix]
        d = {"n": len(ix), "positive_rate": float(y.mean())}
        for name, s in (("orm", o[ix]), ("prm_min", p[ix])):
            w, npb = within_auroc(s, y, g)
            d[name] = {"auroc": _num(auroc(s, y)), "within_problem_auroc": _num(w), "problems_with_both": npb}
            if src.startswith("arith-"):
                d[name]["best_of_n"] = best_of(s, y, g, ans)
        out[src] = d
    ladder = [i for i, x in enumerate(held_rows) if x["source"].startswith("arith-")]
    y = np.array([held_rows[i]["correct"] for i in ladder], bool)
    g = [(held_rows[i]["source"], held_rows[i]["problem_id"]) for i in ladder]
    summary = {}
    for name, s in (("orm", o[ladder]), ("prm_min", p[ladder])):
        w, npb = within_auroc(s, y, g)
        summary[name] = {"auroc": _num(auroc(s, y)), "within_problem_auroc": _num(w), "problems_with_both": npb}
    # gold vs its slipped copies (does it check the arithmetic?)
    gold = {x["problem_id"]: i for i, x in enumerate(held_rows) if x["source"] == "gold"}
    for name, s in (("orm", o), ("prm_min", p)):
        wins = [1.0 if s[gold[x["problem_id"]]] > s[i] else 0.5 if s[gold[x["problem_id"]]] == s[i] else 0.0
                for i, x in enumerate(held_rows) if x["source"] == "corrupted" and x["problem_id"] in gold]
        summary[name]["gold_beats_corrupted"] = float(np.mean(wins)) if wins else None
    return {"ladder_samples": summary, "per_source": out}


def _answer(text):
    m = re.search(r"####\s*(-?\d+)", text or "")
    return m.group(1) if m else None


def _num(x):
    return None if x != x else float(x)


# ---------------------------------------------------------------- entry point

def train_verifiers_v2(out: Path, models_dir: Path = MODELS_DIR, preset: str = "cpu", device: str = "cpu",
                       cache_path: Path | None = None, progress: bool = True, jobs: int = 1,
                       sample_device: str = "cpu", **overrides) -> dict:
    """Sample (cached), train the joint verifier, save ``out/orm`` and ``out/prm``, evaluate on held-out."""
    from ..models import list_shipped
    r = replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(r.seed)
    random.seed(r.seed)
    names = list_shipped() if models_dir == MODELS_DIR else sorted(
        d.parent.name for d in Path(models_dir).glob(f"*/{RECORD_FILE}") if d.parent.name != "verifiers")
    models = [str(Path(models_dir) / n) for n in names]
    cache = SampleCache(cache_path or out / "train_samples.duckdb")
    t0 = time.time()
    rows = build_rows(r, models, cache, sample_device, progress, jobs)
    sample_s = time.time() - t0
    train_rows, held_rows = split(rows, r)
    train_u = dedupe(train_rows)
    if progress:
        print(f"{len(rows):,} rows ({len(train_rows):,} train -> {len(train_u):,} distinct, "
              f"{len(held_rows):,} held out); sampling {sample_s:.0f}s")
    if (out / "orm" / "model.safetensors").exists() and (out / "prm" / "model.safetensors").exists() \
            and (out / "fit.json").exists():
        model, tok, fit_info = _reload(out, device), build_tokenizer(), json.loads((out / "fit.json").read_text())
    else:
        model, tok, fit_info = fit(r, train_u, out, Path(models_dir) / r.init_from, device, progress)
        model.save(out, tok)
        (out / "fit.json").write_text(json.dumps(fit_info))
        (out / "ckpt.pt").unlink(missing_ok=True)
    t1 = time.time()
    ev = evaluate(model, tok, held_rows, device, r.eval_batch)
    eval_s = time.time() - t1
    n_params = sum(p.numel() for p in model.model.parameters())
    recs = {}
    for kind in ("orm", "prm"):
        key = "orm" if kind == "orm" else "prm_min"
        s = ev["ladder_samples"][key]
        record = {
            "name": kind, "kind": kind, "recipe_version": "v2", "params": n_params + (121 if kind == "prm" else 120),
            "training_examples": len(train_u), "training_rows_before_dedupe": len(train_rows),
            "trained_on": sorted({x["source"] for x in train_u}),
            "training_tokens": fit_info["tokens"], "epochs": r.epochs,
            "training_flops": 6 * n_params * fit_info["tokens"], "wall_time_s": fit_info["wall_time_s"],
            "sampling_s": round(sample_s, 1), "eval_s": round(eval_s, 1),
            "seed": r.seed, "final_loss": fit_info["final_loss"], "recipe": asdict(r), "device": device,
            "initialised_from": r.init_from, "shared_backbone": "ORM and PRM share one backbone trained jointly",
            "data": (f"arith train distribution (arith.train_stream, test questions excluded): {r.problems} problems, "
                     f"{r.samples} samples per ladder model at T=0.8 + gold + {r.corrupted} slipped copies; "
                     "identical texts of a problem kept once"),
            "step_labels": "per line: right arithmetic, starts from the previous result, the question's next "
                           "operation; the #### line gets the outcome" if kind == "prm" else None,
            "held_out": {"unit": "solution", "auroc": s["auroc"], "within_problem_auroc": s["within_problem_auroc"],
                         "problems_with_both": s["problems_with_both"],
                         "gold_beats_corrupted": s["gold_beats_corrupted"],
                         "per_source": {src: {"n": d["n"], "positive_rate": d["positive_rate"], **d[key]}
                                        for src, d in ev["per_source"].items()}},
        }
        (out / kind / RECORD_FILE).write_text(json.dumps(record, indent=2))
        recs[kind] = record
        if progress:
            print(f"{kind}: held-out AUROC pooled {s['auroc']:.3f}, within a problem {s['within_problem_auroc']:.3f} "
                  f"({s['problems_with_both']} problem-model groups); gold beats a slipped copy "
                  f"{s['gold_beats_corrupted']:.0%}")
            for src, d in ev["per_source"].items():
                b = d[key].get("best_of_n")
                if b:
                    print(f"  {src}: within {d[key]['within_problem_auroc']:.3f}  best-of-{r.samples} "
                          f"{b['best_of']:.3f}  majority {b['majority']:.3f}  pass {b['pass']:.3f}")
    return recs


def _reload(out: Path, device: str):
    """The saved pair as one scorer object with ``model``/``orm``/``prm`` (for re-evaluation)."""
    from transformers import LlamaForSequenceClassification, LlamaForTokenClassification

    class _Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.o = LlamaForSequenceClassification.from_pretrained(out / "orm")
            self.p = LlamaForTokenClassification.from_pretrained(out / "prm")
            self.model = self.o.model

        def forward(self, ids, att):
            return None, self.p(input_ids=ids, attention_mask=att).logits[..., 0], \
                self.o(input_ids=ids, attention_mask=att).logits[:, 0]

    return _Pair().to(device).eval()
