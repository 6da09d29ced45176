"""Import every module of a plug-in package once, so that its ``@register`` calls run.

Strategies, scorers and backends each live in a package whose modules register
themselves: adding one is adding a module, with no list to edit elsewhere.
"""
from __future__ import annotations

import importlib
import pkgutil

_done: set[str] = set()


def load_all(package: str, path) -> None:
    if package in _done:
        return
    _done.add(package)
    for m in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        importlib.import_module(f"{package}.{m.name}")
