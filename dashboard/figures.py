"""Pure Plotly figure builders of the comparison pages and the report (no Streamlit).

Every builder takes plain tables or arrays and returns a ``go.Figure``; colours per model
come from :func:`model_colors`, so one model has one colour on every page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# D3's ten, then Dark24: a zoo larger than ten models still gets distinct colours.
MODEL_PALETTE = px.colors.qualitative.D3 + px.colors.qualitative.Dark24
CLASS_PALETTE = px.colors.qualitative.Set2
REFERENCE_LINE = {"color": "#9ca3af", "dash": "dot", "width": 1}
PHASE_SHADE = "rgba(47, 109, 181, 0.08)"
PHASE_LINE = {"color": "#2f6db5", "dash": "dash", "width": 1}
BEST_EPOCH_LINE = {"color": "#d97706", "dash": "dot", "width": 1}
CONFUSION_SCALE = "Blues"
# Red: better for model A, blue: better for model B (see difference_figure).
DIFFERENCE_SCALE = "RdBu"
PNG_SCALE = 2
CURVE_HEIGHT = 460

CURVE_AXES = {
    "roc": ("False positive rate", "True positive rate"),
    "pr": ("Recall", "Precision"),
}
CURVE_SCORE = {"roc": "AUC", "pr": "AP"}

LEADERBOARD_CI_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro F1", "macro_auc": "Macro AUC"}


def model_colors(model_names: Sequence[str]) -> dict[str, str]:
    """One colour per model, by position in the run's manifest (stable across pages)."""
    return {name: MODEL_PALETTE[index % len(MODEL_PALETTE)] for index, name in enumerate(model_names)}


def export_config(filename: str) -> dict:
    """Plotly config: the modebar camera saves a PNG at twice the size under ``filename``."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": PNG_SCALE},
    }


def _legend_below(figure: go.Figure) -> go.Figure:
    """Legend under the x axes: above, it would hide the subplot titles."""
    figure.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0, "title": None},
        margin={"t": 60, "b": 90, "l": 50, "r": 20},
    )
    return figure


def _legend_right(figure: go.Figure) -> go.Figure:
    """A vertical legend right of the plot: room for many models without hiding the title."""
    figure.update_layout(
        legend={"orientation": "v", "yanchor": "top", "y": 1, "x": 1.02, "xanchor": "left", "title": None},
        margin={"t": 60, "b": 40, "l": 50, "r": 20},
    )
    return figure


def _score_text(value: float | None, kind: str) -> str:
    if value is None or not np.isfinite(value):
        return f"{CURVE_SCORE[kind]} n/a"
    return f"{CURVE_SCORE[kind]} {value:.3f}"


def _curve_frame(figure: go.Figure, kind: str, title: str, baseline: float | None) -> go.Figure:
    x_title, y_title = CURVE_AXES[kind]
    if kind == "roc":
        figure.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line=REFERENCE_LINE)
    elif baseline is not None:
        # Precision of a classifier that guesses: the share of positives.
        figure.add_shape(type="line", x0=0, y0=baseline, x1=1, y1=baseline, line=REFERENCE_LINE)
    # The legend sits in the corner a good curve leaves empty: lower right (ROC), lower left (PR).
    corner = {"x": 0.98, "xanchor": "right"} if kind == "roc" else {"x": 0.02, "xanchor": "left"}
    figure.update_layout(
        title=title,
        hovermode="closest",
        height=CURVE_HEIGHT,
        legend={**corner, "y": 0.02, "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.85)",
                "bordercolor": "#e5e7eb", "borderwidth": 1, "title": None},
        margin={"t": 50, "b": 40, "l": 50, "r": 20},
    )
    figure.update_xaxes(title=x_title, range=[-0.01, 1.01], constrain="domain")
    figure.update_yaxes(title=y_title, range=[-0.01, 1.01])
    return figure


# --------------------------------------------------------------------------- ROC / PR


def roc_overlay(
    curves: Mapping[str, pd.DataFrame],
    scores: Mapping[str, float | None],
    colors: Mapping[str, str],
    *,
    kind: str = "roc",
    title: str = "",
    baseline: float | None = None,
) -> go.Figure:
    """One curve per model (``x``, ``y`` columns), its AUC / AP in the legend."""
    figure = go.Figure()
    for model, curve in curves.items():
        figure.add_trace(
            go.Scatter(
                x=curve["x"],
                y=curve["y"],
                mode="lines",
                name=f"{model} ({_score_text(scores.get(model), kind)})",
                line={"color": colors.get(model), "width": 2},
                hovertemplate=f"{model}<br>x %{{x:.3f}}<br>y %{{y:.3f}}<extra></extra>",
            )
        )
    return _curve_frame(figure, kind, title, baseline)


def class_curves_figure(
    curves: pd.DataFrame, *, kind: str = "roc", title: str = "", class_names: Sequence[str] | None = None
) -> go.Figure:
    """One curve per class of one model, from a ``class, x, y, auc`` table."""
    figure = go.Figure()
    names = list(class_names) if class_names is not None else list(dict.fromkeys(curves["class"]))
    for index, name in enumerate(names):
        curve = curves[curves["class"] == name]
        if curve.empty:
            continue
        score = float(curve["auc"].iloc[0])
        figure.add_trace(
            go.Scatter(
                x=curve["x"],
                y=curve["y"],
                mode="lines",
                name=f"{name} ({_score_text(score, kind)})",
                line={"color": CLASS_PALETTE[index % len(CLASS_PALETTE)], "width": 2},
                hovertemplate=f"{name}<br>x %{{x:.3f}}<br>y %{{y:.3f}}<extra></extra>",
            )
        )
    return _curve_frame(figure, kind, title, None)


# --------------------------------------------------------------------------- confusion


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


# --------------------------------------------------------------------------- training


def phase_spans(history: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(phase, first epoch, last epoch) of each consecutive run of one phase."""
    if history.empty or "phase" not in history:
        return []
    phases = history["phase"].astype(str).to_numpy()
    epochs = history["epoch"].to_numpy(dtype=float)
    starts = [0] + [i for i in range(1, len(phases)) if phases[i] != phases[i - 1]]
    ends = starts[1:] + [len(phases)]
    return [(phases[s], epochs[s], epochs[e - 1]) for s, e in zip(starts, ends)]


def training_curves_figure(history: pd.DataFrame, *, title: str = "", best_epoch: float | None = None) -> go.Figure:
    """Loss, accuracy (train solid, validation dashed) and learning rate (log) per epoch.

    A later training phase (fine-tuning after the head) is shaded, with a line where it begins.
    """
    figure = make_subplots(
        rows=1, cols=3, subplot_titles=("Loss", "Accuracy", "Learning rate"), horizontal_spacing=0.07
    )
    epoch = history["epoch"]
    series = [
        (1, "loss", "train loss", "#1f77b4", "solid"),
        (1, "val_loss", "validation loss", "#1f77b4", "dash"),
        (2, "accuracy", "train accuracy", "#2ca02c", "solid"),
        (2, "val_accuracy", "validation accuracy", "#2ca02c", "dash"),
        (3, "lr", "learning rate", "#7f7f7f", "solid"),
    ]
    for column_index, column, name, color, dash in series:
        if column not in history or history[column].isna().all():
            continue
        figure.add_trace(
            go.Scatter(
                x=epoch,
                y=history[column],
                mode="lines+markers",
                name=name,
                line={"color": color, "dash": dash},
                marker={"size": 5},
                hovertemplate=f"{name}<br>epoch %{{x}}<br>%{{y:.4g}}<extra></extra>",
            ),
            row=1,
            col=column_index,
        )
    spans = phase_spans(history)
    for phase, first, last in spans[1:]:
        for column_index in (1, 2, 3):
            figure.add_vrect(
                x0=first - 0.5, x1=last + 0.5, fillcolor=PHASE_SHADE, line_width=0, row=1, col=column_index
            )
            figure.add_vline(x=first - 0.5, line=PHASE_LINE, row=1, col=column_index)
        figure.add_annotation(
            x=first - 0.5, y=1.0, xref="x2", yref="y2 domain", text=f"{phase} →",
            showarrow=False, xanchor="left", yanchor="top", font={"color": "#2f6db5"},
        )
    if len(spans) > 1:
        first_phase = spans[0]
        figure.add_annotation(
            x=first_phase[1], y=1.0, xref="x2", yref="y2 domain", text=first_phase[0],
            showarrow=False, xanchor="left", yanchor="top", font={"color": "#6b7280"},
        )
    if best_epoch is not None and np.isfinite(best_epoch):
        for column_index in (1, 2):
            figure.add_vline(x=best_epoch, line=BEST_EPOCH_LINE, row=1, col=column_index)
    figure.update_yaxes(type="log", row=1, col=3, tickformat=".0e", nticks=6)
    figure.update_yaxes(tickformat=".0%", row=1, col=2)
    figure.update_xaxes(title="epoch", dtick=max(1, int(np.ceil(len(history) / 12))))
    figure.update_layout(title=title, hovermode="x unified", height=420)
    return _legend_below(figure)


def validation_overlay_figure(
    histories: Mapping[str, pd.DataFrame], colors: Mapping[str, str], *, title: str = ""
) -> go.Figure:
    """Validation loss and accuracy of every model per epoch, side by side."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Validation loss", "Validation accuracy"))
    for model, history in histories.items():
        for column_index, column in ((1, "val_loss"), (2, "val_accuracy")):
            if column not in history:
                continue
            figure.add_trace(
                go.Scatter(
                    x=history["epoch"], y=history[column], mode="lines", name=model,
                    legendgroup=model, showlegend=column_index == 1,
                    line={"color": colors.get(model)},
                    hovertemplate=f"{model}<br>epoch %{{x}}<br>%{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=column_index,
            )
    figure.update_yaxes(tickformat=".0%", row=1, col=2)
    figure.update_xaxes(title="epoch")
    figure.update_layout(title=title, height=420)
    return _legend_below(figure)


# --------------------------------------------------------------------------- calibration


def reliability_figure(
    bins: Mapping[str, pd.DataFrame], ece: Mapping[str, float], colors: Mapping[str, str], *, title: str = ""
) -> go.Figure:
    """Accuracy against mean confidence per bin for every model; below, images per bin."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.05)
    figure.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=REFERENCE_LINE, name="perfectly calibrated"),
        row=1,
        col=1,
    )
    for model, table in bins.items():
        filled = table[table["count"] > 0]
        score = ece.get(model)
        label = f"{model} (ECE {score:.1%})" if score is not None and np.isfinite(score) else model
        figure.add_trace(
            go.Scatter(
                x=filled["confidence"], y=filled["accuracy"], mode="lines+markers", name=label,
                legendgroup=model, line={"color": colors.get(model)},
                customdata=filled["count"],
                hovertemplate=f"{model}<br>confidence %{{x:.2f}}<br>accuracy %{{y:.2f}}"
                "<br>%{customdata} images<extra></extra>",
            ),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Bar(
                x=(table["lower"] + table["upper"]) / 2, y=table["count"], width=table["upper"] - table["lower"],
                name=model, legendgroup=model, showlegend=False, marker={"color": colors.get(model)},
                opacity=0.5, hovertemplate=f"{model}<br>%{{y}} images<extra></extra>",
            ),
            row=2,
            col=1,
        )
    figure.update_layout(title=title, barmode="overlay")
    figure.update_xaxes(range=[0, 1], row=1, col=1)
    figure.update_xaxes(title="confidence (top-class probability)", range=[0, 1], row=2, col=1)
    figure.update_yaxes(title="accuracy", range=[0, 1.02], row=1, col=1)
    figure.update_yaxes(title="images", row=2, col=1)
    return _legend_right(figure)


# --------------------------------------------------------------------------- significance


def significance_heatmap(matrix: pd.DataFrame, *, alpha: float = 0.05, title: str = "") -> go.Figure:
    """Square p-value matrix; significant cells (p < alpha) dark and starred, the diagonal blank."""
    p_values = matrix.to_numpy(dtype=np.float64)
    text = [
        ["" if not np.isfinite(p) else f"{p:.3g}{'*' if p < alpha else ''}" for p in row] for row in p_values
    ]
    # Colour by evidence: -log10(p), capped so one tiny p does not wash out the rest.
    with np.errstate(divide="ignore"):
        evidence = np.clip(-np.log10(np.clip(p_values, 1e-300, 1)), 0, 6)
    figure = go.Figure(
        go.Heatmap(
            z=evidence,
            x=list(matrix.columns),
            y=list(matrix.index),
            text=text,
            texttemplate="%{text}",
            colorscale="Purples",
            zmin=0,
            zmax=max(3.0, float(np.nanmax(evidence)) if np.isfinite(evidence).any() else 3.0),
            colorbar={"title": {"text": "−log10 p"}},
            hovertemplate="%{y} vs %{x}<br>p = %{text}<extra></extra>",
        )
    )
    figure.update_layout(title=title, margin={"t": 50, "b": 40, "l": 40, "r": 10})
    figure.update_xaxes(type="category")
    figure.update_yaxes(autorange="reversed", type="category")
    return figure


# --------------------------------------------------------------------------- leaderboard


def leaderboard_ci_figure(
    leaderboard: pd.DataFrame,
    colors: Mapping[str, str],
    *,
    metrics: Mapping[str, str] = LEADERBOARD_CI_METRICS,
    title: str = "",
) -> go.Figure:
    """Point estimate and bootstrap interval of each metric (one panel each) per model."""
    shown = {key: label for key, label in metrics.items() if key in leaderboard}
    figure = make_subplots(rows=1, cols=max(len(shown), 1), subplot_titles=list(shown.values()), shared_yaxes=True)
    models = list(leaderboard["model"])
    for column_index, key in enumerate(shown, start=1):
        # AUCs read as 0.95, shares (accuracy, F1) as 95%.
        value_format = ".3f" if key.endswith("auc") else ".1%"
        figure.update_xaxes(tickformat=".2f" if key.endswith("auc") else ".0%", row=1, col=column_index)
        estimate = pd.to_numeric(leaderboard[key], errors="coerce")
        lower = pd.to_numeric(leaderboard.get(f"{key}_lower", estimate), errors="coerce")
        upper = pd.to_numeric(leaderboard.get(f"{key}_upper", estimate), errors="coerce")
        for row_index, model in enumerate(models):
            figure.add_trace(
                go.Scatter(
                    x=[estimate.iloc[row_index]],
                    y=[model],
                    mode="markers",
                    marker={"color": colors.get(model), "size": 11},
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": [upper.iloc[row_index] - estimate.iloc[row_index]],
                        "arrayminus": [estimate.iloc[row_index] - lower.iloc[row_index]],
                        "thickness": 2,
                        "width": 6,
                    },
                    name=model,
                    legendgroup=model,
                    showlegend=False,
                    customdata=[[lower.iloc[row_index], upper.iloc[row_index]]],
                    hovertemplate=f"{model}<br>%{{x:{value_format}}} [%{{customdata[0]:{value_format}}}, "
                    f"%{{customdata[1]:{value_format}}}]<extra></extra>",
                ),
                row=1,
                col=column_index,
            )
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_layout(
        title=title, height=max(200, 90 + 40 * len(models)), margin={"t": 60, "b": 30, "l": 10, "r": 10}
    )
    return figure
