"""From-scratch CNNs: small baselines that need no pretrained weights.

All take float32 ``[0, 1]`` input (``"rescale"`` preprocessing) and name their Grad-CAM
layer explicitly so the spec can point at it.
"""

from __future__ import annotations

import keras
from keras import layers

from bt_core.models.registry import Recipe, register_model


def _finish(model: keras.Model, weights: str | None) -> keras.Model:
    if weights is not None:
        model.load_weights(weights)
    return model


def _softmax(x):
    # float32 so the probabilities stay exact under bf16 mixed precision.
    return layers.Activation("softmax", dtype="float32", name="softmax")(x)


@register_model(
    "simple_cnn",
    preprocessing="rescale",
    last_conv_layer="last_conv",
    family="custom",
    description="Baseline: 3 conv/max-pool layers (32-64-128), flatten, dense 128.",
)
def simple_cnn(num_classes: int, input_size: int, weights: str | None) -> keras.Model:
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.MaxPooling2D(name="pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense1")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    return _finish(keras.Model(inputs, _softmax(x), name="simple_cnn"), weights)


@register_model(
    "custom_cnn",
    preprocessing="rescale",
    last_conv_layer="last_conv",
    family="custom",
    # One warm-up epoch: at 1e-3 from the first step, 4 of 5 demo seeds sat at ln 4 loss for
    # most of 8 epochs (test 0.36-0.49; 0.69-0.97 with it; He initialisation did not help:
    # docs/performance.md, "Seed grids from scratch").
    recipe=Recipe(warmup_epochs=1),
    description="4 conv blocks (64-128-256-256) with max-pool and dropout, dense 256.",
)
def custom_cnn(num_classes: int, input_size: int, weights: str | None) -> keras.Model:
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = inputs
    filters = (64, 128, 256, 256)
    for block, n_filters in enumerate(filters, start=1):
        is_last = block == len(filters)
        x = layers.Conv2D(
            n_filters,
            3,
            padding="same",
            activation="relu",
            name="last_conv" if is_last else f"conv{block}",
        )(x)
        x = layers.MaxPooling2D(name=f"pool{block}")(x)
        x = layers.Dropout(0.25, name=f"dropout{block}")(x)
    # Flatten keeps where things are (as the published custom CNNs do); with global average
    # pooling this model stalled near 45% on the demo data within the demo's epoch budget.
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.5, name="dropout_dense")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    return _finish(keras.Model(inputs, _softmax(x), name="custom_cnn"), weights)


@register_model(
    "cnn_bn",
    preprocessing="rescale",
    last_conv_layer="last_conv_relu",
    family="custom",
    # One warm-up epoch (it helped some seeds before the statistics were recomputed). What
    # stopped the collapse is the default recompute_batchnorm_images: with Keras' moving
    # averages alone the demo (seed 42) ended at 0.59 validation accuracy while the same
    # weights with recomputed statistics scored 0.94 (docs/performance.md).
    recipe=Recipe(warmup_epochs=1),
    description=(
        "4 blocks of 2x(conv-BN-ReLU), 32-64-128-256 filters, max-pool and dropout; "
        "98.3% test accuracy from scratch in the reference yardstick."
    ),
)
def cnn_bn(num_classes: int, input_size: int, weights: str | None) -> keras.Model:
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = inputs
    filters = (32, 64, 128, 256)
    for block, n_filters in enumerate(filters, start=1):
        for conv in (1, 2):
            prefix = f"block{block}_conv{conv}"
            # No bias: the following BatchNormalization has its own offset.
            x = layers.Conv2D(n_filters, 3, padding="same", use_bias=False, name=prefix)(x)
            x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
            is_last = block == len(filters) and conv == 2
            # The activated output of the last conv is the Grad-CAM target.
            x = layers.Activation("relu", name="last_conv_relu" if is_last else f"{prefix}_relu")(x)
        x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        x = layers.Dropout(0.25, name=f"block{block}_dropout")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(256, activation="relu", name="dense1")(x)
    x = layers.BatchNormalization(name="dense1_bn")(x)
    x = layers.Dropout(0.5, name="dropout_dense")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    return _finish(keras.Model(inputs, _softmax(x), name="cnn_bn"), weights)
