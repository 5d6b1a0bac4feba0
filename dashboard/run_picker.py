"""The sidebar run picker, and how pages find the run it chose.

The picker lives in the entry script (app.py), so its selection survives page switches;
pages read the chosen folder from ``st.session_state["run_dir"]``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import components, loaders, settings

RUN_DIR_KEY = "run_dir"
PICKER_KEY = "run_picker"


def render_run_picker(artifacts_dir: Path) -> str | None:
    """Show the run selectbox in the sidebar; store and return the chosen run folder."""
    runs = loaders.list_runs(artifacts_dir)
    st.sidebar.caption(f"Artifacts: `{artifacts_dir}`")
    if not runs:
        st.sidebar.caption("No runs yet.")
        st.session_state[RUN_DIR_KEY] = None
        return None
    labels = {str(run.directory): components.run_label(run) for run in runs}
    # Keyed: the choice is kept while runs come and go; a vanished choice falls back
    # to the newest run.
    chosen = st.sidebar.selectbox(
        "Run", options=list(labels), format_func=labels.__getitem__, key=PICKER_KEY
    )
    st.session_state[RUN_DIR_KEY] = chosen
    return chosen


def selected_run_dir() -> str | None:
    """The run folder chosen in the sidebar, or None when there is no run."""
    return st.session_state.get(RUN_DIR_KEY)


def show_no_runs() -> None:
    """What a page shows when the artifacts folder holds no run: how to make one."""
    artifacts_dir = settings.artifacts_dir()
    st.info(f"No runs in `{artifacts_dir}` yet. Train the demo zoo to create one:")
    st.code(components.demo_command(artifacts_dir), language="bash")
