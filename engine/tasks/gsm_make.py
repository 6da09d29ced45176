"""Write ``data/tasks/gsm_test.jsonl`` and ``gsm_shots.jsonl`` from reasoning-gym's GSM-Symbolic generator.

    pip install reasoning-gym==0.1.25 && python -m engine.tasks.gsm_make

The same seeds give the same files (the shipped ones); the task itself (``engine.tasks.gsm``) only reads them.
"""
from __future__ import annotations

import json
import re

from .gsm import GENERATOR, N_SHOTS, PER_LEVEL, SHOTS_FILE, SHOTS_SEED, TEST_FILE, TEST_SEED, level


def generate(seed: int, size: int) -> list[dict]:
    """Rows of the generator's problems in its order; ``solution`` is the worked answer ending ``#### N``."""
    import reasoning_gym
    from .answers import normalize_number
    out = []
    ds = reasoning_gym.create_dataset("gsm_symbolic", seed=seed, size=size)
    for i, x in enumerate(ds):
        cot = x["metadata"]["answer_cot"].strip()
        steps = [s for s in cot.rsplit("####", 1)[0].split("\n") if s.strip()]
        gold = normalize_number(x["answer"])
        if gold is None or normalize_number(cot.rsplit("####", 1)[1]) != gold:
            continue  # a template whose worked answer disagrees with its answer field: not a fair test item
        out.append(dict(question=x["question"], answer=gold, solution=cot, difficulty=level(len(steps)),
                        template=f"gsm_symbolic/{ds.task_indices[i]}"))
    return out


_CALC = re.compile(r"(\d+(?:\.\d+)?(?:\s*[-+*/]\s*\d+(?:\.\d+)?)+)\s*=\s*(\d+(?:\.\d+)?)")


def _clean_worked(solution: str) -> bool:
    """Every step line shows a calculation and every calculation is right: some of the generator's
    templates print steps such as "48=48", which a few-shot prompt would teach."""
    lines = [s for s in solution.rsplit("####", 1)[0].split("\n") if s.strip()]
    calcs = [_CALC.findall(s) for s in lines]
    return all(calcs) and all(abs(eval(e) - float(v)) < 1e-9 for c in calcs for e, v in c)  # digits and + - * / only


def write() -> None:
    shots = [r for r in generate(SHOTS_SEED, 200) if r["difficulty"] in (1, 2) and _clean_worked(r["solution"])]
    shots = [r for i, r in enumerate(shots) if r["template"] not in {s["template"] for s in shots[:i]}][:N_SHOTS]
    seen = {r["question"] for r in shots}
    by_level: dict[int, list[dict]] = {lv: [] for lv in range(1, 6)}
    for r in generate(TEST_SEED, 4000):
        if r["question"] not in seen and len(by_level[r["difficulty"]]) < PER_LEVEL:
            seen.add(r["question"])
            by_level[r["difficulty"]].append(r)
    for lv, rows in by_level.items():
        if len(rows) < PER_LEVEL:
            raise SystemExit(f"level {lv}: only {len(rows)} problems; generate more")
    test = [{**r, "id": f"gsm-L{lv}-{j:03d}"} for lv, rows in by_level.items() for j, r in enumerate(rows)]
    shots = [{**r, "id": f"gsm-shot-{j}"} for j, r in enumerate(shots)]
    for path, rows in ((TEST_FILE, test), (SHOTS_FILE, shots)):
        keys = ("id", "question", "answer", "difficulty", "solution", "template")
        path.write_text("".join(json.dumps({k: r[k] for k in keys}) + "\n" for r in rows))
        print(f"{path}: {len(rows)} problems ({GENERATOR}, seed {TEST_SEED if path == TEST_FILE else SHOTS_SEED})")


if __name__ == "__main__":
    write()
