"""The model registry: every spec builds, explains (Grad-CAM layer), freezes and saves."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bt_core.models import (
    HEAD_PREFIX,
    ModelSpec,
    Recipe,
    WeightsUnavailableError,
    create_model,
    get_spec,
    list_models,
    set_backbone_trainable,
)
from bt_core.data.preprocess import preprocess_batch

EXPECTED_MODELS = {
    "simple_cnn",
    "custom_cnn",
    "cnn_bn",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg16",
    "densenet121",
    "mobilenetv2",
    "efficientnetb0",
}
EXPECTED_LAST_CONV = {
    "resnet50": "conv5_block3_out",
    "resnet101": "conv5_block3_out",
    "resnet152": "conv5_block3_out",
    "vgg16": "block5_conv3",
    "densenet121": "relu",
    "mobilenetv2": "out_relu",
    "efficientnetb0": "top_activation",
}
HEAD_LAYERS = {
    "head_gap",
    "head_bn1",
    "head_dense512",
    "head_dropout1",
    "head_dense128",
    "head_dropout2",
    "head_bn2",
    "head_logits",
    "head_softmax",
}
# gamma+beta of two BNs, kernel+bias of three Dense layers.
HEAD_TRAINABLE_WEIGHTS = 10
NUM_CLASSES = 4
SIZE = 32  # the smallest size keras.applications accepts: keeps the suite fast
BACKBONES = sorted(EXPECTED_LAST_CONV)
CUSTOM = sorted(EXPECTED_MODELS - set(EXPECTED_LAST_CONV))


@pytest.fixture(scope="module")
def built_models() -> dict[str, keras.Model]:
    """Models built once per module: building the deep backbones dominates the runtime."""
    return {}


def _build(cache: dict[str, keras.Model], name: str) -> keras.Model:
    if name not in cache:
        cache[name] = create_model(name, NUM_CLASSES, input_size=SIZE)
    return cache[name]


def _batch(n: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, SIZE, SIZE, 3), dtype=np.uint8)


def _predict(model: keras.Model, name: str, images: np.ndarray) -> np.ndarray:
    x = preprocess_batch(images, get_spec(name).preprocessing)
    return keras.ops.convert_to_numpy(model(x, training=False))


def _raise_offline(*args, **kwargs):
    raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- offline")


def test_list_models_is_the_expected_zoo():
    names = list_models()
    assert set(names) == EXPECTED_MODELS
    assert names == sorted(names)


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_spec_fields(name):
    spec = get_spec(name)
    assert isinstance(spec, ModelSpec)
    assert isinstance(spec.recipe, Recipe)
    assert spec.name == name
    assert spec.input_size == 224
    assert spec.family == ("backbone" if name in EXPECTED_LAST_CONV else "custom")
    if name in EXPECTED_LAST_CONV:
        assert spec.last_conv_layer == EXPECTED_LAST_CONV[name]
    else:
        assert spec.preprocessing == "rescale"
    with pytest.raises(AttributeError):
        spec.name = "other"  # frozen


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_every_model_builds_predicts_and_exposes_its_gradcam_layer(built_models, name):
    spec = get_spec(name)
    model = _build(built_models, name)
    assert model.name == name
    assert tuple(model.output.shape) == (None, NUM_CLASSES)
    assert model.get_layer(index=-1).dtype_policy.compute_dtype == "float32"

    # Flat graph: the Grad-CAM layer is reachable directly, no nested sub-model.
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    conv = model.get_layer(spec.last_conv_layer)
    assert len(conv.output.shape) == 4
    # What Grad-CAM builds: one model giving the conv features and the probabilities.
    gradcam_model = keras.Model(model.input, [conv.output, model.output])
    features, probs = gradcam_model(preprocess_batch(_batch(), spec.preprocessing), training=False)
    assert tuple(features.shape[:1]) == (3,) and len(features.shape) == 4

    probs = keras.ops.convert_to_numpy(probs)
    assert probs.shape == (3, NUM_CLASSES)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_head_and_freezing(built_models, name):
    model = _build(built_models, name)
    layer_names = {layer.name for layer in model.layers}
    assert HEAD_LAYERS <= layer_names
    assert {n for n in layer_names if n.startswith(HEAD_PREFIX)} == HEAD_LAYERS
    all_trainable = len(model.trainable_weights)
    assert all_trainable > HEAD_TRAINABLE_WEIGHTS

    set_backbone_trainable(model, False)
    assert len(model.trainable_weights) == HEAD_TRAINABLE_WEIGHTS
    assert all(w.path.startswith(HEAD_PREFIX) for w in model.trainable_weights)

    set_backbone_trainable(model, True, keep_batchnorm_frozen=True)
    frozen_bn = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.trainable
    ]
    assert all(not layer.name.startswith(HEAD_PREFIX) for layer in frozen_bn)
    assert HEAD_TRAINABLE_WEIGHTS < len(model.trainable_weights) <= all_trainable

    set_backbone_trainable(model, True)
    assert len(model.trainable_weights) == all_trainable


def test_set_backbone_trainable_rejects_models_without_head(built_models):
    model = _build(built_models, "simple_cnn")
    with pytest.raises(ValueError, match="head_"):
        set_backbone_trainable(model, False)


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError) as excinfo:
        get_spec("resnet9000")
    message = str(excinfo.value)
    assert "resnet9000" in message
    assert all(name in message for name in EXPECTED_MODELS)
    with pytest.raises(KeyError, match="cnn_bn"):
        create_model("resnet9000", NUM_CLASSES)


def test_imagenet_offline_raises_weights_unavailable(monkeypatch):
    # keras.applications calls file_utils.get_file through the module attribute.
    monkeypatch.setattr("keras.src.utils.file_utils.get_file", _raise_offline)
    with pytest.raises(WeightsUnavailableError) as excinfo:
        create_model("resnet50", NUM_CLASSES, weights="imagenet", input_size=SIZE)
    message = str(excinfo.value)
    assert "--weights PATH" in message
    assert "--weights none" in message
    assert "~/.keras/models" in message
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert isinstance(excinfo.value.__cause__, Exception)


def test_missing_local_weights_file(tmp_path):
    missing = tmp_path / "nope.weights.h5"
    for name in ("mobilenetv2", "simple_cnn"):
        with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
            create_model(name, NUM_CLASSES, weights=missing, input_size=SIZE)


def test_custom_cnn_has_no_imagenet_weights():
    with pytest.raises(ValueError, match="custom CNNs have no ImageNet weights"):
        create_model("cnn_bn", NUM_CLASSES, weights="imagenet")


def test_too_small_input_is_rejected():
    with pytest.raises(ValueError, match="input_size"):
        create_model("simple_cnn", NUM_CLASSES, input_size=16)


def test_custom_cnn_save_load_and_weights_path_round_trip(built_models, tmp_path):
    name = "cnn_bn"
    model = _build(built_models, name)
    images = _batch(4, seed=1)
    expected = _predict(model, name, images)

    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(_predict(loaded, name, images), expected, rtol=0, atol=1e-6)

    model.save_weights(tmp_path / "model.weights.h5")
    rebuilt = create_model(name, NUM_CLASSES, weights=tmp_path / "model.weights.h5", input_size=SIZE)
    np.testing.assert_allclose(_predict(rebuilt, name, images), expected, rtol=0, atol=1e-6)


def test_backbone_freezing_survives_save_load(built_models, tmp_path):
    model = _build(built_models, "mobilenetv2")
    all_trainable = len(model.trainable_weights)
    set_backbone_trainable(model, False)
    model.save(tmp_path / "model.keras")
    set_backbone_trainable(model, True)

    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert len(loaded.trainable_weights) == HEAD_TRAINABLE_WEIGHTS
    set_backbone_trainable(loaded, True)
    assert len(loaded.trainable_weights) == all_trainable
    images = _batch()
    np.testing.assert_allclose(
        _predict(loaded, "mobilenetv2", images),
        _predict(model, "mobilenetv2", images),
        rtol=0,
        atol=1e-6,
    )


def test_efficientnet_local_imagenet_file_normalises_like_download(tmp_path, monkeypatch):
    # A stand-in for efficientnetb0_notop.h5: random convs, and the file's Normalization
    # convention (variance holds the ImageNet std, not its square).
    base = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    norm = next(layer for layer in base.layers if isinstance(layer, keras.layers.Normalization))
    norm.adapt_mean.assign([0.485, 0.456, 0.406])
    norm.adapt_variance.assign([0.229, 0.224, 0.225])
    weights_file = tmp_path / "efficientnetb0_notop.weights.h5"
    base.save_weights(weights_file)

    from_path = create_model("efficientnetb0", NUM_CLASSES, weights=weights_file, input_size=SIZE)
    monkeypatch.setattr(
        "keras.src.utils.file_utils.get_file", lambda *args, **kwargs: str(weights_file)
    )
    from_download = create_model("efficientnetb0", NUM_CLASSES, weights="imagenet", input_size=SIZE)

    # The first conv sees the normalised input directly (deep random features vanish).
    x = preprocess_batch(_batch(2), "raw")
    features = [
        keras.ops.convert_to_numpy(
            keras.Model(m.input, m.get_layer("stem_conv").output)(x, training=False)
        )
        for m in (from_path, from_download)
    ]
    assert features[0].std() > 0.1
    np.testing.assert_allclose(features[0], features[1], rtol=1e-4, atol=1e-5)
