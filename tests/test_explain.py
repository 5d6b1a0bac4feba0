"""bt_core.explain: known-answer tests on a model that can only see one quadrant.

The quadrant model crops its input to the top-right quadrant (and zero-pads it back), so
its decision depends on nothing else; its weights are set by hand so that a bright blob
there flips it to class 1. Every image also has equally bright distractor blobs in the
other three quadrants: a map that follows image brightness instead of the model fails.
The input is not square (32 x 48), so a swapped height/width or a transposed map fails.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
from keras import layers

from bt_core.explain import (
    conv_layer_names,
    draw_box,
    draw_contour,
    explain,
    explain_spec,
    list_methods,
    normalize_maps,
    overlay,
    resolve_layer,
    target_classes,
)
from bt_core.models import create_model, get_spec, list_models
from bt_core.data.preprocess import preprocess_batch

HEIGHT, WIDTH = 32, 48
BLOB = 5
METHODS = ["gradcam", "gradcam++", "layercam", "scorecam", "faster_scorecam", "smoothgrad"]
MIN_QUADRANT_MASS = 0.6
# Few SmoothGrad samples keep the suite fast; the known answer does not need more.
FAST_OPTIONS = {"smoothgrad": {"samples": 5}}


def _quadrant_model() -> keras.Model:
    inputs = keras.Input((HEIGHT, WIDTH, 3), name="image")
    x = layers.Cropping2D(((0, HEIGHT // 2), (WIDTH // 2, 0)), name="keep_top_right")(inputs)
    x = layers.ZeroPadding2D(((0, HEIGHT // 2), (WIDTH // 2, 0)), name="pad_back")(x)
    # No biases: the zero-padded quadrants stay exactly zero through the convolutions.
    x = layers.Conv2D(8, 3, padding="same", activation="relu", use_bias=False, name="conv1")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", use_bias=False, name="last_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(2, name="logits")(x)
    outputs = layers.Activation("softmax", name="softmax")(x)
    model = keras.Model(inputs, outputs, name="quadrant")
    rng = np.random.default_rng(0)
    # Positive filters: every feature grows with the brightness the model sees.
    conv1_kernel = rng.uniform(0, 1, (3, 3, 3, 8)).astype("float32") / 27
    last_kernel = rng.uniform(0, 1, (3, 3, 8, 16)).astype("float32") / 72
    model.get_layer("conv1").set_weights([conv1_kernel])
    model.get_layer("last_conv").set_weights([last_kernel])
    return model


def _image(rng: np.random.Generator, blob_top_right: bool) -> np.ndarray:
    image = rng.uniform(0.0, 0.1, (HEIGHT, WIDTH, 3)).astype("float32")
    half_h, half_w = HEIGHT // 2, WIDTH // 2
    corners = [(0, 0), (half_h, 0), (half_h, half_w)]  # top-left, bottom-left, bottom-right
    if blob_top_right:
        corners.append((0, half_w))
    for top, left in corners:
        row = top + rng.integers(0, half_h - BLOB)
        col = left + rng.integers(0, half_w - BLOB)
        image[row : row + BLOB, col : col + BLOB] = 1.0
    return image


@pytest.fixture(scope="module")
def quadrant():
    """(model, images with a top-right blob, images without one)."""
    model = _quadrant_model()
    rng = np.random.default_rng(1)
    positives = np.stack([_image(rng, True) for _ in range(4)])
    negatives = np.stack([_image(rng, False) for _ in range(4)])
    # Class 1 logit = mean feature minus the midpoint between the two kinds of image.
    features = keras.Model(model.input, model.get_layer("gap").output)
    low = features.predict(negatives, verbose=0).mean(axis=1).max()
    high = features.predict(positives, verbose=0).mean(axis=1).min()
    assert high > low
    middle, scale, channels = (low + high) / 2, 50.0 / (high - low), 16
    kernel = np.stack([-np.ones(channels), np.ones(channels)], axis=1) * scale / channels
    bias = np.array([middle * scale, -middle * scale])
    model.get_layer("logits").set_weights([kernel.astype("float32"), bias.astype("float32")])
    return model, positives, negatives


def _quadrant_mass(maps: np.ndarray) -> np.ndarray:
    return maps[:, : HEIGHT // 2, WIDTH // 2 :].sum(axis=(1, 2)) / maps.sum(axis=(1, 2))


def _assert_valid_maps(maps: np.ndarray, n: int, size=(HEIGHT, WIDTH)) -> None:
    assert maps.dtype == np.float32
    assert maps.shape == (n, *size)
    assert np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0


def test_all_methods_are_registered():
    assert list_methods() == METHODS


def test_the_quadrant_model_decides_on_its_quadrant_only(quadrant):
    model, positives, negatives = quadrant
    assert (model.predict(positives, verbose=0).argmax(axis=1) == 1).all()
    assert (model.predict(negatives, verbose=0).argmax(axis=1) == 0).all()
    # A brightness map (what a broken method might return) is NOT concentrated there:
    # the known-answer test below can fail.
    brightness = positives.mean(axis=-1)
    assert (_quadrant_mass(brightness) < MIN_QUADRANT_MASS).all()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_points_at_the_only_quadrant_the_model_sees(quadrant, method):
    model, positives, _ = quadrant
    maps = explain(model, positives, method, class_index=1, **FAST_OPTIONS.get(method, {}))
    _assert_valid_maps(maps, len(positives))
    assert (_quadrant_mass(maps) > MIN_QUADRANT_MASS).all(), _quadrant_mass(maps)
    peaks = [np.unravel_index(m.argmax(), m.shape) for m in maps]
    assert all(row < HEIGHT // 2 and col >= WIDTH // 2 for row, col in peaks), peaks


@pytest.mark.parametrize("method", METHODS)
def test_maps_survive_a_save_and_load_round_trip(quadrant, method, tmp_path):
    model, positives, _ = quadrant
    options = FAST_OPTIONS.get(method, {})
    before = explain(model, positives[:2], method, **options)
    path = tmp_path / "quadrant.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    after = explain(loaded, positives[:2], method, **options)
    np.testing.assert_allclose(after, before, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_compiled_path_matches_plain_tf_keras_vis(quadrant, method):
    model, positives, _ = quadrant
    options = FAST_OPTIONS.get(method, {})
    compiled = explain(model, positives[:2], method, class_index=1, **options)
    eager = explain(model, positives[:2], method, class_index=1, compiled=False, **options)
    np.testing.assert_allclose(compiled, eager, atol=1e-4)


def test_class_index_none_int_and_per_image(quadrant):
    model, positives, negatives = quadrant
    images = np.concatenate([positives[:2], negatives[:2]])
    predicted = target_classes(model, images)
    np.testing.assert_array_equal(predicted, [1, 1, 0, 0])
    np.testing.assert_array_equal(
        explain(model, images), explain(model, images, class_index=predicted)
    )
    np.testing.assert_array_equal(
        explain(model, images, class_index=1), explain(model, images, class_index=[1, 1, 1, 1])
    )
    mixed = explain(model, positives[:2], class_index=np.array([1, 0]))
    np.testing.assert_array_equal(mixed[0], explain(model, positives[:1], class_index=1)[0])
    np.testing.assert_array_equal(mixed[1], explain(model, positives[1:2], class_index=0)[0])
    # Class 0 has only negative evidence in this model: Grad-CAM is an all-zero map, no NaN.
    assert mixed[0].max() == 1.0
    assert not mixed[1].any()


def test_target_classes_true_and_fixed(quadrant):
    model, positives, _ = quadrant
    labels = [0, 1, 0, 1]
    np.testing.assert_array_equal(target_classes(model, positives, "true", labels=labels), labels)
    np.testing.assert_array_equal(target_classes(model, positives, 1), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="labels"):
        target_classes(model, positives, "true")
    with pytest.raises(ValueError, match="Unknown target"):
        target_classes(model, positives, "best")


def test_bad_class_index_is_refused(quadrant):
    model, positives, _ = quadrant
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        explain(model, positives, class_index=2)
    with pytest.raises(ValueError, match="one class per image"):
        explain(model, positives, class_index=[1, 0])
    with pytest.raises(TypeError):
        explain(model, positives, class_index=1.0)


def test_unknown_method_and_option_are_refused(quadrant):
    model, positives, _ = quadrant
    with pytest.raises(ValueError, match="known methods: gradcam"):
        explain(model, positives, "occlusion")
    with pytest.raises(TypeError, match="max_N"):
        explain(model, positives, "gradcam", max_N=3)


def test_layers_default_to_the_last_conv_like_layer_and_refuse_bad_names(quadrant):
    model, positives, _ = quadrant
    assert conv_layer_names(model) == ["conv1", "last_conv"]
    assert resolve_layer(model) == "last_conv"
    assert resolve_layer(model, "pool") == "pool"  # any 4-D layer on request
    maps = explain(model, positives, layer="conv1", class_index=1)
    _assert_valid_maps(maps, len(positives))
    with pytest.raises(ValueError, match="is not a layer of.*conv1, last_conv"):
        explain(model, positives, layer="conv9")
    with pytest.raises(ValueError, match="no 4-D.*conv1, last_conv"):
        explain(model, positives, layer="gap")
    with pytest.raises(ValueError, match="no 4-D"):
        explain(model, positives, layer="image")  # the input is not explainable


def test_inputs_are_checked(quadrant):
    model, positives, _ = quadrant
    with pytest.raises(TypeError, match="preprocessing="):
        explain(model, (positives * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="takes"):
        explain(model, positives[:, :, :32])
    single = explain(model, positives[0], class_index=1)
    np.testing.assert_array_equal(single, explain(model, positives[:1], class_index=1))
    assert explain(model, positives[:0]).shape == (0, HEIGHT, WIDTH)


def test_batching_does_not_change_the_maps(quadrant):
    model, positives, _ = quadrant
    np.testing.assert_allclose(
        explain(model, positives, batch_size=1), explain(model, positives, batch_size=3), atol=1e-6
    )


def test_smoothgrad_is_seeded_and_leaves_numpy_random_alone(quadrant):
    model, positives, _ = quadrant
    state = np.random.get_state()
    first = explain(model, positives[:1], "smoothgrad", samples=3, seed=7)
    assert np.random.get_state()[1].tolist() == state[1].tolist()
    again = explain(model, positives[:1], "smoothgrad", samples=3, seed=7)
    other = explain(model, positives[:1], "smoothgrad", samples=3, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("compiled", [True, False])
def test_no_warnings_per_call(quadrant, compiled):
    # tf-keras-vis feeds inputs as a list, which Keras 3 warns about on every call
    # unless the model it gets takes a list.
    model, positives, _ = quadrant
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for method in METHODS:
            explain(model, positives[:1], method, compiled=compiled, **FAST_OPTIONS.get(method, {}))


def test_sequential_models_work():
    # tf-keras-vis' ReplaceToLinear reads `output_names`, which Keras 3 Sequential lacks.
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(4, 3, activation="relu", name="conv"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    x = np.random.default_rng(5).uniform(size=(2, 16, 16, 3)).astype("float32")
    _assert_valid_maps(explain(model, x), 2, (16, 16))


def test_normalize_maps_turns_flat_or_broken_maps_into_zeros():
    maps = np.stack([np.full((4, 5), 3.0), np.zeros((4, 5)), np.arange(20.0).reshape(4, 5)])
    maps[1, 0, 0] = np.nan
    out = normalize_maps(maps)
    assert out.dtype == np.float32
    assert not out[0].any() and not out[1].any()
    assert out[2].min() == 0.0 and out[2].max() == 1.0


@pytest.mark.parametrize("name", list_models())
def test_default_layer_is_the_spec_layer_for_every_registry_model(name):
    model = create_model(name, 4, input_size=32)
    assert resolve_layer(model) == get_spec(name).last_conv_layer


@pytest.mark.parametrize("name", ["simple_cnn", "mobilenetv2"])
def test_registry_models_explain_at_their_spec_layer(name):
    spec = get_spec(name)
    model = create_model(name, 4, input_size=64)
    images = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    maps = explain_spec(model, spec, images)
    _assert_valid_maps(maps, 2, (64, 64))
    x = preprocess_batch(images, spec.preprocessing)
    np.testing.assert_allclose(maps, explain(model, x, layer=spec.last_conv_layer), atol=1e-6)
    stored = type(spec).from_json(spec.to_json())  # the spec as a run's manifest gives it back
    np.testing.assert_allclose(maps, explain_spec(model, stored, images), atol=1e-6)
    faster = explain_spec(model, name, images, "faster_scorecam")
    _assert_valid_maps(faster, 2, (64, 64))


def test_explain_spec_without_a_layer_explains_the_default_layer(quadrant):
    model, positives, _ = quadrant
    spec = dataclasses.replace(get_spec("simple_cnn"), last_conv_layer=None)
    images = (positives * 255).astype(np.uint8)
    maps = explain_spec(model, spec, images, class_index=1)
    x = preprocess_batch(images, spec.preprocessing)
    np.testing.assert_array_equal(maps, explain(model, x, layer="last_conv", class_index=1))
    assert not np.array_equal(maps, explain(model, x, layer="conv1", class_index=1))


def test_a_new_method_is_a_short_registered_subclass(quadrant, monkeypatch):
    from bt_core.explain import registry
    from bt_core.explain.method import CamMethod
    from bt_core.regions import resize_maps

    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))

    @registry.register_method
    class HalfBrightness(CamMethod):
        """Raw maps on a half-size grid, scaled by an option: explain must resize and rescale."""

        name = "half_brightness"
        uses_layer = False
        options = {"gain": 1.0}

        def compute(self, x, classes, **options):
            return options["gain"] * x[:, ::2, ::2].mean(axis=-1)

    model, positives, _ = quadrant
    assert list_methods()[-1] == "half_brightness"
    maps = explain(model, positives, "half_brightness", gain=-3.0)
    expected = normalize_maps(resize_maps(-positives[:, ::2, ::2].mean(axis=-1), (HEIGHT, WIDTH)))
    _assert_valid_maps(maps, len(positives))
    np.testing.assert_allclose(maps, expected, atol=1e-6)
    with pytest.raises(TypeError, match="its options: gain"):
        explain(model, positives, "half_brightness", samples=3)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_method(HalfBrightness)


def test_each_explain_module_imports_on_its_own():
    # An import cycle shows as an ImportError when a module of it is the first imported;
    # one process, TensorFlow loaded once, the package forgotten before each module.
    code = """
import importlib, sys
for module in ("method", "views", "registry", "methods", "api"):
    for name in [name for name in sys.modules if name.startswith("bt_core.explain")]:
        del sys.modules[name]
    importlib.import_module("bt_core.explain." + module)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


# --------------------------------------------------------------------------- overlay


def test_overlay_blends_a_colormap_over_the_image():
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    cam = np.zeros((5, 5), dtype=np.float32)
    cam[0, 4] = 1.0  # hot top-right corner, resized to the image
    blended = overlay(image, cam, colormap="jet", alpha=0.5)
    assert blended.shape == (20, 30, 3) and blended.dtype == np.uint8
    top_right, bottom_left = blended[0, -1].astype(int), blended[-1, 0].astype(int)
    assert top_right[0] > top_right[2]  # jet: 1.0 is red
    assert bottom_left[2] > bottom_left[0]  # jet: 0.0 is blue
    np.testing.assert_array_equal(overlay(image, cam, alpha=0.0), image)
    gray = overlay(image[..., 0], np.full((20, 30), np.nan), colormap="viridis")
    assert gray.shape == (20, 30, 3)
    with pytest.raises(ValueError, match="Unknown colormap"):
        overlay(image, cam, colormap="nope")
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, cam, alpha=1.5)


def test_draw_box_and_contour_draw_where_asked():
    image = np.zeros((21, 41, 3), dtype=np.uint8)
    boxed = draw_box(image, (0.5, 0.0, 1.0, 0.5), color=(0, 255, 0), thickness=1)
    assert not image.any()  # input untouched
    assert (boxed[0, 20:] == [0, 255, 0]).all()  # top edge of the right half
    assert not boxed[15:, :15].any()
    with pytest.raises(ValueError, match="normalised"):
        draw_box(image, (0.5, 0.0, 0.4, 0.5))
    mask = np.zeros((21, 41), dtype=bool)
    mask[5:10, 5:15] = True
    outlined = draw_contour(image, mask, color=(255, 0, 0))
    assert (outlined[5, 5:15] == [255, 0, 0]).all()
    assert not outlined[7, 7:13].any()  # outline only


def test_overlay_module_does_not_load_tensorflow():
    code = "import sys; from bt_core.explain import overlay; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["simple_cnn", "mobilenetv2"])
def test_batched_faster_scorecam_agrees_with_tf_keras_vis_one_image_at_a_time(name):
    """Our batched Faster Score-CAM is tf-keras-vis' Scorecam(max_N=10) per image."""
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.scores import CategoricalScore

    from bt_core.explain.views import cache_for
    from bt_core.regions import resize_maps

    spec = get_spec(name)
    model = create_model(name, 4, input_size=64)
    images = np.random.default_rng(5).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    x = preprocess_batch(images, spec.preprocessing)
    ours = explain(model, x, "faster_scorecam", class_index=[0, 1, 2], layer=spec.last_conv_layer)
    # Batch independence: each image alone gives its map in the batch.
    alone = np.concatenate(
        [explain(model, x[i : i + 1], "faster_scorecam", class_index=i, layer=spec.last_conv_layer) for i in range(3)]
    )
    np.testing.assert_allclose(ours, alone, atol=1e-5)
    linear = cache_for(model).linear
    for i in range(3):
        raw = Scorecam(linear)(CategoricalScore([i]), x[i : i + 1], penultimate_layer=spec.last_conv_layer,
                               seek_penultimate_conv_layer=False, max_N=10, expand_cam=False,
                               normalize_cam=False)
        reference = normalize_maps(resize_maps(np.asarray(raw), (64, 64)))[0]
        if reference.max() == 0:  # no positive evidence: both must say so
            assert ours[i].max() == 0
            continue
        # The same masks (bilinear with aligned corners, as scipy's zoom), the same weights.
        assert np.corrcoef(ours[i].ravel(), reference.ravel())[0, 1] > 0.999
        np.testing.assert_allclose(ours[i], reference, atol=1e-5)


def test_warm_up_builds_the_views_and_changes_no_map():
    from bt_core.explain import clear_cache, warm_up
    from bt_core.explain.views import cache_for

    model = create_model("simple_cnn", 4, input_size=32)
    images = np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    cold = explain_spec(model, "simple_cnn", images)
    clear_cache(model)
    warm_up(model, "simple_cnn")
    assert cache_for(model)._cam_views  # traced before the first real map
    np.testing.assert_allclose(explain_spec(model, "simple_cnn", images), cold, atol=1e-6)
