"""bt_core.metrics.scores against scikit-learn on fixed random data, and on hand-computed cases."""

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from bt_core.metrics import (
    MODEL_SCORE_KEYS,
    binary_auc,
    brier_score,
    class_report,
    expected_calibration_error,
    model_scores,
    one_vs_all_counts,
    reliability_bins,
    tumor_probability,
)

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


def test_one_vs_all_counts_on_a_hand_case():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    counts = one_vs_all_counts(y_true, y_pred, 3).set_index("class_index")
    # class 0: tp = image 0; fp = image 4; fn = image 1; tn = images 2, 3, 5.
    assert counts.loc[0].tolist() == [1, 1, 1, 3]
    assert counts.loc[1].tolist() == [1, 1, 0, 4]
    assert counts.loc[2].tolist() == [2, 0, 1, 3]
    assert list(counts.reset_index().columns) == ["class_index", "tp", "fp", "fn", "tn"]


def test_one_vs_all_counts_match_sklearn_multilabel_confusion_matrix(predictions):
    y_true, proba = predictions
    y_pred = proba.argmax(axis=1)
    counts = one_vs_all_counts(y_true, y_pred, 4)
    mcm = skm.multilabel_confusion_matrix(y_true, y_pred, labels=LABELS)  # [[tn, fp], [fn, tp]]
    np.testing.assert_array_equal(counts["tn"], mcm[:, 0, 0])
    np.testing.assert_array_equal(counts["fp"], mcm[:, 0, 1])
    np.testing.assert_array_equal(counts["fn"], mcm[:, 1, 0])
    np.testing.assert_array_equal(counts["tp"], mcm[:, 1, 1])


def test_class_report_matches_sklearn(predictions):
    y_true, proba = predictions
    y_pred = proba.argmax(axis=1)
    report = class_report(y_true, proba, CLASSES)
    assert list(report.index) == [*CLASSES, "macro", "weighted"]
    assert list(report.columns) == ["precision", "recall", "f1", "specificity", "support", "auc"]
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=LABELS)
    per_class = report.loc[CLASSES]
    np.testing.assert_allclose(per_class["precision"], precision, rtol=1e-12)
    np.testing.assert_allclose(per_class["recall"], recall, rtol=1e-12)
    np.testing.assert_allclose(per_class["f1"], f1, rtol=1e-12)
    np.testing.assert_array_equal(per_class["support"], support)
    mcm = skm.multilabel_confusion_matrix(y_true, y_pred, labels=LABELS)
    tn, fp = mcm[:, 0, 0], mcm[:, 0, 1]
    np.testing.assert_allclose(per_class["specificity"], tn / (tn + fp), rtol=1e-12)
    aucs = [skm.roc_auc_score(y_true == k, proba[:, k]) for k in LABELS]
    np.testing.assert_allclose(per_class["auc"], aucs, rtol=1e-12)
    for average in ("macro", "weighted"):
        expected = skm.precision_recall_fscore_support(y_true, y_pred, labels=LABELS, average=average)
        np.testing.assert_allclose(report.loc[average, ["precision", "recall", "f1"]], expected[:3], rtol=1e-12)
        expected_auc = skm.roc_auc_score(y_true, proba, multi_class="ovr", average=average)
        assert report.loc[average, "auc"] == pytest.approx(expected_auc, rel=1e-12)
    assert report.loc["macro", "specificity"] == pytest.approx(np.mean(tn / (tn + fp)), rel=1e-12)
    assert report.loc["weighted", "specificity"] == pytest.approx(np.average(tn / (tn + fp), weights=support))
    assert report.loc["macro", "support"] == report.loc["weighted", "support"] == 300


def test_class_report_on_a_class_absent_and_never_predicted():
    # Class 3 never occurs and is never predicted: its AUC is undefined, so is the macro AUC.
    y_true = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array([[0.7, 0.1, 0.1, 0.1]] * 3 + [[0.1, 0.7, 0.1, 0.1]] * 3)
    report = class_report(y_true, proba, CLASSES)
    assert np.isnan(report.loc["pituitary", "auc"]) and np.isnan(report.loc["macro", "auc"])
    assert np.isfinite(report.loc["weighted", "auc"])  # an absent class weighs 0
    # zero_division=0 like sklearn: class 2 is never predicted, so its precision is 0.
    assert report.loc["notumor", "precision"] == 0.0
    sk_macro = skm.precision_recall_fscore_support(
        y_true, proba.argmax(axis=1), labels=LABELS, average="macro", zero_division=0
    )
    np.testing.assert_allclose(report.loc["macro", ["precision", "recall", "f1"]], sk_macro[:3])


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
    assert model_scores(y_true, np.eye(4) * 0.9 + 0.025, names, negative_class="healthy")["tumor_auc"] == 1.0


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


def test_brier_is_the_sum_of_sklearn_one_vs_rest_brier_losses(predictions):
    y_true, proba = predictions
    one_vs_rest = sum(skm.brier_score_loss(y_true == k, proba[:, k]) for k in LABELS)
    assert brier_score(y_true, proba) == pytest.approx(one_vs_rest, rel=1e-12)
    # A perfect model scores 0, a uniform one 1 - 1/C.
    assert brier_score(y_true, np.eye(4)[y_true]) == 0.0
    assert brier_score(y_true, np.full((300, 4), 0.25)) == pytest.approx(0.75)


def test_ece_when_confidence_is_0_9_and_half_are_right():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    proba = np.tile([0.9, 0.1], (8, 1))  # always predicts class 0 at 0.9: accuracy 0.5
    assert expected_calibration_error(y_true, proba) == pytest.approx(0.4)


def test_ece_on_two_filled_bins():
    # 4 images at 0.9 confidence with 2 right (gap 0.4); 6 at 0.7 all right (gap 0.3).
    proba = np.array([[0.9, 0.1]] * 4 + [[0.7, 0.3]] * 6)
    y_true = np.array([0, 0, 1, 1] + [0] * 6)
    # 4/10 * 0.4 + 6/10 * 0.3 = 0.34
    assert expected_calibration_error(y_true, proba) == pytest.approx(0.34)
    bins = reliability_bins(y_true, proba)
    filled = bins[bins["count"] > 0]
    assert filled["count"].tolist() == [6, 4]
    assert filled["confidence"].tolist() == pytest.approx([0.7, 0.9])
    assert filled["accuracy"].tolist() == pytest.approx([1.0, 0.5])
    # 0.7 lies in (10/15, 11/15], 0.9 in (13/15, 14/15].
    assert filled["bin"].tolist() == [10, 13]


def test_reliability_bins_layout(predictions):
    y_true, proba = predictions
    bins = reliability_bins(y_true, proba)
    assert list(bins.columns) == ["bin", "lower", "upper", "confidence", "accuracy", "count"]
    assert len(bins) == 15 and bins["count"].sum() == 300
    np.testing.assert_allclose(bins["lower"], np.arange(15) / 15)
    np.testing.assert_allclose(bins["upper"], np.arange(1, 16) / 15)
    empty = bins["count"] == 0
    assert empty.any()  # with 4 classes no confidence is below 1/4
    assert bins.loc[empty, ["confidence", "accuracy"]].isna().all().all()
    filled = bins[~empty]
    assert ((filled["confidence"] > filled["lower"]) & (filled["confidence"] <= filled["upper"])).all()
    # ECE is the count-weighted gap of the same bins.
    ece = (filled["count"] * (filled["accuracy"] - filled["confidence"]).abs()).sum() / 300
    assert expected_calibration_error(y_true, proba) == pytest.approx(ece)


def test_binary_auc_handles_ties_like_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200).astype(bool)
    score = np.round(rng.random(200) + 0.3 * y, 1)  # heavy ties
    assert binary_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score), rel=1e-12)
    assert binary_auc(y, np.zeros(200)) == 0.5
    assert np.isnan(binary_auc(np.ones(5, dtype=bool), np.arange(5.0)))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="outside"):
        model_scores(np.array([0, 4]), np.full((2, 4), 0.25), CLASSES)
    with pytest.raises(ValueError, match="columns for"):
        model_scores(np.array([0, 1]), np.full((2, 3), 1 / 3), CLASSES)
    with pytest.raises(ValueError, match="int class indices"):
        brier_score(np.array([0.0, 1.0]), np.full((2, 2), 0.5))


def test_a_confidence_on_a_bin_edge_belongs_to_the_lower_bin():
    # Bins are (lower, upper]: 0.5 and 0.8 fall in the bins that end there.
    proba = np.array([[0.5, 0.5], [0.8, 0.2], [1.0, 0.0]])
    bins = reliability_bins(np.array([0, 0, 0]), proba, n_bins=10)
    assert bins.loc[bins["count"] > 0, "bin"].tolist() == [4, 7, 9]


def test_average_ranks_match_scipy_rankdata_with_ties():
    from scipy.stats import rankdata

    from bt_core.metrics.scores import average_ranks

    rng = np.random.default_rng(3)
    values = rng.integers(0, 6, size=200).astype(float)  # many ties
    np.testing.assert_allclose(average_ranks(values), rankdata(values))
    np.testing.assert_allclose(average_ranks([0.3, 0.1, 0.3]), [2.5, 1.0, 2.5])
