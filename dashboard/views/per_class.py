"""The Models page's per-class table (no Streamlit): every model side by side, per class.

Precision, recall, F1 and support are metrics.json's ``per_class``; TP / FP / FN / TN and
specificity its ``one_vs_rest`` (1.6), or for an older run the same read off its stored
confusion matrix (:func:`bt_core.metrics.per_class.class_records`). Nothing is scored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.artifacts import Run
from bt_core.metrics import per_class
from bt_dashboard.views import common

CLASS = "Class"
PRECISION, RECALL, F1, SPECIFICITY, SUPPORT = "Precision", "Recall", "F1", "Specificity", "Support"
TP, FP, FN, TN = "TP", "FP", "FN", "TN"
SHARE_COLUMNS = [PRECISION, RECALL, F1, SPECIFICITY]
COUNT_COLUMNS = [SUPPORT, TP, FP, FN, TN]
COLUMNS = [CLASS, common.MODEL, *SHARE_COLUMNS, *COUNT_COLUMNS]
# metrics.json per_class key of each share column.
PER_CLASS_KEYS = {PRECISION: "precision", RECALL: "recall", F1: "f1"}
COUNT_KEYS = {TP: "tp", FP: "fp", FN: "fn", TN: "tn"}
COLUMN_HELP = {
    SPECIFICITY: "TN / (TN + FP): the share of the other classes' images not called this class.",
    TP: "Images of this class called this class.",
    FP: "Images of other classes called this class.",
    FN: "Images of this class called another class.",
    TN: "Images of other classes called another class.",
}
DERIVED_NOTE = (
    "{models} predate{s} the stored one-vs-rest counts (artifact format 1.6): their TP / FP / "
    "FN / TN and specificity are read off the stored confusion matrix."
)


@dataclass
class PerClassView:
    """The table, the models whose counts came from their stored confusion matrix, and the
    models left out with the reason (no usable results, or a metrics.json without them)."""

    table: pd.DataFrame
    derived: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)


def _number(value: Any) -> float:
    return common.as_number(value)


def per_class_view(run: Run) -> PerClassView:
    """One row per (class, model), classes in manifest order and within a class the run's
    models in manifest order, so each class's models sit side by side."""
    names = run.class_names
    rows_by_model: dict[str, dict[str, dict[str, Any]]] = {}
    view = PerClassView(pd.DataFrame(columns=COLUMNS))
    for name, model in run.models.items():
        if not model.usable:
            view.left_out[name] = model.error or model.status
            continue
        records, stored = per_class.class_records(model.metrics, names)
        if records is None:
            view.left_out[name] = "metrics.json has no usable confusion matrix"
            continue
        if not stored:
            view.derived.append(name)
        rows_by_model[name] = records
    rows = []
    for class_name in names:
        for model_name, by_class in rows_by_model.items():
            record = by_class[class_name]
            row: dict[str, Any] = {CLASS: class_name, common.MODEL: model_name}
            row.update({column: _number(record.get(key)) for column, key in PER_CLASS_KEYS.items()})
            row[SPECIFICITY] = _number(record.get("specificity"))
            row[SUPPORT] = _number(record["support"])
            row.update({column: _number(record[key]) for column, key in COUNT_KEYS.items()})
            rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in SHARE_COLUMNS:
        table[column] = table[column].astype("float64")
    for column in COUNT_COLUMNS:
        table[column] = table[column].astype("float64").round().astype("Int64")
    view.table = table
    return view


# st.dataframe's row and header height (px) and the tallest grid before it scrolls.
ROW_HEIGHT, MAX_GRID_HEIGHT = 35, 720


def grid_height(rows: int) -> int:
    """Every row in view up to MAX_GRID_HEIGHT (the grid scrolls beyond)."""
    return min(ROW_HEIGHT * (rows + 1) + 3, MAX_GRID_HEIGHT)


def derived_note(derived: list[str]) -> str:
    """The one line naming the models of an older run (empty when none)."""
    if not derived:
        return ""
    return DERIVED_NOTE.format(models=", ".join(derived), s="s" if len(derived) == 1 else "")


def best_in_class(table: pd.DataFrame) -> pd.DataFrame:
    """CSS per cell: within each class, the highest precision, recall, F1 and specificity
    (only where the class has more than one model)."""
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    for _class_name, rows in table.groupby(CLASS, sort=False):
        if len(rows) < 2:
            continue
        for column in SHARE_COLUMNS:
            values = rows[column].astype("float64")
            if values.notna().any():
                styles.loc[values.index[np.isclose(values, values.max())], column] = common.BEST_VALUE_CSS
    return styles


COUNTS = "TP / FP / FN / TN"
# The grid: the four counts in one column, so that it fits a laptop screen (the CSV keeps them apart).
GRID_COLUMNS = [CLASS, common.MODEL, *SHARE_COLUMNS, SUPPORT, COUNTS]
GRID_HELP = {**{column: text for column, text in COLUMN_HELP.items() if column in GRID_COLUMNS},
             COUNTS: "TP: this class called this class; FP: other classes called it; FN: this class called "
                     "another; TN: other classes called another."}


def grid_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`per_class_view`'s table as the grid shows it (:data:`GRID_COLUMNS`)."""
    grid = table[[CLASS, common.MODEL, *SHARE_COLUMNS, SUPPORT]].copy()
    grid[COUNTS] = [" / ".join(str(row[column]) for column in (TP, FP, FN, TN)) for _, row in table.iterrows()]
    return grid


def style_per_class(table: pd.DataFrame) -> Styler:
    """The grid: shares as percentages, counts as whole numbers, each class's best shares marked."""
    grid = grid_table(table)
    formats = {column: "{:.1%}" for column in SHARE_COLUMNS}
    formats[SUPPORT] = "{:d}"
    return grid.style.format(formats, na_rep=common.MISSING).apply(best_in_class, axis=None)
