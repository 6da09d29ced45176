"""Compute, cost and energy accounting for sampling and training.

Formulas (all FLOP counts count a multiply-add as 2 FLOPs):

* Inference, per sample of T = prompt + completion tokens, for a model with N parameters that
  take part in matrix multiplies:

      FLOPs = 2 * N * T                              (weights; Kaplan et al. 2020, "Scaling Laws
                                                      for Neural Language Models", sec. 2.1, table 1)
            + 4 * L * d * T * (T + 1) / 2            (attention over the context, when the number of
                                                      layers L and width d are known)

  The attention term: the token at position t (1-based, attending to t positions including
  itself) does QK^T and softmax(QK^T) V, each t * d multiply-adds per layer = 2 * t * d FLOPs, so
  4 * L * d * t per token (the per-layer count of Hoffmann et al. 2022, "Training
  Compute-Optimal Large Language Models", appendix F). Summing t = 1..T gives the formula above.
  With a KV cache prompt and completion tokens cost the same per position, so only T matters.
  Kaplan et al. drop this term when d >> T; for the small models here it is not negligible.

* Training: FLOPs = 6 * N * D for D training tokens (forward 2N + backward 4N per token;
  Kaplan et al. 2020, sec. 2.1; Hoffmann et al. 2022, sec. 3).

* Dollars: price_per_mtok * tokens / 1e6 when a per-token price is set (API-style pricing),
  otherwise price_per_gpu_hour * seconds / 3600 (rented hardware is billed by time, not work).

* Energy: Wh = seconds * watts / 3600, with watts the device's average draw while busy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError
from .hardware import MEASURED
from .hardware import get as get_profile

# Rough average draw while generating, used when nothing better is known. A datacenter GPU
# running batched inference sits well below its TDP (A100 PCIe is rated 250-300 W, H100 SXM up
# to 700 W); 300 W is a middle-of-the-road figure. A desktop/laptop CPU package under full load
# is typically 45-125 W.
DEFAULT_GPU_POWER_WATTS = 300.0
DEFAULT_CPU_POWER_WATTS = 65.0

# Typical on-demand cloud price of one mid-range datacenter GPU, dollars per hour.
DEFAULT_PRICE_PER_GPU_HOUR = 2.0


def flops_per_sample(params: int, prompt_tokens, completion_tokens,
                     n_layers: int | None = None, d_model: int | None = None):
    """Forward-pass FLOPs to process a sample's prompt and generate its completion.

    2 * params * T, plus 2 * n_layers * d_model * T * (T + 1) for attention when both n_layers
    and d_model are given (see the module docstring); None or NaN/NA (a missing value read back
    from a table) counts as not given. Token counts may be scalars or numpy arrays (one entry per
    sample); returns a float for scalars, an array otherwise.
    """
    n = _nonneg("params", params)
    if _missing(n_layers) != _missing(d_model):
        raise ConfigError("give both n_layers and d_model for the attention term, or neither")
    t = _nonneg_array("prompt_tokens", prompt_tokens) + _nonneg_array("completion_tokens", completion_tokens)
    flops = 2.0 * n * t
    if not _missing(n_layers):
        layers, width = _nonneg("n_layers", n_layers), _nonneg("d_model", d_model)
        flops = flops + 4.0 * layers * width * t * (t + 1.0) / 2.0
    return _out(flops)


def training_flops(params: int, tokens):
    """6 * params * tokens (Kaplan et al. 2020; Hoffmann et al. 2022). Vectorised over ``tokens``."""
    return _out(6.0 * _nonneg("params", params) * _nonneg_array("tokens", tokens))


@dataclass(frozen=True)
class CostModel:
    """How seconds and tokens turn into dollars and watt-hours.

    price_per_gpu_hour: dollars per device-hour, used unless ``price_per_mtok`` is set.
    price_per_mtok: dollars per million (prompt + completion) tokens; overrides time pricing.
    power_watts: average device draw while busy, for energy.
    hardware: where device seconds come from: ``hardware.MEASURED`` (wall time recorded while
      sampling) or a profile name from ``engine.hardware`` (a roofline projection from model size).
    prefix_cache: count a problem's shared prompt once, however many samples are drawn (what
      servers with prefix caching do: vLLM, SGLang); False counts it once per sample.
    """

    price_per_gpu_hour: float = DEFAULT_PRICE_PER_GPU_HOUR
    price_per_mtok: float | None = None
    power_watts: float = DEFAULT_GPU_POWER_WATTS
    hardware: str = MEASURED
    prefix_cache: bool = True

    def __post_init__(self):
        get_profile(self.hardware)  # unknown profile: ConfigError naming the known ones
        _nonneg("price_per_gpu_hour", self.price_per_gpu_hour)
        if self.price_per_mtok is not None:
            _nonneg("price_per_mtok", self.price_per_mtok)
        _nonneg("power_watts", self.power_watts)

    def dollars(self, seconds, tokens=None):
        """Cost of ``seconds`` of device time producing ``tokens`` tokens (scalars or arrays)."""
        if self.price_per_mtok is not None:
            if tokens is None:
                raise ConfigError("per-token pricing needs token counts")
            return _out(_nonneg_array("tokens", tokens) * (self.price_per_mtok / 1e6))
        return _out(_nonneg_array("seconds", seconds) * (self.price_per_gpu_hour / 3600.0))

    def energy_wh(self, seconds):
        """Watt-hours drawn over ``seconds`` of device time (scalar or array)."""
        return _out(_nonneg_array("seconds", seconds) * self.power_watts / 3600.0)


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        # pandas.NA refuses float(); checked by name so this module needs no pandas
        return type(value).__name__ == "NAType"


def _nonneg(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ConfigError(f"{name} must be a finite non-negative number, got {value!r}")
    return v


def _nonneg_array(name: str, value) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be numeric") from None
    # NaN passes through: a missing timing should show up as a missing cost, not an error
    if np.any(arr < 0) or np.any(np.isinf(arr)):
        raise ConfigError(f"{name} must be finite and non-negative")
    return arr


def _out(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr
