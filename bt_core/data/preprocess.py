"""Model-specific input preprocessing in pure numpy.

Each model in the zoo expects its inputs scaled the way its (ImageNet) weights were
trained; :func:`preprocess_batch` reproduces ``keras.applications.<x>.preprocess_input``
without importing Keras, so the dashboard and data pipeline stay light. Which mode a
model needs is recorded in its ``ModelSpec.preprocessing``.
"""

from __future__ import annotations

import numpy as np

# Keras "caffe" mode: per-channel ImageNet mean, in BGR order (applied after RGB->BGR).
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
# Keras "torch" mode: ImageNet mean and std of [0, 1] RGB images.
TORCH_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
TORCH_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)

PREPROCESS_MODES: tuple[str, ...] = ("rescale", "caffe", "torch", "tf", "raw")


def preprocess_batch(images: np.ndarray, mode: str) -> np.ndarray:
    """Turn a uint8 RGB batch ``(N, H, W, 3)`` into float32 model input.

    Modes:
        ``"rescale"``: ``x / 255`` in ``[0, 1]`` (the custom CNNs).
        ``"caffe"``: RGB->BGR, minus the ImageNet mean, no scaling (resnet*, vgg16).
        ``"torch"``: ``x / 255``, then ImageNet mean/std normalised (densenet121).
        ``"tf"``: scaled to ``[-1, 1]`` (mobilenetv2).
        ``"raw"``: float32 ``0..255`` unchanged (efficientnetb0 rescales in-model).

    Always returns a new array; the input is never modified.
    """
    if mode not in PREPROCESS_MODES:
        raise ValueError(
            f"Unknown preprocessing mode {mode!r}; valid modes: {', '.join(PREPROCESS_MODES)}"
        )
    images = np.asarray(images)
    # Only uint8 is accepted: a float batch may already be preprocessed, and silently
    # preprocessing twice is a bug that costs accuracy without any error.
    if images.dtype != np.uint8:
        raise TypeError(f"preprocess_batch expects uint8 RGB images, got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"preprocess_batch expects shape (N, H, W, 3), got {images.shape}")

    x = images.astype(np.float32)
    if mode == "rescale":
        x /= 255.0
    elif mode == "caffe":
        x = x[..., ::-1] - CAFFE_MEAN_BGR
    elif mode == "torch":
        x /= 255.0
        x -= TORCH_MEAN_RGB
        x /= TORCH_STD_RGB
    elif mode == "tf":
        x /= 127.5
        x -= 1.0
    # "raw": the float32 copy as is.
    return x
