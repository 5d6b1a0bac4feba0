"""Per-image regions that explanation maps are read against: head, border band, tumor box.

Also the input checks every shortcut measure shares (images, labels, boxes), so each
measure fails with the same clear message. NumPy and OpenCV only.

    heads = head_masks(images_uint8)               # bool (N, H, W)
    band = border_band((H, W), width=0.1)          # bool (H, W), the frame where text is burned
    boxes_in = box_masks(boxes, (H, W))            # bool (N, H, W), all False without a box
    present = has_box(boxes)                       # bool (N,)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from bt_core.explain.masks import box_mask, head_mask


def check_images(images: np.ndarray) -> np.ndarray:
    """Images as a uint8 ``(N, H, W, 3)`` array, or ValueError/TypeError saying what is wrong."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3) RGB, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got dtype {images.dtype}")
    if len(images) == 0:
        raise ValueError("images is empty")
    return images


def check_labels(labels: Sequence[int] | np.ndarray, n: int, n_classes: int) -> np.ndarray:
    """Labels as int64 ``(n,)`` class indices in ``[0, n_classes)``, or ValueError."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"labels must be (N,) with N = {n}, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be int class indices, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def check_shape(shape: Sequence[int]) -> tuple[int, int]:
    """``(H, W)`` from a shape whose first two entries are positive sizes."""
    if len(shape) < 2 or int(shape[0]) < 1 or int(shape[1]) < 1:
        raise ValueError(f"shape must start with two positive sizes (H, W), got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def check_boxes(boxes: Sequence[Sequence[float]] | np.ndarray, n: int | None = None) -> np.ndarray:
    """Boxes as float ``(N, 4)``; a row is either all NaN (no box) or a valid normalised box.

    A row with some NaNs is an error, not a missing box: it is a broken annotation.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) rows (x0, y0, x1, y1), got shape {boxes.shape}")
    if n is not None and len(boxes) != n:
        raise ValueError(f"boxes must have one row per image ({n}), got {len(boxes)}")
    missing = np.isnan(boxes)
    partial = missing.any(axis=1) & ~missing.all(axis=1)
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        raise ValueError(
            f"box rows must be all NaN (no box) or all numbers; row {row} is {boxes[row].tolist()}"
        )
    present = ~missing.any(axis=1)
    x0, y0, x1, y1 = boxes[present].T
    valid = (0 <= x0) & (x0 < x1) & (x1 <= 1) & (0 <= y0) & (y0 < y1) & (y1 <= 1)
    if not valid.all():
        row = int(np.flatnonzero(present)[np.flatnonzero(~valid)[0]])
        raise ValueError(
            f"box must be normalised (x0, y0, x1, y1) with 0 <= min < max <= 1; "
            f"row {row} is {boxes[row].tolist()}"
        )
    return boxes


def has_box(boxes: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Bool ``(N,)``: True where the image has a box (its row is not NaN)."""
    return ~np.isnan(check_boxes(boxes)).any(axis=1)


def head_masks(images: np.ndarray) -> np.ndarray:
    """Every image's head as bool ``(N, H, W)`` (:func:`bt_core.explain.masks.head_mask`)."""
    images = check_images(images)
    return np.stack([head_mask(image) for image in images])


def border_band(shape: Sequence[int], width: float = 0.1) -> np.ndarray:
    """Bool ``(H, W)``, True in the frame of relative ``width`` on all four sides.

    Scanners burn text and rulers into this frame. Its thickness is ``round(width * H)``
    rows at top and bottom and ``round(width * W)`` columns at left and right, at least one.
    """
    height, width_px = check_shape(shape)
    if not 0.0 < width < 0.5:
        raise ValueError(f"border width must be in (0, 0.5), got {width}")
    rows = max(1, int(round(width * height)))
    cols = max(1, int(round(width * width_px)))
    band = np.zeros((height, width_px), dtype=bool)
    band[:rows] = band[-rows:] = True
    band[:, :cols] = band[:, -cols:] = True
    return band


def box_masks(boxes: Sequence[Sequence[float]] | np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Bool ``(N, H, W)``: each image's box (inclusive corners); all False for a NaN row."""
    boxes = check_boxes(boxes)
    height, width = check_shape(shape)
    masks = np.zeros((len(boxes), height, width), dtype=bool)
    for i in np.flatnonzero(~np.isnan(boxes).any(axis=1)):
        masks[i] = box_mask((height, width), boxes[i])
    return masks
