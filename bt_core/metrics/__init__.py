"""Scores of predictions: scikit-learn's metrics, calibration, curves, paired bootstrap
intervals and significance tests.

Pure functions of predictions (no Streamlit). A run stores :func:`metrics_from_predictions`
as metrics.json; the dashboard pages start from :func:`leaderboard` (one row per model of a
run) or :func:`run_model_data` (the arrays). A test set of one class scores what
:mod:`bt_core.metrics.one_class` says it can.
"""

from bt_core.metrics.bootstrap import (
    BOOTSTRAP_METRICS,
    bootstrap_counts,
    bootstrap_indices,
    counts_from_indices,
    paired_bootstrap,
    paired_differences,
    resampled_metrics,
    weighted_auc,
)
from bt_core.metrics.curves import class_curves, pr_points, pr_summary, roc_points, tumor_roc
from bt_core.metrics.one_class import (
    NOT_MEASURABLE,
    not_measurable_reason,
    not_measurable_text,
    one_class_record,
    present_class,
    wilson_interval,
)
from bt_core.metrics.run_comparison import LEADERBOARD_COLUMNS, ModelData, leaderboard, run_model_data
from bt_core.metrics.scores import (
    DEFAULT_BINS,
    MODEL_SCORE_KEYS,
    binary_auc,
    brier_score,
    classification_summary,
    confusion_counts,
    expected_calibration_error,
    log_loss,
    metrics_from_predictions,
    model_scores,
    reliability_bins,
    tumor_probability,
)
from bt_core.metrics.significance import (
    cochrans_q,
    flip_counts,
    mcnemar_exact_p,
    pairwise_mcnemar,
    significance_matrix,
)

__all__ = [
    "BOOTSTRAP_METRICS",
    "DEFAULT_BINS",
    "LEADERBOARD_COLUMNS",
    "MODEL_SCORE_KEYS",
    "NOT_MEASURABLE",
    "ModelData",
    "binary_auc",
    "bootstrap_counts",
    "bootstrap_indices",
    "brier_score",
    "class_curves",
    "classification_summary",
    "cochrans_q",
    "confusion_counts",
    "counts_from_indices",
    "expected_calibration_error",
    "flip_counts",
    "leaderboard",
    "log_loss",
    "mcnemar_exact_p",
    "metrics_from_predictions",
    "model_scores",
    "not_measurable_reason",
    "not_measurable_text",
    "one_class_record",
    "paired_bootstrap",
    "paired_differences",
    "pairwise_mcnemar",
    "pr_points",
    "pr_summary",
    "present_class",
    "reliability_bins",
    "resampled_metrics",
    "roc_points",
    "run_model_data",
    "significance_matrix",
    "tumor_probability",
    "tumor_roc",
    "weighted_auc",
    "wilson_interval",
]
