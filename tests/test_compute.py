"""Compute, cost and energy accounting against hand-computed numbers."""
import math

import numpy as np
import pytest

from engine.compute import (DEFAULT_CPU_POWER_WATTS, DEFAULT_GPU_POWER_WATTS, CostModel, flops_per_sample,
                            training_flops)
from engine.errors import ConfigError


def test_flops_weights_only():
    # 2 * 1e6 params * (10 + 5) tokens
    assert flops_per_sample(1_000_000, 10, 5) == 30_000_000.0
    assert isinstance(flops_per_sample(1_000_000, 10, 5), float)


def test_flops_with_attention():
    # T = 4, L = 2, d = 8: weights 2*100*4 = 800; attention 4*2*8*(1+2+3+4) = 640
    assert flops_per_sample(100, 3, 1, n_layers=2, d_model=8) == 1440.0
    # prompt/completion split does not matter with a KV cache, only the total
    assert flops_per_sample(100, 1, 3, 2, 8) == 1440.0
    # T = 1: attention over the token itself only
    assert flops_per_sample(10, 1, 0, 3, 5) == 2 * 10 + 4 * 3 * 5


def test_flops_vectorised():
    got = flops_per_sample(100, np.array([3, 0, 10]), np.array([1, 1, 0]), n_layers=2, d_model=8)
    want = [800 + 640, 200 + 64, 2000 + 64 * 55]
    assert isinstance(got, np.ndarray) and got.tolist() == want
    # large counts do not overflow integer arithmetic
    big = flops_per_sample(7_000_000_000, np.array([100_000]), np.array([100_000]), 32, 4096)
    assert big[0] == pytest.approx(2 * 7e9 * 2e5 + 2 * 32 * 4096 * 2e5 * (2e5 + 1), rel=1e-12)


def test_flops_missing_shape_means_no_attention():
    assert flops_per_sample(100, 3, 1, None, None) == 800.0
    assert flops_per_sample(100, 3, 1, float("nan"), float("nan")) == 800.0


@pytest.mark.parametrize("kwargs", [
    dict(params=-1, prompt_tokens=1, completion_tokens=1),
    dict(params=10, prompt_tokens=-1, completion_tokens=1),
    dict(params=10, prompt_tokens=np.array([1, -2]), completion_tokens=1),
    dict(params=10, prompt_tokens=1, completion_tokens=1, n_layers=2),
    dict(params=10, prompt_tokens=1, completion_tokens=1, n_layers=-2, d_model=4),
    dict(params=float("inf"), prompt_tokens=1, completion_tokens=1),
    dict(params="big", prompt_tokens=1, completion_tokens=1),
])
def test_flops_bad_inputs(kwargs):
    with pytest.raises(ConfigError):
        flops_per_sample(**kwargs)


def test_training_flops():
    assert training_flops(1_000_000, 20_000_000) == 1.2e14
    assert training_flops(10, np.array([1, 2])).tolist() == [60.0, 120.0]
    with pytest.raises(ConfigError):
        training_flops(-5, 10)


def test_cost_gpu_hours():
    cm = CostModel()
    assert cm.price_per_gpu_hour == 2.0 and cm.power_watts == DEFAULT_GPU_POWER_WATTS
    assert cm.dollars(3600) == 2.0
    assert cm.dollars(1800, tokens=10**9) == 1.0  # tokens ignored under time pricing
    got = CostModel(price_per_gpu_hour=3.6).dollars(np.array([0.0, 10.0, 1000.0]))
    assert got == pytest.approx([0.0, 0.01, 1.0], abs=1e-15)


def test_cost_per_token():
    cm = CostModel(price_per_mtok=0.5)
    assert cm.dollars(3600, 2_000_000) == 1.0  # seconds ignored under token pricing
    assert cm.dollars(np.array([1.0, 2.0]), np.array([1000, 3_000_000])).tolist() == [0.0005, 1.5]
    with pytest.raises(ConfigError):
        cm.dollars(10)
    assert CostModel(price_per_mtok=0.0).dollars(10, 100) == 0.0


def test_energy():
    assert CostModel(power_watts=300).energy_wh(3600) == 300.0
    assert CostModel(power_watts=DEFAULT_CPU_POWER_WATTS).energy_wh(60) == pytest.approx(65 / 60)
    assert CostModel(power_watts=120).energy_wh(np.array([30.0, 90.0])).tolist() == [1.0, 3.0]
    assert math.isnan(CostModel().energy_wh(float("nan")))  # missing timing stays missing
    with pytest.raises(ConfigError):
        CostModel().energy_wh(-1.0)


@pytest.mark.parametrize("kwargs", [
    dict(price_per_gpu_hour=-1.0), dict(price_per_gpu_hour=float("nan")), dict(price_per_gpu_hour=float("inf")),
    dict(price_per_mtok=-0.1), dict(price_per_mtok=float("nan")), dict(power_watts=-5.0),
    dict(power_watts=float("inf")),
])
def test_cost_model_validation(kwargs):
    with pytest.raises(ConfigError):
        CostModel(**kwargs)


def test_cost_model_frozen():
    with pytest.raises(Exception):
        CostModel().power_watts = 10.0


def test_compact_numbers_read_like_the_tables():
    from engine.accounting import compact
    assert [compact(x) for x in (1.96e7, 1.234e9, 3.3e8, 2.5e12, 4e6, 950, 0.00105, 0)] == \
        ["19.6M", "1.23B", "330M", "2.5T", "4M", "950", "0.00105", "0"]
