"""Confusion page: every model's matrix side by side, the difference of two, and the images of a cell.

A click on a cell of a matrix selects that model and cell in the image explorer below,
whose selectboxes work without clicking too. An image of the cell opens on the Inspect
page from the link under the thumbnails or by selecting its row in the table.

The explorer is a fragment (``st.fragment``): choosing a cell, in its selectboxes or with a
click on a matrix, reruns the explorer only, not the matrices and the difference above it.
"""

from functools import partial

import numpy as np
import streamlit as st

from bt_core.artifacts import ArtifactError, Run
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard import loaders, presentation
from bt_dashboard.inspect_link import open_selected_row_in_inspect, show_inspect_link
from bt_dashboard.run_picker import open_run_models
from bt_dashboard.views import common
from bt_dashboard.views import confusion as view

NORMALIZE_KEY = "confusion_normalized"
CELL_MODEL_KEY = "confusion_cell_model"
CELL_KEY = "confusion_cell"
EMPTY_CELL_KEY = "confusion_empty_cell"  # (model, cell) of the last click on a cell without images
DIFF_A_KEY = "confusion_diff_a"
DIFF_B_KEY = "confusion_diff_b"
INSPECT_PICK_KEY = "confusion_inspect_image"
CELL_TABLE_KEY = "confusion_cell_table"
EXPLORER_FRAGMENT = "confusion_cell_explorer"
MATRICES_PER_ROW = 3
MATRIX_HEIGHT = 360
MAX_THUMBNAILS = 48
THUMBNAIL_WIDTH = 150


def chart_key(model: str) -> str:
    return f"confusion_chart_{model}"


def select_clicked_cell(model: str, class_names: list[str], matrix: np.ndarray) -> None:
    """on_select callback of a matrix: point the image explorer at the clicked cell (or, for
    a cell without images, have it say so), and rerun the explorer alone."""
    state = st.session_state.get(chart_key(model)) or {}
    cell, empty = view.clicked_cell(state.get("selection"), matrix, class_names)
    if cell is None:
        return
    st.session_state[CELL_MODEL_KEY] = model
    if empty:
        st.session_state[EMPTY_CELL_KEY] = (model, cell)  # the explorer's selectboxes list only cells with images
    else:
        st.session_state[CELL_KEY] = cell
    st.rerun(EXPLORER_FRAGMENT)  # instead of the page: the matrices do not change


def show_matrices(run: Run, matrices: dict[str, np.ndarray], normalized: bool) -> None:
    names = list(matrices)
    per_row = min(len(names), MATRICES_PER_ROW)
    for start in range(0, len(names), per_row):
        for column, model in zip(st.columns(per_row), names[start : start + per_row]):
            figure = view.confusion_figure(matrices[model], run.class_names, normalized, title=model)
            figure.update_layout(height=MATRIX_HEIGHT)
            with column:
                presentation.show_figure(
                    figure,
                    presentation.file_stem(run.run_id, "confusion", model),
                    key=chart_key(model),
                    on_select=partial(select_clicked_cell, model, run.class_names, matrices[model]),
                    selection_mode="points",
                )
    presentation.csv_download(
        view.confusion_long(matrices, run.class_names), presentation.file_stem(run.run_id, "confusion-matrices")
    )


def show_difference(run: Run, matrices: dict[str, np.ndarray], normalized: bool) -> None:
    st.subheader("Difference of two models")
    names = list(matrices)
    if len(names) < 2:
        st.info("A difference needs two models.")
        return
    left, right = st.columns(2)
    name_a = left.selectbox("Model A", names, index=0, key=DIFF_A_KEY)
    name_b = right.selectbox("Model B", names, index=1, key=DIFF_B_KEY)
    figure = view.difference_figure(
        matrices[name_a], matrices[name_b], run.class_names, name_a, name_b, normalized,
        title=f"{name_b} − {name_a} ({'row shares' if normalized else 'counts'})",
    )
    figure.update_layout(height=MATRIX_HEIGHT + 60)
    presentation.show_figure(figure, presentation.file_stem(run.run_id, "confusion-difference", name_b, name_a))
    st.caption("Text: B − A per cell. Blue: B does better there (more on the diagonal, fewer off it); red: A does.")


def choose_cell(run: Run, matrices: dict[str, np.ndarray]) -> tuple[str, tuple[str, str]] | None:
    names = list(matrices)
    model_column, cell_column = st.columns([1, 2])
    model = model_column.selectbox("Model", names, key=CELL_MODEL_KEY)
    options = view.cell_options(matrices[model], run.class_names)
    if st.session_state.get(CELL_KEY) not in options:
        st.session_state.pop(CELL_KEY, None)  # a cell of another model or run: start over
    cell = cell_column.selectbox(
        "Cell (true → predicted)",
        options,
        format_func=lambda option: view.cell_label(option, matrices[model], run.class_names),
        key=CELL_KEY,
    )
    return (model, cell) if cell is not None else None


def show_thumbnails(run: Run, cell_table) -> None:
    try:
        images, archive_ids = loaders.load_test_images(run.directory)
    except ArtifactError as exc:
        st.warning(f"No thumbnails: {exc}")
        return
    shown = cell_table.head(MAX_THUMBNAILS)
    positions = common.image_positions(archive_ids, shown["id"])
    found = positions >= 0
    if not found.all():
        st.warning(f"{int((~found).sum())} image(s) of this cell are not in test_images.npz.")
    if found.any():
        rows = shown[found].to_dict("records")
        st.image(
            [images[position] for position in positions[found]],
            caption=[view.thumbnail_caption(row, run.class_names) for row in rows],
            width=THUMBNAIL_WIDTH,
        )
    if len(cell_table) > MAX_THUMBNAILS:
        st.caption(f"Showing the first {MAX_THUMBNAILS} of {len(cell_table)} images; the table lists all.")


@st.fragment(key=EXPLORER_FRAGMENT)
def show_cell_images(run: Run, model_data: dict[str, ModelData], matrices: dict[str, np.ndarray]) -> None:
    """The cell explorer: a fragment, so that choosing a cell here reruns this function only."""
    st.subheader("Images of a cell")
    st.caption("Click a cell of a matrix above, or choose it here.")
    empty = st.session_state.pop(EMPTY_CELL_KEY, None)  # said once, for the click that chose it
    if empty is not None:
        model, cell = empty
        st.info(view.empty_cell_message(model, tuple(cell)))
    chosen = choose_cell(run, matrices)
    if chosen is None:
        return
    model, (true_class, predicted_class) = chosen
    cell_table = view.cell_predictions(run, model_data[model], true_class, predicted_class)
    show_thumbnails(run, cell_table)
    show_inspect_link([str(image_id) for image_id in cell_table["id"]], INSPECT_PICK_KEY)
    presentation.show_table(
        cell_table,
        presentation.file_stem(run.run_id, model, true_class, "as", predicted_class),
        styled=cell_table.style.format("{:.3f}", subset=[c for c in cell_table.columns if c.startswith("p_")]),
        key=CELL_TABLE_KEY, on_select="rerun", selection_mode="single-row",
    )
    open_selected_row_in_inspect(CELL_TABLE_KEY, cell_table)


def confusion_page() -> None:
    st.title("Confusion matrices")
    opened = open_run_models()
    if opened is None:
        return
    run, model_data = opened
    with presentation.controls():
        normalized = st.radio(
            "Show", [False, True], format_func=lambda flag: "Row shares" if flag else "Counts",
            horizontal=True, key=NORMALIZE_KEY,
        )
    matrices = loaders.load_confusion_matrices(run.directory)
    show_matrices(run, matrices, normalized)
    show_difference(run, matrices, normalized)
    show_cell_images(run, model_data, matrices)


confusion_page()
