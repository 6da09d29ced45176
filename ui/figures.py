"""Figures as pure functions: a DataFrame of curves in, a plotly Figure out.

Curves come from ``engine.analysis.curves``: one row per (model, k) with
``accuracy``, its 95% interval ``lo``/``hi`` and costs (``flops``,
``latency_s``, ``dollars``, ``energy_wh``). Colours are fixed per model so
side-by-side charts can share one legend.
"""
from __future__ import annotations

import html
import math

import pandas as pd
import plotly.graph_objects as go

PALETTE = ["#2E6BE6", "#E8702A", "#2CA58D", "#C4417A", "#7A5BD1", "#8C8C3A", "#3A8CB8", "#B8543A"]

# (column, axis title, axis scale) of the three Explore charts
EXPLORE_AXES = [
    ("k", "samples per problem (k)", "log2"),
    ("flops", "inference FLOPs per problem", "log"),
    ("latency_s", "latency per problem, p50 (s)", "linear"),
]


def color_map(models) -> dict[str, str]:
    """Stable colours in the given order (ladder order: smallest model first)."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(dict.fromkeys(models))}


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def accuracy_figure(df: pd.DataFrame, x: str, x_title: str, scale: str = "linear",
                    colors: dict[str, str] | None = None, height: int = 340) -> go.Figure:
    """Accuracy against ``x`` per model: a line with markers over its shaded interval."""
    colors = colors or color_map(df["model"].unique() if len(df) else [])
    fig = go.Figure()
    for model, g in df.groupby("model", sort=False):
        g = g.sort_values(x)
        c = colors.get(model, PALETTE[0])
        if {"lo", "hi"} <= set(g.columns) and g[["lo", "hi"]].notna().any().all():
            fig.add_trace(go.Scatter(x=g[x], y=g["hi"], mode="lines", line=dict(width=0), hoverinfo="skip",
                                     showlegend=False, legendgroup=model, name=f"{model} hi"))
            fig.add_trace(go.Scatter(x=g[x], y=g["lo"], mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor=_rgba(c, 0.15), hoverinfo="skip", showlegend=False,
                                     legendgroup=model, name=f"{model} lo"))
        fig.add_trace(go.Scatter(
            x=g[x], y=g["accuracy"], mode="lines+markers", name=model, legendgroup=model, showlegend=False,
            line=dict(color=c, width=2), marker=dict(size=6),
            customdata=g[["k"]].to_numpy() if "k" in g else None,
            hovertemplate=f"<b>{html.escape(str(model))}</b><br>{x_title}: %{{x:.3g}}<br>"
                          "accuracy: %{y:.1%}" + ("<br>k=%{customdata[0]}" if "k" in g else "") + "<extra></extra>"))
    xaxis = dict(title=x_title)
    if scale in ("log", "log2"):
        xaxis["type"] = "log"
    if scale == "log2" and len(df):
        top = int(math.ceil(math.log2(max(float(df[x].max()), 1))))
        ticks = [2 ** i for i in range(top + 1)]
        xaxis.update(tickvals=ticks, ticktext=[str(t) for t in ticks])
    fig.update_layout(xaxis=xaxis, yaxis=dict(title="accuracy", tickformat=".0%", rangemode="tozero"),
                      height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      hovermode="closest", template="plotly_white")
    return fig


def explore_figures(df: pd.DataFrame, colors: dict[str, str] | None = None) -> list[go.Figure]:
    """The Explore page's three charts: accuracy vs samples, vs FLOPs, vs latency."""
    colors = colors or color_map(df["model"].unique())
    return [accuracy_figure(df, col, title, scale, colors) for col, title, scale in EXPLORE_AXES]


def legend_html(colors: dict[str, str]) -> str:
    """One legend for charts drawn side by side (each chart hides its own)."""
    chips = "".join(
        f'<span style="display:inline-flex;align-items:center;margin-right:1.2em">'
        f'<span style="width:14px;height:4px;background:{c};display:inline-block;margin-right:6px"></span>'
        f"{html.escape(str(m))}</span>" for m, c in colors.items())
    return f'<div class="ttc-legend" style="font-size:0.9rem">{chips}</div>'


def cost_summary(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per model, the row at the largest k not above ``k``: accuracy and what it costs."""
    cols = ["model", "k", "accuracy", "lo", "hi", "flops", "latency_s", "dollars", "energy_wh"]
    sub = df[df["k"] <= k]
    if sub.empty:
        return pd.DataFrame(columns=cols)
    rows = sub.sort_values("k").groupby("model", sort=False).tail(1)
    order = list(dict.fromkeys(df["model"]))
    rows = rows.assign(_o=rows["model"].map(order.index)).sort_values("_o")
    return rows[[c for c in cols if c in rows.columns]].reset_index(drop=True)
