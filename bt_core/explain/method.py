"""The base of every explanation method and the plumbing they share (pytorch-grad-cam's
``base_cam`` idea).

A method (``bt_core.explain.methods``) is a short :class:`CamMethod` subclass that only
turns one batch of model input and class indices into raw maps of any size. Everything
else is here, once: turning images into model input (:func:`model_input`), picking the
class of every image (:func:`target_classes`, :func:`resolve_classes`), picking the layer
(:func:`resolve_layer`) and scaling maps to ``[0, 1]`` (:func:`normalize_maps`; resizing
is :func:`bt_core.regions.resize_maps`). :func:`bt_core.explain.api.explain` chains them.
The TensorFlow views a method runs on live in ``bt_core.explain.views``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Sequence

import keras
import numpy as np

from bt_core.data.preprocess import preprocess_batch
from bt_core.explain.views import ModelCache, cache_for, check_explainable

TARGETS = ("predicted", "true")

# Layers that keep a convolution's feature map (same grid) and may follow it: the default
# Grad-CAM layer is the last of them after the last convolution, e.g. ResNet's
# conv -> bn -> add -> relu ("conv5_block3_out"), not the raw conv before the residual add.
_CONV_LAYERS = (
    keras.layers.Conv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)
_POST_CONV_LAYERS = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Add,
    keras.layers.Concatenate,
    keras.layers.Multiply,
    keras.layers.Maximum,
    keras.layers.Average,
)
# How many layer names a "bad layer" error lists (the deepest: they matter most).
_MAX_LISTED_LAYERS = 25


# --------------------------------------------------------------------------- inputs


def model_input(model: keras.Model, images: Any, preprocessing: str | None = None) -> np.ndarray:
    """``images`` as a float32 ``(N, H, W, C)`` batch the model accepts.

    ``preprocessing=None``: ``images`` already are model input (float). A uint8 batch is
    refused then: it is almost surely a forgotten ``preprocessing=``. With a mode, the
    images must be uint8 RGB and go through :func:`bt_core.data.preprocess.preprocess_batch`.
    A single ``(H, W, C)`` image counts as a batch of one.
    """
    check_explainable(model)
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[np.newaxis]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or (H, W, C), got shape {images.shape}")
    if preprocessing is not None:
        x = preprocess_batch(images, preprocessing)
    elif images.dtype == np.uint8:
        raise TypeError(
            "images are uint8 but no preprocessing= was given: pass the model's "
            "preprocessing mode, or pass images that are already model input (float32)"
        )
    elif not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"images must be float model input or uint8, got dtype {images.dtype}")
    else:
        x = images.astype(np.float32, copy=False)
    expected = tuple(model.inputs[0].shape[1:])
    if any(want is not None and want != got for want, got in zip(expected, x.shape[1:])):
        raise ValueError(
            f"images have shape {x.shape[1:]} but model {model.name!r} takes {expected}"
        )
    return x


def num_classes(model: keras.Model) -> int:
    return int(model.outputs[0].shape[-1])


# --------------------------------------------------------------------------- targets


def target_classes(
    model: keras.Model,
    images: Any,
    target: str | int = "predicted",
    labels: Sequence[int] | np.ndarray | None = None,
    preprocessing: str | None = None,
) -> np.ndarray:
    """The class to explain for every image, as an int64 array ``(N,)``.

    ``target``: ``"predicted"`` (the model's top class), ``"true"`` (``labels``, class
    indices, required then) or an int (that class for every image). ``images`` as in
    :func:`~bt_core.explain.api.explain`.
    """
    x = model_input(model, images, preprocessing)
    n = len(x)
    if isinstance(target, str):
        if target == "predicted":
            return cache_for(model).predicted_classes(x)
        if target == "true":
            if labels is None:
                raise ValueError('target="true" needs labels= (class indices)')
            return _class_array(model, labels, n, "labels")
        raise ValueError(f"Unknown target {target!r}; use one of {TARGETS} or a class index")
    return _class_array(model, target, n, "target")


def _class_array(model: keras.Model, value: Any, n: int, what: str) -> np.ndarray:
    """An int, or ints one per image, checked against the number of classes."""
    array = np.asarray(value)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{what} must be an int or integer array, got {value!r}")
    if array.ndim == 0:
        array = np.full(n, int(array))
    if array.shape != (n,):
        raise ValueError(f"{what} must give one class per image ({n}), got shape {array.shape}")
    classes = num_classes(model)
    if n and (array.min() < 0 or array.max() >= classes):
        raise ValueError(f"{what} must be class indices in [0, {classes}), got {array.tolist()}")
    return array.astype(np.int64)


def resolve_classes(model: keras.Model, x: np.ndarray, class_index: Any) -> np.ndarray:
    """``class_index`` of :func:`~bt_core.explain.api.explain` (None, int or one int per image) as an array."""
    if class_index is None:
        return cache_for(model).predicted_classes(x)
    return _class_array(model, class_index, len(x), "class_index")


# --------------------------------------------------------------------------- layers


def _spatial_output(layer: keras.layers.Layer) -> tuple | None:
    """The ``(H, W)`` of a layer's 4-D output, or None when it has no single 4-D output."""
    if isinstance(layer, keras.layers.InputLayer):
        return None
    try:
        output = layer.output
    except (AttributeError, ValueError):  # unbuilt, or called more than once
        return None
    shape = getattr(output, "shape", None)
    if shape is None or len(shape) != 4:
        return None
    return tuple(shape[1:3])


def conv_layer_names(model: keras.Model) -> list[str]:
    """Conv-like layers in graph order: convolutions and the layers that directly post-
    process their feature map (normalisation, activation, residual add / concat) at the
    same resolution. The last one is the default explanation layer."""
    names: list[str] = []
    grid = None  # spatial size of the last convolution's output
    for layer in model.layers:
        spatial = _spatial_output(layer)
        if spatial is None:
            continue
        if isinstance(layer, _CONV_LAYERS):
            grid = spatial
            names.append(layer.name)
        elif isinstance(layer, _POST_CONV_LAYERS) and grid is not None and spatial == grid:
            names.append(layer.name)
    return names


def resolve_layer(model: keras.Model, layer: str | None = None) -> str:
    """The name of the layer to explain.

    ``None``: the last conv-like layer (see :func:`conv_layer_names`); for every registry
    model this is its spec's ``last_conv_layer``. A name: any layer of the (flat) model
    whose output is 4-D ``(N, H, W, C)``. Anything else raises ``ValueError`` listing the
    conv-like layers.
    """
    candidates = conv_layer_names(model)
    if layer is None:
        if not candidates:
            raise ValueError(f"Model {model.name!r} has no convolutional layer to explain")
        return candidates[-1]
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name or None, got {type(layer).__name__}")
    names = {existing.name: existing for existing in model.layers}
    if layer in names and _spatial_output(names[layer]) is not None:
        return layer
    problem = "has no 4-D (N, H, W, C) output" if layer in names else "is not a layer of"
    listed = candidates[-_MAX_LISTED_LAYERS:]
    more = len(candidates) - len(listed)
    prefix = f"(and {more} earlier) " if more else ""
    raise ValueError(
        f"Layer {layer!r} {problem} model {model.name!r}; valid conv layers {prefix}"
        f"in graph order: {', '.join(listed) or '(none)'}"
    )


# --------------------------------------------------------------------------- maps


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Min-max scale each map to ``[0, 1]``; a constant (or non-finite) map becomes zeros."""
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    axes = tuple(range(1, maps.ndim))
    low = maps.min(axis=axes, keepdims=True)
    high = maps.max(axis=axes, keepdims=True)
    span = high - low
    # Relative test: float noise on a flat map must not be stretched into a pattern.
    flat = span <= 1e-6 * np.maximum(np.abs(high), np.abs(low))
    scaled = (maps - low) / np.where(flat, 1.0, span)
    return np.clip(np.where(flat, 0.0, scaled), 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- methods


class CamMethod(ABC):
    """One explanation method: turns a batch of model input into raw maps.

    Subclasses (in ``methods.py``, registered with ``registry.register_method``) set
    ``name``, ``options`` (accepted keyword options and their defaults) and
    ``batch_size`` (images per call: bounds memory, and for methods whose result depends
    on the batch, keeps one image per call), and implement :meth:`compute`. One instance exists per (model, method, layer, compiled), built on
    the model's :class:`ModelCache`.
    """

    name: ClassVar[str]
    uses_layer: ClassVar[bool] = True
    batch_size: ClassVar[int] = 16
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, cache: ModelCache, layer: str | None, compiled: bool) -> None:
        self.cache = cache
        self.layer = layer
        self.compiled = compiled

    @classmethod
    def resolve_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The method's defaults updated with ``options``; an unknown option raises TypeError."""
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            accepted = ", ".join(cls.options) or "none"
            raise TypeError(f"{cls.name} got unknown option(s) {unknown}; its options: {accepted}")
        return {**cls.options, **options}

    @abstractmethod
    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        """Raw maps ``(n, h, w)`` (any scale, any grid) for model input ``x``."""
