"""Hardware profiles and a roofline projection of sampling time.

Wall time measured on a small, shared CPU says more about the machine than the
model: tiny models are overhead-bound and any background load shifts every
number. A profile instead projects time from each model's size with the roofline
model (Williams et al. 2009, "Roofline: an insightful visual performance model"):
a step takes as long as the slower of its arithmetic and its memory traffic,

    step time = overhead + max(FLOPs / peak FLOP/s, bytes moved / memory bandwidth).

* Decode, one step for a batch of b rows at context length c: FLOPs = b x (2 x
  matmul params + 4 x layers x d_model x c); bytes = the weights once + each row's
  KV cache (2 x layers x d_model x c values). At small batch a decode step is
  memory-bound (the weights are read once per step whatever b is), which is why
  sampling many completions together is cheap per sample on a GPU.
* Prefill of the shared prompt (once per problem, as vLLM/SGLang prefix caching
  does): compute-bound, FLOPs as ``compute.flops_per_sample`` with no completion.

Figures are vendors' dense (non-sparse) peak throughput at the precision given and
peak memory bandwidth; a real server reaches a fraction of both, so projections
are lower bounds on time and cost, to compare model sizes, not to quote prices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the wall time recorded when the samples were drawn: the shipped sweeps' on this project's 2-core CPU, a user's own
# runs' on their machine ("this machine" read as the user's, which the shipped figures are not)
MEASURED = "measured when sampled"
# An assumption, not a datasheet figure: a serving engine spends on the order of half a millisecond per
# decode step outside the model's arithmetic (scheduling, sampling, kernel launches). For models as small
# as the shipped ladder it is most of the step; for billion-parameter models the roofline term dominates.
GPU_STEP_OVERHEAD = 5e-4


@dataclass(frozen=True)
class Profile:
    name: str
    peak_flops: float          # dense FLOP/s at ``bytes_per_value`` precision
    mem_bandwidth: float       # bytes/s
    bytes_per_value: int       # weights and KV cache (2: bf16/fp16, 4: fp32)
    price_per_hour: float      # dollars, on demand (editable in the app)
    watts: float               # typical board / package power under load
    max_batch: int             # rows decoded together at most
    source: str
    step_overhead_s: float = 0.0   # fixed cost of every forward pass (scheduling, kernel launches)


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("NVIDIA H100 SXM", 989e12, 3.35e12, 2, 3.00, 700, 256,
            "NVIDIA H100 Tensor Core GPU datasheet (2023): 989 TFLOP/s dense BF16, 3.35 TB/s HBM3, up to 700 W",
            GPU_STEP_OVERHEAD),
    Profile("NVIDIA A100 80GB SXM", 312e12, 2.039e12, 2, 1.80, 400, 256,
            "NVIDIA A100 datasheet (2021): 312 TFLOP/s dense BF16, 2,039 GB/s HBM2e, 400 W", GPU_STEP_OVERHEAD),
    Profile("NVIDIA L4", 121e12, 300e9, 2, 0.80, 72, 128,
            "NVIDIA L4 datasheet (2023): 121 TFLOP/s dense BF16 (242 with sparsity), 300 GB/s GDDR6, 72 W",
            GPU_STEP_OVERHEAD),
    Profile("Laptop CPU (8 cores)", 1.0e12, 100e9, 4, 0.05, 45, 64,
            "an 8-core laptop CPU with AVX-512/AMX-class FP32 throughput ~1 TFLOP/s and LPDDR5 ~100 GB/s, "
            "45 W package power; price: the laptop amortised over three years", 1e-4),
)}


def names() -> list[str]:
    return [MEASURED] + list(PROFILES)


def get(name: str | None) -> Profile | None:
    """The profile of that name; None for measured timings."""
    if name in (None, "", MEASURED, "measured", "measured on this machine"):  # the last: links made before
        return None
    if name not in PROFILES:
        from .errors import ConfigError
        raise ConfigError(f"unknown hardware profile {name!r}: use one of {', '.join(names())}")
    return PROFILES[name]


def decode_step_s(p: Profile, matmul_params: float, n_layers: float, d_model: float, batch: int,
                  context: float) -> float:
    """Seconds for one decode step of ``batch`` rows at ``context`` tokens of context each."""
    flops = batch * (2.0 * matmul_params + 4.0 * n_layers * d_model * context)
    kv = 2.0 * n_layers * d_model * context * p.bytes_per_value
    moved = matmul_params * p.bytes_per_value + batch * kv
    return p.step_overhead_s + np.maximum(flops / p.peak_flops, moved / p.mem_bandwidth)


def prefill_s(p: Profile, matmul_params: float, n_layers: float, d_model: float, prompt_tokens: float) -> float:
    """Seconds to prefill one prompt: all its tokens in one pass (compute-bound unless tiny)."""
    flops = 2.0 * matmul_params * prompt_tokens + 2.0 * n_layers * d_model * prompt_tokens * (prompt_tokens + 1)
    return p.step_overhead_s + np.maximum(flops / p.peak_flops, matmul_params * p.bytes_per_value / p.mem_bandwidth)


def sampling_s(p: Profile, matmul_params: float, n_layers: float, d_model: float, prompt_tokens,
               completion_tokens, k):
    """(device seconds charged, latency seconds) for k samples of one prompt of ``prompt_tokens``, each
    ``completion_tokens`` long.

    Charged time assumes a busy server that fills every decode batch (``max_batch`` rows, other queries'
    rows included), so a query pays its rows' share of each step, plus its own prefill: what throughput
    pricing looks like. Latency is what this query waits on an otherwise idle server: the prefill, then
    ceil(k / max_batch) rounds of ``completion_tokens`` steps with its own k rows. Token counts and k may
    be arrays (they broadcast).
    """
    ctx = prompt_tokens + completion_tokens / 2.0   # mean context over the completion
    pre = prefill_s(p, matmul_params, n_layers, d_model, prompt_tokens)
    full = decode_step_s(p, matmul_params, n_layers, d_model, p.max_batch, ctx)
    charged = pre + k * completion_tokens * full / p.max_batch
    batch = np.maximum(1, np.minimum(k, p.max_batch))
    own = decode_step_s(p, matmul_params, n_layers, d_model, batch, ctx)
    latency = pre + np.ceil(k / batch) * completion_tokens * own
    return charged, latency
