"""Step checker: a process verifier that needs no training and no answer key.

It redoes each solution line's arithmetic (``a<op>b=c``, the ``arith`` task's format), checks that each
step starts from the previous step's result and that the ``#### N`` line repeats the last result. So it
catches calculation and copying slips, but not a misread problem: a solution that computes the wrong
thing correctly passes every check. Score: the fraction of checks passed (a missing ``####`` line is a
failed check); step scores: 1 or 0 per non-blank line, so the inspector shades the failing line.
"""
from __future__ import annotations

import re

from . import Scorer, register

# bounded digit runs: a hostile line cannot make int() work on thousands of digits
STEP = re.compile(r"^\s*(-?\d{1,30})\s*([-+*x×/])\s*(-?\d{1,30})\s*=\s*(-?\d{1,30})\s*$")
ANSWER = re.compile(r"^\s*####\s*(-?\d{1,30})\s*$")

ARITH, CHAIN, MALFORMED = "arithmetic", "chain", "malformed"


def _value(a: int, op: str, b: int) -> int | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op in "*x×":
        return a * b
    return a // b if b and a % b == 0 else None  # "/" only checks out when it divides exactly


def check(text: str | None) -> list[tuple[float, str | None]]:
    """Per non-blank line: (1.0 or 0.0, why it failed: ``arithmetic``, ``chain`` or ``malformed``; None if it
    passed); a solution without a ``####`` line gets one more failed (malformed) check. Lines after the
    ``####`` line are ignored."""
    out: list[tuple[float, str | None]] = []
    prev = None
    for line in (text if isinstance(text, str) else "").splitlines():  # None or NaN: no text
        if not line.strip():
            continue
        step, answer = STEP.match(line), ANSWER.match(line)
        if answer:
            ok = prev is not None and int(answer.group(1)) == prev
            out.append((1.0, None) if ok else (0.0, CHAIN if prev is not None else MALFORMED))
            return out
        if not step:
            out.append((0.0, MALFORMED))
            prev = None
            continue
        a, op, b, c = int(step.group(1)), step.group(2), int(step.group(3)), int(step.group(4))
        why = ARITH if _value(a, op, b) != c else CHAIN if prev is not None and a != prev else None
        out.append((0.0 if why else 1.0, why))
        prev = c
    return out + [(0.0, MALFORMED)]


def score_text(text: str | None) -> float:
    """The fraction of checks passed (0 for an empty text)."""
    checks = check(text)
    return sum(s for s, _ in checks) / len(checks)


def failure(text: str | None) -> str | None:
    """Why a solution fails the checks, most telling first (an arithmetic slip, then a broken chain, then a
    malformed line or no ``####`` line); None when it passes them all."""
    whys = {w for _, w in check(text)}
    return next((w for w in (ARITH, CHAIN, MALFORMED) if w in whys), None)


class StepChecker(Scorer):
    name = "step-checker"
    label = "the step checker (which redoes each line's arithmetic)"
    short = "step checker"

    def score(self, cache, task, samples, on_progress=None):
        # each distinct text once: a small model's samples repeat (the shipped sweeps: 128,000 samples, 34,525
        # distinct problem-and-text pairs)
        done: dict = {}
        for t in samples["text"]:
            if t not in done:
                c = check(t)
                done[t] = (sum(s for s, _ in c) / len(c), [s for s, _ in c])
        out = [done[t] for t in samples["text"]]
        return samples.assign(score=[sc for sc, _ in out], step_scores=[list(st) for _, st in out])


register(StepChecker.name, StepChecker)
