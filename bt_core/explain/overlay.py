"""Drawing explanation maps on images (OpenCV, NumPy; no TensorFlow).

All functions take and return uint8 RGB ``(H, W, 3)`` images and never modify their input.
Boxes are normalised ``(x_min, y_min, x_max, y_max)`` in ``[0, 1]``, as in ``boxes.csv``; a
drawn box outlines exactly the pixels its mask covers (``bt_core.regions``).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from bt_core.regions import box_pixel_bounds, resize_maps

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "cividis": cv2.COLORMAP_CIVIDIS,
    "hot": cv2.COLORMAP_HOT,
    "bone": cv2.COLORMAP_BONE,
    "parula": cv2.COLORMAP_PARULA,
    "rainbow": cv2.COLORMAP_RAINBOW,
    "hsv": cv2.COLORMAP_HSV,
}

Color = Sequence[int]


def _rgb_image(image: np.ndarray) -> np.ndarray:
    """A uint8 RGB copy of ``image`` (gray ``(H, W)`` or ``(H, W, 1)`` is expanded)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return np.repeat(image[..., np.newaxis], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) or (H, W), got shape {image.shape}")
    return image.copy()


def colorize(cam: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """A ``(h, w)`` map in ``[0, 1]`` as a uint8 RGB heat image (NaN counts as 0)."""
    key = colormap.lower() if isinstance(colormap, str) else colormap
    if key not in COLORMAPS:
        raise ValueError(f"Unknown colormap {colormap!r}; known: {', '.join(COLORMAPS)}")
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2:
        raise ValueError(f"cam must be a 2-D map, got shape {cam.shape}")
    cam = np.clip(np.nan_to_num(cam, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    heat_bgr = cv2.applyColorMap(np.round(cam * 255).astype(np.uint8), COLORMAPS[key])
    return cv2.cvtColor(heat_bgr, cv2.COLOR_BGR2RGB)


def overlay(
    image_uint8: np.ndarray, cam: np.ndarray, colormap: str = "jet", alpha: float = 0.4
) -> np.ndarray:
    """Blend the colorised ``cam`` over the image: ``(1 - alpha) * image + alpha * heat``.

    ``cam``: ``(h, w)`` in ``[0, 1]`` (an ``explain`` map); resized to the image if needed
    (:func:`bt_core.regions.resize_maps`).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    image = _rgb_image(image_uint8)
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim == 2:
        cam = resize_maps(cam, image.shape[:2])
    heat = colorize(cam, colormap)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * heat.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def box_pixels(
    box_normalized: Sequence[float], height: int, width: int
) -> tuple[int, int, int, int]:
    """``(x_min, y_min, x_max, y_max)`` in ``[0, 1]`` as the inclusive pixel corners of the
    pixels :func:`bt_core.regions.box_masks` covers (pixel-centre rule)."""
    x0, y0, x_stop, y_stop = box_pixel_bounds(box_normalized, height, width)
    return x0, y0, x_stop - 1, y_stop - 1


def draw_box(
    image: np.ndarray,
    box_normalized: Sequence[float],
    color: Color = (0, 255, 0),
    thickness: int = 2,
) -> np.ndarray:
    """A copy of ``image`` with the rectangle of a normalised box drawn on it, on the
    outermost pixels of its mask (:func:`box_pixels`)."""
    canvas = _rgb_image(image)
    x0, y0, x1, y1 = box_pixels(box_normalized, *canvas.shape[:2])
    cv2.rectangle(canvas, (x0, y0), (x1, y1), tuple(int(c) for c in color), int(thickness))
    return canvas


def draw_contour(
    image: np.ndarray,
    mask: np.ndarray,
    color: Color = (255, 255, 255),
    thickness: int = 1,
    threshold: float = 0.5,
) -> np.ndarray:
    """A copy of ``image`` with the outline of ``mask`` (bool, or values > ``threshold``),
    e.g. a thresholded CAM; the mask is resized to the image if needed."""
    canvas = _rgb_image(image)
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    binary = (mask > threshold if mask.dtype != bool else mask).astype(np.uint8)
    height, width = canvas.shape[:2]
    if binary.shape != (height, width):
        binary = cv2.resize(binary, (width, height), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in color), int(thickness))
    return canvas
