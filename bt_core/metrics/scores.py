"""Scores of one model's test predictions; scikit-learn computes every metric it has.

Every function takes ``y_true`` (int class indices, shape (N,)) and ``proba`` (N, C) rows
summing to 1 in manifest class order. Two views of the same numbers:
:func:`classification_summary` (what a run stores as metrics.json) and :func:`model_scores`
(a leaderboard row). Calibration (top-label reliability bins, ECE) is our own:
``sklearn.calibration.calibration_curve`` is binary only and drops empty bins, and
scikit-learn has no ECE.

Conventions:
- A prediction is the argmax class.
- Precision, recall, F1 and specificity whose denominator is zero are 0 (scikit-learn's
  ``zero_division=0``).
- ROC AUC is undefined (NaN from :func:`binary_auc`, None in the summaries) when the
  positives or the negatives are absent; a macro AUC is undefined when any class AUC is.
- The tumor / no-tumor collapse finds the no-tumor class with :mod:`bt_core.data.classes`
  (``notumor``, ``no_tumor``, ``No Tumor``, ...).
- Labels of one class only (an external folder of tumor scans): every score that compares
  classes is None (:mod:`bt_core.metrics.one_class`), and the summary says why.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from bt_core.artifacts import probability_columns
from bt_core.data.classes import negative_class_index, require_negative_class_index
from bt_core.metrics import one_class, per_class

DEFAULT_BINS = 15
# Log-loss clipping before renormalising, as metrics.json has always been computed.
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


def check_inputs(
    y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int64 (N,) and probabilities as float64 (N, C), or ValueError saying what is wrong.

    With ``class_names``, the columns of ``proba`` must be exactly those classes.
    """
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
    if class_names is not None and proba.shape[1] != len(class_names):
        raise ValueError(f"proba has {proba.shape[1]} columns for {len(class_names)} classes")
    return y_true, proba


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


def _optional(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def binary_auc(y_binary: np.ndarray, score: np.ndarray) -> float:
    """scikit-learn's ROC AUC (tied scores count 1/2), or NaN when positives or negatives are absent."""
    positive = np.asarray(y_binary).astype(bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(skm.roc_auc_score(positive, np.asarray(score, dtype=np.float64)))


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) confusion matrix: rows true class, columns predicted class."""
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log probability of the true class (clipped at 1e-15, rows renormalised)."""
    y_true, proba = check_inputs(y_true, proba)
    clipped = np.clip(proba, LOG_LOSS_EPS, 1.0)
    # Renormalised so scikit-learn never sees rows summing to 1 +- float error.
    clipped /= clipped.sum(axis=1, keepdims=True)
    return float(skm.log_loss(y_true, clipped, labels=np.arange(proba.shape[1])))


def brier_score(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Multi-class Brier score: mean over images of the sum over classes of (p - one-hot)^2."""
    y_true, proba = check_inputs(y_true, proba)
    # Stored float32 probabilities sum to 1 only within ~1e-7; scikit-learn warns on that.
    normalised = proba / proba.sum(axis=1, keepdims=True)
    # scale_by_half=False: the sum over all C classes, for two classes too.
    return float(skm.brier_score_loss(y_true, normalised, labels=np.arange(proba.shape[1]), scale_by_half=False))


def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """scikit-learn's accuracy of the argmax class."""
    y_true, proba = check_inputs(y_true, proba)
    return float(skm.accuracy_score(y_true, proba.argmax(axis=1)))


def tumor_probability(proba: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """P(any tumor) = 1 - P(no-tumor class), per image; ValueError without a no-tumor class."""
    proba = np.asarray(proba, dtype=np.float64)
    return 1.0 - proba[:, require_negative_class_index(class_names)]


def _class_scores(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Per class (arrays) and macro / weighted (precision, recall, f1) of checked inputs."""
    labels = np.arange(proba.shape[1])
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    averages = {
        average: skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )[:3]
        for average in ("macro", "weighted")
    }
    auc = np.array([binary_auc(y_true == k, proba[:, k]) for k in labels])
    return {"y_pred": y_pred, "precision": precision, "recall": recall, "f1": f1, "support": support,
            "auc": auc, **averages}


def _macro_specificity(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    one_vs_rest = skm.multilabel_confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))
    tn, fp = one_vs_rest[:, 0, 0], one_vs_rest[:, 0, 1]
    negatives = tn + fp
    specificity = np.divide(tn, negatives, out=np.zeros(n_classes), where=negatives > 0)
    return float(specificity.mean())


def _tumor_scores(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> dict[str, float | None]:
    negative = negative_class_index(class_names)
    if negative is None:
        return {"tumor_sensitivity": None, "tumor_specificity": None, "tumor_auc": None}
    is_tumor = y_true != negative
    predicted_tumor = proba.argmax(axis=1) != negative
    tn, fp, fn, tp = skm.confusion_matrix(is_tumor, predicted_tumor, labels=[False, True]).ravel()
    return {
        "tumor_sensitivity": float(tp / (tp + fn)) if tp + fn else None,
        "tumor_specificity": float(tn / (tn + fp)) if tn + fp else None,
        "tumor_auc": _optional(binary_auc(is_tumor, 1.0 - proba[:, negative])),
    }


def model_scores(y_true: np.ndarray, proba: np.ndarray, class_names: Sequence[str]) -> dict[str, float | None]:
    """Every headline score of one model (keys: MODEL_SCORE_KEYS); None where undefined.

    tumor_* collapse the classes to tumor / no tumor: a tumor is predicted when the argmax
    class is not the no-tumor class; they are None when the classes have none. Labels of one
    class: the scores that compare classes (one_class.SCORES_NEEDING_TWO_CLASSES) are None.
    """
    y_true, proba = check_inputs(y_true, proba, class_names)
    scores = _class_scores(y_true, proba)
    onehot = np.zeros_like(proba, dtype=bool)
    onehot[np.arange(len(y_true)), y_true] = True
    macro, weighted = scores["macro"], scores["weighted"]
    result = {
        "accuracy": float(skm.accuracy_score(y_true, scores["y_pred"])),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "macro_specificity": _macro_specificity(y_true, scores["y_pred"], proba.shape[1]),
        "weighted_precision": float(weighted[0]),
        "weighted_recall": float(weighted[1]),
        "weighted_f1": float(weighted[2]),
        "macro_auc": _optional(scores["auc"].mean()),
        # Micro AUC pools every (image, class) pair, as sklearn's average="micro" does.
        "micro_auc": _optional(binary_auc(onehot.ravel(), proba.ravel())),
        "log_loss": log_loss(y_true, proba),
        "brier": brier_score(y_true, proba),
        "ece": _optional(expected_calibration_error(y_true, proba, )),
        **_tumor_scores(y_true, proba, class_names),
        "n": int(len(y_true)),
    }
    if one_class.present_class(y_true) is not None:
        result.update(dict.fromkeys(one_class.SCORES_NEEDING_TWO_CLASSES))
    return result


def classification_summary(
    y_true: np.ndarray, proba: np.ndarray, class_names: list[str], where: str = one_class.TEST_SET
) -> dict[str, Any]:
    """What metrics.json holds (docs/artifacts.md): accuracy, macro / weighted precision, recall,
    F1, macro one-vs-rest AUC, log loss, per class scores, the confusion matrix and each class
    against the rest (:func:`bt_core.metrics.per_class.one_vs_rest`).

    Labels of one class: :func:`_one_class_summary` (``where`` names the images in the reason)."""
    y_true, proba = check_inputs(y_true, proba, class_names)
    scores = _class_scores(y_true, proba)
    macro, weighted = scores["macro"], scores["weighted"]
    auc = [_optional(value) for value in scores["auc"]]
    matrix = confusion_counts(y_true, scores["y_pred"], len(class_names))
    summary = {
        "n_test": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, scores["y_pred"])),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "weighted_precision": float(weighted[0]),
        "weighted_recall": float(weighted[1]),
        "weighted_f1": float(weighted[2]),
        "macro_auc": _optional(scores["auc"].mean()),
        "log_loss": log_loss(y_true, proba),
        "per_class": {
            name: {
                "precision": float(scores["precision"][i]),
                "recall": float(scores["recall"][i]),
                "f1": float(scores["f1"][i]),
                "support": int(scores["support"][i]),
                "auc": auc[i],
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": matrix.tolist(),
        # 1.6: each class against the rest (TP / FP / FN / TN, specificity).
        per_class.ONE_VS_REST: per_class.one_vs_rest(matrix, class_names),
    }
    record = one_class.one_class_record(y_true, scores["y_pred"], class_names)
    if record is not None:
        _one_class_summary(summary, record, y_true, proba, class_names, where)
    return summary


def _one_class_summary(
    summary: dict[str, Any], record: dict[str, Any], y_true: np.ndarray, proba: np.ndarray,
    class_names: Sequence[str], where: str,
) -> None:
    """A summary of labels of one class, in place: what compares classes becomes None and is
    listed under ``not_measurable`` (``reason``, ``metrics``); ``one_class`` holds the share of
    the images called their class with its Wilson interval; with a no-tumor class also
    ``tumor_sensitivity``, ``tumor_specificity`` and ``tumor_auc`` (the measurable one set)."""
    blank = list(one_class.SUMMARY_NEEDING_TWO_CLASSES)
    for name, scores in summary["per_class"].items():
        keys = ("precision", "f1", "auc") if name == record["class"] else ("precision", "recall", "f1", "auc")
        scores.update(dict.fromkeys(keys))
        blank += [f"per_class.{name}.{key}" for key in keys]
    # The one class has no negatives: its specificity is None (per_class.one_vs_rest).
    blank += [f"{per_class.ONE_VS_REST}.{name}.specificity"
              for name, counts in summary[per_class.ONE_VS_REST].items() if counts["specificity"] is None]
    summary.update(dict.fromkeys(one_class.SUMMARY_NEEDING_TWO_CLASSES))
    if negative_class_index(class_names) is not None:
        tumor = _tumor_scores(y_true, proba, class_names)
        tumor["tumor_auc"] = None
        summary.update(tumor)
        blank += [key for key, value in tumor.items() if value is None]
    summary["one_class"] = record
    summary["not_measurable"] = {"reason": one_class.not_measurable_reason(record["class"], where), "metrics": blank}


def metrics_from_predictions(
    predictions: pd.DataFrame, class_names: list[str], where: str = one_class.TEST_SET
) -> dict[str, Any]:
    """:func:`classification_summary` of a predictions.csv table (label names, p_<class> columns)."""
    index = pd.Index(class_names).get_indexer(predictions["label"].to_numpy())
    if (index < 0).any():
        unknown = sorted(set(predictions["label"][index < 0].astype(str)))
        raise ValueError(f"labels {unknown} are not among the classes {list(class_names)}")
    proba = predictions[probability_columns(class_names)].to_numpy(dtype=np.float64)
    return classification_summary(index.astype(np.int64), proba, class_names, where)
