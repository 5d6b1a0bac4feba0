"""bt_dashboard.views.significance: the Significance page's McNemar, Cochran and bootstrap tables
and heatmap (no Streamlit)."""

import numpy as np
import pandas as pd

from bt_dashboard.views import significance as view


def test_significance_tables_cover_every_pair(model_data):
    pairs, matrix, cochran = view.significance_tables(model_data)
    n = len(model_data)
    assert len(pairs) == n * (n - 1) // 2
    assert list(matrix.index) == list(matrix.columns) == list(model_data)
    assert 0 <= cochran["p_value"] <= 1
    flips = view.flip_table(pairs)
    assert "A right, B wrong" in flips.columns and "p (Holm)" in flips.columns
    first = pairs.iloc[0]
    a, b = model_data[first["model_a"]].correct, model_data[first["model_b"]].correct
    assert first["a_right_b_wrong"] == int((a & ~b).sum())


def test_cochran_line_reads_as_a_sentence():
    line = view.cochran_line({"statistic": 12.345, "df": 4, "p_value": 0.015, "n_models": 5, "reason": None})
    assert line.startswith("Cochran's Q across all 5 models: Q = 12.35, df = 4, p = 0.015")
    assert "differ" in line
    too_few = {"statistic": None, "df": None, "p_value": None, "n_models": 2, "reason": "needs at least 3 models"}
    assert "needs at least 3 models" in view.cochran_line(too_few)


def test_significance_heatmap_stars_significant_pairs_and_leaves_the_diagonal_blank():
    matrix = pd.DataFrame([[np.nan, 0.01], [0.01, np.nan]], index=["a", "b"], columns=["a", "b"])
    figure = view.significance_heatmap(matrix, alpha=0.05)
    assert figure.data[0].text[0][1] == "0.01*"
    assert figure.data[0].text[0][0] == ""
    matrix.iloc[0, 1] = matrix.iloc[1, 0] = 0.2
    assert view.significance_heatmap(matrix).data[0].text[1][0] == "0.2"


def test_p_value_text_reads_a_p_at_its_floor_as_a_bound():
    assert view.p_value_text(1 / 1001, floor=1 / 1001) == "< 0.001"  # one-sided floor, B = 1000
    assert view.p_value_text(2 / 2001, floor=2 / 2001) == "< 0.001"  # two-sided, B = 2000 (the page)
    assert view.p_value_text(2 / 1001, floor=2 / 1001) == "< 0.002"  # two-sided, B = 1000
    assert view.p_value_text(2 / 2000, floor=2 / 2000) == "≤ 0.001"
    assert view.p_value_text(0.01234, floor=2 / 1001) == "0.0123"
    assert view.p_value_text(0.5) == "0.5"
    assert view.p_value_text(float("nan")) == "—"


def right_and_wrong(n_per_class=20):
    y = np.repeat([0, 1], n_per_class)
    right = np.eye(2)[y] * 0.8 + 0.1
    return y, {"right": right, "wrong": right[:, ::-1].copy()}


def test_difference_table_shows_a_floored_bootstrap_p_as_less_than():
    from bt_core.metrics.bootstrap import paired_differences

    y, probas = right_and_wrong()
    for n_resamples, shown in ((2000, "< 0.001"), (1000, "< 0.002")):
        differences = paired_differences(y, probas, metrics=("accuracy",), n_resamples=n_resamples)
        text = view.difference_table(differences, p_as_text=True)
        assert text.loc[0, "p (bootstrap)"] == shown
        assert text.loc[0, "p (Holm)"] == f"{2 / (n_resamples + 1):.3g}"
        assert text.loc[0, "Differ?"] == "yes"
        numbers = view.difference_table(differences)
        assert numbers.loc[0, "p (bootstrap)"] == 2 / (n_resamples + 1)


def test_difference_table_shows_an_ordinary_p_as_a_number():
    differences = pd.DataFrame([{"model_a": "a", "model_b": "b", "metric": "macro_auc", "difference": 0.01,
                                 "lower": -0.02, "upper": 0.04, "p_value": 0.4321, "p_holm": 0.8642,
                                 "p_floor": 2 / 2001}])
    text = view.difference_table(differences, p_as_text=True)
    assert list(text.loc[0, ["p (bootstrap)", "p (Holm)", "Differ?"]]) == ["0.432", "0.864", "no"]
