"""Scores of one model's test predictions, computed from counts and ranks with NumPy.

Every function takes ``y_true`` (int class indices, shape (N,)) and ``proba`` (N, C) rows
summing to 1 in manifest class order. The numbers equal scikit-learn's (the tests check
each one against it); NumPy keeps a leaderboard of many models fast.

Conventions:
- A prediction is the argmax class.
- Precision, recall, F1 and specificity whose denominator is zero are 0, as scikit-learn
  with ``zero_division=0`` (and metrics.json) report them.
- ROC AUC is undefined (NaN here, None in :func:`model_scores`) when the positives or the
  negatives are absent; a macro AUC is undefined when any class AUC is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_NEGATIVE_CLASS = "notumor"
DEFAULT_BINS = 15
# Log-loss clipping and renormalisation, as bt_core.metrics.classification does it.
LOG_LOSS_EPS = 1e-15

MODEL_SCORE_KEYS = (
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "macro_specificity",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
    "macro_auc",
    "micro_auc",
    "log_loss",
    "brier",
    "ece",
    "tumor_sensitivity",
    "tumor_specificity",
    "tumor_auc",
    "n",
)


def check_inputs(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int (N,) and probabilities as float (N, C), or ValueError saying what is wrong."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"proba must be (N, C), got shape {proba.shape}")
    if y_true.ndim != 1 or len(y_true) != len(proba):
        raise ValueError(f"y_true must be (N,) with N = {len(proba)}, got shape {y_true.shape}")
    if len(y_true) == 0:
        raise ValueError("no images to score")
    if not np.issubdtype(y_true.dtype, np.integer):
        raise ValueError(f"y_true must hold int class indices, got {y_true.dtype}")
    y_true = y_true.astype(np.int64)
    if y_true.min() < 0 or y_true.max() >= proba.shape[1]:
        raise ValueError(f"y_true holds class indices outside 0..{proba.shape[1] - 1}")
    return y_true, proba


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) confusion matrix: rows true class, columns predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _one_vs_all(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    matrix = confusion_counts(y_true, y_pred, n_classes)
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    tn = matrix.sum() - tp - fp - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def one_vs_all_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> pd.DataFrame:
    """Per class, treating it as positive and all others as negative: tp, fp, fn, tn."""
    return pd.DataFrame({"class_index": np.arange(n_classes), **_one_vs_all(y_true, y_pred, n_classes)})


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their average rank (scipy's ``rankdata``).

    NumPy rather than scipy.stats, whose import costs the dashboard about 0.9 s at start.
    """
    _, inverse, counts = np.unique(np.asarray(values, dtype=np.float64), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return ((last - counts + 1 + last) / 2.0)[inverse.reshape(-1)]


def binary_auc(y_binary: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney statistic (tied scores count 1/2); NaN if a side is empty."""
    positive = np.asarray(y_binary).astype(bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(score)  # ties share their average rank: they count 1/2
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _per_class(y_true: np.ndarray, proba: np.ndarray) -> dict[str, np.ndarray]:
    n_classes = proba.shape[1]
    counts = _one_vs_all(y_true, proba.argmax(axis=1), n_classes)
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        # 2TP / (2TP + FP + FN) is F1 without dividing by precision + recall = 0.
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "specificity": _ratio(tn, tn + fp),
        "support": (tp + fn).astype(np.int64),
        "auc": np.array([binary_auc(y_true == k, proba[:, k]) for k in range(n_classes)]),
    }


def _averages(per_class: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, float]]:
    """Macro (plain mean) and support-weighted rows of the per-class scores."""
    support = per_class["support"].astype(np.float64)
    total = support.sum()
    macro: dict[str, float] = {"support": total}
    weighted: dict[str, float] = {"support": total}
    for column in ("precision", "recall", "f1", "specificity"):
        values = per_class[column]
        macro[column] = float(values.mean())
        weighted[column] = float(values @ support / total) if total else 0.0
    auc = per_class["auc"]
    macro["auc"] = float(auc.mean())  # NaN when any class AUC is undefined
    present = support > 0
    # A class absent from the test set weighs 0, so only present classes enter the weighted AUC.
    weighted["auc"] = float(auc[present] @ support[present] / total) if total else float("nan")
    return macro, weighted


def class_report(y_true: np.ndarray, proba: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Per class and macro / weighted rows: precision, recall, f1, specificity, support, auc."""
    y_true, proba = check_inputs(y_true, proba)
    if proba.shape[1] != len(class_names):
        raise ValueError(f"proba has {proba.shape[1]} columns for {len(class_names)} classes")
    per_class = _per_class(y_true, proba)
    macro, weighted = _averages(per_class)
    table = pd.DataFrame(per_class, index=list(class_names))
    report = pd.concat([table, pd.DataFrame([macro, weighted], index=["macro", "weighted"])])
    report["support"] = report["support"].astype(np.int64)
    return report[["precision", "recall", "f1", "specificity", "support", "auc"]]


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each confidence; bins are (lower, upper] except the first, which holds 0."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)


def _reliability(y_true: np.ndarray, proba: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    index = _bin_index(confidence, n_bins)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins are NaN on purpose
        mean_confidence = np.bincount(index, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {
        "bin": np.arange(n_bins),
        "lower": edges[:-1],
        "upper": edges[1:],
        "confidence": mean_confidence,
        "accuracy": accuracy,
        "count": count.astype(np.int64),
    }


def reliability_bins(y_true: np.ndarray, proba: np.ndarray, n_bins: int = DEFAULT_BINS) -> pd.DataFrame:
    """Top-label reliability diagram: per equal-width confidence bin, mean confidence and accuracy.

    Bins are (lower, upper] (the first also holds 0); an empty bin has count 0 and NaN means.
    """
    y_true, proba = check_inputs(y_true, proba)
    return pd.DataFrame(_reliability(y_true, proba, n_bins))


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Top-label ECE: sum over bins of (count / N) * |accuracy - mean confidence|."""
    y_true, proba = check_inputs(y_true, proba)
    bins = _reliability(y_true, proba, n_bins)
    filled = bins["count"] > 0
    gap = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    return float(bins["count"][filled] @ gap / len(y_true))


def brier_score(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class Brier score: mean over images of the sum over classes of (p - one-hot)^2."""
    y_true, proba = check_inputs(y_true, proba)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y_true)), y_true] = 1.0
    return float(((proba - onehot) ** 2).sum(axis=1).mean())


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log probability of the true class (clipped at 1e-15, rows renormalised)."""
    y_true, proba = check_inputs(y_true, proba)
    clipped = np.clip(proba, LOG_LOSS_EPS, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return float(-np.log(clipped[np.arange(len(y_true)), y_true]).mean())


def negative_class_index(class_names: list[str], negative_class: str = DEFAULT_NEGATIVE_CLASS) -> int:
    """Index of the no-tumor class, or ValueError naming the classes there are."""
    names = list(class_names)
    if negative_class not in names:
        raise ValueError(f"no class {negative_class!r} to collapse to tumor / no tumor; classes are {names}")
    return names.index(negative_class)


def tumor_probability(
    proba: np.ndarray, class_names: list[str], negative_class: str = DEFAULT_NEGATIVE_CLASS
) -> np.ndarray:
    """P(any tumor) = 1 - P(negative class), per image."""
    proba = np.asarray(proba, dtype=np.float64)
    return 1.0 - proba[:, negative_class_index(class_names, negative_class)]


def _optional(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _tumor_scores(
    y_true: np.ndarray, proba: np.ndarray, class_names: list[str], negative_class: str
) -> dict[str, float | None]:
    if negative_class not in class_names:
        return {"tumor_sensitivity": None, "tumor_specificity": None, "tumor_auc": None}
    negative = negative_class_index(class_names, negative_class)
    is_tumor = y_true != negative
    predicted_tumor = proba.argmax(axis=1) != negative
    n_tumor, n_healthy = int(is_tumor.sum()), int((~is_tumor).sum())
    return {
        "tumor_sensitivity": float((predicted_tumor & is_tumor).sum() / n_tumor) if n_tumor else None,
        "tumor_specificity": float((~predicted_tumor & ~is_tumor).sum() / n_healthy) if n_healthy else None,
        "tumor_auc": _optional(binary_auc(is_tumor, tumor_probability(proba, class_names, negative_class))),
    }


def model_scores(
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: list[str],
    negative_class: str = DEFAULT_NEGATIVE_CLASS,
) -> dict[str, float | None]:
    """Every headline score of one model (keys: MODEL_SCORE_KEYS); None where undefined.

    tumor_* collapse the classes to tumor / no tumor: a tumor is predicted when the argmax
    class is not ``negative_class``; they are None when there is no such class.
    """
    y_true, proba = check_inputs(y_true, proba)
    class_names = list(class_names)
    if proba.shape[1] != len(class_names):
        raise ValueError(f"proba has {proba.shape[1]} columns for {len(class_names)} classes")
    macro, weighted = _averages(_per_class(y_true, proba))
    onehot = np.zeros_like(proba, dtype=bool)
    onehot[np.arange(len(y_true)), y_true] = True
    scores: dict[str, float | None] = {
        "accuracy": float((proba.argmax(axis=1) == y_true).mean()),
        "macro_precision": macro["precision"],
        "macro_recall": macro["recall"],
        "macro_f1": macro["f1"],
        "macro_specificity": macro["specificity"],
        "weighted_precision": weighted["precision"],
        "weighted_recall": weighted["recall"],
        "weighted_f1": weighted["f1"],
        "macro_auc": _optional(macro["auc"]),
        # Micro AUC pools every (image, class) pair, as sklearn's average="micro" does.
        "micro_auc": _optional(binary_auc(onehot.ravel(), proba.ravel())),
        "log_loss": log_loss(y_true, proba),
        "brier": brier_score(y_true, proba),
        "ece": _optional(expected_calibration_error(y_true, proba)),
        **_tumor_scores(y_true, proba, class_names, negative_class),
        "n": int(len(y_true)),
    }
    return scores
