"""Calibration page: reliability diagrams of all models overlaid, with ECE per model."""

import streamlit as st

from bt_core.artifacts import Run
from bt_core.metrics.scores import DEFAULT_BINS
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import open_model_data, open_selected_run
from bt_dashboard.views import calibration as view
from bt_dashboard.views import common, figures

BINS_KEY = "calibration_bins"


def calibration_page() -> None:
    st.title("Calibration")
    run = open_selected_run()
    if run is None:
        return
    if open_model_data(run) is None:
        return
    with presentation.controls():
        n_bins = st.slider("Confidence bins", 5, 30, DEFAULT_BINS, key=BINS_KEY)
    bins, table = loaders.load_reliability(run.directory, n_bins)
    show_reliability(run, bins, table, n_bins)
    show_calibration_table(run, table)


def show_reliability(run: Run, bins: dict, table, n_bins: int) -> None:
    ece = dict(zip(table["Model"], table[common.ECE]))
    figure = view.reliability_figure(
        bins, ece, figures.model_colors(list(run.models)),
        title=f"Reliability: accuracy against confidence ({n_bins} bins)",
    )
    figure.update_layout(height=620)
    presentation.show_figure(figure, presentation.file_stem(run.run_id, "reliability", n_bins))
    st.caption(
        "Below the diagonal: over-confident (the model is right less often than it claims). "
        "ECE: the image-weighted mean gap between accuracy and confidence over the bins."
    )


def show_calibration_table(run: Run, table) -> None:
    st.subheader("Per model")
    presentation.show_table(
        table, presentation.file_stem(run.run_id, "calibration"), styled=view.style_calibration_table(table)
    )


calibration_page()
