"""What the Confusion page shows (no Streamlit): count matrices, the cells to explore and
their images, and the matrix and difference figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bt_core.artifacts import Run, probability_columns
from bt_core.metrics import per_class, scores
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views import common


def predicted_index(data: ModelData) -> np.ndarray:
    return np.asarray(data.proba).argmax(axis=1)


def confusion_matrices(run: Run, model_data: Mapping[str, ModelData]) -> dict[str, np.ndarray]:
    """Per comparable model, its (true × predicted) count matrix on the run's test set, as its
    metrics.json stores it (``confusion_matrix``, manifest class order)."""
    n_classes = len(run.class_names)
    matrices = {}
    for name, data in model_data.items():
        stored = stored_matrix(run.models[name].metrics if name in run.models else {}, n_classes)
        # Counted from the predictions only when metrics.json holds no usable matrix (a file
        # written by hand or by another tool): the page still shows the model.
        matrices[name] = stored if stored is not None else scores.confusion_counts(
            data.y_true, predicted_index(data), n_classes)
    return matrices


def stored_matrix(metrics: Mapping[str, Any], n_classes: int) -> np.ndarray | None:
    """metrics.json's ``confusion_matrix`` as int64 ``(C, C)``, or None when it is missing or
    is not ``n_classes`` square rows of non-negative whole counts."""
    return per_class.checked_matrix(metrics.get("confusion_matrix"), n_classes)


def confusion_long(matrices: Mapping[str, np.ndarray], class_names: Sequence[str]) -> pd.DataFrame:
    """All matrices as one table: model, true, predicted, count, row share (for CSV export)."""
    rows = []
    for model, matrix in matrices.items():
        totals = np.asarray(matrix).sum(axis=1)
        for i, true in enumerate(class_names):
            for j, pred in enumerate(class_names):
                count = int(matrix[i, j])
                rows.append({"model": model, "true": true, "predicted": pred, "count": count,
                             "row_share": count / totals[i] if totals[i] else 0.0})
    return pd.DataFrame(rows, columns=["model", "true", "predicted", "count", "row_share"])


def cell_options(matrix: np.ndarray, class_names: Sequence[str]) -> list[tuple[str, str]]:
    """Non-empty cells as (true, predicted): mistakes first, largest first, then the diagonal."""
    cells = [
        (int(matrix[i, j]), i == j, true, pred)
        for i, true in enumerate(class_names)
        for j, pred in enumerate(class_names)
        if matrix[i, j] > 0
    ]
    cells.sort(key=lambda cell: (cell[1], -cell[0]))
    return [(true, pred) for _, _, true, pred in cells]


def cell_label(cell: tuple[str, str], matrix: np.ndarray, class_names: Sequence[str]) -> str:
    """How a cell reads in the fallback selectbox, e.g. ``glioma → meningioma (5 images)``."""
    true, pred = cell
    count = cell_count(cell, matrix, class_names)
    mark = "✓" if true == pred else "✗"
    return f"{mark} true {true} → predicted {pred} ({count} image{'' if count == 1 else 's'})"


def cell_predictions(run: Run, data: ModelData, true_class: str, predicted_class: str) -> pd.DataFrame:
    """The test images of one confusion cell: id, label, prediction and every class probability."""
    names = run.class_names
    in_row = np.asarray(data.y_true) == names.index(true_class)
    mask = in_row & (predicted_index(data) == names.index(predicted_class))
    table = pd.DataFrame({"id": np.asarray(data.ids, dtype=str)[mask], "label": true_class, "pred": predicted_class})
    proba = np.asarray(data.proba)[mask]
    for index, column in enumerate(probability_columns(names)):
        table[column] = proba[:, index]
    return table.reset_index(drop=True)


def cell_from_selection(selection: Mapping[str, Any] | None, class_names: Sequence[str]) -> tuple[str, str] | None:
    """The (true, predicted) cell a click on a confusion figure chose, or None.

    Points of the figure's cell markers carry ``x`` (predicted) and ``y`` (true).
    """
    points = (selection or {}).get("points") or []
    for point in points:
        true, pred = point.get("y"), point.get("x")
        if true in class_names and pred in class_names:
            return str(true), str(pred)
    return None


def cell_count(cell: tuple[str, str], matrix: np.ndarray, class_names: Sequence[str]) -> int:
    names = list(class_names)
    return int(np.asarray(matrix)[names.index(cell[0]), names.index(cell[1])])


def empty_cell_message(model: str, cell: tuple[str, str]) -> str:
    """What the explorer says for a clicked cell that holds no image."""
    true, pred = cell
    return f"**{model}**: no test image of true class {true} was predicted {pred} (0 images in this cell)."


def clicked_cell(
    selection: Mapping[str, Any] | None, matrix: np.ndarray, class_names: Sequence[str]
) -> tuple[tuple[str, str] | None, bool]:
    """The cell a click chose and whether it is empty: ``(cell, False)`` for a cell with
    images, ``(cell, True)`` for one without (the explorer says so), ``(None, False)`` when
    the click hit no cell."""
    cell = cell_from_selection(selection, class_names)
    if cell is None:
        return None, False
    return cell, cell_count(cell, matrix, class_names) == 0


def thumbnail_caption(row: Mapping[str, Any], class_names: Sequence[str]) -> str:
    """Caption of one thumbnail: true label, prediction and its probability."""
    p_pred = common.as_number(row.get(f"p_{row['pred']}"))
    p_true = common.as_number(row.get(f"p_{row['label']}"))
    if row["label"] == row["pred"]:
        return f"{row['label']} ✓ p={p_pred:.2f}"
    return f"true {row['label']} (p={p_true:.2f}) · pred {row['pred']} (p={p_pred:.2f})"


# --------------------------------------------------------------------------- figures
CONFUSION_SCALE = "Blues"


# Red: better for model A, blue: better for model B (see difference_figure).
DIFFERENCE_SCALE = "RdBu"


def row_normalize(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its total (recall per true class); an empty row stays 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals != 0)


def _cell_grid(class_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Predicted (x) and true (y) label of every cell, row by row."""
    names = list(class_names)
    return [pred for _ in names for pred in names], [true for true in names for _ in names]


def confusion_figure(
    matrix: np.ndarray, class_names: Sequence[str], normalized: bool, *, title: str = ""
) -> go.Figure:
    """Heatmap of counts (rows true, columns predicted) or of row shares.

    Plotly heatmaps send no click events to Streamlit, so an invisible marker sits on each
    cell: clicking a cell selects that marker, whose ``x``/``y`` name the cell.
    """
    names = list(class_names)
    counts = np.asarray(matrix, dtype=np.int64)
    shares = row_normalize(counts)
    values = shares if normalized else counts
    text = [[f"{v:.0%}" if normalized else f"{v:d}" for v in row] for row in values]
    if normalized:  # a class without test images (a one-class folder's others) has no shares
        text = [row if total else [common.MISSING] * len(row) for row, total in zip(text, counts.sum(axis=1))]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale=CONFUSION_SCALE,
            zmin=0,
            zmax=1 if normalized else max(int(counts.max()), 1),
            showscale=False,
            hoverinfo="skip",
        )
    )
    cell_x, cell_y = _cell_grid(names)
    custom = [[int(counts[i, j]), float(shares[i, j])] for i in range(len(names)) for j in range(len(names))]
    figure.add_trace(
        go.Scatter(
            x=cell_x,
            y=cell_y,
            customdata=custom,
            mode="markers",
            marker={"symbol": "square", "size": 40, "color": "rgba(0,0,0,0)"},
            selected={"marker": {"color": "rgba(250, 204, 21, 0.35)"}},
            unselected={"marker": {"opacity": 1}},
            showlegend=False,
            hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata[0]} images"
            " (%{customdata[1]:.1%} of the row)<extra></extra>",
        )
    )
    figure.update_layout(title=title, margin={"t": 50, "b": 40, "l": 40, "r": 10}, clickmode="event+select")
    # Fixed ranges: the click markers must not pad the axes and shrink the cells.
    last = len(names) - 0.5
    figure.update_xaxes(title="Predicted", side="bottom", type="category", range=[-0.5, last])
    figure.update_yaxes(title="True", type="category", range=[last, -0.5])
    return figure


def difference_figure(
    matrix_a: np.ndarray,
    matrix_b: np.ndarray,
    class_names: Sequence[str],
    name_a: str,
    name_b: str,
    normalized: bool,
    *,
    title: str = "",
) -> go.Figure:
    """B − A per cell; blue where B does better (more on the diagonal, fewer off it)."""
    names = list(class_names)
    if normalized:
        a, b = row_normalize(matrix_a), row_normalize(matrix_b)
    else:
        a, b = np.asarray(matrix_a, dtype=np.float64), np.asarray(matrix_b, dtype=np.float64)
    difference = b - a
    # Off the diagonal fewer is better, so its sign flips for the colour (not the text).
    benefit = np.where(np.eye(len(names), dtype=bool), difference, -difference)
    limit = max(float(np.abs(benefit).max()), 1e-9)
    text = [[f"{v:+.0%}" if normalized else f"{v:+.0f}" for v in row] for row in difference]
    figure = go.Figure(
        go.Heatmap(
            z=benefit,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale=DIFFERENCE_SCALE,
            zmid=0,
            zmin=-limit,
            zmax=limit,
            colorbar={
                "tickvals": [-limit, 0, limit],
                "ticktext": [f"{name_a} better", "same", f"{name_b} better"],
            },
            hovertemplate=f"true %{{y}}<br>predicted %{{x}}<br>{name_b} − {name_a}: %{{text}}<extra></extra>",
        )
    )
    figure.update_layout(title=title or f"{name_b} − {name_a}", margin={"t": 50, "b": 40, "l": 40, "r": 10})
    figure.update_xaxes(title="Predicted", type="category")
    figure.update_yaxes(title="True", autorange="reversed", type="category")
    return figure
