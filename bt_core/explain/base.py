"""Plumbing shared by every explanation method (pytorch-grad-cam's ``base_cam`` idea).

:func:`explain` does everything that is not specific to one method: it turns the images
into model input, picks the target class of every image, resolves the layer, runs the
method in bounded batches, resizes each map to the input size with OpenCV and scales it
to ``[0, 1]``. A method (``bt_core.explain.methods``) only turns one batch of model input
and class indices into raw maps of any size.

Everything tf-keras-vis needs per model is built once and cached (:class:`ModelCache`):
the linear-output clone, the compiled views and the tf-keras-vis objects. See
:class:`CompiledPart` for why the views are compiled.
"""

from __future__ import annotations

import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Sequence

import cv2
import keras
import numpy as np
import tensorflow as tf
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

from bt_core.data.preprocess import preprocess_batch

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
    _check_model(model)
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


def _check_model(model: keras.Model) -> None:
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "bt_core.explain needs the TensorFlow Keras backend (tf-keras-vis uses "
            f"tf.GradientTape); this process runs {keras.backend.backend()!r}: set "
            "KERAS_BACKEND=tensorflow for the process that explains"
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"explain supports single-input, single-output classifiers; model "
            f"{model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )


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
    :func:`explain`.
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
    """``class_index`` of :func:`explain` (None, int or one int per image) as an array."""
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


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(N, h, w)`` maps to ``size = (H, W)`` (bilinear, OpenCV)."""
    height, width = int(size[0]), int(size[1])
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if maps.shape[1:] == (height, width):
        return maps
    # cv2.resize takes (width, height).
    return np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in maps])


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

    Subclasses (in ``methods.py``) set ``name``, ``options`` (accepted keyword options and
    their defaults) and ``batch_size`` (images per call: bounds memory, and for methods
    whose result depends on the batch, keeps one image per call), and implement
    :meth:`compute`. One instance exists per (model, method, layer, compiled), built on
    the model's :class:`ModelCache`.
    """

    name: ClassVar[str]
    uses_layer: ClassVar[bool] = True
    batch_size: ClassVar[int] = 16
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, cache: "ModelCache", layer: str | None, compiled: bool) -> None:
        self.cache = cache
        self.layer = layer
        self.compiled = compiled

    @classmethod
    def resolve_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            accepted = ", ".join(cls.options) or "none"
            raise TypeError(f"{cls.name} got unknown option(s) {unknown}; its options: {accepted}")
        return {**cls.options, **options}

    @abstractmethod
    def compute(self, x: np.ndarray, classes: np.ndarray, **options: Any) -> np.ndarray:
        """Raw maps ``(n, h, w)`` (any scale, any grid) for model input ``x``."""


# --------------------------------------------------------------------------- model cache


class CompiledPart(keras.layers.Layer):
    """Runs a sub-model as one traced ``tf.function`` inside a view tf-keras-vis can use.

    tf-keras-vis calls the model eagerly, which on CPU is the bulk of its cost (ResNet50
    at 224 px on 2 cores: ~0.5-1 s per Grad-CAM eagerly, ~0.1 s traced). Gradients come via a
    custom gradient: the traced vector-Jacobian product when ``input_gradient`` (needed by
    SmoothGrad), else none, so Grad-CAM never back-propagates through the backbone (which
    the tape otherwise would, even though only feature gradients are asked for).
    """

    def __init__(self, part: keras.Model, input_gradient: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.part = part
        self.input_gradient = input_gradient
        input_spec = tf.TensorSpec((None, *part.inputs[0].shape[1:]), tf.float32)
        output_spec = tf.TensorSpec((None, *part.outputs[0].shape[1:]), tf.float32)
        self.forward = tf.function(self._forward, input_signature=[input_spec])
        self._vjp = tf.function(self._vector_jacobian, input_signature=[input_spec, output_spec])
        self.built = True

    def _forward(self, x):
        return tf.cast(self.part(x, training=False), tf.float32)

    def _vector_jacobian(self, x, upstream):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            y = self._forward(x)
        return tape.gradient(y, x, output_gradients=upstream)

    def call(self, x):
        @tf.custom_gradient
        def run(x):
            def gradient(upstream, variables=None):
                dx = self._vjp(x, upstream) if self.input_gradient else None
                # Weights are never explained: no gradient for them.
                return dx, [None] * len(variables or ())

            return self.forward(x), gradient

        return run(x)

    def compute_output_spec(self, x):
        return keras.KerasTensor((None, *self.part.outputs[0].shape[1:]), dtype="float32")


def _list_io_model(inputs, outputs, name: str) -> keras.Model:
    # List-structured inputs: tf-keras-vis always calls the model with a list, which a
    # single-input Keras 3 model accepts but warns about on every call.
    return keras.Model(inputs=list(inputs), outputs=list(outputs), name=name)


def _silent_predict(model: keras.Model) -> keras.Model:
    # Score-CAM calls model.predict() without verbose=0: one progress bar per image.
    predict = model.predict
    model.predict = lambda *args, **kwargs: predict(*args, **{"verbose": 0, **kwargs})
    return model


class ModelCache:
    """What explaining one model needs, built on first use and kept for the model's life.

    ``linear``: a clone whose output activation is linear (tf-keras-vis' ReplaceToLinear;
    gradients of a softmax output saturate, and Score-CAM applies softmax itself). It is a
    copy: a model trained further after its first explanation needs :func:`clear_cache`.
    """

    def __init__(self, model: keras.Model) -> None:
        _check_model(model)
        self.name = model.name
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        # Re-wrapped as Functional: ReplaceToLinear reads `output_names`, which a Keras 3
        # Sequential model lacks.
        self.linear = keras.Model(clone.inputs[0], clone.outputs[0], name=model.name)
        ReplaceToLinear()(self.linear)
        self._whole: CompiledPart | None = None
        self._cam_views: dict[tuple[str, bool], tuple[keras.Model, Any]] = {}
        self._saliency_models: dict[bool, keras.Model] = {}
        self._methods: dict[tuple[str, str | None, bool], CamMethod] = {}
        self._functions: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def whole(self) -> CompiledPart:
        """The full linear model as one compiled part, with input gradients."""
        if self._whole is None:
            self._whole = CompiledPart(self.linear, input_gradient=True, name="whole")
        return self._whole

    def predicted_classes(self, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
        # Argmax of the logits is the argmax of the softmax.
        forward = self.whole().forward
        classes = [
            forward(tf.constant(x[start : start + batch_size])).numpy().argmax(axis=-1)
            for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(classes).astype(np.int64) if classes else np.zeros(0, np.int64)

    def saliency_model(self, compiled: bool) -> keras.Model:
        """A model for gradients with respect to the input."""
        with self._lock:
            if compiled not in self._saliency_models:
                name = f"{self.name}_saliency"
                if compiled:
                    inputs = keras.Input(self.linear.inputs[0].shape[1:])
                    model = _list_io_model([inputs], [self.whole()(inputs)], name)
                else:
                    model = _list_io_model(self.linear.inputs, self.linear.outputs, name)
                self._saliency_models[compiled] = _silent_predict(model)
            return self._saliency_models[compiled]

    def cam_model(self, layer: str, compiled: bool) -> tuple[keras.Model, Any]:
        """``(model, penultimate_layer)`` to give a tf-keras-vis CAM for ``layer``.

        Compiled: input -> [features] -> [head] as two compiled parts. Falls back to the
        eager linear clone when the head is not a function of ``layer`` alone (a layer
        inside a residual block, bypassed by the skip connection).
        """
        with self._lock:
            key = (layer, compiled)
            if key not in self._cam_views:
                self._cam_views[key] = self._build_cam_model(layer, compiled)
            return self._cam_views[key]

    def _build_cam_model(self, layer: str, compiled: bool) -> tuple[keras.Model, Any]:
        features = self.linear.get_layer(layer).output
        if compiled:
            try:
                head = keras.Model(features, self.linear.outputs[0])
            except ValueError:  # "not connected": the head also needs earlier tensors
                head = None
            if head is not None:
                body = keras.Model(self.linear.inputs[0], features)
                inputs = keras.Input(self.linear.inputs[0].shape[1:])
                # CAMs need d(score)/d(features), never d(score)/d(input).
                feature_part = CompiledPart(body, input_gradient=False, name="features")
                outputs = CompiledPart(head, input_gradient=True, name="head")(feature_part(inputs))
                view = _list_io_model([inputs], [outputs], f"{self.name}_{layer}_cam")
                return _silent_predict(view), feature_part
        view = _list_io_model(self.linear.inputs, self.linear.outputs, f"{self.name}_cam")
        return _silent_predict(view), layer

    def feature_function(self, layer: str) -> Any:
        """A traced function: model input -> ``layer``'s output (float32), cached."""
        with self._lock:
            key = ("features", layer)
            if key not in self._functions:
                body = keras.Model(self.linear.inputs[0], self.linear.get_layer(layer).output)
                self._functions[key] = CompiledPart(body, input_gradient=False, name="features").forward
            return self._functions[key]

    def channels(self, layer: str) -> int:
        return int(self.linear.get_layer(layer).output.shape[-1])

    def method(self, method_class: type[CamMethod], layer: str | None, compiled: bool) -> CamMethod:
        key = (method_class.name, layer, compiled)
        if key not in self._methods:
            self._methods[key] = method_class(self, layer, compiled)
        return self._methods[key]


_CACHES: "weakref.WeakKeyDictionary[keras.Model, ModelCache]" = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def cache_for(model: keras.Model) -> ModelCache:
    """The model's :class:`ModelCache`, built on first use; dropped with the model."""
    with _CACHES_LOCK:
        cache = _CACHES.get(model)
        if cache is None:
            cache = _CACHES[model] = ModelCache(model)
        return cache


def clear_cache(model: keras.Model | None = None) -> None:
    """Forget what was built for ``model`` (all models when None), e.g. after retraining."""
    with _CACHES_LOCK:
        if model is None:
            _CACHES.clear()
        else:
            _CACHES.pop(model, None)


# --------------------------------------------------------------------------- entry points


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
    ``method``: one of :func:`~bt_core.explain.methods.list_methods`.
    ``class_index``: None (each image's predicted class), an int (that class for all) or
    one int per image (e.g. the true labels, see :func:`target_classes`).
    ``layer``: layer name; None picks the last conv-like layer (:func:`resolve_layer`).
    Ignored by methods that work on the input (``smoothgrad``).
    ``batch_size``: images per tf-keras-vis call (default per method: 16 for gradient
    CAMs, 1 for Score-CAM and SmoothGrad, whose result or memory depends on the batch).
    ``compiled``: run the model as traced functions (same maps; on CPU the Grad-CAM
    family is ~4-10x faster, SmoothGrad ~2x); False runs plain tf-keras-vis eagerly. ``options``: per method, e.g. ``max_N`` for
    ``faster_scorecam``, ``samples``/``noise``/``seed`` for ``smoothgrad``.

    Maps are resized to the input size and min-max scaled per image; a map with no signal
    (constant, e.g. a class with no positive evidence) is all zeros.
    """
    from bt_core.explain.methods import get_method  # methods.py subclasses this module

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


def explain_spec(
    model: keras.Model,
    spec: Any,
    images: Any,
    method: str = "gradcam",
    class_index: int | Sequence[int] | np.ndarray | None = None,
    **options: Any,
) -> np.ndarray:
    """:func:`explain` at the layer and preprocessing a spec names.

    ``spec``: a registry name, a :class:`~bt_core.models.ModelSpec`, or a manifest model
    entry (mapping with ``last_conv_layer`` and ``preprocessing``). uint8 images are
    preprocessed with the spec's mode; float images are taken as model input.
    """
    if isinstance(spec, str):
        from bt_core.models import get_spec

        spec = get_spec(spec)
    if isinstance(spec, Mapping):
        layer, mode = spec["last_conv_layer"], spec["preprocessing"]
    else:
        layer, mode = spec.last_conv_layer, spec.preprocessing
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
    backbone's views takes seconds: DenseNet121 about 6 s on 2 CPU cores)."""
    size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    blank = np.zeros((1, *size, 3), dtype=np.uint8)
    for method in methods:
        explain_spec(model, spec, blank, method, class_index=0)
