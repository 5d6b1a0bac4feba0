"""What the Inspect page draws and measures on one image (no Streamlit): the picture at
display size with the stored tumor box and head outline, the map over it, where the map's
mass lies (stored shares, or measured now against the stored masks), and an upload
prepared as the run's models saw their images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from bt_core.artifacts import MAP_SHARES
from bt_core.explain.overlay import draw_box, draw_contour, overlay
from bt_core.regions import border_band, box_masks, map_share, resize_maps
from bt_core.shortcuts.attention import DEFAULT_BORDER_WIDTH


# Overlays are drawn at least this many pixels a side: a 64 px test image shown in a
# 350 px column would otherwise be a blur, with a box outline a pixel and a half wide.
DISPLAY_SIZE = 256
BOX_COLOR = (0, 255, 0)
HEAD_COLOR = (255, 255, 255)
# How a run gets its stored head masks and shares.
EXPLAIN_COMMAND = "python train_all.py --explain RUN_DIR"


def display_size(image_side: int) -> int:
    return max(int(image_side), DISPLAY_SIZE)


def enlarge_image(image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 RGB image (not a map: see resize_maps) at ``(size, size)``, unchanged when already so."""
    image = np.asarray(image)
    if image.shape[:2] == (size, size):
        return image
    interpolation = cv2.INTER_CUBIC if size > image.shape[0] else cv2.INTER_AREA
    return cv2.resize(image, (size, size), interpolation=interpolation)


def drawable_head(head: np.ndarray | None) -> bool:
    """Whether a stored head mask outlines a head: an all-True mask is how the analysis pass
    stores "no head found" (nothing counted outside it), which has no outline."""
    return head is not None and bool(head.any()) and not bool(head.all())


def outlined_image(
    image: np.ndarray, box: Sequence[float] | None = None, head: np.ndarray | None = None
) -> np.ndarray:
    """The input with the head outline and the tumor box (normalised) drawn on it. ``head``:
    a bool mask of any size, resized NEAREST to the image before it is outlined
    (:func:`bt_core.explain.overlay.draw_contour`)."""
    picture = np.asarray(image)
    if drawable_head(head):
        picture = draw_contour(picture, head, color=HEAD_COLOR, thickness=1)
    if box is not None:
        picture = draw_box(picture, box, color=BOX_COLOR, thickness=2)
    return picture


def compose_overlay(
    image: np.ndarray,
    cam: np.ndarray,
    colormap: str = "jet",
    alpha: float = 0.45,
    box: Sequence[float] | None = None,
    head: np.ndarray | None = None,
) -> np.ndarray:
    """The map over the image at the image's size, then the outlines on top."""
    shown = resize_maps(cam, image.shape[:2], clip=True)
    return outlined_image(overlay(image, shown, colormap, alpha), box, head)


@dataclass(frozen=True)
class StoredOutlines:
    """What the run stored about one image's regions: its tumor box (``test_boxes.csv``,
    normalised, in the stored image's frame) and head mask (``test_heads.npz``, bool at the
    stored image size), and whether the run stored any box / head mask at all."""

    box: tuple[float, float, float, float] | None
    head: np.ndarray | None
    run_has_boxes: bool
    run_has_heads: bool
    upload: bool = False


# An uploaded image: nothing stored about it.
UPLOAD_OUTLINES = StoredOutlines(None, None, False, False, upload=True)


def stored_outlines(boxes: np.ndarray | None, heads: np.ndarray | None, position: int) -> StoredOutlines:
    """The stored box (``Run.test_boxes``, NaN row: none) and head (``Run.test_heads``) of the
    test image at ``position`` (test image order)."""
    box = None
    if boxes is not None and np.isfinite(boxes[position]).all():
        box = tuple(float(value) for value in boxes[position])
    head = None if heads is None else np.asarray(heads[position], dtype=bool)
    return StoredOutlines(box, head, boxes is not None, heads is not None)


@dataclass(frozen=True)
class Picture:
    """The image every model column draws on, at display size, and what the run stored about
    it; ``show_outlines`` says whether the box and head outline are drawn."""

    image: np.ndarray  # uint8 RGB, display size
    stored: StoredOutlines
    show_outlines: bool = True
    native_side: int = 0  # the side of the image as stored (or as a model takes an upload)

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        return self.stored.box if self.show_outlines else None

    @property
    def head(self) -> np.ndarray | None:
        return self.stored.head if self.show_outlines and drawable_head(self.stored.head) else None


def make_picture(image: np.ndarray, stored: StoredOutlines, outlines: bool) -> Picture:
    """``image`` enlarged to display size, with what the run stored about it."""
    side = int(np.asarray(image).shape[0])
    return Picture(enlarge_image(image, display_size(side)), stored, bool(outlines), side)


def outline_caption(picture: Picture) -> str:
    """What the outlines drawn on the input mean, and why one is missing; "" when off."""
    if not picture.show_outlines:
        return ""
    stored = picture.stored
    if stored.upload:
        return "No outlines: an upload has no stored tumor box or head mask."
    parts = []
    if stored.box is not None:
        parts.append("Green: the stored tumor box (test_boxes.csv).")
    elif stored.run_has_boxes:
        parts.append("No tumor box for this image.")
    else:
        parts.append("No tumor box: the run stored none (test_boxes.csv).")
    if drawable_head(stored.head):
        parts.append("White: the stored head outline (test_heads.npz).")
    elif stored.run_has_heads:
        parts.append("No head outline: no head was found in this image.")
    else:
        parts.append(f"No head outline: the run has no stored head masks ({EXPLAIN_COMMAND}).")
    return " ".join(parts)


# --------------------------------------------------------------------------- where the map lies


def stored_shares(shares: pd.DataFrame | None, image_id: str) -> dict[str, float] | None:
    """The shares the analysis pass stored for one image's precomputed map
    (:func:`bt_core.artifacts.load_map_shares`), or None when the file has none for it."""
    if shares is None or image_id not in shares.index:
        return None
    row = shares.loc[image_id]
    return {name: float(row[name]) for name in MAP_SHARES}


def live_shares(cam: np.ndarray, stored: StoredOutlines, image_side: int) -> dict[str, float]:
    """Shares of a map computed now (another class, live mode, an upload), read against the
    stored head and box masks as the analysis pass reads a stored map: the masks at the
    stored image size (``image_side`` when no head is stored), the map resized to them.
    No stored head (an upload): no outside-head share; no stored box: no box share."""
    shape = stored.head.shape if stored.head is not None else (int(image_side), int(image_side))
    shares = {"border": float(map_share(cam, border_band(shape, DEFAULT_BORDER_WIDTH)))}
    if stored.head is not None:
        shares["outside_head"] = 1.0 - float(map_share(cam, stored.head))
    if stored.box is not None:
        shares["in_box"] = float(map_share(cam, box_masks([stored.box], shape)[0]))
    return shares


def shares_caption(shares: Mapping[str, float] | None) -> str:
    """Where a map's mass lies, in the words of the shortcut measures; "" when unknown."""
    shares = shares or {}

    def known(name: str) -> bool:
        return name in shares and np.isfinite(shares[name])

    parts = []
    if known("in_box"):
        parts.append(f"{shares['in_box']:.0%} of the map in the tumor box")
    if known("outside_head"):
        parts.append(f"{shares['outside_head']:.0%} outside the head")
    if known("border"):
        parts.append(f"{shares['border']:.0%} in the border band")
    return " · ".join(parts)


# --------------------------------------------------------------------------- uploads


def prepare_upload(raw_bytes: bytes, image_size: int, ops: Sequence[str] | None = ()) -> np.ndarray:
    """An uploaded JPEG / PNG (grayscale or colour, any size) as the run's models saw their
    images: uint8 RGB ``(image_size, image_size, 3)`` after the run's ``preprocess`` ops.

    Raises ValueError (``UnreadableImageError``) for bytes that are not an image.
    """
    from bt_core.data.images import decode_image_bytes

    return decode_image_bytes(bytes(raw_bytes), int(image_size), tuple(ops or ()))
