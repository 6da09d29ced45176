"""Verifier recipe v2 (engine/train/verifiers_v2.py): its labels, its pairwise loss, and the quick preset end to end."""
import json
import random

import torch

from engine.tasks import arith
from engine.train import verifiers_v2 as v
from engine.verifiers import load_verifier


def _problem():
    return v.train_task(v.QUICK).problems[7]


def test_gold_is_right_everywhere_and_a_slip_is_wrong_from_its_line_on():
    p = _problem()
    assert arith.local_step_labels(p, p.solution, True) == [True] * (len(arith.gold_steps(p)) + 1)
    assert v.expected_lines(p, p.solution) == [ln for ln in p.solution.split("\n")]
    rng = random.Random(3)
    for _ in range(20):
        bad = v.slip(p, rng)
        correct = bad.rstrip().endswith(f"#### {p.answer}")
        labels = arith.local_step_labels(p, bad, correct)
        assert not correct and not all(labels)
        # one slipped line; the lines after it carry on correctly from it, so they are locally right
        assert labels.count(False) == 2  # the slipped line and the #### line (which takes the outcome)
        assert labels[-1] is False


def test_local_labels_judge_each_line_from_the_line_before():
    p = _problem()
    (a, op, b, c), *_ = arith.gold_steps(p)
    wrong = f"{a}{op}{b}={c + 1}"
    rest = arith.gold_steps(p)[1:]
    prev, lines = c + 1, [wrong]
    for _, op2, b2, _ in rest:
        nxt = prev + b2 if op2 == "+" else prev - b2 if op2 == "-" else prev * b2
        lines.append(f"{prev}{op2}{b2}={nxt}")
        prev = nxt
    text = "\n".join(lines + [f"#### {prev}"])
    assert arith.local_step_labels(p, text, False) == [False] + [True] * len(rest) + [False]
    assert v.expected_lines(p, text)[0] == p.solution.split("\n")[0]


def test_pairwise_loss_prefers_right_over_wrong_within_a_problem_only():
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    groups = [0, 0, 1, 1]
    good = v.pairwise(torch.tensor([3.0, -3.0, 3.0, -3.0]), y, groups)
    bad = v.pairwise(torch.tensor([-3.0, 3.0, -3.0, 3.0]), y, groups)
    assert good < 0.1 < 2.0 < bad
    # across problems nothing is compared: a problem with one class adds nothing
    assert float(v.pairwise(torch.tensor([5.0, -5.0]), torch.tensor([1.0, 1.0]), [0, 0])) == 0.0


def test_quick_v2_end_to_end_loads_with_the_engine(tmp_path):
    recs = v.train_verifiers_v2(tmp_path / "v2", preset="quick", cache_path=tmp_path / "s.duckdb", progress=False)
    for kind in ("orm", "prm"):
        rec = json.loads((tmp_path / "v2" / kind / "training_record.json").read_text())
        assert rec["recipe_version"] == "v2" and rec["kind"] == kind
        assert "within_problem_auroc" in rec["held_out"]
        assert recs[kind]["held_out"]["problems_with_both"] >= 0
        ver = load_verifier(str(tmp_path / "v2" / kind), device="cpu")
        assert ver.kind == kind
        p = _problem()
        s = ver.score(arith.prompt(p), [p.solution, v.slip(p, random.Random(0))])
        assert len(s) == 2 and all(0.0 <= x <= 1.0 for x in s)
    assert not (tmp_path / "v2" / "ckpt.pt").exists()
