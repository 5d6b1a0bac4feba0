"""What the ROC & PR curves page shows (no Streamlit): per-class and tumor curves of every
model, their areas, and the overlay figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bt_core.data.classes import negative_class_index
from bt_core.metrics import curves as metric_curves
from bt_core.metrics import operating_point
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views import figures


def has_tumor_class(class_names: Sequence[str]) -> bool:
    """True when the classes can collapse to tumor vs no tumor (a no-tumor class, however spelled)."""
    return negative_class_index(class_names) is not None


def class_curves_by_model(
    model_data: Mapping[str, ModelData], class_names: Sequence[str], kind: str
) -> dict[str, pd.DataFrame]:
    """Per model, its one-vs-rest curves (``class, x, y, auc``) of every class."""
    return {
        name: metric_curves.class_curves(data.y_true, data.proba, list(class_names), kind=kind)
        for name, data in model_data.items()
    }


def curves_for_class(
    curves_by_model: Mapping[str, pd.DataFrame], class_name: str
) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Every model's curve of one class (``x``, ``y``) and its area, for an overlay."""
    chosen: dict[str, pd.DataFrame] = {}
    areas: dict[str, float] = {}
    for model, table in curves_by_model.items():
        curve = table[table["class"] == class_name]
        if curve.empty:
            continue
        chosen[model] = curve[["x", "y"]].reset_index(drop=True)
        areas[model] = float(curve["auc"].iloc[0])
    return chosen, areas


def class_prevalence(model_data: Mapping[str, ModelData], class_names: Sequence[str], class_name: str) -> float | None:
    """Share of test images of one class (the precision of guessing), or None without models."""
    for data in model_data.values():
        return float(np.mean(np.asarray(data.y_true) == list(class_names).index(class_name)))
    return None


def tumor_roc_by_model(model_data: Mapping[str, ModelData], class_names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per model, its tumor vs no-tumor ROC as ``x`` (fpr), ``y`` (tpr); empty without a no-tumor class."""
    if not has_tumor_class(class_names):
        return {}
    result = {}
    for name, data in model_data.items():
        try:
            points = metric_curves.tumor_roc(data.y_true, data.proba, list(class_names))
        except ValueError:  # the test set lacks tumors or healthy scans: no curve
            continue
        result[name] = points.rename(columns={"fpr": "x", "tpr": "y"})[["x", "y", "threshold"]]
    return result


# --------------------------------------------------------------------------- figures
CURVE_HEIGHT = 460
CURVE_AXES = {
    "roc": ("False positive rate", "True positive rate"),
    "pr": ("Recall", "Precision"),
}
CURVE_SCORE = {"roc": "AUC", "pr": "AP"}


def _score_text(value: float | None, kind: str) -> str:
    if value is None or not np.isfinite(value):
        return f"{CURVE_SCORE[kind]} n/a"
    return f"{CURVE_SCORE[kind]} {value:.3f}"


def _curve_frame(figure: go.Figure, kind: str, title: str, baseline: float | None) -> go.Figure:
    x_title, y_title = CURVE_AXES[kind]
    if kind == "roc":
        figure.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line=figures.REFERENCE_LINE)
    elif baseline is not None:
        # Precision of a classifier that guesses: the share of positives.
        figure.add_shape(type="line", x0=0, y0=baseline, x1=1, y1=baseline, line=figures.REFERENCE_LINE)
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


def _curve_trace(name: str, curve: pd.DataFrame, score: float | None, kind: str, color: str | None) -> go.Scatter:
    """One curve (``x``, ``y`` columns), named with its AUC / AP."""
    return go.Scatter(
        x=curve["x"],
        y=curve["y"],
        mode="lines",
        name=f"{name} ({_score_text(score, kind)})",
        line={"color": color, "width": 2},
        hovertemplate=f"{name}<br>x %{{x:.3f}}<br>y %{{y:.3f}}<extra></extra>",
    )


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
        figure.add_trace(_curve_trace(model, curve, scores.get(model), kind, colors.get(model)))
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
        color = figures.CLASS_PALETTE[index % len(figures.CLASS_PALETTE)]
        figure.add_trace(_curve_trace(name, curve, score, kind, color))
    return _curve_frame(figure, kind, title, None)


def _threshold_text(threshold: float) -> str:
    return "∞ (nothing called tumor)" if np.isinf(threshold) else f"{threshold:.4f}"


def operating_roc(
    tables: Mapping[str, pd.DataFrame],
    scores: Mapping[str, float | None],
    colors: Mapping[str, str],
    threshold: float,
    *,
    title: str = "",
) -> go.Figure:
    """Each model's tumor vs no-tumor ROC from its threshold table
    (:func:`bt_core.metrics.operating_point.threshold_table`): every point shows its threshold
    and counts on hover, and the point at ``threshold`` is marked (one trace per model, so the
    legend toggles curve and mark together)."""
    figure = go.Figure()
    for model, table in tables.items():
        marked = operating_point.operating_row(table, threshold)
        sizes = np.zeros(len(table))
        sizes[marked] = 14
        # NumPy arrays, not lists: plotly checks a list element by element (seconds for 10 x 1,300 points).
        thresholds = np.array([_threshold_text(value) for value in table["threshold"]])
        custom = table[["specificity", "tp", "fn", "fp", "tn"]].to_numpy(dtype=np.float64)
        figure.add_trace(go.Scatter(
            x=table["fpr"], y=table["sensitivity"], mode="lines+markers",
            name=f"{model} ({_score_text(scores.get(model), 'roc')})",
            line={"color": colors.get(model), "width": 2},
            marker={"size": sizes, "color": colors.get(model), "line": {"color": "white", "width": 2}},
            text=thresholds,
            customdata=custom,
            hovertemplate=(f"{model}<br>threshold %{{text}}<br>sensitivity %{{y:.1%}}<br>"
                           "specificity %{customdata[0]:.1%}<br>TP %{customdata[1]} · FN %{customdata[2]} · "
                           "FP %{customdata[3]} · TN %{customdata[4]}<extra></extra>"),
        ))
    return _curve_frame(figure, "roc", title, None)


KINDS = {"roc": "ROC", "pr": "Precision-recall"}


def area_table(curves_by_model: Mapping[str, pd.DataFrame], class_names: Sequence[str]) -> pd.DataFrame:
    """Models × classes: the area (AUC or average precision) of every curve."""
    rows = []
    for model, table in curves_by_model.items():
        areas = table.groupby("class", sort=False)["auc"].first()
        rows.append({"Model": model, **{name: areas.get(name) for name in class_names}})
    return pd.DataFrame(rows, columns=["Model", *class_names])
