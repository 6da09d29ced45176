"""Decode the samples of many problems together, each prompt's KV cache stored and read once for all its rows.

Why this shape: for small models a decode step costs little arithmetic. It costs a fixed overhead per step,
paid once however many rows the step holds, and reading every row's KV cache. So rows of many problems go into
one batch, and each prompt's keys and values are kept once and read once per step for all rows that
continue it (shared-prefix attention, as Hydragen, Juravsky et al. 2024). The scores against the prompt and
against the row's own continuation are computed apart and merged exactly through their log-sum-exp. Rows that
finish leave the batch (together, once a quarter of it has finished), so little is spent on rows past their EOS.

On a CPU (``_decode_shared``) the rows of a batch are distinct histories, not samples: all samples of a prompt
start as one row, and a row splits only where its samples draw different tokens. Small models agree with
themselves for long stretches (at T=0.8 arith-xl computes 0.09 rows per generated token: bench/sampling.py),
which is the same idea as sharing the prompt, carried into the samples; the rows it computed stay in memory
for the next decode of the same prompts (``prefix``: a top-up reads them). Off a CPU (``_decode``) each sample
keeps its own row, so the loop needs no host sync per step, and on a GPU each step replays a CUDA graph
(``_decode_static``).

Everything except the attention is the model's own modules and weights. A decode step, and the prompts'
prefill, call them one by one (``_Step``: the same operations as the Hugging Face forward, so the same logits,
keys and values bit for bit, without that forward's per-call overhead; on a CPU in float32 the projections that
read one input as one matmul); a model that step does not fit runs its Hugging Face forward with a cache object
and an attention function plugged in through transformers' attention registry. For every other call the
function hands over to SDPA unchanged, so scoring is as before. Sample i of a problem draws its uniforms from its
own seeded generator (``sampling.sample_seed``; the same stream ``model.generate`` used), so it does not depend
on which rows share its batch. Rounding of different batch shapes can, very rarely, move a near-tie token
(README, Reliability: how rare).

Models whose attention does not go through ``cache.update`` and the registry (``supports``) keep the
``model.generate`` path in ``sampling``.
"""
from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AttentionInterface, StopStringCriteria, TopPLogitsWarper
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

from . import prefix

NAME = "ttc_shared_prefix"
SUPPORTED = frozenset({"llama", "qwen2", "qwen3"})
COMPACT_AT = 0.25           # drop finished rows once this share of the batch has finished since the last drop
COMPACT_SHARED = 0.1        # ... in the CPU's shared loop, whose batches are small (copying them out costs little)
PACK_TOKENS = 2048         # prompt tokens prefilled together (one matmul per linear), at most: bounds its memory
PACK_MIN = 16               # ... of prompts this long at least: a matmul of fewer rows takes other kernels (rounding)
# SDPA's choices for a GPU prefill: not cuDNN's attention, its first choice on a Hopper GPU for the head sizes it
# takes, which builds a plan for every new shape and stride (each prompt, packed at its own offset, had new ones):
# on an H200, arith-s (head size 16) on 500 problems took 18.5 s cold and 2.8 s warm with it, 4.8 and 4.0 without
GPU_PREFILL_SDPA = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
SPLIT = True                # the CPU's shared loop cuts the prompt attention's grid in two (_State._split)
SYNC_EVERY = 4              # off a CPU: steps between looks at how many rows finished (each look is a host sync)
LAZY = False                # the GPU's loop (a row per sample, looks every SYNC_EVERY steps) on a CPU too (tests)
# On a GPU a step is bound by launching its ~225 small kernels from Python, not by the GPU (README, Performance):
# there each step is captured once as a CUDA graph and replayed, which launches them all in one call. A graph fixes
# shapes and addresses, so that loop's step reads the continuation positions of a whole span, those past the step
# masked, and takes the step number from the device (``_decode_static``)
CUDA_GRAPHS = True
SPAN = 32                   # positions in a span (a graph per span: fewer masked reads; README, CUDA graphs)
STATIC = False              # that loop's step run eagerly, without graphs, on a CPU too (tests)
ROWS_COMPUTED = [0]         # rows the CPU's shared loop has computed in this process (bench: FLOPs really done)
_PLACEHOLDER_MASK = torch.zeros(0, 0, 0, 0)  # a 4-D "mask" makes transformers skip building one


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    if isinstance(key, _Layer):
        return key.attend(query, scaling if scaling is not None else query.shape[-1] ** -0.5), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                  **kwargs)


AttentionInterface.register(NAME, _attention)
AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def kv_shape(config) -> tuple[int, int]:
    """(key/value heads, head dimension) of a model's attention, with fallbacks for configs that name them
    otherwise (rows_per_batch sizes batches of any model with it)."""
    heads = max(1, getattr(config, "num_attention_heads", 1))
    hkv = getattr(config, "num_key_value_heads", None) or heads
    return hkv, getattr(config, "head_dim", None) or getattr(config, "hidden_size", 64) // heads


def supports(model) -> bool:
    c = model.config
    return (c.model_type in SUPPORTED and c._attn_implementation in ("sdpa", NAME)
            and not getattr(c, "use_sliding_window", False))


def _install(model) -> None:
    """Route the model's attention through ``_attention`` (SDPA for everything but a shared-prefix decode)."""
    if model.config._attn_implementation != NAME:
        model.config._attn_implementation = NAME


@dataclass
class Job:
    """One prompt and the sample rows to decode from it."""
    ids: torch.Tensor      # [prompt tokens]
    indices: list[int]     # sample indices
    seeds: list[int]       # one generator seed per index


@dataclass
class Decoded:
    tokens: list[list[int]]        # per row of the job, the completion's token ids
    logprobs: list[list[float]]    # and their log-probabilities under the model (T=1)
    ended: list[bool]              # whether EOS or a stop string ended the row (else max_new_tokens did)
    prefill_s: float               # this prompt's prefill
    decode_s: float                # the whole batch's decode
    rows: int                      # rows decoded together (all jobs)


class _Layer:
    """One layer's keys and values: each prompt's, shared by its rows, and each row's own continuation."""

    def __init__(self, state: "_State", kp: torch.Tensor, vp: torch.Tensor, ks: torch.Tensor, vs: torch.Tensor):
        self.state, self.kp, self.vp = state, kp, vp          # [P, Hkv, Lmax, D]
        self.ks, self.vs = ks, vs  # [rows, Hkv, cap, D]: only positions < s + 1 are ever read
        self.full = {"ks": ks, "vs": vs}  # the whole buffers: ks and vs are their first rows

    def attend(self, q: torch.Tensor, scale: float) -> torch.Tensor:
        st = self.state
        r, hq, _, d = q.shape
        hkv = self.ks.shape[1]
        g = hq // hkv
        q4 = q.reshape(r, hkv, g, d)  # a GQA group's query heads share their key head: they are its "positions"
        # continuations: a query per row, so plain matmuls (faster here than the fused kernel's per-row setup)
        if st.t is not None:  # the span's positions, those past the step masked: the same shapes at every step
            o2, lse2 = _attention_lse(q4, self.ks[:, :, :st.upto], self.vs[:, :, :st.upto], scale, st.cont_bias,
                                      fused=False)
        else:
            o2, lse2 = _attention_lse(q4, self.ks[:, :, :st.s + 1], self.vs[:, :, :st.s + 1], scale, fused=False)
        if self.kp.shape[2] == 0:
            return o2.to(q.dtype).reshape(r, 1, hq, d)
        p, n = st.problems, st.nmax
        # rows in slots: each prompt's n slots together (no gaps to fill or skip while every prompt has n rows)
        runs = [(0, p, n)] if st.split is None else [(0, st.split[0], st.split[1]), (st.split[0], p, st.split[2])]
        size = sum((b - a) * m for a, b, m in runs)
        qp = q4.contiguous() if st.dense else q4.new_zeros(size, hkv, g, d).index_copy_(0, st.slot, q4)
        outs, lses, at = [], [], 0
        for a, b, m in runs:
            k = b - a
            qr = qp[at:at + k * m].view(k, m, hkv, g, d).permute(0, 2, 1, 3, 4).reshape(k, hkv, m * g, d)
            o, lse = _attention_lse(qr, self.kp[a:b], self.vp[a:b], scale, st.bias[a:b])
            outs.append(o.reshape(k, hkv, m, g, d).permute(0, 2, 1, 3, 4).reshape(k * m, hkv, g, d))
            lses.append(lse.reshape(k, hkv, m, g).permute(0, 2, 1, 3).reshape(k * m, hkv, g))
            at += k * m
        o1, lse1 = (outs[0], lses[0]) if len(runs) == 1 else (torch.cat(outs), torch.cat(lses))
        if not st.dense:
            o1, lse1 = o1.index_select(0, st.slot), lse1.index_select(0, st.slot)
        if st.empty is not None:  # a one-token prompt has no prefix: its rows attend to their continuation only
            lse1 = lse1.masked_fill(st.empty[:, None, None], float("-inf"))
            o1 = o1.masked_fill(st.empty[:, None, None, None], 0.0)
        lse = torch.logaddexp(lse1, lse2)
        out = o1 * (lse1 - lse).exp()[..., None] + o2 * (lse2 - lse).exp()[..., None]
        return out.to(q.dtype).reshape(r, 1, hq, d)

    def keep(self, idx: torch.Tensor, upto: int) -> None:
        """Keep rows ``idx`` (ascending) of positions < ``upto``: each buffer's rows are gathered into the
        state's spare buffer, which takes its place (the old one becomes the spare): no new memory, whose first
        touch costs page faults on a CPU, and no copy back."""
        st = self.state
        for name in ("ks", "vs"):
            cur = getattr(self, name)
            torch.index_select(cur[:, :, :upto], 0, idx, out=st.spare[:len(idx), :, :upto])
            full = self.full[name]
            self.full[name], st.spare = st.spare, full
            setattr(self, name, self.full[name][:len(idx)])


def _attention_lse(q, k, v, scale, bias=None, fused=True):
    """Attention of ``q`` [B, H, Lq, D] over ``k``, ``v`` [B, H, Lk, D] (``bias`` added to the scores) and the
    log-sum-exp of its scores [B, H, Lq], in float32, which is what lets two parts be merged exactly."""
    if fused and q.device.type == "cpu" and q.dtype == torch.float32:  # one fused, vectorised kernel
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, attn_mask=bias, scale=scale)
        return o.float(), lse.float()
    s = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    if bias is not None:
        s = s + bias
    lse = torch.logsumexp(s, -1)
    w = torch.exp(s - lse[..., None])
    if bias is not None:  # a row whose keys are all masked: exp(-inf - -inf)
        w = w.nan_to_num_(0.0)
    return torch.matmul(w.to(v.dtype), v).float(), lse


_SPARE: dict = {}  # (device, dtype) -> the continuation K/V buffer the last decode on a CPU used


def _buffer(n: int, dtype, device) -> torch.Tensor:
    """A flat buffer of at least ``n`` elements. On a CPU, the last decode's, when large enough: a new one is
    paid for in page faults at the first write of every page (about 2 microseconds per 4 KiB), which was 5-8% of
    a decode's time; a GPU's caching allocator already reuses its memory."""
    buf = _SPARE.pop((str(device), dtype), None)  # taken out while in use: a concurrent decode gets its own
    return buf if buf is not None and buf.numel() >= n else torch.empty(n, dtype=dtype, device=device)


def _release(buf: torch.Tensor) -> None:
    if buf.device.type == "cpu":
        _SPARE[(str(buf.device), buf.dtype)] = buf


def free_buffers() -> None:
    """Let go of the buffer kept for the next decode (up to the CPU KV budget, 2 GiB): a run calls this when it
    ends, so a long-lived process (the app) does not hold its largest batch's memory between runs."""
    _SPARE.clear()


class _State:
    """The cache object the model's layers see: ``update`` stores a step's keys and values and hands the
    layer's ``_Layer`` to the attention function in place of key tensors.

    Batch rows may come in any order and any number per prompt (``prompt``: each row's prompt); the prompt
    attention lays each prompt's rows out in a grid of ``nmax`` slots (``slot``). The continuation buffers hold
    up to ``cap_rows`` rows; ``branch`` appends rows, ``keep`` drops them."""

    def __init__(self, layers_kv, pad: torch.Tensor, prompt: torch.Tensor, cap_rows: int, cap: int):
        self.problems = pad.shape[0]
        self.bias = torch.zeros(pad.shape, dtype=torch.float32, device=pad.device).masked_fill_(pad, float("-inf"))
        self.bias = self.bias[:, None, None, :]  # [P, 1, 1, Lmax]: prompts padded to the longest
        self.one_token = pad.all(-1) if pad.shape[1] else None   # per prompt: no prefix to attend to
        # every prompt's, as prefilled: ``admit`` brings back a prompt that ``keep`` dropped
        self.kv0, self.bias0, self.one_token0 = layers_kv, self.bias, self.one_token
        self.orig = torch.arange(self.problems, device=pad.device)  # each prompt slot's prompt
        self.splits = False  # cut the prompt attention's grid in two (``_split``; the CPU's shared loop)
        self.s = 0
        self.t: torch.Tensor | None = None      # the step as a [1] device tensor (``_decode_static``), else ``s``
        self.upto = 0                           # then: the continuation positions read, past the step
        self.cont_bias: torch.Tensor | None = None  # [upto]: 0 up to the step, -inf past it
        k0 = layers_kv[0][0]
        shape = (cap_rows, k0.shape[1], cap, k0.shape[3])
        size = shape[0] * shape[1] * shape[2] * shape[3]
        self.buffer = _buffer((2 * len(layers_kv) + 1) * size, k0.dtype, k0.device)
        parts = self.buffer[:(2 * len(layers_kv) + 1) * size].view(-1, *shape)
        self.spare = parts[-1]  # what the rows a compaction keeps are gathered into
        self.layers = [_Layer(self, k, v, parts[2 * i], parts[2 * i + 1]) for i, (k, v) in enumerate(layers_kv)]
        self._lay_out(prompt)

    def _lay_out(self, prompt: torch.Tensor) -> None:
        """Each row's slot in its prompt's part of the grid: its rank among that prompt's rows."""
        n = len(prompt)
        if not n:  # every sample of the batch reads kept logits (prefix.Pool): no row, nothing to attend
            self.prompt, self.nmax, self.slot, self.dense, self.empty = prompt, 0, prompt, False, None
            return
        counts = torch.bincount(prompt, minlength=self.problems)
        self.split = None
        if self.splits and self.problems >= 4:
            prompt, counts = self._split(prompt, counts)
        order = torch.argsort(prompt, stable=True)
        rank = torch.empty_like(prompt)
        rank[order] = torch.arange(n, device=prompt.device) - (torch.cumsum(counts, 0) - counts)[prompt[order]]
        self.prompt, self.nmax = prompt, int(counts.max())
        if self.split is None:
            self.slot = prompt * self.nmax + rank
        else:
            at, n0, n1 = self.split
            self.slot = torch.where(prompt < at, prompt * n0, at * n0 + (prompt - at) * n1) + rank
        # slot is then 0, 1, ..., rows - 1: the grid is the rows themselves
        self.dense = self.split is None and n == self.problems * self.nmax and \
            bool((prompt[1:] >= prompt[:-1]).all())
        empty = self.one_token[prompt] if self.one_token is not None else None
        self.empty = empty if empty is not None and bool(empty.any()) else None
        for lay in self.layers:
            lay.ks, lay.vs = lay.full["ks"][:n], lay.full["vs"][:n]

    @staticmethod
    def _two(counts: torch.Tensor) -> tuple[int, int]:
        """The grid slots of the best split of the prompts, in this order, into two runs (each as tall as its
        largest count), and where it splits."""
        p = len(counts)
        pre, suf = torch.cummax(counts, 0)[0], torch.cummax(counts.flip(0), 0)[0].flip(0)
        at = torch.arange(1, p, device=counts.device)
        cost = at * pre[:-1] + (p - at) * suf[1:]
        best = int(torch.argmin(cost))
        return int(cost[best]), best + 1

    def _split(self, prompt: torch.Tensor, counts: torch.Tensor):
        """Prompts with few rows padded to the tallest prompt's rows made the prompt attention compute 2.4-2.8x
        the queries there are (arith-s, arith-xl at T=0.8: some prompts' samples agree, others branch). So the
        grid is cut in two runs of prompts, each as tall as its own tallest, where that saves a fifth of it;
        the prompts are put in order of their rows (their keys and values copied, not the rows') where that
        order saves a fifth more than the present one."""
        p, tall = self.problems, int(counts.max())
        cost, at = self._two(counts)
        by = torch.argsort(counts, descending=True, stable=True)
        cost_sorted, at_sorted = self._two(counts[by])
        if cost_sorted < 0.8 * cost:
            back = torch.empty_like(by)
            back[by] = torch.arange(p, device=by.device)
            for lay in self.layers:
                lay.kp, lay.vp = lay.kp.index_select(0, by), lay.vp.index_select(0, by)
            self.bias, self.orig = self.bias.index_select(0, by), self.orig.index_select(0, by)
            if self.one_token is not None:
                self.one_token = self.one_token.index_select(0, by)
            prompt, counts, cost, at = back[prompt], counts[by], cost_sorted, at_sorted
        if cost < 0.8 * p * tall:
            self.split = (at, int(counts[:at].max()), int(counts[at:].max()))
        return prompt, counts

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        lay = self.layers[layer_idx]
        if self.t is not None:  # the position from the device: no host value baked into a graph
            lay.ks.index_copy_(2, self.t, key_states[:, :, -1:])
            lay.vs.index_copy_(2, self.t, value_states[:, :, -1:])
        else:
            lay.ks[:, :, self.s] = key_states[:, :, -1]
            lay.vs[:, :, self.s] = value_states[:, :, -1]
        return lay, None

    def branch(self, parents: torch.Tensor) -> None:
        """Append a row per entry of ``parents`` with a copy of that row's keys and values so far."""
        n, k, upto = len(self.prompt), len(parents), self.s + 1
        for lay in self.layers:
            for buf in lay.full.values():
                torch.index_select(buf[:n, :, :upto], 0, parents, out=buf[n:n + k, :, :upto])
        self._lay_out(torch.cat([self.prompt, self.prompt[parents]]))

    def keep(self, idx: torch.Tensor) -> torch.Tensor:
        """Keep rows ``idx``, put in order of their prompts (so a grid with as many rows for every prompt is
        dense again); returns that order. The prompts left are renumbered, so the prompt attention shrinks
        with the batch."""
        idx = idx[torch.argsort(self.prompt[idx], stable=True)]
        left, prompt = torch.unique(self.prompt[idx], return_inverse=True)
        gone = len(left) < self.problems  # else every prompt still has rows: its keys and values stay put
        self.problems = len(left)
        if gone:
            self.bias, self.orig = self.bias.index_select(0, left), self.orig.index_select(0, left)
            if self.one_token is not None:
                self.one_token = self.one_token.index_select(0, left)
        for lay in self.layers:
            if gone:
                lay.kp, lay.vp = lay.kp.index_select(0, left), lay.vp.index_select(0, left)
            lay.keep(idx, self.s + 1)
        self._lay_out(prompt)
        return idx

    def admit(self, orig: torch.Tensor, kv: torch.Tensor) -> None:
        """Append a row per entry of ``orig`` (a prompt, as numbered at the start) whose keys and values so far
        are ``kv`` [rows, positions, 2 x layers, kv heads, head size] (kept by ``prefix.Pool``), bringing back
        the prompts ``keep`` dropped."""
        slot_of = {o: i for i, o in enumerate(self.orig.tolist())}
        back = sorted({o for o in orig.tolist() if o not in slot_of})
        if back:
            m = torch.tensor(back, device=self.orig.device)
            for lay, (k0, v0) in zip(self.layers, self.kv0):
                lay.kp, lay.vp = torch.cat([lay.kp, k0.index_select(0, m)]), torch.cat([lay.vp, v0.index_select(0, m)])
            self.bias = torch.cat([self.bias, self.bias0.index_select(0, m)])
            if self.one_token is not None:
                self.one_token = torch.cat([self.one_token, self.one_token0.index_select(0, m)])
            slot_of.update({o: self.problems + i for i, o in enumerate(back)})
            self.orig, self.problems = torch.cat([self.orig, m]), self.problems + len(back)
        n, k, upto = len(self.prompt), len(orig), kv.shape[1]
        for i, lay in enumerate(self.layers):
            lay.full["ks"][n:n + k, :, :upto] = kv[:, :, 2 * i].transpose(1, 2)
            lay.full["vs"][n:n + k, :, :upto] = kv[:, :, 2 * i + 1].transpose(1, 2)
        slots = torch.tensor([slot_of[o] for o in orig.tolist()], dtype=torch.long, device=self.orig.device)
        self._lay_out(torch.cat([self.prompt, slots]))


class _Step:
    """One decode step (or a packed prefill) of a Llama-family model (``SUPPORTED``) called piece by piece on the
    model's own modules and weights: the same operations as its Hugging Face forward (so the same logits, bit for
    bit; tests check), without that forward's per-call work (argument handling, output recording, mask building,
    module hooks), which for these small models cost as much as the arithmetic."""

    def __init__(self, model):
        base = model.model
        self.embed, self.rotary, self.head = base.embed_tokens, base.rotary_emb, model.lm_head
        w = next(model.parameters())
        # On a CPU in float32 (the shared loop's home), linears that read the same input run as one matmul and
        # the RMSNorms as torch's own: the same bits there (tests compare with the forward), fewer calls. Off
        # it, each module as the forward calls it (a GPU picks its kernels by shape: no such promise).
        lean = w.device.type == "cpu" and w.dtype == torch.float32
        self.norm = _norm(base.norm, lean)
        self.layers = []
        for lay in base.layers[:model.config.num_hidden_layers]:
            a, m = lay.self_attn, lay.mlp
            self.layers.append((_norm(lay.input_layernorm, lean), _Linears((a.q_proj, a.k_proj, a.v_proj), lean),
                                a.o_proj, *(_norm(getattr(a, n, None), lean) for n in ("q_norm", "k_norm")), a.head_dim,
                                a.scaling, _norm(lay.post_attention_layernorm, lean),
                                _Linears((m.gate_proj, m.up_proj), lean), m.down_proj, m.act_fn))

    @staticmethod
    def usable(model) -> bool:
        """The model has the modules this calls and nothing hooked into them (which calling around would skip)."""
        base = getattr(model, "model", None)
        return (base is not None and all(hasattr(base, n) for n in ("embed_tokens", "rotary_emb", "norm", "layers"))
                and hasattr(model, "lm_head")
                and not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()))

    def __call__(self, ids: torch.Tensor, pos: torch.Tensor, state: "_State", logits: bool = True,
                 segments: list[int] | None = None) -> torch.Tensor:
        """``segments``: the lengths of the prompts packed one after another in ``ids`` (a prefill)."""
        h = self.embed(ids)
        if segments is None:
            cos, sin = self.rotary(h, pos)
        else:  # per prompt too: cos and sin are vectorised elementwise kernels like the activation
            cos, sin = (torch.cat(x, 1) for x in zip(*(self.rotary(a, b) for a, b in
                                                        zip(h.split(segments, 1), pos.split(segments, 1)))))
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # per head, as the family's apply_rotary_pos_emb has them
        half = cos.shape[-1] // 2
        sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)  # rotate_half's sign, moved onto sin (exact)
        for i, (ln1, qkv, op, qn, kn, hd, scale, ln2, gate_up, dp, act) in enumerate(self.layers):
            shape = (*h.shape[:-1], -1, hd)
            q, k, v = qkv(ln1(h))
            q, k = q.view(shape), k.view(shape)
            if qn is not None:  # contiguous: a strided input can take a scalar kernel, with other rounding
                q, k = qn(q.contiguous()), kn(k.contiguous())
            q, k = _rotate(q.transpose(1, 2), cos, sin), _rotate(k.transpose(1, 2), cos, sin)
            o = state.update(k, v.view(shape).transpose(1, 2), i)[0].attend(q, scale)
            h = h + F.linear(o.reshape(*shape[:-2], -1).contiguous(), op.weight, op.bias)
            g, u = gate_up(ln2(h))
            # contiguous, as above; and per packed prompt, so each ends its kernel's loop where its own forward would
            a = act(g.contiguous()) if segments is None else \
                torch.cat([act(x.contiguous()) for x in g.split(segments, 1)], 1)
            h = h + F.linear(a * u, dp.weight, dp.bias)
        return F.linear(self.norm(h), self.head.weight, self.head.bias) if logits else h


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding as the supported families' apply_rotary_pos_emb computes it, x * cos + rotate_half(x) *
    sin, with rotate_half's negation already in ``sin`` (products differ only in sign: the same bits)."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * sin


class _Linears:
    """Linear modules that read the same input: one matmul over their stacked weights, or one call each."""

    def __init__(self, mods, fuse: bool):
        self.mods = mods
        self.sizes = [m.weight.shape[0] for m in mods]
        biased = [m.bias is not None for m in mods]
        fuse = fuse and (all(biased) or not any(biased))
        self.weight = torch.cat([m.weight for m in mods]) if fuse else None
        self.bias = torch.cat([m.bias for m in mods]) if fuse and biased[0] else None

    def __call__(self, x: torch.Tensor):
        # one row: a matrix-vector product, whose kernel on some CPUs (AVX-512) rounds the stacked product
        # differently from each module's own
        if self.weight is None or x.numel() == x.shape[-1]:
            return [F.linear(x, m.weight, m.bias) for m in self.mods]
        return F.linear(x, self.weight, self.bias).split(self.sizes, -1)


_RMS_NORMS = {"LlamaRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm"}  # weight * x / sqrt(mean(x^2) + eps), as torch's


def _norm(mod, lean: bool):
    if mod is None or not lean or type(mod).__name__ not in _RMS_NORMS:
        return mod
    shape, weight, eps = (mod.weight.shape[-1],), mod.weight, mod.variance_epsilon
    return lambda x: F.rms_norm(x, shape, weight, eps)


class _Causal:
    """A layer's keys and values in a lean prefill (``_Prompt``): each packed prompt's causal attention through
    SDPA, the call the model's own forward makes for it."""

    def __init__(self, module, k, v, segments):
        self.module, self.k, self.v, self.segments = module, k, v, segments

    def attend(self, q: torch.Tensor, scale: float) -> torch.Tensor:
        out, a = [], 0
        for n in self.segments:
            out.append(sdpa_attention_forward(self.module, q[:, :, a:a + n], self.k[:, :, a:a + n],
                                              self.v[:, :, a:a + n], None, dropout=0.0, scaling=scale)[0])
            a += n
        return torch.cat(out, 1)


class _Prompt:
    """The cache object ``_Step`` sees when it runs prompts packed one after another: keeps each layer's keys and
    values."""

    def __init__(self, attn: list, segments: list[int]):
        self.attn, self.segments = attn, segments  # each layer's attention module (SDPA reads its GQA grouping)
        self.kv = []

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        self.kv.append((key_states, value_states))
        return _Causal(self.attn[layer_idx], key_states, value_states, self.segments), None


def _prefill(model, jobs: list[Job], device, step: "_Step | None"):
    """Per layer, the prompts' keys and values (all tokens but the last, which the first step feeds), padded
    at the end to the longest: [P, Hkv, Lmax, D] each, the padding mask [P, Lmax], and each prompt's prefill
    time (its share, by tokens, of the prefill it was packed into). Through ``_Step`` where it fits, prompts
    packed one after another up to PACK_TOKENS (one call per layer and linear for all; attention, rotary and
    activation per prompt, as each prompt's own kernels end their loops): the same keys and values as the model's
    forward on each prompt alone, bit for bit (a test checks). ``step``: the decode's own (None: the forward)."""
    attn = [lay.self_attn for lay in model.model.layers] if step is not None else None
    per_job, secs = [None] * len(jobs), [0.0] * len(jobs)
    pack: list[int] = []
    todo = [j for j, job in enumerate(jobs) if len(job.ids) >= 2]  # a one-token prompt has no prefix
    for at, j in enumerate(todo):
        pack.append(j)
        more = todo[at + 1] if at + 1 < len(todo) else None
        if step is not None and more is not None and min(len(jobs[i].ids) for i in (j, more)) > PACK_MIN and \
                sum(len(jobs[i].ids) - 1 for i in pack) + len(jobs[more].ids) - 1 <= PACK_TOKENS:
            continue
        t0 = time.perf_counter()
        lens = [len(jobs[i].ids) - 1 for i in pack]
        ids = torch.cat([jobs[i].ids[:-1] for i in pack]).to(device)[None]
        if step is not None:
            st = _Prompt(attn, lens)
            step(ids, torch.cat([torch.arange(n) for n in lens]).to(device)[None], st, logits=False, segments=lens)
            kv, a = st.kv, 0
            for i, n in zip(pack, lens):
                per_job[i] = [(k[0, :, a:a + n], v[0, :, a:a + n]) for k, v in kv]
                a += n
        else:
            out = model(input_ids=ids, use_cache=True)
            per_job[pack[0]] = [(lay.keys[0], lay.values[0]) for lay in out.cache.layers]
        took = time.perf_counter() - t0
        for i, n in zip(pack, lens):
            secs[i] = took * n / sum(lens)
        pack = []
    lengths = [0 if kv is None else kv[0][0].shape[1] for kv in per_job]
    lmax = max(lengths)
    c = model.config
    hkv, d = kv_shape(c)
    dtype = next(model.parameters()).dtype
    layers = []
    for li in range(c.num_hidden_layers):
        k = torch.zeros(len(jobs), hkv, lmax, d, dtype=dtype, device=device)
        v = torch.zeros_like(k)
        for j, kv in enumerate(per_job):
            if kv is not None:
                k[j, :, :lengths[j]] = kv[li][0]
                v[j, :, :lengths[j]] = kv[li][1]
        layers.append((k, v))
    pad = torch.arange(lmax, device=device)[None, :] >= torch.tensor(lengths, device=device)[:, None]
    return layers, pad, secs


def decode(lm, jobs: list[Job], params) -> list[Decoded]:
    """Samples every job's rows under ``params`` in one batch; one ``Decoded`` per job."""
    model, tok = lm.model, lm.tokenizer
    device = next(model.parameters()).device
    _install(model)
    eos = tok.eos_token_id
    with torch.inference_mode():
        # one lean step for the prefill and the loop: on a CPU it stacks the projections' weights (a copy)
        step = _Step(model) if _Step.usable(model) else None
        with sdpa_kernel(GPU_PREFILL_SDPA) if device.type == "cuda" else nullcontext():
            layers, pad, prefill_s = _prefill(model, jobs, device, step)
        t1 = time.perf_counter()
        loop = _decode if device.type != "cpu" or LAZY else _decode_shared
        out = loop(model, step, tok, jobs, params, layers, pad, device, eos)
    decode_s = time.perf_counter() - t1
    rows = sum(len(j.indices) for j in jobs)
    toks, lps, n_tok, ended = out
    res, r = [], 0
    for job, pre in zip(jobs, prefill_s):
        k = len(job.indices)
        res.append(Decoded([toks[i][:n_tok[i]] for i in range(r, r + k)],
                           [lps[i][:n_tok[i]] for i in range(r, r + k)],
                           ended[r:r + k], pre, decode_s, rows))
        r += k
    return res


def _stop_ends(stops, device) -> torch.Tensor | None:
    """Per token id (the criterion clamps larger ids to its last row): whether the token can end a stop string,
    from the criterion's own table (its "end lengths"); None where that table is not laid out as expected."""
    try:
        vec = stops.embedding_vec
        ends = vec[:, stops.max_valid_positions * stops.num_stop_strings:-1] > 0
    except (AttributeError, TypeError, IndexError):
        return None
    return ends.any(-1).to(device) if ends.ndim == 2 and ends.shape[1] else None


@dataclass
class _Draw:
    """What every decode loop needs per sample row and per step, set up once."""
    u: torch.Tensor | None        # [rows, max_new_tokens] each row's uniforms (None: greedy)
    top_p: object                 # the warper, or None
    stops: object                 # the stop-string criterion, or None
    ends: torch.Tensor | None     # per token id: can it end a stop string (None: check every row)
    tail: int                     # prompt tokens a stop string may begin in
    tails: torch.Tensor           # [jobs, tail] each job's last prompt tokens
    out_tok: torch.Tensor         # [rows, max_new_tokens]
    out_lp: torch.Tensor
    n_tok: torch.Tensor           # [rows] completion length
    ended: torch.Tensor           # [rows] EOS or a stop string ended it
    temperature: float

    @classmethod
    def make(cls, tok, jobs, params, device):
        rows, new = sum(len(j.indices) for j in jobs), params.max_new_tokens
        u = None if params.greedy else torch.stack(  # the uniforms each row's generator yields, one per step
            [torch.rand(new, generator=torch.Generator().manual_seed(s)) for j in jobs for s in j.seeds]).to(device)
        stops = StopStringCriteria(tok, list(params.stop)) if params.stop else None
        # a stop string may begin in the prompt (as generate sees it), so each row's history keeps the prompt's tail
        tail = min(stops.maximum_token_len, min(len(j.ids) for j in jobs)) if stops else 0
        # a stop string can only end at a token that ends part of one (the criterion's "end lengths"): on a CPU
        # only the rows whose newest token is one are checked, each on its own history, so the answer is the same
        ends = _stop_ends(stops, device) if stops is not None and device.type == "cpu" else None
        return cls(u, TopPLogitsWarper(params.top_p) if params.top_p < 1 else None, stops, ends, tail,
                   torch.stack([j.ids[len(j.ids) - tail:] for j in jobs]).to(device),
                   torch.zeros(rows, new, dtype=torch.long, device=device),
                   torch.zeros(rows, new, dtype=torch.float32, device=device),
                   torch.full((rows,), new, dtype=torch.long, device=device),
                   torch.zeros(rows, dtype=torch.bool, device=device), params.temperature)

    def history(self, job_of_row: torch.Tensor, capacity: int) -> torch.Tensor:
        """[capacity, tail + max_new_tokens] token history for the stop strings, row i (of the first
        ``len(job_of_row)``) starting with its job's prompt tail (the GPU's fixed-shape loop reads it)."""
        hist = torch.zeros(capacity, self.tail + self.out_tok.shape[1], dtype=torch.long, device=job_of_row.device)
        hist[:len(job_of_row), :self.tail] = self.tails[job_of_row]
        return hist

    def stopped(self, job_of, rows, toks, t) -> torch.Tensor:
        """Whether the newest tokens ``toks`` of sample rows ``rows`` (at step ``t``, already in ``out_tok``)
        end a stop string, read on each row's history: its job's prompt tail (``job_of``: per sample row), then
        its tokens. In the CPU's shared loop a row stands for its group of samples."""
        out = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
        cand = self.ends[toks.clamp(max=len(self.ends) - 1)].nonzero()[:, 0] if self.ends is not None else \
            torch.arange(len(rows), device=rows.device)
        if len(cand):
            # the criterion looks only at the last maximum_token_len tokens: hand it those, not the whole history
            r = rows[cand]
            lo = max(0, self.tail + t + 1 - self.stops.maximum_token_len)
            out[cand] = self.stops(torch.cat([self.tails[job_of[r]], self.out_tok[r, :t + 1]], 1)[:, lo:], None)
        return out

    def pick(self, logits, inp, t, which, batch_row=None):
        """Tokens of sample rows ``which`` (each continuing batch row ``batch_row``; None: row i is batch row i)
        and their log-probabilities."""
        raw = torch.log_softmax(logits, dim=-1)
        if self.u is None:
            nxt = logits.argmax(dim=-1)
            nxt = nxt if batch_row is None else nxt[batch_row]
        else:
            warped = logits / self.temperature
            if self.top_p is not None:
                warped = self.top_p(inp, warped)
            cum = torch.softmax(warped, dim=-1).cumsum(-1)
            cum = cum if batch_row is None else cum[batch_row]
            # inverse-CDF sampling with the row's own uniform, as sampling._SeededPicker does
            nxt = (cum < self.u[which, t][:, None]).sum(-1).clamp(max=cum.size(-1) - 1)
        if batch_row is None:
            return nxt, raw.gather(1, nxt[:, None])[:, 0]
        return nxt, raw[batch_row, nxt]

    def result(self):
        # only the steps some row reached: Python lists of max_new_tokens per row cost more than the rest
        m = int(self.n_tok.max()) if len(self.n_tok) else 0
        return self.out_tok[:, :m].cpu().tolist(), self.out_lp[:, :m].cpu().tolist(), self.n_tok.cpu().tolist(), \
            self.ended.cpu().tolist()


def _logits(model, step, inp, pos, state):
    if step is not None:
        return step(inp, pos, state)[:, -1].float()
    return model(input_ids=inp, position_ids=pos, cache=state, use_cache=True,
                 attention_mask=_PLACEHOLDER_MASK).logits[:, -1].float()


def _decode(model, step, tok, jobs, params, layers, pad, device, eos):
    """Off a CPU (or with ``LAZY``): one batch row per sample row, finished rows counted every few steps."""
    rows = sum(len(j.indices) for j in jobs)
    new = params.max_new_tokens
    counts = torch.tensor([len(j.indices) for j in jobs], device=device)
    state = _State(layers, pad, torch.repeat_interleave(torch.arange(len(jobs), device=device), counts), rows, new)
    inp = torch.cat([j.ids[-1:].expand(len(j.indices)) for j in jobs]).to(device)[:, None]
    pos = torch.cat([torch.full((len(j.indices),), len(j.ids) - 1) for j in jobs]).to(device)[:, None]
    d = _Draw.make(tok, jobs, params, device)
    job_of = state.prompt  # each sample row's job (keep gives the state a new tensor, not this one)
    graphs = CUDA_GRAPHS and device.type == "cuda"
    if (STATIC or graphs) and step is not None and \
            (d.stops is None or d.tail + 1 >= d.stops.maximum_token_len):  # else a stop window would start early
        return _decode_static(model, step, params, state, d, d.history(job_of, rows), inp, pos, eos, graphs)
    alive = torch.arange(rows, device=device)          # original row of each batch row
    gone = torch.zeros(rows, dtype=torch.bool, device=device)  # finished, still in the batch until compaction
    # reading whether rows finished waits for the step's kernels (a host sync): it is read every few steps, the
    # bookkeeping stays on the device; rows that finished in between decode on, and are cut at n_tok
    for t in range(new):
        state.s = t
        nxt, lp = d.pick(_logits(model, step, inp, pos, state), inp, t, alive)
        d.out_tok[alive, t], d.out_lp[alive, t] = nxt, lp
        done = nxt == eos
        if d.stops is not None:
            done |= d.stopped(job_of, alive, nxt, t)
        done &= ~gone
        d.n_tok[alive] = torch.where(done, t + 1, d.n_tok[alive])
        d.ended[alive] |= done
        gone |= done
        if (t + 1) % SYNC_EVERY == 0:
            finished = int(gone.sum())
            if finished == len(alive):
                break
            if finished >= COMPACT_AT * len(alive):
                keep = state.keep((~gone).nonzero()[:, 0])
                alive, nxt, pos, gone = alive[keep], nxt[keep], pos[keep], gone[keep]
        inp, pos = nxt[:, None], pos + 1
    _release(state.buffer)
    return d.result()


def _decode_static(model, step, params, state, d, hist, inp, pos, eos, graphs: bool):
    """``_decode``'s loop with a step of fixed shapes and addresses, all its bookkeeping on the device: on a GPU
    (``graphs``) captured as a CUDA graph after one eager step, replayed until rows are dropped or the step leaves
    its span of SPAN positions (new shapes: a new capture). The same samples as ``_decode`` up to the rounding of
    attending over more, masked, positions."""
    device, new, rows = inp.device, params.max_new_tokens, len(inp)
    # positions past the step are read with weight 0: zeros there, not whatever the memory held (0 x NaN = NaN)
    state.buffer.zero_()
    t = torch.zeros(1, dtype=torch.long, device=device)
    state.t, where = t, torch.arange(new, device=device)
    width = d.stops.maximum_token_len if d.stops is not None else 0  # what the stop-string criterion reads
    window = torch.arange(d.tail + 1 - width, d.tail + 1, device=device)  # + t: the history's last ``width``
    alive = torch.arange(rows, device=device)
    gone = torch.zeros(rows, dtype=torch.bool, device=device)
    inp, pos = inp.clone(), pos.clone()

    def advance():
        state.cont_bias = torch.zeros(state.upto, device=device).masked_fill_(where[:state.upto] > t, float("-inf"))
        nxt, lp = d.pick(_logits(model, step, inp, pos, state), inp, t, alive)
        d.out_tok[alive, t], d.out_lp[alive, t] = nxt, lp
        done = nxt == eos
        if d.stops is not None:
            win = hist[alive[:, None], (window + t)[None]]
            win[:, -1] = nxt
            done |= d.stops(win, None)
            hist[alive, d.tail + t] = nxt
        done &= ~gone
        d.n_tok[alive] = torch.where(done, t + 1, d.n_tok[alive])
        d.ended[alive] |= done
        gone.logical_or_(done)
        inp.copy_(nxt[:, None])
        pos.add_(1)
        t.add_(1)

    graph, warm, steps = None, False, 0
    side = torch.cuda.Stream(device) if graphs else None  # capture needs a stream of its own
    while steps < new:
        upto = min(new, (steps // SPAN + 1) * SPAN)  # a span of positions read; past it, new shapes: a new graph
        if upto != state.upto:
            state.upto, graph, warm = upto, None, False
        if not graphs:
            advance()
        elif graph is None:
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                if not warm:  # one eager step (a real one) on that stream before capturing, as capture asks
                    advance()
                else:
                    graph = _capture(advance)
            torch.cuda.current_stream().wait_stream(side)
            if not warm:
                warm = True
            elif graph is not None:
                graph.replay()
            else:  # the capture failed (said once): this decode goes on eagerly
                graphs = False
                advance()
        else:
            graph.replay()
        steps += 1
        if steps % SYNC_EVERY == 0:
            finished = int(gone.sum())
            if finished == len(alive):
                break
            if finished >= COMPACT_AT * len(alive):
                state.s = steps - 1  # the positions written so far, which dropping rows copies
                keep = state.keep((~gone).nonzero()[:, 0])
                alive, gone, inp, pos = alive[keep], gone[keep], inp[keep], pos[keep]
                graph, warm = None, False  # new shapes and buffers
    state.t = state.cont_bias = None
    _release(state.buffer)
    return d.result()


def _capture(advance) -> "torch.cuda.CUDAGraph | None":
    """A CUDA graph of one ``advance()``, recorded, not run (capture_begin rather than torch.cuda.graph, which
    also empties the allocator's cache at every capture); None, after a warning, where capturing fails, and no
    more captures in this process."""
    global CUDA_GRAPHS
    graph = torch.cuda.CUDAGraph()
    try:
        graph.capture_begin()
        try:
            advance()
        finally:
            graph.capture_end()
    except Exception as e:  # noqa: BLE001: any failure means the same thing here: decode without graphs
        warnings.warn(f"CUDA graph capture failed ({type(e).__name__}: {e}); decoding without graphs")
        CUDA_GRAPHS = False
        return None
    return graph


def _record(pool, state, logits, parents, inp, keys) -> int | None:
    """Keep the rows this step computed as nodes (``prefix.Pool``), row i as node n + i; n, or None once the
    pool's budget is spent. Rows no sample follows any more (parent -2, left for the next compaction) are
    kept too, under a key no lookup matches: cheaper than leaving them out. ``keys``: at the first step, each
    prompt's token ids (its rows are the tries' roots)."""
    kvs = [x[:, :, state.s] for lay in state.layers for x in (lay.ks, lay.vs)]
    roots = None if keys is None else [keys[o] for o in state.orig[state.prompt].tolist()]
    return pool.record(parents, inp[:, 0], logits, lambda out: torch.stack(kvs, 1, out=out),
                       (len(kvs), *kvs[0].shape[1:]), kvs[0].dtype, roots)


def _decode_shared(model, step, tok, jobs, params, layers, pad, device, eos):
    """On a CPU: sample rows whose tokens so far are the same share one batch row, computed once. All rows of a
    prompt start as one; when they draw different tokens (each with its own uniform), the rows that drew
    the same token stay together, and each new group past the first gets a new batch row with a copy of its
    parent's keys and values. A small model's samples agree for long stretches, so a step computes far fewer
    rows than there are samples (README: by how much). Each row's logits are what it would get on its own, so
    its samples are the same as without sharing.

    Every row a step computes is kept in the model's ``prefix.Pool`` (within its budget). A sample of a prompt
    an earlier decode kept follows that trie instead, drawing from the kept logits, until it draws a token the
    trie has no node for: then it gets a row, which starts from the kept keys and values of its path."""
    rows, new, p = sum(len(j.indices) for j in jobs), params.max_new_tokens, len(jobs)
    keys = [tuple(j.ids.tolist()) for j in jobs]
    pool = prefix.take(model, keys)
    root = torch.tensor([pool.roots.get(k, -1) if pool is not None else -1 for k in keys], dtype=torch.long)
    counts = torch.tensor([len(j.indices) for j in jobs], device=device)
    sprompt = torch.repeat_interleave(torch.arange(p, device=device), counts)  # each sample row's prompt
    fresh = (root < 0).nonzero()[:, 0].to(device)  # prompts with nothing kept: a batch row each
    state = _State(layers, pad, fresh, rows, new)
    state.splits = SPLIT
    if len(fresh) < p:
        state.keep(torch.arange(len(fresh), device=device))  # the other prompts' slots wait for a row (admit)
    rank = torch.full((p,), -1, dtype=torch.long, device=device)
    rank[fresh] = torch.arange(len(fresh), device=device)
    follow = rank[sprompt]              # each sample row's batch row, -1 while it follows a kept trie
    fnode = root.to(device)[sprompt]    # ... and that trie's node, -1 while it has a batch row
    path = torch.full((rows, new), -1, dtype=torch.long, device=device) if bool((fnode >= 0).any()) else None
    inp = torch.stack([jobs[j].ids[-1] for j in fresh.tolist()]).to(device)[:, None] if len(fresh) else \
        torch.zeros(0, 1, dtype=torch.long, device=device)
    start = torch.tensor([len(j.ids) - 1 for j in jobs], device=device)  # each prompt's first position
    pos = start[fresh][:, None]
    # per batch row: the kept node it continues (None: nothing is kept)
    parent_node = torch.full((len(fresh),), -1, dtype=torch.long) if pool is not None else None
    d = _Draw.make(tok, jobs, params, device)
    live = torch.arange(rows, device=device)   # sample rows not finished
    for t in range(new):
        state.s = t
        nr = len(state.prompt)
        parts, node = [], None
        if nr:
            parts.append(_logits(model, step, inp, pos, state))
            ROWS_COMPUTED[0] += nr
            if parent_node is not None and not pool.off:  # this step's rows become nodes of their tries
                node = _record(pool, state, parts[0], parent_node, inp, keys if t == 0 else None)
        where = follow[live]
        on = fnode[live] >= 0 if path is not None else None
        trie = on is not None and bool(on.any())
        if trie:  # samples on a kept trie read its logits
            fl = live[on]
            path[fl, t] = fnode[fl]
            nodes, inv_f = torch.unique(fnode[fl], return_inverse=True)
            parts.append(pool.logits[nodes])
            where = where.clone()
            where[on] = nr + inv_f
        logits = parts[0] if len(parts) == 1 else torch.cat(parts)
        vocab = logits.shape[-1]
        nxt, lp = d.pick(logits, None, t, live, where)
        d.out_tok[live, t], d.out_lp[live, t] = nxt, lp
        go = (nxt != eos).nonzero()[:, 0]
        # the groups that go on: one per (batch row or kept node, token), ordered by batch row, then token
        key, inv = torch.unique(where[go] * vocab + nxt[go], return_inverse=True)
        parent, toks = torch.div(key, vocab, rounding_mode="floor"), key % vocab
        if d.stops is not None and len(key):
            rep = torch.empty(len(key), dtype=torch.long, device=device).scatter_(0, inv, live[go])
            stop = d.stopped(sprompt, rep, toks, t)
            if bool(stop.any()):
                member = ~stop[inv]
                inv = (torch.cumsum(~stop, 0) - 1)[inv[member]]
                go, parent, toks = go[member], parent[~stop], toks[~stop]
        done = torch.ones(len(live), dtype=torch.bool, device=device)
        done[go] = False
        d.n_tok[live[done]] = t + 1
        d.ended[live[done]] = True
        if not len(go):
            break
        live = live[go]
        off = parent >= nr if trie else None
        rg = nxt_node = None  # rg: the groups that continue a batch row (None: all of them)
        if off is not None and bool(off.any()):  # groups on a kept trie: on to its next node, or off it
            og, rg = off.nonzero()[:, 0], (~off).nonzero()[:, 0]
            nxt_node = torch.full((len(parent),), -1, dtype=torch.long, device=device)
            nxt_node[og] = pool.next(nodes[parent[og] - nr], toks[og])
        # a parent's first group keeps its batch row; every other gets a new one, branched off the parent
        pr = parent if rg is None else parent[rg]
        first = torch.ones(len(pr), dtype=torch.bool, device=device)
        first[1:] = pr[1:] != pr[:-1]
        if rg is None:
            row, extra = pr.clone(), (~first).nonzero()[:, 0]
        else:
            row = torch.full((len(parent),), -1, dtype=torch.long, device=device)
            row[rg], extra = pr, rg[~first]
        b = nr
        if len(extra):
            row[extra] = torch.arange(b, b + len(extra), device=device)
            state.branch(parent[extra])
            inp, pos = torch.cat([inp, inp[parent[extra]]]), torch.cat([pos, pos[parent[extra]]])
        leave = (off & (nxt_node < 0)).nonzero()[:, 0] if nxt_node is not None else None
        if leave is not None and len(leave):  # off the trie: a new row from its path's keys and values
            b = len(state.prompt)
            row[leave] = torch.arange(b, b + len(leave), device=device)
            rep = torch.empty(len(parent), dtype=torch.long, device=device).scatter_(0, inv, live)[leave]
            state.admit(sprompt[rep], pool.kv[path[rep, :t + 1]])
            inp = torch.cat([inp, toks[leave][:, None]])
            pos = torch.cat([pos, start[sprompt[rep]][:, None] + t])
        if parent_node is None or pool.off:
            parent_node = None  # nothing kept from here on
        else:  # (no row this step, node None: every sample read the pool, and the rows leaving it are kept next)
            parent_node = torch.full((len(state.prompt),), -2, dtype=torch.long)  # -2: a row no sample follows
            if node is not None:
                parent_node[row if rg is None else row[rg]] = pr + node
            if leave is not None and len(leave):
                parent_node[row[leave]] = nodes[parent[leave] - nr]
        follow[live] = row[inv]
        if trie:
            fnode[live] = nxt_node[inv] if nxt_node is not None else -1
        if rg is None:
            inp[row, 0] = toks
        else:
            inp[row[rg], 0] = toks[rg]
        pos = pos + 1
        gone = torch.ones(len(state.prompt), dtype=torch.bool, device=device)  # rows no sample follows any more
        gone[row if rg is None and nxt_node is None else row[row >= 0]] = False
        if len(gone) and int(gone.sum()) >= COMPACT_SHARED * len(gone):
            order = state.keep((~gone).nonzero()[:, 0])
            moved = torch.full((len(gone) + 1,), -1, dtype=torch.long, device=device)  # [-1]: stays -1
            moved[order] = torch.arange(len(order), device=device)
            follow[live] = moved[follow[live]]
            inp, pos = inp[order], pos[order]
            if parent_node is not None:
                parent_node = parent_node[order]
    _release(state.buffer)
    prefix.give_back(model, pool)
    return d.result()
