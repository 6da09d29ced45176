"""The training pipeline in miniature, and the shipped ladder and verifiers themselves."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.cache import SampleCache
from engine.models import SamplingParams, list_shipped, load_model
from engine.models.loader import MODELS_DIR
from engine.runner import run
from engine.tasks import arith, get_task
from engine.train.lm import LADDER, quick, train_lm
from engine.train.verifiers import corrupt
from engine.verifiers import load_verifier, shipped_verifiers
from tests.conftest import ROOT

RECORD_KEYS = {"params", "training_tokens", "training_flops", "wall_time_s", "seed", "final_loss"}


def _train(*args):
    r = subprocess.run([sys.executable, "-m", "engine.train", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    _train("ladder", "--quick", "--out", str(out), "--only", "arith-s,arith-m")
    _train("verifiers", "--quick", "--out", str(out))
    return out


def test_quick_pipeline_end_to_end(quick_dir, tmp_path):
    sizes = []
    for name in ("arith-s", "arith-m"):
        rec = json.loads((quick_dir / name / "training_record.json").read_text())
        assert RECORD_KEYS <= rec.keys()
        assert rec["training_flops"] == 6 * rec["params"] * rec["training_tokens"]
        lm = load_model(str(quick_dir / name))
        assert lm.spec.params == rec["params"] and lm.spec.training["seed"] == rec["seed"]
        sizes.append(rec["params"])
    assert sizes[0] < sizes[1]
    task = get_task("arith")
    cache = SampleCache(tmp_path / "c.duckdb")
    res = run(str(quick_dir / "arith-s"), task, task.problems[:2], SamplingParams(n=3, max_new_tokens=24), cache)
    assert res.generated == 6
    comps = cache.samples().text.tolist()[:3]
    for kind in ("orm", "prm"):
        v = load_verifier(str(quick_dir / "verifiers" / kind))
        assert v.kind == kind
        rec = v.record
        assert RECORD_KEYS <= rec.keys() and "held_out" in rec
        scores = v.score(task.prompt(task.problems[0]), comps)
        assert len(scores) == 3 and all(0 <= s <= 1 for s in scores)
    prm = load_verifier(str(quick_dir / "verifiers" / "prm"))
    p = task.problems[450]  # a level-5 problem: 5 steps and a final line
    steps = prm.step_scores(task.prompt(p), [p.solution])[0]
    assert len(steps) == len(arith.gold_steps(p)) + 1


def test_training_resumes_from_checkpoint(tmp_path):
    r = quick(LADDER[0])
    ref = train_lm(r, tmp_path / "ref", progress=False)
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from engine.train.lm import LADDER, quick, train_lm\n"
            f"train_lm(quick(LADDER[0]), {str(tmp_path / 'cut')!r}, ckpt_every=5, progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    ckpt = tmp_path / "cut" / "ckpt.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    if (tmp_path / "cut" / "training_record.json").exists():
        pytest.skip("training finished before it could be interrupted")
    assert ckpt.exists()
    state = torch.load(ckpt, weights_only=False)
    assert 0 < state["step"] < ref["steps"]
    resumed = train_lm(r, tmp_path / "cut", progress=False)
    assert resumed["final_loss"] == pytest.approx(ref["final_loss"], abs=1e-3)
    a = load_model(str(tmp_path / "ref")).model.state_dict()
    b = load_model(str(tmp_path / "cut")).model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


# ---- the shipped ladder -------------------------------------------------------------------

def test_shipped_ladder_shape():
    names = list_shipped()
    assert names == [r.name for r in LADDER]
    recs = [json.loads((MODELS_DIR / n / "training_record.json").read_text()) for n in names]
    params = [r["params"] for r in recs]
    assert params == sorted(params) and params[-1] / params[0] >= 30
    assert all(2 <= b / a <= 6 for a, b in zip(params, params[1:]))
    for r in recs:
        assert RECORD_KEYS <= r.keys() and r["training_flops"] == 6 * r["params"] * r["training_tokens"]
    total = sum(f.stat().st_size for f in MODELS_DIR.rglob("*") if f.is_file() and f.suffix != ".duckdb")
    assert total < 60e6


@pytest.mark.parametrize("name", [r.name for r in LADDER])
def test_shipped_model_loads_and_samples(name):
    lm = load_model(name)
    assert lm.spec.params == sum(p.numel() for p in lm.model.parameters()) == lm.spec.training["params"]
    task = get_task("arith")
    from engine.models import sample
    p = task.problems[0]
    out = sample(lm, task.prompt(p), SamplingParams(temperature=0, max_new_tokens=48, stop=task.stop), [0], "t")
    assert "####" in out[0].text  # trained models write the final-answer line


@pytest.mark.parametrize("kind", ["orm", "prm"])
def test_shipped_verifier_prefers_correct_solution(kind):
    """Gold solution vs the same solution with one step's result nudged (+-1, 2 or 10).

    The verifiers are small: they recognise the ladder's typical failures well
    (held-out AUROC) but check raw arithmetic only on short problems, so this
    uses levels 1-2 and asks for a clear majority, not perfection.
    """
    assert kind in shipped_verifiers()
    v = load_verifier(kind)
    task = get_task("arith")
    import random
    rng = random.Random(0)
    probs = [p for lvl in (1, 2) for p in task.problems if p.difficulty == lvl][:40] + \
        [p for p in task.problems if p.difficulty == 2][:40]
    wins = 0
    for p in probs:
        good, bad = v.score(task.prompt(p), [p.solution, corrupt(p, rng)])
        wins += good > bad
    assert wins / len(probs) >= 0.7, f"{kind} ranked the correct solution higher in {wins}/{len(probs)} cases"
    held = v.record["held_out"]
    assert held["auroc"] > 0.7
    for name in ("arith-s", "arith-m", "arith-l"):
        assert held["per_source"][name]["auroc"] > 0.8, (name, held["per_source"][name])
