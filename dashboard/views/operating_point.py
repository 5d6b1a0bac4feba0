"""What the ROC & PR page shows of the operating point (no Streamlit): every model's
sensitivity, specificity, PPV and NPV with Wilson intervals and its binary confusion matrix
at a threshold on P(tumor), and each model's ROC with the threshold of every point.

The numbers come from :mod:`bt_core.metrics.operating_point`; this module arranges them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.metrics import one_class
from bt_core.metrics import operating_point as metric
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views import common

MEASURE_LABELS = {metric.SENSITIVITY: "Sensitivity", metric.SPECIFICITY: "Specificity", metric.PPV: "PPV",
                  metric.NPV: "NPV"}
CI = "95% CI"
# Count column -> key of bt_core.metrics.operating_point.operating_point.
COUNT_COLUMNS = {
    "Tumor, called tumor (TP)": "tp",
    "Tumor, called no tumor (FN)": "fn",
    "No tumor, called tumor (FP)": "fp",
    "No tumor, called no tumor (TN)": "tn",
}
COUNTS_TEXT = "TP / FN / FP / TN"
OPERATING_COLUMNS = [
    common.MODEL,
    *[name for label in MEASURE_LABELS.values() for name in (label, f"{label} {CI}")],
    *COUNT_COLUMNS,
    COUNTS_TEXT,
]
# What the page's grid shows (the CSV has every column): each measure with its interval in
# one cell and the four counts as one text, so that the table fits a laptop's column.
SHOWN_COLUMNS = [common.MODEL, *MEASURE_LABELS.values(), COUNTS_TEXT]
COUNTS_HELP = "The counts at the threshold: " + ", ".join(COUNT_COLUMNS) + "."
TRUE_TUMOR, TRUE_HEALTHY = "Tumor", "No tumor"
CALLED_TUMOR, CALLED_HEALTHY = "Called tumor", "Called no tumor"


Scores = Mapping[str, tuple[np.ndarray, np.ndarray]]  # model -> (is_tumor, P(tumor))


def binary_scores(model_data: Mapping[str, ModelData], class_names: Sequence[str]) -> Scores:
    """Per model, (is_tumor, P(tumor)); ValueError without a no-tumor class."""
    return {name: metric.tumor_scores(data.y_true, data.proba, list(class_names)) for name, data in model_data.items()}


def interval_text(record: Mapping[str, Any] | None) -> str:
    """A record's Wilson interval as ``85.1–90.2%``; blank when not measurable."""
    if record is None:
        return ""
    return f"{record['ci_low']:.1%}–{record['ci_high']:.1%}".replace("%–", "–")


def operating_points(scores: Scores, threshold: float) -> dict[str, dict[str, Any]]:
    """Per model, :func:`bt_core.metrics.operating_point.operating_point` at ``threshold``."""
    return {name: metric.operating_point(is_tumor, p_tumor, threshold) for name, (is_tumor, p_tumor) in scores.items()}


def operating_table(points: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model: each measure with its interval text, and the four counts. A measure
    that cannot be measured (its denominator is 0) is NaN (shown as "not measurable")."""
    rows = []
    for name, point in points.items():
        row: dict[str, Any] = {common.MODEL: name}
        for measure, label in MEASURE_LABELS.items():
            record = point[measure]
            row[label] = np.nan if record is None else record["value"]
            row[f"{label} {CI}"] = interval_text(record)
        row.update({column: point[key] for column, key in COUNT_COLUMNS.items()})
        row[COUNTS_TEXT] = " / ".join(str(point[key]) for key in COUNT_COLUMNS.values())
        rows.append(row)
    table = pd.DataFrame(rows, columns=OPERATING_COLUMNS)
    table[list(MEASURE_LABELS.values())] = table[list(MEASURE_LABELS.values())].astype("float64")
    return table


def style_operating_table(table: pd.DataFrame, intervals: pd.DataFrame | None = None) -> Styler:
    """Shares as percentages; a blank share reads "not measurable" (it is, at this threshold).
    With ``intervals`` (an operating table with the interval columns, e.g. ``table`` itself),
    each share reads "92.5% (85.0–96.1)" while it stays a number (the grid sorts by it)."""
    styled = table.style.format("{:.1%}", subset=list(MEASURE_LABELS.values()), na_rep=one_class.NOT_MEASURABLE)
    if intervals is None:
        return styled
    for label in MEASURE_LABELS.values():
        for index, value in table[label].items():
            text = intervals.at[index, f"{label} {CI}"]
            if pd.notna(value) and text:
                # The share's unit holds for its interval.
                styled = styled.format(f"{{:.1%}} ({text.removesuffix('%')})", subset=pd.IndexSlice[[index], [label]])
    return styled


def not_measurable_notes(points: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per measure that some model cannot measure, naming the models and why."""
    models: dict[tuple[str, str], list[str]] = {}
    for name, point in points.items():
        for measure, reason in point["not_measurable"].items():
            models.setdefault((measure, reason), []).append(name)
    return [f"{MEASURE_LABELS[measure]} not measurable for {', '.join(names)} ({reason})"
            for (measure, reason), names in models.items()]


def confusion_2x2(point: Mapping[str, Any]) -> pd.DataFrame:
    """The binary confusion matrix at the threshold: rows true (tumor, no tumor), columns called."""
    return pd.DataFrame(
        [[point["tp"], point["fn"]], [point["fp"], point["tn"]]],
        index=pd.Index([TRUE_TUMOR, TRUE_HEALTHY], name="True"),
        columns=[CALLED_TUMOR, CALLED_HEALTHY],
    )


def threshold_tables(scores: Scores) -> dict[str, pd.DataFrame]:
    """Per model, its operating point at every threshold (the ROC with thresholds); a model
    whose images lack tumors or healthy scans has no ROC and is left out."""
    return {name: metric.threshold_table(is_tumor, p_tumor) for name, (is_tumor, p_tumor) in scores.items()
            if is_tumor.any() and not is_tumor.all()}


def tumor_share(scores: Scores) -> float | None:
    """The share of tumor images among the test images (PPV and NPV depend on it)."""
    for is_tumor, _p_tumor in scores.values():
        return float(np.mean(is_tumor))
    return None
