"""The table of explanation methods: name -> :class:`~bt_core.explain.method.CamMethod` subclass.

Methods register themselves with :func:`register_method` when their module is imported;
``bt_core.explain.api`` imports ``bt_core.explain.methods``, so the built-in ones are
always there for :func:`bt_core.explain.explain` and :func:`bt_core.explain.list_methods`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the table needs nothing of the base class
    from bt_core.explain.method import CamMethod

_METHODS: dict[str, type[CamMethod]] = {}


def register_method(method_class: type[CamMethod]) -> type[CamMethod]:
    """Class decorator: make ``method_class`` available to ``explain`` by its ``name``."""
    if method_class.name in _METHODS:
        raise ValueError(f"Explanation method {method_class.name!r} is already registered")
    _METHODS[method_class.name] = method_class
    return method_class


def list_methods() -> list[str]:
    """Names of the registered methods, in registration order."""
    return list(_METHODS)


def get_method(name: str) -> type[CamMethod]:
    """The method class registered as ``name``; an unknown name raises ValueError."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ValueError(
            f"Unknown explanation method {name!r}; known methods: {', '.join(_METHODS)}"
        ) from None
