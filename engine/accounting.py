"""Per-sample compute, time, dollars and energy: the one place they are computed.

For each cached sample:
- ``flops``: inference FLOPs of the sample (``compute.flops_per_sample``), plus,
  when a learned scorer reads it, 2 x scorer params x tokens it reads;
- ``device_s``: the sample's share of its batch's wall time
  (decode_s / batch_size + prefill_s / batch_size); what dollars and energy use;
- ``tokens``: prompt + completion tokens; ``dollars`` and ``energy_wh`` from a ``CostModel``.
``latency`` turns one measured batch into the wall time a user waits for k samples.
"""
from __future__ import annotations

import math

import pandas as pd

from . import compute


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
