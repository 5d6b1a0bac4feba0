"""ROC & PR curves page: all models for one class, all classes for one model, tumor vs no tumor."""

import streamlit as st

from bt_core.artifacts import Run
from bt_core.data.classes import NO_TUMOR, negative_class
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import open_run_models
from bt_dashboard.views import common, figures
from bt_dashboard.views import curves as view


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


def show_tumor_roc(run: Run) -> None:
    st.subheader("Tumor vs no tumor")
    if not view.has_tumor_class(run.class_names):
        st.info(f"This run has no `{NO_TUMOR}` class (or a spelling of it), so tumor vs no tumor is not defined.")
        return
    curves = loaders.load_tumor_roc(run.directory)
    scores = loaders.load_model_scores(run.directory).set_index("model")["tumor_auc"]
    figure = view.roc_overlay(
        curves, scores.to_dict(), figures.model_colors(list(run.models)),
        title=f"ROC of 1 − P({negative_class(run.class_names)}), all models",
    )
    presentation.show_figure(figure, presentation.file_stem(run.run_id, "tumor-roc"))


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
        return
    kind, class_name, model = choose(run, list(model_data))
    left, right = st.columns(2)
    with left:
        show_class_overlay(run, model_data, kind, class_name)
    with right:
        show_model_classes(run, kind, model)
    left, right = st.columns(2)
    with left:
        show_tumor_roc(run)
    with right:
        show_area_table(run, kind)


curves_page()
