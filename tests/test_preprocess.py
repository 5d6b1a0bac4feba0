"""preprocess_batch must reproduce keras.applications' own preprocess_input."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

from bt_core.models import get_spec
from bt_core.data.preprocess import PREPROCESS_MODES, preprocess_batch

# Each backbone's own Keras preprocessing function, the reference for its spec's mode.
KERAS_PREPROCESS = {
    "resnet50": keras.applications.resnet50.preprocess_input,
    "resnet101": keras.applications.resnet.preprocess_input,
    "resnet152": keras.applications.resnet.preprocess_input,
    "vgg16": keras.applications.vgg16.preprocess_input,
    "densenet121": keras.applications.densenet.preprocess_input,
    "mobilenetv2": keras.applications.mobilenet_v2.preprocess_input,
    "efficientnetb0": keras.applications.efficientnet.preprocess_input,
}


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(4, 16, 12, 3), dtype=np.uint8)


def test_modes_tuple():
    assert set(PREPROCESS_MODES) == {"rescale", "caffe", "torch", "tf", "raw"}


@pytest.mark.parametrize("name", sorted(KERAS_PREPROCESS))
def test_backbone_mode_matches_keras_preprocess_input(images, name):
    expected = KERAS_PREPROCESS[name](images.astype(np.float32))
    actual = preprocess_batch(images, get_spec(name).preprocessing)
    assert actual.dtype == np.float32
    assert actual.shape == images.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_mode_matches_keras_imagenet_utils(images, mode):
    expected = keras.applications.imagenet_utils.preprocess_input(
        images.astype(np.float32), mode=mode
    )
    np.testing.assert_allclose(preprocess_batch(images, mode), expected, rtol=1e-5, atol=1e-4)


def test_rescale_is_unit_range(images):
    out = preprocess_batch(images, "rescale")
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out * 255.0, images, atol=1e-3)
    extremes = np.zeros((1, 1, 2, 3), dtype=np.uint8)
    extremes[0, 0, 1] = 255
    full = preprocess_batch(extremes, "rescale")
    assert full.min() == 0.0 and full.max() == 1.0


def test_raw_is_float_copy(images):
    out = preprocess_batch(images, "raw")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("mode", PREPROCESS_MODES)
def test_input_is_not_modified(images, mode):
    before = images.copy()
    preprocess_batch(images, mode)
    np.testing.assert_array_equal(images, before)


def test_unknown_mode_names_valid_modes(images):
    with pytest.raises(ValueError) as excinfo:
        preprocess_batch(images, "imagenet")
    assert all(mode in str(excinfo.value) for mode in PREPROCESS_MODES)


def test_rejects_non_uint8_and_bad_shapes(images):
    with pytest.raises(TypeError, match="uint8"):
        preprocess_batch(images.astype(np.float32), "rescale")
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        preprocess_batch(images[0], "rescale")
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        preprocess_batch(images[..., :1], "rescale")


def test_preprocess_does_not_import_keras():
    code = "import sys, bt_core.data.preprocess; sys.exit('keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
