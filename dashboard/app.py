"""Dashboard entry point: page setup, the run picker and routing, nothing else.

Run with ``streamlit run dashboard/app.py -- --artifacts DIR`` (see dashboard/settings.py).

The page files live in ``app_pages/``, not ``pages/``: a folder named ``pages`` next to
this script switches Streamlit to its legacy multipage mode for the first run of a
process (and for every AppTest run), which runs a page without this script, so without
the run picker.
"""

import streamlit as st

from dashboard import settings
from dashboard.run_picker import render_run_picker

st.set_page_config(page_title="Brain-tumor model zoo", page_icon="🧠", layout="wide")

render_run_picker(settings.artifacts_dir())

pages = [
    st.Page("app_pages/models.py", title="Models", icon=":material/leaderboard:", default=True),
    st.Page("app_pages/run_details.py", title="Run", icon=":material/description:"),
]
st.navigation(pages).run()
