"""The Models page's interval chart (no Streamlit): each model's estimate and bootstrap
interval per metric, one panel each, with ticks that never repeat.

Plotly's own ticks with a fixed ``tickformat`` repeat on a narrow range ("0.98 0.98 0.99
0.99" for AUCs between 0.975 and 0.995), so each panel gets explicit ticks: a 1 / 2 / 5 step
chosen from the panel's span and as many decimals as that step needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

LEADERBOARD_CI_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro F1", "macro_auc": "Macro AUC"}
# About this many ticks per panel.
TARGET_TICKS = 4
# A panel whose values all coincide spans at least this much.
MIN_SPAN = 0.01


def nice_step(span: float, target: int = TARGET_TICKS) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about ``target`` ticks over ``span``."""
    raw = max(span, 1e-12) / max(target, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * magnitude * (1 + 1e-9):  # float error must not skip a step
            return multiple * magnitude
    return 10 * magnitude


def axis_ticks(low: float, high: float, percent: bool) -> tuple[list[float], list[str], list[float]]:
    """Tick values, their labels and the axis range for values in [low, high]: labels are
    percentages (``97.5%``) or decimals (``0.985``) with the decimals the step needs, so no
    two labels are the same."""
    if not (np.isfinite(low) and np.isfinite(high)):
        low, high = 0.0, 1.0
    low, high = min(low, high), max(low, high)
    if high - low < MIN_SPAN:
        middle = (low + high) / 2
        low, high = middle - MIN_SPAN / 2, middle + MIN_SPAN / 2
    step = nice_step(high - low)
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    values = [round(first + i * step, 12) for i in range(int(round((last - first) / step)) + 1)]
    shown_step = step * 100 if percent else step
    decimals = max(0, -math.floor(math.log10(shown_step) + 1e-9))
    if percent:
        labels = [f"{value * 100:.{decimals}f}%" for value in values]
    else:
        labels = [f"{value:.{decimals}f}" for value in values]
    pad = step * 0.25
    return values, labels, [first - pad, last + pad]


def _panel_bounds(estimate: pd.Series, lower: pd.Series, upper: pd.Series) -> tuple[float, float]:
    values = pd.concat([estimate, lower, upper]).astype("float64")
    values = values[np.isfinite(values)]
    if values.empty:
        return float("nan"), float("nan")
    return float(values.min()), float(values.max())


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
        is_auc = key.endswith("auc")
        value_format = ".3f" if is_auc else ".1%"
        estimate = pd.to_numeric(leaderboard[key], errors="coerce")
        lower = pd.to_numeric(leaderboard.get(f"{key}_lower", estimate), errors="coerce")
        upper = pd.to_numeric(leaderboard.get(f"{key}_upper", estimate), errors="coerce")
        values, labels, axis_range = axis_ticks(*_panel_bounds(estimate, lower, upper), percent=not is_auc)
        figure.update_xaxes(tickmode="array", tickvals=values, ticktext=labels, range=axis_range,
                            row=1, col=column_index)
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
