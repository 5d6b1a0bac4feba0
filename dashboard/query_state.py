"""The view in the URL: the one module that reads and writes the deep-link query parameters.

A value in the URL is a request when this session has not yet read or written it there: the
first run of a session (a shared link opened), or a link another page followed
(``?image=``). After that, widgets write their value into the URL, so the address bar always
holds a link to the view shown. Parameter names and parsing: ``bt_dashboard.views.deep_links``.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from bt_dashboard import loaders
from bt_dashboard.views import common
from bt_dashboard.views import deep_links as links
from bt_dashboard.views.deep_links import Ignored

# Parameter -> the value this session last read from or wrote to the URL.
SEEN_KEY = "query_state_seen"
# The Inspect page's model and method widgets: a link's models and method seed them.
MODELS_KEY = "inspect_models"
METHOD_KEY = "inspect_method"


def _seen() -> dict[str, str | None]:
    return st.session_state.setdefault(SEEN_KEY, {})


def requested(parameter: str) -> str | None:
    """The URL's value of ``parameter`` when it is a request (see the module doc), else None.
    Reading it marks it seen: it is a request once."""
    value = st.query_params.get(parameter)
    seen = _seen()
    if not value or seen.get(parameter) == value:
        return None
    seen[parameter] = value
    return value


def write(parameter: str, value: str | None) -> None:
    """Put the shown view's ``value`` of ``parameter`` into the URL (None: remove it)."""
    _seen()[parameter] = value
    if value is None:
        if parameter in st.query_params:
            del st.query_params[parameter]
    elif st.query_params.get(parameter) != value:
        st.query_params[parameter] = value


def write_models(models: Sequence[str]) -> None:
    write(links.MODELS, links.models_value(models) or None)


def adopt_page_choices(run_dir: str) -> list[Ignored]:
    """A link's models and method, checked against the shown run's comparable models and the
    known methods, seed Inspect's widgets; returns what was ignored."""
    ignored: list[Ignored] = []
    models = links.parse_models(requested(links.MODELS))
    if models is not None:
        model_data, _excluded = loaders.load_model_data(run_dir)
        kept, unknown = links.keep_known(links.MODELS, models, list(model_data),
                                         "not a model of this test set with predictions")
        ignored += unknown
        if kept:
            st.session_state[MODELS_KEY] = list(kept)
    method = requested(links.METHOD)
    if method is not None:
        problem = links.check_choice(links.METHOD, method, list(common.METHOD_LABELS),
                                     "known: " + ", ".join(common.METHOD_LABELS))
        if problem is None:
            st.session_state[METHOD_KEY] = method
        else:
            ignored.append(problem)
    return ignored


def warn_ignored(ignored: Sequence[Ignored]) -> None:
    """One warning naming every link value that was ignored, with its reason."""
    if ignored:
        st.warning(links.ignored_message(ignored), icon=":material/link_off:")
