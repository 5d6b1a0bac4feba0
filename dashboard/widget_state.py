"""Widget state that must follow the chosen run (Streamlit session state)."""

from __future__ import annotations

import streamlit as st


def drop_stale_choice(key: str, options: list) -> None:
    """Forget a widget's value that the current run does not offer (another run was picked),
    so the widget falls back to its default instead of failing; a multiselect keeps the
    values still offered."""
    if key not in st.session_state:
        return
    value = st.session_state[key]
    if isinstance(value, list):
        kept = [item for item in value if item in options]
        if kept != value:
            st.session_state[key] = kept
    elif value not in options:
        del st.session_state[key]
