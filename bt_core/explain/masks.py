"""Image regions for reading explanation maps: the head, a box, and a map's share of them.

OpenCV and NumPy only (no TensorFlow). A Grad-CAM whose mass sits outside the head, or in
a corner where scanners burn in text, is a sign of shortcut learning; :func:`mass_share`
puts a number on it.

    head = head_mask(image_uint8)                  # bool (H, W)
    inside = mass_share(cam, head)                 # share of the map's mass in the head
    corner = mass_share(cam, box_mask(cam.shape, (0, 0, 0.25, 0.15)))
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from bt_core.explain.overlay import box_pixels

# Foreground is brighter than min(Otsu's threshold, this) on a lightly blurred image: MRI
# background is near black, and a cap keeps a dim head from being split by Otsu.
HEAD_THRESHOLD_CAP = 45
# The top-left box where the demo data (and many scanners) burn in text: x, y in [0, 1].
TOP_LEFT_TEXT_BOX = (0.0, 0.0, 0.25, 0.15)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 of an (H, W), (H, W, 1) or RGB (H, W, 3) uint8 image."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[-1] == 1:
        return np.ascontiguousarray(image[..., 0])
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    raise ValueError(f"image must be (H, W, 3), (H, W, 1) or (H, W), got shape {image.shape}")


def head_mask(image: np.ndarray) -> np.ndarray:
    """The head as a bool mask ``(H, W)``: threshold, largest bright component, holes filled.

    All False for an image with no foreground. Thin burned-in text is removed by a small
    opening before the components are counted, so it never joins the head.
    """
    gray = to_gray(image)
    blurred = cv2.GaussianBlur(gray, (5, 5), 0)
    otsu, _ = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    foreground = (blurred > min(otsu, HEAD_THRESHOLD_CAP)).astype(np.uint8)
    foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    if count < 2:  # background only
        return np.zeros(gray.shape, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    # Dark ventricles and lesion cores are holes in the threshold, not outside the head.
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(component)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def box_mask(shape: Sequence[int], box_normalized: Sequence[float]) -> np.ndarray:
    """A bool mask of ``shape[:2]`` that is True inside a normalised box (inclusive corners)."""
    height, width = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = box_pixels(box_normalized, height, width)
    mask = np.zeros((height, width), dtype=bool)
    mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def mass_share(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of a map's total mass (sum of its values) that falls inside ``mask``.

    ``cam``: ``(h, w)`` non-negative map; it is resized (bilinear) to the mask when the
    sizes differ, so a low-resolution map can be read against a full-size mask. NaN when
    the map has no mass.
    """
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    mask = np.asarray(mask, dtype=bool)
    if cam.ndim != 2 or mask.ndim != 2:
        raise ValueError(f"cam and mask must be 2-D, got shapes {cam.shape} and {mask.shape}")
    if cam.shape != mask.shape:
        cam = cv2.resize(cam, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
    cam = np.clip(cam, 0.0, None)
    total = float(cam.sum())
    if total <= 0.0:
        return float("nan")
    return float(cam[mask].sum()) / total


def mass_shares(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`mass_share` of every map of an ``(N, h, w)`` stack against one mask."""
    return np.array([mass_share(cam, mask) for cam in np.asarray(maps)], dtype=np.float64)
