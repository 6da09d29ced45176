"""Model size vs test-time compute: ``streamlit run app.py``.

The router. Page files live in ``pages/``; each page's URL path is its file name
(``/size_vs_compute``, ``/planner``...). Streamlit runs a file in ``pages/``
directly on the first request to a fresh server, so every page starts with
``common.require_router()``, which runs this file instead.
The sidebar (cache file, device) is shared; pages read it via ``ui.common.context()``.
"""
import streamlit as st

from ui import common

st.set_page_config(page_title="Model size vs test-time compute", page_icon=":material/insights:",
                   layout="wide")

# url paths are the file names (Streamlit's default), so the legacy pages/ mode and this router agree
PAGES = [
    st.Page("pages/explore.py", title="Explore", icon=":material/explore:", default=True),
    st.Page("pages/size_vs_compute.py", title="Size vs compute", icon=":material/compare_arrows:"),
    st.Page("pages/inspector.py", title="Problem inspector", icon=":material/search:"),
    st.Page("pages/verifiers.py", title="Verifiers", icon=":material/verified:"),
    st.Page("pages/allocation.py", title="Compute allocation", icon=":material/tune:"),
    st.Page("pages/planner.py", title="Planner", icon=":material/calculate:"),
    st.Page("pages/models_data.py", title="Models & data", icon=":material/database:"),
]

page = st.navigation(PAGES)
common.set_context(common.sidebar())
common.ensure_shipped(common.context())  # a new cache starts full: every page has plots on first open
page.run()
