"""ROC & PR curves page: all models for one class, all classes for one model, tumor vs no tumor
with every model's operating point at a threshold on P(tumor)."""

import streamlit as st

from bt_core.artifacts import Run
from bt_core.data.classes import NO_TUMOR, negative_class
from bt_core.metrics.one_class import NOT_MEASURABLE
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import open_run_models
from bt_dashboard.views import common, figures
from bt_dashboard.views import curves as view
from bt_dashboard.views import operating_point as operating_view

CONFUSION_GRID_COLUMNS = 4  # full width; beside the ROC: 2


def choose(run: Run, models: list[str]) -> tuple[str, str, str]:
    with presentation.controls():
        kind_column, class_column, model_column = st.columns(3)
        kind = kind_column.radio(
            "Curve", list(view.KINDS), format_func=view.KINDS.get, horizontal=True, key="curves_kind"
        )
        class_name = class_column.selectbox("Class (all models)", run.class_names, key="curves_class")
        model = model_column.selectbox("Model (all classes)", models, key="curves_model")
    return kind, class_name, model


def show_class_overlay(run: Run, model_data: dict, kind: str, class_name: str) -> None:
    curves_by_model = loaders.load_class_curves(run.directory, kind)
    curves, areas = view.curves_for_class(curves_by_model, class_name)
    if not curves:
        st.info(f"No curve for {class_name}: the test set lacks positives or negatives of it.")
        return
    baseline = view.class_prevalence(model_data, run.class_names, class_name) if kind == "pr" else None
    figure = view.roc_overlay(
        curves, areas, figures.model_colors(list(run.models)), kind=kind, baseline=baseline,
        title=f"{view.KINDS[kind]}: {class_name} vs rest, all models",
    )
    presentation.show_figure(figure, presentation.file_stem(run.run_id, kind, class_name, "all-models"))


def show_model_classes(run: Run, kind: str, model: str) -> None:
    curves = loaders.load_class_curves(run.directory, kind)[model]
    figure = view.class_curves_figure(
        curves, kind=kind, class_names=run.class_names, title=f"{view.KINDS[kind]}: every class, {model}"
    )
    presentation.show_figure(figure, presentation.file_stem(run.run_id, kind, model, "all-classes"))


def choose_threshold(run: Run) -> float:
    negative = negative_class(run.class_names)
    return st.slider(
        f"Threshold on P(tumor) = 1 − P({negative})", min_value=0.0, max_value=1.0, value=0.5, step=0.01,
        key="operating_threshold",
        help=f"An image is called tumor when 1 − P({negative}) is at least the threshold, for every model.",
    )


def show_tumor_roc(run: Run, tables: dict, threshold: float) -> None:
    scores = loaders.load_model_scores(run.directory).set_index("model")["tumor_auc"]
    figure = view.operating_roc(
        tables, scores.to_dict(), figures.model_colors(list(run.models)), threshold,
        title=f"ROC of 1 − P({negative_class(run.class_names)}), all models; ● at threshold {threshold:.2f}",
    )
    presentation.show_figure(figure, presentation.file_stem(run.run_id, "tumor-roc"))


def show_operating_table(run: Run, points: dict, scores: dict, threshold: float) -> None:
    table = operating_view.operating_table(points)
    filename = presentation.file_stem(run.run_id, "operating-point", f"{threshold:.2f}")
    if presentation.shows_static_table(table):
        # A static table has no column order of its own: it gets the shown columns only.
        shown = table[operating_view.SHOWN_COLUMNS]
        presentation.show_table(shown, filename, csv=False,
                                styled=operating_view.style_operating_table(shown, intervals=table))
        presentation.csv_download(table, filename)
    else:
        presentation.show_table(
            table, filename, styled=operating_view.style_operating_table(table, intervals=table),
            placeholder=NOT_MEASURABLE, column_order=operating_view.SHOWN_COLUMNS,
            column_config={common.MODEL: st.column_config.Column(pinned=True),
                           operating_view.COUNTS_TEXT: st.column_config.Column(help=operating_view.COUNTS_HELP)},
        )
    notes = operating_view.not_measurable_notes(points)
    share = operating_view.tumor_share(scores)
    prevalence = "" if share is None else f" PPV and NPV hold for this test set's {share:.0%} tumor images."
    st.caption(
        f"At threshold {threshold:.2f}: called tumor when P(tumor) ≥ {threshold:.2f}. Intervals: 95% Wilson, "
        "in parentheses after each share (the CSV has them in columns of their own). "
        f"The Models page's tumor sensitivity calls tumor by the most probable class instead, so it can "
        f"differ at 0.5.{prevalence}" + ("".join(f" {note}." for note in notes))
    )


def show_binary_confusion(points: dict, per_row: int = CONFUSION_GRID_COLUMNS) -> None:
    st.markdown("**Binary confusion matrix at the threshold** (rows: true, columns: called)")
    names = list(points)
    for start in range(0, len(names), per_row):
        for column, name in zip(st.columns(per_row), names[start : start + per_row]):
            with column:
                st.caption(name)
                # A static table wraps its headers: a grid clips "Called no tumor" in a half-width column.
                st.table(operating_view.confusion_2x2(points[name]))


@st.fragment
def show_operating_point(run: Run, model_data: dict, one: common.OneClass | None) -> None:
    """Tumor vs no tumor: the slider reruns this section alone."""
    st.subheader("Tumor vs no tumor: operating point")
    if not view.has_tumor_class(run.class_names):
        st.info(f"This run has no `{NO_TUMOR}` class (or a spelling of it), so tumor vs no tumor is not defined "
                "and the threshold on P(tumor) does not apply.")
        return
    threshold = choose_threshold(run)
    scores = operating_view.binary_scores(model_data, run.class_names)
    points = operating_view.operating_points(scores, threshold)
    if one is None:
        left, right = st.columns(2)
        with left:
            show_tumor_roc(run, operating_view.threshold_tables(scores), threshold)
        with right:
            show_binary_confusion(points, per_row=2)
        show_operating_table(run, points, scores, threshold)
    else:  # one class: no ROC, but the share of its images called their side
        show_operating_table(run, points, scores, threshold)
        show_binary_confusion(points)


def show_area_table(run: Run, kind: str) -> None:
    st.subheader(f"{view.CURVE_SCORE[kind]} per class")
    table = view.area_table(loaders.load_class_curves(run.directory, kind), run.class_names)
    presentation.show_table(
        table, presentation.file_stem(run.run_id, kind, "areas"),
        styled=table.style.format("{:.3f}", subset=run.class_names, na_rep="—")
        .highlight_max(subset=run.class_names, props=common.BEST_VALUE_CSS),
    )


def curves_page() -> None:
    st.title("ROC & PR curves")
    opened = open_run_models()
    if opened is None:
        return
    run, model_data = opened
    one = common.one_class_test(run)
    if one is not None:  # every curve and area here needs images of both sides
        st.info(f"ROC and precision-recall curves, their areas and the tumor vs no tumor ROC: **{one.text}**. "
                "A curve needs positives and negatives; the Models page shows what one class allows.")
        show_operating_point(run, model_data, one)
        return
    kind, class_name, model = choose(run, list(model_data))
    left, right = st.columns(2)
    with left:
        show_class_overlay(run, model_data, kind, class_name)
    with right:
        show_model_classes(run, kind, model)
    show_area_table(run, kind)
    show_operating_point(run, model_data, None)


curves_page()
