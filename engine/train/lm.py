"""Train one causal LM of the ladder on ``arith`` worked solutions.

nanoGPT-sized loop: packed blocks, AdamW, warmup + cosine, loss on solution
tokens only. Checkpoints every ``ckpt_every`` steps so a killed run resumes.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from ..models.loader import RECORD_FILE, training_record
from ..tasks import arith
from .tokenizer import build_tokenizer


@dataclass(frozen=True)
class LMRecipe:
    name: str
    d_model: int
    n_layers: int
    n_heads: int
    ffn: int
    tokens: int = 6_000_000        # training tokens (packed, including prompt tokens)
    batch: int = 16
    block: int = 256
    lr: float = 2e-3
    warmup: int = 100
    seed: int = 0


LADDER = [  # ~4x apart in size; all past the point where they learn to copy operands (~10M tokens)
    LMRecipe("arith-s", d_model=32, n_layers=2, n_heads=2, ffn=80, lr=5e-3, tokens=35_000_000),
    LMRecipe("arith-m", d_model=48, n_layers=2, n_heads=4, ffn=128, lr=4e-3, tokens=25_000_000),
    LMRecipe("arith-l", d_model=72, n_layers=4, n_heads=4, ffn=192, lr=3e-3, tokens=15_000_000),
    LMRecipe("arith-xl", d_model=120, n_layers=5, n_heads=4, ffn=320, lr=3e-3, tokens=15_000_000),
]


def quick(recipe: LMRecipe) -> LMRecipe:
    """Miniature of a recipe for tests: same code path, seconds of training."""
    d = max(16, recipe.d_model // 2 // 4 * 4)  # keeps the ladder's size order, at a fraction of its width
    return LMRecipe(recipe.name, d_model=d, n_layers=1, n_heads=2, ffn=2 * d, tokens=40_000,
                    batch=8, block=128, lr=3e-3, warmup=5, seed=recipe.seed)


def model_config(r: LMRecipe, tok) -> LlamaConfig:
    return LlamaConfig(vocab_size=len(tok), hidden_size=r.d_model, intermediate_size=r.ffn,
                       num_hidden_layers=r.n_layers, num_attention_heads=r.n_heads,
                       num_key_value_heads=r.n_heads, max_position_embeddings=512,
                       tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def packed_batches(tok, r: LMRecipe, seed: int):
    """Yield (input_ids, labels) of shape [batch, block]; prompt tokens get label -100."""
    stream = arith.train_stream(seed)
    buf_ids, buf_lab = [], []
    need = r.batch * (r.block + 1)
    while True:
        while len(buf_ids) < need:
            p = next(stream)
            prompt_ids = tok(arith.prompt(p))["input_ids"]
            sol_ids = tok(p.solution + "\n")["input_ids"] + [tok.eos_token_id]
            buf_ids += prompt_ids + sol_ids
            buf_lab += [-100] * len(prompt_ids) + sol_ids
        ids = torch.tensor(buf_ids[:need]).view(r.batch, r.block + 1)
        lab = torch.tensor(buf_lab[:need]).view(r.batch, r.block + 1)
        buf_ids, buf_lab = buf_ids[need:], buf_lab[need:]
        yield ids[:, :-1], lab[:, 1:]


def clipped_step(model, opt, loss, sched=None) -> float:
    """One optimizer step on ``loss`` with gradients clipped to norm 1 (every trainer here), then ``sched``'s
    step if given; returns the loss as a number."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if sched is not None:
        sched.step()
    return loss.item()


def train_lm(r: LMRecipe, out_dir: Path, ckpt_every: int = 100, progress: bool = True) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / RECORD_FILE).exists() and (out_dir / "model.safetensors").exists():
        return training_record(out_dir)
    torch.manual_seed(r.seed)
    tok = build_tokenizer()
    model = LlamaForCausalLM(model_config(r, tok))
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.1, betas=(0.9, 0.95))
    steps = max(1, r.tokens // (r.batch * r.block))
    ckpt = out_dir / "ckpt.pt"
    step, elapsed, losses = 0, 0.0, []
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed, losses = state["step"], state["elapsed"], state["losses"]
    batches = packed_batches(tok, r, r.seed)
    for _ in range(step):  # replay the data stream so a resumed run sees the same batches
        next(batches)

    def lr_at(s):
        if s < r.warmup:
            return r.lr * (s + 1) / r.warmup
        return 0.1 * r.lr + 0.9 * r.lr * 0.5 * (1 + math.cos(math.pi * (s - r.warmup) / max(1, steps - r.warmup)))

    model.train()
    bar = tqdm(total=steps, initial=step, desc=r.name, disable=not progress, unit="step")
    t0 = time.time()
    while step < steps:
        x, y = next(batches)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100)
        losses.append(clipped_step(model, opt, loss))
        step += 1
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
        bar.update(1)
        if step % ckpt_every == 0 or step == steps:
            now = time.time()
            elapsed += now - t0
            t0 = now
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": elapsed, "losses": losses}, tmp)
            os.replace(tmp, ckpt)  # atomic: a kill mid-save never corrupts the checkpoint
    bar.close()
    model.eval()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    tokens = steps * r.batch * r.block
    record = {
        "name": r.name, "family": "arith-llama", "params": n_params, "training_tokens": tokens,
        "training_flops": 6 * n_params * tokens, "wall_time_s": round(elapsed, 1),
        "seed": r.seed, "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4),
        "steps": steps, "recipe": asdict(r), "device": "cpu", "torch_threads": torch.get_num_threads(),
        "data": "arith train stream (seeded, test questions excluded)",
    }
    (out_dir / RECORD_FILE).write_text(json.dumps(record, indent=2))
    ckpt.unlink(missing_ok=True)
    return record
