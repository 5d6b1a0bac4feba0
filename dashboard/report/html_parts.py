"""The report's HTML building blocks: style, inline plotly.js, figures, tables, sections, text.

Every text that comes from a run is escaped here, so no stored name or sentence can add markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from bt_core.artifacts import Run
from bt_dashboard.views import common, figures

# plotly.js's default topojson URL (used by geo maps only, which no report figure has)
# points at its CDN; blanked so the file holds no CDN address at all.
TOPOJSON_DEFAULT = 'dflt:"https://cdn.plot.ly/un/"'

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
nav ul { columns: 3; }
.gallery { display: flex; flex-wrap: wrap; gap: 0.5rem; margin-bottom: 0.8rem; }
.gallery figure { margin: 0; width: 132px; font-size: 0.72rem; color: #374151; }
.gallery img { display: block; width: 128px; height: 128px; image-rendering: auto; border: 1px solid #d1d5db; }
.card { border: 1px solid #d1d5db; border-radius: 6px; padding: 0 1rem; margin: 0.8rem 0; }
.card table td:last-child { min-width: 8rem; }
.unsafe { color: #b91c1c; font-weight: 600; }
"""


def plotly_script() -> str:
    """plotly.js, inline, without its CDN default."""
    return plotly.offline.get_plotlyjs().replace(TOPOJSON_DEFAULT, 'dflt:""')


def figure_html(figure: go.Figure, filename: str) -> str:
    figure.update_layout(template="plotly_white")
    return figure.to_html(
        full_html=False, include_plotlyjs=False, config=figures.export_config(filename), default_width="100%"
    )


def table_html(table: pd.DataFrame, float_format: str = "{:.3f}", percent_columns: Sequence[str] = (),
               formats: Mapping[str, str] | None = None) -> str:
    """A table as HTML; numbers rounded (``percent_columns`` as percentages, ``formats`` by
    column first), missing values as a dash, text escaped."""
    shown = table.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            form = (formats or {}).get(column) or ("{:.1%}" if column in percent_columns else float_format)
            shown[column] = [common.MISSING if pd.isna(v) else form.format(v) for v in shown[column]]
    body = shown.to_html(index=False, escape=True, na_rep=common.MISSING, border=0)
    return f"<div class='table-wrap'>{body}</div>"


def anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def section(title: str, *parts: str) -> str:
    return (f'<section id="{anchor(title)}"><h2>{html.escape(title)}</h2>\n' + "\n".join(parts)
            + "\n</section>")


def plain(text: str) -> str:
    """A view's Markdown sentence as plain text (bold and code marks dropped)."""
    return text.replace("**", "").replace("`", "")


def paragraph(text: str, css_class: str = "note") -> str:
    return f'<p class="{css_class}">{html.escape(plain(text))}</p>'


def bullets(lines: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(plain(line))}</li>" for line in lines) + "</ul>"


def stem(run: Run, *parts: object) -> str:
    return "_".join(str(part) for part in (run.run_id, *parts)).replace(" ", "-").lower()
