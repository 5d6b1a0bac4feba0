"""Calibration scores of bt_core.metrics.scores: reliability bins and ECE on hand-computed cases."""

import numpy as np
import pytest

from bt_core.metrics import DEFAULT_BINS, expected_calibration_error, reliability_bins


@pytest.fixture
def predictions():
    """300 images of 4 classes, better than chance but far from perfect."""
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=300)
    logits = rng.normal(size=(300, 4))
    logits[np.arange(300), y_true] += 1.2
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return y_true, exp / exp.sum(axis=1, keepdims=True)


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


def test_a_confidence_on_a_bin_edge_belongs_to_the_lower_bin():
    # Bins are (lower, upper]: 0.5 and 0.8 fall in the bins that end there.
    proba = np.array([[0.5, 0.5], [0.8, 0.2], [1.0, 0.0]])
    bins = reliability_bins(np.array([0, 0, 0]), proba, n_bins=10)
    assert bins.loc[bins["count"] > 0, "bin"].tolist() == [4, 7, 9]


def test_bins_are_refused_below_one_and_default_to_fifteen(predictions):
    y_true, proba = predictions
    assert DEFAULT_BINS == 15 and len(reliability_bins(y_true, proba)) == 15
    with pytest.raises(ValueError, match="n_bins must be at least 1"):
        expected_calibration_error(y_true, proba, n_bins=0)
    with pytest.raises(ValueError, match="int class indices"):
        reliability_bins(y_true.astype(float), proba)
