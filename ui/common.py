"""Thin glue every page shares: cached engine objects, the sidebar, error display, downloads.

Page state lives in the URL: widgets are created with ``bind="query-params"``
and a ``key`` that is the query-parameter name (Streamlit keeps the two in
sync and drops parameters that equal their default).
"""
from __future__ import annotations

import io
import os
import re
import runpy
from pathlib import Path

import pandas as pd
import streamlit as st

from engine import analysis, compute, hardware, planning, registry, scorers, shipped, strategies
from engine.analysis.curves import blocks, from_blocks
from engine.compute import CostModel
from engine.cache import DEFAULT_PATH, CacheError, SampleCache, csv_safe, move_aside
from engine.errors import EngineError
from engine.experiment import Experiment
from engine.models import SamplingParams

URL = "query-params"  # pass as bind=URL


# ---- cached engine objects (keyed by plain values) ------------------------------
@st.cache_resource(show_spinner=False)
def get_cache(path: str) -> SampleCache:
    return SampleCache(path)


@st.cache_data(ttl=5, show_spinner=False)
def models_table(root: str) -> pd.DataFrame:
    return pd.DataFrame(registry.all_models(root), columns=registry.MODEL_COLUMNS)


@st.cache_resource(show_spinner=False)
def available_devices() -> list[str]:
    from engine.models.loader import nvidia_visible
    if not nvidia_visible():  # the first page opens without importing torch
        return ["cpu"]
    import torch
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def scorer_options() -> list[str]:
    """Shipped scorers whose files are here, then verifier directories added on Models & data."""
    return scorers.available(guarded(registry.added_verifiers, context()["root"]) or [])


def strategy_options() -> list[str]:
    """Every selection strategy with every available scorer (``engine.strategies.available``)."""
    return strategies.available(scorer_options())


def strategy_picker(container=st, default: str = "majority", key: str = "strategy") -> str:
    """A strategy (segmented control, URL key ``key``) and, for one that reads scores, its scorer (URL key
    ``key``_scorer); returns the spec, e.g. ``best_of_n:orm``."""
    kinds = {c.short: c for c in strategies.kinds()}
    default_kind = strategies.get(default).short
    c1, c2 = container.columns([3, 2])
    short = c1.segmented_control("Selection strategy", list(kinds), default=default_kind, key=key, bind=URL,
                                 help="; ".join(c.help for c in kinds.values())) or default_kind
    kind = kinds[short]
    if not kind.uses_scorer:
        return kind.name
    names = scorer_options()
    if not names:
        c2.warning("No scorer is available: train the shipped verifiers (`python -m engine.train verifiers`).")
        return default
    scorer = c2.selectbox("Scorer", names, key=f"{key}_scorer", bind=URL, format_func=scorers.short_label,
                          help="What gives each sample its score: a learned verifier (ORM; PRM with a way to "
                               "combine its step scores) or the model's own likelihood")
    return f"{kind.name}:{scorer}"


def missing_scorers_note() -> str | None:
    """A line saying which shipped scorers are missing (None when all are here)."""
    missing = scorers.unavailable()
    if not missing:
        return None
    return (f"Scorer{'s' if len(missing) > 1 else ''} {', '.join(missing)} not trained yet "
            "(`python -m engine.train verifiers`); strategies that use them appear once shipped.")


@st.cache_resource(show_spinner="Computing curves…", max_entries=4)
def cached_blocks(exp: Experiment, include_partial: bool, task_version: float, cache_path: str,
                  cache_version: int) -> list:
    """``analysis.curves.blocks`` over what is cached (never samples; scorers score samples they have not seen):
    the per-problem curves every page's curves, allocation, stopping, ensembles and fits are computed from.
    Shared between sessions and never mutated. ``task_version`` and ``cache_version`` are in the key only so
    that a new dataset mapping or new samples invalidate it."""
    return list(blocks(get_cache(cache_path), exp, include_partial=include_partial))


@st.cache_data(show_spinner="Computing curves…", max_entries=32)
def cached_curves(exp: Experiment, by_level: bool, include_partial: bool, task_version: float, cache_path: str,
                  cache_version: int) -> pd.DataFrame:
    """``analysis.curves`` from ``cached_blocks`` (a page's overall and per-level curves share one pass)."""
    return from_blocks(cached_blocks(exp, include_partial, task_version, cache_path, cache_version), by_level)


# ---- errors ---------------------------------------------------------------------
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#!|~:$])")


def plain(text) -> str:
    """``text`` escaped for a markdown element (st.error, st.info, ...): user data in it (an id, a column
    name, a line of a file) shows as written and never becomes a link, an image or a style."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def guarded(fn, *args, **kwargs):
    """Call ``fn``; on ``EngineError`` show it (escaped: messages quote user data) and return None."""
    try:
        return fn(*args, **kwargs)
    except EngineError as e:
        st.error(plain(e))
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
SERVER_MODE = os.environ.get("TTC_SERVER", "0") == "1"
_max = os.environ.get("TTC_MAX_SAMPLES", "").strip()
SERVER_MAX_SAMPLES = int(_max) if _max.isdigit() else 20_000  # hosted: new samples one session may generate


def within_budget(cache: SampleCache, exp: Experiment) -> bool:
    """Hosted mode: refuse, before anything is sampled, a Run that would take this session past
    ``SERVER_MAX_SAMPLES`` new samples (cached ones are free); otherwise count them against it."""
    if not SERVER_MODE:
        return True
    cov = guarded(planning.coverage, cache, exp)
    if cov is None:
        return False
    need = sum(c["selected"] * exp.params.n - c["samples"] for c in cov)
    used = st.session_state.get("_samples_used", 0)
    if used + need > SERVER_MAX_SAMPLES:
        st.error(f"Hosted mode: this run would generate {need:,} new samples and this session has "
                 f"{max(SERVER_MAX_SAMPLES - used, 0):,} of its {SERVER_MAX_SAMPLES:,} left. Choose fewer models, "
                 "problems or samples per problem (what is cached costs nothing).")
        return False
    st.session_state["_samples_used"] = used + need
    return True


def sidebar() -> dict:
    """The cache file and device every page uses; returns plain values.

    The cache path is never read from the URL (a shared link must not point the server at a path). In
    server mode (``TTC_SERVER=1``, for a hosted demo) it is fixed by the host (``TTC_CACHE``) and not shown
    as an input at all.
    """
    with st.sidebar:
        if SERVER_MODE:
            path = str(DEFAULT_PATH)
            st.caption("Hosted mode: the cache, models and datasets are fixed by the host.")
        else:
            path = st.text_input("Cache file", value=str(DEFAULT_PATH), key="cache",
                                 help="DuckDB file holding every sample; defaults to $TTC_CACHE or "
                                      "cache/samples.duckdb")
        devices = available_devices()
        device = st.selectbox("Device", devices, key="device", bind=URL,
                              help="Where sampling runs (cuda appears when a GPU is visible)")
        st.caption(f"Sampling on **{device}**" + ("" if "cuda" in devices else " (no GPU visible)"))
    return {"cache_path": path.strip() or str(DEFAULT_PATH), "device": device,
            "root": str(registry.root_of(path.strip() or DEFAULT_PATH))}


@st.cache_resource(show_spinner="Loading the shipped sweeps into the cache (first start only)…")
def _import_shipped(cache_path: str) -> dict:
    return shipped.import_into(get_cache(cache_path))


def ensure_shipped(ctx: dict) -> None:
    """Import the shipped ladder sweeps into this cache once per server and cache file (``TTC_SHIPPED=0``
    turns it off), and say so the first time."""
    if os.environ.get("TTC_SHIPPED", "1") == "0":
        return
    try:
        done = _import_shipped(ctx["cache_path"])
    except EngineError:
        return  # a cache that cannot be opened: the page says why (and offers the way out) once
    if not done:
        return
    if done["samples"] and not st.session_state.get("_shipped_note"):
        st.session_state["_shipped_note"] = True
        st.toast(f"Loaded the shipped sweeps: {done['samples']:,} samples of the model ladder on the arith test set "
                 f"(500 problems × 64 at temperature 0.8) and {done['scores']:,} verifier scores.",
                 icon=":material/download_done:")
    if done["stale"] and not st.session_state.get("_shipped_stale"):
        st.session_state["_shipped_stale"] = True
        st.toast(f"The shipped sweeps are out of date for {', '.join(done['stale'])} (model files changed): "
                 "not loaded. Run `python -m engine.train evaluate` and `python -m engine.train ship`.",
                 icon=":material/warning:")


def set_context(ctx: dict) -> None:
    st.session_state["_ctx"] = ctx


def context() -> dict:
    """Sidebar values set by ``app.py`` (defaults when a page runs on its own)."""
    ctx = st.session_state.get("_ctx")
    if ctx is None:
        ctx = {"cache_path": str(DEFAULT_PATH), "device": "cpu", "root": str(registry.root_of(DEFAULT_PATH))}
    return ctx


def current_cache(ctx: dict) -> SampleCache | None:
    """The sidebar's cache; None after showing why not. A damaged file gets a button that moves it aside
    (never deletes it) so the app can start a fresh cache."""
    try:
        return get_cache(ctx["cache_path"])
    except CacheError as e:
        st.error(str(e))
        if st.button("Move the damaged file aside and start a fresh cache", key="move_aside",
                     icon=":material/drive_file_move:"):
            moved = guarded(move_aside, e.path) if e.path.exists() else None
            if moved:
                st.success(f"Moved to {moved}. Reload the page to start with a fresh cache.")
        return None
    except EngineError as e:
        st.error(str(e))
        return None


def cache_version(path: str) -> int:
    """Changes whenever the cache file is written: part of cached-result keys."""
    out = 0
    for p in (Path(path), Path(str(path) + ".wal")):
        try:
            out = max(out, p.stat().st_mtime_ns)
        except OSError:
            pass
    return out


# ---- downloads ------------------------------------------------------------------
def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def download_buttons(df, stem: str, key: str) -> None:
    """CSV and Parquet buttons; ``df`` may be a callable, run only when a button is clicked."""
    get = df if callable(df) else (lambda: df)
    c1, c2 = st.columns(2)
    c1.download_button("Download CSV", lambda: csv_safe(get()).to_csv(index=False).encode(), f"{stem}.csv", "text/csv",
                       key=f"{key}_csv", width="stretch", icon=":material/download:")
    c2.download_button("Download Parquet", lambda: to_parquet_bytes(get()), f"{stem}.parquet",
                       "application/vnd.apache.parquet", key=f"{key}_pq", width="stretch",
                       icon=":material/download:")


def table(df, shares=(), dashes=None):
    """``df`` ready for st.dataframe: the ``shares`` columns as percentages to one decimal place (column_config's
    "percent" shows up to two and drops zeros, 35% beside 49.71%), and the ``dashes`` columns ({column: format})
    as text with a dash where a value is missing (Streamlit writes "None" in an empty number cell, which reads as
    a result). A share column with missing values is text too. Returns a Styler, or the frame itself."""
    df = pd.DataFrame(df)
    dashes = dict(dashes or {})
    dashes.update({c: "{:.1%}" for c in shares if c in df.columns and df[c].isna().any()})
    for c, fmt in dashes.items():
        if c in df.columns:
            df[c] = [("—" if pd.isna(v) else fmt.format(v)) for v in df[c]]
    shares = [c for c in shares if c in df.columns and c not in dashes]
    return df.style.format("{:.1%}", subset=shares) if shares else df


def dataframe(df, shares=(), dashes=None, column_config=None, **kwargs):
    """st.dataframe of ``table(df, shares, dashes)``: a column made text there (a dash where a value is missing)
    keeps its label and help, and is right-aligned like the numbers it holds."""
    shown = table(df, shares, dashes)
    return st.dataframe(shown, column_config=text_configs(getattr(shown, "data", shown), shares, dashes,
                                                          column_config), **kwargs)


def text_configs(data: pd.DataFrame, shares=(), dashes=None, column_config=None) -> dict:
    """``column_config`` with every column ``table`` made text configured as right-aligned text (its label and
    help kept)."""
    config = dict(column_config or {})
    for c in data.columns:
        if c in (dashes or {}) or (c in shares and data[c].map(lambda v: isinstance(v, str)).all()):
            cfg = config.get(c) or st.column_config.TextColumn(c)
            config[c] = {**cfg, "type_config": {"type": "text"}, "alignment": cfg.get("alignment") or "right"}
    return config


def human_bytes(n) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024



# ---- which cached results a page reads ----------------------------------------------
BUDGETS = [2 ** i for i in range(9)]  # 1..256 samples per problem


def language_models(root: str) -> dict | None:
    """Selectable language models: ``names`` and the shipped ``ladder``. None, after saying why, when there
    are none."""
    table = guarded(models_table, root)
    if table is None:
        return None
    lms = table[table["kind"] == "lm"]
    if lms.empty:
        st.info("No models yet: shipped models appear under `data/models/` as training finishes, "
                "or add one on the **Models & data** page.")
        return None
    names = lms["name"].tolist()
    return {"names": names, "ladder": lms[lms["origin"] == "shipped"]["name"].tolist() or names[:1]}


def page_header(title: str, caption: str) -> tuple[dict, SampleCache, dict]:
    """Title and caption of a page, then its context, cache and selectable models (stops, message shown,
    when either is missing)."""
    ctx = context()
    st.title(title)
    st.caption(caption)
    return (ctx, *cache_and_models(ctx))


def cache_and_models(ctx: dict) -> tuple[SampleCache, dict]:
    """The page's cache and selectable language models; stops the page (message shown) if either is missing."""
    cache = current_cache(ctx)
    lms = language_models(ctx["root"]) if cache is not None else None
    if lms is None:
        st.stop()
    return cache, lms


def task_picker(root: str, container=st):
    """The task selectbox (URL key ``task``); returns (name, Task), or (name, None) after showing an error."""
    name = container.selectbox("Task", registry.task_names(root), key="task", bind=URL)
    return name, guarded(registry.load_task, name, root)


def default_size(task_name: str, problems: int = 50, budget: int = 16) -> tuple[int, int]:
    """The problems and sample budget a page opens on: everything the shipped sweeps hold for their task (a
    slice of them gave other answers: another model recommended, another winner), where the app loads them;
    else ``problems`` x ``budget``, which a first Run samples in seconds (Run asks before a long sweep)."""
    if os.environ.get("TTC_SHIPPED", "1") != "0":
        held = shipped.size(task_name)
        if held:
            return held
    return problems, budget


def sampling_widgets(budget_col, temp_col, budget: int = 16) -> SamplingParams:
    """Sample budget, temperature, and every other ``SamplingParams`` field the cache keys on (under
    "Advanced sampling"), so that a CLI sweep at any settings can be read back. URL keys: budget, temp,
    top_p, max_tokens, seed."""
    budget = budget_col.select_slider("Sample budget (samples per problem)", BUDGETS, value=budget, key="budget",
                                      bind=URL)
    temperature = temp_col.slider("Temperature", 0.0, 1.5, 0.8, 0.1, key="temp", bind=URL)
    with st.expander("Advanced sampling"):
        a, b, c = st.columns(3)
        top_p = a.number_input("top-p", 0.01, 1.0, 1.0, 0.05, key="top_p", bind=URL,
                               help="Nucleus sampling: keep the smallest set of tokens with this much probability")
        max_new = b.number_input("Max new tokens", 1, 4096, 128, 16, key="max_tokens", bind=URL)
        seed = c.number_input("Seed", 0, 2 ** 31 - 1, 0, 1, key="seed", bind=URL,
                              help="Sample i of a problem is the same text for the same seed, whatever the budget")
        st.toggle("Include partly sampled problems", value=False, key="partial", bind=URL,
                  help="Off: only problems with all the samples of the budget count, so every model is measured "
                       "on the same pools. On: a problem with m cached samples also counts, at k ≤ m.")
    return SamplingParams(n=int(budget), temperature=float(temperature), top_p=float(top_p),
                          max_new_tokens=int(max_new), seed=int(seed))


def experiment_widgets(root: str, lms: dict, default_models=None,
                       help: str = "Only what is already cached is shown: run sweeps on Explore", problems: int = 50,
                       budget: int = 16) -> Experiment | None:
    """Models, task, problems, levels and sampling: one set of widgets and URL keys for every page, so a page
    reads back what a sweep on Explore (or the CLI) cached. None (message shown) when the selection is invalid.
    Pages set ``strategies`` and ``cost`` with ``Experiment.replace``."""
    c1, c2 = st.columns([3, 1])
    models = c1.multiselect("Model scales", lms["names"], default=default_models or lms["ladder"], key="models",
                            bind=URL, help=help)
    task_name, task = task_picker(root, c2)
    if task is None:
        return None
    levels_all = sorted({p.difficulty for p in task.problems if p.difficulty is not None})
    problems, budget = default_size(task_name, problems, budget)
    c1, c2, c3, c4 = st.columns([1, 2, 2, 1])
    n_problems = c1.number_input("Problems", min_value=1, max_value=len(task.problems),
                                 value=min(problems, len(task.problems)), step=10, key="problems", bind=URL)
    levels = []
    if levels_all:
        levels = c2.pills("Difficulty levels", levels_all, selection_mode="multi", default=levels_all,
                          key="levels", bind=URL, help="None selected means all levels") or []
    params = sampling_widgets(c3, c4, budget)
    return guarded(Experiment.build, list(models), task_name, params, int(n_problems), tuple(levels),
                   datasets=root)


def include_partial() -> bool:
    """The "Include partly sampled problems" toggle of ``sampling_widgets``."""
    return bool(st.session_state.get("partial", False))


def _blocks_key(ctx: dict, exp: Experiment) -> tuple:
    """What ``cached_blocks`` and everything computed from it are keyed on, after the experiment."""
    return (include_partial(), registry.task_version(exp.task, ctx["root"]), ctx["cache_path"],
            cache_version(ctx["cache_path"]))


@st.cache_data(show_spinner=False, max_entries=32)
def cached_paired(exp: Experiment, include_partial: bool, task_version: float, cache_path: str,
                  cache_version: int) -> "analysis.Paired":
    """The per-problem accuracies behind ``cached_curves`` (``analysis.Paired``), for the verdict's paired test."""
    return analysis.Paired(cached_blocks(exp, include_partial, task_version, cache_path, cache_version))


def paired_for(ctx: dict, exp: Experiment) -> "analysis.Paired | None":
    """``cached_paired`` for an experiment; None (message shown) on error."""
    return guarded(cached_paired, exp, *_blocks_key(ctx, exp))


def curves_for(ctx: dict, exp: Experiment, by_level: bool = False) -> pd.DataFrame | None:
    """``cached_curves`` for an experiment; None (message shown) on error."""
    return guarded(cached_curves, exp, bool(by_level), *_blocks_key(ctx, exp))


def curves_or_stop(ctx: dict, exp: Experiment) -> pd.DataFrame:
    """``curves_for`` on a read-only page, after its data notes: stops the page, saying why, on an error or
    when nothing is cached."""
    cache = current_cache(ctx)
    if cache is not None:
        data_notes(cache, exp)
    df = curves_for(ctx, exp)
    if df is None:
        st.stop()
    if df.empty:
        nothing_cached("these models and settings", explore_link_params(exp))
        st.stop()
    return df


def cost_widgets(device: str = "cpu", per_token: bool = False) -> CostModel:
    """Where device time comes from (measured, or projected onto a hardware profile), its price and power,
    and the FLOPs convention. Empty price/power fields take the profile's figures. URL keys: hw, price,
    watts, prefix."""
    c1, c2, c3 = st.columns([2, 1, 1])
    hw = c1.selectbox("Hardware", hardware.names(), key="hw", bind=URL,
                      help="Measured: wall time recorded while sampling, on the machine that sampled (the shipped "
                           "sweeps: this project's 2-core CPU; your runs: yours; small models on a busy CPU are "
                           "overhead-bound, so it barely follows model size). A named accelerator: "
                           "a roofline projection from each model's size (a projection, labelled as such).")
    prof = hardware.get(hw)
    default_price = 2.0 if per_token else prof.price_per_hour if prof else compute.DEFAULT_PRICE_PER_GPU_HOUR
    default_watts = prof.watts if prof else (compute.DEFAULT_CPU_POWER_WATTS if device == "cpu"
                                             else compute.DEFAULT_GPU_POWER_WATTS)
    price = c2.number_input("Price ($ per million tokens)" if per_token else "Price ($ per device-hour)",
                            min_value=0.0, max_value=10000.0, value=None, step=0.1, key="price", bind=URL,
                            placeholder=f"{default_price:g}")
    watts = c3.number_input("Power (W)", min_value=0.0, max_value=5000.0, value=None, step=5.0, key="watts",
                            bind=URL, placeholder=f"{default_watts:g}")
    prefix = st.toggle("Count a problem's shared prompt once (prefix caching)", value=True, key="prefix", bind=URL,
                       help="Servers such as vLLM and SGLang prefill a prompt once and share it across its "
                            "samples; off counts the prompt once per sample (2 × params × (prompt + completion)).")
    if prof:
        st.caption(f"Projected onto {prof.name}: {prof.source}. Roofline time plus an assumed "
                   f"{prof.step_overhead_s * 1e3:g} ms of overhead per forward pass; a busy server fills decode "
                   "batches with other queries. Models as small as the shipped ladder are overhead-bound there: "
                   "projected time follows the tokens generated more than the parameters (FLOPs stay the "
                   "size-faithful axis).")
    if price is None or watts is None:  # empty fields read as disabled: say what they stand for
        unit = "per million tokens" if per_token else "per device-hour"
        used = [f"${default_price:g} {unit}"] if price is None else []
        used += [f"{default_watts:g} W"] if watts is None else []
        st.caption(f"Using {' and '.join(used)} ({'this hardware' if prof else 'the default'}'s figures); "
                   "type a number to change them.")
    price = float(price if price is not None else default_price)
    return CostModel(price_per_gpu_hour=0.0 if per_token else price, price_per_mtok=price if per_token else None,
                     power_watts=float(watts if watts is not None else default_watts), hardware=hw,
                     prefix_cache=bool(prefix))


def chart_config(name: str) -> dict:
    """Plotly's toolbar for a chart: its camera saves a sharp PNG named after the chart (it was a 300-pixel
    'plot-image.png' for every one)."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": re.sub(r"\W+", "_", name),
                                                           "scale": 3}}


def axis_titles(cost: CostModel) -> dict[str, str]:
    """Axis titles that say which FLOPs convention and which source of time a chart uses."""
    prof = hardware.get(cost.hardware)
    where = f", {prof.name.removeprefix('NVIDIA ').split()[0]} projection" if prof else " (measured when sampled)"
    # the price in the title: a chart on a slide keeps its assumption (measured dollars are CPU time at $/h)
    price = (f", ${cost.price_per_mtok:g}/M tokens" if cost.price_per_mtok is not None else
             f", ${cost.price_per_gpu_hour:g}/device-hour")
    return {"flops": "inference FLOPs per problem" + (" (prompt once)" if cost.prefix_cache else " (prompt per sample)"),
            "dollars": "dollars per problem" + price + (where if cost.price_per_mtok is None else ""),
            "latency_s": "latency per problem, p50 (s)" + where}


def cost_order_note(rows: pd.DataFrame, cost: CostModel) -> str | None:
    """Where measured dollars do not rise with FLOPs across ``rows`` (one per model), say why, naming a pair:
    a small model's time on a CPU is mostly per-step overhead, which a reader would take for its size."""
    if hardware.get(cost.hardware) is not None or len(rows) < 2:
        return None
    r = rows.sort_values("flops").reset_index(drop=True)
    for i in range(len(r) - 1):
        a, b = r.iloc[i], r.iloc[i + 1]
        if b["dollars"] < a["dollars"]:
            return (f"Measured when sampled, {b['model']} costs less than {a['model']} though it takes more FLOPs: "
                    "on this CPU a model this small spends its time on per-step overhead more than on arithmetic, "
                    "so measured dollars and latency do not follow size. A hardware projection (*Cost assumptions*) "
                    "makes them follow it; FLOPs always do.")
    return None


def verdict_box(df: pd.DataFrame, by_level: pd.DataFrame | None = None, x: str = "flops",
                x_label: str = "FLOPs per problem", paired: "analysis.Paired | None" = None) -> None:
    """The page's answer in words (``analysis.verdict``): a headline, a line per smaller model, levels where
    it differs, and the coverage finding; nothing when the curves cannot answer (fewer than two models).
    ``paired``: ``paired_for`` the curves' experiment, so that a gap is tested on per-problem differences."""
    v = analysis.verdict(df, by_level, x=x, x_label=x_label, paired=paired)
    if v["headline"] is None:
        if v["pending"]:
            st.info(v["pending"], icon=":material/hourglass_top:")
        elif v["why_none"]:
            st.info(v["why_none"])
        elif df["model"].nunique() < 2:
            st.caption("Pick at least two model sizes to see who wins at equal compute.")
        return
    with st.container(border=True, key="verdict"):
        st.markdown(f"**Verdict.** {v['headline']}")
        for line in v["lines"] + v["levels"]:
            st.markdown(f"- {line}")
        if v["coverage"]:
            st.caption(v["coverage"])
        used = list(dict.fromkeys(analysis.deployable(df)["strategy"]))
        if used:  # the verdict holds among these only: another strategy can change it
            st.caption("Compared among the strategies selected that need no answer key: "
                       + ", ".join(strategies.label(s) for s in used) + ".")
        st.caption(EXPLAIN["verdict"].format(compute="inference plus pretraining FLOPs per problem" if x == "total_flops"
                                             else "inference FLOPs per problem"))


def data_notes(cache: SampleCache, exp: Experiment, running: bool = False) -> None:
    """Say how much data stands behind the curves, and warn (naming the models) when it is less than selected.
    ``running``: a sweep is filling the cache now (on Explore), so say that instead of asking for one."""
    rows = guarded(planning.coverage, cache, exp)
    if not rows:
        return
    if not running and not any(r["samples"] for r in rows):
        return  # nothing at all: the page's empty state says so, once
    fill = ("sampling is under way: curves update as each model finishes." if running else
            "press **Run** on **Explore** to fill the rest.")
    short = [r for r in rows if r["complete"] < r["selected"]]
    for r in short:
        what = (f"**{r['model']}**: {r['complete']} of {r['selected']} selected problems have all "
                f"{exp.params.n} samples cached")
        if r["partial"]:
            what += (f", {r['partial']} only some ({'counted at the k they have' if include_partial() else 'left out'})")
        st.warning(f"{what}; {fill}" if r["complete"] else f"{what}: nothing to plot for it yet; {fill}",
                   icon=":material/data_alert:")
    if not short:
        every = {p.difficulty for p in exp.load_task().problems} <= set(exp.levels) or not exp.levels
        more = shipped.holds(exp) if every else None  # with some levels picked, fewer problems are there
        hint = "" if not more or (more[0] <= rows[0]["selected"] and more[1] <= exp.params.n) else (
            f" The shipped sweeps hold {more[0]} problems × {more[1]} samples for these models: raise Problems and "
            "the sample budget to use them.")
        st.caption(f"Every curve: {rows[0]['selected']} problems × {exp.params.n} samples per model, all cached.{hint}")
    if hardware.get(exp.cost.hardware) is None:
        for b in guarded(planning.busy_timings, cache, exp) or []:
            st.caption(f":material/speed: {b['model']}: {b['busy']} of {b['runs']} runs were timed on a busy machine "
                       f"(load {b['load']:.1f} on {b['cpus']} CPUs; a 512×512 matmul ran at {b['gflops']:.0f} "
                       "GFLOP/s), so its measured latency and dollars may be inflated. Pick a hardware profile "
                       "under *Cost assumptions* for costs that follow model size.")


# Short explanations shown in place (the app's own words; the papers behind them in brackets).
EXPLAIN = {
    "verdict": "Equal compute means equal {compute} (counted as the axis title says). "
               "A winner by \"points\" is clear when the 95% interval of the difference excludes zero (a bootstrap "
               "over problems of each problem's difference: both models answer the same problems) and it is at "
               "least a point. Only strategies that need no answer key decide the verdict "
               "([Snell et al. 2024](https://arxiv.org/abs/2408.03314); [Brown et al. 2024](https://arxiv.org/abs/2407.21787)).",
    "coverage": "Coverage (pass@k, the oracle) is the share of problems where at least one of k samples is right. "
                "It needs the answer key to find that sample, so it is a ceiling, not something you can ship; "
                "majority vote and verifiers are how a deployed system picks ([Brown et al. 2024, "
                "\"Large Language Monkeys\"](https://arxiv.org/abs/2407.21787)).",
    "weak_verifier": "A weak verifier can do worse with more samples: the more candidates it sees, the more "
                     "likely a wrong one scores highest. Best-of-N is only as good as the scorer's ranking "
                     "within one problem ([Brown et al. 2024](https://arxiv.org/abs/2407.21787), sec. 4; "
                     "[Snell et al. 2024](https://arxiv.org/abs/2408.03314)).",
    "bands": "Shaded bands are 95% bootstrap intervals: problems resampled with replacement 1,000 times. "
             "Overlapping bands do not make two curves alike: both answer the same problems, so their difference "
             "is tested problem by problem (the verdict does), which can tell apart curves whose bands overlap. "
             "Each point averages over the k-subsets of a problem's first n samples (n: the sample budget; exactly, "
             "or by seeded draws for the weighted vote), so another budget estimates the same quantity from another pool: a few tenths of a point "
             "apart.",
}


def explain(*keys: str) -> None:
    """The short explanations, as one caption."""
    st.caption(" ".join(EXPLAIN[k] for k in keys))


def explore_link_params(exp: Experiment) -> dict:
    """Query parameters opening Explore on the same selection (``experiment_widgets`` keys; defaults omitted)."""
    p = exp.params
    out = {"models": [m.name for m in exp.models], "task": exp.task, "problems": str(exp.problems),
           "budget": str(p.n), "temp": str(p.temperature)}
    if exp.levels:
        out["levels"] = [str(v) for v in exp.levels]
    extra = {"top_p": (p.top_p, 1.0), "max_tokens": (p.max_new_tokens, 128), "seed": (p.seed, 0)}
    out.update({k: str(v) for k, (v, default) in extra.items() if v != default})
    return {k: v for k, v in out.items() if v}


def nothing_cached(what: str = "these settings", explore_params: dict | None = None) -> None:
    """The empty state of the read-only pages: say so and link to Explore (optionally with the selection)."""
    st.info(f"Nothing is cached for {what} yet: run sweeps on **Explore** first "
            "(this page only reads the cache; it never samples).")
    st.page_link("pages/explore.py", label="Open Explore with these settings" if explore_params else "Go to Explore",
                 icon=":material/explore:", query_params=explore_params or None)
