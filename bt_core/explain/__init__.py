"""Explanations of the zoo's classifiers: Grad-CAM family, Score-CAM, SmoothGrad, overlays.

TensorFlow-only (tf-keras-vis). The TensorFlow parts are imported on first access, so
``from bt_core.explain import overlay`` (OpenCV only) does not load TensorFlow.

    maps = explain(model, images_uint8, "gradcam", preprocessing="caffe")  # (N, H, W)
    picture = overlay(images_uint8[0], maps[0])
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported eagerly (light) so the name ``overlay`` is the function, not the submodule.
from bt_core.explain.overlay import COLORMAPS, box_pixels, colorize, draw_box, draw_contour, overlay

_EXPORTS = {
    "explain": "base",
    "explain_spec": "base",
    "warm_up": "base",
    "target_classes": "base",
    "resolve_layer": "base",
    "conv_layer_names": "base",
    "model_input": "base",
    "normalize_maps": "base",
    "resize_maps": "base",
    "clear_cache": "base",
    "CamMethod": "base",
    "TARGETS": "base",
    "list_methods": "methods",
    "get_method": "methods",
    "register_method": "methods",
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
