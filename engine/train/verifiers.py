"""Train the outcome (ORM) and process (PRM) reward models on the ladder's own samples.

Data: problems from the arith *train* distribution (never the test set), 6
samples each from every ladder model at T=0.8, generated through the engine
and cached (so a rerun does not resample), labelled by the checker; plus each
problem's gold solution and a corrupted copy of it (one step's result nudged),
which pushes the verifiers to check arithmetic rather than only to recognise
the ladder's usual failure patterns. (Three times the problems with three
corrupted copies each did no better on that check.) These small verifiers
still barely check arithmetic: see ``gold_beats_corrupted`` in their records.
Problems are split 80/20 into train and held-out; the held-out AUROCs are what
the app shows.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForSequenceClassification, LlamaForTokenClassification

from ..cache import SampleCache
from ..models import SamplingParams, list_shipped
from ..models.loader import MODELS_DIR, RECORD_FILE, training_record
from ..runner import bar_updater, run
from ..tasks import Task, arith
from ..verifiers import step_end_offsets, verifier_text
from .lm import clipped_step
from .tokenizer import build_tokenizer

SEED = 7


@dataclass(frozen=True)
class VerifierRecipe:
    per_level: int = 100        # training problems per difficulty level
    samples: int = 6            # samples per problem per ladder model
    corrupted: int = 1          # corrupted copies of each gold solution
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    ffn: int = 176
    epochs: int = 2
    batch: int = 32
    lr: float = 1e-3
    holdout: float = 0.2
    seed: int = SEED
    # "" = random init at the sizes above; a ladder model's name starts from its weights, as reward
    # models usually start from a pretrained LM. Tried with arith-l: held-out AUROC 0.842 vs 0.861 and
    # no better at spotting a nudged result, so the shipped verifiers start from scratch.
    init_from: str = ""


QUICK = VerifierRecipe(per_level=4, samples=4, corrupted=1, d_model=32, n_layers=1, n_heads=2, ffn=64, epochs=1,
                       batch=16, init_from="arith-m")


def train_task(r: VerifierRecipe) -> Task:
    test_q = {p.question for p in arith.load_test()}
    probs = [p for p in arith.generate(r.seed, r.per_level, prefix="vtrain") if p.question not in test_q]
    return Task("arith-vtrain", probs, arith.prompt, stop=arith.STOP, source=f"arith.generate(seed={r.seed})")


def corrupt(p, rng: random.Random) -> str:
    """The gold solution with one step's result changed (that step and the rest are wrong)."""
    steps = arith.gold_steps(p)
    k = rng.randrange(len(steps))
    a, op, b, c = steps[k]
    c = c + rng.choice([-10, -2, -1, 1, 2, 10]) if c > 10 else c + rng.choice([1, 2, 3])
    return arith.format_solution(arith.rerun(steps[:k] + [(a, op, b, c)] + steps[k + 1:], k + 1))


def build_rows(r: VerifierRecipe, models: list[str], cache: SampleCache, progress=True) -> list[dict]:
    task = train_task(r)
    params = SamplingParams(n=r.samples, temperature=0.8, max_new_tokens=128)
    from ..results import load_samples
    rows = []
    for m in models:
        bar = tqdm(desc=f"sampling {Path(m).name}", unit="sample", disable=not progress)
        run(m, task, task.problems, params, cache, on_progress=bar_updater(bar))
        bar.close()
        df = load_samples(cache, m, task, task.problems, params)
        rows += [dict(problem_id=x.problem_id, completion=x.text, source=Path(m).name) for x in df.itertuples()]
    return with_gold(task, rows, corrupt, r.corrupted, r.seed, step_labels)


def step_labels(p, completion: str, correct: bool) -> list[bool]:
    steps = arith.check_steps(p, completion)
    # the "#### N" line is the last step: right iff every step and the answer are
    return steps + [correct and all(steps)] if "####" in completion else steps


def with_gold(task: Task, rows: list[dict], bad, copies: int, seed: int, labels) -> list[dict]:
    """``rows`` of sampled completions plus each problem's gold solution and ``copies`` corrupted copies
    (``bad(problem, rng)``), every row with its prompt, level, correctness and ``labels(problem, completion,
    correct)`` as its step labels."""
    rng = random.Random(seed)
    for p in task.problems:
        rows.append(dict(problem_id=p.id, completion=p.solution, source="gold"))
        rows += [dict(problem_id=p.id, completion=bad(p, rng), source="corrupted") for _ in range(copies)]
    by_id = task.by_id()
    for row in rows:
        p = by_id[row["problem_id"]]
        row["prompt"] = task.prompt(p)
        row["level"] = p.difficulty
        row["correct"] = bool(task.grade(p, row["completion"])[1])
        row["step_labels"] = labels(p, row["completion"], row["correct"])
    return rows


def split(rows, r):
    """(train rows, held-out rows): ``r.holdout`` of the problems held out, chosen by ``r.seed`` (both recipes)."""
    ids = sorted({x["problem_id"] for x in rows})
    random.Random(r.seed).shuffle(ids)
    held = set(ids[: int(len(ids) * r.holdout)])
    return [x for x in rows if x["problem_id"] not in held], [x for x in rows if x["problem_id"] in held]


def _config(r: VerifierRecipe, tok):
    return LlamaConfig(vocab_size=len(tok), hidden_size=r.d_model, intermediate_size=r.ffn,
                       num_hidden_layers=r.n_layers, num_attention_heads=r.n_heads, num_key_value_heads=r.n_heads,
                       max_position_embeddings=512, pad_token_id=tok.pad_token_id, num_labels=1,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def _encode(tok, batch, kind):
    texts = [verifier_text(x["prompt"], x["completion"]) for x in batch]
    enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=512,
              add_special_tokens=False, return_offsets_mapping=True)
    if kind == "orm":
        return enc, torch.tensor([float(x["correct"]) for x in batch])
    labels = torch.full(enc["input_ids"].shape, -1.0)
    for j, x in enumerate(batch):
        ends = step_end_offsets(x["prompt"], x["completion"])
        pos = {a: t for t, (a, b) in enumerate(enc["offset_mapping"][j].tolist()) if b - a == 1}
        for off, lab in zip(ends, x["step_labels"]):
            if off in pos:
                labels[j, pos[off]] = float(lab)
    return enc, labels


def _forward(model, enc, kind):
    logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    return logits[:, 0] if kind == "orm" else logits[..., 0]


def _loss(logits, labels):
    mask = labels >= 0
    return torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], labels[mask])


def predict(model, tok, rows, kind, batch=64) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) over held-out rows: per solution (ORM) or per step (PRM)."""
    model.eval()
    s_all, y_all = [], []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            enc, labels = _encode(tok, rows[i:i + batch], kind)
            probs = torch.sigmoid(_forward(model, enc, kind))
            mask = labels >= 0
            s_all.append(probs[mask].numpy())
            y_all.append(labels[mask].numpy())
    return np.concatenate(s_all), np.concatenate(y_all)


def auroc(scores, labels) -> float:
    """Probability a random positive outscores a random negative (ties count half)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    uniq, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]  # average rank of each tie group
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def solution_scores(model, tok, rows, kind, batch=64) -> np.ndarray:
    """One score per row, as the engine's verifier gives it (the PRM's weakest step)."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            enc, labels = _encode(tok, rows[i:i + batch], kind)
            probs = torch.sigmoid(_forward(model, enc, kind))
            if kind == "orm":
                out += probs.tolist()
            else:
                out += [float(p[m].min()) if m.any() else 0.0 for p, m in zip(probs, labels >= 0)]
    return np.asarray(out)


def gold_beats_corrupted(model, tok, held_rows, kind) -> dict:
    """How often the gold solution outscores a copy with one result nudged, per level (held-out problems).

    AUROC on the ladder's samples rewards spotting its usual failure patterns;
    this asks whether the verifier checks the arithmetic itself.
    """
    rows = [x for x in held_rows if x["source"] in ("gold", "corrupted")]
    if not rows:
        return {}
    scores = solution_scores(model, tok, rows, kind)
    gold = {x["problem_id"]: s for x, s in zip(rows, scores) if x["source"] == "gold"}
    wins: dict = {}
    for x, s in zip(rows, scores):
        if x["source"] == "corrupted" and x["problem_id"] in gold:
            g = gold[x["problem_id"]]
            wins.setdefault(str(x["level"]), []).append(1.0 if g > s else 0.5 if g == s else 0.0)
    every = [w for v in wins.values() for w in v]
    return {"all": float(np.mean(every)), "pairs": len(every),
            "by_level": {k: float(np.mean(v)) for k, v in sorted(wins.items())}}


def _json_num(x: float) -> float | None:
    """NaN (AUROC of a one-class source such as gold) is not JSON: write null."""
    return None if x != x else x


def train_one(kind: str, r: VerifierRecipe, train_rows, held_rows, out_dir: Path, progress=True) -> dict:
    """Train (unless already trained), then evaluate on every held-out source present now.

    Evaluation always reruns, so a ladder model trained after the verifier gets
    its AUROC by rerunning the same command.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rec_path = out_dir / RECORD_FILE
    cls = LlamaForSequenceClassification if kind == "orm" else LlamaForTokenClassification
    tok = build_tokenizer()
    tok.padding_side = "right"
    if rec_path.exists() and (out_dir / "model.safetensors").exists():
        record = training_record(out_dir)
        model = cls.from_pretrained(out_dir)
    else:
        model, record = _fit(kind, cls, tok, r, train_rows, out_dir, progress)
    # one pass per source; the overall AUROC pools them (it does not depend on row order)
    scored = {src: predict(model, tok, [x for x in held_rows if x["source"] == src], kind)
              for src in sorted({x["source"] for x in held_rows})}
    s = np.concatenate([ss for ss, _ in scored.values()])
    y = np.concatenate([yy for _, yy in scored.values()])
    per_source = {src: {"auroc": _json_num(auroc(ss, yy)), "n": int(len(yy)), "positive_rate": float(yy.mean())}
                  for src, (ss, yy) in scored.items()}
    record["held_out"] = {"unit": "solution" if kind == "orm" else "step", "auroc": _json_num(auroc(s, y)),
                          "n": int(len(y)), "per_source": per_source,
                          "gold_beats_corrupted": gold_beats_corrupted(model, tok, held_rows, kind)}
    rec_path.write_text(json.dumps(record, indent=2))
    return record


def _fit(kind, cls, tok, r, train_rows, out_dir, progress):
    torch.manual_seed(r.seed)
    if r.init_from:
        base = out_dir.parent.parent / r.init_from  # <out>/verifiers/<kind> -> <out>/<ladder model>
        if not (base / "config.json").exists():
            from ..errors import EngineError
            raise EngineError(f"the verifiers start from {r.init_from!r}, which is not under {base.parent}; "
                              "run `python -m engine.train ladder` first")
        model = cls.from_pretrained(base, num_labels=1)  # backbone from the LM, a fresh scalar head
    else:
        model = cls(_config(r, tok))
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.05)
    rng = random.Random(r.seed)
    ckpt = out_dir / "ckpt.pt"
    start_epoch, elapsed, losses = 0, 0.0, []
    if ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"]), opt.load_state_dict(st["opt"])
        start_epoch, elapsed, losses = st["epoch"], st["elapsed"], st["losses"]
    order = list(range(len(train_rows)))
    steps_per_epoch = (len(order) + r.batch - 1) // r.batch
    total = steps_per_epoch * r.epochs
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warmup, then linear decay to 10%
        opt, lambda s: (s + 1) / warm if s < warm else max(0.1, 1 - (s - warm) / max(1, total - warm)))
    for _ in range(start_epoch * steps_per_epoch):
        sched.step()
    tokens = 0
    for epoch in range(r.epochs):
        rng.shuffle(order)  # shuffle every epoch (also the skipped ones) so a resume sees the same order
        if epoch < start_epoch:
            continue
        t0 = time.time()
        model.train()
        for i in tqdm(range(0, len(order), r.batch), desc=f"{kind} epoch {epoch + 1}/{r.epochs}", disable=not progress):
            batch = [train_rows[j] for j in order[i:i + r.batch]]
            enc, labels = _encode(tok, batch, kind)
            loss = _loss(_forward(model, enc, kind), labels)
            losses.append(clipped_step(model, opt, loss, sched))
            tokens += int(enc["attention_mask"].sum())
        elapsed += time.time() - t0
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1,
                    "elapsed": elapsed, "losses": losses}, tmp)
        os.replace(tmp, ckpt)
    model.eval()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    record = {
        "name": out_dir.name, "kind": kind, "params": n_params,
        "training_examples": len(train_rows), "trained_on": sorted({x["source"] for x in train_rows}),
        "training_tokens": tokens, "epochs": r.epochs,
        "training_flops": 6 * n_params * tokens, "wall_time_s": round(elapsed, 1), "seed": r.seed,
        "final_loss": round(float(np.mean(losses[-20:])), 4), "recipe": asdict(r), "device": "cpu",
        "initialised_from": r.init_from or "random",
        "data": "arith train distribution (seeded, test questions excluded): ladder samples at T=0.8 + gold + corrupted gold",
    }
    ckpt.unlink(missing_ok=True)
    return model, record


def train_verifiers(out: Path = MODELS_DIR, quick: bool = False, progress: bool = True) -> dict:
    r = QUICK if quick else VerifierRecipe()
    models = [str(out / n) for n in _ladder_names(out)]
    if not models:
        from ..errors import EngineError
        raise EngineError(f"no ladder models under {out}; run `python -m engine.train ladder` first")
    cache = SampleCache(out / "verifiers" / "train_samples.duckdb" if quick else
                        Path(__file__).resolve().parents[2] / "cache" / "verifier_train.duckdb")
    rows = build_rows(r, models, cache, progress)
    train_rows, held_rows = split(rows, r)
    recs = {}
    for kind in ("orm", "prm"):
        recs[kind] = train_one(kind, r, train_rows, held_rows, out / "verifiers" / kind, progress)
        h = recs[kind]["held_out"]
        print(f"{kind}: held-out {h['unit']} AUROC {h['auroc']:.3f} "
              + " ".join(f"{k}={v['auroc']:.3f}" for k, v in h["per_source"].items() if v["auroc"] is not None))
        g = h.get("gold_beats_corrupted") or {}
        if g:
            print(f"{kind}: gold beats a nudged copy {g['all']:.0%} of {g['pairs']} pairs; by level "
                  + " ".join(f"L{k} {v:.0%}" for k, v in g["by_level"].items()))
    return recs


def _ladder_names(out: Path) -> list[str]:
    if out == MODELS_DIR:
        return list_shipped()
    return sorted(d.parent.name for d in out.glob(f"*/{RECORD_FILE}") if d.parent.name != "verifiers")
