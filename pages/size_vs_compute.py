"""Size vs compute: at each compute budget, which model, sample count and selection strategy is most accurate?"""
import streamlit as st

from engine import analysis, strategies
from engine.compute import CostModel
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
    c1, c2 = st.columns([2, 1])
    chosen = c1.pills("Selection strategies", available, selection_mode="multi",
                      default=strategies.defaults(available), key="verifiers", bind=URL,
                      format_func=strategies.short_label,
                      help=figures.strategy_help(available) + ". The oracle needs the answer key: deselect it "
                                                              "for a frontier you could ship") \
        or strategies.defaults(available)
    with c2.expander("Cost assumptions"):
        price = st.number_input("Device price ($/hour)", 0.0, 1000.0, 2.0, 0.1, key="price", bind=URL)
    note = common.missing_scorers_note()
    if note:
        st.caption(note)
    exp = exp.replace(strategies=chosen, cost=CostModel(price_per_gpu_hour=float(price)))

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
overall, xcol = df, "flops"
if ratio_s != "inference only":
    df = common.guarded(analysis.with_pretraining, df, float(ratio_s))
    if df is None:
        st.stop()
    xcol = "total_flops"
    unknown = sorted(df.loc[df["train_tokens"] <= 0, "model"].unique())
    if unknown:
        st.caption(f"No training record (pretraining tokens) for {', '.join(unknown)}: nothing added for "
                   f"{'it' if len(unknown) == 1 else 'them'}.")
flops_title = "FLOPs per problem" + (" (inference + pretraining)" if xcol == "total_flops" else "")

# ---- frontier ------------------------------------------------------------------------
st.subheader("Best accuracy at each budget")
missing = sorted({m.name for m in exp.models} - set(df["model"]))
if missing:
    st.caption(f"Nothing cached yet for {', '.join(missing)} at these settings.")
colors = figures.color_map(m for m in lms["names"] if m in set(df["model"]))
symbols = figures.symbol_map(df["strategy"].unique())
st.html(figures.legend_html(colors) + figures.strategy_legend_html(symbols))
axes = [(xcol, flops_title, "log")] + figures.FRONTIER_AXES[1:]
fronts = {}
for col, (x, title, scale) in zip(st.columns(3), axes):
    fronts[x] = front = analysis.frontier(df, x=x)
    col.markdown(f"**Accuracy vs {title}**")
    col.plotly_chart(figures.frontier_figure(df, front, x, title, scale, colors, symbols=symbols), width="stretch",
                     config={"displaylogo": False}, key=f"frontier_{x}")

front = fronts[xcol]
switches = figures.model_switches(front, xcol)
if switches:
    st.markdown("On FLOPs, the best model changes " + "; ".join(
        f"from **{s['before']}** to **{s['after']}** at {s['x']:.3g} FLOPs per problem" for s in switches) + ".")
else:
    st.markdown(f"On FLOPs, **{front['model'].iloc[-1]}** is the best model at every budget cached here.")
st.dataframe(front.assign(strategy=front["strategy"].map(strategies.short_label))[
                 [xcol, "model", "strategy", "k", "accuracy", "lo", "hi", "dollars", "latency_s"]],
             hide_index=True, width="stretch", key="frontier_table", column_config={
                 xcol: st.column_config.NumberColumn(flops_title, format="%.3e"),
                 "strategy": st.column_config.TextColumn("strategy"),
                 "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
                 "lo": st.column_config.NumberColumn("95% CI low", format="percent"),
                 "hi": st.column_config.NumberColumn("95% CI high", format="percent"),
                 "dollars": st.column_config.NumberColumn("$ / problem", format="%.2e"),
                 "latency_s": st.column_config.NumberColumn("latency p50 (s)", format="%.3f")})

# ---- FLOPs-matched ---------------------------------------------------------------------
st.subheader("FLOPs-matched: many samples from a smaller model, or one from the next size up?")
ladder = df.drop_duplicates("model").sort_values("params")["model"].tolist()
pairs = [f"{a} → {b}" for a, b in zip(ladder, ladder[1:])]
if not pairs:
    st.info("Needs cached samples from at least two model sizes.")
    st.stop()
c1, c2 = st.columns([1, 2])
pair = c1.selectbox("Smaller → next larger", pairs, key="pair", bind=URL)
shippable = [s for s in exp.strategies if not strategies.get(s).needs_key] or list(exp.strategies)
fm_strategy = c2.selectbox("Strategy for the smaller model's samples", shippable, key="fm_verifier", bind=URL,
                           format_func=strategies.short_label)
small, large = pair.split(" → ")
by_level = common.curves_for(ctx, exp.replace(models=[exp.model(small), exp.model(large)],
                                              strategies=[fm_strategy]), by_level=True)
if by_level is None:
    st.stop()
if by_level.empty:  # a dataset without difficulty levels: compare over all problems
    by_level = overall[(overall["strategy"] == fm_strategy) & overall["model"].isin([small, large])]
if not by_level.empty and xcol == "total_flops":
    by_level = common.guarded(analysis.with_pretraining, by_level, float(ratio_s))
fm = analysis.flops_matched(by_level, small, large, x=xcol) if by_level is not None and not by_level.empty else None
if fm is None or fm.empty:
    st.info(f"Needs samples from both {small} and {large} at these settings.")
    st.stop()
st.caption(f"Per level: {large} with 1 sample against {small} with the most samples that fit in the same "
           f"{'total ' if xcol == 'total_flops' else ''}FLOPs (up to the sample budget), picked by "
           f"{strategies.label(fm_strategy)}. Error bars: 95% bootstrap intervals.")
st.plotly_chart(figures.flops_matched_figure(fm, colors), width="stretch", config={"displaylogo": False},
                key="flops_matched")
wins = (fm["winner"] == small).sum()
st.markdown(f"**{small}** with more samples wins at {wins} of {len(fm)} level{'s' if len(fm) > 1 else ''}.")
st.dataframe(fm[["difficulty", "small_k", "small_accuracy", "small_flops", "large_accuracy", "large_flops",
                 "winner"]], hide_index=True, width="stretch", key="flops_matched_table", column_config={
    "small_k": st.column_config.NumberColumn(f"{small} samples"),
    "small_accuracy": st.column_config.NumberColumn(f"{small} accuracy", format="percent"),
    "small_flops": st.column_config.NumberColumn(f"{small} FLOPs", format="%.3e"),
    "large_accuracy": st.column_config.NumberColumn(f"{large} accuracy (1 sample)", format="percent"),
    "large_flops": st.column_config.NumberColumn(f"{large} FLOPs", format="%.3e")})
