"""Are two (or more) models' accuracies really different on this test set? Paired tests.

Every model is scored on the same images, so the tests look only at the images where
models disagree: exact McNemar per pair (Holm-corrected over all pairs) and Cochran's Q
across all models at once (statsmodels computes both).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import cochrans_q as _statsmodels_cochrans_q
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

PAIR_COLUMNS = [
    "model_a",
    "model_b",
    "a_right_b_wrong",
    "a_wrong_b_right",
    "both_right",
    "both_wrong",
    "p_value",
    "p_holm",
    "significant",
]


def _as_correct(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"a correctness vector must be 1-D, got shape {values.shape}")
    return values.astype(bool)


def flip_counts(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, int]:
    """How the images split between two models: right_to_wrong means a right, b wrong."""
    a, b = _as_correct(correct_a), _as_correct(correct_b)
    if a.shape != b.shape:
        raise ValueError(f"models scored different numbers of images: {len(a)} and {len(b)}")
    return {
        "right_to_wrong": int((a & ~b).sum()),
        "wrong_to_right": int((~a & b).sum()),
        "both_right": int((a & b).sum()),
        "both_wrong": int((~a & ~b).sum()),
    }


def mcnemar_exact_p(a_right_b_wrong: int, a_wrong_b_right: int) -> float:
    """Exact (binomial) McNemar p-value on the discordant counts; 1.0 when there are none."""
    if a_right_b_wrong + a_wrong_b_right == 0:
        return 1.0
    # Only the off-diagonal cells enter the exact test; the diagonal is a placeholder.
    table = [[0, a_right_b_wrong], [a_wrong_b_right, 0]]
    return float(mcnemar(table, exact=True).pvalue)


def pairwise_mcnemar(correct: dict[str, np.ndarray], alpha: float = 0.05) -> pd.DataFrame:
    """One row per unordered pair of models (dict order): discordant counts, exact McNemar
    p-value, Holm-adjusted p-value over all pairs, and whether that is below ``alpha``."""
    names = list(correct)
    rows = []
    for name_a, name_b in combinations(names, 2):
        flips = flip_counts(correct[name_a], correct[name_b])
        rows.append(
            {
                "model_a": name_a,
                "model_b": name_b,
                "a_right_b_wrong": flips["right_to_wrong"],
                "a_wrong_b_right": flips["wrong_to_right"],
                "both_right": flips["both_right"],
                "both_wrong": flips["both_wrong"],
                "p_value": mcnemar_exact_p(flips["right_to_wrong"], flips["wrong_to_right"]),
            }
        )
    if not rows:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    pairs = pd.DataFrame(rows)
    pairs["p_holm"] = multipletests(pairs["p_value"].to_numpy(), alpha=alpha, method="holm")[1]
    pairs["significant"] = pairs["p_holm"] < alpha
    return pairs[PAIR_COLUMNS]


def significance_matrix(pairs: pd.DataFrame, models: list[str], column: str = "p_holm") -> pd.DataFrame:
    """Square models x models table of one column of :func:`pairwise_mcnemar`; NaN diagonal, symmetric."""
    matrix = pd.DataFrame(np.nan, index=list(models), columns=list(models), dtype=float)
    wanted = set(models)
    for row in pairs.itertuples(index=False):
        a, b = row.model_a, row.model_b
        if a in wanted and b in wanted:
            matrix.loc[a, b] = matrix.loc[b, a] = float(getattr(row, column))
    return matrix


def cochrans_q(correct: dict[str, np.ndarray]) -> dict[str, Any]:
    """Cochran's Q test that all models have the same accuracy.

    Returns ``statistic``, ``df``, ``p_value``, ``n_models`` and ``reason``. With fewer than 3
    models it does not raise (a dashboard shows the reason instead): the numbers are None and
    ``reason`` says why (use :func:`pairwise_mcnemar` for two). When every image is right for
    all models or wrong for all, no model differs: statistic 0, p-value 1, and a reason.
    Otherwise ``reason`` is None.
    """
    n_models = len(correct)
    if n_models < 3:
        return {
            "statistic": None,
            "df": None,
            "p_value": None,
            "n_models": n_models,
            "reason": f"Cochran's Q needs at least 3 models, got {n_models}; use pairwise McNemar",
        }
    table = np.column_stack([_as_correct(values) for values in correct.values()]).astype(np.int64)
    agreeing = (table.sum(axis=1) == 0) | (table.sum(axis=1) == n_models)
    if agreeing.all():
        # statsmodels divides 0 by 0 here; no image separates the models, so nothing differs.
        return {
            "statistic": 0.0,
            "df": n_models - 1,
            "p_value": 1.0,
            "n_models": n_models,
            "reason": "the models agree on every image",
        }
    result = _statsmodels_cochrans_q(table)
    return {
        "statistic": float(result.statistic),
        "df": int(result.df),
        "p_value": float(result.pvalue),
        "n_models": n_models,
        "reason": None,
    }
