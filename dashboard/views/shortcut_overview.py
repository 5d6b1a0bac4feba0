"""The Shortcuts page's first screen (no Streamlit): the verdict as pictures.

- :func:`overview_figure`: test accuracy (x) against shortcut score (y) per model, the
  "right for the wrong reasons" corner shaded top right, each external evaluation's point
  joined to the model's own;
- :func:`parts_heatmap`: models x flag parts, each part's value against its threshold;
- :func:`mean_maps_figure`: each model's mean map per class (stored by the analysis pass,
  :func:`bt_core.artifacts.maps.load_class_mean_maps`) with the mean head outlined.

Everything is read from the stored summary and files; the verdicts are
:func:`bt_core.shortcuts.flags.flag_verdict`'s.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bt_core.artifacts import ShortcutSummary
from bt_core.shortcuts import flags
from bt_core.shortcuts.wording import PART_LABELS
from bt_dashboard.views.common import as_number
from bt_dashboard.views.shortcuts import mapping, models, verdict_of

OWN_TEST_SET = "own test set"
# The shaded corner: accurate and with a clear shortcut score. Illustrative: the flags decide.
REGION_ACCURACY, REGION_SCORE = 0.8, 0.1
REGION_LABEL = "right for the wrong reasons"
POINT_COLUMNS = ["Model", "Test set", "Accuracy", "Score", "Verdict", "Score measured on"]
VERDICT_MARKERS = {  # symbol, ring colour
    flags.ALL_IMAGES: ("circle", "#c62828"),
    flags.CLASSES_ONLY: ("circle", "#e0a800"),
    flags.NOT_FLAGGED: ("circle-open", None),
    flags.TOO_FEW: ("circle-open-dot", "#9ca3af"),
    flags.FLAGS_NOT_MEASURED: ("circle-open-dot", "#9ca3af"),
}
# Ratio of value to threshold shown at most: beyond it the colour says enough.
RATIO_CAP = 2.0
HEAT_SCALE = [[0.0, "#e8f5e9"], [0.45, "#f1f8e9"], [0.5, "#fff3cd"], [0.75, "#f4a261"], [1.0, "#c62828"]]
MAP_SCALE = "Jet"
HEAD_LEVEL = 0.5  # the outline: where half the class's images have head
CELL_PX = 120
# The heatmap's column heads, short enough to sit side by side.
SHORT_PART_LABELS = {
    "outside_head": "Outside<br>head", "border": "Border", "background_accuracy": "No-head<br>acc.",
    "background_class": "No-head<br>class", "occluded_tumor": "Tumor<br>hidden", "in_box": "In<br>box",
}


# --------------------------------------------------------------------------- accuracy vs score


def overview_points(summary: ShortcutSummary, accuracies: Mapping[str, Any],
                    evaluations: Sequence[tuple[str, ShortcutSummary | None, Mapping[str, Any]]] = ()) -> pd.DataFrame:
    """One row per measured model on its own test set, then one per model and evaluation
    (``(name, its summary or None, its accuracies)``): the evaluation's accuracy and, when it
    was measured, its score, else the run's own (``Score measured on`` says which)."""
    rows = []
    records = models(summary)
    for name, record in records.items():
        rows.append({"Model": name, "Test set": OWN_TEST_SET, "Accuracy": as_number(accuracies.get(name)),
                     "Score": as_number(record.get("score")), "Verdict": verdict_of(record).text,
                     "Score measured on": OWN_TEST_SET})
    for evaluation, evaluation_summary, evaluation_accuracies in evaluations:
        measured = models(evaluation_summary) if evaluation_summary is not None else {}
        for name, record in records.items():
            accuracy = as_number(evaluation_accuracies.get(name))
            if not np.isfinite(accuracy):
                continue
            own = name not in measured
            source = measured.get(name, record)
            rows.append({"Model": name, "Test set": evaluation, "Accuracy": accuracy,
                         "Score": as_number(source.get("score")), "Verdict": verdict_of(source).text,
                         "Score measured on": OWN_TEST_SET if own else evaluation})
    table = pd.DataFrame(rows, columns=POINT_COLUMNS)
    table[["Accuracy", "Score"]] = table[["Accuracy", "Score"]].astype("float64")
    return table


def _marker(verdict_text: str, color: str) -> dict[str, Any]:
    level = flags.CLASSES_ONLY if verdict_text.endswith(" only") else verdict_text
    symbol, ring = VERDICT_MARKERS.get(level, ("circle-open", None))
    return {"symbol": symbol, "size": 16, "color": color, "line": {"width": 3, "color": ring or color}}


def overview_figure(points: pd.DataFrame, colors: Mapping[str, str]) -> go.Figure:
    """Accuracy against score, one colour per model; the shaded corner top right; an
    evaluation's point is a diamond joined to the model's own by a dotted line."""
    figure = go.Figure()
    finite = points.dropna(subset=["Accuracy", "Score"])
    top = max(0.3, float(finite["Score"].max()) * 1.25) if len(finite) else 0.3
    left = min(0.5, float(finite["Accuracy"].min()) - 0.05) if len(finite) else 0.5
    figure.add_shape(type="rect", x0=REGION_ACCURACY, x1=1.02, y0=REGION_SCORE, y1=top, line={"width": 0},
                     fillcolor="rgba(198, 40, 40, 0.08)", layer="below")
    figure.add_annotation(x=1.01, y=top, text=f"<b>{REGION_LABEL}</b>", showarrow=False, xanchor="right",
                          yanchor="top", font={"color": "#c62828"})
    # Labels alternate above and below, by score: close models' names do not overlap.
    ranked = points[points["Test set"] == OWN_TEST_SET].sort_values("Score", ascending=False, kind="stable")["Model"]
    label_at = {name: "top left" if rank % 2 == 0 else "bottom left" for rank, name in enumerate(ranked)}
    for name, rows in points.groupby("Model", sort=False):
        color = colors.get(str(name), "#444")
        own = rows[rows["Test set"] == OWN_TEST_SET]
        others = rows[rows["Test set"] != OWN_TEST_SET]
        for _, other in others.iterrows():  # the move from its own test set to the evaluation
            if len(own):
                figure.add_scatter(x=[own["Accuracy"].iloc[0], other["Accuracy"]], y=[own["Score"].iloc[0], other["Score"]],
                                   mode="lines", line={"color": color, "dash": "dot", "width": 2}, showlegend=False,
                                   hoverinfo="skip", legendgroup=str(name))
        for _, row in own.iterrows():
            figure.add_scatter(
                x=[row["Accuracy"]], y=[row["Score"]], mode="markers+text", name=str(name), legendgroup=str(name),
                text=[str(name)], textposition=label_at.get(name, "top left"),
                marker=_marker(str(row["Verdict"]), color),
                hovertemplate=(f"<b>{name}</b><br>accuracy %{{x:.1%}}<br>shortcut score %{{y:.2f}}<br>"
                               f"{row['Verdict']}<extra></extra>"))
        for _, row in others.iterrows():
            note = ("" if row["Score measured on"] != OWN_TEST_SET
                    else "<br>score of its own test set (the evaluation was not measured)")
            figure.add_scatter(
                x=[row["Accuracy"]], y=[row["Score"]], mode="markers+text", name=f"{name} on {row['Test set']}",
                legendgroup=str(name), showlegend=False, text=[str(row["Test set"])], textposition="bottom center",
                marker={"symbol": "diamond", "size": 13, "color": color, "line": {"width": 1, "color": "#333"}},
                hovertemplate=(f"<b>{name}</b> on {row['Test set']}<br>accuracy %{{x:.1%}}<br>shortcut score "
                               f"%{{y:.2f}}{note}<extra></extra>"))
    figure.update_layout(
        title="Accurate, but for the wrong reasons?", showlegend=False, margin={"t": 50, "b": 40, "l": 50, "r": 20},
        height=340,
        xaxis={"title": "test accuracy", "tickformat": ".0%", "range": [left, 1.02]},
        yaxis={"title": "shortcut score (0 best)", "range": [-0.02, top], "zeroline": True},
    )
    return figure


OVERVIEW_CAPTION = ("Ring: red, flagged on all images; amber, within one class only; none, not flagged. A diamond: "
                    "the model on an external evaluation, joined to it. Shaded: accuracy ≥ "
                    f"{REGION_ACCURACY:.0%}, score ≥ {REGION_SCORE:.2f}, a guide; the flags decide.")


# --------------------------------------------------------------------------- parts heatmap


def _ratio(part: Mapping[str, Any]) -> float:
    """Value over threshold ("above" parts) or threshold over value ("below"): > 1 fires."""
    value, threshold = as_number(part.get("value")), as_number(part.get("threshold"))
    if not (np.isfinite(value) and np.isfinite(threshold)):
        return float("nan")
    if part.get("direction") == "below":
        return RATIO_CAP if value <= 0 else min(threshold / value, RATIO_CAP)
    return RATIO_CAP if threshold <= 0 < value else (min(value / threshold, RATIO_CAP) if threshold > 0 else 0.0)


def _percent(value: float) -> str:
    return f"{value:.1%}" if np.isfinite(value) else "n/a"


FIRED_ALL, FIRED_CLASS = "⚑", "◐"


def ratio_text(ratio: float) -> str:
    """Two decimals, rounded down below 1 so a part short of its threshold never reads 1.00."""
    if not np.isfinite(ratio):
        return "—"
    return f"{np.floor(ratio * 100) / 100:.2f}" if ratio < 1 else f"{ratio:.2f}"


def parts_grid(summary: ShortcutSummary) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(ratios, texts, hovers)``, models x part labels: each part's ratio to its threshold on
    all test images (per class only for "background tells the class": the highest class),
    the cell's words (the ratio, then :data:`FIRED_ALL` when it fired on all images,
    :data:`FIRED_CLASS` when within a class only; "too few" images) and its hover (value,
    threshold, reference, where it fired, when it fires)."""
    labels = [PART_LABELS[name] for name in flags.ALL_PARTS]
    ratios = pd.DataFrame(np.nan, index=list(models(summary)), columns=labels, dtype="float64")
    texts = pd.DataFrame("", index=ratios.index, columns=labels)
    hovers = pd.DataFrame("", index=ratios.index, columns=labels)
    for name, record in models(summary).items():
        verdict = verdict_of(record)
        parts = {str(group): mapping(values) for group, values in mapping(record.get("parts")).items()}
        fired = {str(flag.get("name")): flag for flag in verdict.flags}
        for part_name, label in zip(flags.ALL_PARTS, labels):
            groups = ["all"] if part_name in parts.get("all", {}) else [g for g in parts if part_name in parts[g]]
            if not groups:
                texts.loc[name, label], hovers.loc[name, label] = "—", f"{name} · {label}: not measured"
                continue
            ratio_of = {group: _ratio(mapping(parts[group][part_name])) for group in groups}
            group = max(ratio_of, key=lambda g: ratio_of[g] if np.isfinite(ratio_of[g]) else -1.0)
            part, flag = mapping(parts[group][part_name]), mapping(fired.get(part_name))
            classes = [str(c) for c in flag.get("classes") or []]
            if not flags.judged(record, group, part_name):
                texts.loc[name, label] = "too few"
            else:
                ratios.loc[name, label] = ratio_of[group]
                marks = (f" {FIRED_ALL}" if flag.get("overall") else "") + (f" {FIRED_CLASS}" if classes else "")
                texts.loc[name, label] = ratio_text(ratio_of[group]) + marks
            where = "all test images" if group == "all" else f"{group} images (the highest class)"
            fired_text = ("fired on all images" if flag.get("overall") else "not fired on all images") + (
                f"; fired within {', '.join(classes)}" if classes else "")
            hovers.loc[name, label] = (
                f"<b>{name} · {label}</b> on {where}<br>"
                f"value {_percent(as_number(part.get('value')))}, threshold {_percent(as_number(part.get('threshold')))} "
                f"(fires when {part.get('direction') or '?'}), reference {_percent(as_number(part.get('reference')))}"
                f"<br>{fired_text if flag else 'not fired'}")
    return ratios, texts, hovers


def parts_heatmap(summary: ShortcutSummary) -> go.Figure:
    """Models x parts, coloured by the ratio to the threshold (1: at the threshold)."""
    ratios, texts, hovers = parts_grid(summary)
    short = {PART_LABELS[name]: SHORT_PART_LABELS[name] for name in flags.ALL_PARTS}
    figure = go.Figure(go.Heatmap(
        z=ratios.to_numpy(), x=[short.get(c, c) for c in ratios.columns], y=list(ratios.index), text=texts.to_numpy(),
        texttemplate="%{text}", textfont={"size": 13}, customdata=hovers.to_numpy(),
        hovertemplate="%{customdata}<extra></extra>",
        zmin=0.0, zmax=RATIO_CAP, colorscale=HEAT_SCALE, xgap=2, ygap=2,
        colorbar={"title": "value /<br>threshold", "tickvals": [0, 1, 2], "ticktext": ["0", "1: fires", "≥ 2"],
                  "thickness": 12},
    ))
    figure.update_layout(title="Each flag part against its threshold", height=max(220, 70 * len(ratios) + 120),
                         margin={"t": 50, "b": 40, "l": 20, "r": 20},
                         yaxis={"autorange": "reversed"}, xaxis={"side": "bottom", "tickangle": 0})
    return figure


HEATMAP_CAPTION = ("Each cell: the part's value on all test images over its threshold (energy in box: threshold "
                   f"over value): above 1 fires. {FIRED_ALL} fired on all images, {FIRED_CLASS} within a class; hover "
                   f"for the numbers. A part needs {flags.MIN_GROUP_IMAGES} images. Thresholds: outside head and border "
                   f"> {flags.OUTSIDE_HEAD_LIMIT:.0%} / {flags.BORDER_LIMIT:.0%} and above a centred-Gaussian and an evenly "
                   f"spread map; no-head accuracy > chance + {flags.BACKGROUND_ACCURACY_MARGIN * 100:.0f} points; no-head "
                   f"class: recall − false alarms > {flags.BACKGROUND_CLASS_LIMIT:.0%}; tumor hidden, still tumor > "
                   f"{flags.OCCLUDED_TUMOR_LIMIT:.0%}; energy in box < the Gaussian's.")


# --------------------------------------------------------------------------- mean maps


def mean_map_classes(means: Mapping[str, Mapping[str, Any]], class_names: Sequence[str]) -> list[str]:
    """The classes any model has a mean map of, in the run's class order."""
    present = {str(c) for stored in means.values() for c in stored["classes"]}
    return [c for c in class_names if c in present] + sorted(present - set(class_names))


def head_outline(head: np.ndarray, level: float = HEAD_LEVEL) -> tuple[list[float | None], list[float | None]]:
    """The outline(s) of ``head >= level`` as one line (pixel centres; None between pieces),
    for a scatter trace over a heatmap of the same cells."""
    mask = (np.asarray(head, dtype=np.float32) >= level).astype(np.uint8)
    contours, _hierarchy = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    x: list[float | None] = []
    y: list[float | None] = []
    for contour in contours:
        points = contour[:, 0, :].astype(float)
        points = np.vstack([points, points[:1]])  # closed
        x += [*points[:, 0].tolist(), None]
        y += [*points[:, 1].tolist(), None]
    return x, y


def mean_maps_figure(means: Mapping[str, Mapping[str, Any]], class_names: Sequence[str], method_label: str) -> go.Figure:
    """A grid, one row per model and one column per class: the mean map (one colour scale for
    all, 0 to the largest mean) under the outline of the mean head (where half the class's
    images have head)."""
    classes = mean_map_classes(means, class_names)
    names = list(means)
    figure = make_subplots(rows=len(names), cols=len(classes), horizontal_spacing=0.01, vertical_spacing=0.03,
                           column_titles=classes, row_titles=names)
    top = max((float(np.max(stored["maps"])) for stored in means.values() if np.size(stored["maps"])), default=1.0)
    for row, name in enumerate(names, start=1):
        stored = means[name]
        where = {str(c): i for i, c in enumerate(stored["classes"])}
        for column, class_name in enumerate(classes, start=1):
            if class_name not in where:
                continue
            index = where[class_name]
            count = int(stored["counts"][index])
            figure.add_trace(go.Heatmap(
                z=stored["maps"][index], zmin=0.0, zmax=top or 1.0, colorscale=MAP_SCALE, showscale=row == column == 1,
                colorbar={"title": "mean<br>map", "len": 0.8}, name=f"{name} · {class_name}",
                hovertemplate=f"{name} · {class_name} ({count} images): %{{z:.2f}}<extra></extra>",
            ), row=row, col=column)
            x, y = head_outline(stored["heads"][index])
            figure.add_scatter(x=x, y=y, mode="lines", line={"color": "white", "width": 2}, hoverinfo="skip",
                               showlegend=False, name="head", row=row, col=column)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    for index in range(1, len(names) * len(classes) + 1):  # square cells
        figure.update_layout({f"yaxis{'' if index == 1 else index}": {"scaleanchor": f"x{'' if index == 1 else index}"}})
    figure.update_layout(title=f"Mean {method_label} map per class (white: the mean head's outline)",
                         height=CELL_PX * len(names) + 90, width=None, margin={"t": 70, "b": 10, "l": 10, "r": 40})
    return figure


def mean_maps_caption(method_label: str) -> str:
    return (f"Each cell: the mean of the model's stored {method_label} maps (of the class it predicted) over the "
            "test images of that class; where the colour sits outside the white outline, the model looks at "
            "background on average.")


EXPLAIN_COMMAND = "bt-zoo explain {run_dir}"


def explain_command(run_dir: Path | str) -> str:
    """The command that (re)computes a run's maps, mean maps and shortcut measures."""
    return EXPLAIN_COMMAND.format(run_dir=shlex.quote(str(run_dir)))


def missing_mean_maps_line(missing: Sequence[str], command: str) -> str:
    """The one line for models whose mean maps the run does not hold."""
    return (f"No mean maps per class stored for {', '.join(missing)} (analyzed before they were stored): "
            f"re-run `{command}`.")
