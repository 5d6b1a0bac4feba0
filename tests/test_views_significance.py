"""dashboard.views.significance: the Significance page's McNemar, Cochran and bootstrap tables
and heatmap (no Streamlit)."""

import numpy as np
import pandas as pd

from dashboard.views import significance as view


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
