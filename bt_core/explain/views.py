"""The TensorFlow side of explaining a model: traced views of it, built once per model.

Everything tf-keras-vis needs per model is built on first use and cached
(:class:`ModelCache`): the linear-output clone, the compiled views and the method
instances. See :class:`CompiledPart` for why the views are compiled. Nothing here knows
about a particular method; methods (``bt_core.explain.methods``) ask for the views.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

if TYPE_CHECKING:  # the base class of methods; imported for annotations only
    from bt_core.explain.method import CamMethod


def check_explainable(model: keras.Model) -> None:
    """Raise unless ``model`` can be explained: TensorFlow backend, one input, one output."""
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

    def gradient(self, x: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
        """The traced vector-Jacobian product: d(sum(part(x) * upstream)) / dx, one forward
        and one backward pass (with a one-hot ``upstream``: each image's class score)."""
        return self._vjp(x, upstream)

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
        check_explainable(model)
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
        """The one instance of ``method_class`` for this model, layer and path."""
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
