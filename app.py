"""Model size vs test-time compute: ``streamlit run app.py``.

The router: page files live in ``pages/``; the sidebar (cache file, device)
is shared and its values reach the pages through ``ui.common.context()``.
"""
import streamlit as st

from ui import common

st.set_page_config(page_title="Model size vs test-time compute", page_icon=":material/insights:",
                   layout="wide")

PAGES = [
    st.Page("pages/explore.py", title="Explore", icon=":material/explore:", url_path="explore", default=True),
    st.Page("pages/size_vs_compute.py", title="Size vs compute", icon=":material/compare_arrows:",
            url_path="size-vs-compute"),
    st.Page("pages/inspector.py", title="Problem inspector", icon=":material/search:", url_path="inspector"),
    st.Page("pages/planner.py", title="Planner", icon=":material/calculate:", url_path="planner"),
    st.Page("pages/models_data.py", title="Models & data", icon=":material/database:", url_path="models-data"),
]

page = st.navigation(PAGES)
common.set_context(common.sidebar())
page.run()
