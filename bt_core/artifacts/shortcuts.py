"""The shortcut measures store (bt_core.runs.analyze): shortcuts/summary.json, one
per-image table per model and the audit's duplicate pairs."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.files import read_json, write_csv, write_json
from bt_core.artifacts.layout import duplicates_path, shortcut_images_path, shortcut_summary_path
from bt_core.artifacts.schema import ShortcutSummary


def write_shortcuts(
    run_dir: Path,
    summary: ShortcutSummary | Mapping[str, Any],
    per_image: Mapping[str, pd.DataFrame],
    pairs: pd.DataFrame | None,
) -> None:
    """Write the measures; the summary last, so a present summary means complete tables."""
    for name, table in per_image.items():
        write_csv(shortcut_images_path(run_dir, name), table)
    if pairs is not None:
        write_csv(duplicates_path(run_dir), pairs)
    data = summary.to_json() if isinstance(summary, ShortcutSummary) else dict(summary)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(shortcut_summary_path(run_dir), {"created": created, **data})


# Columns a per-image table and the duplicate pairs cannot be shown without.
PER_IMAGE_REQUIRED = ["id", "label", "pred"]
DUPLICATES_REQUIRED = ["id_a", "id_b", "kind"]


def _read_summary_json(run_dir: Path) -> dict[str, Any] | None:
    path = shortcut_summary_path(run_dir)
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc
    ShortcutSummary.from_json(data, where=path)  # raises for what is not a summary
    return data


def load_shortcuts(run_dir: Path) -> dict[str, Any] | None:
    """The run's shortcut summary as stored (checked as a :class:`ShortcutSummary`), or None
    when it was never measured."""
    return _read_summary_json(run_dir)


def _read_table(path: Path, text_columns: list[str], required: list[str]) -> pd.DataFrame | None:
    """A CSV of the store, or None when it is absent; ArtifactError when it cannot be read or
    lacks a ``required`` column (garbage parses as a table of other columns)."""
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, dtype={column: str for column in text_columns})
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(table.index, pd.RangeIndex):  # pandas takes the surplus fields as an index
        raise ArtifactError(f"{path} has rows with more fields than its header")
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise ArtifactError(f"{path} lacks columns {missing} (has {[str(c) for c in table.columns][:6]})")
    return table


def load_shortcut_images(run_dir: Path, model_name: str) -> pd.DataFrame | None:
    """One model's per-image measures, or None when not measured."""
    return _read_table(shortcut_images_path(run_dir, model_name), ["id", "label", "pred"], PER_IMAGE_REQUIRED)


def load_duplicates(run_dir: Path) -> pd.DataFrame | None:
    """The audit's duplicate pairs, or None when the audit did not run."""
    return _read_table(duplicates_path(run_dir), ["id_a", "id_b"], DUPLICATES_REQUIRED)
