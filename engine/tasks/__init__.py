"""Task registry: built-in tasks by name, or bring-your-own files by path.

``get_task("arith")`` gives the shipped 500-problem test set, ``get_task("gsm")`` 300 GSM-Symbolic problems;
``get_task("path/to/file.jsonl")`` loads a GSM8K-format or mapped JSONL/CSV file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import EngineError
from . import arith, gsm
from .base import Problem, Task

_REGISTRY: dict[str, Callable[..., Task]] = {}


def register(name: str):
    def deco(fn):
        _REGISTRY[name] = fn
        return fn
    return deco


@register("arith")
def _arith() -> Task:
    return Task("arith", arith.load_test(), arith.prompt, stop=arith.STOP, source=str(arith.TEST_FILE))


@register("gsm")
def _gsm() -> Task:
    return Task("gsm", gsm.load_test(), gsm.prompt, stop=gsm.STOP, source=str(gsm.TEST_FILE))


def list_tasks() -> list[str]:
    return sorted(_REGISTRY)


def get_task(name: str, **kwargs) -> Task:
    """A registered task by name, or a dataset file (``.jsonl``/``.csv``) by path."""
    if name in _REGISTRY:
        return _REGISTRY[name](**kwargs)
    if Path(name).suffix.lower() in (".jsonl", ".json", ".csv"):
        from .files import load_task_file
        return load_task_file(name, **kwargs)
    raise EngineError(f"unknown task {name!r}: use one of {', '.join(list_tasks())} "
                      "or a path to a .jsonl/.csv file")


__all__ = ["Problem", "Task", "get_task", "list_tasks", "register"]
