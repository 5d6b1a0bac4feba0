"""Our metric summary against scikit-learn on fixed data."""

import numpy as np
import pytest
from sklearn import metrics as skm

from bt_core.artifacts import predictions_frame
from bt_core.metrics import classification_summary, metrics_from_predictions

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


@pytest.fixture
def fixed_predictions():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=200)
    logits = rng.normal(size=(200, 4))
    logits[np.arange(200), y_true] += 1.5  # better than chance, not perfect
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, proba


def test_summary_matches_scikit_learn(fixed_predictions):
    y_true, proba = fixed_predictions
    y_pred = proba.argmax(axis=1)
    summary = classification_summary(y_true, proba, CLASSES)
    assert summary["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert summary["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert summary["macro_precision"] == pytest.approx(skm.precision_score(y_true, y_pred, average="macro"))
    assert summary["macro_recall"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro"))
    assert summary["weighted_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="weighted"))
    assert summary["macro_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro"))
    assert summary["log_loss"] == pytest.approx(skm.log_loss(y_true, proba))
    assert summary["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred).tolist()
    per_class_f1 = skm.f1_score(y_true, y_pred, average=None)
    assert [summary["per_class"][c]["f1"] for c in CLASSES] == pytest.approx(per_class_f1)
    assert sum(summary["per_class"][c]["support"] for c in CLASSES) == summary["n_test"] == 200
    # Sanity on the fixture itself: the task is learnable but not solved.
    assert 0.4 < summary["accuracy"] < 0.95


def test_perfect_and_inverted_scores():
    y_true = np.array([0, 1, 2, 3, 0, 1])
    perfect = np.eye(4)[y_true] * 0.97 + 0.01
    summary = classification_summary(y_true, perfect, CLASSES)
    assert summary["accuracy"] == 1.0 and summary["macro_f1"] == 1.0 and summary["macro_auc"] == 1.0
    wrong = np.eye(4)[(y_true + 1) % 4] * 0.97 + 0.01
    assert classification_summary(y_true, wrong, CLASSES)["accuracy"] == 0.0


def test_auc_is_none_when_a_class_is_missing_from_the_test_set():
    y_true = np.array([0, 1, 2, 0, 1, 2])
    proba = np.full((6, 4), 0.25)
    summary = classification_summary(y_true, proba, CLASSES)
    assert summary["per_class"]["pituitary"]["auc"] is None
    assert summary["macro_auc"] is None


def test_from_predictions_table_equals_from_arrays(fixed_predictions):
    y_true, proba = fixed_predictions
    frame = predictions_frame([f"img{i}" for i in range(200)], [CLASSES[i] for i in y_true], proba, CLASSES)
    assert metrics_from_predictions(frame, CLASSES) == classification_summary(y_true, proba, CLASSES)


def test_summary_keys_are_those_of_metrics_json(fixed_predictions):
    summary = classification_summary(*fixed_predictions, CLASSES)
    assert list(summary) == [
        "n_test", "accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
        "weighted_recall", "weighted_f1", "macro_auc", "log_loss", "per_class", "confusion_matrix", "one_vs_rest",
    ]
    assert list(summary["per_class"]) == CLASSES
    assert list(summary["per_class"]["glioma"]) == ["precision", "recall", "f1", "support", "auc"]
    assert list(summary["one_vs_rest"]) == CLASSES
    assert list(summary["one_vs_rest"]["glioma"]) == ["tp", "fp", "fn", "tn", "specificity"]


def test_a_never_predicted_class_scores_zero_precision_not_nan():
    y_true = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array([[0.7, 0.1, 0.1, 0.1]] * 3 + [[0.1, 0.7, 0.1, 0.1]] * 3)
    summary = classification_summary(y_true, proba, CLASSES)
    assert summary["per_class"]["notumor"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2, "auc": 0.5}
    assert summary["per_class"]["pituitary"]["support"] == 0 and summary["per_class"]["pituitary"]["auc"] is None
    assert summary["confusion_matrix"][2] == [1, 1, 0, 0]


def test_labels_outside_the_classes_are_refused(fixed_predictions):
    y_true, proba = fixed_predictions
    frame = predictions_frame([f"img{i}" for i in range(200)], [CLASSES[i] for i in y_true], proba, CLASSES)
    frame.loc[3, "label"] = "astrocytoma"
    with pytest.raises(ValueError, match=r"\['astrocytoma'\] are not among the classes"):
        metrics_from_predictions(frame, CLASSES)
