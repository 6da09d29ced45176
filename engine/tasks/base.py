"""A task is data plus three functions: prompt, extract, check."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from .answers import answers_equal, extract_answer


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str                      # gold final answer, normalised string
    difficulty: int | None = None    # 1..5 for arith; None when unknown
    solution: str | None = None      # worked solution, when the data has one
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Task:
    """A named, ordered list of problems and how to prompt and grade them.

    ``prompt_fn``/``extract_fn``/``check_fn`` are plain functions so a task is
    fully described by data plus a few lines (lm-evaluation-harness style).
    """

    name: str
    problems: Sequence[Problem]
    prompt_fn: Callable[[Problem], str]
    extract_fn: Callable[[str], str | None] = extract_answer
    check_fn: Callable[[str | None, str], bool] = answers_equal
    stop: tuple[str, ...] = ()       # default stop strings for this prompt format
    source: str = ""                 # file or generator the problems came from
    chat_fn: Callable[[Problem], str] | None = None  # the user turn for chat models (default: prompts.chat_message)

    def prompt(self, p: Problem) -> str:
        return self.prompt_fn(p)

    def chat(self, p: Problem) -> str:
        from .prompts import chat_message
        return (self.chat_fn or chat_message)(p)

    def extract(self, completion: str) -> str | None:
        return self.extract_fn(completion)

    def check(self, predicted: str | None, gold: str) -> bool:
        return self.check_fn(predicted, gold)

    def grade(self, p: Problem, completion: str) -> tuple[str | None, bool]:
        pred = self.extract(completion)
        return pred, self.check(pred, p.answer)

    def by_id(self) -> dict[str, Problem]:
        return {p.id: p for p in self.problems}

    def select(self, count: int | None = None, difficulties: Sequence[int] | None = None) -> list[Problem]:
        """``count`` problems at the given difficulty levels (default: all), balanced across levels.

        Levels take turns (round-robin, each in file order), so ``--problems 100``
        on a five-level task is 20 per level rather than the first level only. A
        deterministic prefix within each level (not a random subset) keeps a
        larger selection a superset of a smaller one, so cached work is reused
        when users grow the set. ``count=None`` returns every match in file order.
        """
        want = set(difficulties) if difficulties else None
        ps = [p for p in self.problems if want is None or p.difficulty in want]
        if count is None:
            return ps
        buckets: dict = {}
        for p in ps:  # problems without a level form one bucket of their own
            buckets.setdefault(p.difficulty, []).append(p)
        if len(buckets) <= 1:
            return ps[:count]
        order = sorted(buckets, key=lambda d: (d is None, d if d is not None else 0))
        out, i = [], 0
        while len(out) < count and any(i < len(buckets[d]) for d in order):
            for d in order:
                if i < len(buckets[d]) and len(out) < count:
                    out.append(buckets[d][i])
            i += 1
        return out
