"""Verifiers: how well each scorer ranks one problem's samples, and what that does to best-of-N."""
import streamlit as st

from engine import scorers, strategies
from engine.analysis import corruptions, scorer_quality
from engine.experiment import Experiment
from ui import common, figures
from ui.common import URL

common.require_router()  # a deep link to a fresh server runs this file without app.py

AUCS = [round(0.5 + 0.05 * i, 2) for i in range(11)]

ctx = common.context()
st.title("Verifiers")
st.caption("Best-of-N is only as good as its verifier: how each scorer ranks the samples of one problem, and how "
           "far that moves best-of-N from majority vote towards the oracle.")

cache, lms = common.cache_and_models(ctx)

# ---- controls -------------------------------------------------------------------
with st.container(border=True):
    c1, c2, c3 = st.columns([2, 2, 1])
    model = c1.selectbox("Model", lms["names"], index=lms["names"].index(lms["ladder"][0]), key="model", bind=URL)
    task_name, task = common.task_picker(ctx["root"], c2)
    if task is None:
        st.stop()
    problems, budget = common.default_size(task_name)
    n_problems = c3.number_input("Problems", min_value=1, max_value=len(task.problems),
                                 value=min(problems, len(task.problems)), step=10, key="problems", bind=URL)
    c1, c2 = st.columns([2, 1])
    params = common.sampling_widgets(c1, c2, budget)
    exp = common.guarded(Experiment.build, [model], task_name, params, int(n_problems), datasets=ctx["root"])
    if exp is None:
        st.stop()
names = common.scorer_options()
note = common.missing_scorers_note()
if note:
    st.caption(note)


@st.cache_data(show_spinner="Measuring the scorers…", max_entries=16)
def quality(exp: Experiment, names: tuple, cache_path: str, cache_version: int):
    return scorer_quality.verifier_table(common.get_cache(cache_path), exp, list(names), recorded=True)


@st.cache_data(show_spinner="Sweeping the simulated verifier's AUROC…", max_entries=16)
def sweep(exp: Experiment, cache_path: str, cache_version: int):
    return scorer_quality.simulated_sweep(common.get_cache(cache_path), exp, AUCS)


GOLD_PROBLEMS = 100  # the corruption test scores new texts with every scorer: 500 problems took 25 s, 100 take 5


@st.cache_data(show_spinner="Scoring gold solutions against corrupted copies…", max_entries=16)
def gold_vs_corrupted(exp: Experiment, names: tuple):
    return corruptions.gold_beats_corrupted(exp.load_task(), list(names), exp.selected(), models=exp.models,
                                            recorded=True)


def gold_problems(exp: Experiment, names) -> int:
    """Problems to score: all selected where the shipped record holds these scorers (nothing to score), else at
    most GOLD_PROBLEMS."""
    return exp.problems if corruptions.all_recorded(exp.load_task(), names, exp.models) else \
        min(exp.problems, GOLD_PROBLEMS)


version = common.cache_version(ctx["cache_path"])
common.data_notes(cache, exp)
table = common.guarded(quality, exp, tuple(names), ctx["cache_path"], version)
if table is None:
    st.stop()
if table.empty:
    common.nothing_cached(f"{model} at these settings", common.explore_link_params(exp))
    st.stop()
k = exp.params.n
table = table.assign(label=table["scorer"].map(scorers.short_label),
                     key=["yes (simulation)" if scorers.needs_key(s) else "no" for s in table["scorer"]])
first = table.iloc[0]

# ---- quality table ----------------------------------------------------------------
st.subheader(f"Each scorer on {model}")
st.markdown(f"With {k} samples per problem, **majority vote** answers {first['majority']:.1%} and the **oracle** "
            f"(pass@{k}, any sample right) {first['pass']:.1%}. A verifier is worth its compute when best-of-{k} "
            "closes part of that gap; a negative share means it picks worse answers than the vote.")
common.dataframe(table[["label", "key", "pooled_auroc", "within_problem_auroc", "step_auroc", "best_of_k",
                        "gap_closed", "problems"]], shares=["best_of_k", "gap_closed"],
                 dashes={"step_auroc": "{:.3f}"}, hide_index=True, width="stretch", key="quality_table",
                 column_config={
                     "label": st.column_config.TextColumn("scorer"),
                     "key": st.column_config.TextColumn("reads the answer key"),
                     "pooled_auroc": st.column_config.NumberColumn("pooled AUROC", format="%.3f",
                                                                   help="Right vs wrong samples of all problems mixed: "
                                                                        "rewards telling easy problems from hard ones"),
                     "within_problem_auroc": st.column_config.NumberColumn(
                         "within-problem AUROC", format="%.3f",
                         help="Chance that a right sample outscores a wrong one of the same problem (what best-of-N "
                              "needs); averaged over problems with both; 0.5 is guessing"),
                     "step_auroc": st.column_config.TextColumn(
                         "step-level AUROC",
                         help="PRMs: step scores against per-line labels (is this line right given the one before), "
                              "pooled over all lines; a dash for other scorers and for tasks without gold steps"),
                     "best_of_k": st.column_config.NumberColumn(f"best-of-{k}"),
                     "gap_closed": st.column_config.NumberColumn("gap closed",
                                                                 help="Share of the gap from majority vote to the "
                                                                      "oracle that best-of-N closes: (best-of-N − "
                                                                      "majority) / (oracle − majority)"),
                     "problems": st.column_config.NumberColumn(
                         "problems with both", help="Problems with both right and wrong samples (of the "
                                                    "problems selected): the within-problem AUROC averages over "
                                                    "these")})
sims = [label for label, key in zip(table["label"], table["key"]) if key != "no"]
if sims:  # fixed reference points; the slider below moves one more, which these rows do not follow
    st.caption(f"{' and '.join(sims)}: simulated verifiers at fixed quality, as yardsticks for the real ones; the "
               "slider under *Best-of-N between majority vote and the oracle* sets a third one's quality.")

# only the open tab runs (its choice is in the link): the corruption test scores new texts with every scorer,
# seconds that the best-of-N tab's readers need not wait for
tab_bon, tab_gold = st.tabs(["Best-of-N between majority vote and the oracle",
                             "Gold solution against a corrupted copy"], key="ver_tab", on_change="rerun", bind=URL)

# ---- best-of-N curves and the AUROC slider -------------------------------------------
if tab_bon.open:
    with tab_bon:
        auc = st.slider("Simulated verifier's within-problem AUROC", 0.5, 1.0, 0.8, 0.05, key="auc", bind=URL,
                        help="A verifier that reads the answer key and ranks a right sample above a wrong one of the same "
                             "problem with this probability (equal-variance Gaussian scores); 0.5 is guessing, 1 the oracle")
        specs = ["oracle", "majority"] + [f"best_of_n:{s}" for s in names if not scorers.needs_key(s)] \
            + [f"best_of_n:simulated-{auc:g}"]
        curves = common.curves_for(ctx, exp.replace(strategies=specs))
        sw = common.guarded(sweep, exp, ctx["cache_path"], version)
        if curves is None or curves.empty or sw is None or sw.empty:
            st.stop()
        left, right = st.columns(2)
        left.markdown(f"**Accuracy of {model} against samples, by how the answer is picked**")
        left.plotly_chart(figures.verifier_curves_figure(curves), width="stretch",
                          config=common.chart_config("verifier_curves"),
                          key="verifier_curves")
        right.markdown(f"**Best-of-{k} against verifier quality**")
        real = table[~table["scorer"].map(scorers.needs_key)]  # the scorers a deployed system could run
        right.plotly_chart(figures.verifier_quality_figure(sw, real, auc),
                           width="stretch", config=common.chart_config("verifier_quality"), key="verifier_quality")
        same_lines = figures.coinciding(curves.sort_values("k"), "strategy", ["k", "accuracy"], decimals=2)
        if same_lines:
            left.caption("Drawn on top of each other (within a point at every k): " + "; ".join(
                " = ".join(strategies.short_label(s) for s in g) for g in same_lines) + ".")
        # about a marker's width on this chart: 0.012 of AUROC, 2 points of accuracy
        same_points = figures.overlapping(real, "label", "within_problem_auroc", "best_of_k", 0.012, 0.02)
        if same_points:
            right.caption("Markers on top of each other: " + "; ".join(" = ".join(g) for g in same_points)
                          + " (best-of-N within 2 points, within-problem AUROC within 0.012).")

        at = sw.loc[(sw["auc"] - auc).abs().idxmin()]
        need = scorer_quality.auc_needed(sw, float(first["majority"]))
        real = real.sort_values("best_of_k", ascending=False)
        lines = [f"At AUROC {auc:g} the simulated verifier's best-of-{k} answers {at['accuracy']:.1%}, between majority "
                 f"vote ({first['majority']:.1%}) and the oracle ({first['pass']:.1%})."]
        if need is not None:
            lines.append(f"It beats majority vote only from an AUROC of about {need:.2f}: a verifier has to rank one "
                         "problem's samples well, not just tell easy problems from hard ones, before more samples help.")
        if not real.empty:
            best = real.iloc[0]
            if best["best_of_k"] > first["majority"]:
                lines.append(f"The best scorer you could deploy here, {best['label']} (within-problem AUROC "
                             f"{best['within_problem_auroc']:.2f}), reaches {best['best_of_k']:.1%}, closing "
                             f"{best['gap_closed']:.1%} of the gap; the oracle shows what sampling already holds.")
            else:
                lines.append(f"No scorer you could deploy here beats majority vote: the closest, {best['label']} "
                             f"(within-problem AUROC {best['within_problem_auroc']:.2f}), reaches {best['best_of_k']:.1%} "
                             f"against the vote's {first['majority']:.1%}; the oracle shows what sampling already holds.")
            worse = real[real["best_of_k"] < real["single"]]
            if k > 1 and not worse.empty:  # below picking one sample at random: more samples made the pick worse
                names_ = list(worse["label"])
                said = names_[0] if len(names_) == 1 else ", ".join(names_[:-1]) + " and " + names_[-1]
                lines.append(f"{said} {'do' if len(worse) > 1 else 'does'} worse than a single "
                             f"sample ({worse['best_of_k'].max():.1%} at most against {first['single']:.1%}): "
                             f"{'their' if len(worse) > 1 else 'its'} top-rated sample of {k} is more often wrong than a "
                             "random one, so drawing more samples for it lowers accuracy.")
        st.markdown(" ".join(lines))
        st.caption("A measured scorer below the line does worse than a simulated one of the same AUROC: best-of-N takes "
                   "its single top-rated sample, and a real scorer's mistakes are not random: it can prefer the same "
                   "wrong answer on the problems that matter, which an average ranking quality hides.")
        st.caption("The simulated verifier's scores are Gaussian draws seeded per sample, shifted up for right samples "
                   "by the amount that gives the chosen AUROC, so moving the slider moves one verifier's quality and "
                   "nothing else. As in [Brown et al. 2024](https://arxiv.org/abs/2407.21787) (sec. 4), coverage keeps "
                   "growing with samples; what a deployed system gets from them is decided by the verifier.")

# ---- does it check the arithmetic? ----------------------------------------------------
if tab_gold.open:
    with tab_gold:
        if task_name != "arith":
            st.caption("Needs the arith task's worked solutions.")
            st.stop()
        on = gold_problems(exp, names)
        g = common.guarded(gold_vs_corrupted, exp.replace(problems=on), tuple(names))
        if g is None or g.empty:
            st.stop()
        g = g.assign(scorer=g["scorer"].map(scorers.short_label)
                     + g["model"].map(lambda m: f" ({m})" if isinstance(m, str) else ""))
        pivot = g.pivot_table(index=["scorer", "corruption"], columns="level", values="rate", sort=False)
        pivot.columns = [f"L{c}" for c in pivot.columns]
        # every level's pairs together: the narrowest interval, and what the README quotes
        pivot["all"] = corruptions.pooled(g).set_index(["scorer", "corruption"])["rate"].reindex(pivot.index)
        common.dataframe(pivot.reset_index(), shares=list(pivot.columns), hide_index=True, width="stretch",
                         height=35 * (len(pivot) + 1) + 3, key="corruption_table")  # every row: the caption names some
        st.caption((f"On {on} of the {exp.problems} selected problems (the first of each level in turn)"
                    if on < exp.problems else f"On the {on} selected problems") + ": how "
                   "often each scorer rates a problem's gold solution above a copy with one mistake put in: a result "
                   "nudged (a calculation slip), an operand miscopied from the story (a misreading, computed correctly) "
                   "or a step skipped; ties count half, so 50% is a coin flip. The step checker catches every slip and no "
                   "misreading. Self-likelihood reads the model's own probability of each text, as if it had sampled it.")
        few, most = int(g["pairs"].min()), int(g["pairs"].max())
        st.caption(f"Each level's cell counts {few if few == most else f'{few} to {most}'} gold-and-copy pairs: at "
                   f"{few}, a rate's 95% interval spans up to ±{98 / few ** 0.5:.0f} points (at 50%), so cells closer "
                   "than that are not reliably different; the \"all\" column pools the levels. "
                   + (f"At most {GOLD_PROBLEMS} problems are scored here (every scorer reads new texts: about 5 s "
                      "per 100 problems)." if on < exp.problems else "More problems (above) narrow it."
                      if on < len(exp.load_task().problems) else "These are all the task's problems."))
