"""Robust image decoding: any readable JPEG / PNG / ..., grayscale or color, to uint8 RGB."""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from bt_core.data.layouts import SkippedFile
from bt_core.data.image_ops import IDENTITY, Frame, apply_image_ops_with_frame

FRAME_COLUMNS = ["x_offset", "y_offset", "x_scale", "y_scale"]


class UnreadableImageError(ValueError):
    """The file exists but does not decode to an image."""


def decode_image_bytes(data: bytes | np.ndarray, size: int, ops: tuple[str, ...] = ()) -> np.ndarray:
    """Decode encoded image bytes to a (size, size, 3) uint8 RGB array.

    ``ops`` (see bt_core.data.image_ops) run on the full-resolution image, before the resize.
    """
    return decode_image_bytes_with_frame(data, size, ops)[0]


def decode_image_bytes_with_frame(
    data: bytes | np.ndarray, size: int, ops: tuple[str, ...] = ()
) -> tuple[np.ndarray, Frame]:
    """:func:`decode_image_bytes` and the frame its ops applied (the resize keeps it)."""
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
    frame = IDENTITY
    if ops:
        image, frame = apply_image_ops_with_frame(image, ops)
    # INTER_AREA is the right filter for shrinking, which is the usual direction here.
    interpolation = cv2.INTER_AREA if image.shape[0] >= size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation), frame


def read_image(path: str | Path, size: int, ops: tuple[str, ...] = ()) -> np.ndarray:
    """Read one image file as (size, size, 3) uint8 RGB; raises UnreadableImageError."""
    return read_image_with_frame(path, size, ops)[0]


def read_image_with_frame(path: str | Path, size: int, ops: tuple[str, ...] = ()) -> tuple[np.ndarray, Frame]:
    """:func:`read_image` and the frame its ops applied."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # fromfile copes with non-ASCII names
    except OSError as exc:
        raise UnreadableImageError(f"cannot read file: {exc}") from exc
    return decode_image_bytes_with_frame(data, size, ops)


@dataclass(frozen=True)
class DecodedImages:
    images: np.ndarray  # uint8 (N, S, S, 3) of the readable files
    ok: np.ndarray  # bool over the requested paths: which decoded
    skipped: list[SkippedFile]
    frames: pd.DataFrame  # FRAME_COLUMNS (float32) indexed by path, only for the paths asked for


def read_images(
    root: Path,
    relative_paths: list[str],
    size: int,
    workers: int = 4,
    ops: tuple[str, ...] = (),
    frames_for: Collection[str] = (),
) -> DecodedImages:
    """Decode many images in threads (OpenCV releases the GIL).

    ``frames_for``: the paths (e.g. those with a tumor box) whose :class:`Frame` to keep; the
    others' frames are dropped, so memory stays 4 floats per image that needs one.
    """
    wanted = set(frames_for)

    def load(relative: str) -> tuple[np.ndarray, Frame | None] | str:
        try:
            image, frame = read_image_with_frame(Path(root) / relative, size, ops)
        except UnreadableImageError as exc:
            return str(exc)
        return image, (frame if relative in wanted else None)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(load, relative_paths))
    ok = np.array([not isinstance(r, str) for r in results], dtype=bool)
    skipped = [SkippedFile(p, r) for p, r in zip(relative_paths, results) if isinstance(r, str)]
    images = [r[0] for r in results if not isinstance(r, str)]
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), dtype=np.uint8)
    framed = [(p, r[1]) for p, r in zip(relative_paths, results) if not isinstance(r, str) and r[1] is not None]
    frames = pd.DataFrame(
        np.array([frame.as_array() for _path, frame in framed], dtype=np.float32).reshape(-1, 4),
        columns=FRAME_COLUMNS,
        index=pd.Index([path for path, _frame in framed], name="image", dtype=str),
    )
    return DecodedImages(stacked, ok, skipped, frames)
