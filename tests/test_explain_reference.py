"""The compiled explanation methods against references: a fresh NumPy / TensorFlow
implementation of each method's formula on a tiny model (written here from the papers'
and tf-keras-vis' definitions, sharing no code with bt_core.explain), and tf-keras-vis
itself on registry models (the eager path, ``compiled=False``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from bt_core.data.preprocess import preprocess_batch
from bt_core.explain import explain, normalize_maps
from bt_core.models import create_model, get_spec
from bt_core.regions import resize_maps

SIDE, CLASSES = 12, 3
GRADIENT_CAMS = ["gradcam", "gradcam++", "layercam"]


def _tiny_model() -> keras.Model:
    """A seeded conv -> conv -> flatten -> dense softmax model: flatten, not global pooling, so
    the gradient varies over the map (under pooling it is constant and every Grad-CAM++ alpha
    the same, which would let a wrong alpha pass)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def tiny():
    """The tiny model, its images and their classes."""
    images = np.random.default_rng(2).uniform(0, 1, (3, SIDE, SIDE, 3)).astype(np.float32)
    return _tiny_model(), images, np.array([0, 1, 2])


def _logits_model(model: keras.Model) -> keras.Model:
    """The model with a linear output: the softmax layer's input."""
    dense = model.layers[-1]
    logits = layers.Dense(CLASSES, name="linear")
    out = logits(dense.input)
    linear = keras.Model(model.input, out)
    logits.set_weights(dense.get_weights())
    return linear


def _activations_and_gradients(model, images, classes):
    """A and d(logit of the class)/dA at last_conv, float64, by one GradientTape."""
    linear = _logits_model(model)
    both = keras.Model(linear.input, [linear.get_layer("last_conv").output, linear.output])
    with tf.GradientTape() as tape:
        activations, logits = both(tf.constant(images))
        score = tf.reduce_sum(logits * tf.one_hot(classes, CLASSES))
    gradients = tape.gradient(score, activations)
    return (activations.numpy().astype(np.float64), gradients.numpy().astype(np.float64),
            logits.numpy().astype(np.float64))


def _reference_cam(method: str, activations, gradients, logits, classes) -> np.ndarray:
    """The method's map from its definition (Grad-CAM++ with tf-keras-vis' exp(S) factors)."""
    if method == "gradcam":
        weights = gradients.mean(axis=(1, 2), keepdims=True)
        return np.maximum((activations * weights).sum(-1), 0)
    if method == "layercam":
        return np.maximum((activations * np.maximum(gradients, 0)).sum(-1), 0)
    exp_score = np.exp(logits[np.arange(len(classes)), classes])[:, None, None, None]
    first, second, third = exp_score * gradients, exp_score * gradients**2, exp_score * gradients**3
    denominator = 2 * second + third * activations.sum(axis=(1, 2), keepdims=True)
    alphas = second / np.where(second != 0, denominator, 1)
    alphas /= np.where(alphas.sum(axis=(1, 2), keepdims=True) != 0, alphas.sum(axis=(1, 2), keepdims=True), 1)
    weights = (np.maximum(first, 0) * alphas).sum(axis=(1, 2), keepdims=True)
    return np.maximum((activations * weights).sum(-1), 0)


def _scaled(raw: np.ndarray) -> np.ndarray:
    return normalize_maps(resize_maps(raw.astype(np.float32), (SIDE, SIDE)))


@pytest.mark.parametrize("method", GRADIENT_CAMS)
def test_gradient_cams_match_a_fresh_reference(tiny, method):
    model, images, classes = tiny
    activations, gradients, logits = _activations_and_gradients(model, images, classes)
    assert np.ptp(gradients, axis=(1, 2)).max() > 0  # the gradient varies over the map
    reference = _scaled(_reference_cam(method, activations, gradients, logits, classes))
    assert reference.max() > 0  # the reference has signal: the comparison can fail
    ours = explain(model, images, method, class_index=classes, layer="last_conv")
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def _bilinear_aligned(channel_map: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling with aligned corners (scipy zoom order=1), by hand."""
    steps = np.linspace(0, channel_map.shape[0] - 1, size)
    low = np.floor(steps).astype(int)
    high = np.minimum(low + 1, channel_map.shape[0] - 1)
    frac = steps - low
    rows = channel_map[low] * (1 - frac)[:, None] + channel_map[high] * frac[:, None]
    return rows[:, low] * (1 - frac)[None, :] + rows[:, high] * frac[None, :]


def test_scorecam_matches_a_fresh_reference(tiny):
    _model, images, classes = tiny
    model = _tiny_model()
    conv = model.get_layer("last_conv")
    kernel, bias = conv.get_weights()
    bias[0] = -100.0  # a dead channel: its map is constant, which Score-CAM serves with one pass
    conv.set_weights([kernel, bias])
    activations, _gradients, _logits = _activations_and_gradients(model, images, classes)
    assert (activations[..., 0] == 0).all() and (activations[..., 1:].max(axis=(1, 2)) > 0).all()
    linear = _logits_model(model)
    raw = []
    for image, activation, target in zip(images, activations, classes):
        weights = []
        for channel in range(activation.shape[-1]):
            up = _bilinear_aligned(activation[..., channel], SIDE)
            mask = (up - up.min()) / (up.max() - up.min() + 1e-7)
            logits = linear(tf.constant((image * mask[..., None])[None], tf.float32)).numpy()[0].astype(np.float64)
            weights.append(np.exp(logits[target]) / np.exp(logits).sum())
        raw.append(np.maximum((activation * np.array(weights)).sum(-1), 0))
    reference = _scaled(np.stack(raw))
    assert reference.max() > 0
    ours = explain(model, images, "scorecam", class_index=classes, layer="last_conv")
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_smoothgrad_matches_a_fresh_reference(tiny):
    model, images, classes = tiny
    linear = _logits_model(model)
    samples, noise, seed = 4, 0.2, 11
    raw = []
    for image, target in zip(images, classes):
        draws = np.random.RandomState(seed).normal(0, noise * (image.max() - image.min()), (samples, *image.shape))
        total = np.zeros(image.shape)
        for copy in (image + draws.astype(np.float32)):
            x = tf.constant(copy[None])
            with tf.GradientTape() as tape:
                tape.watch(x)
                score = linear(x)[0, target]
            total += np.abs(tape.gradient(score, x).numpy()[0])
        raw.append((total / samples).max(axis=-1))
    reference = normalize_maps(np.stack(raw))
    ours = explain(model, images, "smoothgrad", class_index=classes, samples=samples, noise=noise, seed=seed)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


@pytest.mark.parametrize("name", ["simple_cnn", "cnn_bn"])
def test_compiled_methods_match_tf_keras_vis_on_registry_models(name):
    """Every compiled method against tf-keras-vis run eagerly (compiled=False)."""
    spec = get_spec(name)
    model = create_model(name, 4, input_size=32)
    images = np.random.default_rng(6).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    x = preprocess_batch(images, spec.preprocessing)
    options = {"smoothgrad": {"samples": 4}}
    compared = 0
    for method in [*GRADIENT_CAMS, "scorecam", "smoothgrad"]:  # faster_scorecam: tests/test_explain.py
        kwargs = dict(class_index=1, layer=spec.last_conv_layer, **options.get(method, {}))
        # Ours on the three images in one batch, tf-keras-vis on each alone: a map must not
        # depend on its batch neighbours (SmoothGrad's noise is seeded per image: one image).
        count = 1 if method == "smoothgrad" else len(x)
        ours = explain(model, x[:count], method, **kwargs)
        for index in range(count):
            reference = explain(model, x[index:index + 1], method, compiled=False, **kwargs)[0]
            if reference.max() == 0:  # no positive evidence: both must say so
                assert ours[index].max() == 0, method
                continue
            compared += 1
            assert np.corrcoef(ours[index].ravel(), reference.ravel())[0, 1] > 0.999, method
            np.testing.assert_allclose(ours[index], reference, atol=1e-5, err_msg=f"{method}, image {index}")
    assert compared >= 10  # the maps had signal: the comparisons could fail
