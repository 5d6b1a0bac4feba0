"""Training page: loss, accuracy and learning rate per epoch, fine-tuning phases marked."""

import pandas as pd
import streamlit as st

from bt_core.artifacts import Run
from bt_dashboard import presentation
from bt_dashboard.run_picker import open_selected_run
from bt_dashboard.views import figures
from bt_dashboard.views import training as view

MODEL_KEY = "training_model"


def show_model_history(run: Run, histories: dict[str, pd.DataFrame]) -> None:
    with presentation.controls():
        model = st.selectbox("Model", list(histories), key=MODEL_KEY)
    history = histories[model]
    spans = view.phase_spans(history)
    phases = view.phases_text(spans)
    figure = view.training_curves_figure(history, title=model, best_epoch=view.best_epoch(run, model))
    presentation.show_figure(figure, presentation.file_stem(run.run_id, "training", model))
    later_phase = " The shaded region is a later phase (fine-tuning)." if len(spans) > 1 else ""
    st.caption(
        f"Phases: {phases}. Solid: train, dashed: validation; the orange dotted line is the best "
        f"epoch (lowest validation loss).{later_phase} Training loss is weighted by class; "
        "validation loss is not."
    )
    presentation.show_table(history, presentation.file_stem(run.run_id, "history", model))


def show_all_models(run: Run, histories: dict[str, pd.DataFrame]) -> None:
    st.subheader("All models")
    figure = view.validation_overlay_figure(histories, figures.model_colors(list(run.models)))
    presentation.show_figure(figure, presentation.file_stem(run.run_id, "validation-curves"))


def training_page() -> None:
    st.title("Training")
    run = open_selected_run()
    if run is None:
        return
    histories = view.histories(run)
    problems = view.history_problems(run)
    if problems:
        st.caption("No curves: " + "; ".join(f"**{name}** ({reason})" for name, reason in problems.items()))
    if not histories:
        st.info("No model of this run has a training history.")
        return
    show_model_history(run, histories)
    show_all_models(run, histories)


training_page()
