"""Image-level preprocessing chosen per run (``train_all.py --preprocess``).

Each op takes and returns a uint8 RGB image ``(H, W, 3)``. They run once, when the dataset
is decoded, on the full-resolution image and before the resize to the run's size, so
``test_images.npz`` holds what the models saw. Model-level scaling (``rescale``, ``caffe``,
...) is a different step: ``bt_core.data.preprocess.preprocess_batch``.

    clahe      contrast-limited adaptive histogram equalization (clip limit 2.0, 8 x 8 tiles)
               on the luminance (the grey level of a grayscale image)
    sharpen    Gaussian unsharp mask: 1.5 x image - 0.5 x blurred image (sigma 1.5)
    histeq     global histogram equalization, on the luminance
    crop_head  crop to the head: threshold, largest connected component, a small margin,
               widened to a square (the head keeps its aspect), resized back to the input size
"""

from __future__ import annotations

from typing import Callable, Iterable

import cv2
import numpy as np

CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)
SHARPEN_SIGMA = 1.5
SHARPEN_WEIGHTS = (1.5, -0.5)
# crop_head: foreground is brighter than min(Otsu's threshold, this) on a lightly blurred image.
HEAD_THRESHOLD_CAP = 45
HEAD_MARGIN_FRACTION = 0.02


def _is_gray(image: np.ndarray) -> bool:
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))


def _on_luminance(image: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a single-channel uint8 transform to the grey level, or to the Y of YCrCb for colour.

    A grayscale image stays exactly grayscale (equal channels), as most MRI JPEGs are.
    """
    if _is_gray(image):
        channel = transform(np.ascontiguousarray(image[..., 0]))
        return np.repeat(channel[..., None], 3, axis=2)
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    ycrcb[..., 0] = transform(np.ascontiguousarray(ycrcb[..., 0]))
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


def clahe(image: np.ndarray) -> np.ndarray:
    equalizer = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    return _on_luminance(image, equalizer.apply)


def sharpen(image: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=SHARPEN_SIGMA)
    return cv2.addWeighted(image, SHARPEN_WEIGHTS[0], blurred, SHARPEN_WEIGHTS[1], 0)


def histeq(image: np.ndarray) -> np.ndarray:
    return _on_luminance(image, cv2.equalizeHist)


def head_box(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right), exclusive ends, of the largest bright component; None if none."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    otsu, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = min(otsu, HEAD_THRESHOLD_CAP)
    mask = (blurred > threshold).astype(np.uint8)
    # Opening removes thin scanner text and speckle before they can join the head.
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:  # background only
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    left, top, width, height = (int(v) for v in stats[largest, :4])
    return top, left, top + height, left + width


def crop_head(image: np.ndarray) -> np.ndarray:
    box = head_box(image)
    if box is None:
        return image
    height, width = image.shape[:2]
    top, left, bottom, right = box
    side = max(bottom - top, right - left)
    side += 2 * max(2, int(round(HEAD_MARGIN_FRACTION * side)))
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    y0, x0 = int(round(centre_y - side / 2)), int(round(centre_x - side / 2))
    # Pad with black where the square reaches past the image, so the head is never squashed.
    padded = cv2.copyMakeBorder(image, side, side, side, side, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    crop = padded[y0 + side : y0 + 2 * side, x0 + side : x0 + 2 * side]
    interpolation = cv2.INTER_AREA if side >= max(height, width) else cv2.INTER_LINEAR
    return cv2.resize(crop, (width, height), interpolation=interpolation)


_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "clahe": clahe,
    "sharpen": sharpen,
    "histeq": histeq,
    "crop_head": crop_head,
}
IMAGE_OPS: tuple[str, ...] = tuple(_OPS)


def check_image_ops(ops: Iterable[str] | None) -> tuple[str, ...]:
    """The op names as a tuple; ValueError naming the valid ones for an unknown name."""
    names = tuple(ops or ())
    unknown = [name for name in names if name not in _OPS]
    if unknown:
        raise ValueError(f"unknown preprocessing op(s) {unknown}; valid: {', '.join(IMAGE_OPS)}")
    return names


def apply_image_ops(image_uint8: np.ndarray, ops: Iterable[str] | None) -> np.ndarray:
    """Apply ``ops`` in order to a uint8 RGB image ``(H, W, 3)``; returns a new uint8 image."""
    names = check_image_ops(ops)
    image = np.asarray(image_uint8)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    image = np.ascontiguousarray(image)
    for name in names:
        image = _OPS[name](image)
    return image if names else image.copy()
