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
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from . import compute, hardware


def per_sample(df: pd.DataFrame, info: dict, cost: compute.CostModel, scorer_params: int = 0) -> pd.DataFrame:
    """``df`` (cached samples of one model, described by ``info`` from ``results.model_info``) with cost columns."""
    tokens = (df["prompt_tokens"] + df["completion_tokens"]).to_numpy()
    flops = compute.flops_per_sample(info["matmul_params"], df["prompt_tokens"].to_numpy(),
                                     df["completion_tokens"].to_numpy(), info["n_layers"], info["d_model"])
    device_s = ((df["decode_s"] + df["prefill_s"]) / df["batch_size"]).to_numpy()
    return df.assign(flops=flops + 2.0 * scorer_params * tokens, device_s=device_s, tokens=tokens,
                     dollars=cost.dollars(device_s, tokens), energy_wh=cost.energy_wh(device_s))


def latency(prefill_s: float, decode_s: float, batch_size: int, k: int, device: str) -> float:
    """Wall time to get k samples of one prompt, from one measured batch.

    A GPU decodes a batch in about the same time whatever its row count (up to
    the batch cap), so k samples cost ceil(k / batch) batches. A CPU is compute
    bound: a batch's time grows with its rows, so k rows cost k/batch of it.
    """
    b = max(1, batch_size)
    if str(device).startswith("cuda"):
        return prefill_s + math.ceil(k / b) * decode_s
    return prefill_s + decode_s * k / b


def problem_costs(grp: pd.DataFrame, info: dict, ks: Sequence[int], cost: compute.CostModel,
                  scorer_params: int = 0) -> dict[str, np.ndarray]:
    """Per k in ``ks``: flops, tokens, device_s, dollars, energy_wh and latency_s of k samples of one problem
    (``grp``: that problem's cached samples with ``per_sample`` columns; means stand for one sample)."""
    ks = np.asarray(ks, dtype=np.float64)
    n, layers, width = info["matmul_params"], info["n_layers"], info["d_model"]
    prompt = float(grp["prompt_tokens"].iloc[0])
    completion = float(grp["completion_tokens"].mean())
    prompt_flops = compute.flops_per_sample(n, prompt, 0, layers, width)
    gen_flops = float(grp["flops"].mean()) - prompt_flops - 2.0 * scorer_params * (prompt + completion)
    scorer_flops = 2.0 * scorer_params * (prompt + completion)  # a verifier reads each sample whole
    if cost.prefix_cache:
        flops = prompt_flops + ks * (gen_flops + scorer_flops)
        tokens = prompt + ks * completion
    else:
        flops = ks * (prompt_flops + gen_flops + scorer_flops)
        tokens = ks * (prompt + completion)
    profile = hardware.get(cost.hardware)
    if profile is None:
        first = grp.iloc[0]
        # median over the problem's samples: one batch slowed by a burst of load does not set the cost
        device_s = ks * float(grp["device_s"].median())
        latency_s = np.array([latency(first["prefill_s"], first["decode_s"], int(first["batch_size"]), int(k),
                                      first["device"]) for k in ks])
    else:
        layers, width = (0.0, 0.0) if compute._missing(layers) else (float(layers), float(width))
        both = np.array([hardware.sampling_s(profile, n, layers, width, prompt, completion, int(k)) for k in ks])
        scoring = ks * scorer_flops / profile.peak_flops
        device_s, latency_s = both[:, 0] + scoring, both[:, 1] + scoring
    return {"flops": flops, "tokens": tokens, "sample_tokens": np.full(ks.shape, prompt + completion),
            "device_s": device_s, "latency_s": latency_s,
            "dollars": np.asarray(cost.dollars(device_s, tokens), dtype=np.float64),
            "energy_wh": np.asarray(cost.energy_wh(device_s), dtype=np.float64)}
