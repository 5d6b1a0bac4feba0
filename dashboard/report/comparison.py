"""The comparison sections of the report: leaderboard, curves, confusion, training,
calibration and significance, each from the same views the dashboard pages use."""

from __future__ import annotations

import pandas as pd

from bt_core.artifacts import Run
from bt_core.data.classes import negative_class
from bt_core.metrics.scores import DEFAULT_BINS
from bt_dashboard.report.html_parts import figure_html, paragraph, section, stem, table_html
from bt_dashboard.views import calibration, common, confusion, curves, models, significance, training

ALPHA = 0.05


def leaderboard_section(run: Run, leaderboard: pd.DataFrame, excluded: dict[str, str], colors: dict) -> str:
    table = models.leaderboard_table(run, leaderboard, excluded)
    parts = [
        table_html(models.formatted_leaderboard(table)),
        paragraph("★ marks the best value of each column. Intervals: 95% paired bootstrap over test images."),
    ]
    if not leaderboard.empty:
        parts.append(figure_html(
            models.leaderboard_ci_figure(leaderboard, colors, title="Scores with 95% bootstrap intervals"),
            stem(run, "leaderboard-intervals"),
        ))
    return section("Leaderboard", *parts)


def curves_section(run: Run, model_data: dict, colors: dict, model_scores: pd.DataFrame) -> str:
    parts = []
    for kind, label in (("roc", "ROC"), ("pr", "Precision-recall")):
        by_model = curves.class_curves_by_model(model_data, run.class_names, kind)
        overlays = []
        for class_name in run.class_names:
            chosen, areas = curves.curves_for_class(by_model, class_name)
            if chosen:
                baseline = curves.class_prevalence(model_data, run.class_names, class_name) if kind == "pr" else None
                overlays.append(figure_html(
                    curves.roc_overlay(chosen, areas, colors, kind=kind, baseline=baseline,
                                        title=f"{label}: {class_name} vs rest"),
                    stem(run, kind, class_name),
                ))
        per_model = [
            figure_html(
                curves.class_curves_figure(table, kind=kind, class_names=run.class_names, title=f"{label}: {model}"),
                stem(run, kind, model),
            )
            for model, table in by_model.items()
        ]
        parts.append(f"<h3>{label}: all models per class</h3><div class='grid'>{''.join(overlays)}</div>")
        parts.append(f"<h3>{label}: all classes per model</h3><div class='grid'>{''.join(per_model)}</div>")
    tumor = curves.tumor_roc_by_model(model_data, run.class_names)
    if tumor:
        auc = model_scores.set_index("model")["tumor_auc"].to_dict()
        title = f"ROC of P(tumor) = 1 − P({negative_class(run.class_names)})"
        tumor_figure = figure_html(curves.roc_overlay(tumor, auc, colors, title=title), stem(run, "tumor-roc"))
        parts.append(f"<h3>Tumor vs no tumor</h3><div class='grid'>{tumor_figure}</div>")
    return section("ROC and precision-recall curves", *parts)


def confusion_section(run: Run, model_data: dict) -> str:
    matrices = confusion.confusion_matrices(run, model_data)
    cells = [
        figure_html(
            confusion.confusion_figure(matrix, run.class_names, normalized, title=f"{model} ({label})"),
            stem(run, "confusion", model, label),
        )
        for model, matrix in matrices.items()
        for normalized, label in ((False, "counts"), (True, "row shares"))
    ]
    return section("Confusion matrices", f"<div class='grid'>{''.join(cells)}</div>")


def training_section(run: Run, colors: dict) -> str:
    histories = training.histories(run)
    if not histories:
        return section("Training", paragraph("No model has a training history."))
    parts = [
        figure_html(
            training.training_curves_figure(history, title=model, best_epoch=training.best_epoch(run, model)),
            stem(run, "training", model),
        )
        for model, history in histories.items()
    ]
    parts.append(figure_html(training.validation_overlay_figure(histories, colors, title="All models"),
                             stem(run, "validation-curves")))
    return section("Training", *parts)


def calibration_section(run: Run, model_data: dict, colors: dict) -> str:
    bins = calibration.reliability_by_model(model_data, DEFAULT_BINS)
    table = calibration.calibration_table(model_data, DEFAULT_BINS)
    ece = dict(zip(table[common.MODEL], table[common.ECE]))
    return section(
        "Calibration",
        figure_html(calibration.reliability_figure(bins, ece, colors, title=f"Reliability ({DEFAULT_BINS} bins)"),
                    stem(run, "reliability")),
        table_html(table),
    )


def significance_section(run: Run, model_data: dict) -> str:
    if len(model_data) < 2:
        return section("Significance", paragraph("Significance tests need two models."))
    pairs, matrix, cochran = significance.significance_tables(model_data, ALPHA)
    return section(
        "Significance",
        paragraph(significance.cochran_line(cochran, ALPHA), "meta"),
        figure_html(significance.significance_heatmap(matrix, alpha=ALPHA,
                                                      title="Holm-corrected exact McNemar p-values"),
                    stem(run, "significance")),
        table_html(significance.flip_table(pairs), float_format="{:.3g}"),
        paragraph("Macro AUC and macro F1 differences, paired bootstrap (A − B, 95% interval, "
                  "Holm-adjusted p):", "meta"),
        table_html(significance.difference_table(significance.metric_differences(model_data), ALPHA,
                                                 p_as_text=True),
                   float_format="{:.3g}"),
    )
