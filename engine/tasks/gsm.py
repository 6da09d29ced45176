"""``gsm``: grade-school word problems from reasoning-gym's GSM-Symbolic generator, fixed and shipped.

The generator (Apache-2.0, ``pip install reasoning-gym==0.1.25``) instantiates GSM8K templates with seeded
numbers and names. Its output is written once to ``data/tasks/gsm_test.jsonl`` (300 problems) and
``data/tasks/gsm_shots.jsonl`` (the worked examples of the few-shot prompt, from another seed), so using the
task needs no reasoning-gym, and the problems never change under a new generator version::

    python -m engine.tasks.gsm_make   # regenerate both files (needs reasoning-gym)

The generator has one difficulty setting, so the level is the number of steps of the worked solution:
level 1 = 2 steps, 2 = 3, 3 = 4, 4 = 5, 5 = 6 or more; 60 problems per level. Answers are graded by
``engine.tasks.answers`` (exact rationals; LaTeX through math-verify), like dataset files.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .base import Problem

DATA = Path(__file__).resolve().parents[2] / "data" / "tasks"
TEST_FILE, SHOTS_FILE = DATA / "gsm_test.jsonl", DATA / "gsm_shots.jsonl"
GENERATOR, TEST_SEED, SHOTS_SEED, PER_LEVEL, N_SHOTS = "reasoning-gym==0.1.25 gsm_symbolic", 2026, 1, 60, 4
STOP = ("\n\nQuestion:",)


def _load(path: Path) -> list[Problem]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Problem(r["id"], r["question"], r["answer"], r["difficulty"], r["solution"], {"template": r["template"]})
            for r in rows]


def load_test() -> list[Problem]:
    return _load(TEST_FILE)


@lru_cache(maxsize=1)
def _shots_text() -> str:
    return "".join(f"Question: {s.question}\nAnswer: {s.solution}\n\n" for s in _load(SHOTS_FILE))


def prompt(p: Problem) -> str:
    """Few-shot plain prompt (for base models): worked examples ending ``#### N``, then the question."""
    return f"{_shots_text()}Question: {p.question}\nAnswer:"


def level(steps: int) -> int:
    return min(max(steps - 1, 1), 5)
