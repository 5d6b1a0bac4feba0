"""Sidebar tools under the run picker: presentation mode and the one-click HTML report."""

from __future__ import annotations

from functools import partial

import streamlit as st

from bt_core.artifacts import ArtifactError, Run
from bt_dashboard import loaders, presentation, report

REPORT_BUTTON_KEY = "report_download"


def report_file_name(run: Run) -> str:
    return f"{presentation.file_stem(run.run_id, 'report')}.html"


def report_bytes(run: Run) -> bytes:
    return report.build_report(run).encode("utf-8")


def render_report_download(run_dir: str | None) -> None:
    """A download button for the run's HTML report, built only when clicked."""
    if run_dir is None:
        return
    try:
        run = loaders.load_run_tables(run_dir)
    except ArtifactError:
        return  # the page says why the run cannot be opened
    st.sidebar.download_button(
        "Download report (HTML)",
        # A callable: the report (every figure, plotly.js inline) is built on click only.
        data=partial(report_bytes, run),
        file_name=report_file_name(run),
        mime="text/html",
        icon=":material/summarize:",
        key=REPORT_BUTTON_KEY,
        help="One self-contained HTML file: the shortcut finding, every figure and table, a Grad-CAM "
             "gallery, external evaluations and model cards.",
        on_click="ignore",
    )


def render_sidebar_tools(run_dir: str | None) -> None:
    st.sidebar.divider()
    presentation.render_presentation_toggle()
    render_report_download(run_dir)
