"""The roofline projection, checked against hand-computed cases, and what it implies for cost by model size."""
import math

import numpy as np
import pandas as pd
import pytest

from engine import accounting, hardware
from engine.compute import CostModel
from engine.errors import ConfigError

TOY = hardware.Profile("toy", peak_flops=1e12, mem_bandwidth=1e11, bytes_per_value=2, price_per_hour=3.6,
                       watts=100, max_batch=8, source="made up")


def test_decode_step_is_memory_bound_at_small_batch_and_compute_bound_at_large():
    # 1e9 matmul params, no attention: weights are 2e9 bytes -> 0.02 s to read at 1e11 B/s
    assert hardware.decode_step_s(TOY, 1e9, 0, 0, batch=1, context=0) == pytest.approx(0.02)
    # one row does 2e9 FLOPs = 0.002 s: memory-bound, so 8 rows cost the same step
    assert hardware.decode_step_s(TOY, 1e9, 0, 0, batch=8, context=0) == pytest.approx(0.02)
    # 100 rows: 2e11 FLOPs = 0.2 s > 0.02 s: compute-bound
    assert hardware.decode_step_s(TOY, 1e9, 0, 0, batch=100, context=0) == pytest.approx(0.2)


def test_kv_cache_traffic_and_attention_flops():
    # 2 layers x width 100, context 1000: KV = 2*2*100*1000 values * 2 bytes = 8e5 bytes per row
    step = hardware.decode_step_s(TOY, 1e6, 2, 100, batch=4, context=1000)
    moved = 1e6 * 2 + 4 * 8e5
    flops = 4 * (2e6 + 4 * 2 * 100 * 1000)
    assert step == pytest.approx(max(moved / 1e11, flops / 1e12))


def test_prefill_is_compute_bound():
    # 1e9 params x 1000 tokens x 2 = 2e12 FLOPs = 2 s (weights would take 0.02 s)
    assert hardware.prefill_s(TOY, 1e9, 0, 0, 1000) == pytest.approx(2.0)


def test_sampling_charges_a_share_of_full_batches_and_waits_for_own_rounds():
    charged, latency = hardware.sampling_s(TOY, 1e9, 0, 0, prompt_tokens=10, completion_tokens=100, k=16)
    pre = hardware.prefill_s(TOY, 1e9, 0, 0, 10)
    full_step = hardware.decode_step_s(TOY, 1e9, 0, 0, 8, 60)   # a full batch of 8 rows
    assert charged == pytest.approx(pre + 16 * 100 * full_step / 8)
    assert latency == pytest.approx(pre + 2 * 100 * full_step)   # 16 rows = two rounds of 8
    one = hardware.sampling_s(TOY, 1e9, 0, 0, 10, 100, k=1)
    assert one[1] == pytest.approx(pre + 100 * hardware.decode_step_s(TOY, 1e9, 0, 0, 1, 60))


@pytest.mark.parametrize("profile", list(hardware.PROFILES))
def test_a_larger_model_is_never_cheaper_or_faster_per_problem(profile):
    """The ladder's shapes (params, layers, width) with arith-like token counts: cost and latency rise with size."""
    cost = CostModel(hardware=profile, price_per_gpu_hour=hardware.PROFILES[profile].price_per_hour)
    ladder = [(26656, 4, 32), (59952, 4, 48), (256104, 6, 80), (876360, 8, 128), (1.3e8, 12, 768), (7e9, 32, 4096)]
    for k in (1, 4, 64):
        dollars, latency = [], []
        for n, layers, width in ladder:
            pp = pd.DataFrame({"prompt_tokens": [60], "completion_tokens": [37.0], "flops": [1.0]})  # one problem
            c = accounting.problem_costs(pp, {"matmul_params": n, "n_layers": layers, "d_model": width}, [k], cost)
            dollars.append(c["dollars"][0, 0])
            latency.append(c["latency_s"][0, 0])
        assert all(a <= b for a, b in zip(dollars, dollars[1:])), (profile, k, dollars)
        assert all(a <= b for a, b in zip(latency, latency[1:])), (profile, k, latency)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown hardware profile"):
        CostModel(hardware="abacus")
    assert hardware.get(hardware.MEASURED) is None and hardware.names()[0] == hardware.MEASURED
    assert hardware.get("measured on this machine") is None  # the option's old name, in links made before
    assert "this machine" not in hardware.MEASURED  # the shipped sweeps were timed on the project's CPU, not yours
    assert all(p.source for p in hardware.PROFILES.values())


def test_step_overhead_adds_to_every_forward_pass():
    slow = hardware.Profile("slow", 1e12, 1e11, 2, 3.6, 100, 8, "made up", step_overhead_s=0.001)
    assert hardware.decode_step_s(slow, 1e9, 0, 0, 1, 0) == pytest.approx(0.021)
    assert hardware.prefill_s(slow, 1e9, 0, 0, 1000) == pytest.approx(2.001)
    assert all(p.step_overhead_s > 0 for p in hardware.PROFILES.values())
