"""What a counterfactual probe does to an image: another source, the same anatomy.

Fills are chosen so the fill itself is no cue:

- :func:`swap_outside_head`: the recipient's head pixels are kept bit for bit; every pixel
  outside it (background and border band) is the donor's pixel, except where the donor's own
  head lies: there it is the donor's per-channel median background (its pixels outside its
  head; 0 when the donor has none), so the donor's anatomy never leaks in.
- :func:`match_style`: inside each image's head, grey level ``g`` becomes the reference level
  at ``g``'s quantile (mid-rank) in this head, the reference being the pooled grey histogram
  of the reference images' heads (quantile mapping with ``np.interp``). The grey levels' map
  is applied to each channel value alike (exact for grey MRI, R = G = B). Outside the head
  nothing changes. Noise level and sharpness are not matched.
- :func:`blank_border`: the border band (:func:`bt_core.regions.border_band`) set to 0 or
  inpainted (OpenCV Telea, radius :data:`INPAINT_RADIUS`) from its inside neighbourhood. Given
  head masks, the band's pixels inside the head are kept (cropped heads reach the frame).

Used by :mod:`bt_core.shortcuts.counterfactual`, which predicts the changed images and counts
the decisions that move.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bt_core.regions import border_band, check_images, to_gray, usable_head_masks

# Border band of the border probes, as in the source probe (bt_core.shortcuts.source_probe).
BORDER_WIDTH = 0.1
# Telea's neighbourhood in pixels: small, so the fill comes from right inside the band.
INPAINT_RADIUS = 3
BORDER_METHODS = ("black", "inpaint")


def checked_masks(masks: np.ndarray | None, images: np.ndarray, name: str) -> np.ndarray:
    """Bool ``(N, H, W)`` masks of ``images``; None gives their usable head masks."""
    if masks is None:
        return usable_head_masks(images)[0]
    masks = np.asarray(masks)
    if masks.shape != images.shape[:3]:
        raise ValueError(f"{name} must be (N, H, W) = {images.shape[:3]}, got {masks.shape}")
    return masks.astype(bool)


def background_medians(images: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 3)``: each image's per-channel median outside its head (0 when all head)."""
    images = check_images(images)
    heads = checked_masks(heads, images, "heads")
    medians = np.zeros((len(images), 3), np.uint8)
    for i, (image, head) in enumerate(zip(images, heads)):
        outside = image[~head]
        if len(outside):
            medians[i] = np.round(np.median(outside, axis=0)).astype(np.uint8)
    return medians


def swap_outside_head(
    recipients: np.ndarray,
    recipient_heads: np.ndarray,
    donors: np.ndarray,
    donor_heads: np.ndarray,
) -> np.ndarray:
    """Each recipient's head on its donor's outside (rule in the module docstring).

    All four arrays pair up by position: images uint8 ``(N, H, W, 3)`` of one shape, heads
    bool ``(N, H, W)``. Returns new uint8 images.
    """
    recipients, donors = check_images(recipients), check_images(donors)
    if donors.shape != recipients.shape:
        raise ValueError(f"donors must have the recipients' shape {recipients.shape}, got {donors.shape}")
    recipient_heads = checked_masks(recipient_heads, recipients, "recipient_heads")
    donor_heads = checked_masks(donor_heads, donors, "donor_heads")
    fills = background_medians(donors, donor_heads)
    outside = np.where(donor_heads[..., None], fills[:, None, None, :], donors)
    return np.where(recipient_heads[..., None], recipients, outside)


@dataclass(frozen=True)
class _Quantiles:
    """The grey levels present in a histogram and their mid-rank quantiles (increasing)."""

    levels: np.ndarray
    quantiles: np.ndarray


def _quantiles(counts: np.ndarray) -> _Quantiles:
    cdf = np.cumsum(counts) / counts.sum()
    mid = cdf - counts / (2.0 * counts.sum())
    present = counts > 0
    return _Quantiles(np.flatnonzero(present).astype(np.float64), mid[present])


def _head_histogram(image: np.ndarray, head: np.ndarray) -> np.ndarray:
    return np.bincount(to_gray(image)[head], minlength=256)


def pooled_style(images: np.ndarray, heads: np.ndarray) -> _Quantiles:
    """The grey-level quantiles of all ``images``' head pixels pooled; ValueError if none."""
    images = check_images(images)
    heads = checked_masks(heads, images, "reference_heads")
    counts = sum(_head_histogram(image, head) for image, head in zip(images, heads))
    if counts.sum() == 0:
        raise ValueError("reference_heads hold no head pixel to take a style from")
    return _quantiles(counts)


def apply_style(images: np.ndarray, heads: np.ndarray, style: _Quantiles) -> np.ndarray:
    """``images`` with each head's grey levels mapped onto ``style`` (:func:`pooled_style`)."""
    out = images.copy()
    levels = np.arange(256, dtype=np.float64)
    for i, (image, head) in enumerate(zip(images, heads)):
        if not head.any():
            continue
        own = _quantiles(_head_histogram(image, head))
        # Every value 0..255 gets a quantile, so a channel value that is no grey level maps too.
        lut = np.interp(np.interp(levels, own.levels, own.quantiles), style.quantiles, style.levels)
        out[i][head] = np.round(lut).astype(np.uint8)[image[head]]
    return out


def match_style(
    images: np.ndarray,
    heads: np.ndarray,
    reference_images: np.ndarray,
    reference_heads: np.ndarray,
) -> np.ndarray:
    """``images`` with each head's grey histogram mapped onto the reference heads' pooled one.

    Quantile mapping (module docstring); pixels outside ``heads`` are unchanged, and an image
    with an empty head mask is returned as it is.
    """
    images = check_images(images)
    heads = checked_masks(heads, images, "heads")
    return apply_style(images, heads, pooled_style(reference_images, reference_heads))


def blank_border(
    images: np.ndarray,
    width: float = BORDER_WIDTH,
    method: str = "black",
    heads: np.ndarray | None = None,
) -> np.ndarray:
    """``images`` with the border band of relative ``width`` set to 0 (``"black"``) or
    inpainted from inside (``"inpaint"``, Telea). ``heads``: band pixels inside them are kept."""
    images = check_images(images)
    if method not in BORDER_METHODS:
        raise ValueError(f"method must be one of {BORDER_METHODS}, got {method!r}")
    band = np.broadcast_to(border_band(images.shape[1:3], width), images.shape[:3])
    if heads is not None:
        band = band & ~checked_masks(heads, images, "heads")
    if method == "black":
        return np.where(band[..., None], np.uint8(0), images)
    out = images.copy()
    for i in np.flatnonzero(band.any(axis=(1, 2))):
        mask = band[i].astype(np.uint8)
        out[i] = cv2.inpaint(np.ascontiguousarray(images[i]), mask, INPAINT_RADIUS, cv2.INPAINT_TELEA)
    return out
