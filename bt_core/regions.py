"""Image regions that explanation maps are read against, and the one way to read a map on them.

Each measurement here exists once: the head mask (also what ``crop_head`` crops to), the
border band, box masks, map resizing and a map's share of a region. Also the input checks
every shortcut measure shares (images, labels, boxes, head masks), so each measure fails with the same
clear message. NumPy and OpenCV only (no TensorFlow).

    heads = head_masks(images_uint8)               # bool (N, H, W)
    usable, not_found = usable_head_masks(images)  # no head found: all head
    band = border_band((H, W), width=0.1)          # bool (H, W), the frame where text is burned
    boxes_in = box_masks(boxes, (H, W))            # bool (N, H, W), all False without a box
    small = resize_maps(maps, 64)                  # float32 (N, 64, 64)
    inside = map_share(maps, heads)                # float (N,): share of each map's mass in its head

Boxes are normalised ``(x0, y0, x1, y1)`` in ``[0, 1]``. A pixel (row r, column c) is inside
when its centre ``((c + 0.5) / W, (r + 0.5) / H)`` lies in ``[x0, x1) x [y0, y1)``, so a box of
width w covers about ``w * W`` columns; a box too thin to hold a pixel centre covers the pixel
that holds its own centre, so no box has an empty mask.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# Foreground is brighter than min(Otsu's threshold, this) on a lightly blurred image: MRI
# background is near black, and a cap keeps a dim head from being split by Otsu.
HEAD_THRESHOLD_CAP = 45
# A head mask smaller than this share of the image is taken as "no head found".
MIN_HEAD_SHARE = 0.02
# Maps per chunk in map_share: bounds the memory of maps resized to full image size.
SHARE_CHUNK = 64
# Pixel edges are compared after rounding to this many decimals, so 0.15 * 10 - 0.5 counts as 1.
_EDGE_DECIMALS = 9


# --------------------------------------------------------------------------- input checks


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


# --------------------------------------------------------------------------- the head


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


def head_masks(images: np.ndarray) -> np.ndarray:
    """Every image's head as bool ``(N, H, W)`` (:func:`head_mask`)."""
    images = check_images(images)
    return np.stack([head_mask(image) for image in images])


def usable_head_masks(images: np.ndarray) -> tuple[np.ndarray, int]:
    """Head masks, with every image where none was found (under :data:`MIN_HEAD_SHARE` of
    it) taken as all head: nothing is then "outside the head" and its background-only copy
    is black, so a failed mask can never raise a flag. Returns the masks and how many
    images had no head found."""
    heads = head_masks(images)
    missing = heads.reshape(len(heads), -1).mean(axis=1) < MIN_HEAD_SHARE
    heads[missing] = True
    return heads, int(missing.sum())


def check_head_masks(head_masks: np.ndarray | None, images: np.ndarray) -> np.ndarray:
    """Head masks as bool ``(N, H, W)``, one per image; None gives the images'
    :func:`usable_head_masks`, so an image with no head found never counts as outside it.
    ValueError when given masks do not match the images."""
    images = check_images(images)
    if head_masks is None:
        return usable_head_masks(images)[0]
    head_masks = np.asarray(head_masks, dtype=bool)
    if head_masks.shape != images.shape[:3]:
        raise ValueError(f"head_masks must be (N, H, W) = {images.shape[:3]}, got {head_masks.shape}")
    return head_masks


def mask_bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(top, left, bottom, right)`` of a 2-D mask's True pixels, exclusive ends; None if empty."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


# --------------------------------------------------------------------------- border and boxes


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


def _axis_bounds(low: np.ndarray, high: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel ranges ``[start, stop)`` whose centres ``(i + 0.5) / size`` lie in ``[low, high)``;
    the pixel holding the middle of ``[low, high)`` where no centre does."""
    start = np.ceil(np.round(np.asarray(low) * size - 0.5, _EDGE_DECIMALS)).astype(np.int64)
    stop = np.ceil(np.round(np.asarray(high) * size - 0.5, _EDGE_DECIMALS)).astype(np.int64)
    middle = np.clip(np.floor((np.asarray(low) + high) / 2 * size), 0, size - 1).astype(np.int64)
    empty = stop <= start
    return np.where(empty, middle, start), np.where(empty, middle + 1, stop)


def box_pixel_bounds(box: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """``(col_start, row_start, col_stop, row_stop)`` (exclusive stops) of the pixels a
    normalised box covers at ``height`` x ``width`` (pixel-centre rule, module docstring)."""
    values = np.asarray(box, dtype=np.float64)
    if values.shape != (4,) or not np.isfinite(values).all():
        raise ValueError(f"box must be normalised (x0, y0, x1, y1) numbers, got {tuple(np.ravel(box))}")
    check_boxes(values[None])
    height, width = check_shape((height, width))
    col_start, col_stop = _axis_bounds(values[0], values[2], width)
    row_start, row_stop = _axis_bounds(values[1], values[3], height)
    return int(col_start), int(row_start), int(col_stop), int(row_stop)


def box_masks(boxes: Sequence[Sequence[float]] | np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Bool ``(N, H, W)``: each image's box (pixel-centre rule); all False for a NaN row."""
    boxes = check_boxes(boxes)
    height, width = check_shape(shape)
    masks = np.zeros((len(boxes), height, width), dtype=bool)
    present = ~np.isnan(boxes).any(axis=1)
    if present.any():
        x0, y0, x1, y1 = boxes[present].T
        col_start, col_stop = _axis_bounds(x0, x1, width)
        row_start, row_stop = _axis_bounds(y0, y1, height)
        cols, rows = np.arange(width), np.arange(height)
        in_cols = (cols >= col_start[:, None]) & (cols < col_stop[:, None])
        in_rows = (rows >= row_start[:, None]) & (rows < row_stop[:, None])
        masks[present] = in_rows[:, :, None] & in_cols[:, None, :]
    return masks


# --------------------------------------------------------------------------- maps on regions


def resize_maps(maps: np.ndarray, size: int | Sequence[int], *, clip: bool = False) -> np.ndarray:
    """Maps ``(h, w)`` or ``(N, h, w)`` as float32 at ``size`` (``(H, W)``, or one int for a square).

    NaN and inf become 0. Shrinking (no side grows) averages the cells each pixel covers
    (``INTER_AREA``); growing interpolates bilinearly (``INTER_LINEAR``). Maps already at
    ``size`` are not resampled. ``clip``: clip the result to ``[0, 1]`` (maps meant to be
    there, e.g. after a float16 round trip).
    """
    array = np.nan_to_num(np.asarray(maps, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if array.ndim not in (2, 3):
        raise ValueError(f"maps must be (h, w) or (N, h, w), got shape {array.shape}")
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    height, width = check_shape(size)
    stack = array[None] if array.ndim == 2 else array
    if stack.shape[1:] != (height, width):
        grows = height > stack.shape[1] or width > stack.shape[2]
        interpolation = cv2.INTER_LINEAR if grows else cv2.INTER_AREA
        resized = np.empty((len(stack), height, width), dtype=np.float32)
        for i, cam in enumerate(stack):
            # cv2.resize takes (width, height).
            resized[i] = cv2.resize(cam, (width, height), interpolation=interpolation)
        stack = resized
    if clip:
        stack = np.clip(stack, 0.0, 1.0)
    return stack[0] if array.ndim == 2 else stack


def map_share(maps: np.ndarray, masks: np.ndarray) -> float | np.ndarray:
    """Share of each map's positive mass (sum of its values clipped at 0) inside its mask.

    ``maps``: one ``(h, w)`` map (returns a float) or ``(N, h, w)`` (returns float64 ``(N,)``).
    ``masks``: bool ``(H, W)`` for every map, or ``(N, H, W)``, one per map. Maps are
    resized to the masks' size with :func:`resize_maps`. NaN where a map has no mass.
    """
    array = np.asarray(maps)
    stack = array[None] if array.ndim == 2 else array
    if stack.ndim != 3:
        raise ValueError(f"maps must be (h, w) or (N, h, w), got shape {array.shape}")
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim not in (2, 3) or (masks.ndim == 3 and len(masks) != len(stack)):
        raise ValueError(
            f"masks must be (H, W) or (N, H, W) with N = {len(stack)}, got shape {masks.shape}"
        )
    shares = np.full(len(stack), np.nan)
    for start in range(0, len(stack), SHARE_CHUNK):
        part = slice(start, start + SHARE_CHUNK)
        mass = np.clip(resize_maps(stack[part], masks.shape[-2:]), 0.0, None).astype(np.float64)
        inside = (mass * (masks[part] if masks.ndim == 3 else masks)).sum(axis=(1, 2))
        total = mass.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            shares[part] = np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
    return float(shares[0]) if array.ndim == 2 else shares
