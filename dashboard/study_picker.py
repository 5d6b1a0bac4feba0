"""The sidebar study picker, and the cell runs of the picked study.

Shown above the run picker when the artifacts folder holds studies (folders with a
study.json): none, then each study, the newest picked at first. The picked study's cell runs
join the run picker after the folder's own runs (``model · variant · seed``),
so every page opens a cell as a normal run, and the Study page shows that study. Pages read
the picked folder from ``st.session_state["study_dir"]``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from bt_core.artifacts import ArtifactError
from bt_dashboard import loaders, study_loaders
from bt_dashboard.views import run_picker as run_view
from bt_dashboard.views import study as view

STUDY_DIR_KEY = "study_dir"
PICKER_KEY = "study_picker"
NO_STUDY = ""


def render_study_picker(artifacts_dir: Path) -> str | None:
    """The "Study" selectbox (none, then each study); stores and returns the picked folder."""
    listings = study_loaders.list_studies(artifacts_dir)
    if not listings:
        st.session_state[STUDY_DIR_KEY] = None
        return None
    labels = {NO_STUDY: "none", **{str(listing.directory): view.study_label(listing) for listing in listings}}
    # The newest study is picked first (its cells follow the folder's runs in the run picker,
    # so the run shown first stays the newest run).
    chosen = st.sidebar.selectbox(
        "Study", options=list(labels), index=1, format_func=labels.__getitem__, key=PICKER_KEY,
        help="A grid of runs (models × variants × seeds): the Study page summarises it, and its "
             "cells join the run picker below.",
    )
    picked = chosen or None
    st.session_state[STUDY_DIR_KEY] = picked
    return picked


def selected_study_dir() -> str | None:
    """The study folder picked in the sidebar, or None."""
    return st.session_state.get(STUDY_DIR_KEY)


def cell_run_labels(study_dir: str | None) -> dict[str, str]:
    """The run picker's lines of the study's cells that have a run folder, folder -> label
    (model · variant · seed; one that cannot be opened says why). Empty for no study or a
    study that cannot be opened (the Study page says why)."""
    if study_dir is None:
        return {}
    try:
        cells = study_loaders.load_study(study_dir).cells
        runs = {Path(summary.directory).name: summary for summary in study_loaders.list_study_runs(study_dir)}
    except ArtifactError:
        return {}
    labels = {}
    for cell in cells:
        summary = runs.get(Path(cell.run).name)
        if summary is None:
            continue
        label = view.cell_run_label(cell)
        labels[str(summary.directory)] = label if not summary.error else f"⚠ {label} — cannot open: {summary.error}"
    return labels


def artifacts_run_labels(artifacts_dir: Path) -> dict[str, str]:
    """The artifacts folder's own runs, folder -> run picker line."""
    return {str(run.directory): run_view.run_label(run) for run in loaders.list_runs(artifacts_dir)}
