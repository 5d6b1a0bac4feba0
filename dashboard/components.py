"""Pure building blocks of the dashboard: tables, labels and figures from run artifacts.

Nothing here imports Streamlit, so every function is unit-tested on its own; the pages
only lay the results out.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from bt_core.artifacts import STATUS_DONE, Run, RunSummary

# Column names of the models table (what the user reads, so spelled for people).
MODEL = "Model"
STATUS = "Status"
ACCURACY = "Accuracy"
MACRO_PRECISION = "Macro precision"
MACRO_RECALL = "Macro recall"
MACRO_F1 = "Macro F1"
MACRO_AUC = "Macro AUC (OvR)"
TRAINABLE_PARAMS = "Trainable params"
TRAIN_SECONDS = "Training time (s)"
EPOCHS_RUN = "Epochs run"
PROBLEM = "Problem"

# Table column -> key in metrics.json. All of them: higher is better.
METRIC_KEYS = {
    ACCURACY: "accuracy",
    MACRO_PRECISION: "macro_precision",
    MACRO_RECALL: "macro_recall",
    MACRO_F1: "macro_f1",
    MACRO_AUC: "macro_auc",
}
METRIC_COLUMNS = list(METRIC_KEYS)
CHART_METRICS = [ACCURACY, MACRO_F1, MACRO_AUC]
MODEL_TABLE_COLUMNS = [
    MODEL,
    STATUS,
    *METRIC_COLUMNS,
    TRAINABLE_PARAMS,
    TRAIN_SECONDS,
    EPOCHS_RUN,
    PROBLEM,
]

# A model that trained but whose files cannot be read.
STATUS_BROKEN = "broken"
BEST_VALUE_CSS = "background-color: #dbeafe; font-weight: 600"
MISSING = "—"
SPLITS = ["train", "val", "test"]


def as_number(value: Any) -> float:
    """A float, or NaN for anything missing or not numeric (a blank cell, not a crash)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _count(value: Any) -> int:
    number = as_number(value)
    return int(number) if np.isfinite(number) else 0


# --------------------------------------------------------------------------- run picker


def run_label(summary: RunSummary) -> str:
    """One line of the run picker: run id, dataset and model count, or why it cannot open."""
    if summary.error:
        return f"⚠ {summary.run_id} — cannot open: {summary.error}"
    dataset = summary.dataset or "unknown dataset"
    models = "model" if summary.model_count == 1 else "models"
    return f"{summary.run_id} · {dataset} · {summary.model_count} {models}"


def demo_command(artifacts_dir: Path | str) -> str:
    """The commands that create a first run in ``artifacts_dir``."""
    return (
        "make demo\n"
        "# or, for another artifacts folder:\n"
        f"python train_all.py --demo --out {shlex.quote(str(artifacts_dir))}"
    )


# --------------------------------------------------------------------------- models table


def models_table(run: Run) -> pd.DataFrame:
    """One row per model of the run, in manifest order; broken models keep a row with the reason."""
    rows = []
    for name, model in run.models.items():
        info = model.info
        if model.usable:
            status = model.status
        elif model.status == STATUS_DONE:
            status = STATUS_BROKEN
        else:
            status = model.status
        metrics = model.metrics if model.usable else {}
        row: dict[str, Any] = {MODEL: name, STATUS: status}
        for column, key in METRIC_KEYS.items():
            row[column] = as_number(metrics.get(key))
        row[TRAINABLE_PARAMS] = as_number(info.get("params_trainable"))
        row[TRAIN_SECONDS] = as_number(info.get("train_seconds"))
        row[EPOCHS_RUN] = as_number(info.get("epochs_run"))
        row[PROBLEM] = model.error or ""
        rows.append(row)
    table = pd.DataFrame(rows, columns=MODEL_TABLE_COLUMNS)
    for column in METRIC_COLUMNS + [TRAIN_SECONDS]:
        table[column] = table[column].astype("float64")
    # Nullable integers: whole numbers that may be blank.
    for column in (TRAINABLE_PARAMS, EPOCHS_RUN):
        table[column] = table[column].astype("float64").round().astype("Int64")
    return table


def model_problems(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(model, reason) for every row of :func:`models_table` that has no usable results."""
    broken = table[table[PROBLEM] != ""]
    return list(zip(broken[MODEL], broken[PROBLEM]))


def best_value_styles(table: pd.DataFrame) -> pd.DataFrame:
    """CSS per cell of the models table: the best value of each metric column is highlighted."""
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    for column in METRIC_COLUMNS:
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        if values.notna().any():
            styles.loc[values == values.max(), column] = BEST_VALUE_CSS
    return styles


def style_models_table(table: pd.DataFrame) -> Styler:
    """The models table as shown: percentages, thousands separators, best values highlighted."""
    formats = {column: "{:.1%}" for column in METRIC_COLUMNS}
    formats[TRAINABLE_PARAMS] = "{:,}"
    formats[TRAIN_SECONDS] = "{:,.1f}"
    formats[EPOCHS_RUN] = "{:d}"
    return table.style.format(formats, na_rep=MISSING).apply(best_value_styles, axis=None)


def metrics_long(table: pd.DataFrame, metrics: list[str] = CHART_METRICS) -> pd.DataFrame:
    """Model, Metric, Score rows for the usable models (a chart's input)."""
    usable = table[table[PROBLEM] == ""]
    return usable.melt(
        id_vars=[MODEL], value_vars=metrics, var_name="Metric", value_name="Score"
    ).dropna(subset=["Score"])


def metrics_bar_chart(table: pd.DataFrame) -> go.Figure:
    """Grouped bars of accuracy, macro F1 and macro AUC per usable model."""
    long = metrics_long(table)
    figure = px.bar(
        long,
        x=MODEL,
        y="Score",
        color="Metric",
        barmode="group",
        category_orders={"Metric": CHART_METRICS},
        text_auto=".1%",
    )
    figure.update_layout(
        yaxis={"tickformat": ".0%", "range": [0, 1.05], "title": None},
        xaxis={"title": None},
        legend={"title": None, "orientation": "h", "y": 1.12},
        margin={"t": 40, "b": 10},
    )
    return figure


# --------------------------------------------------------------------------- run overview


def class_counts(manifest: Mapping[str, Any], split: str) -> dict[str, int]:
    """Images per class in one split, from the manifest; an unreadable count reads as 0."""
    counts = (manifest.get("dataset") or {}).get("counts") or {}
    per_class = counts.get(split) or {}
    return {str(name): _count(value) for name, value in per_class.items()}


def split_totals(manifest: Mapping[str, Any]) -> dict[str, int]:
    """Number of images per split, from the manifest's dataset counts."""
    return {split: sum(class_counts(manifest, split).values()) for split in SPLITS}


def run_overview(run: Run) -> dict[str, Any]:
    """The facts of a run worth one line above the models table."""
    manifest = run.manifest
    dataset = manifest.get("dataset") or {}
    return {
        "dataset": dataset.get("name") or "unknown",
        "layout": dataset.get("layout") or "unknown",
        "split_counts": split_totals(manifest),
        "img_size": run.config.get("img_size"),
        "backend": manifest.get("backend") or "unknown",
        "device": manifest.get("device") or "unknown",
        "skipped_files": len(dataset.get("skipped") or []),
    }


def _size_text(img_size: Any) -> str:
    if isinstance(img_size, (list, tuple)):
        return "×".join(str(side) for side in img_size) + " px"
    if img_size is None:
        return "unknown size"
    return f"{img_size}×{img_size} px"


def overview_line(overview: Mapping[str, Any]) -> str:
    """:func:`run_overview` as one Markdown line."""
    counts = overview["split_counts"]
    split_text = " / ".join(f"{split} {counts.get(split, 0)}" for split in SPLITS)
    skipped = overview["skipped_files"]
    return " · ".join(
        [
            f"Dataset **{overview['dataset']}** ({overview['layout']})",
            f"{split_text} images",
            _size_text(overview["img_size"]),
            f"{overview['backend']} on {overview['device']}",
            f"{skipped} skipped file{'' if skipped == 1 else 's'}",
        ]
    )


# --------------------------------------------------------------------------- run details


def split_counts_table(manifest: Mapping[str, Any]) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with a total column and a total row."""
    per_split = {split: class_counts(manifest, split) for split in SPLITS}
    classes = [str(name) for name in manifest.get("class_names") or []]
    for counts in per_split.values():  # a class counted but not named still shows
        classes += [name for name in counts if name not in classes]
    table = pd.DataFrame(
        {split: [per_split[split].get(name, 0) for name in classes] for split in SPLITS},
        index=pd.Index(classes, name="Class"),
        dtype="int64",
    )
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    return table.reset_index()


def skipped_files_table(manifest: Mapping[str, Any]) -> pd.DataFrame:
    """The files the data loader skipped and why."""
    skipped = (manifest.get("dataset") or {}).get("skipped") or []
    rows = [
        {"path": str(item.get("path", "")), "reason": str(item.get("reason", ""))}
        for item in skipped
        if isinstance(item, Mapping)
    ]
    return pd.DataFrame(rows, columns=["path", "reason"])


def key_value_table(mapping: Mapping[str, Any] | None) -> pd.DataFrame:
    """A flat two-column table (Setting, Value) of a mapping; values as text so types mix."""

    def text(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return ", ".join(str(item) for item in value)
        return "" if value is None else str(value)

    rows = [{"Setting": str(key), "Value": text(value)} for key, value in (mapping or {}).items()]
    return pd.DataFrame(rows, columns=["Setting", "Value"])


def model_status_table(manifest: Mapping[str, Any]) -> pd.DataFrame:
    """Per model: status, family, input size, epochs, time and error, as the manifest says."""
    rows = []
    for name, info in (manifest.get("models") or {}).items():
        info = info if isinstance(info, Mapping) else {}
        rows.append(
            {
                MODEL: name,
                STATUS: str(info.get("status", "unknown")),
                "Family": str(info.get("family", "")),
                "Input size": str(info.get("input_size", "")),
                EPOCHS_RUN: as_number(info.get("epochs_run")),
                TRAIN_SECONDS: as_number(info.get("train_seconds")),
                "Error": str(info.get("error") or ""),
            }
        )
    return pd.DataFrame(
        rows, columns=[MODEL, STATUS, "Family", "Input size", EPOCHS_RUN, TRAIN_SECONDS, "Error"]
    )


def timing_summary(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Started, finished and duration of the run, as text."""
    timing = manifest.get("timing") or {}
    seconds = as_number(timing.get("seconds"))
    if np.isfinite(seconds):
        minutes, rest = divmod(seconds, 60)
        duration = f"{int(minutes)} min {rest:.0f} s" if minutes else f"{rest:.1f} s"
    else:
        duration = MISSING
    return {
        "Started": str(timing.get("started") or MISSING),
        "Finished": str(timing.get("finished") or MISSING),
        "Duration": duration,
    }
