"""Figure functions: the data that ends up in the traces and axes."""
import math

import pandas as pd
import pytest

from ui import figures


@pytest.fixture
def curves():
    rows = []
    for model, base, flops1 in (("arith-s", 0.2, 1e6), ("arith-l", 0.5, 8e6)):
        for k in (1, 2, 4, 8):
            acc = min(1.0, base + 0.05 * math.log2(k))
            rows.append(dict(model=model, k=k, accuracy=acc, lo=acc - 0.05, hi=acc + 0.05, flops=k * flops1,
                             latency_s=0.1 * k, dollars=1e-6 * k, energy_wh=1e-4 * k))
    return pd.DataFrame(rows)


def lines(fig):
    return [t for t in fig.data if t.mode == "lines+markers"]


def test_three_explore_figures_share_colours(curves):
    colors = figures.color_map(["arith-s", "arith-l"])
    figs = figures.explore_figures(curves, colors)
    assert len(figs) == 3
    for fig in figs:
        assert [t.name for t in lines(fig)] == ["arith-s", "arith-l"]
        assert [t.line.color for t in lines(fig)] == [colors["arith-s"], colors["arith-l"]]
        assert fig.layout.showlegend is False  # one shared legend is drawn above the charts


def test_accuracy_vs_samples_is_log2_with_power_of_two_ticks(curves):
    fig = figures.explore_figures(curves)[0]
    assert fig.layout.xaxis.type == "log"
    assert list(fig.layout.xaxis.tickvals) == [1, 2, 4, 8]
    small = lines(fig)[0]
    assert list(small.x) == [1, 2, 4, 8]
    assert list(small.y) == pytest.approx([0.2, 0.25, 0.3, 0.35])


def test_flops_and_latency_axes_are_log_and_seconds_read_as_seconds(curves):
    _, flops_fig, lat_fig = figures.explore_figures(curves)
    assert flops_fig.layout.xaxis.type == "log"
    assert list(lines(flops_fig)[1].x) == [8e6, 16e6, 32e6, 64e6]
    # log, as FLOPs and dollars: slow best-of-N points no longer squeeze the rest into the left edge; ticks 0.1
    # (not the SI "100m", which beside "(s)" reads as minutes)
    assert lat_fig.layout.xaxis.type == "log" and lat_fig.layout.xaxis.tickformat == "~g"
    cfgs = curves.assign(strategy="majority")
    front = figures.frontier_figure(cfgs, cfgs.iloc[:0], "latency_s", "latency", "log", {})
    assert front.layout.xaxis.type == "log" and front.layout.xaxis.tickformat == "~g"
    assert list(lines(lat_fig)[0].x) == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_confidence_band_is_filled_between_lo_and_hi(curves):
    fig = figures.accuracy_figure(curves[curves.model == "arith-s"], "k", "k", "log2")
    hi, lo, line = fig.data
    assert list(hi.y) == pytest.approx([0.25, 0.3, 0.35, 0.4])
    assert list(lo.y) == pytest.approx([0.15, 0.2, 0.25, 0.3])
    assert lo.fill == "tonexty" and hi.fill is None
    assert line.name == "arith-s"


def test_no_band_without_interval_and_unsorted_input(curves):
    df = curves.drop(columns=["lo", "hi"]).sample(frac=1, random_state=0)
    fig = figures.accuracy_figure(df, "k", "k")
    assert len(fig.data) == 2
    assert all(list(t.x) == sorted(t.x) for t in fig.data)


def test_cost_summary_takes_largest_k_within_budget(curves):
    s = figures.cost_summary(curves, 5)
    assert list(s.model) == ["arith-s", "arith-l"] and list(s.k) == [4, 4]
    assert s.flops.tolist() == [4e6, 32e6]
    assert figures.cost_summary(curves, 0).empty


def test_legend_lists_every_model_once():
    html = figures.legend_html(figures.color_map(["a", "b", "a", "<c>"]))
    assert html.count(figures.PALETTE[0]) == 1 and "&lt;c&gt;" in html


# ---- Size vs compute -------------------------------------------------------------------------
@pytest.fixture
def configs():
    """Two models x two verifiers x k: FLOPs 2 N T k (T = 100 tokens), pretraining 6 N D with D = 1e6."""
    rows = []
    for model, n, base in (("small", 1e6, 0.3), ("large", 8e6, 0.6)):
        for strategy, bonus in (("oracle", 0.2), ("majority", 0.0)):
            for k in (1, 2, 4, 8, 16):
                acc = min(1.0, base + bonus + 0.08 * math.log2(k))
                rows.append(dict(model=model, params=n, strategy=strategy, k=k, accuracy=acc, lo=acc - 0.05,
                                 hi=acc + 0.05, flops=2 * n * 100 * k, tokens=100.0 * k, dollars=1e-7 * n * k,
                                 latency_s=0.01 * k, train_tokens=1e6, train_flops=6 * n * 1e6))
    return pd.DataFrame(rows)


def test_frontier_figure_colours_models_marks_verifiers_and_steps_the_frontier(configs):
    from engine import analysis
    colors = figures.color_map(["small", "large"])
    front = analysis.frontier(configs, "flops")
    fig = figures.frontier_figure(configs, front, "flops", "FLOPs", "log", colors)
    *points, line = fig.data
    assert [t.name for t in points] == ["small", "large"]
    assert [t.marker.color for t in points] == [colors["small"], colors["large"]]
    small = configs[configs.model == "small"].sort_values(["flops", "k"])
    symbols = figures.symbol_map(configs.strategy.unique())
    assert list(points[0].marker.symbol) == [symbols[v] for v in small.strategy]
    assert len(set(symbols.values())) == 2  # one marker per strategy
    assert list(points[0].customdata[0]) == ["small", "oracle", 1]  # hover: model, strategy, k
    assert line.name == "frontier" and line.line.shape == "hv"
    assert list(line.x) == sorted(front.flops) and fig.layout.xaxis.type == "log"
    assert list(line.y) == list(front.sort_values("flops").accuracy)
    # a chart a third of the page wide: a long axis title breaks at its parentheses instead of being cut off
    long = "latency per problem, p50 (s) (measured when sampled)"
    fig = figures.frontier_figure(configs, front, "flops", long, "log", colors)
    assert fig.layout.xaxis.title.text == "latency per problem, p50 (s)<br>(measured when sampled)"
    assert long in fig.data[0].hovertemplate  # the hover keeps it on one line
    assert figures.frontier_figure(configs, front, "flops", "FLOPs", "log", colors).layout.xaxis.title.text == "FLOPs"


def test_model_switches_and_pretraining_moves_the_crossover(configs):
    from engine import analysis
    d = configs[configs.strategy == "majority"]
    switches = figures.model_switches(analysis.frontier(d, "flops"), "flops")
    assert [(s["before"], s["after"]) for s in switches] == [("small", "large")]
    # at 1.6e9 FLOPs large with 1 sample (0.60) beats small with 8 (0.54): the frontier switches there
    assert switches[0]["x"] == pytest.approx(2 * 8e6 * 100 * 1)
    # R = 1 adds 6 N t1 / R per query (t1 = 100 tokens of one sample): 6e8 for small, 4.8e9 for large.
    # Small with 16 samples (0.62 at 3.8e9) now beats large with 1 (0.60 at 6.4e9), so the large
    # model only takes over at k=2 (0.68 at 3.2e9 + 4.8e9): the crossover moves right.
    amortised = analysis.with_pretraining(d, 1.0)
    moved = figures.model_switches(analysis.frontier(amortised, "total_flops"), "total_flops")
    assert [(s["before"], s["after"]) for s in moved] == [("small", "large")]
    assert moved[0]["x"] == pytest.approx(2 * 8e6 * 100 * 2 + 6 * 8e6 * 100)
    assert figures.model_switches(analysis.frontier(d[d.model == "small"], "flops"), "flops") == []


def test_flops_matched_figure_groups_bars_with_intervals(configs):
    from engine import analysis
    by_level = pd.concat([configs.assign(difficulty=lvl, accuracy=configs.accuracy - 0.1 * lvl,
                                         lo=configs.lo - 0.1 * lvl, hi=configs.hi - 0.1 * lvl) for lvl in (1, 2)])
    fm = analysis.flops_matched(by_level[by_level.strategy == "majority"], "small", "large")
    fig = figures.flops_matched_figure(fm, figures.color_map(["small", "large"]))
    small, large = fig.data
    assert small.name == "small × N samples" and large.name == "large × 1 sample"
    assert list(small.x) == ["L1<br>8 vs 1", "L2<br>8 vs 1"] and fig.layout.barmode == "group"  # 8 x small = 1 x large
    assert list(small.text) == ["k=8", "k=8"] and small.textposition == "none"  # in the hover, off the error caps
    assert fig.layout.xaxis.title.text == "difficulty level: small samples vs large samples"
    assert list(small.y) == pytest.approx(list(fm.small_accuracy))
    assert list(small.error_y.array) == pytest.approx([0.05, 0.05])
    assert list(large.error_y.arrayminus) == pytest.approx([0.05, 0.05])
    assert len(figures.flops_matched_figure(fm.iloc[0:0]).data) == 0


def test_strategy_legend_names_each_marker():
    symbols = figures.symbol_map(["oracle", "majority", "oracle", "best_of_n:prm-min"])
    html = figures.strategy_legend_html(symbols)
    assert html.count("oracle") == 1 and "○ oracle" in html and "● majority" in html
    assert "■ best-of-N · PRM min" in html and "Pareto frontier" in html


# ---- Problem inspector ---------------------------------------------------------------------------
def test_answer_histogram_highlights_correct_and_picked():
    hist = pd.DataFrame({"answer": ["12", "7", "(none)"], "count": [5, 2, 1], "correct": [False, True, False]})
    fig = figures.answer_histogram(hist, picked_answer="12")
    bar = fig.data[0]
    assert list(bar.x) == ["12", "7", "(none)"] and list(bar.y) == [5, 2, 1]
    assert list(bar.marker.color) == [figures.WRONG_COLOR, figures.CORRECT_COLOR, figures.WRONG_COLOR]
    assert list(bar.marker.line.width) == [3, 0, 0]  # the verifier's pick is outlined
    assert fig.layout.xaxis.type == "category"  # "12" and "7" are labels, not numbers
    assert fig.layout.annotations[0].x == 0 and "pick" in fig.layout.annotations[0].text  # "12" is category 0
    assert not figures.answer_histogram(hist).layout.annotations


def test_step_color_runs_red_to_green():
    assert figures.step_color(0.0).startswith("hsla(0,")
    assert figures.step_color(1.0).startswith("hsla(120,")
    assert figures.step_color(0.5).startswith("hsla(60,")
    assert figures.step_color(7) == figures.step_color(1.0)  # clamped
    assert figures.step_color(None) == figures.step_color(float("nan")) == "transparent"


def test_solution_lines_pair_step_scores_with_non_blank_lines_like_the_prm():
    from engine.verifiers import step_end_offsets
    text = "3+4=7\n\n7*2=14\n#### 14\n"
    lines = figures.solution_lines(text, [0.9, 0.4, 0.2])
    assert lines == [("3+4=7", 0.9), ("", None), ("7*2=14", 0.4), ("#### 14", 0.2)]
    assert len(step_end_offsets("Q: x\nA:\n", text)) == sum(s is not None for _, s in lines)
    assert figures.solution_lines("a\nb", None) == [("a", None), ("b", None)]


def test_sample_card_shades_steps_escapes_text_and_marks_the_pick():
    card = figures.sample_card_html(3, "1<2\n#### 2", "2", True, score=0.75, step_scores=[0.1, 0.9], picked=True)
    assert "<b>#3</b>" in card and "1&lt;2" in card and "<2" not in card.replace("1&lt;2", "")
    assert figures.step_color(0.1) in card and figures.step_color(0.9) in card
    assert "score 0.75" in card and "the pick" in card and "3px solid" in card and "✓ correct" in card
    plain = figures.sample_card_html(0, "x", None, False)
    assert "(none)" in plain and "✗ wrong" in plain and "pick" not in plain and "score" not in plain


def test_highlight_row_shades_only_that_row():
    df = pd.DataFrame({"idx": [0, 1, 2], "answer": ["a", "b", "c"]})
    ctx = figures.highlight_row(df, 1)._compute().ctx
    assert {r for r, _ in ctx} == {1} and all("background-color" in str(v) for v in ctx.values())


def test_each_measured_scorer_is_its_own_legend_entry_not_an_overlapping_label():
    """Scorers of one family sit on top of one another (ORM and the PRM variants within 0.01 AUROC): text labels
    on the points overlapped into a blot; each scorer gets its own marker and legend entry instead."""
    sweep = pd.DataFrame({"auc": [0.5, 0.75, 1.0], "accuracy": [0.4, 0.55, 0.7], "lo": [0.35, 0.5, 0.65],
                          "hi": [0.45, 0.6, 0.75], "pass": 0.7, "majority": 0.5})
    at = pd.DataFrame({"label": ["ORM", "PRM min", "PRM prod", "self-likelihood"],
                       "within_problem_auroc": [0.724, 0.712, 0.710, None], "best_of_k": [0.35, 0.35, 0.35, 0.45]})
    fig = figures.verifier_quality_figure(sweep, at, 0.8)
    points = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in points] == ["ORM", "PRM min", "PRM prod"]  # no AUROC, no point
    assert len({(t.marker.symbol, t.marker.color) for t in points}) == 3
    assert all(t.showlegend is not False and not t.text for t in points)


def test_tables_show_shares_to_one_decimal_and_a_dash_where_a_value_is_missing():
    from ui.common import table
    df = pd.DataFrame({"scorer": ["ORM", "step checker"], "best": [0.35, 0.4971], "gold": [0.615, None],
                       "step": [0.7634, float("nan")]})
    out = table(df, shares=["best", "gold"], dashes={"step": "{:.3f}"})
    html = out.to_html()
    assert "35.0%" in html and "49.7%" in html
    assert list(out.data["gold"]) == ["61.5%", "—"]  # a share column with a gap is text: no "None" cell
    assert list(out.data["step"]) == ["0.763", "—"]
    assert list(df["gold"].isna()) == [False, True]  # the caller's frame is left as it was
    assert table(df[["scorer"]]) is not df and list(table(df[["scorer"]])["scorer"]) == ["ORM", "step checker"]


def test_a_column_made_text_keeps_its_label_and_is_right_aligned():
    import streamlit as st

    from ui.common import table, text_configs
    df = pd.DataFrame({"scorer": ["ORM", "PRM"], "best": [0.35, 0.5], "gold": [0.615, None], "step": [None, 0.76]})
    shown = table(df, shares=["best", "gold"], dashes={"step": "{:.3f}"}).data
    cfg = text_configs(shown, ["best", "gold"], {"step": "{:.3f}"},
                       {"gold": st.column_config.NumberColumn("gold beats a copy", help="why")})
    assert set(cfg) == {"gold", "step"}  # "best" stays a number column (no gap), "scorer" untouched
    assert cfg["gold"]["label"] == "gold beats a copy" and cfg["gold"]["help"] == "why"
    assert cfg["gold"]["type_config"]["type"] == "text" == cfg["step"]["type_config"]["type"]
    assert cfg["gold"]["alignment"] == "right" == cfg["step"]["alignment"]


def test_coinciding_names_the_lines_a_chart_draws_on_top_of_each_other():
    df = pd.DataFrame(dict(s=list("aabbcc"), k=[1, 2] * 3, acc=[0.3, 0.4, 0.3, 0.4, 0.3, 0.5]))
    assert figures.coinciding(df, "s", ["k", "acc"]) == [["a", "b"]]  # c parts at k=2
    near = df.assign(acc=[0.3, 0.4, 0.301, 0.399, 0.3, 0.5])
    assert figures.coinciding(near, "s", ["k", "acc"]) == []
    assert figures.coinciding(near, "s", ["k", "acc"], decimals=2) == [["a", "b"]]  # within a point


def test_overlapping_names_markers_drawn_over_each_other_chained():
    """The Verifiers page's ORM (0.716, 25.6%), PRM min (0.715, 26.0%) and PRM last (0.716, 26.2%) sat under one
    another but differed in the third decimal, so "the same best-of-N" named only two of them."""
    df = pd.DataFrame(dict(label=["ORM", "PRM min", "PRM last", "PRM prod", "self", "far"],
                           auc=[0.716, 0.715, 0.716, 0.723, 0.794, 0.70],
                           acc=[0.256, 0.260, 0.262, 0.262, 0.492, 0.50]))
    assert figures.overlapping(df, "label", "auc", "acc", 0.012, 0.02) == [["ORM", "PRM min", "PRM last", "PRM prod"]]
    assert figures.overlapping(df, "label", "auc", "acc", 0.005, 0.02) == [["ORM", "PRM min", "PRM last"]]
    assert figures.overlapping(df.iloc[4:], "label", "auc", "acc", 0.012, 0.02) == []


def test_the_dollars_axis_says_the_price_it_assumes():
    """A chart copied onto a slide lost the price assumption, which lived only in a caption on the Planner."""
    from engine.compute import CostModel
    from ui.common import axis_titles
    assert axis_titles(CostModel(price_per_gpu_hour=2.0))["dollars"] == \
        "dollars per problem, $2/device-hour (measured when sampled)"
    assert axis_titles(CostModel(price_per_mtok=0.5))["dollars"] == "dollars per problem, $0.5/M tokens"  # no time
