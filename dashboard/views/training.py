"""What the Training page shows (no Streamlit): each model's history, its phases and best
epoch, and the learning-curve figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bt_core.artifacts import Run
from bt_dashboard.views import common, figures


def histories(run: Run, models: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """Per model (manifest order), its history table; models without one are left out."""
    names = list(run.models) if models is None else list(models)
    return {
        name: run.models[name].history
        for name in names
        if name in run.models and run.models[name].history is not None and not run.models[name].history.empty
    }


def history_problems(run: Run) -> dict[str, str]:
    """Why a model has no training curves (its history.csv is unreadable), by model."""
    return {name: str(model.history_problem) for name, model in run.models.items()
            if model.history_problem}


def best_epoch(run: Run, model: str) -> float | None:
    value = common.as_number(run.models[model].entry.best_epoch)
    return value if np.isfinite(value) else None


PHASE_SHADE = "rgba(47, 109, 181, 0.08)"
PHASE_LINE = {"color": "#2f6db5", "dash": "dash", "width": 1}
BEST_EPOCH_LINE = {"color": "#d97706", "dash": "dot", "width": 1}


def phase_spans(history: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(phase, first epoch, last epoch) of each consecutive run of one phase."""
    if history.empty or "phase" not in history:
        return []
    phases = history["phase"].astype(str).to_numpy()
    epochs = history["epoch"].to_numpy(dtype=float)
    starts = [0] + [i for i in range(1, len(phases)) if phases[i] != phases[i - 1]]
    ends = starts[1:] + [len(phases)]
    return [(phases[s], epochs[s], epochs[e - 1]) for s, e in zip(starts, ends)]


def phases_text(spans: Sequence[tuple[str, float, float]]) -> str:
    """The phases of :func:`phase_spans` as one line, e.g. ``head (epochs 1–3) → fine_tune (epochs 4–6)``."""
    return " → ".join(f"{phase} (epochs {first:g}–{last:g})" for phase, first, last in spans)


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
    return figures.legend_below(figure)


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
    return figures.legend_below(figure)
