"""One self-contained HTML report of a run: every comparison figure and table (no Streamlit).

plotly.js is inlined once at the top; each figure is a ``<div>`` plus a short script that
draws it, so the file opens offline and never fetches anything.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from bt_core.artifacts import ArtifactError, Run, ShortcutSummary, load_shortcuts
from bt_core.data.classes import negative_class
from bt_core.metrics import run_comparison
from bt_core.metrics.scores import DEFAULT_BINS
from bt_dashboard.views import calibration, common, confusion, curves, figures, models, severity, significance, training

# plotly.js's default topojson URL (used by geo maps only, which no report figure has)
# points at its CDN; blanked so the file holds no CDN address at all.
TOPOJSON_DEFAULT = 'dflt:"https://cdn.plot.ly/un/"'
ALPHA = 0.05

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937; margin: 2rem auto;
       max-width: 1400px; padding: 0 1.5rem; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #2f6db5; padding-bottom: 0.2rem; margin-top: 2.5rem; }
.meta, .note { color: #4b5563; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #d1d5db; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
td:last-child { white-space: normal; min-width: 16rem; text-align: left; }
.table-wrap { overflow-x: auto; }
th { background: #f2f5f9; }
td:first-child, th:first-child { text-align: left; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 0.5rem; }
"""


def plotly_script() -> str:
    """plotly.js, inline, without its CDN default."""
    return plotly.offline.get_plotlyjs().replace(TOPOJSON_DEFAULT, 'dflt:""')


def figure_html(figure: go.Figure, filename: str) -> str:
    figure.update_layout(template="plotly_white")
    return figure.to_html(
        full_html=False, include_plotlyjs=False, config=figures.export_config(filename), default_width="100%"
    )


def table_html(table: pd.DataFrame, float_format: str = "{:.3f}") -> str:
    """A table as HTML; numbers rounded, missing values as a dash, text escaped."""
    shown = table.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = [common.MISSING if pd.isna(v) else float_format.format(v) for v in shown[column]]
    body = shown.to_html(index=False, escape=True, na_rep=common.MISSING, border=0)
    return f"<div class='table-wrap'>{body}</div>"


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n" + "\n".join(parts) + "\n</section>"


def paragraph(text: str, css_class: str = "note") -> str:
    return f'<p class="{css_class}">{html.escape(text)}</p>'


def _stem(run: Run, *parts: object) -> str:
    return "_".join(str(part) for part in (run.run_id, *parts)).replace(" ", "-").lower()


def severity_section(run: Run) -> str:
    """The finding first: each model's shortcut severity and the swap that drives it."""
    try:
        stored = load_shortcuts(run.directory)
    except ArtifactError as exc:
        return section("Shortcut severity", paragraph(f"The shortcut measures cannot be read: {exc}"))
    if stored is None:
        return section("Shortcut severity", paragraph(
            "Not measured: run python train_all.py --explain RUN_DIR to add the shortcut measures."))
    summary = ShortcutSummary.from_json(stored)
    accuracies = {name: (art.metrics or {}).get("accuracy") for name, art in run.models.items()}
    table = severity.severity_table(summary, accuracies)
    records = dict(summary.models)
    sentences = "".join(
        f"<li>{html.escape(severity.severity_sentence(name, records[name]).replace('**', ''))}</li>"
        for name in table[severity.MODEL])
    return section(
        "Shortcut severity",
        paragraph(severity.severity_headline(summary)),
        f"<div class='table-wrap'>{table_html(table)}</div>",
        f"<ul>{sentences}</ul>",
        paragraph(severity.severity_caption()),
    )


def leaderboard_section(run: Run, leaderboard: pd.DataFrame, excluded: dict[str, str], colors: dict) -> str:
    table = models.leaderboard_table(run, leaderboard, excluded)
    parts = [
        table_html(models.formatted_leaderboard(table)),
        paragraph("★ marks the best value of each column. Intervals: 95% paired bootstrap over test images."),
    ]
    if not leaderboard.empty:
        parts.append(figure_html(
            models.leaderboard_ci_figure(leaderboard, colors, title="Scores with 95% bootstrap intervals"),
            _stem(run, "leaderboard-intervals"),
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
                    _stem(run, kind, class_name),
                ))
        per_model = [
            figure_html(
                curves.class_curves_figure(table, kind=kind, class_names=run.class_names, title=f"{label}: {model}"),
                _stem(run, kind, model),
            )
            for model, table in by_model.items()
        ]
        parts.append(f"<h3>{label}: all models per class</h3><div class='grid'>{''.join(overlays)}</div>")
        parts.append(f"<h3>{label}: all classes per model</h3><div class='grid'>{''.join(per_model)}</div>")
    tumor = curves.tumor_roc_by_model(model_data, run.class_names)
    if tumor:
        auc = model_scores.set_index("model")["tumor_auc"].to_dict()
        title = f"ROC of P(tumor) = 1 − P({negative_class(run.class_names)})"
        tumor_figure = figure_html(curves.roc_overlay(tumor, auc, colors, title=title), _stem(run, "tumor-roc"))
        parts.append(f"<h3>Tumor vs no tumor</h3><div class='grid'>{tumor_figure}</div>")
    return section("ROC and precision-recall curves", *parts)


def confusion_section(run: Run, model_data: dict) -> str:
    matrices = confusion.confusion_matrices(run, model_data)
    cells = [
        figure_html(
            confusion.confusion_figure(matrix, run.class_names, normalized, title=f"{model} ({label})"),
            _stem(run, "confusion", model, label),
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
            _stem(run, "training", model),
        )
        for model, history in histories.items()
    ]
    parts.append(figure_html(training.validation_overlay_figure(histories, colors, title="All models"),
                             _stem(run, "validation-curves")))
    return section("Training", *parts)


def calibration_section(run: Run, model_data: dict, colors: dict) -> str:
    bins = calibration.reliability_by_model(model_data, DEFAULT_BINS)
    table = calibration.calibration_table(model_data, DEFAULT_BINS)
    ece = dict(zip(table[common.MODEL], table[common.ECE]))
    return section(
        "Calibration",
        figure_html(calibration.reliability_figure(bins, ece, colors, title=f"Reliability ({DEFAULT_BINS} bins)"),
                    _stem(run, "reliability")),
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
                    _stem(run, "significance")),
        table_html(significance.flip_table(pairs), float_format="{:.3g}"),
        paragraph("Macro AUC and macro F1 differences, paired bootstrap (A − B, 95% interval, "
                  "Holm-adjusted p):", "meta"),
        table_html(significance.difference_table(significance.metric_differences(model_data), ALPHA,
                                                 p_as_text=True),
                   float_format="{:.3g}"),
    )


def build_report(run: Run, *, n_resamples: int = 1000, seed: int = 0) -> str:
    """The whole comparison of ``run`` as one self-contained HTML document."""
    model_data, excluded = run_comparison.run_model_data(run)
    leaderboard = run_comparison.leaderboard(run, n_resamples=n_resamples, seed=seed)
    colors = figures.model_colors(list(run.models))
    overview = models.overview_line(models.run_overview(run)).replace("**", "")
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [severity_section(run), leaderboard_section(run, leaderboard, excluded, colors)]
    if model_data:
        model_scores = models.model_scores_table(model_data, run.class_names)
        body += [
            curves_section(run, model_data, colors, model_scores),
            confusion_section(run, model_data),
            training_section(run, colors),
            calibration_section(run, model_data, colors),
            significance_section(run, model_data),
        ]
    else:
        body.append(paragraph("No model of this run has test predictions to compare."))
    title = f"Model comparison — {run.run_id}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>",
        f'<script type="text/javascript">{plotly_script()}</script>',
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        paragraph(overview, "meta"),
        paragraph(f"Report written {created}; class order {', '.join(run.class_names)}.", "meta"),
        *body,
        "</body>",
        "</html>",
    ])
