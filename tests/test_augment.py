"""RandomAffine: one warp per image on the device, identity at inference, under TF and JAX."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from bt_core.training.augment import RandomAffine, affine_matrices, build_augmenter, warp
from bt_core.models import create_model
from bt_core.training.train import black_level, training_model

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32


def square_batch(n: int = 8, top: int = 12, left: int = 6, side: int = 6) -> np.ndarray:
    images = np.zeros((n, SIZE, SIZE, 3), np.float32)
    images[:, top : top + side, left : left + side] = 1.0
    return images


def centre(image: np.ndarray) -> np.ndarray:
    """(row, column) of the bright pixels' centre of mass."""
    weights = np.asarray(image)[..., 0]
    ys, xs = np.mgrid[: weights.shape[0], : weights.shape[1]]
    return np.array([(ys * weights).sum(), (xs * weights).sum()]) / weights.sum()


def matrices(n: int = 1, **values) -> np.ndarray:
    params = {"flip": 0.0, "angle": 0.0, "zoom": 1.0, "shear": 0.0, "shift_x": 0.0, "shift_y": 0.0, **values}
    columns = [np.full(n, params[k], np.float32) for k in ("flip", "angle", "zoom", "shear", "shift_x", "shift_y")]
    return affine_matrices(*columns, SIZE, SIZE)


def test_identity_at_inference_even_with_large_ranges():
    layer = RandomAffine(rotation=40, zoom=0.4, shift=0.3, shear=0.3, flip=True, seed=1)
    images = np.random.default_rng(0).random((4, SIZE, SIZE, 3), dtype=np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)), images)
    assert not np.allclose(keras.ops.convert_to_numpy(layer(images, training=True)), images)


def test_zero_ranges_without_flip_return_the_input():
    layer = RandomAffine(rotation=0, zoom=0, shift=0, shear=0, flip=False, seed=1)
    images = np.random.default_rng(0).random((4, SIZE, SIZE, 3), dtype=np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(images, training=True)), images, atol=1e-6)
    # The warp itself at the identity matrix, not just a shortcut in the layer:
    np.testing.assert_allclose(keras.ops.convert_to_numpy(warp(images, matrices(4))), images, atol=1e-6)


def test_flip_only_mirrors_some_images_and_leaves_the_others():
    layer = RandomAffine(rotation=0, zoom=0, shift=0, shear=0, flip=True, seed=3)
    images = square_batch(32)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    mirrored = [np.allclose(o, images[0, :, ::-1], atol=1e-6) for o in out]
    unchanged = [np.allclose(o, images[0], atol=1e-6) for o in out]
    assert all(m or u for m, u in zip(mirrored, unchanged))
    assert 4 <= sum(mirrored) <= 28  # about half
    np.testing.assert_allclose(keras.ops.convert_to_numpy(warp(images[:1], matrices(flip=1.0))), images[:1, :, ::-1],
                               atol=1e-6)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_a_pure_shift_moves_a_square_by_k_pixels(k):
    images = square_batch(1)
    right = keras.ops.convert_to_numpy(warp(images, matrices(shift_x=float(k))))
    down = keras.ops.convert_to_numpy(warp(images, matrices(shift_y=float(k))))
    np.testing.assert_allclose(centre(right[0]) - centre(images[0]), [0, k], atol=0.05)
    np.testing.assert_allclose(centre(down[0]) - centre(images[0]), [k, 0], atol=0.05)


def test_random_shifts_stay_within_the_range_and_vary():
    shift = 0.1  # at most 3.2 px on 32 px
    layer = RandomAffine(rotation=0, zoom=0, shift=shift, shear=0, flip=False, seed=5)
    images = square_batch(16)
    moves = np.array([centre(o) - centre(images[0]) for o in keras.ops.convert_to_numpy(layer(images, training=True))])
    assert np.abs(moves).max() <= shift * SIZE + 0.05
    assert len({tuple(np.round(m, 1)) for m in moves}) > 8


def test_rotation_zoom_and_shear_move_pixels_about_the_centre():
    images = square_batch(1)
    quarter = keras.ops.convert_to_numpy(warp(images, matrices(angle=np.pi / 2)))
    before, after = centre(images[0]) - 15.5, centre(quarter[0]) - 15.5
    np.testing.assert_allclose(after, [before[1], -before[0]], atol=0.05)  # (dy, dx) -> (dx, -dy)
    zoomed = keras.ops.convert_to_numpy(warp(images, matrices(zoom=1.25)))
    assert zoomed[0, ..., 0].sum() == pytest.approx(images[0, ..., 0].sum() * 1.25**2, rel=0.05)
    np.testing.assert_allclose(centre(zoomed[0]) - 15.5, before * 1.25, atol=0.1)


def test_shape_dtype_fill_and_mixed_precision():
    layer = RandomAffine(shift=0.3, seed=0)
    images = np.zeros((6, SIZE, 24, 3), np.float32)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    assert out.shape == images.shape and out.dtype == np.float32
    # Pixels from outside the image take the per-channel fill (the model-input value of black).
    fill = [-1.0, 0.5, 2.0]
    shifted = keras.ops.convert_to_numpy(warp(np.zeros((1, SIZE, SIZE, 3), np.float32), matrices(shift_x=10.0), fill))
    np.testing.assert_allclose(shifted[0, :, :10], np.broadcast_to(fill, (SIZE, 10, 3)), atol=1e-6)
    np.testing.assert_allclose(shifted[0, :, 11:], 0.0, atol=1e-6)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = build_augmenter(1.0, seed=0)
        out = layer(keras.ops.convert_to_tensor(images, "bfloat16"), training=True)
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_build_augmenter_scales_the_published_recipe_and_serializes():
    assert build_augmenter(0.0) is None
    full, half = build_augmenter(1.0), build_augmenter(0.5)
    assert (full.rotation, full.zoom, full.shift, full.shear, full.flip) == (10.0, 0.1, 0.05, 0.05, True)
    assert (half.rotation, half.zoom, half.shift, half.shear) == (5.0, 0.05, 0.025, 0.025)
    with pytest.raises(ValueError):
        build_augmenter(-1)
    assert keras.saving.get_registered_object("bt_core>RandomAffine") is RandomAffine
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(half))
    assert isinstance(again, RandomAffine) and again.get_config()["shift"] == 0.025


def test_training_wrapper_augments_only_in_training_and_shares_weights():
    model = create_model("simple_cnn", 4, input_size=SIZE)
    wrapper = training_model(model, build_augmenter(2.0, fill_value=black_level("rescale"), seed=0))
    images = np.random.default_rng(1).random((8, SIZE, SIZE, 3), dtype=np.float32)
    plain = keras.ops.convert_to_numpy(model(images))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(wrapper(images, training=False)), plain, atol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(wrapper(images, training=True)), plain, atol=1e-4)
    assert {id(w) for w in model.weights} == {id(w) for w in wrapper.weights}
    assert not any(isinstance(layer, RandomAffine) for layer in model.layers)
    assert training_model(model, None) is model
    assert black_level("tf") == [-1.0, -1.0, -1.0] and black_level("rescale") == [0.0, 0.0, 0.0]


JAX_SCRIPT = r"""
import sys
import numpy as np, keras
from bt_core.training.augment import RandomAffine, affine_matrices, warp
from bt_core.data.dataset import SplitArrays
from bt_core.models import create_model
from bt_core.training.augment import build_augmenter
from bt_core.training.batches import ImageBatches
from bt_core.training.train import black_level, training_model
assert keras.backend.backend() == "jax"
images = np.zeros((2, 32, 32, 3), np.float32); images[:, 12:18, 6:12] = 1.0
cols = [np.full(2, v, np.float32) for v in (1.0, 0.3, 1.1, 0.05, 2.0, -1.5)]
np.save(sys.argv[1], keras.ops.convert_to_numpy(warp(images, affine_matrices(*cols, 32, 32))))
layer = RandomAffine(rotation=0, zoom=0, shift=0, shear=0, flip=False)
assert np.allclose(keras.ops.convert_to_numpy(layer(images, training=True)), images, atol=1e-6)
assert np.array_equal(keras.ops.convert_to_numpy(RandomAffine(seed=1)(images, training=False)), images)
keras.utils.set_random_seed(0)
model = create_model("simple_cnn", 2, input_size=32)
wrapper = training_model(model, build_augmenter(1.0, fill_value=black_level("rescale"), seed=0))
wrapper.compile("adam", "sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
arrays = SplitArrays(rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8), rng.integers(0, 2, 40), np.arange(40).astype(str))
before = [w.copy() for w in model.get_weights()]
wrapper.fit(ImageBatches(arrays, "rescale", 8, shuffle=True, class_weights=np.ones(2)), epochs=1, verbose=0)
assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
print("JAX OK")
"""


@pytest.mark.slow
def test_the_layer_works_under_jax_and_warps_like_tensorflow(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = tmp_path / "jax.npy"
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(out)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "JAX OK" in done.stdout, done.stderr[-3000:]
    images = np.zeros((2, 32, 32, 3), np.float32)
    images[:, 12:18, 6:12] = 1.0
    cols = [np.full(2, v, np.float32) for v in (1.0, 0.3, 1.1, 0.05, 2.0, -1.5)]
    tensorflow_result = keras.ops.convert_to_numpy(warp(images, affine_matrices(*cols, 32, 32)))
    np.testing.assert_allclose(np.load(out), tensorflow_result, atol=1e-4)
