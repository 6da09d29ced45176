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

from engine import strategies

PALETTE = ["#2E6BE6", "#E8702A", "#2CA58D", "#C4417A", "#7A5BD1", "#8C8C3A", "#3A8CB8", "#B8543A"]

# (column, axis title, axis scale) of the three Explore charts
EXPLORE_AXES = [
    ("k", "samples per problem (k)", "log2"),
    ("flops", "inference FLOPs per problem", "log"),
    ("latency_s", "latency per problem, p50 (s)", "log"),
]


def color_map(models) -> dict[str, str]:
    """Colours in the given order (ladder order: smallest model first). Pages pass every model they list, not
    only those selected, so a model keeps its colour whatever else is on the chart."""
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
    xaxis = dict(title=_narrow(x_title))
    if scale in ("log", "log2"):
        xaxis.update(_log_axis(df[x] if len(df) else [], seconds=x == "latency_s"))
    if scale == "log2" and len(df):
        top = int(math.ceil(math.log2(max(float(df[x].max()), 1))))
        ticks = [2 ** i for i in range(top + 1)]
        xaxis.update(tickvals=ticks, ticktext=[str(t) for t in ticks])
    fig.update_layout(xaxis=xaxis, yaxis=dict(title="accuracy", tickformat=".0%", rangemode="tozero"),
                      height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      hovermode="closest", template="plotly_white")
    return fig


def _narrow(title: str, width: int = 30) -> str:
    """An axis title that fits a chart a third of the page wide: a long one's last parenthesis goes on a line of
    its own (plotly cuts a title at the chart's edge rather than wrapping it)."""
    head, sep, tail = title.rpartition(" (")
    return f"{head}<br>({tail}" if sep and head and len(title) > width else title


def _log_axis(values, money: bool = False, seconds: bool = False) -> dict:
    """A log axis; one labelled tick per decade when the data spans two decades or more, so the minor ticks'
    "2 5" labels do not crowd into "60M70M". Counts read 10M, 1B (as the tables' "compact" numbers, not 1.0G);
    ``money`` reads $0.01 and ``seconds`` 0.01 (not the SI "10m", which next to "s" reads as minutes), with
    ticks at 2 and 5 over a narrower span. Why log for latency too: best-of-N's scoring makes its points several
    times slower, and on a linear axis everything else crowded into the left edge."""
    vals = [float(v) for v in values if v and v > 0 and math.isfinite(float(v))]
    wide = bool(vals) and math.log10(max(vals) / min(vals)) >= 2
    if money or seconds:
        return {"type": "log", "tickformat": "$~g" if money else "~g", "dtick": 1 if wide else "D2"}
    return {"type": "log", "dtick": 1, "exponentformat": "B"} if wide else {"type": "log"}


def explore_figures(df: pd.DataFrame, colors: dict[str, str] | None = None,
                    titles: dict[str, str] | None = None) -> list[go.Figure]:
    """The Explore page's three charts: accuracy vs samples, vs FLOPs, vs latency (``titles`` overrides
    axis titles by column, e.g. to name the FLOPs convention or a hardware projection)."""
    colors = colors or color_map(df["model"].unique())
    titles = titles or {}
    return [accuracy_figure(df, col, titles.get(col, title), scale, colors) for col, title, scale in EXPLORE_AXES]


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


# ---- Size vs compute -------------------------------------------------------------
# Markers for strategies in the order a chart lists them (the frontier charts colour by model, mark by strategy)
SYMBOLS = ["circle-open", "circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon",
           "pentagon", "triangle-down", "hourglass", "bowtie", "star-square"]
_GLYPHS = {"circle-open": "○", "circle": "●", "square": "■", "diamond": "◆", "triangle-up": "▲", "cross": "✚",
           "x": "✖", "star": "★", "hexagon": "⬢", "pentagon": "⬟", "triangle-down": "▼", "hourglass": "⧗",
           "bowtie": "⋈", "star-square": "▣"}


def strategy_help(specs) -> str:
    """One help text naming each strategy's rule (widget help)."""
    kinds = {strategies.get(s).name: strategies.get(s) for s in specs}
    return "; ".join(k.help for k in kinds.values())


def symbol_map(specs) -> dict[str, str]:
    return {s: SYMBOLS[i % len(SYMBOLS)] for i, s in enumerate(dict.fromkeys(specs))}


# (column, axis title, scale) of the three frontier charts; the FLOPs column is chosen by the page
FRONTIER_AXES = [
    ("flops", "FLOPs per problem", "log"),
    ("dollars", "dollars per problem", "log"),
    ("latency_s", "latency per problem, p50 (s)", "log"),
]


def strategy_legend_html(symbols: dict[str, str]) -> str:
    """Which marker is which strategy (``symbol_map``)."""
    chips = "".join(f'<span style="margin-right:1.2em">{_GLYPHS[sym]} '
                    f"{html.escape(strategies.short_label(s))}</span>" for s, sym in symbols.items())
    line = ('<span style="display:inline-block;width:18px;height:0;border-top:2px solid #333;'
            'vertical-align:middle;margin-right:6px"></span>best accuracy at each budget (Pareto frontier)')
    return f'<div class="ttc-legend" style="font-size:0.9rem">{chips}{line}</div>'


def _hover(x_title: str) -> str:
    return ("<b>%{customdata[0]}</b><br>%{customdata[1]}, k=%{customdata[2]}<br>"
            f"{x_title}: %{{x:.3g}}<br>accuracy: %{{y:.1%}}<extra></extra>")


def _custom(d: pd.DataFrame):
    return list(zip(d["model"], d["strategy"].map(strategies.short_label), d["k"]))


def frontier_figure(df: pd.DataFrame, front: pd.DataFrame, x: str, x_title: str, scale: str = "log",
                    colors: dict[str, str] | None = None, height: int = 320,
                    symbols: dict[str, str] | None = None) -> go.Figure:
    """Every configuration (colour: model, marker: strategy) and the Pareto frontier as a step line."""
    colors = colors or color_map(df["model"].unique() if len(df) else [])
    symbols = symbols or symbol_map(df["strategy"].unique() if len(df) else [])
    fig = go.Figure()
    for model, g in df.groupby("model", sort=False):
        g = g.sort_values([x, "k"])
        fig.add_trace(go.Scatter(
            x=g[x], y=g["accuracy"], mode="markers", name=str(model), showlegend=False,
            marker=dict(color=colors.get(model, PALETTE[0]), size=8, line=dict(width=1, color=colors.get(model)),
                        symbol=[symbols.get(v, "circle") for v in g["strategy"]]),
            customdata=_custom(g), hovertemplate=_hover(x_title)))
    if len(front):
        f = front.sort_values(x)
        fig.add_trace(go.Scatter(x=f[x], y=f["accuracy"], mode="lines", name="frontier", showlegend=False,
                                 line=dict(color="#333", width=2, shape="hv"), customdata=_custom(f),
                                 hovertemplate=_hover(x_title)))
    xaxis = dict(title=_narrow(x_title))
    if scale == "log":
        xaxis.update(_log_axis(df[x] if len(df) else [], money=x == "dollars", seconds=x == "latency_s"))
    fig.update_layout(xaxis=xaxis, yaxis=dict(title="accuracy", tickformat=".0%", rangemode="tozero"),
                      height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      hovermode="closest", template="plotly_white")
    return fig


def model_switches(front: pd.DataFrame, x: str) -> list[dict]:
    """Where the best model changes along a frontier: ``[{x, before, after}]`` in budget order."""
    f = front.sort_values(x)
    out, prev = [], None
    for _, r in f.iterrows():
        if prev is not None and r["model"] != prev:
            out.append({"x": float(r[x]), "before": prev, "after": r["model"]})
        prev = r["model"]
    return out


def flops_matched_figure(fm: pd.DataFrame, colors: dict[str, str] | None = None, height: int = 340) -> go.Figure:
    """Per difficulty level: the small model's best k within the large model's 1-sample FLOPs, side by side.

    ``fm`` comes from ``engine.analysis.flops_matched``; bars carry 95% intervals as error bars.
    """
    fig = go.Figure()
    if len(fm):
        small, large = fm["small"].iloc[0], fm["large"].iloc[0]
        # the samples each bar stands for go under its level, not above the bar, where they sat on the error caps
        levels = [("all" if pd.isna(d) else f"L{int(d)}") + (f"<br>{k} vs 1" if ok else "<br>over budget")
                  for d, k, ok in zip(fm["difficulty"], fm["small_k"], fm.get("fits", [True] * len(fm)))]
        colors = colors or color_map([small, large])
        for who, name, text in (("small", f"{small} × N samples", [f"k={k}" for k in fm["small_k"]]),
                                ("large", f"{large} × 1 sample", ["k=1"] * len(fm))):
            acc = fm[f"{who}_accuracy"]
            fig.add_trace(go.Bar(
                x=levels, y=acc, name=name, text=text, textposition="none",
                marker_color=colors.get(small if who == "small" else large, PALETTE[0]),
                error_y=dict(type="data", array=(fm[f"{who}_hi"] - acc).clip(lower=0),
                             arrayminus=(acc - fm[f"{who}_lo"]).clip(lower=0), thickness=1.2),
                customdata=fm[f"{who}_flops"], hovertemplate=f"<b>{html.escape(name)}</b><br>%{{x}} · %{{text}}<br>"
                                                                "accuracy: %{y:.1%}<br>FLOPs: %{customdata:.3s}"
                                                                "<extra></extra>"))
    fig.update_layout(barmode="group", xaxis=dict(title=f"difficulty level: {small} samples vs {large} samples"
                                                    if len(fm) else "difficulty level", type="category"),
                      yaxis=dict(title="accuracy", tickformat=".0%", rangemode="tozero"), height=height,
                      margin=dict(l=10, r=10, t=30, b=10), template="plotly_white",
                      legend=dict(orientation="h", y=1.12, x=0))
    return fig


def equal_compute_heatmap(eq: pd.DataFrame, small: str, large: str, height: int = 300) -> go.Figure:
    """Levels (rows) x budgets (columns: the larger model's k): small's accuracy minus large's, diverging
    around zero (``engine.analysis.equal_compute``); each cell names its winner's sample counts."""
    d = eq.assign(level=[("all" if pd.isna(v) else f"L{int(v)}") for v in eq["difficulty"]])
    cols = sorted(d["large_k"].unique())
    levels = list(dict.fromkeys(d["level"]))
    z = [[None] * len(cols) for _ in levels]
    text = [[""] * len(cols) for _ in levels]
    for r in d.itertuples():
        i, j = levels.index(r.level), cols.index(r.large_k)
        z[i][j] = 100 * r.gap  # in points: a difference of two accuracies ("-9%" read as a relative change)
        text[i][j] = f"{r.small_k}{'*' if r.capped else ''} vs {r.large_k}<br>{100 * r.gap:+.0f} pts"
    top = 100 * max(0.05, float(d["gap"].abs().max()))
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"{large} ×{k}" for k in cols], y=levels, text=text, texttemplate="%{text}",
        colorscale=[[0, PALETTE[1]], [0.5, "#f7f7f7"], [1, PALETTE[0]]], zmin=-top, zmax=top,
        colorbar=dict(title=dict(text=f"{small} − {large} (points)"), tickformat="+.0f"),
        hovertemplate="%{y}, budget of %{x}: " + html.escape(small) + " − " + html.escape(large)
                      + " = %{z:+.1f} points<extra></extra>"))
    fig.update_layout(xaxis=dict(title="budget: the larger model's samples (the smaller gets as many as fit)",
                                 type="category"),
                      yaxis=dict(title="difficulty level", type="category", autorange="reversed"),
                      height=height, margin=dict(l=10, r=10, t=10, b=10), template="plotly_white")
    return fig


# ---- Problem inspector -------------------------------------------------------------
CORRECT_COLOR = "#2CA58D"
WRONG_COLOR = "#B8B8B8"


def answer_histogram(hist: pd.DataFrame, picked_answer: str | None = None, height: int = 300) -> go.Figure:
    """How often each answer was sampled (what majority vote sees); correct answers green, the pick outlined."""
    answers = [str(a) for a in hist["answer"]]
    correct = [bool(c) for c in hist["correct"]]
    picked = [picked_answer is not None and a == str(picked_answer) for a in answers]
    fig = go.Figure(go.Bar(
        x=answers, y=list(hist["count"]), marker_color=[CORRECT_COLOR if c else WRONG_COLOR for c in correct],
        marker_line=dict(color=["#222" if p else "rgba(0,0,0,0)" for p in picked], width=[3 if p else 0 for p in picked]),
        customdata=["correct" if c else "wrong" for c in correct],
        hovertemplate="answer %{x}: %{y} samples (%{customdata})<extra></extra>"))
    if any(picked):
        i = picked.index(True)
        # by position: on a category axis plotly reads x="16" as the 17th category, not the label "16"
        fig.add_annotation(x=i, y=hist["count"].iloc[i], text="the pick", showarrow=True,
                           arrowhead=2, ay=-30)
    fig.update_layout(xaxis=dict(title="answer", type="category"), yaxis=dict(title="samples", rangemode="tozero"),
                      height=height, margin=dict(l=10, r=10, t=30, b=10), template="plotly_white", showlegend=False)
    return fig


def step_color(score: float | None, alpha: float = 0.35) -> str:
    """Background for a solution line: red (0) through yellow to green (1); none without a score."""
    if score is None or not math.isfinite(score):
        return "transparent"
    s = min(1.0, max(0.0, float(score)))
    return f"hsla({120 * s:.0f}, 75%, 45%, {alpha})"


def solution_lines(text: str, step_scores=None) -> list[tuple[str, float | None]]:
    """The completion's lines, each with its PRM step score (scored lines are the non-blank ones, in order,
    as ``engine.verifiers.step_end_offsets`` reads them)."""
    scores = list(step_scores or [])
    out, j = [], 0
    for line in (text or "").rstrip("\n").split("\n"):
        s = None
        if line.strip() and j < len(scores):
            s, j = float(scores[j]), j + 1
        out.append((line, s))
    return out


def sample_card_html(idx: int, text: str, answer, correct: bool, score: float | None = None,
                     step_scores=None, picked: bool = False) -> str:
    """One sample: a header (answer, correctness, verifier score, pick) and its lines shaded by step score."""
    mark = '<span style="color:#1e7f5c">✓ correct</span>' if correct else '<span style="color:#b03030">✗ wrong</span>'
    bits = [f"<b>#{int(idx)}</b>", f"answer <code>{html.escape(str(answer) if answer is not None else '(none)')}</code>",
            mark]
    if score is not None and not (isinstance(score, float) and math.isnan(score)):
        bits.append(f"score {float(score):.2f}")
    if picked:
        bits.append("<b>★ the pick</b>")
    rows = []
    for line, s in solution_lines(text, step_scores):
        badge = (f'<span style="float:right;opacity:0.7;margin-left:1em">{s:.2f}</span>' if s is not None else "")
        rows.append(f'<div style="background:{step_color(s)};padding:1px 6px;white-space:pre-wrap">'
                    f"{badge}{html.escape(line) or '&nbsp;'}</div>")
    border = "3px solid #222" if picked else "1px solid #ddd"
    return (f'<div class="ttc-sample" style="border:{border};border-radius:6px;margin:0 0 8px 0;'
            f'font-family:monospace;font-size:0.85rem">'
            f'<div style="padding:4px 6px;border-bottom:1px solid #eee;font-family:sans-serif">{" · ".join(bits)}</div>'
            f'{"".join(rows)}</div>')


def highlight_row(df: pd.DataFrame, index, color: str = "#FFF3C4"):
    """A Styler shading one row (the the pick) for ``st.dataframe``."""
    return df.style.apply(lambda r: [f"background-color: {color}" if r.name == index else "" for _ in r], axis=1)


# ---- Verifiers ------------------------------------------------------------------------
def verifier_curves_figure(df: pd.DataFrame, height: int = 380) -> go.Figure:
    """Accuracy against samples for one model, one line per strategy: best-of-N by each scorer between the
    strategies without a scorer (black: the oracle dashed, majority vote dotted); a scorer that reads the
    answer key (a simulated verifier) drawn thick."""
    fig = go.Figure()
    scored = [s for s in dict.fromkeys(df["strategy"]) if strategies.get(s).uses_scorer]
    colors = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(scored)}
    for spec, g in df.groupby("strategy", sort=False):
        g = g.sort_values("k")
        name, s = strategies.short_label(spec), strategies.get(spec)
        line = (dict(color=colors[spec], width=4 if s.needs_key else 2) if s.uses_scorer
                else dict(color="#222", dash="dash" if s.needs_key else "dot"))
        fig.add_trace(go.Scatter(x=g["k"], y=g["accuracy"], mode="lines+markers", name=name, line=line,
                                 marker=dict(size=5), hovertemplate=f"<b>{html.escape(name)}</b><br>k=%{{x}}<br>"
                                                                    "accuracy: %{y:.1%}<extra></extra>"))
    top = int(math.ceil(math.log2(max(float(df["k"].max()), 1)))) if len(df) else 0
    ticks = [2 ** i for i in range(top + 1)]
    fig.update_layout(xaxis=dict(title="samples per problem (k)", type="log", tickvals=ticks,
                                 ticktext=[str(t) for t in ticks]),
                      yaxis=dict(title="accuracy", tickformat=".0%", rangemode="tozero"), height=height,
                      margin=dict(l=10, r=10, t=10, b=10), template="plotly_white", hovermode="closest",
                      legend=dict(orientation="v", x=1.02, y=1))
    return fig


def verifier_quality_figure(sweep: pd.DataFrame, scorers_at: pd.DataFrame, chosen: float | None = None,
                            height: int = 380) -> go.Figure:
    """Best-of-k accuracy against a verifier's within-problem AUROC: the simulated verifier as a line with
    its 95% band, majority@k and pass@k as horizontal lines, each real scorer as a point at its measured
    AUROC (``scorers_at``: scorer, within_problem_auroc, best_of_k), the chosen AUROC marked."""
    s = sweep.sort_values("auc")
    fig = go.Figure()
    if len(s):
        fig.add_trace(go.Scatter(x=s["auc"], y=s["hi"], mode="lines", line=dict(width=0), hoverinfo="skip",
                                 showlegend=False))
        fig.add_trace(go.Scatter(x=s["auc"], y=s["lo"], mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor=_rgba(PALETTE[0], 0.15), hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=s["auc"], y=s["accuracy"], mode="lines+markers", name="simulated verifier",
                                 line=dict(color=PALETTE[0], width=3),
                                 hovertemplate="AUROC %{x:.2f}: best-of-N %{y:.1%}<extra></extra>"))
        for col, name, dash in (("pass", "oracle (pass@k)", "dash"), ("majority", "majority vote", "dot")):
            fig.add_hline(y=float(s[col].iloc[0]), line=dict(color="#222", dash=dash, width=1.5),
                          annotation_text=f"{name} {float(s[col].iloc[0]):.1%}", annotation_position="top left")
    # a legend entry per scorer, not a text label: scorers of one family sit on top of one another
    pts = scorers_at.dropna(subset=["within_problem_auroc", "best_of_k"])
    for i, (label, x, y) in enumerate(zip(pts["label"], pts["within_problem_auroc"], pts["best_of_k"])):
        fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers", name=label,
                                 marker=dict(size=11, color=PALETTE[1 + i % (len(PALETTE) - 1)],
                                             symbol=SYMBOLS[i % len(SYMBOLS)], line=dict(width=1, color="white")),
                                 hovertemplate=f"{label}: AUROC %{{x:.2f}}, best-of-N %{{y:.1%}}<extra></extra>"))
    if chosen is not None:
        fig.add_vline(x=float(chosen), line=dict(color=PALETTE[0], width=1, dash="dash"))
    fig.update_layout(xaxis=dict(title="verifier's within-problem AUROC (0.5 = guessing)", range=[0.4, 1.02]),
                      yaxis=dict(title="best-of-N accuracy", tickformat=".0%", rangemode="tozero"), height=height,
                      margin=dict(l=10, r=10, t=10, b=10), template="plotly_white", hovermode="closest",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def planner_figure(view: pd.DataFrame, target: float, picks: dict, colors: dict[str, str],
                   height: int = 380) -> go.Figure:
    """Every candidate of the Planner: accuracy against dollars per 1,000 queries (``cost_per_1000``), a colour
    per model, hollow where it misses the latency budget (``fast`` False); the target as a dashed line and each
    of ``picks`` ({"recommended": row, ...}) ringed and named, so the choice is seen among its alternatives."""
    fig = go.Figure()
    for model, g in view.groupby("model", sort=False):
        fig.add_trace(go.Scatter(
            x=g["cost_per_1000"], y=g["accuracy"], mode="markers", name=str(model),
            marker=dict(color=colors.get(model, PALETTE[0]), size=8, line=dict(width=1.5, color=colors.get(model)),
                        symbol=["circle" if f else "circle-open" for f in g["fast"]]),
            customdata=g[["strategy", "k", "latency_s"]].to_numpy(),
            hovertemplate=f"<b>{html.escape(str(model))}</b> · %{{customdata[0]}} · k=%{{customdata[1]}}<br>"
                          "$%{x:.3g} per 1,000 queries<br>accuracy %{y:.1%}<br>latency p50 %{customdata[2]:.3f} s"
                          "<extra></extra>"))
    # the target's label at the right end, below the line: the picks are the cheapest options above it, on the left
    fig.add_hline(y=target, line=dict(color="grey", dash="dash", width=1), annotation_text=f"target {target:.0%}",
                  annotation_position="bottom right")
    for (name, r), up in zip(picks.items(), (True, False, True)):
        if r:  # ringed; named above and below on a white box (the two picks often cost about the same, and a
            # name drawn as text sat on top of the points around it)
            fig.add_trace(go.Scatter(x=[r["cost_per_1000"]], y=[r["accuracy"]], mode="markers", name=name,
                                     hoverinfo="skip", showlegend=False,
                                     marker=dict(size=20, symbol="circle-open", color="#222", line=dict(width=2))))
            fig.add_annotation(x=math.log10(r["cost_per_1000"]) if r["cost_per_1000"] > 0 else 0, y=r["accuracy"],
                               text=name, showarrow=True, arrowhead=0, arrowcolor="#222", ax=0, ay=-34 if up else 34,
                               bgcolor="rgba(255,255,255,0.9)", bordercolor="#222", borderwidth=1, borderpad=2)
    fig.update_layout(xaxis=dict(title="dollars per 1,000 queries", **_log_axis(view["cost_per_1000"], money=True)),
                      yaxis=dict(title="accuracy", tickformat=".0%", rangemode="tozero"), height=height,
                      margin=dict(l=10, r=10, t=10, b=10), template="plotly_white",
                      legend=dict(orientation="h", y=-0.25), hovermode="closest")
    return fig


def overlapping(df: pd.DataFrame, key: str, x: str, y: str, dx: float, dy: float) -> list[list[str]]:
    """Groups (2 or more) of ``key`` values whose markers lie within ``dx`` and ``dy`` of another's in the group
    (chained): markers drawn over each other, which a caption should name."""
    first = df.drop_duplicates(key)
    order = {str(v): i for i, v in enumerate(first[key])}   # groups list their members as ``df`` does
    pts = first[[key, x, y]].sort_values(x, kind="stable").to_numpy(object)
    group = list(range(len(pts)))

    def root(i):
        while group[i] != i:
            i = group[i]
        return i
    for i in range(len(pts)):
        for j in range(i + 1, len(pts)):
            if float(pts[j][1]) - float(pts[i][1]) > dx:
                break
            if abs(float(pts[j][2]) - float(pts[i][2])) <= dy:
                group[root(j)] = root(i)
    out: dict[int, list[str]] = {}
    for i, p in enumerate(pts):
        out.setdefault(root(i), []).append(str(p[0]))
    return sorted((sorted(g, key=order.get) for g in out.values() if len(g) > 1), key=lambda g: order[g[0]])


def coinciding(df: pd.DataFrame, key: str, cols: list[str], decimals: int = 4) -> list[list[str]]:
    """Groups (2 or more) of ``key`` values whose rows agree on ``cols`` to ``decimals``: lines or markers a chart
    draws on top of each other, which a caption should name (one hidden under another looks like one missing)."""
    sig = {name: tuple(map(tuple, g[cols].astype(float).round(decimals).to_numpy()))
           for name, g in df.groupby(key, sort=False)}
    groups: dict[tuple, list[str]] = {}
    for name, s in sig.items():
        groups.setdefault(s, []).append(str(name))
    return [g for g in groups.values() if len(g) > 1]
