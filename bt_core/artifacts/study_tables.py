"""A study's tables (``STUDY/tables/<name>.csv``, docs/artifacts.md "Study tables"): their
names, columns and types, written atomically and read back checked.

    cells    one row per (cell, metric)
    groups   per (model, variant, metric): the metric over seeds
    effects  per (model, variant other than the baseline, metric): variant - baseline, seed-matched
    flips    per (model, variant): the seed-to-seed flip rate of test predictions

Written by ``bt_core.runs.study_summary.write_study_tables`` after every finished cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.files import write_csv
from bt_core.artifacts.study import CELL_DONE, load_study, study_tables_dir

CELLS, GROUPS, EFFECTS, FLIPS = "cells", "groups", "effects", "flips"
# Every table's columns and the type each is read back as.
TABLE_TYPES: dict[str, dict[str, type]] = {
    CELLS: {"cell_id": str, "model": str, "variant": str, "seed": int, "metric": str, "value": float},
    GROUPS: {"model": str, "variant": str, "metric": str, "n_seeds": int, "mean": float, "sd": float,
             "min": float, "max": float},
    EFFECTS: {"model": str, "variant": str, "baseline": str, "metric": str, "n_seeds": int, "difference": float,
              "lower": float, "upper": float, "paired_images": bool, "method": str},
    FLIPS: {"model": str, "variant": str, "n_seeds": int, "n_pairs": int, "n_images": int, "flip_rate": float},
}
TABLE_COLUMNS: dict[str, list[str]] = {name: list(types) for name, types in TABLE_TYPES.items()}
STUDY_TABLES = tuple(TABLE_TYPES)


def study_table_path(study_dir: Path, name: str) -> Path:
    if name not in TABLE_TYPES:
        raise ValueError(f"unknown study table {name!r}; known: {', '.join(STUDY_TABLES)}")
    return study_tables_dir(study_dir) / f"{name}.csv"


def empty_study_table(name: str) -> pd.DataFrame:
    return _typed(pd.DataFrame({column: [] for column in TABLE_COLUMNS[name]}), name)


def _typed(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    typed = {}
    for column, kind in TABLE_TYPES[name].items():
        values = frame[column]
        if kind is float:
            typed[column] = pd.to_numeric(values, errors="coerce").astype(np.float64)
        elif kind is int:
            typed[column] = pd.to_numeric(values, errors="raise").astype(np.int64)
        elif kind is bool:
            typed[column] = values.map(lambda value: str(value).strip().lower() == "true").astype(bool)
        else:
            typed[column] = values.astype(object).where(values.notna(), "").astype(str)
    return pd.DataFrame(typed, columns=TABLE_COLUMNS[name])


def write_study_table(study_dir: Path, name: str, frame: pd.DataFrame) -> Path:
    """Write one table (atomically; NaN as empty); refuses a frame whose columns are not the
    table's, naming the missing and the unknown ones. Returns the path."""
    path = study_table_path(study_dir, name)
    expected = TABLE_COLUMNS[name]
    missing = [column for column in expected if column not in frame.columns]
    unknown = [str(column) for column in frame.columns if column not in expected]
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(unknown)}"] if unknown else [])
        raise ValueError(f"study table {name}: columns differ from {', '.join(expected)} ({'; '.join(parts)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, frame[expected])
    return path


def _has_done_cells(study_dir: Path) -> bool:
    try:
        return load_study(study_dir).count(CELL_DONE) > 0
    except ArtifactError:
        return True  # not a readable study: a missing table is then a problem to name


def read_study_table(study_dir: Path, name: str) -> pd.DataFrame:
    """One table, typed (TABLE_TYPES). Absent: an empty table while the study has no done cell,
    else ArtifactError naming the file and the command that writes it; ArtifactError too for a
    file that does not parse or lacks columns."""
    path = study_table_path(study_dir, name)
    if not path.is_file():
        if not _has_done_cells(study_dir):
            return empty_study_table(name)
        raise ArtifactError(f"{path} is missing; write the study tables again with "
                            "bt_core.runs.study_summary.write_study_tables (or resume the study)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc
    missing = [column for column in TABLE_COLUMNS[name] if column not in frame.columns]
    if missing:
        raise ArtifactError(f"{path} lacks the columns {', '.join(missing)}")
    try:
        return _typed(frame, name)
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{path} holds values of the wrong type: {exc}") from exc
