"""Backends: what turns a prompt into samples. One protocol, one registry.

A backend is opened for one resolved model (``ModelRef``) and offers:

* ``spec``: a ``ModelSpec`` that the cache records: name, device, fingerprint,
  and parameter counts when known (FLOPs per token = 2 x ``matmul_params``;
  ``engine.compute`` adds attention from ``n_layers`` and ``d_model``);
* ``generate(prompt, params, indices, prompt_key, max_batch) -> list[RawSample]``:
  samples ``indices`` of ``prompt`` under ``params``. Sample ``i`` must depend
  only on (model, prompt_key, params, i), never on which other indices share
  the call: that is what lets the cache top up a pool.
* optionally ``generate_many([(prompt, prompt_key, indices)], params) -> [samples]``:
  the same for many problems decoded as one batch (the runner then fills a
  batch with many problems' rows), and ``rows_per_batch(params) -> int``, the
  batch size to use when the user names none;
* optionally ``finish()``: called when a run ends, to free what the backend kept
  to speed up its next batch.

``open_backend(ref, device)`` picks the backend named by ``ref.backend``. Adding
one is a module in this package that calls ``register("name")`` on its opener.
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

from ..errors import EngineError
from ..models.loader import ModelSpec
from ..models.params import SamplingParams
from ..models.ref import ModelRef
from ..models.sampling import RawSample
from ..plugins import load_all


class Backend(Protocol):
    spec: ModelSpec

    def generate(self, prompt: str, params: SamplingParams, indices: Sequence[int], prompt_key: str,
                 max_batch: int = 64) -> list[RawSample]: ...


_OPENERS: dict[str, Callable[[ModelRef, str | None], Backend]] = {}


def register(kind: str):
    """Decorator: ``opener(ref, device) -> Backend`` serves refs with ``backend == kind``."""
    def deco(opener):
        _OPENERS[kind] = opener
        return opener
    return deco


def kinds() -> list[str]:
    load_all(__name__, __path__)
    return sorted(_OPENERS)


def open_backend(ref: ModelRef, device: str | None = None) -> Backend:
    if ref.backend not in kinds():
        raise EngineError(f"model {ref.name!r}: unknown backend {ref.backend!r}; use one of {', '.join(kinds())}")
    return _OPENERS[ref.backend](ref, device)
