"""Pure tables of the comparison pages and the report, from a run's tables (no Streamlit).

The statistics come from :mod:`bt_core.metrics`; this module only arranges them per model,
names columns for people and decides what is "best" in a column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.artifacts import Run, probability_columns
from bt_core.metrics import curves, scores, significance
from bt_core.metrics.run_comparison import ModelData
from dashboard import components as c

# --------------------------------------------------------------------------- leaderboard

CI = "95% CI"
ACCURACY_CI = f"Accuracy {CI}"
MACRO_F1_CI = f"Macro F1 {CI}"
MACRO_AUC_CI = f"Macro AUC {CI}"
TUMOR_SENSITIVITY = "Tumor sensitivity"
TUMOR_SPECIFICITY = "Tumor specificity"
TUMOR_AUC = "Tumor AUC"
MACRO_SPECIFICITY = "Macro specificity"
MICRO_AUC = "Micro AUC"
WEIGHTED_F1 = "Weighted F1"
LOG_LOSS = "Log loss"
BRIER = "Brier"
ECE = "ECE"
TRAIN_ACCURACY = "Train accuracy"
ACCURACY_GAP = "Train − test accuracy"

# Leaderboard column -> key of bt_core.metrics's leaderboard, in display order.
SCORE_COLUMNS = {
    c.ACCURACY: "accuracy",
    TUMOR_SENSITIVITY: "tumor_sensitivity",
    TUMOR_SPECIFICITY: "tumor_specificity",
    TUMOR_AUC: "tumor_auc",
    c.MACRO_PRECISION: "macro_precision",
    c.MACRO_RECALL: "macro_recall",
    MACRO_SPECIFICITY: "macro_specificity",
    c.MACRO_F1: "macro_f1",
    WEIGHTED_F1: "weighted_f1",
    c.MACRO_AUC: "macro_auc",
    MICRO_AUC: "micro_auc",
    LOG_LOSS: "log_loss",
    BRIER: "brier",
    ECE: "ece",
    TRAIN_ACCURACY: "train_accuracy",
    ACCURACY_GAP: "train_minus_test_accuracy",
}
# Interval columns (text) follow their metric.
CI_COLUMNS = {ACCURACY_CI: "accuracy", MACRO_F1_CI: "macro_f1", MACRO_AUC_CI: "macro_auc"}
CI_AFTER = {c.ACCURACY: ACCURACY_CI, c.MACRO_F1: MACRO_F1_CI, c.MACRO_AUC: MACRO_AUC_CI}
COST_COLUMNS = [c.TRAINABLE_PARAMS, c.TRAIN_SECONDS, c.EPOCHS_RUN]

LEADERBOARD_COLUMNS = [
    c.MODEL,
    c.STATUS,
    *[name for column in SCORE_COLUMNS for name in (column, CI_AFTER.get(column)) if name],
    *COST_COLUMNS,
    c.PROBLEM,
]

# Columns whose best value is highlighted.
MARKED_COLUMNS = [*SCORE_COLUMNS, c.TRAINABLE_PARAMS, c.TRAIN_SECONDS]
LOWER_IS_BETTER = {LOG_LOSS, BRIER, ECE, c.TRAINABLE_PARAMS, c.TRAIN_SECONDS}
# The train-test gap is best near zero, whichever its sign.
CLOSEST_TO_ZERO = {ACCURACY_GAP}
PERCENT_COLUMNS = [
    c.ACCURACY, TUMOR_SENSITIVITY, TUMOR_SPECIFICITY, c.MACRO_PRECISION, c.MACRO_RECALL,
    MACRO_SPECIFICITY, c.MACRO_F1, WEIGHTED_F1, ECE, TRAIN_ACCURACY,
]
AUC_COLUMNS = [TUMOR_AUC, c.MACRO_AUC, MICRO_AUC]
DECIMAL_COLUMNS = [LOG_LOSS, BRIER]


def ci_text(lower: Any, upper: Any, percent: bool = True) -> str:
    """An interval as text, e.g. ``85.1–90.2%``; blank when either end is missing."""
    low, high = c.as_number(lower), c.as_number(upper)
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    if percent:
        return f"{low:.1%}–{high:.1%}".replace("%–", "–")
    return f"{low:.3f}–{high:.3f}"


def leaderboard_table(run: Run, scores_table: pd.DataFrame, excluded: Mapping[str, str]) -> pd.DataFrame:
    """One row per model of the manifest: scores with intervals, costs, and why a model is out.

    ``scores_table`` is :func:`bt_core.metrics.run_comparison.leaderboard`'s; a model missing
    from it (failed, corrupt, or excluded by the comparison) keeps a row with blank scores.
    """
    base = c.models_table(run).set_index(c.MODEL)
    by_model = scores_table.set_index("model") if not scores_table.empty else pd.DataFrame()
    rows = []
    for name in base.index:
        row: dict[str, Any] = {c.MODEL: name, c.STATUS: base.loc[name, c.STATUS]}
        scored = name in by_model.index
        for column, key in SCORE_COLUMNS.items():
            row[column] = c.as_number(by_model.loc[name, key]) if scored and key in by_model else np.nan
        for column, key in CI_COLUMNS.items():
            if scored and f"{key}_lower" in by_model:
                row[column] = ci_text(by_model.loc[name, f"{key}_lower"], by_model.loc[name, f"{key}_upper"],
                                      percent=key != "macro_auc")
            else:
                row[column] = ""
        for column in COST_COLUMNS:
            row[column] = base.loc[name, column]
        problem = base.loc[name, c.PROBLEM] or excluded.get(name, "")
        if not scored and not problem:
            problem = "not scored"
        row[c.PROBLEM] = problem
        if problem and row[c.STATUS] == "done":
            row[c.STATUS] = c.STATUS_BROKEN
        rows.append(row)
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    for column in SCORE_COLUMNS:
        table[column] = table[column].astype("float64")
    table[c.TRAIN_SECONDS] = table[c.TRAIN_SECONDS].astype("float64")
    for column in (c.TRAINABLE_PARAMS, c.EPOCHS_RUN):
        table[column] = table[column].astype("Int64")
    return table


def best_rows(table: pd.DataFrame, column: str) -> pd.Series:
    """Boolean mask of the best value(s) of one leaderboard column (direction per column)."""
    values = pd.to_numeric(table[column], errors="coerce").astype("float64")
    if not values.notna().any():
        return pd.Series(False, index=table.index)
    if column in CLOSEST_TO_ZERO:
        values = values.abs()
        return values == values.min()
    if column in LOWER_IS_BETTER:
        return values == values.min()
    return values == values.max()


def leaderboard_styles(table: pd.DataFrame) -> pd.DataFrame:
    """CSS per cell: the best value of each score and cost column is highlighted."""
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    for column in MARKED_COLUMNS:
        if column in table.columns:
            styles.loc[best_rows(table, column), column] = c.BEST_VALUE_CSS
    return styles


def leaderboard_formats() -> dict[str, Any]:
    formats: dict[str, Any] = {column: "{:.1%}" for column in PERCENT_COLUMNS}
    formats.update({column: "{:.3f}" for column in AUC_COLUMNS + DECIMAL_COLUMNS})
    formats[ACCURACY_GAP] = "{:+.1%}"
    formats[c.TRAINABLE_PARAMS] = "{:,}"
    formats[c.TRAIN_SECONDS] = "{:,.1f}"
    formats[c.EPOCHS_RUN] = "{:d}"
    return formats


def style_leaderboard(table: pd.DataFrame) -> Styler:
    """The leaderboard as shown: percentages, 3-decimal AUCs and losses, best values marked."""
    formats = {column: fmt for column, fmt in leaderboard_formats().items() if column in table.columns}
    return table.style.format(formats, na_rep=c.MISSING).apply(leaderboard_styles, axis=None)


def formatted_leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's display strings (for the HTML report), best values marked with ★."""
    shown = table.astype(object).copy()
    formats = leaderboard_formats()
    for column in table.columns:
        values = table[column]
        fmt = formats.get(column)
        best = best_rows(table, column) if column in MARKED_COLUMNS else None
        texts = []
        for index, value in values.items():
            if fmt and (value is None or pd.isna(value)):
                text = c.MISSING
            elif fmt:
                text = fmt.format(int(value) if fmt in ("{:,}", "{:d}") else value)
            else:
                text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
            if best is not None and bool(best.loc[index]):
                text += " ★"
            texts.append(text)
        shown[column] = texts
    return shown


def usable_leaderboard(table: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard rows of models that have scores."""
    return table[table[c.PROBLEM] == ""]


# --------------------------------------------------------------------------- scores per model


def model_scores_table(model_data: Mapping[str, ModelData], class_names: Sequence[str]) -> pd.DataFrame:
    """:func:`bt_core.metrics.scores.model_scores` of every model (no bootstrap), one row each."""
    rows = [
        {"model": name, **scores.model_scores(data.y_true, data.proba, list(class_names))}
        for name, data in model_data.items()
    ]
    return pd.DataFrame(rows, columns=["model", *scores.MODEL_SCORE_KEYS])


# --------------------------------------------------------------------------- ROC / PR


def has_tumor_class(class_names: Sequence[str]) -> bool:
    """True when the classes can collapse to tumor vs no tumor."""
    return scores.DEFAULT_NEGATIVE_CLASS in class_names


def class_curves_by_model(
    model_data: Mapping[str, ModelData], class_names: Sequence[str], kind: str
) -> dict[str, pd.DataFrame]:
    """Per model, its one-vs-rest curves (``class, x, y, auc``) of every class."""
    return {
        name: curves.class_curves(data.y_true, data.proba, list(class_names), kind=kind)
        for name, data in model_data.items()
    }


def curves_for_class(
    curves_by_model: Mapping[str, pd.DataFrame], class_name: str
) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Every model's curve of one class (``x``, ``y``) and its area, for an overlay."""
    chosen: dict[str, pd.DataFrame] = {}
    areas: dict[str, float] = {}
    for model, table in curves_by_model.items():
        curve = table[table["class"] == class_name]
        if curve.empty:
            continue
        chosen[model] = curve[["x", "y"]].reset_index(drop=True)
        areas[model] = float(curve["auc"].iloc[0])
    return chosen, areas


def class_prevalence(model_data: Mapping[str, ModelData], class_names: Sequence[str], class_name: str) -> float | None:
    """Share of test images of one class (the precision of guessing), or None without models."""
    for data in model_data.values():
        return float(np.mean(np.asarray(data.y_true) == list(class_names).index(class_name)))
    return None


def tumor_roc_by_model(model_data: Mapping[str, ModelData], class_names: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per model, its tumor vs no-tumor ROC as ``x`` (fpr), ``y`` (tpr); empty without a no-tumor class."""
    if not has_tumor_class(class_names):
        return {}
    result = {}
    for name, data in model_data.items():
        try:
            points = curves.tumor_roc(data.y_true, data.proba, list(class_names))
        except ValueError:  # the test set lacks tumors or healthy scans: no curve
            continue
        result[name] = points.rename(columns={"fpr": "x", "tpr": "y"})[["x", "y", "threshold"]]
    return result


# --------------------------------------------------------------------------- confusion


def predicted_index(data: ModelData) -> np.ndarray:
    return np.asarray(data.proba).argmax(axis=1)


def confusion_matrices(model_data: Mapping[str, ModelData], n_classes: int) -> dict[str, np.ndarray]:
    """Per model, its (true × predicted) count matrix on the test set."""
    return {
        name: scores.confusion_counts(data.y_true, predicted_index(data), n_classes)
        for name, data in model_data.items()
    }


def confusion_long(matrices: Mapping[str, np.ndarray], class_names: Sequence[str]) -> pd.DataFrame:
    """All matrices as one table: model, true, predicted, count, row share (for CSV export)."""
    rows = []
    for model, matrix in matrices.items():
        totals = np.asarray(matrix).sum(axis=1)
        for i, true in enumerate(class_names):
            for j, pred in enumerate(class_names):
                count = int(matrix[i, j])
                rows.append({"model": model, "true": true, "predicted": pred, "count": count,
                             "row_share": count / totals[i] if totals[i] else 0.0})
    return pd.DataFrame(rows, columns=["model", "true", "predicted", "count", "row_share"])


def cell_options(matrix: np.ndarray, class_names: Sequence[str]) -> list[tuple[str, str]]:
    """Non-empty cells as (true, predicted): mistakes first, largest first, then the diagonal."""
    cells = [
        (int(matrix[i, j]), i == j, true, pred)
        for i, true in enumerate(class_names)
        for j, pred in enumerate(class_names)
        if matrix[i, j] > 0
    ]
    cells.sort(key=lambda cell: (cell[1], -cell[0]))
    return [(true, pred) for _, _, true, pred in cells]


def cell_label(cell: tuple[str, str], matrix: np.ndarray, class_names: Sequence[str]) -> str:
    """How a cell reads in the fallback selectbox, e.g. ``glioma → meningioma (5 images)``."""
    true, pred = cell
    count = int(matrix[list(class_names).index(true), list(class_names).index(pred)])
    mark = "✓" if true == pred else "✗"
    return f"{mark} true {true} → predicted {pred} ({count} image{'' if count == 1 else 's'})"


def cell_predictions(run: Run, data: ModelData, true_class: str, predicted_class: str) -> pd.DataFrame:
    """The test images of one confusion cell: id, label, prediction and every class probability."""
    names = run.class_names
    in_row = np.asarray(data.y_true) == names.index(true_class)
    mask = in_row & (predicted_index(data) == names.index(predicted_class))
    table = pd.DataFrame({"id": np.asarray(data.ids, dtype=str)[mask], "label": true_class, "pred": predicted_class})
    proba = np.asarray(data.proba)[mask]
    for index, column in enumerate(probability_columns(names)):
        table[column] = proba[:, index]
    return table.reset_index(drop=True)


def cell_from_selection(selection: Mapping[str, Any] | None, class_names: Sequence[str]) -> tuple[str, str] | None:
    """The (true, predicted) cell a click on a confusion figure chose, or None.

    Points of the figure's cell markers carry ``x`` (predicted) and ``y`` (true).
    """
    points = (selection or {}).get("points") or []
    for point in points:
        true, pred = point.get("y"), point.get("x")
        if true in class_names and pred in class_names:
            return str(true), str(pred)
    return None


def image_positions(archive_ids: Sequence[str], wanted_ids: Sequence[str]) -> np.ndarray:
    """Positions in test_images.npz of ``wanted_ids``; -1 for an id not in the archive."""
    return pd.Index(np.asarray(archive_ids, dtype=str)).get_indexer(np.asarray(wanted_ids, dtype=str))


def thumbnail_caption(row: Mapping[str, Any], class_names: Sequence[str]) -> str:
    """Caption of one thumbnail: true label, prediction and its probability."""
    p_pred = c.as_number(row.get(f"p_{row['pred']}"))
    p_true = c.as_number(row.get(f"p_{row['label']}"))
    if row["label"] == row["pred"]:
        return f"{row['label']} ✓ p={p_pred:.2f}"
    return f"true {row['label']} (p={p_true:.2f}) · pred {row['pred']} (p={p_pred:.2f})"


# --------------------------------------------------------------------------- training


def histories(run: Run, models: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """Per model (manifest order), its history table; models without one are left out."""
    names = list(run.models) if models is None else list(models)
    return {
        name: run.models[name].history
        for name in names
        if name in run.models and run.models[name].history is not None and not run.models[name].history.empty
    }


def best_epoch(run: Run, model: str) -> float | None:
    value = c.as_number(run.models[model].info.get("best_epoch"))
    return value if np.isfinite(value) else None


# --------------------------------------------------------------------------- calibration


def reliability_by_model(model_data: Mapping[str, ModelData], n_bins: int) -> dict[str, pd.DataFrame]:
    return {
        name: scores.reliability_bins(data.y_true, data.proba, n_bins=n_bins) for name, data in model_data.items()
    }


def ece_by_model(model_data: Mapping[str, ModelData], n_bins: int) -> dict[str, float]:
    return {
        name: scores.expected_calibration_error(data.y_true, data.proba, n_bins=n_bins)
        for name, data in model_data.items()
    }


def calibration_table(model_data: Mapping[str, ModelData], n_bins: int) -> pd.DataFrame:
    """Per model: ECE (with ``n_bins``), Brier score, mean confidence and accuracy."""
    rows = []
    for name, data in model_data.items():
        proba = np.asarray(data.proba)
        rows.append(
            {
                c.MODEL: name,
                ECE: scores.expected_calibration_error(data.y_true, proba, n_bins=n_bins),
                BRIER: scores.brier_score(data.y_true, proba),
                "Mean confidence": float(proba.max(axis=1).mean()),
                c.ACCURACY: float(np.mean(proba.argmax(axis=1) == np.asarray(data.y_true))),
            }
        )
    table = pd.DataFrame(rows, columns=[c.MODEL, ECE, BRIER, "Mean confidence", c.ACCURACY])
    table["Confidence − accuracy"] = table["Mean confidence"] - table[c.ACCURACY]
    return table


# --------------------------------------------------------------------------- significance

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


def difference_table(differences: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The differences as shown: one row per pair and metric, interval as text, verdict."""
    rows = []
    for row in differences.itertuples(index=False):
        significant = bool(np.isfinite(row.p_holm) and row.p_holm < alpha)
        rows.append({
            "Metric": METRIC_LABELS.get(row.metric, row.metric),
            "Model A": row.model_a,
            "Model B": row.model_b,
            "A − B": row.difference,
            # Signed bounds in brackets: "-0.018–0.000" would read as a range of dashes.
            "95% interval": (f"[{row.lower:+.3f}, {row.upper:+.3f}]"
                             if np.isfinite(row.lower) and np.isfinite(row.upper) else ""),
            "p (bootstrap)": row.p_value,
            "p (Holm)": row.p_holm,
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
