"""Robust image decoding: any readable JPEG / PNG / ..., grayscale or color, to uint8 RGB."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from bt_core.data.layouts import SkippedFile
from bt_core.data.image_ops import apply_image_ops


class UnreadableImageError(ValueError):
    """The file exists but does not decode to an image."""


def decode_image_bytes(data: bytes | np.ndarray, size: int, ops: tuple[str, ...] = ()) -> np.ndarray:
    """Decode encoded image bytes to a (size, size, 3) uint8 RGB array.

    ``ops`` (see bt_core.data.image_ops) run on the full-resolution image, before the resize.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    if buffer.size == 0:
        raise UnreadableImageError("empty file")
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)  # grayscale becomes 3 equal channels
    except cv2.error as exc:
        raise UnreadableImageError(f"OpenCV could not decode it: {exc}") from exc
    if image is None or image.size == 0:
        raise UnreadableImageError("not a decodable image (corrupt or unsupported format)")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if ops:
        image = apply_image_ops(image, ops)
    # INTER_AREA is the right filter for shrinking, which is the usual direction here.
    interpolation = cv2.INTER_AREA if image.shape[0] >= size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def read_image(path: str | Path, size: int, ops: tuple[str, ...] = ()) -> np.ndarray:
    """Read one image file as (size, size, 3) uint8 RGB; raises UnreadableImageError."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # fromfile copes with non-ASCII names
    except OSError as exc:
        raise UnreadableImageError(f"cannot read file: {exc}") from exc
    return decode_image_bytes(data, size, ops)


def read_images(
    root: Path, relative_paths: list[str], size: int, workers: int = 4, ops: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray, list[SkippedFile]]:
    """Decode many images in threads (OpenCV releases the GIL).

    Returns (images of the readable files, boolean mask over ``relative_paths``, skipped files).
    """

    def load(relative: str) -> np.ndarray | str:
        try:
            return read_image(Path(root) / relative, size, ops)
        except UnreadableImageError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(load, relative_paths))
    ok = np.array([not isinstance(r, str) for r in results], dtype=bool)
    skipped = [SkippedFile(p, r) for p, r in zip(relative_paths, results) if isinstance(r, str)]
    images = [r for r in results if not isinstance(r, str)]
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), dtype=np.uint8)
    return stacked, ok, skipped
