"""Training pieces, and a tiny model trained for real under TensorFlow (in process)."""

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from bt_core.training.config import seed_everything
from bt_core.data.dataset import SplitArrays, load_dataset
from bt_core.models import create_model, get_spec
from bt_core.training.batches import ImageBatches, augment_batch, balanced_class_weights
from bt_core.training.train import (
    PHASE_FINE_TUNE,
    PHASE_HEAD,
    PHASE_SCRATCH,
    _phases,
    check_augment_mode,
    loss_for,
    predict_proba,
    train_model,
)
from imagefolders import make_pool


def test_augment_keeps_shape_and_dtype_is_seeded_and_changes_images():
    images = np.random.default_rng(0).integers(0, 255, size=(16, 20, 20, 3), dtype=np.uint8)
    first = augment_batch(images, np.random.default_rng(1))
    again = augment_batch(images, np.random.default_rng(1))
    assert first.shape == images.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, images)
    assert images.sum() == np.random.default_rng(0).integers(0, 255, size=(16, 20, 20, 3), dtype=np.uint8).sum()


def test_augment_shift_moves_content_and_fills_with_zero():
    image = np.zeros((1, 40, 40, 3), np.uint8)
    image[0, 18:22, 18:22] = 200
    shifted = [augment_batch(image, np.random.default_rng(s), max_shift=0.1) for s in range(20)]
    centres = {tuple(np.argwhere(s[0, ..., 0] > 100).mean(axis=0).round().astype(int)) for s in shifted}
    assert len(centres) > 3  # the square lands in several places
    assert all(abs(c - 19.5) <= 4.5 for centre in centres for c in centre)  # at most 10% of 40 px


def test_balanced_class_weights_match_scikit_learn():
    labels = np.array([0] * 10 + [1] * 30 + [3] * 60)
    weights = balanced_class_weights(labels, 4)
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=labels)
    np.testing.assert_allclose(weights[[0, 1, 3]], expected)
    assert weights[2] == 1.0  # absent class


def test_image_batches_cover_every_image_once_with_weights_in_training():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(4, axis=1).repeat(4, axis=2).repeat(3, axis=3)
    labels = np.array([0, 1] * 5)
    arrays = SplitArrays(images, labels, np.array([str(i) for i in range(10)]))
    train = ImageBatches(arrays, "rescale", 4, shuffle=True, class_weights=np.array([2.0, 0.5]), seed=0)
    assert len(train) == 3
    batches = [train[i] for i in range(len(train))]
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([np.round(b[0][:, 0, 0, 0] * 255).astype(int) for b in batches])
    assert sorted(seen) == list(range(10))
    for x, y, w in batches:
        assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
        np.testing.assert_array_equal(w, np.where(y == 0, 2.0, 0.5))
    evaluation = ImageBatches(arrays, "rescale", 4)
    x, y = evaluation[0]
    np.testing.assert_array_equal(y, labels[:4])


def test_phases_two_for_a_pretrained_backbone_one_otherwise():
    assert [p[0] for p in _phases(get_spec("resnet50"), "imagenet")] == [PHASE_HEAD, PHASE_FINE_TUNE]
    head, fine = _phases(get_spec("resnet50"), "/some/weights.h5")
    assert head[1] == 1e-4 and head[2] is False and fine[1] == 1e-5 and fine[2] is True
    assert [p[0] for p in _phases(get_spec("resnet50"), None)] == [PHASE_SCRATCH]
    assert [p[0] for p in _phases(get_spec("simple_cnn"), "imagenet")] == [PHASE_SCRATCH]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = make_pool(tmp_path_factory.mktemp("pool"), per_class=40, size=32)
    return load_dataset(root, image_size=32, seed=0)


def test_tiny_model_learns_and_keeps_its_best_weights(tiny_dataset):
    seed_everything(0)
    spec = get_spec("simple_cnn")
    model = create_model("simple_cnn", 4, input_size=32)
    events = []
    result = train_model(
        model, spec, tiny_dataset.arrays["train"], tiny_dataset.arrays["val"], epochs=8, num_classes=4,
        batch_size=16, seed=0, progress=events.append,
    )
    history = result.history
    assert len(history) == result.epochs_run == len(events) and 1 <= result.epochs_run <= 8
    assert history["epoch"].tolist() == list(range(1, result.epochs_run + 1))
    assert (history["phase"] == PHASE_SCRATCH).all() and (history["lr"] > 0).all()
    assert history["val_loss"].notna().all()
    assert result.best_epoch == int(history.loc[history["val_loss"].idxmin(), "epoch"])
    # The model holds the best epoch's weights: its validation loss is the minimum seen.
    val = tiny_dataset.arrays["val"]
    proba = predict_proba(model, spec, val)
    val_loss = -np.mean(np.log(proba[np.arange(len(val.labels)), val.labels] + 1e-12))
    assert val_loss == pytest.approx(history["val_loss"].min(), rel=0.05, abs=1e-3)
    test = tiny_dataset.arrays["test"]
    accuracy = (predict_proba(model, spec, test).argmax(axis=1) == test.labels).mean()
    assert accuracy >= 0.9


def test_scratch_batchnorm_momentum_is_applied_to_every_batchnorm_layer():
    from bt_core.models import set_batchnorm_momentum

    model = create_model("mobilenetv2", 4, input_size=32)
    count = set_batchnorm_momentum(model, 0.9)
    momenta = [layer.momentum for layer in model.layers if "BatchNormalization" in type(layer).__name__]
    assert count == len(momenta) > 10 and set(momenta) == {0.9}
    assert set_batchnorm_momentum(create_model("simple_cnn", 4, input_size=32), 0.9) == 0


def test_pretrained_backbone_trains_head_first_then_everything(tiny_dataset):
    """Two phases on a toy backbone: head alone at 1e-4 (base untouched), then all at 1e-5."""
    import keras

    from bt_core.models import ModelSpec

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, name="base_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="head_gap")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="head_softmax")(x)
    model = keras.Model(inputs, outputs)
    spec = ModelSpec(name="toy", builder=lambda *a: model, input_size=32, preprocessing="rescale",
                     last_conv_layer="base_conv", family="backbone")
    base_before = model.get_layer("base_conv").get_weights()[0].copy()
    seen = []

    def watch(event):
        seen.append((event["phase"], model.get_layer("base_conv").get_weights()[0].copy()))

    result = train_model(model, spec, tiny_dataset.arrays["train"], tiny_dataset.arrays["val"], epochs=2,
                         num_classes=4, batch_size=16, weights="pretrained.h5", progress=watch)
    assert result.phases == [PHASE_HEAD, PHASE_FINE_TUNE]
    history = result.history
    assert set(history["phase"]) == {PHASE_HEAD, PHASE_FINE_TUNE}
    assert history.loc[history["phase"] == PHASE_HEAD, "lr"].max() == pytest.approx(1e-4)
    assert history.loc[history["phase"] == PHASE_FINE_TUNE, "lr"].max() == pytest.approx(1e-5)
    assert history["epoch"].tolist() == list(range(1, len(history) + 1))
    head_epochs = [w for phase, w in seen if phase == PHASE_HEAD]
    fine_epochs = [w for phase, w in seen if phase == PHASE_FINE_TUNE]
    assert all(np.array_equal(w, base_before) for w in head_epochs)  # frozen base
    assert not np.array_equal(fine_epochs[-1], base_before)  # unfrozen in phase 2


def test_padded_batches_split_evenly_and_carry_zero_weight_padding():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1).repeat(4, axis=1).repeat(4, axis=2).repeat(3, axis=3)
    arrays = SplitArrays(images, np.array([0, 1] * 5), np.array([str(i) for i in range(10)]))
    batches = ImageBatches(arrays, "rescale", 4, pad_to_multiple=4)
    x, y, w = batches[2]  # the last batch: 2 real images, padded to 4
    assert len(x) == 4 and w.tolist() == [1.0, 1.0, 0.0, 0.0]
    np.testing.assert_array_equal(np.round(x[:2, 0, 0, 0] * 255), [8, 9])
    one_hot = ImageBatches(arrays, "rescale", 4, one_hot=2)[0][1]
    np.testing.assert_array_equal(one_hot, np.eye(2, dtype=np.float32)[[0, 1, 0, 1]])
    dropping = ImageBatches(arrays, "rescale", 4, shuffle=True, drop_remainder=True)
    assert len(dropping) == 2


def test_numpy_augmentation_is_the_same_whichever_thread_makes_a_batch():
    rng = np.random.default_rng(0)
    arrays = SplitArrays(rng.integers(0, 255, (12, 8, 8, 3), dtype=np.uint8), np.zeros(12, int), np.arange(12).astype(str))
    first = ImageBatches(arrays, "rescale", 4, shuffle=True, augment=True, seed=3, workers=2)
    again = ImageBatches(arrays, "rescale", 4, shuffle=True, augment=True, seed=3)
    for index in (2, 0, 1):  # out of order, as worker threads may take them
        np.testing.assert_array_equal(first[index][0], again[index][0])
    before = first[0][0]
    first.on_epoch_end()
    assert not np.array_equal(first[0][0], before)  # a new epoch draws new augmentations


def test_predictions_with_padding_for_replicas_match_the_plain_ones(tiny_dataset):
    spec = get_spec("simple_cnn")
    model = create_model("simple_cnn", 4, input_size=32)
    test = tiny_dataset.arrays["test"]
    plain = predict_proba(model, spec, test, batch_size=7)
    padded = predict_proba(model, spec, test, batch_size=7, devices=4)
    assert padded.shape == plain.shape == (len(test.labels), 4)
    np.testing.assert_allclose(padded, plain, atol=1e-6)


def test_augment_modes():
    assert check_augment_mode(True) == "device" and check_augment_mode(False) == "none"
    assert check_augment_mode("numpy") == "numpy"
    with pytest.raises(ValueError, match="device, numpy, none"):
        check_augment_mode("gpu")


def test_recipe_warmup_label_smoothing_and_no_augmentation_layer_in_the_trained_model(tiny_dataset):
    """Recipe fields reach the trainer; device augmentation never ends up inside the model."""
    from dataclasses import replace

    import keras

    from bt_core.training.augment import RandomAffine
    from bt_core.models.registry import Recipe

    base = get_spec("simple_cnn")
    assert (base.recipe.augment_strength, base.recipe.warmup_epochs, base.recipe.label_smoothing) == (1.0, 0, 0.0)
    spec = replace(base, recipe=Recipe(warmup_epochs=2, label_smoothing=0.1, patience=10, reduce_lr_patience=10))
    loss = loss_for(spec)
    assert isinstance(loss, keras.losses.CategoricalCrossentropy) and loss.get_config()["label_smoothing"] == 0.1
    assert isinstance(loss_for(base), keras.losses.SparseCategoricalCrossentropy)
    seed_everything(0)
    model = create_model("simple_cnn", 4, input_size=32)
    result = train_model(model, spec, tiny_dataset.arrays["train"], tiny_dataset.arrays["val"], epochs=3,
                         num_classes=4, batch_size=16, augment="device")
    np.testing.assert_allclose(result.history["lr"].tolist(), [1e-3 / 3, 2e-3 / 3, 1e-3], rtol=1e-5)
    assert not any(isinstance(layer, RandomAffine) for layer in model.layers)
    assert result.batch_size == 16


def test_custom_cnn_from_scratch_warms_up_its_first_epoch(tiny_dataset):
    """Without the warm-up, 4 of 5 demo seeds sat at ln 4 loss for most of 8 epochs
    (docs/performance.md, "Seed grids from scratch")."""
    spec = get_spec("custom_cnn")
    seed_everything(0)
    model = create_model("custom_cnn", 4, input_size=32)
    result = train_model(model, spec, tiny_dataset.arrays["train"], tiny_dataset.arrays["val"], epochs=2,
                         num_classes=4, batch_size=16)
    np.testing.assert_allclose(result.history["lr"].tolist(), [spec.recipe.learning_rate / 2, spec.recipe.learning_rate],
                               rtol=1e-5)


def _cpu_runs_bfloat16() -> bool:
    import keras

    try:
        x = keras.ops.ones((1, 4, 4, 1), dtype="bfloat16")
        kernel = keras.ops.ones((3, 3, 1, 1), dtype="bfloat16")
        keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding="same"))
    except Exception:  # any missing-kernel error means no bf16 on this CPU build
        return False
    return True


def test_a_tiny_model_trains_under_mixed_bfloat16_with_float32_probabilities(tiny_dataset):
    import keras

    if not _cpu_runs_bfloat16():
        pytest.skip("this CPU / TensorFlow build has no bfloat16 convolution kernels")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        seed_everything(0)
        spec = get_spec("simple_cnn")
        model = create_model("simple_cnn", 4, input_size=32)
        assert model.get_layer("conv1").compute_dtype == "bfloat16"
        assert model.get_layer("softmax").compute_dtype == "float32"
        result = train_model(model, spec, tiny_dataset.arrays["train"], tiny_dataset.arrays["val"], epochs=2,
                             num_classes=4, batch_size=16)
        assert result.history["loss"].notna().all() and np.isfinite(result.history["val_loss"]).all()
        raw = model.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
        assert raw.dtype == np.float32
        proba = predict_proba(model, spec, tiny_dataset.arrays["test"])
        assert np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    finally:
        keras.mixed_precision.set_global_policy("float32")
