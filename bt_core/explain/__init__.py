"""Explanations of the zoo's classifiers: Grad-CAM family, Score-CAM, SmoothGrad, overlays.

TensorFlow-only (tf-keras-vis). The TensorFlow parts are imported on first access, so
``from bt_core.explain import overlay`` (OpenCV only) does not load TensorFlow.

    maps = explain(model, images_uint8, "gradcam", preprocessing="caffe")  # (N, H, W)
    picture = overlay(images_uint8[0], maps[0])

Modules: ``api`` (the entry points), ``method`` (the method base and the plumbing every
method shares), ``methods`` (one short subclass per method), ``registry`` (the method
table), ``views`` (the TensorFlow side: traced views cached per model) and ``overlay``
(colour maps, boxes and outlines drawn on images). Maps of a whole run: bt_core.runs.analyze.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported eagerly (light) so the name ``overlay`` is the function, not the submodule.
from bt_core.explain.overlay import COLORMAPS, box_pixels, colorize, draw_box, draw_contour, overlay

# Public name -> submodule that defines it (``api`` also re-exports the registry, after
# importing ``methods`` so the built-in methods are registered).
_EXPORTS = {
    "explain": "api",
    "explain_spec": "api",
    "warm_up": "api",
    "list_methods": "api",
    "get_method": "api",
    "register_method": "api",
    "clear_cache": "api",
    "target_classes": "method",
    "resolve_layer": "method",
    "conv_layer_names": "method",
    "model_input": "method",
    "normalize_maps": "method",
    "resize_maps": "api",
    "CamMethod": "method",
    "TARGETS": "method",
}

__all__ = sorted(
    [*_EXPORTS, "COLORMAPS", "box_pixels", "colorize", "draw_box", "draw_contour", "overlay"]
)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
