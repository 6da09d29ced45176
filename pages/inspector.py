"""Problem inspector: every sample of one problem, what majority vote sees, and where a verifier's pick lands."""
import pandas as pd
import streamlit as st

from engine import analysis, planning, registry, strategies
from engine.experiment import Experiment
from ui import common, figures
from ui.common import URL

common.require_router()  # a deep link to a fresh server runs this file without app.py

MAX_CARDS = 64

ctx = common.context()
st.title("Problem inspector")
st.caption("One problem up close: each sample's answer and reasoning, the vote, and the sample a strategy picks.")

cache, lms = common.cache_and_models(ctx)


@st.cache_data(show_spinner=False, max_entries=16)
def telling(exp: Experiment, ids: tuple, cache_path: str, cache_version: int):
    return analysis.telling_problem(common.get_cache(cache_path), exp, list(ids))


# ---- controls -------------------------------------------------------------------
with st.container(border=True):
    c1, c2 = st.columns([1, 1])
    model = c1.selectbox("Model", lms["names"], index=lms["names"].index(lms["ladder"][0]), key="model", bind=URL)
    task_name, task = common.task_picker(ctx["root"], c2)
    if task is None:
        st.stop()
    by_id = task.by_id()
    c1, c2 = st.columns([2, 1])
    params = common.sampling_widgets(c1, c2, common.default_size(task_name)[1])
    strategy = common.strategy_picker()
    note = common.missing_scorers_note()
    if note:
        st.caption(note)
    exp = common.guarded(Experiment.build, [model], task_name, params, strategies=[strategy], datasets=ctx["root"])
    if exp is None:
        st.stop()
    sampled = common.guarded(planning.problems_with_samples, cache, exp) or []
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    only = c2.toggle(f"Only the {len(sampled)} problems with samples", value=bool(sampled), key="only_sampled",
                     bind=URL, disabled=not sampled,
                     help=f"Problems that have samples of {model} at these sampling settings")
    linked = st.query_params.get("problem")  # a link to an unsampled problem still opens it (empty state)
    ids = [i for i in by_id if i in set(sampled) or i == linked] if only and sampled else list(by_id)
    # opens on a problem whose pool holds a right answer the vote misses (a link's problem wins)
    first = common.guarded(telling, exp, tuple(ids), ctx["cache_path"], common.cache_version(ctx["cache_path"]))
    # no format_func: a bound selectbox puts its label in the URL, and the id is the stable, short one
    problem_id = c1.selectbox("Problem (id)", ids, index=ids.index(first) if first in ids else 0, key="problem",
                              bind=URL, help="Opens on a problem whose samples hold a right answer that majority "
                                             "vote misses. Explore samples the first problems of each level "
                                             "(…-L1-000, …-L2-000, …): those are cached first")

problem = by_id[problem_id]
q1, q2 = st.columns([4, 1])
with q1.container(border=True):
    level = f" (difficulty L{problem.difficulty})" if problem.difficulty is not None else ""
    st.text(f"{problem_id}{level}")  # ids come from user data: shown as text, never rendered as markdown
    st.text(problem.question)
q2.metric("Gold answer", str(problem.answer))


@st.cache_data(show_spinner="Loading samples…", max_entries=64)
def problem_samples(exp: Experiment, problem_id: str, task_version: float, cache_path: str, cache_version: int):
    return analysis.problem_view(common.get_cache(cache_path), exp, problem_id)


view = common.guarded(problem_samples, exp, problem_id, registry.task_version(task_name, ctx["root"]),
                      ctx["cache_path"], common.cache_version(ctx["cache_path"]))
if view is None:
    st.stop()
samples = view["samples"]
if samples.empty:
    common.nothing_cached(f"{model} on {common.plain(problem_id)} at temperature {params.temperature:g}",
                          common.explore_link_params(exp))
    st.stop()

# ---- summary ------------------------------------------------------------------------
pick, hist = view["pick"], view["histogram"]
voted = hist[hist["answer"] != "(none)"]
n, c = len(samples), int(samples["correct"].sum())
m1, m2, m3, m4 = st.columns(4)
m1.metric("Samples", n)
m2.metric("Correct", f"{c} / {n}")
top = voted[voted["count"] == voted["count"].max()] if not voted.empty else voted
# a tie reads "0 or 2 (tie)": "0 / 2" beside "Correct 5 / 16" read as a fraction
m3.metric("Most common answer", (" or ".join(map(str, top["answer"])) + (" (tie)" if len(top) > 1 else ""))
          if not top.empty else "–", help="What majority vote picks; samples without an answer do not vote")
picked_answer = None
if pick is not None:
    row = samples.iloc[pick]
    picked_answer = "(none)" if pd.isna(row["answer"]) else str(row["answer"])
    m4.metric(f"Pick ({strategies.short_label(strategy)})", f"#{int(row['idx'])}: {picked_answer}",
              delta="correct" if view["pick_correct"] else "wrong",
              delta_color="normal" if view["pick_correct"] else "inverse", delta_arrow="off")
else:
    m4.metric(f"Pick ({strategies.short_label(strategy)})", "none",
              help="The strategy returns nothing: no sample is correct (oracle) or none gave an answer (votes).")

if len(top) > 1:
    st.caption(f"A {len(top)}-way tie at the top of the vote: majority vote picks one of them at random, so the accuracy "
               f"curves count it as right with probability {int(top['correct'].any())}/{len(top)}; "
               "the pick shown is one of the tied answers.")

if len(view["tied"]) > 1:  # a pick beside an equal, lower-numbered score looked arbitrary
    tied = samples.iloc[view["tied"]]
    score = f" ({tied['score'].iloc[0]:.3f})" if "score" in tied else ""
    right = int(tied["correct"].sum())
    odds = ("all of them are right, so the pick is right whichever it is" if right == len(tied) else
            "none of them is right" if right == 0 else
            f"so the accuracy curves count the pick as right with probability {right}/{len(tied)}")
    st.caption(f"{len(tied)} samples share the top score{score}: the strategy picks one of them at random "
               f"(seeded), and the pick shown is one of them; {odds}.")

h1, h2 = st.columns([3, 2])
with h1:
    st.markdown("**Answers sampled** (green: correct; outlined: the pick)")
    st.plotly_chart(figures.answer_histogram(hist, picked_answer), width="stretch",
                    config=common.chart_config("answer_histogram"),
                    key="answer_histogram")
with h2:
    st.markdown("**Every sample**")
    cols = ["idx", "answer", "correct"] + (["score"] if "score" in samples else []) + ["completion_tokens",
                                                                                       "finish"]
    table = samples[cols]
    st.dataframe(figures.highlight_row(table, pick) if pick is not None else table, hide_index=True,
                 width="stretch", key="samples_table",
                 column_config={"idx": st.column_config.NumberColumn("#"),
                                "score": st.column_config.NumberColumn("score", format="%.3f"),
                                "completion_tokens": st.column_config.NumberColumn("tokens")})

# ---- the samples themselves ----------------------------------------------------------
st.subheader("Solutions")
if view["steps"]:
    st.caption("Each line is shaded by the PRM's score for that step: red (likely wrong) to green (likely right).")
order = list(samples.index)
if pick is not None:
    order = [pick] + [i for i in order if i != pick]  # the pick first
shown = order[:MAX_CARDS]
cards = "".join(figures.sample_card_html(
    samples.at[i, "idx"], samples.at[i, "text"], samples.at[i, "answer"], bool(samples.at[i, "correct"]),
    samples.at[i, "score"] if "score" in samples else None,
    samples.at[i, "step_scores"] if "step_scores" in samples else None, picked=(i == pick)) for i in shown)
st.html(f'<div class="ttc-samples">{cards}</div>')
if len(order) > len(shown):
    st.caption(f"Showing {len(shown)} of {len(order)} samples; the table above lists them all.")
