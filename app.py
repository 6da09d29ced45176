"""Model size vs test-time compute: ``streamlit run app.py``.

The router. Page files live in ``app_pages/``, not ``pages/``: Streamlit treats
a ``pages/`` folder beside the entry script as an old-style multipage app and,
on a deep link to a freshly started server, runs that page without this file.
The sidebar (cache file, device) is shared; pages read it via ``ui.common.context()``.
"""
import streamlit as st

from ui import common

st.set_page_config(page_title="Model size vs test-time compute", page_icon=":material/insights:",
                   layout="wide")

PAGES = [
    st.Page("app_pages/explore.py", title="Explore", icon=":material/explore:", default=True),
    st.Page("app_pages/size_vs_compute.py", title="Size vs compute", icon=":material/compare_arrows:",
            url_path="size-vs-compute"),
    st.Page("app_pages/inspector.py", title="Problem inspector", icon=":material/search:", url_path="inspector"),
    st.Page("app_pages/planner.py", title="Planner", icon=":material/calculate:", url_path="planner"),
    st.Page("app_pages/models_data.py", title="Models & data", icon=":material/database:", url_path="models-data"),
]

page = st.navigation(PAGES)
common.set_context(common.sidebar())
page.run()
