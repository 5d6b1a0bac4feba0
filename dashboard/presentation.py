"""How pages show figures and tables: presentation mode, PNG export, CSV downloads.

Presentation mode is a sidebar toggle kept in ``st.session_state`` (and mirrored in the
``?present=1`` query parameter, so a presenting tab can be reloaded or shared). It widens
the page, enlarges the type through injected CSS, collapses the sidebar and folds each
page's controls into an expander. Figures get larger fonts (:func:`figures.enlarge_fonts`).
Tables of up to :data:`STATIC_TABLE_MAX_ROWS` rows become static HTML tables in larger type
that wrap instead of scrolling: ``st.dataframe`` draws on a canvas whose font comes from
the theme, read once per page load, so neither CSS nor a toggle can enlarge it (measured
in Chromium, Streamlit 1.67). Selectable and longer tables stay grids.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from pandas.io.formats.style import Styler

from bt_dashboard.views import common, figures

PRESENTATION_KEY = "presentation_mode"
QUERY_PARAM = "present"
PRESENTATION_FONT_SIZE = figures.PRESENTATION_FONT_SIZE
# Longer tables stay scrollable grids: a static table of hundreds of rows would be a wall.
STATIC_TABLE_MAX_ROWS = 30

PRESENTATION_CSS = """
<style>
/* Presentation mode: wider content, larger type, no developer chrome. */
.stMainBlockContainer, [data-testid="stMainBlockContainer"] {
    max-width: 100%; padding-left: 2.5rem; padding-right: 2.5rem; padding-top: 2.5rem;
}
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li,
[data-testid="stCaptionContainer"], [data-testid="stAlert"] p {
    font-size: 1.35rem !important; line-height: 1.5;
}
h1 { font-size: 3.2rem !important; }
h2 { font-size: 2.4rem !important; }
h3 { font-size: 1.9rem !important; }
/* Static tables (show_table while presenting): larger type, long headers wrap. */
[data-testid="stTable"] th, [data-testid="stTable"] td {
    font-size: 1.2rem !important; line-height: 1.35; white-space: normal !important;
}
[data-testid="stMetricValue"] { font-size: 2.6rem !important; }
[data-testid="stToolbar"], [data-testid="stDecoration"], [data-testid="stStatusWidget"] {
    display: none !important;
}
</style>
"""


def presentation_enabled() -> bool:
    """Whether presentation mode is on; the first run of a session reads ``?present=1``."""
    if PRESENTATION_KEY not in st.session_state:
        st.session_state[PRESENTATION_KEY] = st.query_params.get(QUERY_PARAM) == "1"
    return bool(st.session_state[PRESENTATION_KEY])


def _sync_query_param() -> None:
    if st.session_state.get(PRESENTATION_KEY):
        st.query_params[QUERY_PARAM] = "1"
    elif QUERY_PARAM in st.query_params:
        del st.query_params[QUERY_PARAM]


def render_presentation_toggle() -> bool:
    """The sidebar toggle; returns whether presentation mode is on."""
    presentation_enabled()  # seeds the state from the query parameter on the first run
    return st.sidebar.toggle(
        "Presentation mode",
        key=PRESENTATION_KEY,
        on_change=_sync_query_param,
        help="Wide layout, larger type, sidebar and page controls folded away.",
    )


def apply_presentation_css() -> None:
    """Inject the presentation stylesheet when presentation mode is on."""
    if presentation_enabled():
        st.html(PRESENTATION_CSS)


def controls(label: str = "Options"):
    """A container for a page's controls: folded into an expander while presenting."""
    if presentation_enabled():
        return st.expander(label, expanded=False)
    return st.container()


def file_stem(*parts: Any) -> str:
    """A file name stem from parts: lower case, safe characters, joined by underscores."""
    text = "_".join(str(part) for part in parts if part not in (None, ""))
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_").lower() or "figure"


def enlarge_fonts(figure: go.Figure, size: int = PRESENTATION_FONT_SIZE) -> go.Figure:
    """Presentation-size type on every part of ``figure`` (see :func:`figures.enlarge_fonts`)."""
    return figures.enlarge_fonts(figure, size)


def show_figure(figure: go.Figure, filename: str, **kwargs: Any) -> Any:
    """``st.plotly_chart`` with the PNG export button named ``filename`` (and larger type while presenting)."""
    if presentation_enabled():
        enlarge_fonts(figure)
    return st.plotly_chart(figure, config=figures.export_config(filename), **kwargs)


def csv_download(table: pd.DataFrame, filename: str, *, label: str = "Download CSV", key: str | None = None) -> None:
    """A button that downloads ``table`` as ``filename``.csv."""
    st.download_button(
        label,
        data=table.to_csv(index=False).encode("utf-8"),
        file_name=f"{filename}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=key or f"csv_{filename}",
        on_click="ignore",
    )


def grid_number_text(value: Any) -> str:
    """A number as the grid prints it: whole numbers without decimals, others with at most
    four, no trailing zeros."""
    number = float(value)
    if number.is_integer():
        return f"{int(number)}"
    return f"{number:.4f}".rstrip("0").rstrip(".")


def grid_like_style(table: pd.DataFrame, placeholder: str) -> Styler:
    """An unstyled table's numbers and blanks as ``st.dataframe`` would show them."""
    numbers = [column for column in table.columns if pd.api.types.is_float_dtype(table[column])]
    return table.style.format(grid_number_text, subset=numbers, na_rep=placeholder).format(
        na_rep=placeholder, subset=[column for column in table.columns if column not in numbers]
    )


def shows_static_table(table: pd.DataFrame, **dataframe_kwargs: Any) -> bool:
    """Whether :func:`show_table` draws ``table`` as a static table: while presenting, for a
    table of at most :data:`STATIC_TABLE_MAX_ROWS` rows that nobody selects rows in and whose
    columns need no grid (an image, progress or link column does; a help text does not)."""
    selectable = dataframe_kwargs.get("on_select", "ignore") != "ignore"
    typed_columns = any(
        isinstance(config, dict) and config.get("type_config")
        for config in (dataframe_kwargs.get("column_config") or {}).values()
    )
    return (presentation_enabled() and not selectable and not typed_columns
            and len(table) <= STATIC_TABLE_MAX_ROWS)


def show_table(
    table: pd.DataFrame, filename: str, *, styled: Styler | None = None, csv: bool = True, **kwargs: Any
) -> Any:
    """A dataframe (optionally styled) with a CSV download of the raw table under it (unless
    ``csv`` is False); while presenting, a short table is a static table in larger type
    (:func:`shows_static_table`).

    Blank cells read ``placeholder`` (default "—", as the Styler's ``na_rep`` of most tables):
    the browser's grid draws every blank cell with it and ignores ``na_rep``, which only the
    Styler's text (AppTest, HTML) carries. A column that must say why it is blank holds the
    words itself (:func:`bt_dashboard.views.common.not_measurable_cells`)."""
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("placeholder", common.MISSING)
    if shows_static_table(table, **kwargs):
        shown = styled if styled is not None else grid_like_style(table, kwargs["placeholder"])
        element = st.table(shown, hide_index=kwargs["hide_index"])
    else:
        element = st.dataframe(styled if styled is not None else table, **kwargs)
    if csv:
        csv_download(table, filename)
    return element
