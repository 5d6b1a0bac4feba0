"""Each class against the rest: true / false positives and negatives and specificity.

Everything follows from the confusion matrix (rows true, columns predicted, manifest order):
for class k, TP is the diagonal cell, FP the rest of its column, FN the rest of its row and TN
every other image; scikit-learn's ``multilabel_confusion_matrix`` gives the same four counts.
metrics.json stores them under ``one_vs_rest`` (format 1.6, :func:`one_vs_rest`); for an
older metrics.json :func:`stored_one_vs_rest` derives the same records from its stored
``confusion_matrix``, so a reader never needs the predictions for them.

Specificity is TN / (TN + FP); it is None when a class has no negatives (every image is of
that class: a test set of one class), where it cannot be measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# metrics.json's key (1.6) and the keys of each class's record, in order.
ONE_VS_REST = "one_vs_rest"
COUNT_KEYS = ("tp", "fp", "fn", "tn")
RECORD_KEYS = (*COUNT_KEYS, "specificity")


def checked_matrix(matrix: Any, n_classes: int) -> np.ndarray | None:
    """``matrix`` as int64 ``(n_classes, n_classes)``, or None when it is missing or is not
    square rows of non-negative whole counts."""
    try:
        values = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if values.shape != (n_classes, n_classes) or not np.isfinite(values).all():
        return None
    if (values < 0).any() or (values != np.round(values)).any():
        return None
    return values.astype(np.int64)


def one_vs_rest_counts(matrix: np.ndarray) -> np.ndarray:
    """``(C, 4)`` int64: TP, FP, FN, TN of each class of a ``(C, C)`` confusion matrix."""
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    tn = matrix.sum() - tp - fp - fn
    return np.stack([tp, fp, fn, tn], axis=1)


def one_vs_rest(matrix: np.ndarray, class_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{class: {tp, fp, fn, tn, specificity}}`` of a confusion matrix in ``class_names`` order
    (what metrics.json stores as ``one_vs_rest``)."""
    counts = one_vs_rest_counts(matrix)
    if len(counts) != len(class_names):
        raise ValueError(f"a {len(counts)}-class confusion matrix for {len(class_names)} classes")
    records = {}
    for name, (tp, fp, fn, tn) in zip(class_names, counts.tolist()):
        negatives = tn + fp
        records[str(name)] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
                              "specificity": tn / negatives if negatives else None}
    return records


def _valid_records(records: Any, class_names: Sequence[str]) -> bool:
    if not isinstance(records, Mapping) or list(records) != list(class_names):
        return False
    for record in records.values():
        if not isinstance(record, Mapping) or any(key not in record for key in RECORD_KEYS):
            return False
        if any(not isinstance(record[key], int) or record[key] < 0 for key in COUNT_KEYS):
            return False
    return True


def stored_one_vs_rest(
    metrics: Mapping[str, Any], class_names: Sequence[str]
) -> tuple[dict[str, dict[str, Any]] | None, bool]:
    """A metrics.json's one-vs-rest records and whether they were stored: its ``one_vs_rest``
    (1.6) when present and well formed, else derived from its ``confusion_matrix`` (older
    runs: ``(records, False)``); ``(None, False)`` when it has neither."""
    stored = metrics.get(ONE_VS_REST)
    if _valid_records(stored, class_names):
        return {name: dict(stored[name]) for name in class_names}, True
    matrix = checked_matrix(metrics.get("confusion_matrix"), len(class_names))
    if matrix is None:
        return None, False
    return one_vs_rest(matrix, class_names), False


def _share(numerator: int, denominator: int) -> float:
    # scikit-learn's zero_division=0, as metrics.json's per_class.
    return numerator / denominator if denominator else 0.0


def class_records(
    metrics: Mapping[str, Any], class_names: Sequence[str]
) -> tuple[dict[str, dict[str, Any]] | None, bool]:
    """Per class ``precision``, ``recall``, ``f1``, ``support`` (metrics.json's ``per_class``)
    and the :data:`RECORD_KEYS` of :func:`stored_one_vs_rest`, with whether the counts were
    stored. A metrics.json without ``per_class`` (written by another tool) gets the first
    three from the counts. A share whose denominator is 0 is NaN (shown as not measurable),
    as scikit-learn's ``zero_division=np.nan``, also where metrics.json stored 0."""
    counts, stored = stored_one_vs_rest(metrics, class_names)
    if counts is None:
        return None, False
    scores = metrics.get("per_class")
    records = {}
    for name in class_names:
        record = counts[name]
        tp, fp, fn = record["tp"], record["fp"], record["fn"]
        stored_scores = scores.get(name) if isinstance(scores, Mapping) else None
        if isinstance(stored_scores, Mapping):
            own = {key: stored_scores.get(key) for key in ("precision", "recall", "f1")}
        else:
            own = {"precision": _share(tp, tp + fp), "recall": _share(tp, tp + fn), "f1": _share(2 * tp, 2 * tp + fp + fn)}
        # Undefined shares are NaN, not metrics.json's 0 (scikit-learn's zero_division=np.nan):
        # a class with no test image has no recall, one never predicted no precision.
        if tp + fn == 0:
            own["recall"] = float("nan")
        if tp + fp == 0:
            own["precision"] = float("nan")
        if 2 * tp + fp + fn == 0:
            own["f1"] = float("nan")
        records[name] = {**own, "support": tp + fn, **record}
    return records, stored
