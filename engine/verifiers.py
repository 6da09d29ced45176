"""Verifiers: score sampled solutions so a strategy can pick among them.

One small interface for every verifier: ``score(problem, completions) -> scores``
(higher = more likely correct) and, for step-level verifiers,
``step_scores(problem, completions) -> per-step scores``. Learned verifiers
are transformers models in Hugging Face format loaded with ``from_pretrained``:
the outcome reward model (ORM) is a sequence classifier; the process reward
model (PRM) is a token classifier read at the end of every solution line.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ModelError
from .models.loader import MODELS_DIR, fingerprint, training_record
from .tasks import Problem

VERIFIERS_DIR = MODELS_DIR / "verifiers"
AGGREGATES = ("min", "prod", "last", "mean")
STORED_AGGREGATE = "min"  # a PRM's one score, what the cache's score column holds beside its step scores
# texts per forward pass. On a CPU a big batch's activations spill out of the caches: the shipped ORM scored
# 380 arith texts in 3.1 s at 256 a batch, 1.7 s at 32 and 1.65 s at 16 (one thread; scores equal to 3e-7)
MAX_BATCH = {"cpu": 32, "cuda": 256}


def verifier_text(prompt: str, completion: str) -> str:
    """What a verifier reads: the problem's prompt and the completion, one trailing newline."""
    return prompt + completion.rstrip("\n") + "\n"


def step_end_offsets(prompt: str, completion: str) -> list[int]:
    """Character offsets (in ``verifier_text``) of the newline ending each solution line."""
    text = verifier_text(prompt, completion)
    out, pos = [], len(prompt)
    for line in text[len(prompt):].split("\n")[:-1]:
        pos += len(line)
        if line.strip():
            out.append(pos)
        pos += 1
    return out


@dataclass
class LearnedVerifier:
    name: str
    kind: str                 # "orm" or "prm"
    path: str
    fingerprint: str
    model: object
    tokenizer: object
    record: dict
    aggregate: str = STORED_AGGREGATE  # PRM: how step scores become one score
    max_batch: int = 256

    def _batches(self, texts):
        """Chunks of similar length (little padding), as (positions in ``texts``, texts)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for i in range(0, len(order), self.max_batch):
            idx = order[i:i + self.max_batch]
            yield idx, [texts[j] for j in idx]

    def _encode(self, texts):
        import torch
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.tokenizer.model_max_length, add_special_tokens=False,
                             return_offsets_mapping=True)
        dev = next(self.model.parameters()).device
        return enc, {k: enc[k].to(dev) for k in ("input_ids", "attention_mask")}, torch

    def step_scores_many(self, prompts: Sequence[str], completions: Sequence[str]) -> list[list[float]]:
        """Per (prompt, completion) pair, the PRM's score at the end of each solution line; pairs of any
        problems are batched together."""
        if self.kind != "prm":
            return [[] for _ in completions]
        texts = [verifier_text(p, c) for p, c in zip(prompts, completions)]
        out: list[list[float]] = [[] for _ in texts]
        for idx, chunk in self._batches(texts):
            enc, inputs, torch = self._encode(chunk)
            with torch.inference_mode():
                probs = positive_probability(self.model(**inputs).logits).cpu().numpy()
            for j, i in enumerate(idx):
                ends = set(step_end_offsets(prompts[i], completions[i]))
                offs = enc["offset_mapping"][j].tolist()
                out[i] = [float(probs[j, t]) for t, (a, b) in enumerate(offs) if b - a == 1 and a in ends]
        return out

    def score_many(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        """One score per (prompt, completion) pair, batched across problems."""
        if self.kind == "prm":
            return [aggregate(s, self.aggregate) for s in self.step_scores_many(prompts, completions)]
        texts = [verifier_text(p, c) for p, c in zip(prompts, completions)]
        out = [0.0] * len(texts)
        for idx, chunk in self._batches(texts):
            _, inputs, torch = self._encode(chunk)
            with torch.inference_mode():
                for i, v in zip(idx, positive_probability(self.model(**inputs).logits).cpu().tolist()):
                    out[i] = v
        return out

    def step_scores(self, prompt: str, completions: Sequence[str]) -> list[list[float]]:
        return self.step_scores_many([prompt] * len(completions), completions)

    def score(self, prompt: str, completions: Sequence[str]) -> list[float]:
        return self.score_many([prompt] * len(completions), completions)


def positive_probability(logits):
    """P(correct) from a classifier head: sigmoid of a single logit, or softmax of label 1 of two."""
    import torch
    logits = logits.float()
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits[..., 0])
    return torch.softmax(logits, dim=-1)[..., 1]


def aggregate(step_scores: Sequence[float], how: str = "min") -> float:
    """One solution score from step scores (Lightman et al. 2023 use min/prod; Snell et al. 2024 last)."""
    if not step_scores:
        return 0.0
    if how == "min":
        return float(min(step_scores))
    if how == "prod":
        return float(np.prod(step_scores))
    if how == "last":
        return float(step_scores[-1])
    if how == "mean":
        return float(np.mean(step_scores))
    raise ValueError(f"aggregate must be one of {AGGREGATES}, got {how!r}")


def _path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    path = p if p.is_dir() else VERIFIERS_DIR / name_or_path
    if not (path / "config.json").exists():
        raise ModelError(f"verifier {name_or_path!r}: no verifier directory at {path}. Train them with "
                         "`python -m engine.train verifiers` or pass a directory.")
    return path


@dataclass(frozen=True)
class VerifierFiles:
    """What a verifier is, read from its files without loading it (which takes a third of a second): enough to
    look up its cached scores and count its cost."""
    path: str
    kind: str
    fingerprint: str
    params: int | None      # from the safetensors header; None: only loading the model tells
    flops_per_s: float | None = None  # its scoring rate as measured (training record, ``bench/scoring.py``)


def describe(name_or_path: str) -> VerifierFiles:
    import json
    import math
    path = _path(name_or_path)
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"verifier at {path}: unreadable config.json ({e})") from None
    record = training_record(path)
    kind = record.get("kind") or \
        ("prm" if any("TokenClassification" in a for a in cfg.get("architectures") or []) else "orm")
    rate = (record.get("scoring") or {}).get("flops_per_s")
    params = None
    weights = sorted(path.glob("*.safetensors"))
    if weights:
        from safetensors import SafetensorError, safe_open
        try:
            params = 0
            for w in weights:
                with safe_open(str(w), "numpy") as f:  # "pt" would import torch (1.4 s) for a header
                    params += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
        except (OSError, SafetensorError):  # a header it cannot read: the loaded model counts instead
            params = None
    return VerifierFiles(str(path), kind, fingerprint(str(path)), params,
                         float(rate) if isinstance(rate, (int, float)) and rate > 0 else None)


_loaded: dict[tuple, LearnedVerifier] = {}
_lock = threading.Lock()


def load_verifier(name_or_path: str, device: str | None = None) -> LearnedVerifier:
    """A shipped verifier (``orm``, ``prm``) or a verifier directory; loaded once per process."""
    from .models.loader import default_device
    path = _path(name_or_path)
    device = device or default_device()
    key = (str(path.resolve()), device)
    with _lock:
        if key not in _loaded:
            _loaded[key] = _load(path, device)
        return _loaded[key]


def _load(path: Path, device: str) -> LearnedVerifier:
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer
    files = describe(str(path))
    cls = AutoModelForTokenClassification if files.kind == "prm" else AutoModelForSequenceClassification
    try:
        model = cls.from_pretrained(path).to(device).eval()
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:
        raise ModelError(f"verifier at {path}: failed to load: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    tok.padding_side = "right"
    return LearnedVerifier(name=path.name, kind=files.kind, path=str(path), fingerprint=files.fingerprint,
                           model=model, tokenizer=tok, record=training_record(path),
                           max_batch=MAX_BATCH["cuda" if device.startswith("cuda") else "cpu"])


def shipped_verifiers() -> list[str]:
    return sorted(d.parent.name for d in VERIFIERS_DIR.glob("*/config.json"))
