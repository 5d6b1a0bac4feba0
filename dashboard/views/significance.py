"""What the Significance page shows (no Streamlit): McNemar pairs with their flips, the
Holm p-value matrix, Cochran's Q, paired bootstrap differences, and the p-value heatmap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bt_core.metrics import significance
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views.common import MISSING


FLIP_COLUMNS = {
    "model_a": "Model A",
    "model_b": "Model B",
    "a_right_b_wrong": "A right, B wrong",
    "a_wrong_b_right": "A wrong, B right",
    "both_right": "Both right",
    "both_wrong": "Both wrong",
    "p_value": "p (exact McNemar)",
    "p_holm": "p (Holm)",
    "significant": "Significant",
}
# The grid's short header of a long flip-table column; its full name is the header's help.
FLIP_LABELS = {"p (exact McNemar)": ("p exact", "p (exact McNemar): the two-sided exact binomial test on the "
                                                "discordant images, before correction")}


def correct_by_model(model_data: Mapping[str, ModelData]) -> dict[str, np.ndarray]:
    return {name: np.asarray(data.correct, dtype=bool) for name, data in model_data.items()}


def significance_tables(
    model_data: Mapping[str, ModelData], alpha: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Pairwise McNemar table, the square Holm p-value matrix, and Cochran's Q."""
    correct = correct_by_model(model_data)
    pairs = significance.pairwise_mcnemar(correct, alpha=alpha)
    matrix = significance.significance_matrix(pairs, list(correct), column="p_holm")
    return pairs, matrix, significance.cochrans_q(correct)


METRIC_LABELS = {"macro_auc": "Macro AUC", "macro_f1": "Macro F1", "accuracy": "Accuracy"}


def metric_differences(model_data: Mapping[str, ModelData], n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Every pair's macro AUC and macro F1 difference with paired bootstrap interval and p."""
    from bt_core.metrics import paired_differences

    if len(model_data) < 2:
        return paired_differences(np.zeros(0, dtype=np.int64), {})
    y_true = next(iter(model_data.values())).y_true
    return paired_differences(y_true, {name: data.proba for name, data in model_data.items()},
                              n_resamples=n_resamples, seed=seed)


def p_value_text(p: float, floor: float | None = None) -> str:
    """A p-value as shown: ``{:.3g}``, or ``"< bound"`` when it sits at its resampling floor.

    A bootstrap p at ``floor`` (its smallest possible value, e.g. 2 / (B + 1) for the two-sided
    rule of :func:`bt_core.metrics.bootstrap.paired_differences`) only says p is at most about
    that, so it reads "< bound", the floor rounded up to one significant figure: "< 0.001" for
    a floor of 1/1001 or 2/2001, "< 0.002" for 2/1001; "≤ bound" when the floor is that round
    number itself (2/2000 -> "≤ 0.001"). NaN reads as a dash.
    """
    if p is None or not np.isfinite(p):
        return MISSING
    p = float(p)
    if floor is None or not np.isfinite(floor) or floor <= 0 or p > floor * (1 + 1e-9):
        return f"{p:.3g}"
    exponent = math.floor(math.log10(floor))
    mantissa = floor / 10.0**exponent
    rounded_up = math.ceil(mantissa - 1e-9)
    if rounded_up == 10:
        rounded_up, exponent = 1, exponent + 1
    bound = rounded_up * 10.0**exponent
    relation = "≤" if abs(mantissa - round(mantissa)) < 1e-9 else "<"
    return f"{relation} {bound:.{max(0, -exponent)}f}"


def difference_table(differences: pd.DataFrame, alpha: float = 0.05, *, p_as_text: bool = False) -> pd.DataFrame:
    """The differences as shown: one row per pair and metric, interval as text, verdict.

    With ``p_as_text`` the two p columns are text (:func:`p_value_text`): a bootstrap p at its
    floor reads "< 0.001" (2,000 resamples) instead of a number that looks exact; the Holm
    column reads as a number. Without it they stay floats, for a caller that formats them.
    """
    rows = []
    for row in differences.itertuples(index=False):
        significant = bool(np.isfinite(row.p_holm) and row.p_holm < alpha)
        floor = getattr(row, "p_floor", None)
        rows.append({
            "Metric": METRIC_LABELS.get(row.metric, row.metric),
            "Model A": row.model_a,
            "Model B": row.model_b,
            "A − B": row.difference,
            # Signed bounds in brackets: "-0.018–0.000" would read as a range of dashes.
            "95% interval": (f"[{row.lower:+.3f}, {row.upper:+.3f}]"
                             if np.isfinite(row.lower) and np.isfinite(row.upper) else ""),
            "p (bootstrap)": p_value_text(row.p_value, floor) if p_as_text else row.p_value,
            "p (Holm)": p_value_text(row.p_holm) if p_as_text else row.p_holm,
            "Differ?": "yes" if significant else "no",
        })
    return pd.DataFrame(rows, columns=["Metric", "Model A", "Model B", "A − B", "95% interval",
                                       "p (bootstrap)", "p (Holm)", "Differ?"])


def flip_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairwise table with people's column names (right→wrong is A right, B wrong)."""
    return pairs[[column for column in FLIP_COLUMNS if column in pairs]].rename(columns=FLIP_COLUMNS)


def cochran_line(result: Mapping[str, Any], alpha: float = 0.05) -> str:
    """Cochran's Q (:func:`bt_core.metrics.significance.cochrans_q`) as one sentence."""
    n_models = result.get("n_models")
    if result.get("p_value") is None:
        return f"Cochran's Q: not computed — {result.get('reason') or 'no result'}."
    p = float(result["p_value"])
    verdict = "differ" if p < alpha else "show no significant difference"
    line = (
        f"Cochran's Q across all {n_models} models: Q = {float(result['statistic']):.2f}, "
        f"df = {int(result['df'])}, p = {p:.3g} — the models' accuracies {verdict} (α = {alpha})"
    )
    return f"{line}; {result['reason']}." if result.get("reason") else f"{line}."


# --------------------------------------------------------------------------- figures


def significance_heatmap(matrix: pd.DataFrame, *, alpha: float = 0.05, title: str = "") -> go.Figure:
    """Square p-value matrix; significant cells (p < alpha) dark and starred, the diagonal blank."""
    p_values = matrix.to_numpy(dtype=np.float64)
    text = [
        ["" if not np.isfinite(p) else f"{p:.3g}{'*' if p < alpha else ''}" for p in row] for row in p_values
    ]
    # Colour by evidence: -log10(p), capped so one tiny p does not wash out the rest.
    with np.errstate(divide="ignore"):
        evidence = np.clip(-np.log10(np.clip(p_values, 1e-300, 1)), 0, 6)
    figure = go.Figure(
        go.Heatmap(
            z=evidence,
            x=list(matrix.columns),
            y=list(matrix.index),
            text=text,
            texttemplate="%{text}",
            colorscale="Purples",
            zmin=0,
            zmax=max(3.0, float(np.nanmax(evidence)) if np.isfinite(evidence).any() else 3.0),
            colorbar={"title": {"text": "−log10 p"}},
            hovertemplate="%{y} vs %{x}<br>p = %{text}<extra></extra>",
        )
    )
    figure.update_layout(title=title, margin={"t": 50, "b": 40, "l": 40, "r": 10})
    figure.update_xaxes(type="category")
    figure.update_yaxes(autorange="reversed", type="category")
    return figure
