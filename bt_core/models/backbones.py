"""keras.applications backbones with the shared classification head.

The head is built directly on ``base_model.output`` so the model is one flat graph:
Grad-CAM (tf-keras-vis) must reach the inner conv layers by name, which it cannot when
the backbone is nested as a single layer. Every head layer's name starts with ``head_``
so :func:`~bt_core.models.registry.set_backbone_trainable` can tell head from backbone.
"""

from __future__ import annotations

import functools

import numpy as np
import keras
from keras import layers

from bt_core.models.registry import (
    HEAD_PREFIX,
    Recipe,
    WeightsUnavailableError,
    register_model,
)

_KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
# EfficientNet's pretrained file stores the ImageNet std (not its square) as the
# Normalization variance; keras.applications compensates with an extra Rescaling layer
# that it only adds for weights="imagenet" (tensorflow/tensorflow#49930).
_EFFICIENTNET_STDDEV_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_MOBILENETV2_WEIGHT_SIZES = (96, 128, 160, 192, 224)


def _notop_weights_url(name: str, input_size: int) -> str:
    """Where keras.applications downloads the no-top ImageNet weights of ``name``."""
    if name.startswith("resnet"):
        return f"{_KERAS_WEIGHTS_URL}resnet/{name}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if name in ("vgg16", "densenet121"):
        return f"{_KERAS_WEIGHTS_URL}{name}/{name}_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if name == "mobilenetv2":
        rows = input_size if input_size in _MOBILENETV2_WEIGHT_SIZES else 224
        return (
            f"{_KERAS_WEIGHTS_URL}mobilenet_v2/"
            f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
        )
    if name == "efficientnetb0":
        return "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5"
    raise KeyError(name)


def _weights_unavailable_message(name: str, input_size: int, error: Exception) -> str:
    url = _notop_weights_url(name, input_size)
    file_name = url.rsplit("/", 1)[-1]
    return (
        f"ImageNet weights for {name!r} could not be obtained ({type(error).__name__}: "
        f"{error}); the machine is probably offline (or a cached file is corrupt). "
        "To proceed, either:\n"
        f"  1. on a machine that is online, download {url}\n"
        f"     (or run keras.applications once there; Keras caches it as "
        f"~/.keras/models/{file_name}),\n"
        f"     copy it here and pass its path with --weights PATH, or put it in "
        f"~/.keras/models/ (or $KERAS_HOME/models/) and keep --weights imagenet;\n"
        f"  2. or train from scratch with --weights none."
    )


def _fold_efficientnet_stddev(base: keras.Model) -> None:
    """Make a base loaded from a local ImageNet file normalise like weights="imagenet".

    keras.applications divides by sqrt(std) in an extra layer for weights="imagenet"
    only; for a file path we fold that factor into the Normalization variance instead:
    (x - m) / sqrt(v) / sqrt(std) == (x - m) / sqrt(v * std).
    """
    norms = [layer for layer in base.layers if isinstance(layer, layers.Normalization)]
    if len(norms) != 1:
        return
    norm = norms[0]
    variance = keras.ops.convert_to_numpy(norm.adapt_variance)
    # Only the ImageNet file has this convention; other weights are left alone.
    if np.allclose(variance, _EFFICIENTNET_STDDEV_RGB, atol=1e-4):
        norm.adapt_variance.assign(variance * _EFFICIENTNET_STDDEV_RGB)
        norm.finalize_state()


def _add_head(features, num_classes: int):
    """The published head: GAP-BN-512-drop-128-drop-BN-logits-softmax."""
    x = layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}gap")(features)
    x = layers.BatchNormalization(name=f"{HEAD_PREFIX}bn1")(x)
    x = layers.Dense(512, activation="relu", name=f"{HEAD_PREFIX}dense512")(x)
    x = layers.Dropout(0.4, name=f"{HEAD_PREFIX}dropout1")(x)
    x = layers.Dense(128, activation="relu", name=f"{HEAD_PREFIX}dense128")(x)
    x = layers.Dropout(0.4, name=f"{HEAD_PREFIX}dropout2")(x)
    x = layers.BatchNormalization(name=f"{HEAD_PREFIX}bn2")(x)
    x = layers.Dense(num_classes, name=f"{HEAD_PREFIX}logits")(x)
    # float32 so the probabilities stay exact under bf16 mixed precision.
    return layers.Activation("softmax", dtype="float32", name=f"{HEAD_PREFIX}softmax")(x)


def _build(
    name: str, application: str, num_classes: int, input_size: int, weights: str | None
) -> keras.Model:
    application_fn = getattr(keras.applications, application)
    kwargs = dict(include_top=False, weights=weights, input_shape=(input_size, input_size, 3))
    if weights == "imagenet":
        try:
            base = application_fn(**kwargs)
        # keras' downloader raises a bare Exception on network errors; sizes were
        # validated by create_model, so a failure here is the weights download/load.
        except Exception as error:
            raise WeightsUnavailableError(
                _weights_unavailable_message(name, input_size, error)
            ) from error
    else:
        base = application_fn(**kwargs)
        if weights is not None and name == "efficientnetb0":
            _fold_efficientnet_stddev(base)
    return keras.Model(base.input, _add_head(base.output, num_classes), name=name)


_FINE_TUNE = "Pretrained on ImageNet (or from scratch); head trained first, then fine-tuned."

# name: (keras.applications function, preprocessing, last conv layer, description, recipe)
_BACKBONES = {
    "resnet50": ("ResNet50", "caffe", "conv5_block3_out", "ResNet50 (23.6M backbone params).", None),
    "resnet101": ("ResNet101", "caffe", "conv5_block3_out", "ResNet101 (42.7M backbone params).", None),
    "resnet152": ("ResNet152", "caffe", "conv5_block3_out", "ResNet152 (58.4M backbone params).", None),
    # No batch norm in VGG: Adam at 1e-3 tends to stall it when trained from scratch.
    "vgg16": ("VGG16", "caffe", "block5_conv3",
              "VGG16 (plain 13-conv stack without batch norm, 14.7M backbone params).", Recipe(learning_rate=1e-4)),
    "densenet121": ("DenseNet121", "torch", "relu", "DenseNet121 (7.0M backbone params).", None),
    "mobilenetv2": ("MobileNetV2", "tf", "out_relu", "MobileNetV2 (2.3M backbone params).", None),
    "efficientnetb0": ("EfficientNetB0", "raw", "top_activation",
                       "EfficientNetB0 (4.0M backbone params; rescales 0..255 input itself).", None),
}

for _name, (_application, _preprocessing, _last_conv, _description, _recipe) in _BACKBONES.items():
    register_model(
        _name,
        preprocessing=_preprocessing,
        last_conv_layer=_last_conv,
        family="backbone",
        recipe=_recipe,
        description=f"{_description} {_FINE_TUNE}",
    )(functools.partial(_build, _name, _application))
