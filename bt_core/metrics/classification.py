"""Scores of one model's test predictions; scikit-learn computes every metric it has."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from bt_core.artifacts import probability_columns


def classification_summary(y_true: np.ndarray, proba: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, macro / weighted precision, recall, F1, one-vs-rest AUC, log loss, per class."""
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=np.float64)
    labels = list(range(len(class_names)))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    macro = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    weighted = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="weighted", zero_division=0
    )
    present = np.unique(y_true)
    per_class_auc = {}
    for index, name in enumerate(class_names):
        # AUC needs both positives and negatives of the class in the test set.
        has_both = index in present and len(present) > 1
        per_class_auc[name] = float(skm.roc_auc_score(y_true == index, proba[:, index])) if has_both else None
    defined = [v for v in per_class_auc.values() if v is not None]
    # Renormalise so log loss never sees rows summing to 1 +- float error.
    clipped = np.clip(proba, 1e-15, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return {
        "n_test": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "weighted_precision": float(weighted[0]),
        "weighted_recall": float(weighted[1]),
        "weighted_f1": float(weighted[2]),
        "macro_auc": float(np.mean(defined)) if len(defined) == len(class_names) else None,
        "log_loss": float(skm.log_loss(y_true, clipped, labels=labels)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "auc": per_class_auc[name],
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def metrics_from_predictions(predictions: pd.DataFrame, class_names: list[str]) -> dict[str, Any]:
    """The same summary, from a predictions.csv table (label names, p_<class> columns)."""
    index = {name: i for i, name in enumerate(class_names)}
    y_true = predictions["label"].map(index).to_numpy()
    proba = predictions[probability_columns(class_names)].to_numpy(dtype=np.float64)
    return classification_summary(y_true, proba, class_names)
