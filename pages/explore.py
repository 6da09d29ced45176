"""Explore: accuracy of each model size as the number of samples per problem grows."""
import streamlit as st

from engine import planning, strategies
from ui import common, figures
from ui.common import URL

common.require_router()  # a deep link to a fresh server runs this file without app.py

LONG_RUN_S = 120

ctx = common.context()
root = ctx["root"]
st.title("Explore")
st.caption("Is it better to run a bigger model once, or a smaller model many times and pick an answer?")

cache, lms = common.cache_and_models(ctx)

# ---- controls -------------------------------------------------------------------
with st.container(border=True):
    exp = common.experiment_widgets(root, lms, help="Shipped ladder preselected; add your own on Models & data")
    if exp is None:
        st.stop()
    strategy = common.strategy_picker()
    with st.expander("Cost assumptions"):
        cost = common.cost_widgets(ctx["device"])
    # the oracle rides along as the ceiling the verdict quotes; only the chosen strategy is plotted
    exp = exp.replace(strategies=[strategy, "oracle"], cost=cost)

problems = common.guarded(exp.selected)
if problems is None:
    st.stop()
models = [m.name for m in exp.models]
selection = (exp.models, exp.task, exp.problems, exp.levels, exp.params)


# ---- running ---------------------------------------------------------------------
def start_sweep():
    from ui.sweep import SweepJob  # sampling brings torch and transformers: imported when a run starts
    job = SweepJob(exp, cache, ctx["device"]).start()
    st.session_state["sweep_job"] = job
    st.session_state.pop("_confirm_run", None)


@st.fragment(run_every=1.0)
def live_progress(job):
    # rerun the whole page when the sweep ends or a model finishes, so its curves appear as they land
    if job.done or len(job.results) != st.session_state.get("_results_seen", 0):
        st.session_state["_results_seen"] = len(job.results)
        st.rerun()
    with st.status(f"Sampling {len(job.models)} model(s)…", expanded=True):
        st.progress(job.fraction(), text=job.status_line())
        for r in job.results:
            st.write(f"{r.model}: {r.generated:,} new, {r.cached:,} cached, {r.elapsed_s:.0f} s")
    if job.stopped:
        st.caption("Stopping after the current batch…")
    elif st.button("Stop", icon=":material/stop_circle:", key="stop"):
        job.stop()
        st.rerun(scope="fragment")


job = st.session_state.get("sweep_job")
running = job is not None and not job.done
b1, b2 = st.columns([1, 4], vertical_alignment="center")
if b1.button("Run", type="primary", icon=":material/play_arrow:", disabled=running or not models, key="run") \
        and common.within_budget(cache, exp):
    with st.spinner("Measuring each new model's speed on a few samples…"):
        from engine import runner
        common.guarded(runner.probe, exp, cache, ctx["device"])
    secs = common.guarded(planning.estimate_seconds, cache, exp)
    if secs is not None and secs > LONG_RUN_S:
        st.session_state["_confirm_run"] = (selection, secs)
    elif secs is not None:
        start_sweep()
        st.rerun()
if not models:
    b2.caption("Pick at least one model.")

pending = st.session_state.get("_confirm_run")
if pending and pending[0] == selection and not running:
    st.warning(f"This sweep will take about {pending[1] / 60:.0f} minutes on {ctx['device']}. "
               "Finished batches are cached, and you can stop at any time.")
    y, n = st.columns([1, 6])
    if y.button("Run anyway", type="primary", key="confirm_run"):
        start_sweep()
        st.rerun()
    if n.button("Cancel", key="cancel_run"):
        st.session_state.pop("_confirm_run", None)
        st.rerun()

if running:
    live_progress(job)
elif job is not None:
    state = "error" if job.error else "complete"
    with st.status(job.summary(), state=state, expanded=bool(job.error)):
        if job.error:
            st.error(common.plain(job.error))  # it can quote a problem id or a line of a user's file
        for r in job.results:
            st.write(f"{r.model}: {r.generated:,} new, {r.cached:,} cached, {r.elapsed_s:.0f} s")


# ---- results ---------------------------------------------------------------------
if not models:
    st.stop()
common.data_notes(cache, exp, running=running)
both = common.curves_for(ctx, exp)
if both is None:
    st.stop()
if both.empty:
    st.info("Sampling: curves appear here as each model finishes." if running else
            "No samples cached for these settings yet: press **Run**.")
    st.stop()
common.verdict_box(both, common.curves_for(ctx, exp, by_level=True), paired=common.paired_for(ctx, exp))
df = both[both["strategy"] == strategy]

colors = figures.color_map(lms["names"])
st.html(figures.legend_html({m: c for m, c in colors.items() if m in set(df["model"])}))
titles = ["Accuracy vs samples per problem", "Accuracy vs inference FLOPs", "Accuracy vs latency"]
for col, title, fig in zip(st.columns(3), titles, figures.explore_figures(df, colors, common.axis_titles(exp.cost))):
    col.markdown(f"**{title}**")
    col.plotly_chart(fig, width="stretch", config=common.chart_config(f"chart_{title}"), key=f"chart_{title}")
chosen = strategies.get(strategy)
common.explain(*(["bands"] + (["coverage"] if chosen.needs_key else []) + (["weak_verifier"] if chosen.uses_scorer
                                                                           else [])))

budget = exp.params.n
summary = figures.cost_summary(df, budget)
shown = sorted(summary["k"].unique())
st.subheader(f"Cost at {shown[0]} sample{'s' if shown[0] > 1 else ''} per problem" if len(shown) == 1 else
             "Cost at the largest sample count cached per model")
if shown != [budget]:
    st.caption(f"Asked for {budget} per problem; the table shows the largest k each model has for every "
               "problem counted.")
summary = summary.assign(dollars_per_1000=summary["dollars"] * 1000, wh_per_1000=summary["energy_wh"] * 1000)
common.dataframe(summary[["model", "k", "accuracy", "flops", "latency_s", "dollars_per_1000", "wh_per_1000"]],
                 shares=["accuracy"], hide_index=True, width="stretch", column_config={
                 "flops": st.column_config.NumberColumn("FLOPs / problem", format="compact"),
                 "latency_s": st.column_config.NumberColumn("latency p50 (s)", format="%.3g"),
                 "dollars_per_1000": st.column_config.NumberColumn("$ / 1000 problems", format="%.3g"),
                 "wh_per_1000": st.column_config.NumberColumn("Wh / 1000 problems", format="%.3g")})
note = common.cost_order_note(summary, exp.cost)
if note:
    st.caption(note)

with st.expander("All curve points"):
    st.dataframe(df, hide_index=True, width="stretch")
    common.download_buttons(df, f"curves_{exp.task}_{strategy.replace(':', '_')}", "curves")
