"""Compute allocation: how much compute should each query get, and from which model?"""
import pandas as pd
import streamlit as st

from engine import strategies
from engine.accounting import compact
from ui import allocation as ua
from ui import common, figures
from ui.common import URL

common.require_router()  # a deep link to a fresh server runs this file without app.py

HOW = {"predicted": "Predicted (agreement of a few samples; no answer key)",
       "oracle": "Oracle (the model's own pass@1; uses the answer key)", "level": "The task's difficulty level"}

ctx, _, lms = common.page_header(
    "Compute allocation", "Spend compute where it pays: per-difficulty allocation (Snell et al. 2024), adaptive "
                          "stopping (Aggarwal et al. 2023), ensembles of model sizes, and coverage scaling laws "
                          "(Brown et al. 2024; Schaeffer et al. 2025). Everything is computed from cached samples.")

with st.container(border=True):
    exp = common.experiment_widgets(ctx["root"], lms, problems=500, budget=64)
    if exp is None:
        st.stop()
    options = [s for s in common.strategy_options() if not strategies.get(s).needs_key]
    chosen = st.pills("Strategies to allocate over", options, selection_mode="multi",
                      default=strategies.defaults(options), key="alloc_strategies", bind=URL,
                      format_func=strategies.short_label,
                      help="Only strategies a deployed system can run (no answer key)") or strategies.defaults(options)
    exp = exp.replace(strategies=chosen)

if not exp.models:
    st.info("Pick at least one model.")
    st.stop()
common.data_notes(common.current_cache(ctx), exp)
key = (exp, ctx["cache_path"], common.cache_version(ctx["cache_path"]))
blocks = ua.get_blocks(ctx, exp)
if not blocks:
    common.nothing_cached("these models and settings", common.explore_link_params(exp))
    st.stop()
problems = len(blocks[0].problem_ids)
if problems < 100:
    st.caption(f"Measured on {problems} problems: choosing per difficulty bin on half of them is noisy; "
               "the shipped sweeps have 500 problems × 64 samples.")
colors = figures.color_map(lms["names"])

# only the open tab runs (its choice is in the link): the ensembles and the fits' bootstrap take seconds each
tab_alloc, tab_stop, tab_ens, tab_fit = st.tabs(["Allocate by difficulty", "Adaptive stopping",
                                                 "Ensembles of sizes", "Scaling-law fits"],
                                                key="alloc_tab", on_change="rerun", bind=URL)

if tab_alloc.open:
    with tab_alloc:
        c1, c2, c3 = st.columns([3, 1, 2])
        how = c1.radio("Difficulty from", list(HOW), format_func=HOW.get, key="alloc_how", bind=URL)
        bins = c2.number_input("Bins", 2, 10, 5, key="alloc_bins", bind=URL)
        ref = c3.selectbox("Reference model (its samples bin the problems)", [m.name for m in exp.models],
                           key="alloc_ref", bind=URL, disabled=how == "level")
        res = common.guarded(ua.allocate, *key, how, int(bins), ref)
        if res is not None:
            head, *lines = ua.allocation.summary(res)
            st.markdown(head + "\n" + "\n".join(f"- {line}" for line in lines))
            st.plotly_chart(ua.allocation_figure(res["curves"], res["one_sample"]), width="stretch",
                            config=common.chart_config("alloc_fig"), key="alloc_fig")
            same = figures.coinciding(res["curves"].sort_values("flops"), "policy", ["flops", "accuracy"], decimals=2)
            if same:  # one line hidden under another looks like one missing
                st.caption("Drawn on top of each other (within a point at every budget): "
                           + "; ".join(" = ".join(g) for g in same) + ".")
            st.caption("Each curve: accuracy of a policy against its mean FLOPs per problem. Uniform policies give "
                       "every problem the same model, strategy and k; the allocated one picks them per difficulty "
                       "bin. Accuracy is 2-fold cross-validated: a problem's choice is made on the other half of the "
                       "problems, so the curves are not flattered by picking with hindsight (the band is ±1.96 SE).")
            pol = res["policy"]
            budgets = sorted(pol.budget.unique())
            default = min(budgets, key=lambda b: abs(b - res["one_sample"]["flops"]))
            budget = st.select_slider("Budget (mean FLOPs per problem)", budgets, value=default,
                                      format_func=compact, key="alloc_budget", bind=URL)
            at = pol[pol.budget == budget].assign(
                bin=lambda d: [f"{'easiest' if b == 0 else 'hardest' if b == res['bins'] - 1 else f'bin {b + 1}'}"
                               f" ({s:.0%})" for b, s in zip(d.bin, d.share)],
                option=lambda d: [f"{m} · {strategies.short_label(s) if k > 1 else 'one sample'}"
                                  + (f" · k={k}" if k > 1 else "") for m, s, k in zip(d.model, d.strategy, d.k)])
            st.markdown(f"**What to do within {compact(budget)} FLOPs per problem**, per difficulty bin (chosen on all "
                        "problems), next to the best single option for every problem within the same budget:")
            common.dataframe(at[["bin", "option", "accuracy", "flops", "uniform", "uniform_accuracy", "uniform_flops"]],
                             shares=["accuracy", "uniform_accuracy"], hide_index=True, width="stretch", column_config={
                             "accuracy": st.column_config.NumberColumn("accuracy in bin"),
                             "flops": st.column_config.NumberColumn("FLOPs", format="compact"),
                             "uniform": st.column_config.TextColumn("uniform option"),
                             "uniform_accuracy": st.column_config.NumberColumn("uniform accuracy"),
                             "uniform_flops": st.column_config.NumberColumn("uniform FLOPs", format="compact")})
            common.download_buttons(res["curves"], "allocation_curves", key="alloc_dl")

if tab_stop.open:
    with tab_stop:
        c1, c2 = st.columns([2, 3])
        rule_spec = c1.selectbox("Stop by", ua.stopping.stoppable(chosen), key="stop_rule", bind=URL,
                                 format_func=ua.stopping.rule_label)
        rule = ua.stopping.rule_of(rule_spec)
        grid = ua.stopping.GRID[rule]
        # a threshold per rule (its own link key): one slider for both carried the majority rule's value over to
        # the verifier rule on screen but not into the link, so a shared link opened at another threshold
        threshold = c2.select_slider("Threshold", grid, value=ua.stopping.DEFAULT[rule], key=f"stop_threshold_{rule}",
                                      bind=URL)
        st.caption("Majority: draw one sample at a time and stop when P(leading answer's share > runner-up's) under a "
                   "Beta posterior reaches the threshold. Verifier: stop at the first sample the scorer rates at or "
                   "above the threshold. Both stop at the sample budget; each problem is simulated over 16 random "
                   "orders of its cached samples.")
        sim = common.guarded(ua.stop, *key, rule_spec, rule, grid)
        if sim is not None and not sim.empty:
            fixed = [b for b in blocks if b.strategy == rule_spec]
            fixed_df = pd.DataFrame([dict(model=b.model, k=k, accuracy=float(b.acc[:, j].mean()))
                                     for b in fixed for j, k in enumerate(b.ks)])
            st.markdown("\n".join(f"- {line}" for line in ua.stopping.summary(sim[sim.threshold == threshold])))
            st.plotly_chart(ua.stopping_figure(sim, fixed_df, colors, chosen=threshold), width="stretch",
                            config=common.chart_config("stop_fig"), key="stop_fig")
            st.caption("Points: the adaptive rule, one per threshold (what was measured). The faint line between two "
                       "points: what mixing those two thresholds at random per problem reaches (a straight line in "
                       "samples, curved on this log axis), not a measured threshold; across a long jump it runs "
                       "below the fixed-k curve, as any mix of two settings does. The majority rule cannot stop surer than 0.75 after one "
                       "vote or 0.875 after two, so low thresholds all stop at once and the points jump from one "
                       "sample to several. Dotted: the same strategy with a fixed k. Points above the dotted line of "
                       "their model get more accuracy per sample than a fixed budget.")

if tab_ens.open:
    with tab_ens:
        c1, c2, c3 = st.columns(3)
        method = c1.selectbox("Pool by", ua.ensembles.methods(chosen), key="ens_method", bind=URL,
                              format_func=ua.ensembles.method_label)
        names = sorted({b.model for b in blocks}, key=lambda m: lms["names"].index(m) if m in lms["names"] else 0)
        if len(names) < 2:
            st.info("Needs cached samples from at least two model sizes.")
        else:
            a = c2.selectbox("Model A", names, index=0, key="ens_a", bind=URL)
            b = c3.selectbox("Model B", [m for m in names if m != a], index=len(names) - 2, key="ens_b", bind=URL)
            ens = common.guarded(ua.ensemble, *key, method, (a, b))
            if ens is not None and not ens.empty:
                st.markdown(ua.ensembles.summary(ens))
                st.plotly_chart(ua.ensemble_figure(ens), width="stretch", config=common.chart_config("ens_fig"),
                                key="ens_fig")
                st.caption("Each cell: k_a samples of model A plus k_b of model B, pooled; its accuracy minus the best "
                           "single-model option (any model, any strategy you picked) costing no more FLOPs, in "
                           "percentage points. Blue: the "
                           "ensemble wins; ✓: beyond noise (paired over problems, 95%).")

if tab_fit.open:
    with tab_fit:
        n = exp.params.n
        fit_samples = max(2, n // 4)
        out = common.guarded(ua.fit, *key, fit_samples, n)
        if out is not None:
            table, curve = out
            levels = ["all"] + sorted(int(x) for x in table.level.dropna().unique())
            level = st.radio("Level", levels, horizontal=True, key="fit_level", bind=URL)
            sel = (lambda d: d.level.isna()) if level == "all" else (lambda d: d.level == level)
            st.markdown("\n".join(f"- {line}" for line in ua.fits.summary(table)))
            st.plotly_chart(ua.fit_figure(curve[sel(curve)], colors), width="stretch",
                            config=common.chart_config("fit_fig"), key="fit_fig")
            st.caption(f"Dots: coverage measured from {n} samples. Solid: Beta fit of per-problem success rates; "
                       "dashed: power law -log(coverage) = a·k^-b; bands: 95% bootstrap over problems. Coverage needs "
                       "a perfect verifier: it is the ceiling, not what majority or best-of-N reach.")
            st.plotly_chart(ua.residual_figure(curve[sel(curve)], colors), width="stretch",
                            config=common.chart_config("fit_residuals"), key="fit_residuals")
            st.caption("Residuals of the fits on all samples (solid: Beta, dashed: power law): a fit that is right "
                       "on average can still bend away from the data at the largest k, which is where extrapolation "
                       "starts.")
            t = table[sel(table)][["model", "form", "predicted", "lo", "hi", "measured", "residual", "quality",
                                   "pass@1024", "pass@10000"]]
            st.markdown(f"**Honest check**: fitted on the first {fit_samples} samples, predicting pass@{n}:")
            # in points, beside the percentages
            common.dataframe(t.assign(residual=t["residual"] * 100),
                             shares=["predicted", "lo", "hi", "measured", "pass@1024", "pass@10000"],
                             hide_index=True, width="stretch", column_config={
                                 "lo": st.column_config.NumberColumn("95% low"),
                                 "hi": st.column_config.NumberColumn("95% high"),
                                 "residual": st.column_config.NumberColumn(
                                     "measured − predicted (points)", format="%+.1f",
                                     help="Measured minus predicted, in percentage points: the sign of the "
                                          "residual chart above"),
                                 "quality": st.column_config.TextColumn(
                                     "fit", help="poor: off by over 2 points and outside its 95% band; uncertain: "
                                                 "off by over 2 points or a band over 10 points wide, yet inside "
                                                 "it; good: neither")})
