"""ROC / PR curve tables against scikit-learn."""

import numpy as np
import pytest
from sklearn import metrics as skm

from bt_core.metrics import class_curves, pr_points, pr_summary, roc_points, tumor_roc

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


@pytest.fixture
def predictions():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, size=200)
    logits = rng.normal(size=(200, 4))
    logits[np.arange(200), y_true] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, proba


def test_roc_points_are_sklearn_roc_curve(predictions):
    y_true, proba = predictions
    positive, score = y_true == 1, proba[:, 1]
    points = roc_points(positive, score)
    fpr, tpr, threshold = skm.roc_curve(positive, score, drop_intermediate=True)
    assert list(points.columns) == ["fpr", "tpr", "threshold"]
    np.testing.assert_array_equal(points["fpr"], fpr)
    np.testing.assert_array_equal(points["tpr"], tpr)
    np.testing.assert_array_equal(points["threshold"], threshold)
    assert np.trapezoid(points["tpr"], points["fpr"]) == pytest.approx(skm.roc_auc_score(positive, score))
    assert len(points) < len(np.unique(score))  # intermediate points dropped


def test_pr_points_and_average_precision_are_sklearn(predictions):
    y_true, proba = predictions
    positive, score = y_true == 2, proba[:, 2]
    points = pr_points(positive, score)
    precision, recall, threshold = skm.precision_recall_curve(positive, score)
    assert list(points.columns) == ["recall", "precision", "threshold"]
    np.testing.assert_array_equal(points["recall"], recall)
    np.testing.assert_array_equal(points["precision"], precision)
    np.testing.assert_array_equal(points["threshold"].iloc[:-1], threshold)
    assert np.isnan(points["threshold"].iloc[-1])  # the (recall 0, precision 1) end point
    assert pr_summary(positive, score) == pytest.approx(skm.average_precision_score(positive, score))


def test_curves_need_both_positives_and_negatives():
    with pytest.raises(ValueError, match="positives and negatives"):
        roc_points(np.ones(4, dtype=bool), np.arange(4.0))
    with pytest.raises(ValueError, match="positives and negatives"):
        pr_points(np.zeros(4, dtype=bool), np.arange(4.0))


@pytest.mark.parametrize("kind", ["roc", "pr"])
def test_class_curves_long_format(predictions, kind):
    y_true, proba = predictions
    curves = class_curves(y_true, proba, CLASSES, kind=kind)
    assert list(curves.columns) == ["class", "x", "y", "auc"]
    assert list(dict.fromkeys(curves["class"])) == CLASSES
    for index, name in enumerate(CLASSES):
        rows = curves[curves["class"] == name]
        positive, score = y_true == index, proba[:, index]
        if kind == "roc":
            expected = roc_points(positive, score)
            x, y, area = expected["fpr"], expected["tpr"], skm.roc_auc_score(positive, score)
        else:
            expected = pr_points(positive, score)
            x, y, area = expected["recall"], expected["precision"], skm.average_precision_score(positive, score)
        np.testing.assert_array_equal(rows["x"], x)
        np.testing.assert_array_equal(rows["y"], y)
        assert rows["auc"].nunique() == 1 and rows["auc"].iloc[0] == pytest.approx(area)


def test_class_curves_leave_out_a_class_without_positives():
    y_true = np.array([0, 1, 2, 0, 1, 2])
    proba = np.full((6, 4), 0.25)
    curves = class_curves(y_true, proba, CLASSES)
    assert set(curves["class"]) == {"glioma", "meningioma", "notumor"}
    with pytest.raises(ValueError, match="kind"):
        class_curves(y_true, proba, CLASSES, kind="det")


def test_tumor_roc_is_the_roc_of_one_minus_p_notumor(predictions):
    y_true, proba = predictions
    curve = tumor_roc(y_true, proba, CLASSES)
    fpr, tpr, threshold = skm.roc_curve(y_true != 2, 1 - proba[:, 2])
    np.testing.assert_array_equal(curve["fpr"], fpr)
    np.testing.assert_array_equal(curve["tpr"], tpr)
    np.testing.assert_array_equal(curve["threshold"], threshold)
    healthy = ["glioma", "meningioma", "healthy", "pituitary"]
    with pytest.raises(ValueError, match="no no-tumor class.*healthy"):
        tumor_roc(y_true, proba, healthy)
