"""Opening a test image on the Inspect page from another page's table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bt_dashboard.views import inspect as inspect_view


def open_selected_row_in_inspect(table_key: str, table: pd.DataFrame) -> None:
    """The row selected in the dataframe keyed ``table_key`` (a table with an ``id``
    column) opens that image on the Inspect page."""
    state = st.session_state.get(table_key)
    rows = state.selection.rows if state is not None else []
    if rows and rows[0] < len(table):
        image_id = str(table.iloc[rows[0]]["id"])
        st.session_state[inspect_view.SELECTED_IMAGE_KEY] = image_id
        st.switch_page(inspect_view.INSPECT_PAGE, query_params={inspect_view.IMAGE_QUERY_PARAM: image_id})


def show_inspect_link(ids: list[str], pick_key: str) -> None:
    """A picker of ``ids`` and a link that opens the picked image on the Inspect page
    (``?image=<id>``); a kept choice that is no longer among ``ids`` is dropped."""
    if not ids:
        return
    if st.session_state.get(pick_key) not in ids:
        st.session_state.pop(pick_key, None)
    pick, link = st.columns([3, 1], vertical_alignment="bottom")
    image_id = pick.selectbox("Open an image in Inspect (or select its row in the table)", ids, key=pick_key)
    link.page_link(inspect_view.INSPECT_PAGE, label="Inspect", icon=":material/center_focus_strong:",
                   query_params={inspect_view.IMAGE_QUERY_PARAM: image_id})
