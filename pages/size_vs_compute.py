"""Size vs compute: at each compute budget, which model, sample count and selection strategy is most accurate?"""
import streamlit as st

from engine import analysis, strategies
from engine.accounting import compact
from ui import common, figures
from ui.common import URL

common.require_router()  # a deep link to a fresh server runs this file without app.py

RATIOS = ["inference only", "0.001", "0.01", "0.1", "1", "10", "100"]

ctx, _, lms = common.page_header(
    "Size vs compute", "For each compute budget, which model, number of samples and selection strategy gives the "
                       "best accuracy? Everything here is read from the cache: run sweeps on **Explore** to add "
                       "points.")

# ---- controls -------------------------------------------------------------------
with st.container(border=True):
    exp = common.experiment_widgets(ctx["root"], lms)
    if exp is None:
        st.stop()
    available = common.strategy_options()
    chosen = st.pills("Selection strategies", available, selection_mode="multi",
                      default=strategies.defaults(available), key="verifiers", bind=URL,
                      format_func=strategies.short_label,
                      help=figures.strategy_help(available) + ". Strategies that need the answer key (the "
                                                              "oracle) are drawn hollow, as a ceiling: never "
                                                              "part of the frontier or the verdict") \
        or strategies.defaults(available)
    with st.expander("Cost assumptions"):
        cost = common.cost_widgets(ctx["device"])
    note = common.missing_scorers_note()
    if note:
        st.caption(note)
    exp = exp.replace(strategies=chosen, cost=cost)

if not exp.models:
    st.info("Pick at least one model.")
    st.stop()
df = common.curves_or_stop(ctx, exp)

# ---- amortised pretraining --------------------------------------------------------
ratio_s = st.select_slider(
    "Inference tokens served over the model's life ÷ its pretraining tokens", RATIOS, value="inference only",
    key="ratio", bind=URL, help="Adds each problem's share of pretraining FLOPs (6·N·D) to the FLOPs axes")
st.caption("A model that serves R × its pretraining tokens spreads 6·N·D FLOPs of training over its problems, "
           "adding 6·N·T/R FLOPs to each one: the fewer queries (small R), the more a big model's training "
           "costs per answer, so the smaller model with more samples wins up to larger budgets "
           "(Snell et al. 2024, sec. 7).")
xcol = "flops"
if ratio_s != "inference only":
    df = common.guarded(analysis.with_pretraining, df, float(ratio_s))
    if df is None:
        st.stop()
    xcol = "total_flops"
    unknown = sorted(df.loc[df["train_tokens"] <= 0, "model"].unique())
    if unknown:
        st.caption(f"No training record (pretraining tokens) for {', '.join(unknown)}: nothing added for "
                   f"{'it' if len(unknown) == 1 else 'them'}.")
named = common.axis_titles(exp.cost)
flops_title = "FLOPs per problem" + (" (inference + pretraining)" if xcol == "total_flops" else
                                     named["flops"].removeprefix("inference FLOPs per problem"))

# ---- verdict ----------------------------------------------------------------------------
by_level_all = common.curves_for(ctx, exp, by_level=True)
if by_level_all is not None and xcol == "total_flops" and not by_level_all.empty:
    by_level_all = common.guarded(analysis.with_pretraining, by_level_all, float(ratio_s))
paired = common.paired_for(ctx, exp)
common.verdict_box(df, by_level_all, x=xcol, x_label=flops_title, paired=paired)

# ---- frontier ------------------------------------------------------------------------
st.subheader("Best accuracy at each budget")
missing = sorted({m.name for m in exp.models} - set(df["model"]))
if missing:
    st.caption(f"Nothing cached yet for {', '.join(missing)} at these settings.")
deployable = analysis.deployable(df)
colors = figures.color_map(lms["names"])
symbols = figures.symbol_map(df["strategy"].unique())
st.html(figures.legend_html({m: c for m, c in colors.items() if m in set(df["model"])})
        + figures.strategy_legend_html(symbols))
axes = [(xcol, flops_title, "log")] + [(c, named.get(c, t), sc) for c, t, sc in figures.FRONTIER_AXES[1:]]
per1000 = {"dollars": lambda d: d["dollars"] * 1000}  # dollars per 1,000 problems: $0.01, not 10µ per problem
fronts = {}
for col, (x, title, scale) in zip(st.columns(3), axes):
    fronts[x] = front = analysis.frontier(deployable, x=x)
    shown, shown_front = (df.assign(**per1000), front.assign(**per1000)) if x == "dollars" else (df, front)
    title = title.replace("dollars per problem", "dollars per 1,000 problems")
    col.markdown(f"**Accuracy vs {title}**")
    col.plotly_chart(figures.frontier_figure(shown, shown_front, x, title, scale, colors, symbols=symbols),
                     width="stretch", config=common.chart_config(f"frontier_{x}"), key=f"frontier_{x}")
st.caption("The line is the frontier of what you could deploy: strategies that need no answer key. "
           + common.EXPLAIN["coverage"])
order_note = common.cost_order_note(df[df["k"] == 1].drop_duplicates("model"), exp.cost)
if order_note:
    st.caption(order_note)

front = fronts[xcol]
if front.empty:
    st.info("Pick a strategy that needs no answer key (majority, best-of-N, weighted vote) to draw a frontier.")
    st.stop()
switches = figures.model_switches(front, xcol)
owners = front.groupby("model", sort=False).size()
if len(switches) <= 3:
    st.markdown("On FLOPs, the best deployable option " + ("; ".join(
        f"moves from **{s['before']}** to **{s['after']}** at {compact(s['x'])} FLOPs per problem" for s in switches)
        if switches else f"is **{front['model'].iloc[-1]}** at every budget cached here") + ".")
else:
    st.markdown(f"On FLOPs, the best deployable option changes model {len(switches)} times (curves this close "
                "trade places within noise); points per model on the frontier: "
                + ", ".join(f"{m} {n}" for m, n in owners.items()) + ".")
common.dataframe(front.assign(strategy=[strategies.short_label(s) if k > 1 else "single sample"
                                       for s, k in zip(front["strategy"], front["k"])], **per1000)[
                     [xcol, "model", "strategy", "k", "accuracy", "lo", "hi", "dollars", "latency_s"]],
                 shares=["accuracy", "lo", "hi"], hide_index=True, width="stretch", key="frontier_table",
                 column_config={
                     xcol: st.column_config.NumberColumn(flops_title, format="compact"),
                     "strategy": st.column_config.TextColumn("strategy"),
                     "lo": st.column_config.NumberColumn("95% CI low"),
                     "hi": st.column_config.NumberColumn("95% CI high"),
                     "dollars": st.column_config.NumberColumn("$ / 1000 problems", format="%.3g"),
                     "latency_s": st.column_config.NumberColumn("latency p50 (s)", format="%.3f")})

# ---- who wins at equal compute ---------------------------------------------------------
st.subheader("Who wins at equal compute?")
ladder = df.drop_duplicates("model").sort_values("params")["model"].tolist()
if len(ladder) < 2:
    st.info("Needs cached samples from at least two model sizes.")
    st.stop()
shippable = [s for s in exp.strategies if not strategies.get(s).needs_key]
if not shippable:
    st.info("Pick a strategy that needs no answer key to compare model sizes.")
    st.stop()
c1, c2, c3 = st.columns(3)
small = c1.selectbox("Smaller model", ladder[:-1], key="small", bind=URL)
larger = ladder[ladder.index(small) + 1:]
large = c2.selectbox("Larger model", larger, index=len(larger) - 1, key="large", bind=URL)
fm_strategy = c3.selectbox("Strategy for both", shippable, key="fm_verifier", bind=URL,
                           format_func=strategies.short_label)


def pair(d):
    return d[(d["strategy"] == fm_strategy) & d["model"].isin([small, large])]


# the verdict's per-level curves hold this pair already (pretraining added); a dataset without levels: all problems
by_level = pair(by_level_all if by_level_all is not None and not by_level_all.empty else df)
fm = analysis.flops_matched(by_level, small, large, x=xcol, paired=paired) if not by_level.empty else None
if fm is None or fm.empty:
    st.info(f"Needs samples from both {small} and {large} at these settings.")
    st.stop()
st.caption(f"Per level: {large} with 1 sample against {small}'s best option (number of samples) that fits in "
           f"the same {'total ' if xcol == 'total_flops' else ''}FLOPs, up to the sample budget, both picked by "
           f"{strategies.label(fm_strategy)}. Its best option may spend less than the budget: where more samples "
           "do not help, it takes fewer. Error bars: 95% bootstrap intervals.")
st.plotly_chart(figures.flops_matched_figure(fm, colors), width="stretch", config=common.chart_config("flops_matched"),
                key="flops_matched")
won, lost = fm[fm["winner"] == small], fm[fm["winner"] == large]
over = int((~fm["fits"]).sum())
st.markdown(f"Against one sample of {large}, **{small}** with more samples wins clearly at "
            f"{int(won['clear'].sum())} of {len(fm)} level{'s' if len(fm) > 1 else ''} and loses clearly at "
            f"{int(lost['clear'].sum())}; the rest are within noise on this many problems"
            + (f", except {over} where one {small} sample already costs more than one {large} sample (no "
               "comparison)." if over else "."))
eq = analysis.equal_compute(by_level, small, large, x=xcol)
if not eq.empty:
    st.markdown(f"**At every budget:** {large} with k samples against {small}'s best option within the same "
                f"{'total ' if xcol == 'total_flops' else ''}FLOPs (cell: samples of each, and {small}'s accuracy "
                f"minus {large}'s, in percentage points).")
    st.plotly_chart(figures.equal_compute_heatmap(eq, small, large), width="stretch",
                    config=common.chart_config("equal_compute"), key="equal_compute")
    if eq["capped"].any():
        st.caption(f"*: the budget would buy {small} at least twice as many samples as the {exp.params.n} "
                   "cached per problem; raise the sample budget (and run it on Explore) to see them. The cell "
                   "shows the best option among those cached, which may take fewer samples still.")
    cross = analysis.crossover(analysis.equal_compute(pair(df), small, large, x=xcol))
    if cross is not None:
        st.markdown(f"Crossover: from {compact(cross)} FLOPs per problem on, {large} wins at every larger budget.")
# "result", not "winner" and "clear": a model named as winner beside an unticked box read as a win
common.dataframe(fm[["difficulty", "small_k", "small_accuracy", "small_flops", "large_accuracy", "large_flops",
                     "result"]],
                 shares=["small_accuracy", "large_accuracy"], hide_index=True,
                 width="stretch", key="flops_matched_table", column_config={
    "small_k": st.column_config.NumberColumn(f"{small} samples"),
    "small_accuracy": st.column_config.NumberColumn(f"{small} accuracy"),
    "small_flops": st.column_config.NumberColumn(f"{small} FLOPs", format="compact"),
    "large_accuracy": st.column_config.NumberColumn(f"{large} accuracy (1 sample)"),
    "large_flops": st.column_config.NumberColumn(f"{large} FLOPs", format="compact")})
