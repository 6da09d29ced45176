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


def test_flops_axis_is_log_and_latency_linear(curves):
    _, flops_fig, lat_fig = figures.explore_figures(curves)
    assert flops_fig.layout.xaxis.type == "log"
    assert list(lines(flops_fig)[1].x) == [8e6, 16e6, 32e6, 64e6]
    assert lat_fig.layout.xaxis.type in (None, "linear", "-")
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
