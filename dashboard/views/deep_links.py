"""Deep links (no Streamlit): the URL query parameters that name a view, parsed and written.

    ?run=<run id>&test_set=<evaluation name>&models=<model>,<model>&method=<method>&image=<test id>

``run`` is the run folder's name (its id, not a path: a colleague's artifacts folder lies
elsewhere), ``test_set`` one of its evaluations (absent: the run's own test split), ``models``
the models chosen on Inspect, comma-separated, ``method`` an explanation method and ``image``
a test image id. ``?present=1`` (presentation mode) belongs to ``bt_dashboard.presentation``.
A value the dashboard cannot show is dropped with its reason (``Ignored``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

RUN = "run"
TEST_SET = "test_set"
MODELS = "models"
METHOD = "method"
IMAGE = "image"
PARAMETERS = (RUN, TEST_SET, MODELS, METHOD, IMAGE)
MODEL_SEPARATOR = ","


@dataclass(frozen=True)
class DeepLink:
    """The view a URL asks for; None: the URL does not say."""

    run: str | None = None
    test_set: str | None = None
    models: tuple[str, ...] | None = None
    method: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class Ignored:
    """A link value the dashboard cannot show, and why."""

    parameter: str
    value: str
    reason: str


def parse_models(text: str | None) -> tuple[str, ...] | None:
    """``"a,b"`` -> ``("a", "b")``: blanks and repeats dropped; None for no model at all."""
    names = [name.strip() for name in (text or "").split(MODEL_SEPARATOR)]
    kept = tuple(dict.fromkeys(name for name in names if name))
    return kept or None


def models_value(models: Iterable[str]) -> str:
    """The ``models`` parameter of a model list (``parse_models`` reads it back)."""
    return MODEL_SEPARATOR.join(models)


def _text(params: Mapping[str, str], parameter: str) -> str | None:
    value = params.get(parameter)
    value = value.strip() if isinstance(value, str) else None
    return value or None


def parse_link(params: Mapping[str, str]) -> DeepLink:
    """The view ``params`` (a URL's query parameters) asks for; other parameters are not read."""
    return DeepLink(
        run=_text(params, RUN),
        test_set=_text(params, TEST_SET),
        models=parse_models(params.get(MODELS)),
        method=_text(params, METHOD),
        image=_text(params, IMAGE),
    )


def link_params(link: DeepLink) -> dict[str, str]:
    """The query parameters of ``link`` (what it does not say is left out)."""
    values = {RUN: link.run, TEST_SET: link.test_set,
              MODELS: None if link.models is None else models_value(link.models),
              METHOD: link.method, IMAGE: link.image}
    return {parameter: value for parameter, value in values.items() if value}


def check_choice(parameter: str, value: str, options: Sequence[str], reason: str) -> Ignored | None:
    """None when ``value`` is one of ``options``; else the ``Ignored`` saying ``reason``."""
    return None if value in options else Ignored(parameter, value, reason)


def keep_known(
    parameter: str, values: Sequence[str], options: Sequence[str], reason: str
) -> tuple[tuple[str, ...], list[Ignored]]:
    """The ``values`` among ``options`` (in the link's order), and one ``Ignored`` per other."""
    kept = tuple(value for value in values if value in options)
    return kept, [Ignored(parameter, value, reason) for value in values if value not in options]


def ignored_message(ignored: Sequence[Ignored]) -> str:
    """The one warning of a link's ignored values, each named with its reason."""
    parts = "; ".join(f"{item.parameter} `{item.value}` ({item.reason})" for item in ignored)
    return f"The link asks for what this dashboard cannot show, ignored: {parts}."
