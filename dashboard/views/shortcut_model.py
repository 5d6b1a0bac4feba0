"""What the Shortcuts page shows for one model (no Streamlit): its parts per class, where
each precomputed method looks, the probes, the deletion / insertion curves, its worst
images. Reads the summary as :mod:`bt_dashboard.views.shortcuts` does; the strategy clusters
are in :mod:`bt_dashboard.views.shortcut_clusters`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from bt_core.artifacts import ShortcutSummary
from bt_core.shortcuts.flags import ALL_PARTS, TOO_FEW_IMAGES, flag_verdict, judged
from bt_dashboard.views.common import as_number, image_positions
from bt_dashboard.views.inspect_pictures import compose_overlay, enlarge_image
from bt_dashboard.views.shortcuts import (
    BASELINE_LABELS, BORDER, CHANCE, IN_BOX, NO, OUTSIDE_HEAD, PART_LABELS, POINTING, YES, mapping,
    measured_method, percent,
)


CONDITION_LABELS = {
    "original": "Original",
    "head_only": "Head only",
    "background_only": "Background only",
    "original_boxed": "Original, images with a box",
    "tumor_occluded": "Tumor occluded",
}
PROBE_MEASURES = {
    "accuracy": "Accuracy",
    "tumor_predicted": "Called tumor",
    "mean_true_prob": "Mean true-class probability",
    "mean_confidence": "Mean confidence",
}


# --------------------------------------------------------------------------- parts


def fired_parts(record: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(group, part)`` of every flag the summary stores for the model: "all" for an overall
    flag, and each class it names (:func:`bt_core.shortcuts.measures.flag_list`), groups on too
    few images left out (:func:`bt_core.shortcuts.flags.flag_verdict`)."""
    fired = set()
    for flag in flag_verdict(record).flags:
        name = str(flag.get("name", ""))
        if flag.get("overall"):
            fired.add(("all", name))
        fired.update((str(group), name) for group in flag.get("classes") or [])
    return fired


def parts_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """Every part of every group ("all", then each class): value, reference, threshold,
    direction, rescaled part and whether it fired: read from the stored flags, never
    re-decided ("" when the value or threshold is missing: such a part cannot fire; "too few
    images to judge" below bt_core.shortcuts.flags.MIN_GROUP_IMAGES)."""
    fired = fired_parts(record)
    rows = []
    for group, parts in mapping(record.get("parts")).items():
        parts = {name: mapping(part) for name, part in mapping(parts).items()}
        for name in [*ALL_PARTS, *(n for n in parts if n not in ALL_PARTS)]:
            if name not in parts:
                continue
            part = parts[name]
            value, threshold = as_number(part.get("value")), as_number(part.get("threshold"))
            measured = np.isfinite(value) and np.isfinite(threshold)
            fires = (YES if (str(group), name) in fired else NO) if measured else ""
            rows.append({
                "Group": str(group),
                "Part": PART_LABELS.get(name, name),
                "Value": value,
                "Reference": as_number(part.get("reference")),
                "Threshold": threshold,
                "Fires when": str(part.get("direction") or ""),
                "Part score": as_number(part.get("part")),
                "Fires": fires if judged(record, str(group), name) else TOO_FEW_IMAGES,
            })
    return pd.DataFrame(rows, columns=["Group", "Part", "Value", "Reference", "Threshold", "Fires when",
                                       "Part score", "Fires"])


PARTS_CAPTION = ("Value against its reference (centred-Gaussian map, chance, or 0) and threshold; the part "
                 "score rescales it to 0 (no worse than the reference) … 1 (worst possible). Within a class, "
                 "background-only accuracy is replaced by recall minus false-alarm rate.")


def style_parts(table: pd.DataFrame) -> Styler:
    return table.style.format(
        {"Value": "{:.3f}", "Reference": "{:.3f}", "Threshold": "{:.3f}", "Part score": "{:.2f}"}, na_rep="—")


# --------------------------------------------------------------------------- methods


# Where each precomputed method looks (``attention_by_method``), against the map baselines.
METHOD = "Method"
SCORED = "Used by score and flags"
IMAGES = "Images"
RANK_ACCURACY = "Rank accuracy"
METHOD_MEASURES = {"outside_head": OUTSIDE_HEAD, "border": BORDER, "in_box": IN_BOX, "pointing_hit": POINTING,
                   "rank_accuracy": RANK_ACCURACY}
METHOD_TABLE_COLUMNS = [METHOD, SCORED, IMAGES, *METHOD_MEASURES.values()]


def attention_by_method(record: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``{method: {group: attention}}`` of a model; empty for a summary written before the
    methods were compared (or a malformed entry)."""
    return {str(method): mapping(groups) for method, groups in mapping(record.get("attention_by_method")).items()}


def method_groups(record: Mapping[str, Any]) -> list[str]:
    """The groups measured for any method: "all" first, then the classes in stored order."""
    groups = dict.fromkeys(str(group) for groups in attention_by_method(record).values() for group in groups)
    return ["all", *(group for group in groups if group != "all")] if groups else []


def method_table(summary: ShortcutSummary, record: Mapping[str, Any], group: str = "all",
                 labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per precomputed method of the model (the summary's ``method``, the one the
    score and flags use, first), then the centred-Gaussian and random baselines of ``group``:
    the attention measures of ``group``'s images. Empty (with the columns) when the record
    has no ``attention_by_method``. ``labels`` names the methods (e.g. "Grad-CAM")."""
    labels = labels or {}
    methods = attention_by_method(record)
    if not methods:
        return pd.DataFrame(columns=METHOD_TABLE_COLUMNS)
    scored = measured_method(summary)
    order = sorted(methods, key=lambda method: method != scored)  # stable: the scored one first
    rows = []
    for method in order:
        values = mapping(methods[method].get(group))
        rows.append({METHOD: labels.get(method, method), SCORED: YES if method == scored else NO,
                     IMAGES: as_number(values.get("n_images")),
                     **{label: as_number(values.get(key)) for key, label in METHOD_MEASURES.items()}})
    for baseline, name in BASELINE_LABELS.items():
        values = summary.baselines.get(f"{baseline}/{group}")
        if isinstance(values, Mapping):
            rows.append({METHOD: name, SCORED: "", IMAGES: as_number(values.get("n_images")),
                         **{label: as_number(values.get(key)) for key, label in METHOD_MEASURES.items()}})
    table = pd.DataFrame(rows, columns=METHOD_TABLE_COLUMNS)
    numeric = [IMAGES, *METHOD_MEASURES.values()]
    table[numeric] = table[numeric].astype("float64")
    return table


def style_methods(table: pd.DataFrame) -> Styler:
    formats = {label: "{:.1%}" for label in METHOD_MEASURES.values()} | {IMAGES: "{:.0f}"}
    return table.style.format(formats, na_rep="—")


def methods_caption(summary: ShortcutSummary, labels: Mapping[str, str] | None = None) -> str:
    method = measured_method(summary)
    return (f"The score and flags use {(labels or {}).get(method, method)}; methods that disagree deserve a look "
            "on the Inspect page.")


# --------------------------------------------------------------------------- probes and faithfulness


def probe_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """The probes per group and condition (original, head only, background only, tumor occluded)."""
    rows = []
    for group, conditions in mapping(record.get("probes")).items():
        for condition, values in mapping(conditions).items():
            values = mapping(values)
            rows.append({
                "Group": str(group),
                "Condition": CONDITION_LABELS.get(condition, str(condition)),
                "Images": as_number(values.get("n")),
                **{label: as_number(values.get(key)) for key, label in PROBE_MEASURES.items()},
                CHANCE: as_number(values.get("chance")),
            })
    return pd.DataFrame(rows, columns=["Group", "Condition", "Images", *PROBE_MEASURES.values(), CHANCE])


PROBES_CAPTION = ("Head only: the background blacked out. Background only: the head blacked out (no anatomy "
                  "left). Tumor occluded: the tumor box filled in (only with tumor boxes). A model that reads "
                  "the anatomy drops to chance without the head and stops calling a tumor once it is gone. "
                  "The dash on each accuracy bar is chance for those images (the table's Chance: the commonest "
                  "class's share, so 100% within one class).")


def style_probes(table: pd.DataFrame) -> Styler:
    percent_columns = [*PROBE_MEASURES.values(), CHANCE]
    return table.style.format({label: "{:.1%}" for label in percent_columns} | {"Images": "{:.0f}"}, na_rep="—")


def probe_figure(table: pd.DataFrame, measure: str = "Accuracy", title: str = "") -> go.Figure:
    """Grouped bars: one group per image group ("all", classes), one bar per condition; for
    accuracy, each bar's chance (the table's Chance of that row: the commonest class's share of
    its images, 100% within one class) as a dash on the bar, so chart and table agree."""
    figure = go.Figure()
    accuracy = measure == PROBE_MEASURES["accuracy"]
    for condition in dict.fromkeys(table["Condition"]):
        rows = table[table["Condition"] == condition]
        figure.add_bar(
            x=rows["Group"], y=rows[measure], name=condition, offsetgroup=condition,
            text=[percent(v) for v in rows[measure]], textposition="outside", cliponaxis=False,
            customdata=rows[CHANCE], hovertemplate="%{x} · " + condition + ": %{y:.1%}"
            + (" (chance %{customdata:.0%})" if accuracy else "") + "<extra></extra>",
        )
    if accuracy and table[CHANCE].notna().any():
        for index, condition in enumerate(dict.fromkeys(table["Condition"])):
            rows = table[table["Condition"] == condition]
            figure.add_scatter(
                x=rows["Group"], y=rows[CHANCE], offsetgroup=condition, mode="markers", name="chance",
                legendgroup="chance", showlegend=index == 0,
                marker={"symbol": "line-ew", "size": 18, "line": {"width": 3, "color": "#333"}},
                hovertemplate="%{x} · " + condition + ": chance %{y:.0%}<extra></extra>",
            )
    figure.update_layout(
        barmode="group", scattermode="group", title=title or None,
        yaxis={"tickformat": ".0%", "range": [0, 1.1], "title": measure},
        xaxis={"title": None}, legend={"title": None, "orientation": "h", "y": -0.15}, margin={"t": 50, "b": 10},
    )
    return figure


def curves_figure(faithfulness: Mapping[str, Any], title: str = "") -> go.Figure:
    """The mean deletion and insertion curves (confidence against the share of pixels)."""
    figure = go.Figure()
    for kind, dash in (("deletion", "solid"), ("insertion", "dot")):
        curve = faithfulness.get(f"{kind}_curve")
        if not isinstance(curve, list) or not curve:
            continue
        values = [as_number(v) for v in curve]
        auc = as_number(faithfulness.get(f"{kind}_auc"))
        name = f"{kind.capitalize()} (AUC {auc:.2f})" if np.isfinite(auc) else kind.capitalize()
        figure.add_scatter(x=np.linspace(0, 1, len(values)), y=values, mode="lines+markers", name=name,
                           line={"dash": dash}, hovertemplate="%{x:.0%} of pixels: %{y:.2f}<extra></extra>")
    images = as_number(faithfulness.get("images"))
    figure.update_layout(
        title=title or None,
        xaxis={"title": "share of pixels removed (deletion) / inserted (insertion), most important first",
               "tickformat": ".0%"},
        yaxis={"title": "mean probability of the predicted class", "range": [0, 1.05]},
        legend={"title": None, "orientation": "h", "y": 1.12}, margin={"t": 60, "b": 10},
    )
    if np.isfinite(images):
        figure.add_annotation(text=f"{images:.0f} images", xref="paper", yref="paper", x=1, y=1,
                              showarrow=False, xanchor="right")
    return figure


# --------------------------------------------------------------------------- worst images


# Worst images: what they are ranked by.
BY_OUTSIDE = "Outside-head share"
BY_BORDER = "Border share"
BY_BACKGROUND = "Background-only prediction = true label"
WORST_MODES = (BY_OUTSIDE, BY_BORDER, BY_BACKGROUND)
WORST_COLUMNS = ["id", "label", "pred", "background_pred", "outside_head", "border", "in_box", "cluster"]


def worst_images(per_image: pd.DataFrame, by: str, n: int) -> pd.DataFrame:
    """The ``n`` images most suspect by ``by`` (one of :data:`WORST_MODES`): highest
    outside-head or border share, or those still called their true class with the head
    blacked out (highest outside-head share first)."""
    table = per_image.copy()
    for column in WORST_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    table["id"] = table["id"].astype(str)
    for column in ("outside_head", "border", "in_box"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    if by == BY_BACKGROUND:
        table = table[table["background_pred"].astype(str) == table["label"].astype(str)]
        column = "outside_head"
    elif by == BY_BORDER:
        column = "border"
    elif by == BY_OUTSIDE:
        column = "outside_head"
    else:
        raise ValueError(f"unknown ranking {by!r}; use one of {WORST_MODES}")
    ranked = table.sort_values(column, ascending=False, na_position="last", kind="stable")
    return ranked.head(max(int(n), 0))[WORST_COLUMNS].reset_index(drop=True)


def style_worst(table: pd.DataFrame) -> Styler:
    return table.style.format({"outside_head": "{:.1%}", "border": "{:.1%}", "in_box": "{:.1%}"}, na_rep="—")


def worst_caption(row: Mapping[str, Any]) -> str:
    """Caption of one worst image: label → prediction, its shares, the background-only call."""
    mark = "✓" if str(row.get("label")) == str(row.get("pred")) else "✗"
    parts = [f"{row.get('label')} → {row.get('pred')} {mark}",
             f"{percent(as_number(row.get('outside_head')))} outside head",
             f"{percent(as_number(row.get('border')))} border"]
    if isinstance(row.get("background_pred"), str):
        parts.append(f"no head → {row['background_pred']}")
    return " · ".join(parts)


def worst_thumbnails(
    images: np.ndarray,
    archive_ids: Sequence[str],
    maps: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    wanted: Sequence[str],
    side: int,
    alpha: float,
) -> tuple[list[np.ndarray], list[str]]:
    """Thumbnails (at least ``side`` px) of the ``wanted`` ids found in the test archive,
    each under its precomputed map when ``maps`` (maps, ids, classes) holds one; and the ids found."""
    where = image_positions(archive_ids, wanted)
    map_at = image_positions(maps[1], wanted) if maps is not None else np.full(len(wanted), -1)
    pictures, found = [], []
    for image_id, position, map_position in zip(wanted, where, map_at):
        if position < 0:
            continue
        image = enlarge_image(images[position], max(side, images.shape[1]))
        if map_position >= 0:
            image = compose_overlay(image, maps[0][map_position], "jet", alpha)
        pictures.append(image)
        found.append(image_id)
    return pictures, found


def thumbnails_note(method_label: str, model: str, has_maps: bool) -> str:
    """What the worst images' overlay shows."""
    if has_maps:
        return f"Overlay: the precomputed {method_label} map of the predicted class, the one measured."
    return f"No precomputed {method_label} maps of {model}: images without overlay."
