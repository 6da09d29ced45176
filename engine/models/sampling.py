"""Sample completions, reproducibly per sample index.

``sample_many`` decodes the rows of many prompts as one batch (``decode``: each prompt prefilled once, its KV
cache shared by its rows). Models that path does not support, and ``sample`` on them, go through
``model.generate``: the prompt is prefilled once, its KV cache copied to every row of a chunk. Either way the
randomness comes from one seeded generator *per sample index*, one uniform per step, turned into a token by
inverse-CDF sampling, so sample i never depends on which other samples share its batch.
"""
from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, TopPLogitsWarper

from ..errors import ModelError
from . import decode
from .loader import LoadedModel
from .params import SamplingParams


@dataclass
class RawSample:
    index: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    logprob: float          # summed log-probability of the completion under the model (T=1)
    prefill_s: float        # shared prompt prefill wall time
    decode_s: float         # wall time of the batch this sample was decoded in
    batch_size: int
    finish: str             # "eos", "stop" or "length"
    tokens: list[int] | None = None            # completion token ids (a server returns them as logprobs)
    token_logprobs: list[float] | None = None  # their log-probabilities under the model (T=1)


def sample_seed(seed: int, prompt_key: str, index: int) -> int:
    h = hashlib.sha256(f"{seed}|{prompt_key}|{index}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


class _SeededPicker(LogitsProcessor):
    """Chooses each row's next token from its own RNG; records log-probs and timing."""

    def __init__(self, params: SamplingParams, seeds: list[int]):
        self.params = params
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.top_p = TopPLogitsWarper(params.top_p) if params.top_p < 1 else None
        self.logprobs: list[torch.Tensor] = []
        self.first_call: float | None = None

    def __call__(self, input_ids, scores):
        if self.first_call is None:
            self.first_call = time.perf_counter()
        scores = scores.float()
        raw = torch.log_softmax(scores, dim=-1)
        if self.params.greedy:
            tok = scores.argmax(dim=-1)
        else:
            warped = scores / self.params.temperature
            if self.top_p is not None:
                warped = self.top_p(input_ids, warped)
            probs = torch.softmax(warped, dim=-1)
            u = torch.stack([torch.rand((), generator=g) for g in self.gens]).to(probs.device)
            # inverse-CDF sampling: one uniform per row keeps rows independent of each other
            tok = (probs.cumsum(-1) < u[:, None]).sum(-1).clamp(max=probs.size(-1) - 1)
        self.logprobs.append(raw.gather(1, tok[:, None])[:, 0].cpu())
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, tok[:, None], 0.0)
        return out


def completion_length(toks: list[int], eos: int, pad: int) -> tuple[int, str]:
    """(tokens the sample generated, "eos" or "length") from a generated row.

    Up to and including the first EOS. Without one, ``generate`` fills a row that stopped early (a stop
    string) with pad tokens, so only the *trailing* run of pads is padding: a pad token the model sampled
    mid-completion is part of it (cutting there would truncate text, tokens and log-probability).
    """
    if eos in toks:
        return toks.index(eos) + 1, "eos"
    n = len(toks)
    if pad != eos:
        while n and toks[n - 1] == pad:
            n -= 1
    return n, "length"


def _prefill(model, ids: torch.Tensor):
    """KV cache of all prompt tokens but the last (generate feeds that one)."""
    if ids.shape[1] < 2:
        return None
    with torch.no_grad():
        out = model(input_ids=ids[:, :-1], use_cache=True)
    return out.cache


def _encode(lm: LoadedModel, prompt: str) -> torch.Tensor:
    ids = lm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    if ids.shape[0] == 0:
        ids = torch.tensor([lm.tokenizer.bos_token_id or lm.tokenizer.eos_token_id])
    return ids


def _oom(lm: LoadedModel, what: str) -> ModelError:
    return ModelError(f"model {lm.spec.name!r}: out of GPU memory {what}. "
                      "Lower max_new_tokens, use a smaller model, or run on CPU.")


def sample_many(lm: LoadedModel, requests: list[tuple[str, str, list[int]]],
                params: SamplingParams) -> list[list[RawSample]]:
    """Samples for each ``(prompt, prompt_key, indices)``, all decoded as one batch where the model allows.

    Out of GPU memory, the batch is split in two and each half retried."""
    if not decode.supports(lm.model):
        return [sample(lm, prompt, params, list(idx), key, max_batch=max(1, len(idx))) for prompt, key, idx in requests]
    jobs = [decode.Job(_encode(lm, prompt), list(idx), [sample_seed(params.seed, key, i) for i in idx])
            for prompt, key, idx in requests]
    try:
        outs = decode.decode(lm, jobs, params)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        if len(requests) > 1:
            h = len(requests) // 2
            return sample_many(lm, requests[:h], params) + sample_many(lm, requests[h:], params)
        prompt, key, idx = requests[0]
        if len(idx) == 1:
            raise _oom(lm, f"on a prompt of {len(jobs[0].ids)} tokens even at batch size 1") from None
        h = len(idx) // 2
        return [sample_many(lm, [(prompt, key, idx[:h])], params)[0] + sample_many(lm, [(prompt, key, idx[h:])], params)[0]]
    eos = lm.tokenizer.eos_token_id
    res, texts = [], decode_all(lm.tokenizer, (toks for out in outs for toks in out.tokens))
    for job, out in zip(jobs, outs):
        res.append([_raw(i, toks, lps, "eos" if toks and toks[-1] == eos else "length", params,
                         len(job.ids), out.prefill_s, out.decode_s, out.rows, texts)
                    for i, toks, lps in zip(job.indices, out.tokens, out.logprobs)])
    return res


def decode_all(tok, seqs) -> dict[tuple, str]:
    """The text of each distinct token sequence, as ``tok.decode(seq, skip_special_tokens=True)`` gives it. A
    fast tokenizer with no clean-up decodes them in one call to its Rust backend: one ``decode`` per sequence
    spent most of its time checking, element by element, that the ids are Python numbers (6% of an arith-s
    run of 16 problems x 64)."""
    keys = list(dict.fromkeys(tuple(x) for x in seqs))
    backend = getattr(tok, "_tokenizer", None)
    if backend is None or getattr(tok, "clean_up_tokenization_spaces", True) or not hasattr(backend, "decode_batch"):
        return {k: tok.decode(list(k), skip_special_tokens=True) for k in keys}
    return dict(zip(keys, backend.decode_batch([list(k) for k in keys], skip_special_tokens=True)))


def _raw(index, toks, lps, finish, params, prompt_tokens, prefill_s, decode_s, rows, texts: dict) -> RawSample:
    """A sample from its completion tokens: text up to the first stop string (finish "stop"). ``texts``: each
    distinct token sequence's text (``decode_all``: a small model's samples often repeat one another)."""
    text = texts[tuple(toks)]
    for s in params.stop:
        pos = text.find(s)
        if pos >= 0:
            text, finish = text[:pos], "stop"
    return RawSample(index=index, text=text, prompt_tokens=prompt_tokens, completion_tokens=len(toks),
                     logprob=float(sum(lps)), prefill_s=prefill_s, decode_s=decode_s, batch_size=rows,
                     finish=finish, tokens=list(toks), token_logprobs=list(lps))


def sample(lm: LoadedModel, prompt: str, params: SamplingParams, indices: list[int],
           prompt_key: str = "", max_batch: int = 64) -> list[RawSample]:
    """Samples ``indices`` of ``prompt`` under ``params``; chunks of at most ``max_batch`` rows."""
    chunk = max(1, max_batch)
    if decode.supports(lm.model):
        return [r for i in range(0, len(indices), chunk)
                for r in sample_many(lm, [(prompt, prompt_key, indices[i:i + chunk])], params)[0]]
    model, tok = lm.model, lm.tokenizer
    device = next(model.parameters()).device
    ids = _encode(lm, prompt)[None].to(device)
    t0 = time.perf_counter()
    try:
        base_cache = _prefill(model, ids)
    except torch.cuda.OutOfMemoryError:
        raise _oom(lm, f"on a prompt of {ids.shape[1]} tokens. Use a shorter prompt") from None
    prefill_s = time.perf_counter() - t0
    out: list[RawSample] = []
    i = 0
    while i < len(indices):
        rows = indices[i:i + chunk]
        try:
            out += _decode_chunk(lm, ids, base_cache, prompt_key, params, rows, prefill_s)
            i += len(rows)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if chunk == 1:
                raise _oom(lm, "even at batch size 1") from None
            chunk //= 2  # halve the batch and retry the same rows
    return out


def _decode_chunk(lm, ids, base_cache, prompt_key, params, rows, prefill_s) -> list[RawSample]:
    model, tok = lm.model, lm.tokenizer
    b = len(rows)
    picker = _SeededPicker(params, [sample_seed(params.seed, prompt_key, r) for r in rows])
    cache = None
    if base_cache is not None:
        cache = copy.deepcopy(base_cache)
        cache.batch_repeat_interleave(b)
    eos = tok.eos_token_id
    gen_cfg = GenerationConfig(
        do_sample=False, max_new_tokens=params.max_new_tokens, eos_token_id=eos,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
        stop_strings=list(params.stop) or None, temperature=None, top_p=None, top_k=None,
        repetition_penalty=None, num_beams=1)
    t0 = time.perf_counter()
    with torch.no_grad():
        seqs = model.generate(input_ids=ids.expand(b, -1), attention_mask=torch.ones(b, ids.shape[1], dtype=torch.long, device=ids.device),
                              cache=cache, generation_config=gen_cfg,
                              logits_processor=LogitsProcessorList([picker]), tokenizer=tok if params.stop else None)
    decode_s = time.perf_counter() - t0
    new = seqs[:, ids.shape[1]:].cpu()
    lps = torch.stack(picker.logprobs, dim=1) if picker.logprobs else torch.zeros(b, 0)
    pad = gen_cfg.pad_token_id
    ended = []
    for j, idx in enumerate(rows):
        toks = new[j].tolist()
        n_tok, finish = completion_length(toks, eos, pad)
        if params.stop and pad == eos and finish == "eos" and n_tok and toks[n_tok - 1] == eos \
                and any(s in tok.decode(toks[:n_tok], skip_special_tokens=True) for s in params.stop):
            n_tok -= 1  # that "eos" was padding after a stop string
        ended.append((idx, toks[:n_tok], lps[j, :n_tok].tolist(), finish))
    texts = decode_all(tok, (toks for _, toks, _, _ in ended))
    return [_raw(idx, toks, lp, finish, params, ids.shape[1], prefill_s, decode_s, b, texts)
            for idx, toks, lp, finish in ended]
