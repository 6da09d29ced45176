"""SmolLM2-135M-Instruct on gsm (50 problems x 16 samples, 256 new tokens) and the ladder's throughput, on one device.

The README's SmolLM2 table: `python -m engine sweep` on this CPU (float32), and on a GPU this script, which loads
SmolLM2 in float32 there too (the engine's CUDA default is bfloat16) so both devices sample the same model; the
ladder runs at the engine's defaults (arith-s and arith-xl, 100 problems x 64). Prints samples/s and tokens/s
from the recorded batch times; samples go to --cache, keyed as the CLI keys them:

    python bench/smollm2_gsm.py --device cuda --cache /tmp/gpu.duckdb
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.cache import SampleCache  # noqa: E402
from engine.experiment import Experiment  # noqa: E402
from engine.models import SamplingParams, loader  # noqa: E402
from engine.runner import run  # noqa: E402

SMOL = "smollm2-135m-instruct-b179c9523d0e"


def throughput(cache, ref, task) -> str:
    s = cache.samples(model_fp=ref.fingerprint, task=task)
    secs = float(((s.decode_s + s.prefill_s) / s.batch_size).sum())  # each sample's share of its batch, as reports
    return f"{ref.name}: {len(s)} samples, {len(s) / secs:.2f} samples/s, {s.completion_tokens.sum() / secs:.0f} tokens/s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--cache", required=True)
    a = ap.parse_args()
    cache = SampleCache(a.cache)
    src = loader.resolve_source(SMOL)
    # the backend asks for the device's default dtype; hand it the float32 model instead
    loader._models[(src, a.device, None)] = loader.load_model(SMOL, device=a.device, dtype="float32")
    jobs = [(SMOL, "gsm", SamplingParams(n=16, temperature=0.8, max_new_tokens=256), 50),
            ("arith-s", "arith", SamplingParams(n=64, temperature=0.8), 100),
            ("arith-xl", "arith", SamplingParams(n=64, temperature=0.8), 100)]
    for model, task, params, problems in jobs:
        exp = Experiment.build([model], task, params, problems=problems)
        run(exp.models[0], exp.load_task(), exp.selected(), exp.params, cache, device=a.device)
        print(throughput(cache, exp.models[0], task), flush=True)


if __name__ == "__main__":
    main()
