"""Paired bootstrap: exact against scikit-learn per resample, paired, reproducible, fast."""


import numpy as np
import pytest
from sklearn import metrics as skm

from bt_core.metrics import (
    bootstrap_counts,
    bootstrap_indices,
    counts_from_indices,
    paired_bootstrap,
    resampled_metrics,
    weighted_auc,
)

N_CLASSES = 4
LABELS = list(range(N_CLASSES))


def fake_model(rng, y_true, skill, decimals=None):
    logits = rng.normal(size=(len(y_true), N_CLASSES))
    logits[np.arange(len(y_true)), y_true] += skill
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if decimals is not None:
        proba = np.round(proba, decimals)  # tied scores, as from a saturated softmax
    return proba


def sklearn_metrics(y_true, proba, sample_weight=None):
    """The reference: scikit-learn on (weighted) data."""
    y_pred = proba.argmax(axis=1)
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred, sample_weight=sample_weight),
        "macro_f1": skm.f1_score(
            y_true, y_pred, labels=LABELS, average="macro", zero_division=0, sample_weight=sample_weight
        ),
        "macro_auc": np.mean(
            [skm.roc_auc_score(y_true == k, proba[:, k], sample_weight=sample_weight) for k in LABELS]
        ),
    }


@pytest.fixture
def small_case():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, N_CLASSES, size=60)
    probas = {"good": fake_model(rng, y_true, 2.0), "tied": fake_model(rng, y_true, 0.8, decimals=1)}
    return y_true, probas


def test_counts_are_the_indices_counted():
    indices = bootstrap_indices(50, 20, seed=3)
    counts = bootstrap_counts(50, 20, seed=3)
    assert indices.shape == counts.shape == (20, 50)
    np.testing.assert_array_equal(counts.sum(axis=1), 50)
    for row in range(20):
        np.testing.assert_array_equal(counts[row], np.bincount(indices[row], minlength=50))
    np.testing.assert_array_equal(counts_from_indices(indices, 50), counts)
    np.testing.assert_array_equal(bootstrap_counts(50, 20, seed=3), counts)
    assert not np.array_equal(bootstrap_counts(50, 20, seed=4), counts)


def test_weighted_auc_matches_sklearn_sample_weight_with_ties():
    rng = np.random.default_rng(0)
    positive = rng.random(80) < 0.3
    score = np.round(rng.random(80) + 0.4 * positive, 1)  # many ties across the classes
    counts = bootstrap_counts(80, 5, seed=1)
    expected = [skm.roc_auc_score(positive, score, sample_weight=row) for row in counts]
    np.testing.assert_allclose(weighted_auc(positive, score, counts), expected, rtol=0, atol=1e-12)
    fractional = rng.random((3, 80))
    expected = [skm.roc_auc_score(positive, score, sample_weight=row) for row in fractional]
    np.testing.assert_allclose(weighted_auc(positive, score, fractional), expected, rtol=0, atol=1e-12)
    # Unweighted, and a resample without positives (undefined).
    assert weighted_auc(positive, score, np.ones(80))[0] == pytest.approx(skm.roc_auc_score(positive, score))
    assert np.isnan(weighted_auc(positive, score, np.where(positive, 0, 1)[None, :])[0])


def test_resampled_metrics_match_sklearn_with_counts_as_sample_weight(small_case):
    y_true, probas = small_case
    counts = bootstrap_counts(len(y_true), 6, seed=2)
    result = resampled_metrics(y_true, probas, counts)
    for name, proba in probas.items():
        for row, weights in enumerate(counts):
            expected = sklearn_metrics(y_true, proba, sample_weight=weights)
            for metric, value in expected.items():
                assert result[name][metric][row] == pytest.approx(value, abs=1e-12), (name, metric, row)


def test_paired_bootstrap_agrees_with_a_slow_reference(small_case):
    """Reference: draw the same indices, score each resampled test set with sklearn, take percentiles."""
    y_true, probas = small_case
    n_resamples, seed = 40, 11  # sklearn is slow per resample; 40 still checks the percentiles
    indices = bootstrap_indices(len(y_true), n_resamples, seed)
    frame = paired_bootstrap(y_true, probas, n_resamples=n_resamples, confidence=0.9, seed=seed)
    assert list(frame.columns[:5]) == ["model", "metric", "estimate", "lower", "upper"]
    assert len(frame) == 2 * 3
    for name, proba in probas.items():
        full = sklearn_metrics(y_true, proba)
        per_resample = [sklearn_metrics(y_true[rows], proba[rows]) for rows in indices]
        for metric in ("accuracy", "macro_f1", "macro_auc"):
            row = frame[(frame["model"] == name) & (frame["metric"] == metric)].iloc[0]
            values = np.array([r[metric] for r in per_resample])
            lower, upper = np.quantile(values, [0.05, 0.95])
            assert row["estimate"] == pytest.approx(full[metric], abs=1e-9)
            assert row["lower"] == pytest.approx(lower, abs=1e-9)
            assert row["upper"] == pytest.approx(upper, abs=1e-9)
            assert row["valid_resamples"] == n_resamples


def test_identical_models_get_identical_intervals_and_a_one_image_flip_nearly_so():
    rng = np.random.default_rng(8)
    y_true = rng.integers(0, N_CLASSES, size=400)
    proba = fake_model(rng, y_true, 1.5)
    flipped = proba.copy()
    wrong = int(np.flatnonzero(proba.argmax(axis=1) != y_true)[0])
    flipped[wrong] = np.eye(N_CLASSES)[y_true[wrong]] * 0.97 + 0.01  # now right, and confidently
    frame = paired_bootstrap(y_true, {"a": proba, "b": proba.copy(), "c": flipped}, n_resamples=300, seed=1)
    by_model = {name: group.set_index("metric") for name, group in frame.groupby("model")}
    columns = ["estimate", "lower", "upper"]
    np.testing.assert_array_equal(by_model["a"][columns].to_numpy(), by_model["b"][columns].to_numpy())
    # Paired resamples: the flip shifts each resample's accuracy by (draws of that image) / N,
    # so the bounds move by a few / N; independent resamples would move them far more.
    shift = by_model["c"].loc["accuracy", columns] - by_model["a"].loc["accuracy", columns]
    assert (shift >= 0).all() and (shift <= 4 / 400).all()
    counts = bootstrap_counts(400, 300, seed=1)
    per_resample = resampled_metrics(y_true, {"a": proba, "c": flipped}, counts)
    np.testing.assert_allclose(
        per_resample["c"]["accuracy"] - per_resample["a"]["accuracy"], counts[:, wrong] / 400, atol=1e-15
    )


def test_intervals_bracket_the_estimate_and_are_reproducible(small_case):
    y_true, probas = small_case
    frame = paired_bootstrap(y_true, probas, n_resamples=300, seed=4)
    assert (frame["lower"] <= frame["estimate"]).all() and (frame["estimate"] <= frame["upper"]).all()
    assert (frame["lower"] < frame["upper"]).all()
    assert frame.equals(paired_bootstrap(y_true, probas, n_resamples=300, seed=4))
    assert not frame.equals(paired_bootstrap(y_true, probas, n_resamples=300, seed=5))
    narrower = paired_bootstrap(y_true, probas, n_resamples=300, confidence=0.5, seed=4)
    assert ((narrower["upper"] - narrower["lower"]) < (frame["upper"] - frame["lower"])).all()
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap(y_true, probas, confidence=95)


def test_a_resample_missing_a_class_has_no_macro_auc():
    y_true = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    proba = np.eye(4)[y_true] * 0.7 + 0.075
    counts = np.array([[2, 2, 2, 0, 1, 1, 0, 0], [1] * 8])  # first resample has no class 3
    result = resampled_metrics(y_true, {"m": proba}, counts)["m"]
    assert np.isnan(result["macro_auc"][0]) and result["macro_auc"][1] == 1.0
    # sklearn's macro F1 over all labels counts the absent, never-predicted class as 0.
    expected = skm.f1_score(y_true, proba.argmax(axis=1), labels=LABELS, average="macro",
                            zero_division=0, sample_weight=counts[0])
    assert result["macro_f1"][0] == pytest.approx(expected)


def test_ten_models_of_1300_images_give_three_rows_each():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, N_CLASSES, size=1300)
    probas = {f"model_{i}": fake_model(rng, y_true, 0.5 + 0.3 * i) for i in range(10)}
    frame = paired_bootstrap(y_true, probas, n_resamples=1000)
    assert len(frame) == 30  # speed: benchmarks/bench_compare.py
    assert (frame["lower"] <= frame["estimate"]).all() and (frame["estimate"] <= frame["upper"]).all()


def test_large_integer_weights_do_not_overflow():
    # Total weight 30,000 per row (just under int16's range), 80% of it on positives.
    rng = np.random.default_rng(6)
    positive = np.arange(100) < 80
    score = rng.random(100) + 0.2 * positive
    weights = np.full((2, 100), 300)
    weights[1, :10] = 0
    expected = [skm.roc_auc_score(positive, score, sample_weight=row) for row in weights]
    np.testing.assert_allclose(weighted_auc(positive, score, weights), expected, rtol=0, atol=1e-12)
    y_true = np.where(positive, 0, 1)
    proba = np.column_stack([score, 2 - score]) / 2
    result = resampled_metrics(y_true, {"m": proba}, weights)["m"]
    for row in range(2):
        expected = sklearn_metrics_two_classes(y_true, proba, weights[row])
        for metric, value in expected.items():
            assert result[metric][row] == pytest.approx(value, abs=1e-12), (metric, row)


def sklearn_metrics_two_classes(y_true, proba, sample_weight):
    y_pred = proba.argmax(axis=1)
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred, sample_weight=sample_weight),
        "macro_f1": skm.f1_score(y_true, y_pred, labels=[0, 1], average="macro", sample_weight=sample_weight),
        "macro_auc": np.mean(
            [skm.roc_auc_score(y_true == k, proba[:, k], sample_weight=sample_weight) for k in (0, 1)]
        ),
    }


def test_paired_differences_against_scikit_learn_and_known_cases():
    from sklearn.metrics import f1_score, roc_auc_score

    from bt_core.metrics import paired_differences

    rng = np.random.default_rng(11)
    y = np.repeat(np.arange(4), 60)
    onehot = np.eye(4)[y]
    good = 0.7 * onehot + 0.3 * rng.dirichlet(np.ones(4), len(y))
    noise = rng.dirichlet(np.ones(4), len(y))
    table = paired_differences(y, {"good": good, "noise": noise, "same": good.copy()}, n_resamples=500)
    auc = table[table["metric"] == "macro_auc"].set_index(["model_a", "model_b"])
    expected = roc_auc_score(y, good, multi_class="ovr") - roc_auc_score(y, noise, multi_class="ovr")
    assert auc.loc[("good", "noise"), "difference"] == pytest.approx(expected)
    assert auc.loc[("good", "noise"), "lower"] > 0
    # Every resample favours "good": p at the add-one floor 2/501, times 3 pairs under Holm.
    assert auc.loc[("good", "noise"), "p_value"] == 2 / 501
    assert auc.loc[("good", "noise"), "p_holm"] == pytest.approx(3 * 2 / 501)
    # A model against its copy: no difference, an interval of 0 and p = 1.
    same = auc.loc[("good", "same")]
    assert same["difference"] == 0 and same["lower"] == 0 == same["upper"] and same["p_value"] == 1
    f1 = table[table["metric"] == "macro_f1"].set_index(["model_a", "model_b"])
    expected_f1 = f1_score(y, good.argmax(1), average="macro") - f1_score(y, noise.argmax(1), average="macro")
    assert f1.loc[("good", "noise"), "difference"] == pytest.approx(expected_f1)
    assert (table["p_holm"] >= table["p_value"]).all()
    with pytest.raises(ValueError, match="unknown metric"):
        paired_differences(y, {"a": good, "b": noise}, metrics=("brier",))
    assert paired_differences(y, {"a": good}).empty


def right_and_wrong_models(n_per_class=20):
    """Two classes; "right" is always right, "wrong" always wrong, "coin" right on the first half."""
    y = np.repeat([0, 1], n_per_class)
    right = np.eye(2)[y] * 0.8 + 0.1
    wrong = right[:, ::-1].copy()
    coin = right.copy()
    coin[: n_per_class // 2] = wrong[: n_per_class // 2]
    coin[n_per_class : n_per_class + n_per_class // 2] = wrong[n_per_class : n_per_class + n_per_class // 2]
    return y, {"right": right, "wrong": wrong, "coin": coin}


@pytest.mark.parametrize("n_resamples", [1000, 250])
def test_a_difference_on_one_side_of_every_resample_gets_the_add_one_floor_not_zero(n_resamples):
    from bt_core.metrics.bootstrap import paired_differences

    y, probas = right_and_wrong_models()
    table = paired_differences(y, probas, metrics=("accuracy",), n_resamples=n_resamples)
    pair = table.set_index(["model_a", "model_b"]).loc[("right", "wrong")]
    assert pair["difference"] == 1.0 and pair["lower"] == 1.0
    # Every resample has right - wrong = 1 > 0: p = 2 * (1 + 0) / (B + 1), the floor.
    assert pair["p_value"] == 2.0 / (n_resamples + 1) == pair["p_floor"]
    assert (table["p_value"] > 0).all() and (table["p_floor"] == 2.0 / (n_resamples + 1)).all()


def test_holm_adjusts_the_add_one_p_values():
    from statsmodels.stats.multitest import multipletests

    from bt_core.metrics.bootstrap import paired_differences

    y, probas = right_and_wrong_models()
    table = paired_differences(y, probas, metrics=("accuracy",), n_resamples=1000)
    # right-wrong and right-coin and coin-wrong: the first is at the floor; Holm multiplies the
    # smallest of three by 3, so it is 6/1001, not 0.
    expected = multipletests(table["p_value"].to_numpy(), method="holm")[1]
    np.testing.assert_allclose(table["p_holm"], expected)
    pair = table.set_index(["model_a", "model_b"]).loc[("right", "wrong")]
    assert pair["p_holm"] == pytest.approx(3 * 2.0 / 1001)
    assert (table["p_holm"] >= table["p_value"]).all()


def test_a_symmetric_difference_gets_p_near_one():
    from bt_core.metrics.bootstrap import paired_differences

    # "left" is right on the first half of each class, "mirror" on the second half: equal
    # accuracy, and each resample's difference is as likely below 0 as above.
    y = np.repeat([0, 1], 50)
    right = np.eye(2)[y] * 0.8 + 0.1
    left, mirror = right.copy(), right[:, ::-1].copy()
    for start in (0, 50):
        left[start + 25 : start + 50] = right[start + 25 : start + 50, ::-1]
        mirror[start + 25 : start + 50] = right[start + 25 : start + 50]
    table = paired_differences(y, {"left": left, "mirror": mirror}, metrics=("accuracy",), n_resamples=2000)
    assert table.loc[0, "difference"] == 0
    assert 0.85 < table.loc[0, "p_value"] <= 1.0


def test_bootstrap_p_value_counts_with_the_add_one_rule():
    from bt_core.metrics.bootstrap import bootstrap_p_value

    assert bootstrap_p_value(np.ones(1000)) == (2 / 1001, 2 / 1001)
    assert bootstrap_p_value(-np.ones(9)) == (0.2, 0.2)
    # One of nine below 0: 2 * (1 + 1) / 10; ties at 0 count on both sides.
    assert bootstrap_p_value(np.array([-1.0, *range(1, 9)]))[0] == pytest.approx(0.4)
    assert bootstrap_p_value(np.array([0.0, 0.0, 1.0]))[0] == 1.0
    assert bootstrap_p_value(np.zeros(5))[0] == 1.0
    with pytest.raises(ValueError, match="at least one finite"):
        bootstrap_p_value(np.array([]))
    with pytest.raises(ValueError, match="1 not finite"):
        bootstrap_p_value(np.array([1.0, np.nan]))
