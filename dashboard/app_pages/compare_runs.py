"""Compare runs page: two test sets side by side (two runs, or a run and one of its
evaluations), from the artifacts folder and the picked study: leaderboard deltas (B − A),
one model's confusion difference and the images the two predict differently, each opening
on the Inspect page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from bt_core.artifacts import ArtifactError, Run
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard import loaders, presentation, settings
from bt_dashboard.run_picker import selected_run_dir
from bt_dashboard.study_picker import artifacts_run_labels, cell_run_labels, selected_study_dir
from bt_dashboard.views import confusion as confusion_view
from bt_dashboard.views import inspect as inspect_view
from bt_dashboard.views import run_pair as view
from bt_dashboard.views.common import MISSING

A_KEY, B_KEY = "compare_a", "compare_b"
MODEL_KEY = "compare_model"
TABLE_KEY = "compare_disagreements"
PICK_KEY = "compare_inspect_image"
MAX_ROWS_SHOWN = 500


def comparison_targets() -> dict[str, str]:
    """Every test set that can be picked: the picked study's cells and the artifacts
    folder's runs, each with its evaluations."""
    runs = {**cell_run_labels(selected_study_dir()), **artifacts_run_labels(settings.artifacts_dir())}
    return view.comparison_targets(runs, {run_dir: loaders.list_evaluations(run_dir) for run_dir in runs})


def pick(label: str, key: str, targets: dict[str, str], default: str) -> str:
    if st.session_state.get(key) not in targets:
        st.session_state[key] = default
    return st.selectbox(label, list(targets), format_func=targets.__getitem__, key=key)


def pick_pair(targets: dict[str, str]) -> tuple[str, str]:
    first, second = view.default_pair(list(targets), selected_run_dir())
    column_a, column_b = st.columns(2)
    with column_a:
        a = pick("A", A_KEY, targets, first)
    with column_b:
        b = pick("B", B_KEY, targets, second)
    return a, b


def open_side(folder: str, side: str) -> tuple[Run, pd.DataFrame, dict[str, ModelData]] | None:
    """A test set's tables, leaderboard and comparable models, or None after saying why not."""
    try:
        run = loaders.load_run_tables(folder)
        return run, loaders.load_leaderboard(folder), loaders.load_model_data(folder)[0]
    except ArtifactError as exc:
        st.error(f"{side} (`{folder}`) cannot be opened: {exc}")
        return None


def show_deltas(board_a: pd.DataFrame, board_b: pd.DataFrame, stem: str) -> None:
    st.subheader("Leaderboard deltas")
    models = view.common_models(board_a, board_b)
    if not models:
        st.info("A and B have no model in common with results: there is no delta to show.")
        return
    deltas = view.leaderboard_deltas(board_a, board_b)
    presentation.show_figure(view.deltas_figure(deltas, models), f"{stem}_deltas")
    presentation.show_table(deltas, f"{stem}_deltas", height=320,
                            styled=deltas.style.format({"A": "{:.3f}", "B": "{:.3f}", view.DELTA: "{:+.3f}"},
                                                       na_rep=MISSING))
    only = [f"only in {side}: {', '.join(names)}" for side, names in
            (("A", view.only_in(board_a, board_b)), ("B", view.only_in(board_b, board_a))) if names]
    st.caption("Each test set's leaderboard (the Models page's scores, from its stored predictions); "
               "B − A per model both have." + (f" Left out, {'; '.join(only)}." if only else ""))


def show_confusion_difference(run_a: Run, run_b: Run, folder_a: str, folder_b: str, model: str, stem: str) -> None:
    st.subheader(f"Confusion difference: {model}")
    matrix_a = loaders.load_confusion_matrices(folder_a)[model]
    matrix_b = loaders.load_confusion_matrices(folder_b)[model]
    difference = view.confusion_difference(matrix_a, matrix_b, run_a.class_names, run_b.class_names)
    if isinstance(difference, str):
        st.info(f"No confusion difference: {difference}.")
        return
    figure = confusion_view.difference_figure(matrix_a, matrix_b, run_a.class_names, "A", "B", normalized=False,
                                              title=f"{model}: B − A (image counts)")
    presentation.show_figure(figure, f"{stem}_confusion_{model}")
    st.caption("Rows: true class; columns: predicted. Blue where B does better (more on the diagonal, "
               "fewer off it). Counts differ also when the two test sets hold different images.")


def open_selected_row(folder: str, model: str, table: pd.DataFrame) -> None:
    """The disagreement row selected in the table opens its image on Inspect (A's test set)."""
    state = st.session_state.get(TABLE_KEY)
    rows = state.selection.rows if state is not None else []
    if rows and rows[0] < len(table):
        image_id = str(table.iloc[rows[0]]["id"])
        st.session_state[inspect_view.SELECTED_IMAGE_KEY] = image_id
        st.switch_page(inspect_view.INSPECT_PAGE, query_params=view.inspect_params(folder, model, image_id))


def show_inspect_links(ids: list[str], folder_a: str, folder_b: str, model: str) -> None:
    """A picker of the disagreement ids and a link to each side's Inspect page for it."""
    if st.session_state.get(PICK_KEY) not in ids:
        st.session_state.pop(PICK_KEY, None)
    pick_column, link_a, link_b = st.columns([4, 1, 1], vertical_alignment="bottom")
    image_id = pick_column.selectbox("Open an image in Inspect (or select its row: A's test set)", ids, key=PICK_KEY)
    for column, side, folder in ((link_a, "A", folder_a), (link_b, "B", folder_b)):
        column.page_link(inspect_view.INSPECT_PAGE, label=f"Inspect on {side}", icon=":material/center_focus_strong:",
                         query_params=view.inspect_params(folder, model, image_id))


def show_disagreements(sides: dict[str, tuple[Run, ModelData, str]], model: str, stem: str) -> None:
    st.subheader(f"Images A and B predict differently: {model}")
    (run_a, data_a, folder_a), (run_b, data_b, folder_b) = sides["A"], sides["B"]
    found = view.disagreements(data_a, run_a.class_names, data_b, run_b.class_names)
    line = view.disagreement_line(found)
    if found.shared == 0:
        st.info(line)
        return
    st.markdown(line)
    if found.table.empty:
        return
    table = found.table.head(MAX_ROWS_SHOWN)
    presentation.show_table(
        table, f"{stem}_disagreements_{model}", key=TABLE_KEY, on_select="rerun", selection_mode="single-row",
        styled=table.style.format({"A confidence": "{:.1%}", "B confidence": "{:.1%}"}), csv=False,
    )
    presentation.csv_download(found.table, f"{stem}_disagreements_{model}")
    open_selected_row(folder_a, model, table)
    if len(found.table) > MAX_ROWS_SHOWN:
        st.caption(f"The {MAX_ROWS_SHOWN} most confident of {len(found.table)}; the CSV has them all.")
    show_inspect_links(list(table["id"]), folder_a, folder_b, model)


def compare_runs_page() -> None:
    st.title("Compare runs")
    targets = comparison_targets()
    if len(targets) < 2:
        st.info(f"This page needs two test sets (runs or evaluations); `{settings.artifacts_dir()}` has "
                f"{len(targets)}.")
        return
    folder_a, folder_b = pick_pair(targets)
    if folder_a == folder_b:
        st.info("A and B are the same test set: pick two different ones.")
        return
    opened_a, opened_b = open_side(folder_a, "A"), open_side(folder_b, "B")
    if opened_a is None or opened_b is None:
        return
    (run_a, board_a, data_a), (run_b, board_b, data_b) = opened_a, opened_b
    stem = presentation.file_stem(Path(folder_a).name, "vs", Path(folder_b).name)
    show_deltas(board_a, board_b, stem)
    models = [name for name in data_a if name in data_b]
    if not models:
        st.info("A and B have no model with test predictions in common: no confusion difference or "
                "disagreements to show.")
        return
    if st.session_state.get(MODEL_KEY) not in models:
        st.session_state[MODEL_KEY] = models[0]
    model = st.selectbox("Model", models, key=MODEL_KEY, help="The model whose confusion matrices and "
                                                              "predictions are compared below.")
    show_confusion_difference(run_a, run_b, folder_a, folder_b, model, stem)
    show_disagreements({"A": (run_a, data_a[model], folder_a), "B": (run_b, data_b[model], folder_b)}, model, stem)


compare_runs_page()
