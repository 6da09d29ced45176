"""``arith``: seeded multi-step arithmetic word problems with checkable steps.

A problem is a short story about one quantity changed by a sequence of
operations. The worked solution has one ``a<op>b=c`` step per line and a final
``#### N`` line, so every step can be checked by machine (that is what the
process reward model learns to predict).
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from .base import Problem

LEVELS = (1, 2, 3, 4, 5)
MAX_VALUE = 999


@dataclass(frozen=True)
class Level:
    ops: int          # number of arithmetic steps
    max_operand: int  # largest number appearing in the story
    mul: bool         # multiplication by a small factor allowed
    carry: bool       # carries/borrows allowed


LEVEL_SPECS = {
    1: Level(1, 9, False, True),
    2: Level(2, 20, False, True),
    3: Level(3, 50, False, True),
    4: Level(4, 99, True, True),
    5: Level(5, 999, True, True),
}

NAMES = [("Ann", "She"), ("Bob", "He"), ("Eva", "She"), ("Max", "He"),
         ("Lea", "She"), ("Sam", "He"), ("Zoe", "She"), ("Tom", "He")]
ITEMS = ["apples", "pens", "coins", "books", "cards", "shells", "stamps", "eggs"]
PLUS = ["{p} buys {b} more.", "{p} finds {b} more.", "{p} gets {b} more."]
MINUS = ["{p} gives away {b}.", "{p} loses {b}.", "{p} sells {b}."]
TIMES = ["{p} gets {b} times as many."]

STEP_RE = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")


def _carries(a: int, b: int, op: str) -> bool:
    if op == "+":
        return any(int(x) + int(y) >= 10 for x, y in zip(str(a)[::-1], str(b)[::-1]))
    if op == "-":
        return any(int(x) < int(y) for x, y in zip(str(a)[::-1], str(b).zfill(len(str(a)))[::-1]))
    return True


def apply_op(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def rerun(steps, start: int) -> list:
    """Steps with each first operand the previous result and each result recomputed, from index ``start`` on:
    a solution with one mistake put in at ``start - 1`` (or a step left out at ``start``) carried through."""
    out = list(steps[:start])
    for a, op, b, _ in steps[start:]:
        a = out[-1][3] if out else a
        out.append((a, op, b, apply_op(a, op, b)))
    return out


def make_problem(rng: random.Random, level: int, pid: str) -> Problem:
    spec = LEVEL_SPECS[level]
    name, pron = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    while True:
        total = rng.randint(2, spec.max_operand)
        start, steps, sentences = total, [], []
        ok = True
        for _ in range(spec.ops):
            ops = (["+"] if total < MAX_VALUE else []) + (["-"] if total > 1 else []) \
                + (["*"] if spec.mul and total <= MAX_VALUE // 2 else [])
            op = rng.choice(ops)
            for _try in range(50):
                if op == "*":
                    b = rng.randint(2, min(9, MAX_VALUE // max(total, 1)))
                elif op == "+":
                    b = rng.randint(1, min(spec.max_operand, MAX_VALUE - total))
                else:
                    b = rng.randint(1, max(1, min(spec.max_operand, total - 1)))
                res = apply_op(total, op, b)
                if 0 <= res <= MAX_VALUE and b >= 1 and (spec.carry or not _carries(total, b, op)):
                    break
            else:
                ok = False
                break
            tmpl = rng.choice({"+": PLUS, "-": MINUS, "*": TIMES}[op])
            sentences.append(tmpl.format(p=pron, b=b))
            steps.append((total, op, b, res))
            total = res
        if ok:
            break
    question = f"{name} has {start} {item}. " + " ".join(sentences) + f" How many {item} now?"
    solution = format_solution(steps)
    return Problem(id=pid, question=question, answer=str(total), difficulty=level,
                   solution=solution, meta={"steps": [list(s) for s in steps]})


def format_solution(steps) -> str:
    lines = [f"{a}{op}{b}={c}" for a, op, b, c in steps]
    return "\n".join(lines + [f"#### {steps[-1][3]}"])


def prompt(p: Problem) -> str:
    return f"Q: {p.question}\nA:\n"


STOP = ("\n\n", "\nQ:")


def training_text(p: Problem) -> str:
    """What the ladder is trained on: prompt plus worked solution."""
    return prompt(p) + p.solution + "\n"


def gold_steps(p: Problem) -> list[tuple[int, str, int, int]]:
    if "steps" in p.meta:
        return [tuple(s) for s in p.meta["steps"]]
    return [(int(a), op, int(b), int(c)) for a, op, b, c in
            (STEP_RE.match(line).groups() for line in (p.solution or "").splitlines() if STEP_RE.match(line))]


def split_steps(completion: str) -> list[str]:
    """Solution lines that are steps (everything before the ``####`` line)."""
    out = []
    for line in completion.splitlines():
        if line.strip().startswith("####"):
            break
        if line.strip():
            out.append(line.strip())
    return out


def check_steps(p: Problem, completion: str) -> list[bool]:
    """Per step: is its arithmetic right *and* is it the step the problem calls for?

    A step that correctly computes from an earlier wrong result is still
    labelled wrong: it is not consistent with the problem. This is the label
    the process reward model is trained on.
    """
    gold = gold_steps(p)
    labels, running = [], True
    for i, line in enumerate(split_steps(completion)):
        m = STEP_RE.match(line)
        good = False
        if m and i < len(gold):
            a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
            ga, gop, gb, gc = gold[i]
            good = apply_op(a, op, b) == c and (a, op, b) == (ga, gop, gb)
        running = running and good
        labels.append(running)
    return labels


def local_step_labels(p: Problem, completion: str, correct: bool) -> list[bool]:
    """Per non-blank line (as ``verifiers.step_end_offsets`` counts them): is *this* line right given the
    line before it (right arithmetic, starting from the previous result, the problem's next operation)?
    The ``####`` line (anything after it is ignored) gets the outcome label. Unlike ``check_steps``, a
    line after a mistake can be right: recipe v2's PRM learns these labels, and its step-level AUROC is
    measured against them."""
    gold = gold_steps(p)
    start = gold[0][0] if gold else None
    labels, prev, i = [], start, 0
    for line in completion.rstrip("\n").split("\n"):
        if not line.strip():
            continue
        if line.strip().startswith("####"):
            labels.append(bool(correct))
            return labels
        m = STEP_RE.match(line)
        ok = False
        if m and i < len(gold):
            a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
            ok = apply_op(a, op, b) == c and a == prev and (op, b) == (gold[i][1], gold[i][2])
            prev = c
        else:
            prev = None
        labels.append(ok)
        i += 1
    return labels


def generate(seed: int, per_level: int, levels=LEVELS, prefix: str = "arith") -> list[Problem]:
    """Deterministic: the same (seed, per_level, levels) always gives the same problems."""
    out = []
    for level in levels:
        rng = random.Random(f"{seed}-{level}")
        out += [make_problem(rng, level, f"{prefix}-L{level}-{i:03d}") for i in range(per_level)]
    return out


TEST_SEED = 20261124
TEST_FILE = Path(__file__).resolve().parents[2] / "data" / "tasks" / "arith_test.jsonl"


def train_stream(seed: int, levels=LEVELS, exclude: set[str] | None = None):
    """Endless seeded stream of training problems, never one of the test questions."""
    exclude = exclude if exclude is not None else {p.question for p in load_test()}
    rng = random.Random(f"train-{seed}")
    i = 0
    while True:
        level = rng.choice(list(levels))
        p = make_problem(rng, level, f"train-{seed}-{i}")
        i += 1
        if p.question not in exclude:
            yield p


def write_test_set(path: Path = TEST_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for p in generate(TEST_SEED, 100):
            f.write(json.dumps({"id": p.id, "question": p.question, "answer": p.answer,
                                "difficulty": p.difficulty, "solution": p.solution,
                                "steps": p.meta["steps"]}) + "\n")


def load_test(path: Path = TEST_FILE) -> list[Problem]:
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            out.append(Problem(id=r["id"], question=r["question"], answer=str(r["answer"]),
                               difficulty=r["difficulty"], solution=r["solution"],
                               meta={"steps": r["steps"]}))
    return out
