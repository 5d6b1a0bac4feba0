"""Models page: the leaderboard of the chosen run, with intervals, costs and broken models;
every model per class side by side; and, on request, published results beside this run's."""

import pandas as pd
import streamlit as st

from bt_core.artifacts import ArtifactError, Run
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import open_selected_run
from bt_dashboard.views import common, figures
from bt_dashboard.views import models as view
from bt_dashboard.views import per_class, published


def show_problems(table: pd.DataFrame) -> None:
    problems = view.model_problems(table)
    if problems:
        lines = "\n".join(f"- **{model}**: {reason}" for model, reason in problems)
        st.warning(f"{len(problems)} model(s) have no usable results:\n\n{lines}")


def show_table(table: pd.DataFrame, run: Run, one: common.OneClass | None) -> None:
    not_measurable = [] if one is None else view.not_measurable_columns(run.class_names, one.class_index)
    all_columns = st.toggle("All columns", key="leaderboard_all_columns",
                            help="Every score with its interval, losses, train accuracy and epochs; "
                                 "the CSV always has them all.")
    columns = view.shown_columns(table, all_columns)
    filename = presentation.file_stem(run.run_id, "leaderboard")
    if presentation.shows_static_table(table):
        # A static table has no column order of its own: it gets the shown columns only.
        shown = table[columns]
        styled = view.style_leaderboard(shown, not_measurable, intervals=None if all_columns else table)
        presentation.show_table(shown, filename, csv=False, styled=styled)
        presentation.csv_download(table, filename)
    else:
        presentation.show_table(
            table, filename, column_order=columns,
            styled=view.style_leaderboard(table, not_measurable, intervals=None if all_columns else table),
            column_config={column: st.column_config.Column(
                view.SHORT_LABELS.get(column), help=view.column_help(column), pinned=column == common.MODEL or None)
                for column in table.columns},
        )
    intervals = (
        "Intervals: 95% paired bootstrap over test images." if one is None
        else "Accuracy interval: 95% Wilson interval (one class: accuracy is the share of its images called it)."
    )
    st.caption(
        "Test split. Click a column header to sort; hover it for its full name. Highlighted: the best value of each column "
        "(highest score; lowest log loss, Brier, ECE, parameters and time; train − test gap "
        f"closest to 0). {intervals} Tumor columns (Sens, Spec) collapse the classes to tumor vs no tumor; "
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


def show_per_class(run: Run) -> None:
    """Every model per class: precision, recall, F1, specificity and the one-vs-rest counts."""
    st.subheader("Per class")
    shown = per_class.per_class_view(run)
    if shown.table.empty:
        st.info("No model of this run has per-class results.")
        return
    presentation.show_table(
        shown.table, presentation.file_stem(run.run_id, "per-class"), styled=per_class.style_per_class(shown.table),
        height=per_class.grid_height(len(shown.table)),
        column_config={column: st.column_config.Column(help=per_class.GRID_HELP.get(column),
                                                       width="small" if column in per_class.SHARE_COLUMNS else None)
                       for column in per_class.GRID_COLUMNS},
    )
    st.caption("Each class against the rest, on the test split: a model's row per class. Highlighted: the best "
               "precision, recall, F1 and specificity of each class. Hover a header for the counts' meaning; "
               "the CSV has them in four columns.")
    note = per_class.derived_note(shown.derived)
    if note:
        st.caption(note)


def show_published(run: Run) -> None:
    """Published figures of the same architectures beside this run's (optional: an expander)."""
    with st.expander("Published results beside this run's"):
        try:
            results = loaders.load_published_results()
        except (OSError, ValueError) as exc:
            st.warning(f"The published results cannot be read: {exc}")
            return
        try:
            summary = loaders.load_shortcuts(run.directory)
        except ArtifactError:
            summary = None  # the Shortcuts page names the broken file; here only the figure is missing
        table = published.published_table(run, results, summary)
        # The CSV holds every column; the grid the short ones, each row's long text a line below.
        presentation.show_table(table, presentation.file_stem(run.run_id, "published"),
                                styled=published.style_published(table))
        st.markdown("\n".join(f"- {line}" for line in published.difference_lines(table)))
        st.caption(
            "Published: the figure as its source reports it. De-duplicated: this run's accuracy on the test images "
            "left after dropping copies of train / val images and repeats within test (the dataset audit of the "
            "Shortcuts page). Published figures on the Kaggle data keep its duplicates unless they say otherwise."
        )


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
    show_per_class(run)
    show_published(run)


models_page()
