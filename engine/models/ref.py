"""``ModelRef``: a model resolved once into what the engine carries around.

Resolving reads no weights: a local directory is fingerprinted from its files
(``loader.fingerprint``), a hub id by its name, a model on a server
(``URL#MODEL?...``, see ``backends.http``) by its id and revision. Everything downstream (the
cache, the runner, the analysis, the app's cached results) keys on the ref.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

from ..errors import ConfigError, ModelError
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
        return http_ref(model)  # a model on a server (URL#MODEL?...); keyed without contacting it
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


@dataclass(frozen=True)
class HttpSpec:
    urls: tuple[str, ...]
    model: str
    revision: str = ""
    params: int | None = None
    key_env: str | None = None
    name: str | None = None
    concurrency: int = 8
    timeout: float = 120.0
    retries: int = 4
    backoff: float = 0.5
    mode: str = "auto"


_SCALES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def parse_count(text: str) -> int:
    """A parameter count as people write it, 135M, 1.5B, 1.35e8 or 135,000,000 (the app shows counts as
    135M: the same form goes back in); ValueError where it is none, or not at least 1."""
    t = str(text).strip().replace(",", "").replace("_", "").lower()
    unit = t[-1:] if t[-1:] in _SCALES and t[-1:] else ""
    value = float(t[:len(t) - len(unit)]) * _SCALES[unit]   # ValueError for words, OverflowError never here
    if not value >= 1 or value == float("inf"):
        raise ValueError(f"{text!r} is not a count of at least 1")
    return int(round(value))


def parse_spec(spec: str) -> HttpSpec:
    base, sep, rest = spec.partition("#")
    model, _, query = rest.partition("?")
    urls = tuple(u.rstrip("/") for u in base.split("+") if u)
    if not sep or not model or not urls or not all(u.startswith(("http://", "https://")) for u in urls):
        raise ConfigError(f"model spec {spec!r}: write URL[+URL...]#MODEL[?option=value&...], "
                          "e.g. http://127.0.0.1:8000/v1#arith-s")
    known = [f.name for f in fields(HttpSpec) if f.name not in ("urls", "model")]
    opts = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        if k not in known:
            raise ConfigError(f"model spec {spec!r}: unknown option {k!r}; use {', '.join(known)}")
        try:
            if k == "params":
                opts[k] = parse_count(v)
            elif k in ("concurrency", "retries"):
                opts[k] = int(float(v))
            elif k in ("timeout", "backoff"):
                opts[k] = float(v)
            else:
                opts[k] = v
        except (ValueError, OverflowError):
            raise ConfigError(f"model spec {spec!r}: {k}={v!r} is not a number") from None
    s = HttpSpec(urls, model, **opts)
    if s.mode not in ("auto", "indices", "seed") or s.concurrency < 1 or s.retries < 0 or s.timeout <= 0 \
            or s.backoff < 0 or (s.params is not None and s.params < 1):
        raise ConfigError(f"model spec {spec!r}: needs mode in auto/indices/seed, concurrency >= 1, retries >= 0, "
                          "timeout > 0, backoff >= 0, params >= 1")
    return s


def http_ref(spec: str) -> ModelRef:
    """The cache identity of a served model: its id and the user's revision (no network needed)."""
    s = parse_spec(spec)
    fp = hashlib.sha256(json.dumps(["http", s.model, s.revision]).encode()).hexdigest()[:16]
    # the default name says where the model runs, so a served arith-s never reads as the local one in a report
    host = urlparse(s.urls[0]).netloc + ("+" if len(s.urls) > 1 else "")
    return ModelRef(s.name or f"{s.model}@{host}", spec, fp, "http")
