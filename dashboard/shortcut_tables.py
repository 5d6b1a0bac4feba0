"""Pure helpers of the Shortcuts page: tables, sentences and figures from a run's shortcut
summary (``shortcuts/summary.json``, see :func:`bt_core.shortcuts.measure_run.measure_run`)
and its per-image tables. No Streamlit here, so every rule is testable on its own.

A model is flagged exactly when the summary lists a flag for it; the flags were raised by
:func:`bt_core.shortcuts.flags.shortcut_flags` against the documented thresholds (stored in
the summary's ``thresholds``). Nothing here re-decides them. Every reader tolerates a
missing or malformed entry: a missing number is NaN (a blank cell), never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bt_core.explain.overlay import colorize
from bt_core.shortcuts.flags import ALL_PARTS, FLAG_SENTENCES, shortcut_flags

# --------------------------------------------------------------------------- names

MODEL = "Model"
ACCURACY = "Test accuracy"
SCORE = "Shortcut score"
FLAGGED = "Flagged"
FLAGS = "Flags"
OUTSIDE_HEAD = "Outside head"
BORDER = "Border"
BACKGROUND_ACCURACY = "Background-only accuracy"
CHANCE = "Chance"
OCCLUDED_TUMOR = "Tumor still called tumor (occluded)"
IN_BOX = "Energy in box"
POINTING = "Pointing game"
DELETION_AUC = "Deletion AUC"
INSERTION_AUC = "Insertion AUC"

# Map measures: the baselines have them too.
MAP_COLUMNS = [OUTSIDE_HEAD, BORDER, IN_BOX, POINTING]
PART_COLUMNS = [OUTSIDE_HEAD, BORDER, BACKGROUND_ACCURACY, CHANCE, OCCLUDED_TUMOR, IN_BOX, POINTING,
                DELETION_AUC, INSERTION_AUC]
VERDICT_COLUMNS = [MODEL, ACCURACY, SCORE, FLAGGED, FLAGS, *PART_COLUMNS]
# Shown as percentages.
SHARE_COLUMNS = [ACCURACY, OUTSIDE_HEAD, BORDER, BACKGROUND_ACCURACY, CHANCE, OCCLUDED_TUMOR, IN_BOX, POINTING]
YES, NO = "yes", "no"

BASELINE_LABELS = {
    "centered_gaussian": "baseline: centred Gaussian map",
    "random": "baseline: random map",
}

PART_LABELS = {
    "outside_head": OUTSIDE_HEAD,
    "border": BORDER,
    "background_accuracy": BACKGROUND_ACCURACY,
    "background_class": "Background tells the class",
    "occluded_tumor": OCCLUDED_TUMOR,
    "in_box": IN_BOX,
}

# One sentence for each measure that raises no flag of its own.
MEASURE_SENTENCES = {
    SCORE: "Mean of the measured parts, each rescaled to 0 (no worse than its reference: the centred "
           "Gaussian map, chance, or no tumor calls) to 1 (the worst possible); a summary, not a flag.",
    POINTING: "Share of tumor images whose map peaks inside the tumor box.",
    DELETION_AUC: "Mean confidence while the most important pixels are removed first; low means the map "
                  "found what the model needs.",
    INSERTION_AUC: "Mean confidence while the most important pixels are put back first into a blank "
                   "image; high means the map found what the model needs.",
}

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

# Worst images: what they are ranked by.
BY_OUTSIDE = "Outside-head share"
BY_BORDER = "Border share"
BY_BACKGROUND = "Background-only prediction = true label"
WORST_MODES = (BY_OUTSIDE, BY_BORDER, BY_BACKGROUND)
WORST_COLUMNS = ["id", "label", "pred", "background_pred", "outside_head", "border", "in_box", "cluster"]

# Source probe: "well above chance" once the balanced accuracy beats chance by this much
# and by two fold-standard-deviations (less can be a lucky split).
SOURCE_PROBE_MARGIN = 0.10
REGION_TEXT = {"border": "the image border", "background": "the background outside the head"}


# --------------------------------------------------------------------------- reading


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one (a malformed entry reads as missing)."""
    return value if isinstance(value, Mapping) else {}


def number(value: Any) -> float:
    """A float, NaN for anything missing or not numeric."""
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def models(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The measured models' records, in summary order."""
    return {str(name): mapping(record) for name, record in mapping(summary.get("models")).items()}


def flag_list(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    flags = record.get("flags")
    return [mapping(flag) for flag in flags if isinstance(flag, Mapping)] if isinstance(flags, list) else []


def is_flagged(record: Mapping[str, Any]) -> bool:
    return bool(flag_list(record))


def flagged_models(summary: Mapping[str, Any]) -> list[str]:
    return [name for name, record in models(summary).items() if is_flagged(record)]


def part_value(record: Mapping[str, Any], part: str, group: str = "all", key: str = "value") -> float:
    return number(mapping(mapping(mapping(record.get("parts")).get(group)).get(part)).get(key))


def attention_value(record: Mapping[str, Any], measure: str, group: str = "all") -> float:
    return number(mapping(mapping(record.get("attention")).get(group)).get(measure))


def class_groups(record: Mapping[str, Any]) -> list[str]:
    """The classes a model was measured on (the groups of its parts besides "all")."""
    return [str(group) for group in mapping(record.get("parts")) if group != "all"]


def suspect_model(summary: Mapping[str, Any]) -> str | None:
    """The model to look at first: the flagged one with the highest score (else any highest)."""
    records = models(summary)
    if not records:
        return None

    def key(name: str) -> tuple[bool, float]:
        score = number(records[name].get("score"))
        return is_flagged(records[name]), score if np.isfinite(score) else -1.0

    return max(records, key=key)


# --------------------------------------------------------------------------- verdict


def flag_label(flag: Mapping[str, Any]) -> str:
    """One flag as text: its part, and the classes it fired for ("only" when not overall)."""
    name = str(flag.get("name", "?"))
    label = PART_LABELS.get(name, name)
    classes = [str(c) for c in flag.get("classes") or []]
    overall = bool(flag.get("overall"))
    if overall and classes:
        return f"{label} (all images; also {', '.join(classes)})"
    if overall:
        return f"{label} (all images)"
    if classes:
        return f"{label} ({', '.join(classes)} only)"
    return label


def verdict_table(summary: Mapping[str, Any], accuracies: Mapping[str, Any], baselines: bool = True) -> pd.DataFrame:
    """One row per measured model (summary order), then, with ``baselines``, one row per map
    baseline (centred Gaussian, random) holding only the map measures.

    Columns :data:`VERDICT_COLUMNS`; numbers are floats (NaN when not measured).
    """
    rows = []
    for name, record in models(summary).items():
        faithfulness = mapping(record.get("faithfulness"))
        rows.append({
            MODEL: name,
            ACCURACY: number(accuracies.get(name)),
            SCORE: number(record.get("score")),
            FLAGGED: YES if is_flagged(record) else NO,
            FLAGS: "; ".join(flag_label(flag) for flag in flag_list(record)),
            OUTSIDE_HEAD: _first_finite(part_value(record, "outside_head"), attention_value(record, "outside_head")),
            BORDER: _first_finite(part_value(record, "border"), attention_value(record, "border")),
            BACKGROUND_ACCURACY: part_value(record, "background_accuracy"),
            CHANCE: part_value(record, "background_accuracy", key="reference"),
            OCCLUDED_TUMOR: part_value(record, "occluded_tumor"),
            IN_BOX: _first_finite(part_value(record, "in_box"), attention_value(record, "in_box")),
            POINTING: attention_value(record, "pointing_hit"),
            DELETION_AUC: number(faithfulness.get("deletion_auc")),
            INSERTION_AUC: number(faithfulness.get("insertion_auc")),
        })
    if baselines:
        rows += baseline_rows(summary)
    table = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    numeric = [ACCURACY, SCORE, *PART_COLUMNS]
    table[numeric] = table[numeric].astype("float64")
    return table


def baseline_rows(summary: Mapping[str, Any], group: str = "all") -> list[dict[str, Any]]:
    """Rows of the verdict table for the map baselines of ``group`` that the summary holds."""
    stored = mapping(summary.get("baselines"))
    rows = []
    for key, label in BASELINE_LABELS.items():
        row = stored.get(f"{key}/{group}")
        if not isinstance(row, Mapping):
            continue
        rows.append({
            MODEL: label, FLAGGED: "", FLAGS: "",
            OUTSIDE_HEAD: number(row.get("outside_head")),
            BORDER: number(row.get("border")),
            IN_BOX: number(row.get("in_box")),
            POINTING: number(row.get("pointing_hit")),
        })
    return rows


def _first_finite(*values: float) -> float:
    return next((value for value in values if np.isfinite(value)), float("nan"))


def _count(value: float) -> str:
    return f"{value:.0f}" if np.isfinite(value) else "?"


def _percent(value: float) -> str:
    return f"{value:.0%}" if np.isfinite(value) else "n/a"


# What a fired flag means for one model, with its numbers: {v} value, {r} reference.
_REASONS = {
    "outside_head": "{v} of its map energy lies outside the head (reference {r}: a centred blob, or an evenly spread map)",
    "border": "{v} of its map energy lies in the image border (reference {r})",
    "background_accuracy": "it is still {v} accurate with the head blacked out (chance {r})",
    "background_class": "the background alone tells the class apart (recall minus false alarms {v})",
    "occluded_tumor": "{v} of the tumor images are still called a tumor once the tumor is hidden",
    "in_box": "only {v} of its map energy falls in the tumor box (a centred blob: {r})",
}


def flag_reason(flag: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """A fired flag in words, with the model's numbers."""
    name = str(flag.get("name", ""))
    template = _REASONS.get(name)
    if template is None:
        return str(flag.get("sentence") or name)
    classes = [str(c) for c in flag.get("classes") or []]

    def text(group: str) -> str:
        return template.format(v=_percent(part_value(record, name, group)),
                               r=_percent(part_value(record, name, group, "reference")))

    if flag.get("overall"):
        reason = text("all")
        if not classes:
            return reason
        also = f"also within {', '.join(classes)}"
        return f"{reason[:-1]}; {also})" if reason.endswith(")") else f"{reason} ({also})"
    return "; ".join(f"in {group} images, {text(group)}" for group in classes) or text("all")


def verdict_lines(summary: Mapping[str, Any], accuracies: Mapping[str, Any]) -> list[str]:
    """Markdown lines, flagged models first: "**simple_cnn**: 96.7% accurate, but …" for each
    flagged model (the right-for-the-wrong-reasons ones), then one line for the others."""
    records = models(summary)
    lines = []
    for name, record in records.items():
        if not is_flagged(record):
            continue
        accuracy = number(accuracies.get(name))
        accurate = f"{accuracy:.1%} accurate" if np.isfinite(accuracy) else "accuracy unknown"
        reasons = "; ".join(flag_reason(flag, record) for flag in flag_list(record))
        lines.append(f"**{name}**: {accurate}, but {reasons}.")
    clean = [name for name, record in records.items() if not is_flagged(record)]
    if clean:
        described = []
        for name in clean:
            accuracy, score = number(accuracies.get(name)), number(records[name].get("score"))
            facts = [f"{accuracy:.1%} accurate" if np.isfinite(accuracy) else None,
                     f"score {score:.2f}" if np.isfinite(score) else None]
            facts = [fact for fact in facts if fact]
            described.append(f"**{name}**" + (f" ({', '.join(facts)})" if facts else ""))
        lines.append("Not flagged by any threshold: " + ", ".join(described) + ".")
    return lines


def verdict_headline(summary: Mapping[str, Any]) -> str:
    flagged, total = len(flagged_models(summary)), len(models(summary))
    if not total:
        return "No model of this run was measured."
    if not flagged:
        return f"None of the {total} measured models is flagged by the documented thresholds."
    return (f"Right for the wrong reasons? {flagged} of {total} measured models "
            f"{'is' if flagged == 1 else 'are'} flagged by the documented thresholds.")


def thresholds_text(summary: Mapping[str, Any]) -> str:
    """Every stored threshold, as ``NAME = value``."""
    thresholds = mapping(summary.get("thresholds"))
    return " · ".join(f"`{name}` = {value:g}" if isinstance(value, (int, float)) else f"`{name}` = {value}"
                      for name, value in thresholds.items())


def parts_explained() -> list[str]:
    """One Markdown line per part (its flag's sentence) and per other measure."""
    lines = [f"**{PART_LABELS[name]}**: {FLAG_SENTENCES[name]}" for name in ALL_PARTS]
    lines += [f"**{label}**: {sentence}" for label, sentence in MEASURE_SENTENCES.items()]
    return lines


# --------------------------------------------------------------------------- one model


def parts_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """Every part of every group ("all", then each class): value, reference, threshold,
    direction, rescaled part and whether it fires (the documented rule of
    :func:`bt_core.shortcuts.flags.shortcut_flags`; "" when the value is missing)."""
    rows = []
    for group, parts in mapping(record.get("parts")).items():
        parts = {name: mapping(part) for name, part in mapping(parts).items()}
        # JSON null -> NaN, which the documented rule never fires on.
        plain = {name: {"value": number(part.get("value")), "threshold": number(part.get("threshold")),
                        "direction": str(part.get("direction") or "above")}
                 for name, part in parts.items() if name in FLAG_SENTENCES}
        fired = {name for name, _sentence in shortcut_flags(plain)}
        for name in [*ALL_PARTS, *(n for n in parts if n not in ALL_PARTS)]:
            if name not in parts:
                continue
            part = parts[name]
            value, threshold = number(part.get("value")), number(part.get("threshold"))
            rows.append({
                "Group": str(group),
                "Part": PART_LABELS.get(name, name),
                "Value": value,
                "Reference": number(part.get("reference")),
                "Threshold": threshold,
                "Fires when": str(part.get("direction") or ""),
                "Part score": number(part.get("part")),
                "Fires": (YES if name in fired else NO) if np.isfinite(value) and np.isfinite(threshold) else "",
            })
    return pd.DataFrame(rows, columns=["Group", "Part", "Value", "Reference", "Threshold", "Fires when",
                                       "Part score", "Fires"])


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


def method_table(summary: Mapping[str, Any], record: Mapping[str, Any], group: str = "all",
                 labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per precomputed method of the model (the summary's ``method``, the one the
    score and flags use, first), then the centred-Gaussian and random baselines of ``group``:
    the attention measures of ``group``'s images. Empty (with the columns) when the record
    has no ``attention_by_method``. ``labels`` names the methods (e.g. "Grad-CAM")."""
    labels = labels or {}
    methods = attention_by_method(record)
    if not methods:
        return pd.DataFrame(columns=METHOD_TABLE_COLUMNS)
    scored = str(summary.get("method") or "")
    order = sorted(methods, key=lambda method: method != scored)  # stable: the scored one first
    rows = []
    for method in order:
        values = mapping(methods[method].get(group))
        rows.append({METHOD: labels.get(method, method), SCORED: YES if method == scored else NO,
                     IMAGES: number(values.get("n_images")),
                     **{label: number(values.get(key)) for key, label in METHOD_MEASURES.items()}})
    stored = mapping(summary.get("baselines"))
    for baseline, name in BASELINE_LABELS.items():
        values = stored.get(f"{baseline}/{group}")
        if isinstance(values, Mapping):
            rows.append({METHOD: name, SCORED: "", IMAGES: number(values.get("n_images")),
                         **{label: number(values.get(key)) for key, label in METHOD_MEASURES.items()}})
    table = pd.DataFrame(rows, columns=METHOD_TABLE_COLUMNS)
    numeric = [IMAGES, *METHOD_MEASURES.values()]
    table[numeric] = table[numeric].astype("float64")
    return table


def methods_caption(summary: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    method = str(summary.get("method") or "gradcam")
    return (f"The score and flags use {(labels or {}).get(method, method)}; methods that disagree deserve a look "
            "on the Inspect page.")


def probe_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """The probes per group and condition (original, head only, background only, tumor occluded)."""
    rows = []
    for group, conditions in mapping(record.get("probes")).items():
        for condition, values in mapping(conditions).items():
            values = mapping(values)
            rows.append({
                "Group": str(group),
                "Condition": CONDITION_LABELS.get(condition, str(condition)),
                "Images": number(values.get("n")),
                **{label: number(values.get(key)) for key, label in PROBE_MEASURES.items()},
                CHANCE: number(values.get("chance")),
            })
    return pd.DataFrame(rows, columns=["Group", "Condition", "Images", *PROBE_MEASURES.values(), CHANCE])


def probe_figure(table: pd.DataFrame, measure: str = "Accuracy", title: str = "") -> go.Figure:
    """Grouped bars: one group per image group ("all", classes), one bar per condition; a
    dashed chance line (the "all" group's chance) for accuracy."""
    figure = go.Figure()
    for condition in dict.fromkeys(table["Condition"]):
        rows = table[table["Condition"] == condition]
        figure.add_bar(
            x=rows["Group"], y=rows[measure], name=condition,
            text=[_percent(v) for v in rows[measure]], textposition="outside", cliponaxis=False,
            hovertemplate="%{x} · " + condition + ": %{y:.1%}<extra></extra>",
        )
    chance = table.loc[(table["Group"] == "all") & table[CHANCE].notna(), CHANCE]
    if measure == PROBE_MEASURES["accuracy"] and len(chance):
        figure.add_hline(y=float(chance.iloc[0]), line_dash="dash", line_color="#555",
                         annotation_text=f"chance {float(chance.iloc[0]):.0%}", annotation_position="top left")
    figure.update_layout(
        barmode="group", title=title or None, yaxis={"tickformat": ".0%", "range": [0, 1.1], "title": measure},
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
        values = [number(v) for v in curve]
        auc = number(faithfulness.get(f"{kind}_auc"))
        name = f"{kind.capitalize()} (AUC {auc:.2f})" if np.isfinite(auc) else kind.capitalize()
        figure.add_scatter(x=np.linspace(0, 1, len(values)), y=values, mode="lines+markers", name=name,
                           line={"dash": dash}, hovertemplate="%{x:.0%} of pixels: %{y:.2f}<extra></extra>")
    images = number(faithfulness.get("images"))
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


def worst_caption(row: Mapping[str, Any]) -> str:
    """Caption of one worst image: label → prediction, its shares, the background-only call."""
    mark = "✓" if str(row.get("label")) == str(row.get("pred")) else "✗"
    parts = [f"{row.get('label')} → {row.get('pred')} {mark}",
             f"{_percent(number(row.get('outside_head')))} outside head",
             f"{_percent(number(row.get('border')))} border"]
    if isinstance(row.get("background_pred"), str):
        parts.append(f"no head → {row['background_pred']}")
    return " · ".join(parts)


# --------------------------------------------------------------------------- clusters


def cluster_classes(record: Mapping[str, Any]) -> list[str]:
    return [str(name) for name, value in mapping(record.get("clusters")).items() if isinstance(value, Mapping)]


def cluster_list(record: Mapping[str, Any], class_name: str) -> list[Mapping[str, Any]]:
    found = mapping(mapping(record.get("clusters")).get(class_name)).get("clusters")
    return [mapping(c) for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []


def cluster_table(record: Mapping[str, Any], class_name: str) -> pd.DataFrame:
    """The strategy clusters of the maps of one predicted class."""
    rows = [{
        "Cluster": int(number(c.get("label"))) if np.isfinite(number(c.get("label"))) else -1,
        "Size": number(c.get("size")),
        "Share": number(c.get("share")),
        "Tightness": number(c.get("tightness")),
        "Off head": number(c.get("off_head")),
        "Clever-Hans candidate": YES if c.get("clever_hans_candidate") else NO,
        "Examples": ", ".join(str(e) for e in c.get("examples") or []),
    } for c in cluster_list(record, class_name)]
    return pd.DataFrame(rows, columns=["Cluster", "Size", "Share", "Tightness", "Off head",
                                       "Clever-Hans candidate", "Examples"])


def mean_map(cluster: Mapping[str, Any]) -> np.ndarray | None:
    """A cluster's mean map as float32 ``(h, w)``, or None when missing or malformed."""
    try:
        array = np.asarray(cluster.get("mean_map"), dtype=np.float32)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 2 and array.size else None


def map_picture(cam: np.ndarray, scale: float, size: int = 128, colormap: str = "jet") -> np.ndarray:
    """A small map upsampled to ``size`` px and colourised, divided by ``scale`` (the largest
    value of the maps shown together, so their colours compare)."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32))
    if scale > 0:
        cam = cam / scale
    cam = cv2.resize(np.clip(cam, 0.0, 1.0), (size, size), interpolation=cv2.INTER_LINEAR)
    return colorize(cam, colormap)


# --------------------------------------------------------------------------- audit


def source_probe_table(audit: Mapping[str, Any]) -> pd.DataFrame:
    rows = [{
        "Region": str(region),
        "Balanced accuracy": number(values.get("balanced_accuracy")),
        "Std over folds": number(values.get("std")),
        CHANCE: number(values.get("chance")),
        "Folds": number(values.get("folds")),
        "Images": number(values.get("n_images")),
        "Region share of image": number(values.get("region_share")),
    } for region, values in ((r, mapping(v)) for r, v in mapping(audit.get("source_probe")).items())]
    return pd.DataFrame(rows, columns=["Region", "Balanced accuracy", "Std over folds", CHANCE, "Folds",
                                       "Images", "Region share of image"])


def source_probe_sentence(region: str, values: Mapping[str, Any]) -> str:
    """What the probe of one region says, in plain words ("well above chance" means beyond
    chance by :data:`SOURCE_PROBE_MARGIN` and by two fold standard deviations)."""
    accuracy, chance, std = (number(values.get(k)) for k in ("balanced_accuracy", "chance", "std"))
    where = REGION_TEXT.get(region, region)
    if not (np.isfinite(accuracy) and np.isfinite(chance)):
        return f"The probe of {where} has no result."
    measured = (f"From {where} alone a small linear model tells the classes apart with "
                f"{accuracy:.0%} balanced accuracy (chance {chance:.0%})")
    margin = max(SOURCE_PROBE_MARGIN, 2 * std if np.isfinite(std) else 0.0)
    if accuracy - chance > margin:
        return (measured + ": well above chance, so the classes differ in where their images come from "
                "(scanner, site, export), a shortcut any model can take.")
    return measured + ": close to chance, no sign that this region alone gives the class away."


def duplicates_line(duplicates: Mapping[str, Any]) -> str:
    pairs, exact, near = (number(duplicates.get(k)) for k in ("pairs", "exact_pairs", "near_pairs"))
    conflicts, kept, total = (number(duplicates.get(k)) for k in ("label_conflicts", "test_kept", "test_images"))
    distance, similarity = number(duplicates.get("max_distance")), number(duplicates.get("min_similarity"))
    text = f"**{_count(pairs)}** duplicate pairs ({_count(exact)} exact, {_count(near)} near"
    if np.isfinite(distance) and np.isfinite(similarity):
        text += f": pHash distance ≤ {distance:.0f} and similarity ≥ {similarity:.2f}"
    text += f"), **{_count(conflicts)}** of them under two different labels."
    if np.isfinite(kept) and np.isfinite(total):
        text += (f" De-duplicated test set: **{kept:.0f} of {total:.0f}** test images kept (a test image "
                 "with a copy in train or val is dropped; copies within test keep one).")
    unreadable = number(duplicates.get("unreadable"))
    if np.isfinite(unreadable) and unreadable:
        text += f" {unreadable:.0f} image(s) could not be read."
    return text


def duplicates_by_split(duplicates: Mapping[str, Any]) -> pd.DataFrame:
    """Pairs per split pair (rows) and kind (exact / near columns), with a total column."""
    records = [mapping(r) for r in duplicates.get("by_split_pair") or [] if isinstance(r, Mapping)]
    frame = pd.DataFrame(records, columns=["split_pair", "kind", "pairs"])
    if frame.empty:
        return pd.DataFrame(columns=["Split pair", "exact", "near", "total"])
    frame["pairs"] = pd.to_numeric(frame["pairs"], errors="coerce").fillna(0)
    table = frame.pivot_table(index="split_pair", columns="kind", values="pairs", aggfunc="sum", fill_value=0)
    for kind in ("exact", "near"):
        if kind not in table.columns:
            table[kind] = 0
    table = table[["exact", "near", *[c for c in table.columns if c not in ("exact", "near")]]]
    table["total"] = table.sum(axis=1)
    table = table.astype("int64").reset_index().rename(columns={"split_pair": "Split pair"})
    table.columns.name = None
    return table


DEDUP_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro F1", "macro_auc": "Macro AUC"}


def dedup_metrics_table(duplicates: Mapping[str, Any], original: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per model, each test metric on the whole test set, on the de-duplicated one, and the
    change (de-duplicated minus original)."""
    rows = []
    for name, values in mapping(duplicates.get("deduplicated_metrics")).items():
        values, before = mapping(values), mapping(original.get(name))
        row: dict[str, Any] = {MODEL: str(name)}
        for key, label in DEDUP_METRICS.items():
            old, new = number(before.get(key)), number(values.get(key))
            row[label] = old
            row[f"{label} (de-dup)"] = new
            row[f"Δ {label}"] = new - old
        rows.append(row)
    columns = [MODEL] + [c for label in DEDUP_METRICS.values() for c in (label, f"{label} (de-dup)", f"Δ {label}")]
    return pd.DataFrame(rows, columns=columns)


def skipped_line(summary: Mapping[str, Any]) -> str:
    skipped = mapping(summary.get("skipped"))
    return "; ".join(f"**{name}** ({reason})" for name, reason in skipped.items())


def positions(archive_ids: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """Positions in the test archive of ``wanted`` ids; -1 for one not there."""
    return pd.Index(np.asarray(archive_ids, dtype=str)).get_indexer(np.asarray(wanted, dtype=str))
