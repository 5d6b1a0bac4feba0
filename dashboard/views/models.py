"""What the Models page shows (no Streamlit): the run's one-line overview, the models
table from the manifest, and the leaderboard with its intervals, costs and best values.
The interval chart is :mod:`bt_dashboard.views.leaderboard_figure`, the per-class table
:mod:`~bt_dashboard.views.per_class`, the published results :mod:`~bt_dashboard.views.published`.

The statistics come from :mod:`bt_core.metrics`; this module only arranges them per model,
names columns for people and decides what is "best" in a column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.artifacts import STATUS_DONE, Run
from bt_core.data.classes import negative_class_index
from bt_core.metrics import one_class, operating_point, scores
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views import common
from bt_dashboard.views import leaderboard_figure


# The interval chart lives in its own module; the page and the report reach it from here.
LEADERBOARD_CI_METRICS = leaderboard_figure.LEADERBOARD_CI_METRICS
leaderboard_ci_figure = leaderboard_figure.leaderboard_ci_figure


# --------------------------------------------------------------------------- run overview


def run_overview(run: Run) -> dict[str, Any]:
    """The facts of a run worth one line above the models table."""
    manifest = run.typed_manifest
    dataset = manifest.dataset
    return {
        "dataset": dataset.name or "unknown",
        "layout": dataset.layout or "unknown",
        "split_counts": common.split_totals(dataset.counts),
        "img_size": manifest.image_size,
        "backend": manifest.backend or "unknown",
        "device": manifest.device or "unknown",
        "skipped_files": len(dataset.skipped),
    }


def _size_text(img_size: int | None) -> str:
    return "unknown size" if img_size is None else f"{img_size}×{img_size} px"


def overview_line(overview: Mapping[str, Any]) -> str:
    """:func:`run_overview` as one Markdown line."""
    counts = overview["split_counts"]
    split_text = " / ".join(f"{split} {counts.get(split, 0)}" for split in common.SPLITS)
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


# --------------------------------------------------------------------------- models table


# Table column -> key in metrics.json. All of them: higher is better.
METRIC_KEYS = {
    common.ACCURACY: "accuracy",
    common.MACRO_PRECISION: "macro_precision",
    common.MACRO_RECALL: "macro_recall",
    common.MACRO_F1: "macro_f1",
    common.MACRO_AUC: "macro_auc",
}
METRIC_COLUMNS = list(METRIC_KEYS)
MODEL_TABLE_COLUMNS = [
    common.MODEL,
    common.STATUS,
    *METRIC_COLUMNS,
    common.TRAINABLE_PARAMS,
    common.TRAIN_SECONDS,
    common.EPOCHS_RUN,
    common.PROBLEM,
]


def models_table(run: Run) -> pd.DataFrame:
    """One row per model of the run, in manifest order; broken models keep a row with the reason."""
    rows = []
    for name, model in run.models.items():
        entry = model.entry
        if model.usable:
            status = model.status
        elif model.status == STATUS_DONE:
            status = common.STATUS_BROKEN
        else:
            status = model.status
        metrics = model.metrics if model.usable else {}
        row: dict[str, Any] = {common.MODEL: name, common.STATUS: status}
        for column, key in METRIC_KEYS.items():
            row[column] = common.as_number(metrics.get(key))
        row[common.TRAINABLE_PARAMS] = common.as_number(entry.params_trainable)
        row[common.TRAIN_SECONDS] = common.as_number(entry.train_seconds)
        row[common.EPOCHS_RUN] = common.as_number(entry.epochs_run)
        row[common.PROBLEM] = model.error or ""
        rows.append(row)
    table = pd.DataFrame(rows, columns=MODEL_TABLE_COLUMNS)
    for column in METRIC_COLUMNS + [common.TRAIN_SECONDS]:
        table[column] = table[column].astype("float64")
    # Nullable integers: whole numbers that may be blank.
    for column in (common.TRAINABLE_PARAMS, common.EPOCHS_RUN):
        table[column] = table[column].astype("float64").round().astype("Int64")
    return table


def model_problems(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(model, reason) for every row of :func:`models_table` that has no usable results."""
    broken = table[table[common.PROBLEM] != ""]
    return list(zip(broken[common.MODEL], broken[common.PROBLEM]))


# --------------------------------------------------------------------------- leaderboard
CI = "95% CI"
ACCURACY_CI = f"Accuracy {CI}"
MACRO_F1_CI = f"Macro F1 {CI}"
MACRO_AUC_CI = f"Macro AUC {CI}"
TUMOR_SENSITIVITY = "Tumor sensitivity"
TUMOR_SPECIFICITY = "Tumor specificity"
TUMOR_AUC = "Tumor AUC"
SENSITIVITY_AT_SPECIFICITY = "Sensitivity @ 95% specificity"
SPECIFICITY_AT_SENSITIVITY = "Specificity @ 95% sensitivity"
SENSITIVITY_AT_SPECIFICITY_CI = f"{SENSITIVITY_AT_SPECIFICITY} {CI}"
SPECIFICITY_AT_SENSITIVITY_CI = f"{SPECIFICITY_AT_SENSITIVITY} {CI}"
MACRO_SPECIFICITY = "Macro specificity"
MICRO_AUC = "Micro AUC"
WEIGHTED_F1 = "Weighted F1"
LOG_LOSS = "Log loss"
TRAIN_ACCURACY = "Train accuracy"
ACCURACY_GAP = "Train − test accuracy"


# Leaderboard column -> key of bt_core.metrics's leaderboard, in display order.
SCORE_COLUMNS = {
    common.ACCURACY: "accuracy",
    TUMOR_SENSITIVITY: "tumor_sensitivity",
    TUMOR_SPECIFICITY: "tumor_specificity",
    TUMOR_AUC: "tumor_auc",
    SENSITIVITY_AT_SPECIFICITY: operating_point.SENSITIVITY_AT_SPECIFICITY,
    SPECIFICITY_AT_SENSITIVITY: operating_point.SPECIFICITY_AT_SENSITIVITY,
    common.MACRO_PRECISION: "macro_precision",
    common.MACRO_RECALL: "macro_recall",
    MACRO_SPECIFICITY: "macro_specificity",
    common.MACRO_F1: "macro_f1",
    WEIGHTED_F1: "weighted_f1",
    common.MACRO_AUC: "macro_auc",
    MICRO_AUC: "micro_auc",
    LOG_LOSS: "log_loss",
    common.BRIER: "brier",
    common.ECE: "ece",
    TRAIN_ACCURACY: "train_accuracy",
    ACCURACY_GAP: "train_minus_test_accuracy",
}


# Interval columns (text) follow their metric.
CI_COLUMNS = {
    ACCURACY_CI: "accuracy",
    SENSITIVITY_AT_SPECIFICITY_CI: operating_point.SENSITIVITY_AT_SPECIFICITY,
    SPECIFICITY_AT_SENSITIVITY_CI: operating_point.SPECIFICITY_AT_SENSITIVITY,
    MACRO_F1_CI: "macro_f1",
    MACRO_AUC_CI: "macro_auc",
}
CI_AFTER = {common.ACCURACY: ACCURACY_CI, SENSITIVITY_AT_SPECIFICITY: SENSITIVITY_AT_SPECIFICITY_CI,
            SPECIFICITY_AT_SENSITIVITY: SPECIFICITY_AT_SENSITIVITY_CI, common.MACRO_F1: MACRO_F1_CI,
            common.MACRO_AUC: MACRO_AUC_CI}
# Shown as column help (hover on the header) on the Models page.
FIXED_POINT_HELP = (
    "Tumor vs no tumor on P(tumor) = 1 − P(no tumor): the highest {best} among the thresholds "
    "whose {kept} is at least 95% (points of the empirical ROC curve, no interpolation)."
)
COLUMN_HELP = {
    SENSITIVITY_AT_SPECIFICITY: FIXED_POINT_HELP.format(best="sensitivity", kept="specificity"),
    SPECIFICITY_AT_SENSITIVITY: FIXED_POINT_HELP.format(best="specificity", kept="sensitivity"),
    SENSITIVITY_AT_SPECIFICITY_CI: "95% percentile interval over the same paired bootstrap resamples as accuracy.",
    SPECIFICITY_AT_SENSITIVITY_CI: "95% percentile interval over the same paired bootstrap resamples as accuracy.",
}
COST_COLUMNS = [common.TRAINABLE_PARAMS, common.TRAIN_SECONDS, common.EPOCHS_RUN]
LEADERBOARD_COLUMNS = [
    common.MODEL,
    common.STATUS,
    *[name for column in SCORE_COLUMNS for name in (column, CI_AFTER.get(column)) if name],
    *COST_COLUMNS,
    common.PROBLEM,
]

# What the Models page's grid shows until "All columns" is on (the CSV keeps every column):
# what fits a laptop's 818 px column and answers "which model is best" first. Accuracy's
# interval is written in its cell (the column stays a number, so it sorts by the score); the
# status is left out: the warning above the grid names every broken model and why.
HEADLINE_COLUMNS = [
    common.MODEL, common.ACCURACY, TUMOR_SENSITIVITY, TUMOR_SPECIFICITY,
    SENSITIVITY_AT_SPECIFICITY, common.MACRO_F1, common.MACRO_AUC, common.ECE,
    common.TRAINABLE_PARAMS, common.TRAIN_SECONDS,
]
# Header text of the grid where the column's name is long (the name is the header's help).
SHORT_LABELS = {
    TUMOR_SENSITIVITY: "Sens",
    TUMOR_SPECIFICITY: "Spec",
    SENSITIVITY_AT_SPECIFICITY: "Sens @95% spec",
    SPECIFICITY_AT_SENSITIVITY: "Spec @95% sens",
    common.MACRO_AUC: "Macro AUC",
    common.TRAINABLE_PARAMS: "Params",
    common.TRAIN_SECONDS: "Time (s)",
}


def shown_columns(table: pd.DataFrame, all_columns: bool) -> list[str]:
    """The leaderboard columns the grid shows: every one, or the headline ones present."""
    return list(table.columns) if all_columns else [column for column in HEADLINE_COLUMNS if column in table.columns]


def column_help(column: str) -> str | None:
    """A header's hover text: its explanation, and its full name where the header is short."""
    texts = [column if column in SHORT_LABELS else "", COLUMN_HELP.get(column, "")]
    return ": ".join(text for text in texts if text) or None


# Columns whose best value is highlighted.
MARKED_COLUMNS = [*SCORE_COLUMNS, common.TRAINABLE_PARAMS, common.TRAIN_SECONDS]
LOWER_IS_BETTER = {LOG_LOSS, common.BRIER, common.ECE, common.TRAINABLE_PARAMS, common.TRAIN_SECONDS}


# The train-test gap is best near zero, whichever its sign.
CLOSEST_TO_ZERO = {ACCURACY_GAP}
PERCENT_COLUMNS = [
    common.ACCURACY, TUMOR_SENSITIVITY, TUMOR_SPECIFICITY, SENSITIVITY_AT_SPECIFICITY, SPECIFICITY_AT_SENSITIVITY,
    common.MACRO_PRECISION, common.MACRO_RECALL,
    MACRO_SPECIFICITY, common.MACRO_F1, WEIGHTED_F1, common.ECE, TRAIN_ACCURACY,
]
AUC_COLUMNS = [TUMOR_AUC, common.MACRO_AUC, MICRO_AUC]
DECIMAL_COLUMNS = [LOG_LOSS, common.BRIER]


def ci_text(lower: Any, upper: Any, percent: bool = True) -> str:
    """An interval as text, e.g. ``85.1–90.2%``; blank when either end is missing."""
    low, high = common.as_number(lower), common.as_number(upper)
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    if percent:
        return f"{low:.1%}–{high:.1%}".replace("%–", "–")
    return f"{low:.3f}–{high:.3f}"


def leaderboard_table(run: Run, scores_table: pd.DataFrame, excluded: Mapping[str, str]) -> pd.DataFrame:
    """One row per model of the manifest: scores with intervals, costs, and why a model is out.

    ``scores_table`` is :func:`bt_core.metrics.run_comparison.leaderboard`'s; a model missing
    from it (failed, corrupt, or excluded by the comparison) keeps a row with blank scores.
    """
    base = models_table(run).set_index(common.MODEL)
    by_model = scores_table.set_index("model") if not scores_table.empty else pd.DataFrame()
    rows = []
    for name in base.index:
        row: dict[str, Any] = {common.MODEL: name, common.STATUS: base.loc[name, common.STATUS]}
        scored = name in by_model.index
        for column, key in SCORE_COLUMNS.items():
            row[column] = common.as_number(by_model.loc[name, key]) if scored and key in by_model else np.nan
        for column, key in CI_COLUMNS.items():
            if scored and f"{key}_lower" in by_model:
                row[column] = ci_text(by_model.loc[name, f"{key}_lower"], by_model.loc[name, f"{key}_upper"],
                                      percent=key != "macro_auc")
            else:
                row[column] = ""
        for column in COST_COLUMNS:
            row[column] = base.loc[name, column]
        problem = base.loc[name, common.PROBLEM] or excluded.get(name, "")
        if not scored and not problem:
            problem = "not scored"
        row[common.PROBLEM] = problem
        if problem and row[common.STATUS] == "done":
            row[common.STATUS] = common.STATUS_BROKEN
        rows.append(row)
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    for column in SCORE_COLUMNS:
        table[column] = table[column].astype("float64")
    table[common.TRAIN_SECONDS] = table[common.TRAIN_SECONDS].astype("float64")
    for column in (common.TRAINABLE_PARAMS, common.EPOCHS_RUN):
        table[column] = table[column].astype("Int64")
    return table


def not_measurable_columns(class_names: Sequence[str], present: int) -> list[str]:
    """The leaderboard columns that test images of the one class ``present`` cannot score:
    those that compare classes (sensitivity at 95% specificity and the reverse among them),
    and tumor specificity (tumor images) or sensitivity (no-tumor)."""
    keys = {*one_class.SCORES_NEEDING_TWO_CLASSES, *operating_point.FIXED_POINT_METRICS}
    negative = negative_class_index(class_names)
    if negative is not None:
        keys.add("tumor_sensitivity" if present == negative else "tumor_specificity")
    columns = [column for column, key in SCORE_COLUMNS.items() if key in keys]
    interval_keys = {*one_class.BOOTSTRAP_NEEDING_TWO_CLASSES, *operating_point.FIXED_POINT_METRICS}
    return columns + [column for column, key in CI_COLUMNS.items() if key in interval_keys]


def mark_not_measurable(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The leaderboard with ``columns`` reading "not measurable" where no model has a value
    (:func:`bt_dashboard.views.common.not_measurable_cells`); their cells hold the words, as
    the browser's grid shows a blank number as "None" whatever the Styler's ``na_rep``."""
    marked = table.copy()
    for column in columns:
        if column in CI_COLUMNS and column in marked:
            marked[column] = one_class.NOT_MEASURABLE
    return common.not_measurable_cells(marked, columns)


ONE_CLASS_COLUMNS = [common.MODEL, "Measure", "Value", "Wilson 95% lower", "Wilson 95% upper", "Called right",
                     "Images"]


def one_class_table(model_data: Mapping[str, ModelData], class_names: Sequence[str]) -> pd.DataFrame:
    """What test images of one class allow, per model: the share called their class
    (sensitivity, specificity or recall) with its 95% Wilson interval (bt_core.metrics.one_class);
    empty when the images hold several classes."""
    rows = []
    for name, data in model_data.items():
        record = one_class.one_class_record(data.y_true, np.asarray(data.proba).argmax(axis=1), list(class_names))
        if record is None:
            continue
        rows.append({common.MODEL: name, "Measure": f"{record['measure']} ({record['class']})",
                     "Value": record["value"], "Wilson 95% lower": record["ci_low"],
                     "Wilson 95% upper": record["ci_high"], "Called right": record["successes"],
                     "Images": record["n"]})
    return pd.DataFrame(rows, columns=ONE_CLASS_COLUMNS)


def style_one_class_table(table: pd.DataFrame) -> Styler:
    shares = {column: "{:.1%}" for column in ("Value", "Wilson 95% lower", "Wilson 95% upper")}
    return table.style.format(shares, na_rep=common.MISSING)


def best_rows(table: pd.DataFrame, column: str) -> pd.Series:
    """Boolean mask of the best value(s) of one leaderboard column (direction per column)."""
    values = pd.to_numeric(table[column], errors="coerce").astype("float64")
    if not values.notna().any():
        return pd.Series(False, index=table.index)
    if column in CLOSEST_TO_ZERO:
        values = values.abs()
        return values == values.min()
    if column in LOWER_IS_BETTER:
        return values == values.min()
    return values == values.max()


def leaderboard_styles(table: pd.DataFrame) -> pd.DataFrame:
    """CSS per cell: the best value of each score and cost column is highlighted."""
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    for column in MARKED_COLUMNS:
        if column in table.columns:
            styles.loc[best_rows(table, column), column] = common.BEST_VALUE_CSS
    return styles


def leaderboard_formats() -> dict[str, Any]:
    formats: dict[str, Any] = {column: "{:.1%}" for column in PERCENT_COLUMNS}
    formats.update({column: "{:.3f}" for column in AUC_COLUMNS + DECIMAL_COLUMNS})
    formats[ACCURACY_GAP] = "{:+.1%}"
    formats[common.TRAINABLE_PARAMS] = "{:,}"
    formats[common.TRAIN_SECONDS] = "{:,.1f}"
    formats[common.EPOCHS_RUN] = "{:d}"
    return formats


def style_leaderboard(table: pd.DataFrame, not_measurable: Sequence[str] = (),
                      intervals: pd.DataFrame | None = None, merged: Sequence[str] = (common.ACCURACY,)) -> Styler:
    """The leaderboard as shown: percentages, 3-decimal AUCs and losses, best values marked;
    the blank cells of ``not_measurable`` columns read "not measurable". With ``intervals`` (a
    leaderboard with the interval columns, e.g. ``table`` itself), each score of ``merged``
    reads "85.0% (79.4–90.6)" while its value stays a number (the grid sorts by it)."""
    # Columns that hold text ("not measurable") keep it; only number columns get a number format.
    formats = {column: fmt for column, fmt in leaderboard_formats().items()
               if column in table.columns and pd.api.types.is_numeric_dtype(table[column])}
    styled = table.style.format(formats, na_rep=common.MISSING).apply(leaderboard_styles, axis=None)
    if intervals is not None:
        for column in merged:
            interval = CI_AFTER[column]
            if column not in formats or interval not in intervals.columns:
                continue
            for index, value in table[column].items():
                text = intervals.at[index, interval]
                if pd.notna(value) and isinstance(text, str) and text:
                    # "85.0% (79.4–90.6)": the value's unit holds for its interval.
                    text = text.removesuffix("%")
                    styled = styled.format(f"{formats[column]} ({text})", subset=pd.IndexSlice[[index], [column]])
    return common.mark_not_measurable(styled, not_measurable)


def formatted_leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's display strings (for the HTML report), best values marked with ★."""
    shown = table.astype(object).copy()
    formats = leaderboard_formats()
    for column in table.columns:
        values = table[column]
        fmt = formats.get(column)
        best = best_rows(table, column) if column in MARKED_COLUMNS else None
        texts = []
        for index, value in values.items():
            if isinstance(value, str):
                text = value
            elif fmt and (value is None or pd.isna(value)):
                text = common.MISSING
            elif fmt:
                text = fmt.format(int(value) if fmt in ("{:,}", "{:d}") else value)
            else:
                text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
            if best is not None and bool(best.loc[index]):
                text += " ★"
            texts.append(text)
        shown[column] = texts
    return shown


def model_scores_table(model_data: Mapping[str, ModelData], class_names: Sequence[str]) -> pd.DataFrame:
    """:func:`bt_core.metrics.scores.model_scores` of every model (no bootstrap), one row each."""
    rows = [
        {"model": name, **scores.model_scores(data.y_true, data.proba, list(class_names))}
        for name, data in model_data.items()
    ]
    return pd.DataFrame(rows, columns=["model", *scores.MODEL_SCORE_KEYS])
