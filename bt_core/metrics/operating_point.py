"""Tumor vs no tumor at a threshold on P(tumor): the operating point of a model.

P(tumor) = 1 - P(no-tumor class) (:func:`bt_core.metrics.scores.tumor_probability`). An image
is called tumor when P(tumor) >= threshold, scikit-learn's ``roc_curve`` rule: threshold 0
calls every image tumor; above every score, none.

- :func:`operating_point`: the binary confusion counts at one threshold and sensitivity,
  specificity, PPV and NPV, each with its 95% Wilson interval
  (:func:`bt_core.metrics.one_class.proportion_record`). A share whose denominator is 0
  (PPV when nothing is called tumor, specificity of a folder of tumor images) is not
  measurable: None with the reason, never NaN or 0.
- :func:`threshold_table`: the operating point at every distinct score (the empirical ROC,
  ``roc_curve(..., drop_intermediate=False)``, with its thresholds), the first row +inf
  (nothing called tumor).
- :func:`sensitivity_at_specificity` / :func:`specificity_at_sensitivity`: the highest
  sensitivity among the thresholds whose specificity is at least the target (95%), and the
  reverse; points of the empirical ROC, no interpolation between them. Vectorised over
  bootstrap resamples given as per-image counts (:func:`bt_core.metrics.bootstrap.bootstrap_counts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from bt_core.data.classes import require_negative_class_index
from bt_core.metrics import one_class
from bt_core.metrics.scores import check_inputs, tumor_probability

TARGET = 0.95
# A share equal to the target in exact arithmetic (19 of 20 = 95%) counts as reaching it.
TOLERANCE = 1e-12
SENSITIVITY, SPECIFICITY, PPV, NPV = "sensitivity", "specificity", "ppv", "npv"
MEASURES = (SENSITIVITY, SPECIFICITY, PPV, NPV)
# Measure -> (numerator count, denominator counts, why it is not measurable when they are 0).
_DEFINITIONS = {
    SENSITIVITY: ("tp", ("tp", "fn"), "no tumor images"),
    SPECIFICITY: ("tn", ("tn", "fp"), "no no-tumor images"),
    PPV: ("tp", ("tp", "fp"), "no image called tumor"),
    NPV: ("tn", ("tn", "fn"), "no image called no tumor"),
}
SENSITIVITY_AT_SPECIFICITY = "sensitivity_at_95_specificity"
SPECIFICITY_AT_SENSITIVITY = "specificity_at_95_sensitivity"
FIXED_POINT_METRICS = (SENSITIVITY_AT_SPECIFICITY, SPECIFICITY_AT_SENSITIVITY)


def tumor_scores(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(is_tumor bool (N,), P(tumor) (N,)); ValueError without a no-tumor class."""
    y_true, proba = check_inputs(y_true, proba, class_names)
    negative = require_negative_class_index(class_names, why="set an operating point on P(tumor)")
    return y_true != negative, tumor_probability(proba, class_names)


def _binary(is_tumor: np.ndarray, p_tumor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    is_tumor = np.asarray(is_tumor).astype(bool)
    p_tumor = np.asarray(p_tumor, dtype=np.float64)
    if is_tumor.ndim != 1 or is_tumor.shape != p_tumor.shape or not len(is_tumor):
        raise ValueError(f"labels {is_tumor.shape} and P(tumor) {p_tumor.shape} must be equal, non-empty vectors")
    if not np.isfinite(p_tumor).all():
        raise ValueError("P(tumor) must be finite")
    return is_tumor, p_tumor


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"the threshold on P(tumor) must be in [0, 1], got {threshold}")
    return threshold


def operating_point(is_tumor: np.ndarray, p_tumor: np.ndarray, threshold: float) -> dict[str, Any]:
    """``threshold``, the counts ``tp``, ``fn``, ``fp``, ``tn`` and, per measure of
    :data:`MEASURES`, its proportion record (``value``, ``successes``, ``n``, ``ci_low``,
    ``ci_high``, ...) or None; ``not_measurable`` maps each None measure to why."""
    is_tumor, p_tumor = _binary(is_tumor, p_tumor)
    threshold = _check_threshold(threshold)
    called = p_tumor >= threshold
    counts = {
        "tp": int(np.count_nonzero(is_tumor & called)),
        "fn": int(np.count_nonzero(is_tumor & ~called)),
        "fp": int(np.count_nonzero(~is_tumor & called)),
        "tn": int(np.count_nonzero(~is_tumor & ~called)),
    }
    point: dict[str, Any] = {"threshold": threshold, **counts, "not_measurable": {}}
    for measure, (hits, denominator, reason) in _DEFINITIONS.items():
        n = sum(counts[key] for key in denominator)
        point[measure] = one_class.proportion_record(counts[hits], n) if n else None
        if not n:
            point["not_measurable"][measure] = reason
    return point


def _weights_by_image(weights: np.ndarray, n_images: int) -> np.ndarray:
    """Integer counts (B, N) as an (N, B) C-ordered int32 array (a resample's total fits)."""
    weights = np.atleast_2d(np.asarray(weights))
    if weights.shape[1] != n_images or not np.issubdtype(weights.dtype, np.integer) or weights.min() < 0:
        raise ValueError(f"weights must be integer counts (B, {n_images}), got {weights.dtype} {weights.shape}")
    return np.ascontiguousarray(weights.T, dtype=np.int32)


def threshold_table(is_tumor: np.ndarray, p_tumor: np.ndarray) -> pd.DataFrame:
    """The operating point at every threshold: ``threshold`` (+inf first, then each distinct
    score, highest first), ``tp``, ``fn``, ``fp``, ``tn``, ``sensitivity``, ``specificity``
    and ``fpr`` (NaN where the images lack tumors or healthy scans)."""
    is_tumor, p_tumor = _binary(is_tumor, p_tumor)
    negated, score_index = np.unique(-p_tumor, return_inverse=True)  # highest score first
    tp = np.concatenate([[0], np.cumsum(np.bincount(score_index[is_tumor], minlength=len(negated)))])
    fp = np.concatenate([[0], np.cumsum(np.bincount(score_index[~is_tumor], minlength=len(negated)))])
    n_tumor, n_healthy = int(tp[-1]), int(fp[-1])
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN without tumors / healthy scans
        sensitivity = tp / n_tumor if n_tumor else np.full(len(tp), np.nan)
        fpr = fp / n_healthy if n_healthy else np.full(len(fp), np.nan)
    return pd.DataFrame({"threshold": np.append(np.inf, -negated), "tp": tp, "fn": n_tumor - tp, "fp": fp,
                         "tn": n_healthy - fp, "sensitivity": sensitivity, "specificity": 1.0 - fpr, "fpr": fpr})


def operating_row(table: pd.DataFrame, threshold: float) -> int:
    """The row of :func:`threshold_table` that holds the operating point at ``threshold``
    (the lowest listed threshold still >= it)."""
    threshold = _check_threshold(threshold)
    return int(np.count_nonzero(table["threshold"].to_numpy() >= threshold)) - 1


def _called_at_or_above(side: np.ndarray, p_tumor: np.ndarray, weights_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores (K,), called (K, B)): the distinct scores of one side's images (the tumors or
    the healthy scans), highest first, and under each column of ``weights_t`` (N, B) the
    weight of that side's images scoring at least each. One sparse product sums each score's
    weight for every resample; a running sum down the scores finishes it (as in bootstrap's
    Mann-Whitney statistic)."""
    negated, score_index = np.unique(-p_tumor[side], return_inverse=True)
    selector = sparse.csr_matrix(
        (np.ones(len(score_index), dtype=weights_t.dtype), (score_index, np.flatnonzero(side))),
        shape=(len(negated), len(p_tumor)),
    )
    called = selector @ weights_t
    if called.shape[1] == 1:
        np.cumsum(called, axis=0, out=called)
    else:  # row-by-row adds: faster than np.cumsum(axis=0), which walks each column in turn
        for index in range(1, len(called)):
            np.add(called[index - 1], called[index], out=called[index])
    return -negated, called


def _fixed_points(
    is_tumor: np.ndarray, p_tumor: np.ndarray, weights_t: np.ndarray, target: float
) -> dict[str, np.ndarray]:
    """Sensitivity at ``target`` specificity and the reverse under each column of ``weights_t``.

    Lowering the threshold calls more images of both sides: sensitivity rises as specificity
    falls. So the best sensitivity with specificity >= target is that of the thresholds just
    above the first healthy score at which more than floor((1 - target) * healthy) healthy
    scans are called, and the best specificity with sensitivity >= target that of the first
    tumor score at which ceil(target * tumors) tumors are called. Each side is summed over
    its own scores only, and the other side is read at the matching score.
    """
    n_resamples = weights_t.shape[1]
    if is_tumor.all() or not is_tumor.any():
        return {metric: np.full(n_resamples, np.nan) for metric in FIXED_POINT_METRICS}
    tumor_levels, tumors = _called_at_or_above(is_tumor, p_tumor, weights_t)
    healthy_levels, healthy = _called_at_or_above(~is_tumor, p_tumor, weights_t)
    n_tumor, n_healthy = tumors[-1], healthy[-1]
    columns = np.arange(n_resamples)
    # Sensitivity at specificity: j = the healthy scores still within the limit (a prefix);
    # the thresholds above healthy score j call the tumors scoring above it.
    most_healthy = np.floor((1.0 - target + TOLERANCE) * n_healthy).astype(healthy.dtype)
    within = np.count_nonzero(healthy <= most_healthy, axis=0)
    tumor_rows_above = np.append(np.searchsorted(-tumor_levels, -healthy_levels, side="left"), len(tumor_levels))
    rows = tumor_rows_above[within]
    tumors_called = np.where(rows > 0, tumors[np.maximum(rows - 1, 0), columns], 0)
    # Specificity at sensitivity: i = the first tumor score that calls enough tumors; the
    # healthy scans scoring at least it are called too.
    fewest_tumors = np.ceil((target - TOLERANCE) * n_tumor).astype(tumors.dtype)
    first = np.minimum(np.count_nonzero(tumors < fewest_tumors, axis=0), len(tumor_levels) - 1)
    healthy_rows_at = np.searchsorted(-healthy_levels, -tumor_levels, side="right")[first]
    healthy_called = np.where(healthy_rows_at > 0, healthy[np.maximum(healthy_rows_at - 1, 0), columns], 0)
    both = (n_tumor > 0) & (n_healthy > 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN where a side weighs nothing, masked below
        sensitivity = tumors_called / n_tumor
        specificity = 1.0 - healthy_called / n_healthy
    return {
        SENSITIVITY_AT_SPECIFICITY: np.where(both, sensitivity, np.nan),
        SPECIFICITY_AT_SENSITIVITY: np.where(both, specificity, np.nan),
    }


def _check_target(target: float) -> float:
    if not 0 < target < 1:
        raise ValueError(f"the target share must be in (0, 1), got {target}")
    return float(target)


def fixed_point_metrics_by_model(
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]], weights: np.ndarray, target: float = TARGET
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`fixed_point_metrics` of every model's (is_tumor, P(tumor)) on the same weight
    rows, which are laid out for the sums once for all models."""
    target = _check_target(target)
    checked = {name: _binary(is_tumor, p_tumor) for name, (is_tumor, p_tumor) in scores.items()}
    if not checked:
        return {}
    weights_t = _weights_by_image(weights, len(next(iter(checked.values()))[0]))
    return {name: _fixed_points(is_tumor, p_tumor, weights_t, target) for name, (is_tumor, p_tumor) in checked.items()}


def fixed_point_metrics(
    is_tumor: np.ndarray, p_tumor: np.ndarray, weights: np.ndarray, target: float = TARGET
) -> dict[str, np.ndarray]:
    """{:data:`SENSITIVITY_AT_SPECIFICITY`: (B,), :data:`SPECIFICITY_AT_SENSITIVITY`: (B,)}
    under each row of ``weights`` (B, N) (integer counts: a bootstrap resample each; a row of
    ones: the test set). NaN where a row weighs no tumor or no healthy scan."""
    return fixed_point_metrics_by_model({"model": (is_tumor, p_tumor)}, weights, target)["model"]


def sensitivity_at_specificity(is_tumor: np.ndarray, p_tumor: np.ndarray, target: float = TARGET) -> float:
    """The highest sensitivity of a threshold with specificity >= ``target``; NaN without both sides."""
    ones = np.ones((1, len(np.asarray(is_tumor))), dtype=np.int64)
    return float(fixed_point_metrics(is_tumor, p_tumor, ones, target)[SENSITIVITY_AT_SPECIFICITY][0])


def specificity_at_sensitivity(is_tumor: np.ndarray, p_tumor: np.ndarray, target: float = TARGET) -> float:
    """The highest specificity of a threshold with sensitivity >= ``target``; NaN without both sides."""
    ones = np.ones((1, len(np.asarray(is_tumor))), dtype=np.int64)
    return float(fixed_point_metrics(is_tumor, p_tumor, ones, target)[SPECIFICITY_AT_SENSITIVITY][0])
