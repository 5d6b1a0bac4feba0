"""What the Calibration page shows (no Streamlit): reliability bins, the per-model
calibration table and the reliability figure.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler
from plotly.subplots import make_subplots

from bt_core.metrics import scores
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views import common, figures


def reliability_by_model(model_data: Mapping[str, ModelData], n_bins: int) -> dict[str, pd.DataFrame]:
    return {
        name: scores.reliability_bins(data.y_true, data.proba, n_bins=n_bins) for name, data in model_data.items()
    }


def calibration_table(model_data: Mapping[str, ModelData], n_bins: int) -> pd.DataFrame:
    """Per model: ECE (with ``n_bins``), Brier score, mean confidence and accuracy, each from
    :mod:`bt_core.metrics.scores` (only these: ``model_scores`` would cost every AUC too)."""
    rows = []
    for name, data in model_data.items():
        proba = np.asarray(data.proba)
        rows.append(
            {
                common.MODEL: name,
                common.ECE: scores.expected_calibration_error(data.y_true, proba, n_bins=n_bins),
                common.BRIER: scores.brier_score(data.y_true, proba),
                "Mean confidence": float(proba.max(axis=1).mean()),
                common.ACCURACY: scores.accuracy(data.y_true, proba),
            }
        )
    table = pd.DataFrame(rows, columns=[common.MODEL, common.ECE, common.BRIER, "Mean confidence", common.ACCURACY])
    table["Confidence − accuracy"] = table["Mean confidence"] - table[common.ACCURACY]
    return table


def style_calibration_table(table: pd.DataFrame) -> Styler:
    """The calibration table as shown: shares as percentages, the lowest ECE and Brier marked."""
    return table.style.format(
        {common.ECE: "{:.1%}", common.BRIER: "{:.3f}", "Mean confidence": "{:.1%}", common.ACCURACY: "{:.1%}",
         "Confidence − accuracy": "{:+.1%}"}
    ).highlight_min(subset=[common.ECE, common.BRIER], props=common.BEST_VALUE_CSS)


# --------------------------------------------------------------------------- figures


def reliability_figure(
    bins: Mapping[str, pd.DataFrame], ece: Mapping[str, float], colors: Mapping[str, str], *, title: str = ""
) -> go.Figure:
    """Accuracy against mean confidence per bin for every model; below, images per bin."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.05)
    figure.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=figures.REFERENCE_LINE, name="perfectly calibrated"),
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
    return figures.legend_right(figure)
