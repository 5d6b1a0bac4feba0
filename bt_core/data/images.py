"""Robust image decoding: any readable JPEG / PNG / ..., grayscale or color, to uint8 RGB.

Training folders and dashboard uploads share this one decoder. Its rules (issue 11):

- **Header first.** The header (PNG IHDR, JPEG SOF, ... read by Pillow, which reads no pixel
  data) gives the size before anything is decoded. An image of more than
  ``ImageLimits.max_pixels`` pixels (:data:`MAX_PIXELS`, 50 megapixels by default: a
  decompression bomb) is refused before decoding, so a 0.9 MB PNG declaring 30,000 x 30,000
  pixels costs microseconds, not 5 GB.
- **Too small or too thin.** A side below ``min_side`` (:data:`MIN_SIDE`, 16 px) or an aspect
  ratio above ``max_aspect`` (:data:`MAX_ASPECT`, 4:1) is refused: resizing such an image to
  the model's square input gives a meaningless grey smear.
- **16-bit data.** A 16-bit image is scaled by its data's real range: if its maximum is below
  4096 it holds 12-bit data (common for MRI exports) and is scaled by 4095, otherwise by
  65535. So a 12-bit slice keeps its contrast instead of becoming almost black.
- **Transparency.** An image with an alpha channel (RGBA, grey + alpha, a palette with a
  transparent entry) is composited on black, the MRI background: a transparent pixel is
  black, whatever RGB it hides.

Every refusal raises :class:`UnreadableImageError` with the size and the limit in its message;
training skips and reports the file like any unreadable one, the dashboard shows the message.
Ordinary 8-bit grey / RGB images decode exactly as OpenCV's ``IMREAD_COLOR`` does.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from bt_core.data.layouts import SkippedFile
from bt_core.data.image_ops import IDENTITY, Frame, apply_image_ops_with_frame

FRAME_COLUMNS = ["x_offset", "y_offset", "x_scale", "y_scale"]

MAX_PIXELS = 50_000_000  # width * height above this is refused before decoding (a bomb)
MIN_SIDE = 16  # px: a smaller width or height is refused
MAX_ASPECT = 4.0  # longer side / shorter side above this is refused
TWELVE_BIT_MAX = 4095  # a 16-bit image whose maximum is at most this holds 12-bit data
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What Pillow may raise on a header it cannot parse; OpenCV then has its say.
_HEADER_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)


class UnreadableImageError(ValueError):
    """The file exists but does not decode to an image (or breaks a limit of :class:`ImageLimits`)."""


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be before it is decoded; ``None`` switches a check off."""

    max_pixels: int | None = MAX_PIXELS
    min_side: int | None = MIN_SIDE
    max_aspect: float | None = MAX_ASPECT


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class _Header:
    width: int
    height: int
    has_alpha: bool


def _png_size(buffer: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, without Pillow; None if it is not a PNG."""
    head = buffer[:24].tobytes()
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _check_size(width: int, height: int, limits: ImageLimits) -> None:
    pixels = width * height
    if limits.max_pixels is not None and pixels > limits.max_pixels:
        raise UnreadableImageError(
            f"image is {width:,} x {height:,} = {pixels:,} pixels, above the limit of "
            f"{limits.max_pixels:,} pixels (MAX_PIXELS; a possible decompression bomb); refused before decoding"
        )
    if limits.min_side is not None and min(width, height) < limits.min_side:
        raise UnreadableImageError(
            f"image is {width} x {height} pixels, below the minimum side of {limits.min_side} px (MIN_SIDE)"
        )
    if limits.max_aspect is not None and max(width, height) > limits.max_aspect * min(width, height):
        raise UnreadableImageError(
            f"image is {width} x {height} pixels, an aspect ratio of {max(width, height) / min(width, height):.1f}:1, "
            f"above the limit of {limits.max_aspect:g}:1 (MAX_ASPECT)"
        )


def _read_header(buffer: np.ndarray, limits: ImageLimits) -> _Header | None:
    """The header's size and transparency, after the size checks; None when Pillow cannot
    parse the header (OpenCV then decodes or refuses it, and the checks run on its result)."""
    png = _png_size(buffer)
    if png is not None and limits.max_pixels is not None and png[0] * png[1] > limits.max_pixels:
        _check_size(*png, limits)  # refused from the IHDR alone, without Pillow
    try:
        with Image.open(io.BytesIO(buffer.tobytes())) as image:  # reads the header only
            width, height = image.size
            has_alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    except Image.DecompressionBombError as exc:  # Pillow's own limit (~179 Mpx) refused it first
        if limits.max_pixels is None or limits.max_pixels > 2 * (Image.MAX_IMAGE_PIXELS or 0):
            return None  # the caller allows more than Pillow: leave it to OpenCV
        raise UnreadableImageError(
            f"image is above the limit of {limits.max_pixels:,} pixels (MAX_PIXELS; Pillow: {exc}); "
            f"refused before decoding"
        ) from exc
    except _HEADER_ERRORS:
        return None
    _check_size(width, height, limits)
    return _Header(width, height, has_alpha)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 from a uint8 or uint16 array by the module's 16-bit rule (12-bit data by 4095)."""
    if image.dtype == np.uint8:
        return image
    top = TWELVE_BIT_MAX if int(image.max(initial=0)) <= TWELVE_BIT_MAX else np.iinfo(np.uint16).max
    return np.clip(np.rint(image.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)


def _decode_pixels(buffer: np.ndarray, has_alpha: bool) -> np.ndarray | None:
    """BGR uint8 (H, W, 3), 16-bit scaled and alpha composited on black; None if undecodable."""
    if not has_alpha:
        # IMREAD_COLOR keeps OpenCV's EXIF orientation; ANYDEPTH keeps 16 bits for our scaling.
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
        if image is not None and image.dtype not in (np.uint8, np.uint16):
            image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)  # float TIFF etc.: OpenCV's own conversion
        return None if image is None else _to_uint8(image)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    if image.dtype not in (np.uint8, np.uint16):
        return cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if image.ndim == 2:
        return cv2.cvtColor(_to_uint8(image), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:  # composite on black: colour * alpha
        alpha = image[..., 3:4].astype(np.float32) / np.iinfo(image.dtype).max
        colour = _to_uint8(np.ascontiguousarray(image[..., :3])).astype(np.float32)
        return np.clip(np.rint(colour * alpha), 0, 255).astype(np.uint8)
    return _to_uint8(image[..., :3])


def decode_image_bytes(
    data: bytes | np.ndarray, size: int, ops: tuple[str, ...] = (), limits: ImageLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """Decode encoded image bytes to a (size, size, 3) uint8 RGB array.

    ``ops`` (see bt_core.data.image_ops) run on the full-resolution image, before the resize.
    ``limits``: the size checks of the module docstring, made before decoding.
    """
    return decode_image_bytes_with_frame(data, size, ops, limits)[0]


def decode_image_bytes_with_frame(
    data: bytes | np.ndarray, size: int, ops: tuple[str, ...] = (), limits: ImageLimits = DEFAULT_LIMITS
) -> tuple[np.ndarray, Frame]:
    """:func:`decode_image_bytes` and the frame its ops applied (the resize keeps it)."""
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    if buffer.size == 0:
        raise UnreadableImageError("empty file")
    header = _read_header(buffer, limits)
    try:
        image = _decode_pixels(buffer, header.has_alpha if header else False)
    except cv2.error as exc:
        raise UnreadableImageError(f"OpenCV could not decode it: {exc}") from exc
    if image is None or image.size == 0:
        raise UnreadableImageError("not a decodable image (corrupt or unsupported format)")
    if header is None:  # Pillow could not read the header: check what OpenCV decoded
        _check_size(image.shape[1], image.shape[0], limits)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    frame = IDENTITY
    if ops:
        image, frame = apply_image_ops_with_frame(image, ops)
    # INTER_AREA is the right filter for shrinking, which is the usual direction here.
    interpolation = cv2.INTER_AREA if image.shape[0] >= size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation), frame


def read_image(
    path: str | Path, size: int, ops: tuple[str, ...] = (), limits: ImageLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """Read one image file as (size, size, 3) uint8 RGB; raises UnreadableImageError naming the file."""
    return read_image_with_frame(path, size, ops, limits)[0]


def read_image_with_frame(
    path: str | Path, size: int, ops: tuple[str, ...] = (), limits: ImageLimits = DEFAULT_LIMITS
) -> tuple[np.ndarray, Frame]:
    """:func:`read_image` and the frame its ops applied."""
    try:
        return _read_file(path, size, ops, limits)
    except UnreadableImageError as exc:
        raise UnreadableImageError(f"{path}: {exc}") from exc


def _read_file(path: str | Path, size: int, ops: tuple[str, ...], limits: ImageLimits) -> tuple[np.ndarray, Frame]:
    """:func:`read_image_with_frame` without the file name in the message (callers add it)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UnreadableImageError(f"cannot read file: {exc}") from exc
    if stat.S_ISDIR(mode):
        raise UnreadableImageError("a folder, not an image file")
    if not stat.S_ISREG(mode):  # a FIFO would block the read forever, a device never end
        raise UnreadableImageError("not a regular file (FIFO, socket or device); not read")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # fromfile copes with non-ASCII names
    except OSError as exc:
        raise UnreadableImageError(f"cannot read file: {exc}") from exc
    return decode_image_bytes_with_frame(data, size, ops, limits)


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
    limits: ImageLimits = DEFAULT_LIMITS,
) -> DecodedImages:
    """Decode many images in threads (OpenCV releases the GIL).

    ``frames_for``: the paths (e.g. those with a tumor box) whose :class:`Frame` to keep; the
    others' frames are dropped, so memory stays 4 floats per image that needs one.
    ``limits``: see :class:`ImageLimits`; an image outside them is skipped with the reason.
    """
    wanted = set(frames_for)

    def load(relative: str) -> tuple[np.ndarray, Frame | None] | str:
        try:
            image, frame = _read_file(Path(root) / relative, size, ops, limits)  # skipped names the path
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
