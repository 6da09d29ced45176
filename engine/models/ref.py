"""``ModelRef``: a model resolved once into what the engine carries around.

Resolving reads no weights: a local directory is fingerprinted from its files
(``loader.fingerprint``), a hub id by its name. Everything downstream (the
cache, the runner, the analysis, the app's cached results) keys on the ref.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from .loader import check_local, fingerprint, hub_fingerprint, is_local_source, resolve_source


@dataclass(frozen=True)
class ModelRef:
    name: str                  # what users see (a shipped name, a directory's name, or a hub id)
    source: str                # what the backend opens: a directory, a hub id or a server address
    fingerprint: str           # the cache key of the model's weights
    backend: str = "transformers"

    def __str__(self) -> str:
        return self.name


def resolve_model(model: "ModelRef | str", source: str | None = None, backend: str = "transformers") -> ModelRef:
    """A ref for a shipped name, a local directory or a hub id (``source`` overrides where it lives)."""
    if isinstance(model, ModelRef):
        return model
    if source is None and str(model).startswith(("http://", "https://")):
        from ..backends.http import http_ref  # a model on a server (URL#MODEL?...); keyed without contacting it
        return http_ref(model)
    src = source or resolve_source(model)
    if not is_local_source(src) and "/" not in src:
        # hub ids are "org/name"; a bare name that is neither shipped nor a directory is a typo, and asking
        # the hub about it offline costs a minute of retries
        from .loader import list_shipped
        raise ModelError(f"unknown model {model!r}: not a shipped model ({', '.join(list_shipped()) or 'none'}), "
                         "not a directory, and not a hub id (those look like org/name)")
    if is_local_source(src):
        path = Path(src).expanduser()
        check_local(path, model)
        name = Path(model).name if source is None and Path(model).exists() else model
        return ModelRef(name, str(path), fingerprint(str(path)), backend)
    return ModelRef(model, src, hub_fingerprint(src), backend)
