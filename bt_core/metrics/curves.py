"""ROC and precision-recall curve points (scikit-learn), as tables ready to plot.

A curve needs both positives and negatives; :func:`roc_points` and :func:`pr_points` raise
ValueError without them, and :func:`class_curves` leaves such a class out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from bt_core.data.classes import require_negative_class_index
from bt_core.metrics.scores import binary_auc, check_inputs, tumor_probability

CURVE_KINDS = ("roc", "pr")


def _binary_inputs(y_true_binary: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    positive = np.asarray(y_true_binary).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    if positive.shape != score.shape or positive.ndim != 1:
        raise ValueError(f"labels {positive.shape} and scores {score.shape} must be equal-length vectors")
    n_pos = int(positive.sum())
    if n_pos == 0 or n_pos == len(positive):
        raise ValueError(f"a curve needs positives and negatives; got {n_pos} of {len(positive)} positive")
    return positive, score


def roc_points(y_true_binary: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """ROC curve: fpr, tpr, threshold (the first threshold is +inf: nothing called positive)."""
    positive, score = _binary_inputs(y_true_binary, score)
    fpr, tpr, threshold = skm.roc_curve(positive, score, drop_intermediate=True)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": threshold})


def pr_points(y_true_binary: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    """Precision-recall curve: recall, precision, threshold (NaN on the final recall-0 point)."""
    positive, score = _binary_inputs(y_true_binary, score)
    precision, recall, threshold = skm.precision_recall_curve(positive, score)
    # sklearn gives one threshold fewer than points: the last point (recall 0) has none.
    return pd.DataFrame({"recall": recall, "precision": precision, "threshold": np.append(threshold, np.nan)})


def pr_summary(y_true_binary: np.ndarray, score: np.ndarray) -> float:
    """Average precision (the step-wise area under the PR curve, as scikit-learn defines it)."""
    positive, score = _binary_inputs(y_true_binary, score)
    return float(skm.average_precision_score(positive, score))


def class_curves(y_true: np.ndarray, proba: np.ndarray, class_names: list[str], kind: str = "roc") -> pd.DataFrame:
    """One-vs-rest curves of every class of one model, long format: class, x, y, auc.

    kind="roc": x = fpr, y = tpr, auc = ROC AUC; kind="pr": x = recall, y = precision,
    auc = average precision. A class without positives or negatives in y_true is left out.
    """
    if kind not in CURVE_KINDS:
        raise ValueError(f"kind must be one of {CURVE_KINDS}, got {kind!r}")
    y_true, proba = check_inputs(y_true, proba, class_names)
    frames = []
    for index, name in enumerate(class_names):
        positive = y_true == index
        if positive.all() or not positive.any():
            continue
        score = proba[:, index]
        if kind == "roc":
            points = roc_points(positive, score)
            x, y = points["fpr"], points["tpr"]
            area = binary_auc(positive, score)
        else:
            points = pr_points(positive, score)
            x, y = points["recall"], points["precision"]
            area = pr_summary(positive, score)
        frames.append(pd.DataFrame({"class": name, "x": x.to_numpy(), "y": y.to_numpy(), "auc": area}))
    if not frames:
        return pd.DataFrame({"class": pd.Series(dtype=str), "x": [], "y": [], "auc": []})
    return pd.concat(frames, ignore_index=True)


def tumor_roc(y_true: np.ndarray, proba: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """ROC of tumor vs no tumor, scored by 1 - P(no-tumor class): fpr, tpr, threshold.

    ValueError without a no-tumor class (bt_core.data.classes), or without tumors or healthy scans.
    """
    y_true, proba = check_inputs(y_true, proba, class_names)
    is_tumor = y_true != require_negative_class_index(class_names)
    return roc_points(is_tumor, tumor_probability(proba, class_names))
