"""Names and readers the pages' views share (no Streamlit).

Column names are spelled for people, since people read them. A missing or non-numeric
value reads as NaN (a blank cell), never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.data.splits import SPLITS
from bt_core.metrics import one_class
from bt_core.shortcuts.wording import as_number  # one reading of a stored number, shared with bt_core

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
ECE = "ECE"
BRIER = "Brier"


# A model that trained but whose files cannot be read.
STATUS_BROKEN = "broken"
BEST_VALUE_CSS = "background-color: #dbeafe; font-weight: 600"
MISSING = "—"


# The methods of bt_core.explain (``list_methods()``, which imports TensorFlow) as shown.
METHOD_LABELS = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "layercam": "LayerCAM",
    "scorecam": "Score-CAM",
    "faster_scorecam": "Faster Score-CAM",
    "smoothgrad": "SmoothGrad",
}


def _count(value: Any) -> int:
    number = as_number(value)
    return int(number) if np.isfinite(number) else 0


def class_counts(counts: Mapping[str, Any], split: str) -> dict[str, int]:
    """Images per class in one split of a dataset record's ``counts``; an unreadable count reads as 0."""
    per_class = (counts or {}).get(split) or {}
    return {str(name): _count(value) for name, value in per_class.items()}


def split_totals(counts: Mapping[str, Any]) -> dict[str, int]:
    """Number of images per split of a dataset record's ``counts``."""
    return {split: sum(class_counts(counts, split).values()) for split in SPLITS}


def image_positions(archive_ids: Sequence[str], wanted_ids: Sequence[str]) -> np.ndarray:
    """Positions in test_images.npz of ``wanted_ids``; -1 for an id not in the archive."""
    return pd.Index(np.asarray(archive_ids, dtype=str)).get_indexer(np.asarray(wanted_ids, dtype=str))


@dataclass(frozen=True)
class OneClass:
    """Test images of one class (an external folder of tumor scans only): the class, its
    index, and what a page shows where a score that compares classes would be."""

    class_name: str
    class_index: int
    text: str  # "not measurable: the folder holds tumor images only"


def one_class_test(run: Any) -> OneClass | None:
    """The run's test images' one class (:class:`OneClass`), or None when they hold several."""
    split = run.split
    labels = split.loc[split["split"].astype(str) == "test", "label"].astype(str).unique()
    if len(labels) != 1 or labels[0] not in run.class_names:
        return None
    where = one_class.FOLDER if run.is_evaluation else one_class.TEST_SET
    name = str(labels[0])
    return OneClass(name, list(run.class_names).index(name), one_class.not_measurable_text(name, where))


def mark_not_measurable(styled: Styler, columns: Sequence[str]) -> Styler:
    """``styled`` with the blank cells of ``columns`` reading "not measurable" in the Styler's
    text (AppTest, HTML). The browser's grid ignores ``na_rep`` and draws a blank cell as
    ``st.dataframe``'s ``placeholder``: build ``styled`` on :func:`not_measurable_cells`'s
    table so that the words are in the cells themselves."""
    shown = [column for column in columns if column in styled.data.columns]
    return styled.format(None, subset=shown, na_rep=one_class.NOT_MEASURABLE) if shown else styled


def not_measurable_cells(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """A copy of ``table`` whose ``columns`` without any value hold the text "not measurable".

    Only all-blank columns become text: a column with some values stays numeric, so sorting
    by it still sorts numbers (its blank cells show the table's placeholder)."""
    marked = table.copy()
    for column in columns:
        if column in marked and marked[column].isna().all():
            marked[column] = pd.Series(one_class.NOT_MEASURABLE, index=marked.index, dtype=object)
    return marked


def readable_time(stamp: Any) -> str:
    """An ISO time stamp as people read it: "2026-12-01 08:55 UTC" (a zone-aware stamp is
    converted to UTC; a naive one keeps its clock time without a zone). Anything that is
    not an ISO stamp is returned as text, a blank one as :data:`MISSING`."""
    text = "" if stamp is None else str(stamp).strip()
    if not text:
        return MISSING
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def clock_duration(seconds: Any) -> str:
    """Seconds as h:mm:ss ("0:03:52", "26:05:00" past a day); :data:`MISSING` when not a
    number or negative."""
    number = as_number(seconds)
    if not np.isfinite(number) or number < 0:
        return MISSING
    hours, rest = divmod(int(round(number)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
