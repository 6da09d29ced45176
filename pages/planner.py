"""Planner: the cheapest cached configuration that meets an accuracy target within a latency budget."""
import streamlit as st

from engine import analysis, hardware, strategies
from engine.analysis.planner import money
from ui import common, figures
from ui.common import URL

common.require_router()  # a deep link to a fresh server runs this file without app.py

PRICING = ["GPU-hour", "million tokens"]  # the option is what the URL shows: ?pricing=million+tokens

ctx, _, lms = common.page_header(
    "Planner", "Tell it what you need; it picks the cheapest model, sample count and selection strategy that "
               "delivers it, from what has been measured (cached) so far.")

# ---- requirements ---------------------------------------------------------------
with st.container(border=True):
    c1, c2 = st.columns(2)
    target = c1.slider("Target accuracy (%)", 0, 100, 50, 1, key="target", bind=URL,
                       help="Share of problems answered correctly, measured on the cached problems")
    latency = c2.number_input("Latency budget per query (s)", min_value=0.01, max_value=3600.0, value=2.0,
                              step=0.5, key="latency", bind=URL, help="p50 wall time for all samples of one query")
    c1, c2 = st.columns([1, 1])
    pricing = c1.radio("Price per", PRICING, key="pricing", bind=URL, horizontal=True,
                       help="Rented hardware is billed by time; APIs by tokens")
    per_token = pricing == "million tokens"
    qpd = c2.number_input("Queries per day", min_value=0, max_value=10**10, value=10_000, step=1000, key="qpd",
                          bind=URL)
    cost = common.cost_widgets(ctx["device"], per_token=per_token)
    with st.expander("Which measurements to plan from"):
        exp = common.experiment_widgets(ctx["root"], lms, default_models=lms["names"])
    if exp is None:
        st.stop()

candidates = [s for s in strategies.defaults(common.strategy_options()) if not strategies.get(s).needs_key]
note = common.missing_scorers_note()
st.caption("Candidates: every cached model × samples per query × "
           + ", ".join(strategies.label(s) for s in candidates)
           + " (strategies that need the answer key, like the oracle, are not candidates)."
           + (f" {note}" if note else ""))
if not exp.models:
    st.info("Pick at least one model under **Which measurements to plan from**.")
    st.stop()

exp = exp.replace(strategies=candidates, cost=cost)
df = common.curves_or_stop(ctx, exp)

result = common.guarded(analysis.recommend, df, target / 100, float(latency), float(qpd),
                        problems_available=len(exp.load_task().problems))
if result is None:
    st.stop()

# ---- answer ---------------------------------------------------------------------------
best, runner = result["best"], result["runner_up"]
if best is None:
    st.warning(result["explanation"])
else:  # a pick whose interval reaches below the target is a caution, not a success
    (st.warning if result.get("uncertain") else st.success)(result["explanation"])

    def card(title: str, r: dict, key: str) -> None:
        with st.container(border=True, key=key):
            st.markdown(f"**{title}**")
            st.markdown(f"{r['model']} · {r['label']} over {r['k']} samples per query" if r["k"] > 1 else
                        f"{r['model']} · one sample per query (nothing to select)")
            a, b = st.columns(2)
            a.metric("Cost per 1,000 queries", money(r["cost_per_1000"]))
            b.metric("Cost per month", money(r["cost_per_month"]), help=f"{qpd:,} queries a day × 30 days")
            a.metric("Accuracy", f"{r['accuracy']:.1%}")
            b.metric("Latency (p50)", f"{r['latency_s']:.2f} s")

    c1, c2 = st.columns(2)
    with c1:
        card("Recommended", best, "plan_best")
    with c2:
        if runner:
            card("Runner-up from another model size", runner, "plan_runner_up")
        else:
            st.info("No other model size meets both the target and the latency budget.")

# ---- the choice among its alternatives --------------------------------------------------------
shown = analysis.candidates(df)
view = shown.assign(meets=(shown["accuracy"] >= target / 100) & (shown["latency_s"] <= latency),
                   fast=shown["latency_s"] <= latency, cost_per_1000=shown["dollars"] * 1000,
                   strategy=[strategies.short_label(s) if k > 1 else "single sample"
                             for s, k in zip(shown["strategy"], shown["k"])])
if not view.empty:
    st.plotly_chart(figures.planner_figure(view, target / 100, {"recommended": best, "runner-up": runner},
                                           figures.color_map(lms["names"])),
                    width="stretch", config=common.chart_config("plan_fig"), key="plan_fig")
    st.caption("Every cached option: accuracy against cost. Hollow: slower than the latency budget. The cheapest "
               "filled point above the dashed target line is the recommendation (ringed; where several cost "
               "within 5% of it, the most accurate of them).")
    note = common.cost_order_note(shown[shown["k"] == 1].drop_duplicates("model"), cost)
    if note:
        st.caption(note)

# ---- beyond uniform options: allocation by difficulty, and extrapolation ----------------------
if exp.params.n >= 4 and len(exp.models) >= 1:
    from ui import allocation as ua
    key = (exp, ctx["cache_path"], common.cache_version(ctx["cache_path"]))
    res = common.guarded(ua.allocate, *key, "predicted", 5, None) if len(df.drop_duplicates("model")) else None
    if res is not None:
        note = analysis.planner.allocation_note(
            res["curves"][res["curves"].policy == "allocated by difficulty"], target / 100, shown, res["difficulty"])
        if note:
            st.info(note)
    if best is None and exp.params.n >= 8:
        out = common.guarded(ua.fit, *key, max(2, exp.params.n // 4), exp.params.n)
        if out is not None:
            st.caption(analysis.planner.extrapolation_note(
                out[0], target / 100, common.curves_for(ctx, exp.replace(strategies=["oracle"]))))

# ---- every candidate --------------------------------------------------------------------
with st.expander("Every cached configuration"):
    view = view.sort_values(["meets", "cost_per_1000"], ascending=[False, True])
    common.dataframe(view[["meets", "model", "strategy", "k", "accuracy", "latency_s", "cost_per_1000"]],
                     shares=["accuracy"], hide_index=True, width="stretch", key="plan_table", column_config={
                     "meets": st.column_config.CheckboxColumn("meets both"),
                     "latency_s": st.column_config.NumberColumn("latency p50 (s)", format="%.3f"),
                     "cost_per_1000": st.column_config.NumberColumn("$ / 1000 queries", format="%.4f")})
st.caption(("Costs: device time measured while sampling" if hardware.get(cost.hardware) is None else
            f"Costs: device time projected onto {cost.hardware}") + ", at your price (or tokens × your per-token "
           "price). Accuracy is as measured on the cached problems.")
