"""The entry points: :func:`explain`, :func:`explain_spec` and :func:`warm_up`.

:func:`explain` chains the shared plumbing of ``bt_core.explain.method`` around one
registered method: model input, target classes, layer, the method in bounded batches on
the model's cached views, then each map resized to the input (``bt_core.regions``, bilinear
when growing, as every raw map here does) and scaled to ``[0, 1]``.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

# Imported for its side effect: registering the built-in methods.
from bt_core.explain import methods as _builtin_methods  # noqa: F401
from bt_core.explain.method import model_input, normalize_maps, resolve_classes, resolve_layer
from bt_core.explain.registry import get_method, list_methods, register_method
from bt_core.explain.views import cache_for, clear_cache
from bt_core.regions import resize_maps

__all__ = [
    "clear_cache",
    "explain",
    "explain_spec",
    "get_method",
    "list_methods",
    "register_method",
    "resize_maps",
    "warm_up",
]


def explain(
    model: keras.Model,
    images: Any,
    method: str = "gradcam",
    class_index: int | Sequence[int] | np.ndarray | None = None,
    layer: str | None = None,
    preprocessing: str | None = None,
    *,
    batch_size: int | None = None,
    compiled: bool = True,
    **options: Any,
) -> np.ndarray:
    """Explanation maps of ``model`` for ``images``: float32 ``(N, H, W)`` in ``[0, 1]``.

    ``images``: model input (float32, already preprocessed), or uint8 RGB together with
    ``preprocessing=`` (a ``bt_core.data.preprocess`` mode); ``(H, W, C)`` is a batch of one.
    ``method``: one of :func:`~bt_core.explain.registry.list_methods`.
    ``class_index``: None (each image's predicted class), an int (that class for all) or
    one int per image (e.g. the true labels, see :func:`~bt_core.explain.method.target_classes`).
    ``layer``: layer name; None picks the last conv-like layer
    (:func:`~bt_core.explain.method.resolve_layer`). Ignored by methods that work on the
    input (``smoothgrad``).
    ``batch_size``: images per method call (default per method: 16 for the gradient CAMs
    and Faster Score-CAM, 1 for Score-CAM and SmoothGrad, whose copies per image are many).
    ``compiled``: run each method on the model's traced parts (the same maps as
    tf-keras-vis, to float precision; on CPU several times faster: Score-CAM and SmoothGrad
    batch their masked or noisy copies); False runs plain tf-keras-vis eagerly.
    ``options``: per method, e.g. ``max_N`` for ``faster_scorecam``,
    ``samples``/``noise``/``seed`` for ``smoothgrad``.

    Maps are resized to the input size and min-max scaled per image; a map with no signal
    (constant, e.g. a class with no positive evidence) is all zeros.
    """
    method_class = get_method(method)
    resolved = method_class.resolve_options(options)
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x = model_input(model, images, preprocessing)
    layer_name = resolve_layer(model, layer) if method_class.uses_layer else None
    classes = resolve_classes(model, x, class_index)
    if len(x) == 0:
        return np.zeros((0, *x.shape[1:3]), dtype=np.float32)
    runner = cache_for(model).method(method_class, layer_name, bool(compiled))
    step = batch_size or method_class.batch_size
    maps = []
    for start in range(0, len(x), step):
        raw = runner.compute(x[start : start + step], classes[start : start + step], **resolved)
        maps.append(normalize_maps(resize_maps(raw, x.shape[1:3])))
    return np.concatenate(maps)


def _spec_layer_and_mode(spec: Any) -> tuple[str | None, str]:
    """``(last_conv_layer, preprocessing)`` of a ModelSpec or a registry name."""
    if isinstance(spec, str):
        from bt_core.models import get_spec

        spec = get_spec(spec)
    return spec.last_conv_layer, spec.preprocessing


def explain_spec(
    model: keras.Model,
    spec: Any,
    images: Any,
    method: str = "gradcam",
    class_index: int | Sequence[int] | np.ndarray | None = None,
    **options: Any,
) -> np.ndarray:
    """:func:`explain` at the layer and with the preprocessing a model spec names.

    ``spec``: a :class:`~bt_core.models.ModelSpec` (or its registry name); its
    ``last_conv_layer`` (None: the default layer) and ``preprocessing`` are used. uint8
    images are preprocessed with the spec's mode; float images are taken as model input.
    ``options`` go to :func:`explain` (``batch_size``, ``compiled`` or the method's).
    """
    layer, mode = _spec_layer_and_mode(spec)
    preprocessing = mode if np.asarray(images).dtype == np.uint8 else None
    return explain(
        model,
        images,
        method,
        class_index=class_index,
        layer=layer,
        preprocessing=preprocessing,
        **options,
    )


def warm_up(model: keras.Model, spec: Any, methods: Sequence[str] = ("gradcam",)) -> None:
    """Build and trace what ``methods`` need for ``model`` at the spec's layer, on one blank
    image, so the first real explanation is as fast as the next ones (tracing a big
    backbone's views takes seconds: DenseNet121 about 6 s on 2 CPU cores).

    ``spec`` as in :func:`explain_spec`."""
    size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    blank = np.zeros((1, *size, 3), dtype=np.uint8)
    for method in methods:
        explain_spec(model, spec, blank, method, class_index=0)
