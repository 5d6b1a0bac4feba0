"""The whole report: the finding first (severity, shortcuts, Grad-CAM gallery, dataset audit),
then the comparison (leaderboard, curves, confusion, training, calibration, significance), the
external evaluations and the model cards, with a table of contents of in-page links."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

from bt_core.artifacts import Run
from bt_core.metrics import run_comparison
from bt_dashboard.report import appendix, comparison, findings, gallery
from bt_dashboard.report.html_parts import STYLE, paragraph, plotly_script
from bt_dashboard.views import figures, models

_HEADING = re.compile(r'<section id="([^"]+)"><h2>([^<]+)</h2>')


def contents(body: list[str]) -> str:
    """A list of in-page links to every section of ``body``."""
    links = [f'<li><a href="#{match.group(1)}">{match.group(2)}</a></li>'
             for part in body for match in [_HEADING.match(part)] if match]
    return f"<nav><ul>{''.join(links)}</ul></nav>"


def build_report(run: Run, *, n_resamples: int = run_comparison.LEADERBOARD_RESAMPLES,
                 seed: int = run_comparison.LEADERBOARD_SEED) -> str:
    """The whole comparison of ``run`` as one self-contained HTML document."""
    model_data, excluded = run_comparison.run_model_data(run)
    leaderboard = run_comparison.leaderboard(run, n_resamples=n_resamples, seed=seed)
    colors = figures.model_colors(list(run.models))
    stored = findings.read_stored_shortcuts(run)
    overview = models.overview_line(models.run_overview(run)).replace("**", "")
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        findings.severity_section(run, stored),
        findings.shortcuts_section(run, stored),
        gallery.gallery_section(run, None if stored.summary is None else stored.summary.method),
        findings.audit_section(run, stored),
        comparison.leaderboard_section(run, leaderboard, excluded, colors),
    ]
    if model_data:
        model_scores = models.model_scores_table(model_data, run.class_names)
        body += [
            comparison.curves_section(run, model_data, colors, model_scores),
            comparison.confusion_section(run, model_data),
            comparison.training_section(run, colors),
            comparison.calibration_section(run, model_data, colors),
            comparison.significance_section(run, model_data),
        ]
    else:
        body.append(paragraph("No model of this run has test predictions to compare."))
    body += [appendix.evaluations_section(run), appendix.cards_section(run)]
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
        contents(body),
        *body,
        "</body>",
        "</html>",
    ])
