"""Cached engine calls and figures of the Compute allocation page (kept out of the page: widgets only there)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import registry
from engine.analysis import allocation, ensembles, fits, stopping
from engine.experiment import Experiment
from ui import common, figures

DASH = {"uniform majority": "dot", "uniform best single option": "dash"}


def _blocks(exp: Experiment, cache_path: str, cache_version: int) -> list:
    """The experiment's per-problem curves, shared with every other page (complete pools only)."""
    return common.cached_blocks(exp, False, registry.task_version(exp.task, exp.datasets), cache_path, cache_version)


def get_blocks(ctx: dict, exp: Experiment) -> list:
    return common.guarded(_blocks, exp, ctx["cache_path"], common.cache_version(ctx["cache_path"])) or []


@st.cache_data(max_entries=16, show_spinner="Allocating compute by difficulty…")
def allocate(exp: Experiment, cache_path: str, cache_version: int, how: str, bins: int, reference: str | None):
    return allocation.allocate(_blocks(exp, cache_path, cache_version), how=how, bins=bins, reference=reference)


@st.cache_data(max_entries=16, show_spinner="Simulating adaptive stopping…")
def stop(exp: Experiment, cache_path: str, cache_version: int, strategy: str, rule: str, thresholds: tuple):
    return pd.concat([stopping.simulate(b, rule, thresholds) for b in _blocks(exp, cache_path, cache_version)
                      if b.strategy == strategy], ignore_index=True)


@st.cache_data(max_entries=16, show_spinner="Pooling samples of two models…")
def ensemble(exp: Experiment, cache_path: str, cache_version: int, method: str, pair: tuple):
    return ensembles.ensembles(_blocks(exp, cache_path, cache_version), pairs=[pair], method=method)


@st.cache_data(max_entries=16, show_spinner="Fitting scaling laws…")
def fit(exp: Experiment, cache_path: str, cache_version: int, fit_samples: int, target: int):
    return fits.fits(_blocks(exp, cache_path, cache_version), fit_samples=fit_samples, target=target)


def allocation_figure(curves: pd.DataFrame, one_sample: dict, height: int = 420) -> go.Figure:
    fig = go.Figure()
    for name, d in curves.groupby("policy", sort=False):
        d = d.sort_values("flops")
        main = name == "allocated by difficulty"
        if main:
            fig.add_trace(go.Scatter(x=np.r_[d.flops, d.flops[::-1]], y=np.r_[d.accuracy + 1.96 * d.se,
                                     (d.accuracy - 1.96 * d.se)[::-1]], fill="toself", line=dict(width=0),
                                     fillcolor="rgba(31,119,180,0.15)", hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=d.flops, y=d.accuracy, name=name, mode="lines+markers" if main else "lines",
                                 line=dict(width=3 if main else 1.5, dash="solid" if main else DASH.get(name, "dashdot")),
                                 marker=dict(size=5), hovertemplate="%{x:.3g} FLOPs: %{y:.1%}<extra>" + name +
                                 "</extra>"))
    # annotations on a log axis take log10 coordinates (shapes take data values)
    fig.add_vline(x=one_sample["flops"], line=dict(color="grey", dash="dot"))
    fig.add_annotation(x=np.log10(one_sample["flops"]), y=1, yref="paper", text=f"one {one_sample['model']} sample",
                       showarrow=False, xanchor="left", yanchor="top", font=dict(color="grey"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.2),
                      xaxis=dict(title="mean FLOPs per problem (incl. the samples that judge difficulty)",
                                 **figures._log_axis(curves.flops)),
                      yaxis=dict(title="accuracy (cross-validated)", tickformat=".0%"))
    return fig


def stopping_figure(adaptive: pd.DataFrame, fixed: pd.DataFrame, colors: dict, height: int = 380,
                    chosen: float | None = None) -> go.Figure:
    """Adaptive rule (one point per threshold) against fixed-k curves, accuracy vs samples used; the points of
    the ``chosen`` threshold ringed (the summary above the chart is about them)."""
    fig = go.Figure()
    for model, d in fixed.groupby("model", sort=False):
        fig.add_trace(go.Scatter(x=d.k, y=d.accuracy, mode="lines", name=f"{model}: fixed k",
                                 line=dict(color=colors.get(model), dash="dot")))
    for model, d in adaptive.groupby("model", sort=False):
        d = d.sort_values("mean_samples")
        # between two thresholds lies what mixing them reaches: straight in samples, so a curve on this log axis
        # (a straight segment there would promise more than any mix of the two rules gives)
        t = np.linspace(0, 1, 24)[:, None]
        xs, ys = d.mean_samples.to_numpy(), d.accuracy.to_numpy()
        lx = np.r_[(xs[:-1] + t * np.diff(xs)).T.ravel(), xs[-1:]] if len(xs) > 1 else xs
        ly = np.r_[(ys[:-1] + t * np.diff(ys)).T.ravel(), ys[-1:]] if len(ys) > 1 else ys
        # thin and faint: it is no measurement, and drawn as strong as the points it read as "adaptive loses"
        # where it spans a jump (one sample to twenty), below the fixed-k curve as any mix of two rules is
        fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=dict(color=colors.get(model), width=1.2),
                                 opacity=0.45, hoverinfo="skip", legendgroup=str(model), showlegend=False))
        fig.add_trace(go.Scatter(x=d.mean_samples, y=d.accuracy, mode="markers", name=f"{model}: adaptive",
                                 marker=dict(color=colors.get(model), size=9), customdata=d.threshold,
                                 legendgroup=str(model),
                                 hovertemplate="threshold %{customdata}: %{x:.1f} samples, %{y:.1%}<extra></extra>"))
    at = adaptive[np.isclose(adaptive.threshold, chosen)] if chosen is not None else adaptive.iloc[:0]
    if len(at):
        fig.add_trace(go.Scatter(x=at.mean_samples, y=at.accuracy, mode="markers", name=f"threshold {chosen:g}",
                                 marker=dict(size=17, color="rgba(0,0,0,0)", line=dict(color="#222", width=2)),
                                 hoverinfo="skip"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.25),
                      xaxis=dict(title="samples per problem (mean)", type="log", tickvals=[1, 2, 4, 8, 16, 32, 64, 128],
                                 range=[-0.05, np.log10(max(adaptive.max_samples.max(), 2)) + 0.05]),
                      yaxis=dict(title="accuracy", tickformat=".0%"))
    return fig


def ensemble_figure(df: pd.DataFrame, height: int = 360) -> go.Figure:
    """Gain over the best single-model option at equal FLOPs, per split; cells beyond noise marked."""
    piv = df.pivot_table(index="k_b", columns="k_a", values="gain")
    clear = df.pivot_table(index="k_b", columns="k_a", values="clear", aggfunc="first").reindex_like(piv)
    # each cell's gain in points, as the Size vs compute heatmap writes its cells (+ 0.0: no "-0.0"); ✓: beyond noise
    marks = clear.fillna(False).to_numpy(bool)
    text = [[(f"{round(g * 100, 1) + 0.0:+.1f}" + (" ✓" if m else "")) if g == g else "" for g, m in zip(gs, ms)]
            for gs, ms in zip(piv.to_numpy(), marks)]
    lim = float(np.nanmax(np.abs(piv.to_numpy()))) if piv.size else 0.01
    # in points, as the cells (a difference of two accuracies: "+1%" would read as a relative change)
    fig = go.Figure(go.Heatmap(z=100 * piv.to_numpy(), x=[str(c) for c in piv.columns], y=[str(i) for i in piv.index],
                               text=text, texttemplate="%{text}", zmid=0, zmin=-100 * lim, zmax=100 * lim,
                               colorscale="RdBu", colorbar=dict(title="gain (points)", tickformat="+.0f"),
                               hovertemplate="k_a=%{x}, k_b=%{y}: %{z:+.1f} points<extra></extra>"))
    a, b = df.model_a.iloc[0], df.model_b.iloc[0]
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(title=f"samples of {a}", type="category"),
                      yaxis=dict(title=f"samples of {b}", type="category"))
    return fig


def residual_figure(curve: pd.DataFrame, colors: dict, height: int = 260) -> go.Figure:
    """Measured minus fitted coverage at each measured k: where each law bends away from the data."""
    fig = go.Figure()
    m = curve[curve.form == "measured"]
    for model, d in m.groupby("model", sort=False):
        for form, dash in (("beta", "solid"), ("power law", "dash")):
            fig.add_trace(go.Scatter(x=d.k, y=100 * d[f"residual {form}"], mode="lines", name=f"{model} {form}",
                                     line=dict(color=colors.get(model), dash=dash, width=1.5),
                                     hovertemplate="k=%{x}: %{y:+.1f} points<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="grey", width=1))
    ks = sorted(m.k.unique())
    ticks = [k for k in ks if int(k) & (int(k) - 1) == 0] or ks  # powers of two: a log axis's own 2..9 labels crowded
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.3),
                      xaxis=dict(title="samples per problem (k)", type="log", tickvals=ticks,
                                 ticktext=[str(int(k)) for k in ticks]),
                      yaxis=dict(title="measured − fitted (points)", tickformat="+.1f"))
    return fig


def fit_figure(curve: pd.DataFrame, colors: dict, height: int = 420) -> go.Figure:
    fig = go.Figure()
    for model, d in curve.groupby("model", sort=False):
        color = colors.get(model)
        m = d[d.form == "measured"]
        fig.add_trace(go.Scatter(x=m.k, y=m.coverage, mode="markers", name=f"{model} measured",
                                 marker=dict(color=color, size=5)))
        for form, dash in (("beta", "solid"), ("power law", "dash")):
            f = d[d.form == form]
            fig.add_trace(go.Scatter(x=np.r_[f.k, f.k[::-1]], y=np.r_[f.hi, f.lo[::-1]], fill="toself",
                                     fillcolor=figures._rgba(color, 0.12) if color else None, line=dict(width=0),
                                     hoverinfo="skip", showlegend=False))
            fig.add_trace(go.Scatter(x=f.k, y=f.coverage, mode="lines", name=f"{model} {form}",
                                     line=dict(color=color, dash=dash, width=1.5)))
    kmax = int(curve[curve.form == "measured"].k.max())
    fig.add_vrect(x0=kmax, x1=curve.k.max(), fillcolor="grey", opacity=0.08, line_width=0)
    fig.add_annotation(x=np.log10(kmax), y=1, yref="paper", text="extrapolated →", showarrow=False,
                       xanchor="left", yanchor="top", font=dict(color="grey"))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.2),
                      xaxis=dict(title="samples per problem (k)", type="log", dtick=1),
                      yaxis=dict(title="coverage (pass@k)", tickformat=".0%"))
    return fig
