"""Widget state that must follow the chosen run (Streamlit session state)."""

from __future__ import annotations

from typing import Any

import streamlit as st

# offered_choice's answer for a value to forget: the widget falls back to its default.
FORGET = object()


def offered_choice(value: Any, options: list) -> Any:
    """What a widget keeps of ``value`` when it offers ``options`` (another run was picked):
    a single value it still offers, or the values of a list it still offers; ``FORGET``
    when nothing is left, so the widget takes its default instead of an empty choice (a
    list that was empty before stays empty: the user cleared it)."""
    if isinstance(value, list):
        kept = [item for item in value if item in options]
        return FORGET if value and not kept else kept
    return value if value in options else FORGET


def drop_stale_choice(key: str, options: list) -> None:
    """Apply :func:`offered_choice` to the widget ``key``'s stored value: a multiselect
    keeps the values still offered, and a widget left with nothing falls back to its
    default (the key is deleted; a page that seeds the key seeds it again)."""
    if key not in st.session_state:
        return
    value = st.session_state[key]
    kept = offered_choice(value, options)
    if kept is FORGET:
        del st.session_state[key]
    elif kept != value:
        st.session_state[key] = kept
