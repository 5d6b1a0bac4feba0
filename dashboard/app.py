"""Dashboard entry point: page setup, the sidebar (run picker, tools) and routing, nothing else.

Run with ``streamlit run dashboard/app.py -- --artifacts DIR`` (see dashboard/settings.py).

The page files live in ``app_pages/``, not ``pages/``: a folder named ``pages`` next to
this script switches Streamlit to its legacy multipage mode for the first run of a
process (and for every AppTest run), which runs a page without this script, so without
the run picker.
"""

import streamlit as st

from bt_dashboard import presentation, settings
from bt_dashboard.run_picker import render_run_picker
from bt_dashboard.sidebar import render_sidebar_tools
from bt_dashboard.study_picker import cell_run_labels, render_study_picker

presenting = presentation.presentation_enabled()
st.set_page_config(
    page_title="Brain-tumor model zoo",
    page_icon="🧠",
    layout="wide",
    initial_sidebar_state="collapsed" if presenting else "auto",
)

study_dir = render_study_picker(settings.artifacts_dir())
run_dir = render_run_picker(settings.artifacts_dir(), cell_run_labels(study_dir))
render_sidebar_tools(run_dir)
presentation.apply_presentation_css()

pages = [
    st.Page("app_pages/models.py", title="Models", icon=":material/leaderboard:", default=True),
    st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:", url_path="data"),
    st.Page("app_pages/curves.py", title="ROC & PR curves", icon=":material/show_chart:", url_path="curves"),
    st.Page("app_pages/confusion.py", title="Confusion", icon=":material/grid_on:", url_path="confusion"),
    st.Page("app_pages/training.py", title="Training", icon=":material/timeline:", url_path="training"),
    st.Page("app_pages/calibration.py", title="Calibration", icon=":material/tune:", url_path="calibration"),
    st.Page("app_pages/significance.py", title="Significance", icon=":material/compare_arrows:",
            url_path="significance"),
    st.Page("app_pages/inspect.py", title="Inspect", icon=":material/center_focus_strong:", url_path="inspect"),
    st.Page("app_pages/shortcuts.py", title="Shortcuts", icon=":material/report:", url_path="shortcuts"),
    st.Page("app_pages/compare_runs.py", title="Compare runs", icon=":material/difference:", url_path="compare_runs"),
    st.Page("app_pages/study.py", title="Study", icon=":material/science:", url_path="study"),
    st.Page("app_pages/run_details.py", title="Run", icon=":material/description:"),
]
st.navigation(pages).run()
