"""One self-contained HTML report of a run: the shortcut finding, every comparison figure and
table, a Grad-CAM gallery, the external evaluations and the model cards (no Streamlit).

plotly.js is inlined once at the top; each figure is a ``<div>`` plus a short script that
draws it, and every image is an embedded PNG, so the file opens offline and fetches nothing.

    html_parts  style, inline plotly.js, tables, sections (every run text escaped)
    findings    shortcut severity, the Shortcuts verdict and table, the dataset audit
    gallery     confident errors and maps outside the head, as embedded overlays
    comparison  leaderboard, curves, confusion, training, calibration, significance
    appendix    external evaluations and the stored model cards
    document    build_report: the sections in order, with a table of contents
"""

from bt_dashboard.report.document import build_report

__all__ = ["build_report"]
