"""Thin glue every page shares: cached engine objects, the sidebar, error display, downloads.

Page state lives in the URL: widgets are created with ``bind="query-params"``
and a ``key`` that is the query-parameter name (Streamlit keeps the two in
sync and drops parameters that equal their default).
"""
from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from engine import registry
from engine.cache import DEFAULT_PATH, SampleCache
from engine.errors import EngineError

URL = "query-params"  # pass as bind=URL


# ---- cached engine objects (keyed by plain values) ------------------------------
@st.cache_resource(show_spinner=False)
def get_cache(path: str) -> SampleCache:
    return SampleCache(path)


@st.cache_resource(show_spinner="Loading task...")
def get_task(name: str, root: str, version: float = 0.0):
    """``version``: the dataset's mapping mtime, so a new mapping reloads the task."""
    return registry.load_task(name, root)


@st.cache_data(ttl=5, show_spinner=False)
def models_table(root: str) -> pd.DataFrame:
    return pd.DataFrame(registry.all_models(root), columns=registry.MODEL_COLUMNS)


@st.cache_resource(show_spinner=False)
def available_devices() -> list[str]:
    import torch
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


# ---- errors ---------------------------------------------------------------------
@contextmanager
def engine_errors():
    """Show an ``EngineError`` as a message (never a traceback); other errors stay bugs."""
    try:
        yield
    except EngineError as e:
        st.error(str(e))


def guarded(fn, *args, **kwargs):
    """Call ``fn``; on ``EngineError`` show it and return None."""
    try:
        return fn(*args, **kwargs)
    except EngineError as e:
        st.error(str(e))
        return None


# ---- routing ----------------------------------------------------------------------
def require_router() -> None:
    """Make sure ``app.py`` (the router and the shared sidebar) runs this page.

    Call it first thing in ``app.py`` and in every page file. Streamlit starts in
    its legacy ``pages/`` mode and leaves it only once ``st.navigation`` has been
    called, so the first run on a fresh server (a deep link such as
    ``/size_vs_compute?...``) executes the page file directly, without ``app.py``.
    This leaves that mode and reruns: the rerun goes through ``app.py``, and
    because each page's ``url_path`` is its file name the same page is picked.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - Streamlit internals moved; tests/test_browser.py would notice
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


# ---- sidebar --------------------------------------------------------------------
def sidebar() -> dict:
    """The cache file and device every page uses; returns plain values."""
    with st.sidebar:
        path = st.text_input("Cache file", value=str(DEFAULT_PATH), key="cache", bind=URL,
                             help="DuckDB file holding every sample; defaults to $TTC_CACHE or cache/samples.duckdb")
        devices = available_devices()
        device = st.selectbox("Device", devices, key="device", bind=URL,
                              help="Where sampling runs (cuda appears when a GPU is visible)")
        st.caption(f"Sampling on **{device}**" + ("" if "cuda" in devices else " (no GPU visible)"))
    return {"cache_path": path.strip() or str(DEFAULT_PATH), "device": device,
            "root": str(registry.root_of(path.strip() or DEFAULT_PATH))}


def set_context(ctx: dict) -> None:
    st.session_state["_ctx"] = ctx


def context() -> dict:
    """Sidebar values set by ``app.py`` (defaults when a page runs on its own)."""
    ctx = st.session_state.get("_ctx")
    if ctx is None:
        ctx = {"cache_path": str(DEFAULT_PATH), "device": "cpu", "root": str(registry.root_of(DEFAULT_PATH))}
    return ctx


def current_cache(ctx: dict) -> SampleCache | None:
    return guarded(get_cache, ctx["cache_path"])


def cache_version(path: str) -> int:
    """Changes whenever the cache file is written: part of cached-result keys."""
    out = 0
    for p in (Path(path), Path(str(path) + ".wal")):
        try:
            out = max(out, p.stat().st_mtime_ns)
        except OSError:
            pass
    return out


def task_version(name: str, root: str) -> float:
    p = registry.datasets_dir(root) / (name + ".mapping.json")
    return p.stat().st_mtime if p.exists() else 0.0


# ---- downloads ------------------------------------------------------------------
def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def download_buttons(df, stem: str, key: str) -> None:
    """CSV and Parquet buttons; ``df`` may be a callable, run only when a button is clicked."""
    get = df if callable(df) else (lambda: df)
    c1, c2 = st.columns(2)
    c1.download_button("Download CSV", lambda: get().to_csv(index=False).encode(), f"{stem}.csv", "text/csv",
                       key=f"{key}_csv", width="stretch", icon=":material/download:")
    c2.download_button("Download Parquet", lambda: to_parquet_bytes(get()), f"{stem}.parquet",
                       "application/vnd.apache.parquet", key=f"{key}_pq", width="stretch",
                       icon=":material/download:")


def human_bytes(n) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024

