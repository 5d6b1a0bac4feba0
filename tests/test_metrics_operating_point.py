"""bt_core.metrics.operating_point: tumor vs no tumor at a threshold on P(tumor), checked
against scikit-learn and against brute force on known examples."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint

from bt_core.metrics import operating_point as op
from bt_core.metrics.bootstrap import bootstrap_indices, counts_from_indices

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def random_scores(seed=0, n=200, decimals=2):
    """Labels and P(tumor) with many ties (scores rounded)."""
    rng = np.random.default_rng(seed)
    is_tumor = rng.random(n) < 0.7
    p_tumor = np.clip(rng.normal(np.where(is_tumor, 0.7, 0.3), 0.25), 0, 1).round(decimals)
    return is_tumor, p_tumor


def known_example():
    """20 healthy scans (scores 0.00-0.18 and one at 0.9), 10 tumors; answers worked out by hand."""
    healthy = [i / 100 for i in range(19)] + [0.9]
    tumors = [0.95, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.15, 0.1, 0.05]
    return np.array([False] * 20 + [True] * 10), np.array(healthy + tumors)


def brute_force(is_tumor, p_tumor, target=0.95):
    """Every candidate threshold tried one by one with scikit-learn's confusion matrix."""
    best_sensitivity = best_specificity = -1.0
    for threshold in [np.inf, *np.unique(p_tumor)]:
        tn, fp, fn, tp = skm.confusion_matrix(is_tumor, p_tumor >= threshold, labels=[False, True]).ravel()
        sensitivity, specificity = tp / (tp + fn), tn / (tn + fp)
        if specificity >= target - 1e-12:
            best_sensitivity = max(best_sensitivity, sensitivity)
        if sensitivity >= target - 1e-12:
            best_specificity = max(best_specificity, specificity)
    return best_sensitivity, best_specificity


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.71, 1.0])
def test_operating_point_is_sklearns_confusion_matrix_at_the_threshold(threshold):
    is_tumor, p_tumor = random_scores()
    point = op.operating_point(is_tumor, p_tumor, threshold)
    tn, fp, fn, tp = skm.confusion_matrix(is_tumor, p_tumor >= threshold, labels=[False, True]).ravel()
    assert (point["tp"], point["fn"], point["fp"], point["tn"]) == (tp, fn, fp, tn)
    expected = {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp), "ppv": (tp, tp + fp), "npv": (tn, tn + fn)}
    for measure, (hits, n) in expected.items():
        record = point[measure]
        if n == 0:
            assert record is None and measure in point["not_measurable"]
            continue
        assert record["value"] == pytest.approx(hits / n)
        low, high = proportion_confint(hits, n, alpha=0.05, method="wilson")
        assert (record["ci_low"], record["ci_high"]) == pytest.approx((low, high))
        assert record["successes"] == hits and record["n"] == n
    if threshold in (0.3, 0.5, 0.71):  # both sides called at these thresholds: all four measurable
        assert point["not_measurable"] == {}
        assert point["ppv"]["value"] == pytest.approx(skm.precision_score(is_tumor, p_tumor >= threshold))
        assert point["sensitivity"]["value"] == pytest.approx(skm.recall_score(is_tumor, p_tumor >= threshold))


def no_nan(value):
    if isinstance(value, dict):
        return all(no_nan(item) for item in value.values())
    return not (isinstance(value, float) and math.isnan(value))


def test_threshold_zero_calls_every_image_tumor_and_above_every_score_none():
    is_tumor = np.array([True, True, False, False, False])
    p_tumor = np.array([0.9, 0.4, 0.6, 0.2, 0.1])
    everything = op.operating_point(is_tumor, p_tumor, 0.0)
    assert (everything["tp"], everything["fn"], everything["fp"], everything["tn"]) == (2, 0, 3, 0)
    assert everything["sensitivity"]["value"] == 1.0 and everything["specificity"]["value"] == 0.0
    assert everything["npv"] is None and everything["not_measurable"] == {"npv": "no image called no tumor"}
    nothing = op.operating_point(is_tumor, p_tumor, 1.0)  # no score reaches 1: a model with no positive call
    assert (nothing["tp"], nothing["fp"]) == (0, 0)
    assert nothing["ppv"] is None and nothing["not_measurable"] == {"ppv": "no image called tumor"}
    assert nothing["sensitivity"]["value"] == 0.0 and nothing["sensitivity"]["ci_high"] > 0
    assert nothing["npv"]["value"] == pytest.approx(3 / 5)
    assert no_nan(everything) and no_nan(nothing)


def test_a_folder_of_tumor_images_has_no_specificity():
    is_tumor = np.ones(6, dtype=bool)
    point = op.operating_point(is_tumor, np.array([0.9, 0.8, 0.7, 0.4, 0.2, 0.95]), 0.5)
    assert point["sensitivity"]["value"] == pytest.approx(4 / 6)
    assert point["specificity"] is None and point["not_measurable"]["specificity"] == "no no-tumor images"
    assert point["ppv"]["value"] == 1.0 and point["npv"]["value"] == 0.0  # 4 of 4 called tumor are; 0 of 2
    assert no_nan(point)
    assert math.isnan(op.sensitivity_at_specificity(is_tumor, np.linspace(0, 1, 6)))
    assert math.isnan(op.specificity_at_sensitivity(is_tumor, np.linspace(0, 1, 6)))


def test_threshold_table_is_sklearns_full_roc_with_its_thresholds():
    is_tumor, p_tumor = random_scores(seed=1)
    table = op.threshold_table(is_tumor, p_tumor)
    fpr, tpr, thresholds = skm.roc_curve(is_tumor, p_tumor, drop_intermediate=False)
    np.testing.assert_array_equal(table["threshold"], thresholds)
    np.testing.assert_allclose(table["fpr"], fpr)
    np.testing.assert_allclose(table["sensitivity"], tpr)
    assert (table["tp"] + table["fn"] == is_tumor.sum()).all()
    assert (table["fp"] + table["tn"] == (~is_tumor).sum()).all()
    for threshold in (0.0, 0.25, 0.5, 0.505, 0.99, 1.0):
        row = table.iloc[op.operating_row(table, threshold)]
        point = op.operating_point(is_tumor, p_tumor, threshold)
        assert (row["tp"], row["fn"], row["fp"], row["tn"]) == (point["tp"], point["fn"], point["fp"], point["tn"])


def test_fixed_points_on_a_worked_example():
    is_tumor, p_tumor = known_example()
    # Specificity >= 95% allows one healthy scan (the one at 0.9) called tumor: down to 0.4, 7 of 10 tumors.
    assert op.sensitivity_at_specificity(is_tumor, p_tumor) == pytest.approx(0.7)
    # Sensitivity >= 95% needs all 10 tumors: threshold 0.05 also calls 14 low healthy scans and the 0.9 one.
    assert op.specificity_at_sensitivity(is_tumor, p_tumor) == pytest.approx(5 / 20)
    assert (op.sensitivity_at_specificity(is_tumor, p_tumor), op.specificity_at_sensitivity(is_tumor, p_tumor)) == (
        pytest.approx(brute_force(is_tumor, p_tumor)))
    # 19 of 20 is exactly 95%: it counts as reaching the target.
    assert op.sensitivity_at_specificity(is_tumor, p_tumor, target=0.95) > op.sensitivity_at_specificity(
        is_tumor, p_tumor, target=0.951)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_points_match_brute_force_with_ties(seed):
    is_tumor, p_tumor = random_scores(seed=seed, decimals=1)
    assert (op.sensitivity_at_specificity(is_tumor, p_tumor), op.specificity_at_sensitivity(is_tumor, p_tumor)) == (
        pytest.approx(brute_force(is_tumor, p_tumor)))
    # From scikit-learn's ROC: the best true positive rate with 1 - fpr >= 95%.
    fpr, tpr, _ = skm.roc_curve(is_tumor, p_tumor)
    assert op.sensitivity_at_specificity(is_tumor, p_tumor) == pytest.approx(tpr[1 - fpr >= 0.95].max())


def test_fixed_points_on_bootstrap_resamples_are_each_resamples_brute_force():
    is_tumor, p_tumor = random_scores(seed=3, n=60)
    indices = bootstrap_indices(60, n_resamples=25, seed=4)
    resampled = op.fixed_point_metrics(is_tumor, p_tumor, counts_from_indices(indices, 60))
    for row, drawn in enumerate(indices):
        expected = brute_force(is_tumor[drawn], p_tumor[drawn])
        assert resampled[op.SENSITIVITY_AT_SPECIFICITY][row] == pytest.approx(expected[0])
        assert resampled[op.SPECIFICITY_AT_SENSITIVITY][row] == pytest.approx(expected[1])
    # A resample without healthy scans has neither.
    only_tumors = np.where(is_tumor, 1, 0)[None, :]
    assert np.isnan(op.fixed_point_metrics(is_tumor, p_tumor, only_tumors)[op.SENSITIVITY_AT_SPECIFICITY]).all()


def test_tumor_scores_collapse_the_classes_and_bad_input_says_what_is_wrong():
    proba = np.array([[0.1, 0.2, 0.6, 0.1], [0.5, 0.2, 0.2, 0.1]])
    is_tumor, p_tumor = op.tumor_scores(np.array([2, 0]), proba, CLASSES)
    np.testing.assert_array_equal(is_tumor, [False, True])
    np.testing.assert_allclose(p_tumor, [0.4, 0.8])
    with pytest.raises(ValueError, match=r"no no-tumor class .* to set an operating point on P\(tumor\)"):
        op.tumor_scores(np.array([0, 1]), proba[:, :2] / proba[:, :2].sum(axis=1, keepdims=True), ["cat", "dog"])
    with pytest.raises(ValueError, match=r"threshold on P\(tumor\) must be in \[0, 1\], got 1.5"):
        op.operating_point(is_tumor, p_tumor, 1.5)
    with pytest.raises(ValueError, match="must be equal, non-empty vectors"):
        op.operating_point(is_tumor, p_tumor[:1], 0.5)
    with pytest.raises(ValueError, match="weights must be integer counts"):
        op.fixed_point_metrics(is_tumor, p_tumor, np.ones((1, 2)) / 2)
