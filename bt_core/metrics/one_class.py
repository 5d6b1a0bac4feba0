"""What a test set of one class can score, and what it cannot.

An external folder often holds one class only (a hospital's tumor scans: ``tumor/*``). Its
images can say how often a model calls them their class: sensitivity for tumor images,
specificity for no-tumor images, the recall of a named class otherwise, each with a Wilson
interval (statsmodels), which stays inside [0, 1] and does not collapse to a point at 0 % or
100 % as a bootstrap of a proportion does. Every score that compares classes (AUC, ROC / PR
curves, precision, macro and weighted averages, specificity of a tumor-only folder, ...) is
not measurable there: the summaries store it as None with :func:`not_measurable_reason`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from bt_core.data.classes import negative_class_index

CONFIDENCE = 0.95
INTERVAL_METHOD = "wilson"
NOT_MEASURABLE = "not measurable"
SENSITIVITY, SPECIFICITY, RECALL = "sensitivity", "specificity", "recall"
# How the reason names the images: an external evaluation's folder, or a run's test split.
FOLDER, TEST_SET = "the folder", "the test set"

# Keys of scores.model_scores (the leaderboard) that compare classes.
SCORES_NEEDING_TWO_CLASSES = (
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "macro_specificity",
    "weighted_precision",
    "weighted_f1",
    "macro_auc",
    "micro_auc",
    "tumor_auc",
)
# Top-level keys of metrics.json (scores.classification_summary) that compare classes.
SUMMARY_NEEDING_TWO_CLASSES = (
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "weighted_precision",
    "weighted_f1",
    "macro_auc",
)
# Bootstrap metrics (bootstrap.BOOTSTRAP_METRICS) that compare classes.
BOOTSTRAP_NEEDING_TWO_CLASSES = ("macro_f1", "macro_auc")


def present_class(y_true: np.ndarray) -> int | None:
    """The class index when every label is that one class, else None (none or several)."""
    present = np.unique(np.asarray(y_true))
    return int(present[0]) if len(present) == 1 else None


def not_measurable_reason(class_name: str, where: str = TEST_SET) -> str:
    """Why a score that compares classes has no value: ``"the folder holds tumor images only"``."""
    return f"{where} holds {class_name} images only"


def not_measurable_text(class_name: str, where: str = TEST_SET) -> str:
    """What a page shows where such a number would be."""
    return f"{NOT_MEASURABLE}: {not_measurable_reason(class_name, where)}"


def measure_name(class_index: int, class_names: Sequence[str]) -> str:
    """What the share of one class's images called that class is: specificity for the no-tumor
    class, sensitivity for the tumor class of tumor / no-tumor classes, recall otherwise."""
    negative = negative_class_index(class_names)
    if negative is None:
        return RECALL
    if class_index == negative:
        return SPECIFICITY
    return SENSITIVITY if len(class_names) == 2 else RECALL


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """statsmodels' Wilson score interval of ``successes`` of ``n``; ValueError for n < 1."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"a proportion needs 0 <= successes <= n and n >= 1, got {successes} of {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    low, high = proportion_confint(successes, n, alpha=1.0 - confidence, method=INTERVAL_METHOD)
    return float(low), float(high)


def proportion_record(successes: int, n: int, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``value``, ``successes``, ``n``, ``ci_low``, ``ci_high``, ``confidence``, ``interval``."""
    low, high = wilson_interval(successes, n, confidence)
    return {"value": successes / n, "successes": int(successes), "n": int(n), "ci_low": low, "ci_high": high,
            "confidence": confidence, "interval": INTERVAL_METHOD}


def one_class_record(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict[str, Any] | None:
    """For labels of one class: ``class``, ``measure`` (:func:`measure_name`) and the
    :func:`proportion_record` of the images predicted as that class; None otherwise."""
    present = present_class(y_true)
    if present is None:
        return None
    hits = int(np.count_nonzero(np.asarray(y_pred) == present))
    return {"class": str(class_names[present]), "measure": measure_name(present, class_names),
            **proportion_record(hits, len(y_true))}
