"""Models & data: the model ladder, added models, uploaded datasets, and the sample cache."""
import streamlit as st

from engine import registry
from engine.errors import EngineError
from engine.experiment import Experiment
from ui import common
from ui.common import URL

common.require_router()  # a deep link to a fresh server runs this file without app.py

KIND_LABELS = {"lm": "a language model (to sample from)",
               "verifier": "a verifier (sequence or token classifier, to score samples)"}

ctx = common.context()
root = ctx["root"]
st.title("Models & data")
section = st.segmented_control("Section", ["Models", "Datasets", "Cache"], default="Models",
                               key="section", bind=URL, label_visibility="collapsed") or "Models"


# column names taken for the question and the answer when a file is mapped (a guess the user can change)
GUESS = {"question": ("question", "problem", "prompt", "input"), "answer": ("answer", "target", "solution", "output")}

def models_section():
    table = common.guarded(common.models_table, root)
    if table is None:
        return
    if table.empty:
        st.info("No models yet. Shipped models appear under `data/models/` as training finishes "
                "(`python -m engine.train ladder`); or add a local model directory below.")
    else:
        view = table.assign(size=table["disk_bytes"].map(common.human_bytes))
        st.dataframe(
            view[["name", "kind", "origin", "params", "training_flops", "training_tokens", "size", "source"]],
            hide_index=True, width="stretch",
            column_config={
                "params": st.column_config.NumberColumn("parameters", format="compact"),
                "training_flops": st.column_config.NumberColumn("training FLOPs", format="compact"),
                "training_tokens": st.column_config.NumberColumn("training tokens", format="compact"),
                "size": st.column_config.TextColumn("on disk"),
            })
    quality_section()
    st.subheader("Add a model")
    if common.SERVER_MODE:
        st.info("Hosted mode: models are added by the host (a server never loads a directory or file a visitor "
                "names, nor sends requests to an address a visitor gives).")
        return
    with st.form("add_model", clear_on_submit=False):
        path = st.text_input("Local model directory", key="add_model_path",
                             placeholder="/path/to/model (config.json + weights, Hugging Face format)")
        kind = st.radio("It is", list(KIND_LABELS), format_func=KIND_LABELS.get, horizontal=True, key="add_kind")
        submitted = st.form_submit_button("Validate and add", icon=":material/add:")
    if submitted:
        with st.spinner("Loading the model to check it..."):
            row = common.guarded(registry.add_model, path, root, kind)
        if row:
            common.models_table.clear()
            where = ("selectable on Explore" if row["kind"] == "lm"
                     else "a scorer for best-of-N and weighted voting on every page")
            st.success(f"Added {row['name']} ({row['params']:,} parameters). It is now {where}.")
    add_gguf_and_endpoint()
    added = [r["name"] for r in common.guarded(registry.added_models, root) or []]
    if added:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        name = c1.selectbox("Remove an added model from the list (its files are kept)", added, key="remove_model")
        if c2.button("Remove", key="remove_model_btn"):
            registry.remove_model(name, root)
            common.models_table.clear()
            st.rerun()


def add_gguf_and_endpoint():
    with st.form("add_gguf"):
        path = st.text_input("GGUF file on this machine", key="gguf_path",
                             placeholder="/path/to/model.gguf (llama.cpp format; converted once into models/)")
        submitted = st.form_submit_button("Import and add", icon=":material/download:")
    if submitted:
        with st.spinner("Converting the GGUF file (a minute for a 135M model; once per file)..."):
            row = common.guarded(registry.import_gguf_model, path, root)
        if row:
            common.models_table.clear()
            st.success(f"Added {row['name']} ({row['params']:,} parameters). It is now selectable on Explore.")
    with st.form("add_endpoint"):
        st.write("A model on an OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama, `python -m engine serve`)")
        c1, c2 = st.columns(2)
        url = c1.text_input("API base URL", key="ep_url", placeholder="http://127.0.0.1:8000/v1")
        model = c2.text_input("Model id", key="ep_model", placeholder="as the server's /v1/models lists it")
        c1, c2, c3 = st.columns(3)
        key_env = c1.text_input("API key variable (optional)", key="ep_key_env", placeholder="VLLM_KEY",
                                help="The NAME of an environment variable of the app's process that holds the key; "
                                     "the key itself is never entered, stored or shown.")
        params = c2.text_input("Parameters (optional)", key="ep_params", placeholder="135M",
                               help="For FLOPs when the server does not report a count: 135M, 1.5B or 1.35e8.")
        revision = c3.text_input("Revision (optional)", key="ep_revision",
                                 help="Part of the cache key: change it when the server's weights change.")
        submitted = st.form_submit_button("Check and add", icon=":material/cloud:")
    if submitted:
        with st.spinner("Asking the server..."):
            row = common.guarded(registry.add_endpoint, url, model, root, key_env, params, revision)
        if row:
            common.models_table.clear()
            st.success(f"Added {row['name']} ({row['params']:,} parameters, {row['family']}). "
                       "It is now selectable on Explore.")


def quality_section():
    ev = registry.ladder_evaluation()
    if ev:
        st.subheader("How good the shipped ladder is")
        s = ev["settings"]
        rows = [{"model": m["name"], "params": m["params"], **{k: round(m[k], 3) for k in ("pass@1", "pass@8", "pass@64")},
                 **{f"L{lv} pass@1": round(v, 3) for lv, v in m["levels"].items()}} for m in ev["models"]]
        pct = [c for c in rows[0] if c not in ("model", "params")]
        common.dataframe(rows, shares=pct, hide_index=True, width="stretch",
                         column_config={"params": st.column_config.NumberColumn("parameters", format="compact")})
        st.caption(f"All {s['problems']} `{s['task']}` test problems, {s['n']} samples each at temperature "
                   f"{s['temperature']}; measured by `{ev['command']}`.")
        if ev["stale"]:
            st.warning(f"{', '.join(ev['stale'])} changed since this was measured; rerun `{ev['command']}`.")
    vq = registry.verifier_quality()
    if vq:
        st.subheader("How good the verifiers are")
        common.dataframe(vq, shares=["gold_beats_nudged"], hide_index=True, width="stretch",
                         column_order=["verifier", "unit", "source", "auroc", "within_problem_auroc", "n",
                                       "gold_beats_nudged"],
                         column_config={"auroc": st.column_config.NumberColumn("held-out AUROC (pooled)", format="%.3f"),
                                    "within_problem_auroc": st.column_config.NumberColumn(
                                        "held-out AUROC within a problem", format="%.3f"),
                                    "n": st.column_config.NumberColumn("held-out items"),
                                    "gold_beats_nudged": st.column_config.TextColumn(
                                        "gold beats a nudged copy",
                                        help="How often the verifier scores a correct solution above the same "
                                             "solution with one result nudged or slipped (50% is guessing); "
                                             "measured on all held-out problems together")})
        st.caption("Pooled AUROC mixes problems, so it partly measures \"this problem looks easy\". Best-of-N "
                   "needs a scorer that ranks the samples *of one problem*; the last column checks exactly that "
                   "(a correct solution against the same solution with one result nudged or slipped): near 50% is guessing. "
                   "Held out: problems of the training distribution the verifier never saw. The \"all held-out\" "
                   "row also counts each problem's gold solution and its slipped copies, scored beside the samples "
                   "(so it holds more items than the four models' rows).")
    quality = common.guarded(scorer_quality_table, ctx["cache_path"], common.cache_version(ctx["cache_path"]))
    if quality is not None and not quality.empty:
        st.subheader("How well each scorer ranks the samples of one problem")
        from engine import scorers
        quality = quality.assign(scorer=quality["scorer"].map(scorers.short_label))  # as every other page names them
        common.dataframe(quality, dashes={"step_auroc": "{:.3f}"}, hide_index=True, width="stretch",
                         key="scorer_quality", column_config={
            "pooled_auroc": st.column_config.NumberColumn("AUROC pooled over problems", format="%.3f"),
            "within_problem_auroc": st.column_config.NumberColumn("AUROC within a problem", format="%.3f"),
            "step_auroc": st.column_config.TextColumn("PRM step-level AUROC",
                                                      help="A dash for scorers that give no step scores"),
            "problems": st.column_config.NumberColumn("problems with both", help="Problems with both right and wrong "
                                                                       "samples: the within-problem AUROC averages "
                                                                       "over these")})
        st.caption("On the shipped sweeps (every ladder model, 500 problems × 64 samples at temperature 0.8; "
                   "`python -m engine scorers --models ladder --problems 500 --n 64`). Within a problem is what "
                   "best-of-N relies on: a scorer near 0.5 there picks a wrong sample about as often as a right "
                   "one, and more candidates give it more wrong ones to prefer, so its best-of-N falls as N grows.")


@st.cache_data(show_spinner="Measuring each scorer on the shipped sweeps…", max_entries=4)
def scorer_quality_table(cache_path: str, cache_version: int):
    from engine import scorers
    from engine.analysis.scorer_quality import recorded_or_measured
    exp = Experiment.shipped()
    return None if exp is None else recorded_or_measured(common.get_cache(cache_path), exp, scorers.available())


def datasets_section():
    st.write("Bring your own problems: a JSONL, JSON or CSV file with a question and a numeric answer per row "
             "(GSM8K format works as is).")
    up = st.file_uploader("Upload a dataset", type=["jsonl", "json", "csv"], key="upload")
    if up is not None and st.session_state.get("_uploaded") != (up.name, up.size):
        saved = common.guarded(registry.save_dataset, up.name, up.getvalue(), root)
        if not saved:
            return  # the refusal is the one message: not followed by another dataset's preview
        st.session_state["_uploaded"] = (up.name, up.size)
        st.session_state["dataset"] = saved.name
    files = [p.name for p in registry.list_datasets(root)]
    if not files:
        st.info("No datasets uploaded yet: upload a file above.")
        return
    name = st.selectbox("Dataset", files, key="dataset", bind=URL)
    path = registry.datasets_dir(root) / name
    try:
        preview = registry.preview_dataset(path, 5)
        cols = registry.columns_of(path)
    except EngineError as e:
        st.error(common.plain(e))  # it quotes the file: escaped, never rendered as markdown
        return
    st.caption("Preview (first rows as read)")
    st.dataframe(preview, hide_index=True, width="stretch")
    saved = registry.load_mapping(path)
    none = "(none)"

    def pick(label, key, guess, required):
        opts = cols if required else [none] + cols
        cur = saved.get(key) or next((c for c in cols if c.lower() in guess), None)
        # a required column with no likely name starts unpicked: preselecting the first column made a file
        # without an answer column map its question as the answer
        idx = opts.index(cur) if cur in opts else None if required else 0
        return st.selectbox(label, opts, index=idx, key=f"map_{name}_{key}", placeholder="pick a column")

    st.subheader("Column mapping")
    c = st.columns(4)
    with c[0]:
        q = pick("Question", "question_col", GUESS["question"], True)
    with c[1]:
        a = pick("Answer", "answer_col", GUESS["answer"], True)
    with c[2]:
        i = pick("Id (optional)", "id_col", ("id", "uid", "problem_id"), False)
    with c[3]:
        d = pick("Difficulty (optional)", "difficulty_col", ("difficulty", "level"), False)
    unpicked = [what for what, col in (("question", q), ("answer", a)) if col is None]
    if unpicked and len(cols) < 2:
        st.error(f"{common.plain(name)} has only one column ({common.plain(cols[0]) if cols else 'none'}): a dataset "
                 "needs a question column and an answer column.")
    elif unpicked:
        st.caption(f"No column is named like the {' or the '.join(unpicked)} ("
                   + "; ".join(", ".join(GUESS[w]) for w in unpicked) + "): pick it above, or add it to the file.")
    if st.button("Check and save mapping", type="primary", key="save_mapping", disabled=bool(unpicked)):
        mapping = {"question_col": q, "answer_col": a, "id_col": None if i == none else i,
                   "difficulty_col": None if d == none else d}
        task = common.guarded(registry.save_mapping, path, mapping)
        if task is not None:
            st.success(f"{len(task.problems)} problems read. Pick **{name}** as the task on Explore.")
    elif saved:
        st.caption(f"Saved mapping: {common.plain(saved)}")


def cache_section():
    cache = common.current_cache(ctx)
    if cache is None:
        return
    stats = common.guarded(cache.stats)
    if stats is None:
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Samples cached", f"{int(stats['samples'].sum()) if len(stats) else 0:,}")
    c2.metric("Models", stats["model_fp"].nunique() if len(stats) else 0)
    c3.metric("File size", common.human_bytes(cache.size_bytes()))
    st.caption(f"`{cache.path}`")
    if stats.empty:
        st.info("The cache is empty: run a sweep on the Explore page (or `python -m engine sweep`).")
        return
    common.dataframe(stats.drop(columns=["model_fp"]), shares=["mean_correct"], hide_index=True,
                     width="stretch", column_config={"mean_correct": st.column_config.NumberColumn("mean correct")})
    pairs = stats[["model", "model_fp", "task"]].drop_duplicates()
    pairs["model"] = pairs["model"].fillna(pairs["model_fp"])
    labels = {f"{r.model} · {r.task}": (r.model_fp, r.task) for r in pairs.itertuples()}
    pick = st.selectbox("Model and task", list(labels), key="cache_pick", bind=URL)
    fp, task = labels[pick]
    stem = pick.replace(" · ", "_").replace("/", "_")
    st.write("Export its samples")
    common.download_buttons(lambda: cache.samples(model_fp=fp, task=task), f"samples_{stem}", "export")
    st.write("Delete its samples (and their verifier scores)")
    n = int(stats[(stats.model_fp == fp) & (stats.task == task)]["samples"].sum())
    if st.session_state.get("_confirm_clear") != (fp, task):
        if st.button(f"Clear {n:,} samples…", key="clear", icon=":material/delete:"):
            st.session_state["_confirm_clear"] = (fp, task)
            st.rerun()
    else:
        st.warning(f"Delete {n:,} cached samples of **{pick}**? They would have to be generated again.")
        b1, b2 = st.columns(2)
        if b1.button("Yes, delete", type="primary", key="clear_yes"):
            removed = common.guarded(cache.clear, model_fp=fp, task=task)
            st.session_state.pop("_confirm_clear", None)
            if removed is not None:
                st.toast(f"Deleted {removed:,} samples")
                st.rerun()
        if b2.button("Cancel", key="clear_no"):
            st.session_state.pop("_confirm_clear", None)
            st.rerun()


{"Models": models_section, "Datasets": datasets_section, "Cache": cache_section}[section]()
