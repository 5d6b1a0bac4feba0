"""bt_core.metrics.per_class and metrics.json's one_vs_rest, against scikit-learn."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from bt_core.artifacts import predictions_frame
from bt_core.metrics import classification_summary, metrics_from_predictions, one_class
from bt_core.metrics import per_class

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


@pytest.fixture
def predictions():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, size=150)
    logits = rng.normal(size=(150, 4))
    logits[np.arange(150), y_true] += 1.2
    logits[:, 3] -= 2.5  # pituitary rarely predicted: small, uneven counts
    return y_true, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_stored_counts_and_scores_equal_scikit_learns(predictions):
    y_true, proba = predictions
    y_pred = proba.argmax(axis=1)
    summary = classification_summary(y_true, proba, CLASSES)
    # A JSON round trip: what metrics.json holds.
    summary = json.loads(json.dumps(summary))
    counts = skm.multilabel_confusion_matrix(y_true, y_pred, labels=range(4))  # [[tn, fp], [fn, tp]]
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=range(4), zero_division=0)
    for k, name in enumerate(CLASSES):
        (tn, fp), (fn, tp) = counts[k]
        record = summary["one_vs_rest"][name]
        assert (record["tp"], record["fp"], record["fn"], record["tn"]) == (tp, fp, fn, tn), name
        assert record["specificity"] == pytest.approx(tn / (tn + fp))
        scores = summary["per_class"][name]
        assert (scores["precision"], scores["recall"], scores["f1"]) == pytest.approx((precision[k], recall[k], f1[k]))
        assert scores["support"] == support[k] == tp + fn
    matrix = skm.confusion_matrix(y_true, y_pred, labels=range(4))
    assert summary["confusion_matrix"] == matrix.tolist()
    np.testing.assert_array_equal(per_class.one_vs_rest_counts(matrix)[:, 0], np.diag(matrix))
    assert sum(summary["one_vs_rest"]["pituitary"][key] for key in per_class.COUNT_KEYS) == len(y_true)


def test_an_older_metrics_json_gets_the_same_records_from_its_confusion_matrix(predictions):
    summary = classification_summary(*predictions, CLASSES)
    stored = json.loads(json.dumps(summary))
    assert per_class.stored_one_vs_rest(stored, CLASSES) == (stored["one_vs_rest"], True)
    older = {key: value for key, value in stored.items() if key != "one_vs_rest"}  # before format 1.6
    assert per_class.stored_one_vs_rest(older, CLASSES) == (stored["one_vs_rest"], False)
    garbled = {**stored, "one_vs_rest": {"glioma": {"tp": -1}}}
    assert per_class.stored_one_vs_rest(garbled, CLASSES) == (stored["one_vs_rest"], False)
    for broken in (None, [[1, 2], [3, 4]], [[0.5] * 4] * 4, "garbled"):
        assert per_class.stored_one_vs_rest({"confusion_matrix": broken}, CLASSES) == (None, False)


def test_known_counts_of_a_small_matrix():
    matrix = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])  # rows true, columns predicted
    records = per_class.one_vs_rest(matrix, ["a", "b", "c"])
    assert records["a"] == {"tp": 5, "fp": 2, "fn": 1, "tn": 8, "specificity": 0.8}
    assert records["b"] == {"tp": 3, "fp": 1, "fn": 3, "tn": 9, "specificity": 0.9}
    assert records["c"] == {"tp": 4, "fp": 1, "fn": 0, "tn": 11, "specificity": 11 / 12}
    with pytest.raises(ValueError, match=r"must be square, got shape \(2, 3\)"):
        per_class.one_vs_rest_counts(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="a 3-class confusion matrix for 2 classes"):
        per_class.one_vs_rest(matrix, ["a", "b"])


def test_a_folder_of_one_class_has_no_specificity_for_that_class_and_says_so():
    # An external evaluation of tumor images only (tumor mode): 8 of 10 called tumor.
    proba = np.array([[0.2, 0.8]] * 8 + [[0.7, 0.3]] * 2)
    names = ["notumor", "tumor"]
    frame = predictions_frame([f"img{i}" for i in range(10)], ["tumor"] * 10, proba, names)
    summary = metrics_from_predictions(frame, names, where=one_class.FOLDER)
    assert summary["one_vs_rest"]["tumor"] == {"tp": 8, "fp": 0, "fn": 2, "tn": 0, "specificity": None}
    # The absent class still has negatives: the share of the images not called no tumor.
    assert summary["one_vs_rest"]["notumor"] == {"tp": 0, "fp": 2, "fn": 0, "tn": 8, "specificity": 0.8}
    assert "one_vs_rest.tumor.specificity" in summary["not_measurable"]["metrics"]
    assert "one_vs_rest.notumor.specificity" not in summary["not_measurable"]["metrics"]


def test_undefined_shares_are_nan_as_scikit_learns_zero_division_nan():
    """A class with no test image (notumor) has no recall or F1; a class never predicted
    (pituitary) has no precision: NaN, shown as not measurable, never 0% marked as the best."""
    y_true = np.array([0, 0, 1, 1, 3, 3])
    y_pred = np.array([0, 1, 1, 2, 0, 1])
    proba = np.eye(4)[y_pred] * 0.9 + 0.025
    summary = json.loads(json.dumps(classification_summary(y_true, proba, CLASSES)))
    records, stored = per_class.class_records(summary, CLASSES)
    expected = skm.precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=np.nan)
    for k, name in enumerate(CLASSES):
        got = [records[name][key] for key in ("precision", "recall", "f1")]
        np.testing.assert_allclose(got, [expected[0][k], expected[1][k], expected[2][k]], equal_nan=True)
    assert stored and np.isnan(records["notumor"]["recall"]) and np.isnan(records["pituitary"]["precision"])
    assert records["glioma"]["precision"] == pytest.approx(0.5)
