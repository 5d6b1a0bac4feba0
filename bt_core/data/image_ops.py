"""Image-level preprocessing chosen per run (``train_all.py --preprocess``).

Each op takes and returns a uint8 RGB image ``(H, W, 3)``. They run once, when the dataset
is decoded, on the full-resolution image and before the resize to the run's size, so
``test_images.npz`` holds what the models saw. Model-level scaling (``rescale``, ``caffe``,
...) is a different step: ``bt_core.data.preprocess.preprocess_batch``.

    clahe      contrast-limited adaptive histogram equalization (clip limit 2.0, 8 x 8 tiles)
               on the luminance (the grey level of a grayscale image)
    sharpen    Gaussian unsharp mask: 1.5 x image - 0.5 x blurred image (sigma 1.5)
    histeq     global histogram equalization, on the luminance
    crop_head  crop to the head (``bt_core.regions.head_mask``: threshold, largest connected
               component), a small margin, widened to a square (the head keeps its aspect),
               resized back to the input size
    mask_background  zero every pixel outside the head (the same head mask); an image where
               no usable head is found (under ``bt_core.regions.MIN_HEAD_SHARE`` of it, as
               ``usable_head_masks`` decides) is left unchanged rather than blacked out
    mask_border  zero the border band where scanners burn text (``bt_core.regions.border_band``
               at the width the shortcut measures read as "border":
               ``bt_core.shortcuts.attention.DEFAULT_BORDER_WIDTH``)

``apply_image_ops_with_frame`` also returns the :class:`Frame` the chain applied: where a
normalised point of the original image lands in the result, so tumor boxes drawn on the
original follow a head crop. Only ``crop_head`` moves the frame; the others (the masks too:
they black pixels out, they move none) keep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import cv2
import numpy as np

from bt_core.regions import border_band, head_mask, mask_bounds, usable_head_masks
from bt_core.shortcuts.attention import DEFAULT_BORDER_WIDTH

CLAHE_CLIP_LIMIT = 2.0
CLAHE_TILES = (8, 8)
SHARPEN_SIGMA = 1.5
SHARPEN_WEIGHTS = (1.5, -0.5)
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


@dataclass(frozen=True)
class Frame:
    """A normalised point ``(x, y)`` of the original image (x right, y down, [0, 1] over the
    pixel edges) lands at ``((x - x_offset) * x_scale, (y - y_offset) * y_scale)`` of the result.

    Resizing keeps normalised coordinates, so a frame holds across the final resize too.
    """

    x_offset: float = 0.0
    y_offset: float = 0.0
    x_scale: float = 1.0
    y_scale: float = 1.0

    def then(self, later: Frame) -> Frame:
        """This frame followed by ``later``: ((o - a1) s1 - a2) s2 = (o - (a1 + a2 / s1)) s1 s2."""
        return Frame(
            self.x_offset + later.x_offset / self.x_scale,
            self.y_offset + later.y_offset / self.y_scale,
            self.x_scale * later.x_scale,
            self.y_scale * later.y_scale,
        )

    def as_array(self) -> np.ndarray:
        """``(x_offset, y_offset, x_scale, y_scale)`` as float32: 4 numbers per image."""
        return np.array([self.x_offset, self.y_offset, self.x_scale, self.y_scale], dtype=np.float32)

    def map_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` (x_min, y_min, x_max, y_max) into this frame, not clipped."""
        return map_boxes(boxes, np.broadcast_to(self.as_array(), (len(boxes), 4)))


IDENTITY = Frame()


def map_boxes(boxes: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Each box ``(N, 4)`` into its own frame ``(N, 4)`` (rows of :meth:`Frame.as_array`), not clipped."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    frames = np.asarray(frames, dtype=np.float64).reshape(-1, 4)
    offsets = np.tile(frames[:, :2], 2)  # x, y, x, y
    scales = np.tile(frames[:, 2:], 2)
    return (boxes - offsets) * scales


def head_window(image: np.ndarray) -> tuple[int, int, int] | None:
    """The square ``crop_head`` cuts, ``(x0, y0, side)`` in pixels of ``image`` (it may reach
    past the image: that part is black padding); None when no head is found."""
    box = mask_bounds(head_mask(image))  # the head's box: that of its largest bright component
    if box is None:
        return None
    top, left, bottom, right = box
    side = max(bottom - top, right - left)
    side += 2 * max(2, int(round(HEAD_MARGIN_FRACTION * side)))
    centre_y, centre_x = (top + bottom) / 2, (left + right) / 2
    return int(round(centre_x - side / 2)), int(round(centre_y - side / 2)), side


def crop_head_with_frame(image: np.ndarray) -> tuple[np.ndarray, Frame]:
    """:func:`crop_head` and the frame it applied; one head mask serves both."""
    window = head_window(image)
    if window is None:
        return image, IDENTITY
    height, width = image.shape[:2]
    x0, y0, side = window
    # Pad with black where the square reaches past the image, so the head is never squashed.
    padded = cv2.copyMakeBorder(image, side, side, side, side, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    crop = padded[y0 + side : y0 + 2 * side, x0 + side : x0 + 2 * side]
    interpolation = cv2.INTER_AREA if side >= max(height, width) else cv2.INTER_LINEAR
    frame = Frame(x0 / width, y0 / height, width / side, height / side)
    return cv2.resize(crop, (width, height), interpolation=interpolation), frame


def crop_head(image: np.ndarray) -> np.ndarray:
    return crop_head_with_frame(image)[0]


def mask_background(image: np.ndarray) -> np.ndarray:
    """Zero every pixel outside the head; unchanged when no usable head is found (a failed
    mask must not black out the whole image)."""
    heads, _ = usable_head_masks(image[None])  # no head found: all head, so nothing is zeroed
    return np.where(heads[0][..., None], image, 0).astype(np.uint8)


def mask_border(image: np.ndarray) -> np.ndarray:
    """Zero the border band the shortcut measures call "border", where scanners burn text."""
    masked = image.copy()
    masked[border_band(image.shape[:2], DEFAULT_BORDER_WIDTH)] = 0
    return masked


def _keeps_frame(op: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], tuple[np.ndarray, Frame]]:
    return lambda image: (op(image), IDENTITY)


_OPS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, Frame]]] = {
    "clahe": _keeps_frame(clahe),
    "sharpen": _keeps_frame(sharpen),
    "histeq": _keeps_frame(histeq),
    "crop_head": crop_head_with_frame,
    "mask_background": _keeps_frame(mask_background),
    "mask_border": _keeps_frame(mask_border),
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
    return apply_image_ops_with_frame(image_uint8, ops)[0]


def apply_image_ops_with_frame(image_uint8: np.ndarray, ops: Iterable[str] | None) -> tuple[np.ndarray, Frame]:
    """:func:`apply_image_ops` and the :class:`Frame` the chain applied (identity without ``crop_head``)."""
    names = check_image_ops(ops)
    image = np.asarray(image_uint8)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    image = np.ascontiguousarray(image)
    frame = IDENTITY
    for name in names:
        image, moved = _OPS[name](image)
        frame = frame.then(moved)
    return (image if names else image.copy()), frame
