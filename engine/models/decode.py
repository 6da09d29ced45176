"""Decode the samples of many problems together, each prompt's KV cache stored and read once for all its rows.

Why this shape: for small models a decode step costs little arithmetic. It costs a fixed overhead per step,
paid once however many rows the step holds, and reading every row's KV cache. So rows of many problems go into
one batch, and each prompt's keys and values are kept once and read once per step for all rows that
continue it (shared-prefix attention, as Hydragen, Juravsky et al. 2024). The scores against the prompt and
against the row's own continuation are computed apart and merged exactly through their log-sum-exp. Rows that
finish leave the batch (together, once a quarter of it has finished), so little is spent on rows past their EOS.

Everything except the attention is the model's own modules and weights. A decode step calls them one by one
(``_Step``: the same operations in the same order as the Hugging Face forward, so the same logits bit for bit,
without that forward's per-call overhead); a model that step does not fit runs its Hugging Face forward with a
cache object and an attention function plugged in through transformers' attention registry. For every other
call the function hands over to SDPA unchanged, so prefill and scoring are as before. Sample i of a problem draws its uniforms from its
own seeded generator (``sampling.sample_seed``; the same stream ``model.generate`` used), so it does not depend
on which rows share its batch. Rounding of different batch shapes can, very rarely, move a near-tie token
(README, Reliability: how rare).

Models whose attention does not go through ``cache.update`` and the registry (``supports``) keep the
``model.generate`` path in ``sampling``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, StopStringCriteria, TopPLogitsWarper
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

NAME = "ttc_shared_prefix"
SUPPORTED = frozenset({"llama", "qwen2", "qwen3"})
COMPACT_AT = 0.25           # drop finished rows once this share of the batch has finished since the last drop
SYNC_EVERY = 4              # off a CPU: steps between looks at how many rows finished (each look is a host sync)
LAZY = False                # look only every SYNC_EVERY steps on a CPU too (tests take the GPU's path with it)
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
        o2, lse2 = _attention_lse(q4, self.ks[:, :, :st.s + 1], self.vs[:, :, :st.s + 1], scale, fused=False)
        if self.kp.shape[2] == 0:
            return o2.to(q.dtype).reshape(r, 1, hq, d)
        p, n = st.problems, st.nmax
        # rows in slots: each prompt's n slots together (no gaps to fill or skip while every prompt has n rows)
        qp = q4.contiguous() if st.dense else q4.new_zeros(p * n, hkv, g, d).index_copy_(0, st.slot, q4)
        qp = qp.view(p, n, hkv, g, d).permute(0, 2, 1, 3, 4).reshape(p, hkv, n * g, d)
        o1, lse1 = _attention_lse(qp, self.kp, self.vp, scale, st.bias)
        o1 = o1.reshape(p, hkv, n, g, d).permute(0, 2, 1, 3, 4).reshape(p * n, hkv, g, d)
        lse1 = lse1.reshape(p, hkv, n, g).permute(0, 2, 1, 3).reshape(p * n, hkv, g)
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
    w = torch.exp(s - lse[..., None]).nan_to_num_(0.0)
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
    layer's ``_Layer`` to the attention function in place of key tensors."""

    def __init__(self, layers_kv, pad: torch.Tensor, slot: torch.Tensor, nmax: int, rows: int, cap: int):
        self.slot, self.nmax, self.problems = slot, nmax, pad.shape[0]
        self.bias = torch.zeros(pad.shape, dtype=torch.float32, device=pad.device).masked_fill_(pad, float("-inf"))
        self.bias = self.bias[:, None, None, :]  # [P, 1, 1, Lmax]: prompts padded to the longest
        empty = pad.all(-1)[torch.div(slot, nmax, rounding_mode="floor")] if pad.shape[1] else None
        self.empty = empty if empty is not None and bool(empty.any()) else None
        self.s = 0
        self.dense = rows == self.problems * nmax  # slot is then 0, 1, ..., rows - 1
        k0 = layers_kv[0][0]
        shape = (rows, k0.shape[1], cap, k0.shape[3])
        size = shape[0] * shape[1] * shape[2] * shape[3]
        self.buffer = _buffer((2 * len(layers_kv) + 1) * size, k0.dtype, k0.device)
        parts = self.buffer[:(2 * len(layers_kv) + 1) * size].view(-1, *shape)
        self.spare = parts[-1]  # what the rows a compaction keeps are gathered into
        self.layers = [_Layer(self, k, v, parts[2 * i], parts[2 * i + 1]) for i, (k, v) in enumerate(layers_kv)]

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        lay = self.layers[layer_idx]
        lay.ks[:, :, self.s] = key_states[:, :, -1]
        lay.vs[:, :, self.s] = value_states[:, :, -1]
        return lay, None

    def keep(self, idx: torch.Tensor) -> None:
        """Keep rows ``idx`` (ascending). The prompts left are renumbered and each row gets a slot among its
        prompt's remaining rows, so the prompt attention shrinks with the batch."""
        prob = torch.div(self.slot.index_select(0, idx), self.nmax, rounding_mode="floor")
        left, counts = torch.unique_consecutive(prob, return_counts=True)  # rows stay grouped by prompt
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(len(idx), device=idx.device) - torch.repeat_interleave(first, counts)
        self.nmax, self.problems = int(counts.max()), len(left)
        self.dense = len(idx) == self.problems * self.nmax
        self.slot = torch.repeat_interleave(torch.arange(len(left), device=idx.device), counts) * self.nmax + rank
        self.bias = self.bias.index_select(0, left)
        if self.empty is not None:
            self.empty = self.empty.index_select(0, idx)
        for lay in self.layers:
            lay.kp, lay.vp = lay.kp.index_select(0, left), lay.vp.index_select(0, left)
            lay.keep(idx, self.s + 1)


class _Step:
    """One decode step of a Llama-family model (``SUPPORTED``) called piece by piece on the model's own modules
    and weights: the same operations in the same order as its Hugging Face forward (so the same logits, bit for
    bit), without that forward's per-call work (argument handling, output recording, mask building, module
    hooks), which for these small models cost as much as the arithmetic."""

    def __init__(self, model):
        base = model.model
        self.embed, self.rotary, self.norm, self.head = base.embed_tokens, base.rotary_emb, base.norm, model.lm_head
        self.rope = sys.modules[type(base.layers[0].self_attn).__module__].apply_rotary_pos_emb
        self.layers = []
        for lay in base.layers[:model.config.num_hidden_layers]:
            a, m = lay.self_attn, lay.mlp
            self.layers.append((lay.input_layernorm, a.q_proj, a.k_proj, a.v_proj, a.o_proj,
                                getattr(a, "q_norm", None), getattr(a, "k_norm", None), a.head_dim, a.scaling,
                                lay.post_attention_layernorm, m.gate_proj, m.up_proj, m.down_proj, m.act_fn))

    @staticmethod
    def usable(model) -> bool:
        """The model has the modules this calls and nothing hooked into them (which calling around would skip)."""
        base = getattr(model, "model", None)
        return (base is not None and all(hasattr(base, n) for n in ("embed_tokens", "rotary_emb", "norm", "layers"))
                and hasattr(model, "lm_head")
                and not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()))

    def __call__(self, ids: torch.Tensor, pos: torch.Tensor, state: "_State") -> torch.Tensor:
        h = self.embed(ids)
        cos, sin = self.rotary(h, pos)
        for i, (ln1, qp, kp, vp, op, qn, kn, hd, scale, ln2, gp, up, dp, act) in enumerate(self.layers):
            shape = (*h.shape[:-1], -1, hd)
            x = ln1(h)
            q = F.linear(x, qp.weight, qp.bias).view(shape)
            k = F.linear(x, kp.weight, kp.bias).view(shape)
            if qn is not None:
                q, k = qn(q), kn(k)
            q, k = self.rope(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
            v = F.linear(x, vp.weight, vp.bias).view(shape).transpose(1, 2)
            o = state.update(k, v, i)[0].attend(q, scale)
            h = h + F.linear(o.reshape(*shape[:-2], -1).contiguous(), op.weight, op.bias)
            x = ln2(h)
            h = h + F.linear(act(F.linear(x, gp.weight, gp.bias)) * F.linear(x, up.weight, up.bias), dp.weight, dp.bias)
        return F.linear(self.norm(h), self.head.weight, self.head.bias)


def _prefill(model, jobs: list[Job], device):
    """Per layer, the prompts' keys and values (all tokens but the last, which the first step feeds), padded
    at the end to the longest: [P, Hkv, Lmax, D] each, the padding mask [P, Lmax], and each prompt's prefill
    time (what one query waits for its prompt)."""
    per_job, secs = [], []
    for job in jobs:
        t0 = time.perf_counter()
        ids = job.ids.to(device)[None]
        if ids.shape[1] < 2:
            per_job.append(None)
        else:
            out = model(input_ids=ids[:, :-1], use_cache=True)
            per_job.append([(lay.keys[0], lay.values[0]) for lay in out.cache.layers])
        secs.append(time.perf_counter() - t0)
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
        layers, pad, prefill_s = _prefill(model, jobs, device)
        t1 = time.perf_counter()
        out = _decode(model, tok, jobs, params, layers, pad, device, eos)
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


def _decode(model, tok, jobs, params, layers, pad, device, eos):
    rows = sum(len(j.indices) for j in jobs)
    nmax = max(len(j.indices) for j in jobs)
    new = params.max_new_tokens
    slot = torch.tensor([p * nmax + i for p, j in enumerate(jobs) for i in range(len(j.indices))], device=device)
    state = _State(layers, pad, slot, nmax, rows, new)
    inp = torch.cat([j.ids[-1:].expand(len(j.indices)) for j in jobs]).to(device)[:, None]
    pos = torch.cat([torch.full((len(j.indices),), len(j.ids) - 1) for j in jobs]).to(device)[:, None]
    if not params.greedy:  # the uniforms each row's generator yields, one per step, drawn up front
        u_all = torch.stack([torch.rand(new, generator=torch.Generator().manual_seed(s))
                             for j in jobs for s in j.seeds]).to(device)
    top_p = TopPLogitsWarper(params.top_p) if params.top_p < 1 else None
    stops = StopStringCriteria(tok, list(params.stop)) if params.stop else None
    # a stop string may begin in the prompt (as generate sees it), so each row's history keeps the prompt's tail
    tail = min(stops.maximum_token_len, min(len(j.ids) for j in jobs)) if stops else 0
    # a stop string can only end at a token that ends part of one (the criterion's "end lengths"): on a CPU only
    # the rows whose newest token is one are checked, each on its own history, so the answer is the same
    ends = _stop_ends(stops, device) if stops is not None and device.type == "cpu" else None
    hist = torch.zeros(rows, tail + new, dtype=torch.long, device=device)
    if tail:
        hist[:, :tail] = torch.cat([j.ids[-tail:].expand(len(j.indices), -1) for j in jobs]).to(device)
    out_tok = torch.zeros(rows, new, dtype=torch.long, device=device)
    out_lp = torch.zeros(rows, new, dtype=torch.float32, device=device)
    n_tok = torch.full((rows,), new, dtype=torch.long, device=device)
    ended = torch.zeros(rows, dtype=torch.bool, device=device)
    alive = torch.arange(rows, device=device)          # original row of each batch row
    gone = torch.zeros(rows, dtype=torch.bool, device=device)  # finished, still in the batch until compaction
    # on a GPU, reading whether rows finished waits for the step's kernels (a host sync): it is read every few
    # steps, the bookkeeping stays on the device; rows that finished in between decode on, and are cut at n_tok
    lazy = device.type != "cpu" or LAZY
    step = _Step(model) if _Step.usable(model) else None
    for t in range(new):
        state.s = t
        if step is not None:
            logits = step(inp, pos, state)[:, -1].float()
        else:
            logits = model(input_ids=inp, position_ids=pos, cache=state, use_cache=True,
                           attention_mask=_PLACEHOLDER_MASK).logits[:, -1].float()
        raw = torch.log_softmax(logits, dim=-1)
        if params.greedy:
            nxt = logits.argmax(dim=-1)
        else:
            warped = logits / params.temperature
            if top_p is not None:
                warped = top_p(inp, warped)
            probs = torch.softmax(warped, dim=-1)
            # inverse-CDF sampling with the row's own uniform, as sampling._SeededPicker does
            nxt = (probs.cumsum(-1) < u_all[alive, t][:, None]).sum(-1).clamp(max=probs.size(-1) - 1)
        out_tok[alive, t] = nxt
        out_lp[alive, t] = raw.gather(1, nxt[:, None])[:, 0]
        done = nxt == eos
        if stops is not None:
            hist[alive, tail + t] = nxt
            # the criterion looks only at the last maximum_token_len tokens: hand it those, not the whole history
            window = slice(max(0, tail + t + 1 - stops.maximum_token_len), tail + t + 1)
            if ends is None:
                done |= stops(hist[alive, window], logits)
            else:
                cand = ends[nxt.clamp(max=len(ends) - 1)].nonzero()[:, 0]
                if len(cand):
                    done[cand] |= stops(hist[alive[cand], window], None)
        done &= ~gone
        if lazy:  # no host sync: the finished rows are counted every SYNC_EVERY steps
            n_tok[alive] = torch.where(done, t + 1, n_tok[alive])
            ended[alive] |= done
            gone |= done
            check = (t + 1) % SYNC_EVERY == 0
        elif done.any():
            n_tok[alive[done]] = t + 1
            ended[alive[done]] = True
            gone |= done
            check = True
        else:
            check = False
        if check:
            finished = int(gone.sum())
            if finished == len(alive):
                break
            if finished >= COMPACT_AT * len(alive):
                keep = (~gone).nonzero()[:, 0]
                state.keep(keep)
                alive, nxt, pos, gone = alive[keep], nxt[keep], pos[keep], gone[keep]
        inp, pos = nxt[:, None], pos + 1
    _release(state.buffer)
    return out_tok.cpu().tolist(), out_lp.cpu().tolist(), n_tok.cpu().tolist(), ended.cpu().tolist()
