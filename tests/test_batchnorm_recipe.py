"""Batch-norm models trained from scratch: inference must use the statistics of clean images.

The collapse this guards against (docs/performance.md, "Batch normalisation from scratch"):
training accuracy climbs while validation, in inference mode, falls onto one class, because
Keras' moving averages describe augmented images under dropout of older weights.
"""

import keras
import numpy as np

from bt_core.data.dataset import load_dataset
from bt_core.data.preprocess import preprocess_batch
from bt_core.models import batchnorm_layers, create_model, get_spec, recompute_batchnorm_statistics
from bt_core.training.config import seed_everything
from bt_core.training.train import train_model
from imagefolders import make_pool


def _dropout_free_batch_forward(model, images):
    """The model on one batch with batch statistics (training-mode BN) and dropout off."""
    rates = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            rates[layer.name], layer.rate = layer.rate, 0.0
    momenta = {layer.name: layer.momentum for layer in batchnorm_layers(model)}
    saved = model.get_weights()
    try:
        return np.asarray(model(images, training=True))
    finally:
        model.set_weights(saved)
        for layer in model.layers:
            if layer.name in rates:
                layer.rate = rates[layer.name]
        assert {layer.name: layer.momentum for layer in batchnorm_layers(model)} == momenta


def test_recomputed_statistics_make_inference_equal_batch_statistics_on_that_batch():
    seed_everything(0)
    model = create_model("cnn_bn", 4, input_size=32)
    images = np.random.default_rng(0).random((24, 32, 32, 3), dtype=np.float32)
    before = np.asarray(model(images, training=False))
    expected = _dropout_free_batch_forward(model, images)
    assert not np.allclose(before, expected, atol=1e-3)  # fresh statistics (0, 1) are wrong
    dropout_rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert recompute_batchnorm_statistics(model, [images]) == 1
    np.testing.assert_allclose(np.asarray(model(images, training=False)), expected, atol=2e-4)
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == dropout_rates
    assert {layer.momentum for layer in batchnorm_layers(model)} == {0.99}


def test_two_batches_give_the_mean_of_their_statistics_and_frozen_layers_keep_theirs():
    inputs = keras.Input((4,))
    frozen = keras.layers.BatchNormalization(name="frozen")
    frozen.trainable = False
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="free")(frozen(inputs)))
    rng = np.random.default_rng(1)
    first, second = rng.normal(2.0, 1.0, (50, 4)).astype("float32"), rng.normal(-1.0, 3.0, (30, 4)).astype("float32")
    assert recompute_batchnorm_statistics(model, [first, second]) == 2
    free = model.get_layer("free")
    scale = 1 / np.sqrt(1 + frozen.epsilon)  # the frozen layer's fresh statistics: mean 0, variance 1
    np.testing.assert_allclose(free.moving_mean.numpy(), scale * (first.mean(0) + second.mean(0)) / 2, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(free.moving_variance.numpy(), scale**2 * (first.var(0) + second.var(0)) / 2, rtol=1e-4)
    np.testing.assert_array_equal(model.get_layer("frozen").moving_mean.numpy(), np.zeros(4))
    assert recompute_batchnorm_statistics(create_model("simple_cnn", 4, input_size=32), [first]) == 0


def test_statistics_are_measured_again_only_from_scratch_on_one_device_with_batch_norm():
    """The decision per phase: cnn_bn from scratch yes; a pretrained fine-tune (its ImageNet
    statistics), data-parallel replicas, a model without batch norm or a recipe with 0 images: no."""
    import dataclasses

    from bt_core.training.callbacks import recomputes_batchnorm

    cnn_bn, spec = create_model("cnn_bn", 4, input_size=32), get_spec("cnn_bn")
    assert spec.recipe.recompute_batchnorm_images >= 128
    assert recomputes_batchnorm(cnn_bn, spec, devices=1, from_scratch=True)
    assert not recomputes_batchnorm(cnn_bn, spec, devices=1, from_scratch=False)
    assert not recomputes_batchnorm(cnn_bn, spec, devices=2, from_scratch=True)
    off = dataclasses.replace(spec, recipe=dataclasses.replace(spec.recipe, recompute_batchnorm_images=0))
    assert not recomputes_batchnorm(cnn_bn, off, devices=1, from_scratch=True)
    simple = create_model("simple_cnn", 4, input_size=32)
    assert not recomputes_batchnorm(simple, get_spec("simple_cnn"), devices=1, from_scratch=True)


def test_a_briefly_trained_cnn_bn_predicts_in_inference_mode_as_with_batch_statistics(tmp_path):
    """After two epochs at a high learning rate, inference on training images agrees with the
    batch-statistics forward pass; with Keras' moving averages alone it did not."""
    dataset = load_dataset(make_pool(tmp_path, per_class=24, size=32), image_size=32, seed=0)
    train, val = dataset.arrays["train"], dataset.arrays["val"]
    spec = get_spec("cnn_bn")
    seed_everything(0)
    model = create_model("cnn_bn", 4, input_size=32)
    train_model(model, spec, train, val, epochs=2, num_classes=4, batch_size=16, seed=0)
    images = preprocess_batch(train.images, spec.preprocessing)
    inference = np.asarray(model(images, training=False)).argmax(1)
    batch_statistics = _dropout_free_batch_forward(model, images).argmax(1)
    agreement = (inference == batch_statistics).mean()
    assert agreement >= 0.9, f"inference agrees with batch statistics on {agreement:.2f} of the training images"
