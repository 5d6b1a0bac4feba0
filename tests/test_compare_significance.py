"""McNemar, Holm and Cochran's Q against statsmodels and hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import cochrans_q as sm_cochrans_q
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from bt_core.metrics import cochrans_q, flip_counts, pairwise_mcnemar, significance_matrix


@pytest.fixture
def correct():
    """Five models on 300 images, from weak to strong, correlated like models on one test set."""
    rng = np.random.default_rng(2)
    difficulty = rng.random(300)
    return {
        f"m{i}": difficulty < accuracy + 0.1 * (rng.random(300) - 0.5)
        for i, accuracy in enumerate([0.55, 0.6, 0.62, 0.75, 0.8])
    }


def test_flip_counts_on_a_hand_case():
    a = np.array([1, 1, 1, 0, 0, 1], dtype=bool)
    b = np.array([1, 0, 0, 1, 0, 1], dtype=bool)
    assert flip_counts(a, b) == {"right_to_wrong": 2, "wrong_to_right": 1, "both_right": 2, "both_wrong": 1}
    with pytest.raises(ValueError, match="different numbers"):
        flip_counts(a, b[:3])


def test_mcnemar_hand_values():
    # 10 images only a gets right, none only b: exact two-sided p = 2 * 0.5**10.
    a = np.array([True] * 10 + [True] * 5 + [False] * 5)
    b = np.array([False] * 10 + [True] * 5 + [False] * 5)
    row = pairwise_mcnemar({"a": a, "b": b}).iloc[0]
    assert row["p_value"] == pytest.approx(2 * 0.5**10)
    assert (row["a_right_b_wrong"], row["a_wrong_b_right"], row["both_right"], row["both_wrong"]) == (10, 0, 5, 5)
    # No discordant pairs: nothing to test, p = 1.
    same = pairwise_mcnemar({"a": a, "b": a.copy()}).iloc[0]
    assert same["p_value"] == 1.0 and not same["significant"]


def test_pairwise_mcnemar_against_statsmodels(correct):
    pairs = pairwise_mcnemar(correct, alpha=0.05)
    assert list(pairs.columns) == [
        "model_a", "model_b", "a_right_b_wrong", "a_wrong_b_right", "both_right", "both_wrong",
        "p_value", "p_holm", "significant",
    ]
    names = list(correct)
    expected_pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    assert list(zip(pairs["model_a"], pairs["model_b"])) == expected_pairs
    for row in pairs.itertuples():
        a, b = correct[row.model_a], correct[row.model_b]
        table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
        assert row.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
        assert row.a_right_b_wrong + row.a_wrong_b_right + row.both_right + row.both_wrong == 300
    holm = multipletests(pairs["p_value"], alpha=0.05, method="holm")[1]
    np.testing.assert_allclose(pairs["p_holm"], holm)
    assert (pairs["p_holm"] >= pairs["p_value"]).all()
    np.testing.assert_array_equal(pairs["significant"], pairs["p_holm"] < 0.05)
    # The fixture spans weak to strong models: some pairs differ, some do not.
    assert pairs["significant"].any() and not pairs["significant"].all()


def test_holm_on_a_hand_case():
    # a right on images 0-9, b on 10-13, c on 0-10. Discordant pairs: a vs b (10, 4),
    # a vs c (0, 1), b vs c (3, 10). Holm: sorted p times 3, 2, 1, then a running maximum.
    base = np.zeros(20, dtype=bool)
    a, b, c = base.copy(), base.copy(), base.copy()
    a[:10] = True
    b[10:14] = True
    c[:11] = True
    pairs = pairwise_mcnemar({"a": a, "b": b, "c": c}).set_index(["model_a", "model_b"])
    p = pairs["p_value"]
    assert p[("a", "c")] == 1.0  # discordant (0, 1)
    assert p[("a", "b")] == pytest.approx(2 * sum(math.comb(14, k) for k in range(5)) / 2**14)
    assert p[("b", "c")] == pytest.approx(2 * sum(math.comb(13, k) for k in range(4)) / 2**13)
    ordered = np.sort(p.to_numpy())
    expected = np.maximum.accumulate(np.minimum(1, ordered * np.array([3, 2, 1])))
    np.testing.assert_allclose(np.sort(pairs["p_holm"].to_numpy()), expected)


def test_significance_matrix_is_square_and_symmetric(correct):
    pairs = pairwise_mcnemar(correct)
    names = list(correct)
    matrix = significance_matrix(pairs, names)
    assert list(matrix.index) == list(matrix.columns) == names
    assert np.isnan(np.diag(matrix.to_numpy())).all()
    np.testing.assert_array_equal(matrix.to_numpy(), matrix.to_numpy().T)
    row = pairs.iloc[3]
    assert matrix.loc[row["model_a"], row["model_b"]] == row["p_holm"]
    raw = significance_matrix(pairs, names, column="p_value")
    assert raw.loc[row["model_b"], row["model_a"]] == row["p_value"]
    subset = significance_matrix(pairs, names[:2])
    assert subset.shape == (2, 2) and subset.iloc[0, 1] == pairs.iloc[0]["p_holm"]


def test_one_model_has_no_pairs():
    pairs = pairwise_mcnemar({"only": np.array([True, False])})
    assert pairs.empty and "p_holm" in pairs.columns
    assert significance_matrix(pairs, ["only"]).isna().all().all()


def test_cochrans_q_hand_value():
    table = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 0, 1], [1, 1, 0]], dtype=bool)
    # Column sums 5, 3, 2 (T = 10); row sums 2, 1, 3, 0, 2, 2 (sum of squares 22):
    # Q = (k - 1) (k sum C^2 - T^2) / (k T - sum R^2) = 2 (3 * 38 - 100) / (30 - 22) = 3.5,
    # chi-squared with 2 df: p = exp(-3.5 / 2).
    result = cochrans_q({"a": table[:, 0], "b": table[:, 1], "c": table[:, 2]})
    assert result["statistic"] == pytest.approx(3.5)
    assert result["df"] == 2
    assert result["p_value"] == pytest.approx(math.exp(-1.75))
    assert result["reason"] is None and result["n_models"] == 3


def test_cochrans_q_against_statsmodels(correct):
    result = cochrans_q(correct)
    expected = sm_cochrans_q(pd.DataFrame(correct).to_numpy().astype(int))
    assert result["statistic"] == pytest.approx(expected.statistic)
    assert result["p_value"] == pytest.approx(expected.pvalue)
    assert result["df"] == expected.df == 4
    assert result["p_value"] < 0.05  # models of 55% to 80% accuracy do differ


def test_cochrans_q_with_too_few_models_or_no_disagreement():
    two = cochrans_q({"a": np.array([True, False]), "b": np.array([False, True])})
    assert two["statistic"] is None and two["p_value"] is None
    assert "at least 3 models" in two["reason"]
    agree = np.array([True, False, True])
    same = cochrans_q({"a": agree, "b": agree, "c": agree})
    assert same["p_value"] == 1.0 and same["statistic"] == 0.0 and "agree" in same["reason"]
