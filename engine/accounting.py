"""Compute, time, dollars and energy: the one place they are computed, per sample and per problem.

``per_sample`` (what the CLI's report sums): for each cached sample
- ``flops``: inference FLOPs of the sample (``compute.flops_per_sample``), plus,
  when a learned scorer reads it, 2 x scorer params x tokens it reads;
- ``device_s``: the sample's share of its batch's wall time
  (decode_s / batch_size + prefill_s / batch_size); what dollars and energy use;
- ``tokens``: prompt + completion tokens; ``dollars`` and ``energy_wh`` from a ``CostModel``.

``problem_costs`` (what the curves plot): the cost of answering one problem with k
samples, for each k. FLOPs and tokens count the shared prompt once per problem
when ``cost.prefix_cache`` is set (prefix caching), else once per sample. Device
seconds and latency come from the measured batches (``cost.hardware`` =
measured), or from a roofline projection onto a named accelerator
(``engine.hardware``), which makes them follow model size, not machine noise.
A scorer's FLOPs take time at its own measured rate (a learned verifier's
training record, ``bench/scoring.py``): the same for every model it scores.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from . import compute, hardware


def compact(x: float) -> str:
    """A count in words' shorthand, as the app's tables show it ("compact"): 19.6M, 1.03B. Sentences and
    tables then read alike, and nobody has to parse 1.96e+07."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def per_sample(df: pd.DataFrame, info: dict, cost: compute.CostModel, scorer_params: int = 0) -> pd.DataFrame:
    """``df`` (cached samples of one model, described by ``info`` from ``results.model_info``) with cost columns."""
    tokens = (df["prompt_tokens"] + df["completion_tokens"]).to_numpy()
    flops = compute.flops_per_sample(info["matmul_params"], df["prompt_tokens"].to_numpy(),
                                     df["completion_tokens"].to_numpy(), info["n_layers"], info["d_model"])
    device_s = ((df["decode_s"] + df["prefill_s"]) / df["batch_size"]).to_numpy()
    return df.assign(flops=flops + 2.0 * scorer_params * tokens, device_s=device_s, tokens=tokens,
                     dollars=cost.dollars(device_s, tokens), energy_wh=cost.energy_wh(device_s))


def latency(prefill_s, decode_s, batch_size, k, device):
    """Wall time to get k samples of one prompt, from one measured batch (scalars or arrays).

    A GPU decodes a batch in about the same time whatever its row count (up to
    the batch cap), so k samples cost ceil(k / batch) batches. A CPU is compute
    bound: a batch's time grows with its rows, so k rows cost k/batch of it.
    """
    b = np.maximum(1, np.asarray(batch_size, dtype=np.float64))
    gpu = np.char.startswith(np.asarray(device, dtype=str), "cuda")
    out = np.asarray(prefill_s, dtype=np.float64) + np.where(gpu, np.ceil(k / b), k / b) * decode_s
    return float(out) if out.ndim == 0 else out


# How one problem's samples are summarised for its costs (medians resist a batch slowed by load).
PER_PROBLEM = {"prompt_tokens": "first", "completion_tokens": "mean", "flops": "mean", "device_s": "median",
               "prefill_s": "first", "decode_s": "first", "batch_size": "first", "device": "first"}


def per_problem(df: pd.DataFrame, like: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per problem (in first-seen order) of ``per_sample`` output: what ``problem_costs`` reads, with
    the problem's ``difficulty`` and pool size ``n``. ``like``: ``per_problem`` of the same samples, in the same
    order, costed for another scorer (so only ``flops`` differ): the rest is taken from it."""
    # as array operations over the samples sorted by problem (pandas' groupby took longer than the curves)
    codes, ids = pd.factorize(df["problem_id"])             # problems in first-seen order
    order = np.argsort(codes, kind="stable")                  # each problem's samples together, in order
    size = np.bincount(codes, minlength=len(ids))
    start = np.cumsum(size) - size
    out = {}
    for c, how in ({"flops": "mean"} if like is not None else {**PER_PROBLEM, "difficulty": "first"}).items():
        col = df[c]
        if col.isna().any():  # a gap: pandas' own rule (skip it)
            out[c] = col.groupby(codes, sort=False).agg(how).array
        elif how == "first":
            out[c] = col.array.take(order[start])
        elif how == "mean":
            out[c] = np.add.reduceat(col.to_numpy(np.float64)[order], start) / size
        else:  # median: the middle one (or two) of each problem's sorted values
            v = col.to_numpy(np.float64)[np.lexsort((col.to_numpy(np.float64), codes))]
            out[c] = (v[start + (size - 1) // 2] + v[start + size // 2]) / 2
    if like is not None:
        return like.assign(flops=out["flops"])
    out["n"] = np.bincount(codes, df["idx"].notna().to_numpy(), len(ids)).astype(np.int64)
    return pd.DataFrame(out, index=pd.Index(ids, name="problem_id"))


def problem_costs(pp: pd.DataFrame, info: dict, ks: Sequence[int], cost: compute.CostModel,
                  scorer_params: int = 0, scorer_flops_per_s: float | None = None) -> dict[str, np.ndarray]:
    """[problems, len(ks)] arrays: flops, tokens, sample_tokens, device_s, latency_s, dollars and energy_wh of
    k samples of each problem (``pp`` from ``per_problem``: means stand for one sample). ``scorer_flops_per_s``:
    the scorer's measured rate (``Scorer.flops_per_s``), at which its FLOPs take time."""
    ks = np.asarray(ks, dtype=np.float64)[None, :]
    n, layers, width = info["matmul_params"], info["n_layers"], info["d_model"]
    prompt = pp["prompt_tokens"].to_numpy(np.float64)[:, None]
    completion = pp["completion_tokens"].to_numpy(np.float64)[:, None]
    prompt_flops = compute.flops_per_sample(n, prompt, np.zeros_like(prompt), layers, width)
    scorer_flops = 2.0 * scorer_params * (prompt + completion)  # a verifier reads each sample whole
    gen_flops = pp["flops"].to_numpy(np.float64)[:, None] - prompt_flops - scorer_flops
    # one sample needs no choosing: a scorer runs only when there are at least two samples to rank
    scoring = np.where(ks > 1, ks, 0.0) * scorer_flops
    if cost.prefix_cache:
        flops = prompt_flops + ks * gen_flops + scoring
        tokens = prompt + ks * completion
    else:
        flops = ks * (prompt_flops + gen_flops) + scoring
        tokens = ks * (prompt + completion)
    profile = hardware.get(cost.hardware)
    if profile is None:
        share = pp["device_s"].to_numpy(np.float64)[:, None]  # one sample's share of its batch
        if scorer_flops_per_s:  # the scorer's own measured rate: the same for every model it scores
            scoring_s = scoring / scorer_flops_per_s
        else:  # not measured: its FLOPs at the rate this model sampled at (a tiny model's is slow per FLOP)
            scoring_s = scoring * share / np.maximum(pp["flops"].to_numpy(np.float64)[:, None] - scorer_flops, 1.0)
        device_s = ks * share + scoring_s
        latency_s = latency(pp["prefill_s"].to_numpy(np.float64)[:, None], pp["decode_s"].to_numpy(np.float64)[:, None],
                            pp["batch_size"].to_numpy(np.float64)[:, None], ks,
                            pp["device"].to_numpy(str)[:, None]) + scoring_s
    else:
        layers, width = (0.0, 0.0) if compute._missing(layers) else (float(layers), float(width))
        device_s, latency_s = hardware.sampling_s(profile, n, layers, width, prompt, completion, ks)
        scoring_s = scoring / profile.peak_flops
        device_s, latency_s = device_s + scoring_s, latency_s + scoring_s
    shape = np.broadcast_shapes(flops.shape, tokens.shape)
    return {"flops": flops, "tokens": tokens, "sample_tokens": np.broadcast_to(prompt + completion, shape),
            "device_s": device_s, "latency_s": np.broadcast_to(latency_s, shape),
            "dollars": np.asarray(cost.dollars(device_s, tokens), dtype=np.float64),
            "energy_wh": np.asarray(cost.energy_wh(device_s), dtype=np.float64)}
