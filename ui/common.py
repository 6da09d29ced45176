"""Thin glue every page shares: cached engine objects, the sidebar, error display, downloads.

Page state lives in the URL: widgets are created with ``bind="query-params"``
and a ``key`` that is the query-parameter name (Streamlit keeps the two in
sync and drops parameters that equal their default).
"""
from __future__ import annotations

import io
import runpy
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from engine import analysis, registry
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


def available_verifiers() -> list[str]:
    """Oracle and majority vote always; the learned ORM/PRM once trained (shipped)."""
    from engine.verifiers import shipped_verifiers
    have = set(shipped_verifiers())
    return ["oracle", "majority"] + [v for v in ("orm", "prm") if v in have]


def missing_verifiers_note() -> str | None:
    """A line saying which learned verifiers are not trained yet (None when all are)."""
    missing = [v.upper() for v in ("orm", "prm") if v not in available_verifiers()]
    if not missing:
        return None
    return (f"{' and '.join(missing)} verifier{'s are' if len(missing) > 1 else ' is'} not trained yet "
            "(`python -m engine.train verifiers`); they appear here once shipped.")


@st.cache_data(show_spinner="Computing curves…", max_entries=32)
def cached_curves(cache_path: str, models: tuple, sources: tuple, task_name: str, root: str, task_version: float,
                  n_problems: int, levels: tuple, budget: int, temperature: float, verifiers: tuple,
                  price_per_gpu_hour: float, price_per_mtok: float | None, watts: float, by_level: bool,
                  cache_version: int) -> pd.DataFrame:
    """``analysis.curves`` for every verifier in ``verifiers`` over what is cached, models by display name.

    Reads the cache only (never samples); learned verifiers score cached samples they have not seen.
    """
    from engine.compute import CostModel
    from engine.models import SamplingParams
    cache = get_cache(cache_path)
    task = get_task(task_name, root, task_version)
    problems = task.select(n_problems, list(levels) or None)
    params = SamplingParams(n=budget, temperature=temperature)
    cost = CostModel(price_per_gpu_hour=price_per_gpu_hour, price_per_mtok=price_per_mtok, power_watts=watts)
    frames = [analysis.curves(cache, list(sources), task, problems, params, v, analysis.powers_of_two(budget),
                              cost, by_level=by_level) for v in verifiers]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    df["model"] = df["model"].map(dict(zip(sources, models)))
    return df


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
APP = Path(__file__).resolve().parents[1] / "app.py"


def require_router() -> None:
    """Make sure ``app.py`` (the router and the shared sidebar) runs this page: call it first in every page.

    Streamlit starts in its legacy ``pages/`` mode and leaves it only once
    ``st.navigation`` has been called, so on a fresh server (and in every
    ``AppTest`` run) a deep link such as ``/size_vs_compute?...`` executes the
    page file directly, without ``app.py``. Then this runs ``app.py`` in the same
    script run (no rerun, so a button click in flight is not lost): its
    ``st.navigation`` leaves that mode and, each page's ``url_path`` being its
    file name, runs this same page; ``st.stop()`` ends the direct run.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - Streamlit internals moved; the deep-link tests would notice
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(APP), run_name="__main__")
        st.stop()


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



# ---- which cached results a page reads ----------------------------------------------
BUDGETS = [2 ** i for i in range(9)]  # 1..256 samples per problem


def language_models(root: str) -> dict | None:
    """Selectable language models: ``names``, the shipped ``ladder`` and each name's ``source``
    (what the engine is handed). None, after saying why, when there are none."""
    table = guarded(models_table, root)
    if table is None:
        return None
    lms = table[table["kind"] == "lm"]
    if lms.empty:
        st.info("No models yet: shipped models appear under `data/models/` as training finishes, "
                "or add one on the **Models & data** page.")
        return None
    names = lms["name"].tolist()
    return {"names": names, "ladder": lms[lms["origin"] == "shipped"]["name"].tolist() or names[:1],
            "source": {r.name: (r.name if r.origin == "shipped" else r.source) for r in lms.itertuples()}}


def cache_and_models(ctx: dict) -> tuple[SampleCache, dict]:
    """The page's cache and selectable language models; stops the page (message shown) if either is missing."""
    cache = current_cache(ctx)
    lms = language_models(ctx["root"]) if cache is not None else None
    if lms is None:
        st.stop()
    return cache, lms


def cached_selection(root: str, lms: dict, default_models=None,
                     help: str = "Only what is already cached is shown: run sweeps on Explore") -> dict | None:
    """Models, task, problems, levels, sample budget and temperature: one set of widgets and URL keys
    for every page, so a page reads back what a sweep on Explore cached. None (message shown) when the
    task fails to load."""
    c1, c2 = st.columns([3, 1])
    models = c1.multiselect("Model scales", lms["names"], default=default_models or lms["ladder"], key="models",
                            bind=URL, help=help)
    task_name = c2.selectbox("Task", registry.task_names(root), key="task", bind=URL)
    task = guarded(get_task, task_name, root, task_version(task_name, root))
    if task is None:
        return None
    levels_all = sorted({p.difficulty for p in task.problems if p.difficulty is not None})
    c1, c2, c3, c4 = st.columns([1, 2, 2, 1])
    n_problems = c1.number_input("Problems", min_value=1, max_value=len(task.problems),
                                 value=min(50, len(task.problems)), step=10, key="problems", bind=URL)
    levels = []
    if levels_all:
        levels = c2.pills("Difficulty levels", levels_all, selection_mode="multi", default=levels_all,
                          key="levels", bind=URL, help="None selected means all levels") or []
    budget = c3.select_slider("Sample budget (samples per problem)", BUDGETS, value=16, key="budget", bind=URL)
    temperature = c4.slider("Temperature", 0.0, 1.5, 0.8, 0.1, key="temp", bind=URL)
    return {"models": list(models), "sources": tuple(lms["source"][m] for m in models), "task_name": task_name,
            "task": task, "task_version": task_version(task_name, root), "n_problems": int(n_problems),
            "levels": tuple(levels), "budget": int(budget), "temperature": float(temperature)}


def curves_for(ctx: dict, sel: dict, verifiers, price_per_gpu_hour: float = 2.0, price_per_mtok: float | None = None,
               watts: float = 300.0, by_level: bool = False, models=None) -> pd.DataFrame | None:
    """``cached_curves`` for a ``cached_selection`` (optionally a subset of its models); None on error."""
    models = list(models if models is not None else sel["models"])
    sources = dict(zip(sel["models"], sel["sources"]))
    return guarded(cached_curves, ctx["cache_path"], tuple(models), tuple(sources[m] for m in models),
                   sel["task_name"], ctx["root"], sel["task_version"], sel["n_problems"], sel["levels"],
                   sel["budget"], sel["temperature"], tuple(verifiers), float(price_per_gpu_hour),
                   None if price_per_mtok is None else float(price_per_mtok), float(watts), bool(by_level),
                   cache_version(ctx["cache_path"]))


def explore_link_params(sel: dict) -> dict:
    """Query parameters opening Explore on the same selection (``cached_selection`` keys)."""
    out = {"models": list(sel["models"]), "task": sel["task_name"], "problems": str(sel["n_problems"]),
           "budget": str(sel["budget"]), "temp": str(sel["temperature"])}
    if sel.get("levels"):
        out["levels"] = [str(v) for v in sel["levels"]]
    return {k: v for k, v in out.items() if v}


def nothing_cached(what: str = "these settings", explore_params: dict | None = None) -> None:
    """The empty state of the read-only pages: say so and link to Explore (optionally with the selection)."""
    st.info(f"Nothing is cached for {what} yet: run sweeps on **Explore** first "
            "(this page only reads the cache; it never samples).")
    st.page_link("pages/explore.py", label="Open Explore with these settings" if explore_params else "Go to Explore",
                 icon=":material/explore:", query_params=explore_params or None)
