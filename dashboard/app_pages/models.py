"""Models page: the leaderboard of the chosen run, with intervals, costs and broken models."""

import pandas as pd
import streamlit as st

from bt_core.artifacts import Run
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import open_selected_run
from bt_dashboard.views import common, figures
from bt_dashboard.views import models as view


def show_problems(table: pd.DataFrame) -> None:
    problems = view.model_problems(table)
    if problems:
        lines = "\n".join(f"- **{model}**: {reason}" for model, reason in problems)
        st.warning(f"{len(problems)} model(s) have no usable results:\n\n{lines}")


def show_table(table: pd.DataFrame, run: Run, one: common.OneClass | None) -> None:
    not_measurable = [] if one is None else view.not_measurable_columns(run.class_names, one.class_index)
    presentation.show_table(
        table, presentation.file_stem(run.run_id, "leaderboard"),
        styled=view.style_leaderboard(table, not_measurable),
        column_config={column: st.column_config.Column(help=text) for column, text in view.COLUMN_HELP.items()},
    )
    intervals = (
        "Intervals: 95% paired bootstrap over test images." if one is None
        else "Accuracy interval: 95% Wilson interval (one class: accuracy is the share of its images called it)."
    )
    st.caption(
        "Test split. Click a column header to sort. Highlighted: the best value of each column "
        "(highest score; lowest log loss, Brier, ECE, parameters and time; train − test gap "
        f"closest to 0). {intervals} Tumor columns collapse the classes to tumor vs no tumor; "
        "sensitivity @ 95% specificity is the best sensitivity of a threshold on P(tumor) that keeps "
        "specificity ≥ 95% (and the reverse), hover a header for the convention."
    )


def show_one_class(run: Run, model_data: dict, one: common.OneClass) -> None:
    """What test images of one class allow: the share called their class, with its interval."""
    st.subheader(f"What {one.class_name} images alone allow")
    table = view.one_class_table(model_data, run.class_names)
    presentation.show_table(table, presentation.file_stem(run.run_id, "one-class"),
                            styled=view.style_one_class_table(table))
    st.caption(
        f"Value: the share of the {one.class_name} images each model calls {one.class_name} "
        "(sensitivity for tumor images, specificity for no-tumor images), with its 95% Wilson "
        "score interval. Specificity, AUC, ROC / PR curves and every other score that compares "
        f"classes: {one.text}."
    )


def show_intervals(leaderboard: pd.DataFrame, run: Run, one: common.OneClass | None) -> None:
    if leaderboard.empty:
        st.info("No model of this run has results to chart yet.")
        return
    colors = figures.model_colors(list(run.models))
    if one is None:
        figure = view.leaderboard_ci_figure(leaderboard, colors, title="Scores with 95% bootstrap intervals")
    else:
        figure = view.leaderboard_ci_figure(leaderboard, colors, metrics={"accuracy": "Accuracy"},
                                            title="Accuracy with its 95% Wilson interval")
    presentation.show_figure(figure, presentation.file_stem(run.run_id, "leaderboard-intervals"))


def models_page() -> None:
    st.title("Models")
    run = open_selected_run()
    if run is None:
        return
    st.markdown(view.overview_line(view.run_overview(run)))
    one = common.one_class_test(run)
    if one is not None:
        st.info(f"The test images are all **{one.class_name}**: the scores that compare classes "
                f"read *{one.text}*.")
    model_data, excluded = loaders.load_model_data(run.directory)
    leaderboard = loaders.load_leaderboard(run.directory)
    table = view.leaderboard_table(run, leaderboard, excluded)
    if one is not None:
        table = view.mark_not_measurable(table, view.not_measurable_columns(run.class_names, one.class_index))
    show_problems(table)
    show_table(table, run, one)
    if one is not None:
        show_one_class(run, model_data, one)
    show_intervals(leaderboard, run, one)


models_page()
