"""bt_core.metrics.scores against scikit-learn on fixed random data, and on hand-computed cases."""

import warnings


import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from bt_core.metrics import (
    MODEL_SCORE_KEYS,
    binary_auc,
    brier_score,
    confusion_counts,
    expected_calibration_error,
    log_loss,
    model_scores,
    tumor_probability,
)
from bt_core.metrics.curves import tumor_roc

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
NOTUMOR = CLASSES.index("notumor")
LABELS = list(range(len(CLASSES)))


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture
def predictions():
    """300 images, better than chance but far from perfect, so every score is informative."""
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=300)
    logits = rng.normal(size=(300, 4))
    logits[np.arange(300), y_true] += 1.2
    return y_true, softmax(logits)


def test_model_scores_match_sklearn(predictions):
    y_true, proba = predictions
    y_pred = proba.argmax(axis=1)
    scores = model_scores(y_true, proba, CLASSES)
    assert tuple(scores) == MODEL_SCORE_KEYS
    assert scores["n"] == 300
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), rel=1e-12)
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=LABELS, average=average)
        assert scores[f"{average}_precision"] == pytest.approx(p, rel=1e-12)
        assert scores[f"{average}_recall"] == pytest.approx(r, rel=1e-12)
        assert scores[f"{average}_f1"] == pytest.approx(f, rel=1e-12)
    assert scores["macro_auc"] == pytest.approx(
        skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro"), rel=1e-12
    )
    onehot = label_binarize(y_true, classes=LABELS)
    assert scores["micro_auc"] == pytest.approx(skm.roc_auc_score(onehot, proba, average="micro"), rel=1e-12)
    assert scores["log_loss"] == pytest.approx(skm.log_loss(y_true, proba, labels=LABELS), rel=1e-9)
    mcm = skm.multilabel_confusion_matrix(y_true, y_pred, labels=LABELS)
    assert scores["macro_specificity"] == pytest.approx(np.mean(mcm[:, 0, 0] / (mcm[:, 0, 0] + mcm[:, 0, 1])))
    assert scores["brier"] == pytest.approx(np.sum((proba - np.eye(4)[y_true]) ** 2) / 300, rel=1e-12)
    assert scores["ece"] == expected_calibration_error(y_true, proba)
    assert 0 < scores["ece"] < 0.5 and 0.5 < scores["macro_auc"] < 1  # informative, not degenerate


def test_a_class_absent_and_never_predicted():
    # Class 3 never occurs and is never predicted: its AUC is undefined, so is the macro AUC.
    y_true = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array([[0.7, 0.1, 0.1, 0.1]] * 3 + [[0.1, 0.7, 0.1, 0.1]] * 3)
    scores = model_scores(y_true, proba, CLASSES)
    assert scores["macro_auc"] is None
    # zero_division=0 like sklearn: class 2 is never predicted, so its precision is 0.
    sk_macro = skm.precision_recall_fscore_support(
        y_true, proba.argmax(axis=1), labels=LABELS, average="macro", zero_division=0
    )
    assert [scores["macro_precision"], scores["macro_recall"], scores["macro_f1"]] == pytest.approx(sk_macro[:3])
    # Specificity of the absent class 3 is 1 (never predicted), of class 2 also 1: mean of 4 classes.
    assert scores["macro_specificity"] == pytest.approx((2 / 4 + 2 / 4 + 1 + 1) / 4)


def test_tumor_scores_match_sklearn_on_the_binary_collapse(predictions):
    y_true, proba = predictions
    scores = model_scores(y_true, proba, CLASSES)
    is_tumor = y_true != NOTUMOR
    predicted_tumor = proba.argmax(axis=1) != NOTUMOR
    assert scores["tumor_sensitivity"] == pytest.approx(skm.recall_score(is_tumor, predicted_tumor))
    assert scores["tumor_specificity"] == pytest.approx(skm.recall_score(is_tumor, predicted_tumor, pos_label=False))
    assert scores["tumor_auc"] == pytest.approx(skm.roc_auc_score(is_tumor, 1 - proba[:, NOTUMOR]), rel=1e-12)
    np.testing.assert_allclose(tumor_probability(proba, CLASSES), 1 - proba[:, NOTUMOR])
    # The collapse is not the notumor one-vs-rest column read backwards by accident.
    assert 0.5 < scores["tumor_specificity"] < 1 and 0.5 < scores["tumor_sensitivity"] < 1


def test_tumor_scores_without_a_negative_class():
    names = ["glioma", "meningioma", "healthy", "pituitary"]
    with pytest.raises(ValueError, match="notumor.*glioma.*healthy"):
        tumor_probability(np.full((2, 4), 0.25), names)
    y_true = np.array([0, 1, 2, 3])
    scores = model_scores(y_true, np.eye(4) * 0.9 + 0.025, names)
    assert scores["tumor_sensitivity"] is None and scores["tumor_specificity"] is None
    assert scores["tumor_auc"] is None


@pytest.mark.parametrize("spelling", ["no_tumor", "No Tumor"])
def test_other_spellings_of_no_tumor_get_the_same_tumor_scores(predictions, spelling):
    y_true, proba = predictions
    names = [spelling if name == "notumor" else name for name in CLASSES]
    scores = model_scores(y_true, proba, names)
    expected = model_scores(y_true, proba, CLASSES)
    for key in ("tumor_sensitivity", "tumor_specificity", "tumor_auc"):
        assert scores[key] is not None and scores[key] == expected[key], key
    assert scores["tumor_auc"] == pytest.approx(skm.roc_auc_score(y_true != NOTUMOR, 1 - proba[:, NOTUMOR]))
    np.testing.assert_array_equal(tumor_probability(proba, names), 1 - proba[:, NOTUMOR])
    np.testing.assert_array_equal(tumor_roc(y_true, proba, names), tumor_roc(y_true, proba, CLASSES))


def test_tumor_sensitivity_is_none_without_tumors_in_the_test_set():
    y_true = np.array([2, 2, 2])  # notumor only
    proba = np.array([[0.1, 0.1, 0.7, 0.1], [0.6, 0.1, 0.2, 0.1], [0.1, 0.1, 0.7, 0.1]])
    scores = model_scores(y_true, proba, CLASSES)
    assert scores["tumor_sensitivity"] is None and scores["tumor_auc"] is None
    assert scores["tumor_specificity"] == pytest.approx(2 / 3)


def test_undefined_auc_is_none_in_model_scores():
    y_true = np.array([0, 1, 2, 0, 1, 2])
    scores = model_scores(y_true, np.full((6, 4), 0.25), CLASSES)
    assert scores["macro_auc"] is None
    assert scores["micro_auc"] == pytest.approx(0.5)


def test_brier_on_a_hand_case():
    y_true = np.array([0, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    # (0.3^2 + 0.2^2 + 0.1^2) = 0.14 and (0.5^2 + 0.5^2 + 1^2) = 1.5: mean 0.82.
    assert brier_score(y_true, proba) == pytest.approx(0.82)


def test_brier_of_two_classes_sums_both_columns():
    # (0.3^2 + 0.3^2) + (0.4^2 + 0.4^2) + (0.1^2 + 0.1^2) = 0.52 over 3 images; not halved.
    proba = np.array([[0.7, 0.3], [0.4, 0.6], [0.1, 0.9]])
    assert brier_score(np.array([0, 1, 1]), proba) == pytest.approx(0.52 / 3)


def test_stored_float32_rows_score_without_warnings(predictions):
    y_true, proba = predictions
    stored = proba.astype(np.float32).astype(np.float64)  # rows sum to 1 within ~1e-7 only
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = model_scores(y_true, stored, CLASSES)
    assert scores["brier"] == pytest.approx(brier_score(y_true, proba), rel=1e-6)
    assert scores["log_loss"] == pytest.approx(log_loss(y_true, proba), rel=1e-6)


def test_confusion_counts_on_a_hand_case():
    counts = confusion_counts(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 4)
    # Rows true, columns predicted; class 3 neither occurs nor is predicted.
    assert counts.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]


def test_brier_is_the_sum_of_sklearn_one_vs_rest_brier_losses(predictions):
    y_true, proba = predictions
    one_vs_rest = sum(skm.brier_score_loss(y_true == k, proba[:, k]) for k in LABELS)
    assert brier_score(y_true, proba) == pytest.approx(one_vs_rest, rel=1e-12)
    # A perfect model scores 0, a uniform one 1 - 1/C.
    assert brier_score(y_true, np.eye(4)[y_true]) == 0.0
    assert brier_score(y_true, np.full((300, 4), 0.25)) == pytest.approx(0.75)


def test_binary_auc_handles_ties_like_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200).astype(bool)
    score = np.round(rng.random(200) + 0.3 * y, 1)  # heavy ties
    assert binary_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score), rel=1e-12)
    assert binary_auc(y, np.zeros(200)) == 0.5
    assert np.isnan(binary_auc(np.ones(5, dtype=bool), np.arange(5.0)))
    assert np.isnan(binary_auc(np.zeros(5, dtype=bool), np.arange(5.0)))
    assert binary_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="outside"):
        model_scores(np.array([0, 4]), np.full((2, 4), 0.25), CLASSES)
    with pytest.raises(ValueError, match="columns for"):
        model_scores(np.array([0, 1]), np.full((2, 3), 1 / 3), CLASSES)
    with pytest.raises(ValueError, match="int class indices"):
        brier_score(np.array([0.0, 1.0]), np.full((2, 2), 0.5))
