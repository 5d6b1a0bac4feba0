"""Models page: the leaderboard of the chosen run, with intervals, costs and broken models."""

import pandas as pd
import streamlit as st

from bt_core.artifacts import Run
from dashboard import loaders, presentation
from dashboard.run_picker import open_selected_run
from dashboard.views import figures
from dashboard.views import models as view


def show_problems(table: pd.DataFrame) -> None:
    problems = view.model_problems(table)
    if problems:
        lines = "\n".join(f"- **{model}**: {reason}" for model, reason in problems)
        st.warning(f"{len(problems)} model(s) have no usable results:\n\n{lines}")


def show_table(table: pd.DataFrame, run: Run) -> None:
    presentation.show_table(
        table, presentation.file_stem(run.run_id, "leaderboard"), styled=view.style_leaderboard(table)
    )
    st.caption(
        "Test split. Click a column header to sort. Highlighted: the best value of each column "
        "(highest score; lowest log loss, Brier, ECE, parameters and time; train − test gap "
        "closest to 0). Intervals: 95% paired bootstrap over test images. Tumor columns collapse "
        "the classes to tumor vs no tumor."
    )


def show_intervals(leaderboard: pd.DataFrame, run: Run) -> None:
    if leaderboard.empty:
        st.info("No model of this run has results to chart yet.")
        return
    colors = figures.model_colors(list(run.models))
    figure = view.leaderboard_ci_figure(leaderboard, colors, title="Scores with 95% bootstrap intervals")
    presentation.show_figure(figure, presentation.file_stem(run.run_id, "leaderboard-intervals"))


def models_page() -> None:
    st.title("Models")
    run = open_selected_run()
    if run is None:
        return
    st.markdown(view.overview_line(view.run_overview(run)))
    _model_data, excluded = loaders.load_model_data(run.directory)
    leaderboard = loaders.load_leaderboard(run.directory)
    table = view.leaderboard_table(run, leaderboard, excluded)
    show_problems(table)
    show_table(table, run)
    show_intervals(leaderboard, run)


models_page()
