"""Probes that do not trust the maps: change the image, watch the prediction.

``predict`` is any callable ``images_uint8 (N, S, S, 3) -> probabilities (N, C)``; it is
always called on chunks (``batch_size`` images at most), never one image at a time.

- :func:`probe_table`: accuracy and confidence on the original images, the head only
  (background blacked out), the background only (head blacked out) and with the tumor box
  occluded. A model right on background-only images, or still calling a tumor after the
  tumor was removed, decides on something other than the tumor.
- :func:`deletion_insertion`: deletion and insertion curves (Petsiuk et al. 2018, RISE):
  a faithful map's top pixels, removed first, kill the prediction fast (low deletion AUC)
  and, inserted first, restore it fast (high insertion AUC).

Fills, chosen so the fill itself is no cue:

- Masking (head only / background only) fills with 0, the black of MRI background.
- Tumor occlusion fills the box (its part inside the head) with the per-channel median of
  the head ring around the box, feathered at the edge by a Gaussian: a flat, head-coloured
  patch without a sharp black rectangle.
- Deletion/insertion replace pixels with a strongly blurred copy of the image (sigma =
  :data:`BLUR_SIGMA_FRACTION` of the size) by default: it wipes tumor-sized detail yet keeps
  the head's intensity, where zeros would punch black holes, itself an out-of-distribution
  cue. ``baseline="zero"`` gives Petsiuk et al.'s deletion baseline instead.
"""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from bt_core.data.classes import negative_class_index
from bt_core.regions import (
    box_masks,
    check_boxes,
    check_images,
    check_labels,
    resize_maps,
    usable_head_masks,
)

Predict = Callable[[np.ndarray], np.ndarray]

DEFAULT_BATCH = 64
# Perturbed images per predict call in deletion/insertion: big arrays, few calls.
CURVE_BATCH = 256
# Width of the head ring around a box whose median fills it, relative to the image size.
RING_FRACTION = 0.05
# Blur of the deletion/insertion baseline, relative to the image size: 1/10 erases a
# tumor-sized blob (a few % of the side) but keeps the head's outline and brightness.
BLUR_SIGMA_FRACTION = 0.1


def predict_proba(
    predict: Predict, images: np.ndarray, batch_size: int = DEFAULT_BATCH
) -> np.ndarray:
    """``predict`` on ``images`` in chunks of ``batch_size``; float64 ``(N, C)`` checked."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        proba = np.asarray(predict(chunk), dtype=np.float64)
        if proba.ndim != 2 or len(proba) != len(chunk):
            raise ValueError(
                f"predict must return (N, C) probabilities for N = {len(chunk)} images, "
                f"got shape {proba.shape}"
            )
        parts.append(proba)
    proba = np.concatenate(parts)
    if not np.isfinite(proba).all():
        raise ValueError("predict returned non-finite probabilities")
    return proba


def _check_keep(images: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 2:
        mask = np.broadcast_to(mask, (len(images), *mask.shape))
    if mask.shape != images.shape[:3]:
        raise ValueError(
            f"{name} must be (H, W) or (N, H, W) = {images.shape[:3]}, got {mask.shape}"
        )
    return mask


def mask_images(images: np.ndarray, keep_mask: np.ndarray, fill: str | int = "zero") -> np.ndarray:
    """A copy of ``images`` with the pixels outside ``keep_mask`` set to ``fill``.

    ``keep_mask``: bool ``(N, H, W)`` or ``(H, W)``. ``fill``: ``"zero"`` (black, the MRI
    background) or an intensity 0..255.
    """
    images = check_images(images)
    keep = _check_keep(images, keep_mask, "keep_mask")
    if isinstance(fill, str):
        if fill != "zero":
            raise ValueError(f"fill must be 'zero' or an intensity 0..255, got {fill!r}")
        value = 0
    else:
        value = int(fill)
        if not 0 <= value <= 255:
            raise ValueError(f"fill must be 'zero' or an intensity 0..255, got {fill!r}")
    return np.where(keep[..., None], images, np.uint8(value))


def head_only(images: np.ndarray, head_masks: np.ndarray) -> np.ndarray:
    """Images with the background blacked out: only the head is left."""
    return mask_images(images, head_masks)


def background_only(images: np.ndarray, head_masks: np.ndarray) -> np.ndarray:
    """Images with the head blacked out: only the background (and burned-in text) is left."""
    images = check_images(images)
    return mask_images(images, ~_check_keep(images, head_masks, "head_masks"))


def occlude_boxes(
    images: np.ndarray, boxes: np.ndarray, head_masks: np.ndarray | None = None
) -> np.ndarray:
    """A copy of ``images`` with each tumor box filled with the median of the head around it.

    The fill covers the box's part inside the head (all the box when ``head_masks`` is None),
    with the per-channel median of the head ring of width :data:`RING_FRACTION` around the
    box (the head outside the box, then the whole image outside it, when the ring is
    empty). Its edge is feathered by a Gaussian of the ring's width so no sharp rectangle
    remains. Images without box (NaN rows) are returned unchanged.
    """
    images = check_images(images)
    n, height, width = images.shape[:3]
    boxes = check_boxes(boxes, n)
    inside_all = box_masks(boxes, (height, width))
    head_masks = None if head_masks is None else _check_keep(images, head_masks, "head_masks")
    ring_px = max(2, int(round(RING_FRACTION * max(height, width))))
    kernel = np.ones((2 * ring_px + 1, 2 * ring_px + 1), np.uint8)
    out = images.copy()
    for i in np.flatnonzero(inside_all.any(axis=(1, 2))):
        head = np.ones((height, width), bool) if head_masks is None else head_masks[i]
        box = inside_all[i]
        ring = cv2.dilate(box.astype(np.uint8), kernel).astype(bool) & ~box & head
        for source in (ring, head & ~box, ~box):
            if source.any():
                break
        fill = np.median(images[i][source], axis=0) if source.any() else np.zeros(3)
        region = box & head if head_masks is not None else box
        alpha = cv2.GaussianBlur(region.astype(np.float32), (0, 0), ring_px / 2)
        alpha = np.maximum(alpha * head, region)[..., None]  # full strength on the box
        blended = (1 - alpha) * images[i].astype(np.float32) + alpha * fill.astype(np.float32)
        out[i] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out


def _condition_row(proba: np.ndarray, labels: np.ndarray, negative: int | None) -> dict[str, float]:
    predicted = proba.argmax(axis=1)
    counts = np.bincount(labels, minlength=proba.shape[1])
    return {
        "n": len(labels),
        "accuracy": float((predicted == labels).mean()),
        "mean_confidence": float(proba.max(axis=1).mean()),
        "mean_true_prob": float(proba[np.arange(len(labels)), labels].mean()),
        "tumor_predicted": float((predicted != negative).mean()) if negative is not None else float("nan"),
        # Accuracy of always answering the commonest class of these images.
        "chance": float(counts.max() / len(labels)),
    }


def probe_probabilities(
    predict: Predict,
    images: np.ndarray,
    head_masks: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{condition: (positions, probabilities)}``: ``predict`` on every changed image once.

    ``original``, ``head_only`` and ``background_only`` cover all images; with boxes,
    ``original_boxed`` and ``tumor_occluded`` cover the positions of the images that have one.
    ``head_masks``: the usable head masks, ``(N, H, W)`` or one ``(H, W)`` for all
    (:func:`bt_core.regions.usable_head_masks` of the images when None: an image with no
    head found is all head, so its background-only copy is black).
    """
    images = check_images(images)
    n = len(images)
    if head_masks is None:
        head_masks, _not_found = usable_head_masks(images)
    head_masks = _check_keep(images, head_masks, "head_masks")
    everything = np.arange(n)
    variants = {
        "original": (everything, images),
        "head_only": (everything, head_only(images, head_masks)),
        "background_only": (everything, background_only(images, head_masks)),
    }
    if boxes is not None:
        boxes = check_boxes(boxes, n)
        present = np.flatnonzero(~np.isnan(boxes).any(axis=1))
        if len(present):
            variants["original_boxed"] = (present, images[present])
            variants["tumor_occluded"] = (
                present, occlude_boxes(images[present], boxes[present], head_masks[present])
            )
    return {name: (positions, predict_proba(predict, batch, batch_size))
            for name, (positions, batch) in variants.items()}


def probe_summary(
    probabilities: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    subset: np.ndarray | None = None,
) -> pd.DataFrame:
    """:func:`probe_table`'s rows from :func:`probe_probabilities`, over ``subset`` (a bool
    mask of the images; all when None). Conditions with no image in the subset are left out.
    Without a no-tumor class (:mod:`bt_core.data.classes`) ``tumor_predicted`` is NaN."""
    labels = np.asarray(labels, dtype=np.int64)
    negative = negative_class_index(class_names)
    chosen = np.ones(len(labels), dtype=bool) if subset is None else np.asarray(subset, dtype=bool)
    rows = {}
    for name, (positions, proba) in probabilities.items():
        if proba.shape[1] != len(class_names):
            raise ValueError(f"predict returned {proba.shape[1]} columns for {len(class_names)} classes")
        keep = chosen[positions]
        if keep.any():
            rows[name] = _condition_row(proba[keep], labels[positions][keep], negative)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "condition"
    return table


def probe_table(
    predict: Predict,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    head_masks: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> pd.DataFrame:
    """Accuracy and confidence of ``predict`` per condition, indexed by condition.

    Rows: ``original``, ``head_only``, ``background_only`` on all
    images; ``original_boxed`` and ``tumor_occluded`` on the images with a box (only when
    some have one). Columns: ``n``, ``accuracy``, ``mean_confidence`` (mean max prob),
    ``mean_true_prob``, ``tumor_predicted`` (share predicted as any class but the no-tumor
    one, "notumor" or a spelling of it; on ``tumor_occluded`` a high value is suspect) and ``chance`` (the
    share of the commonest true class, what answering blindly scores).
    """
    images = check_images(images)
    labels = check_labels(labels, len(images), len(class_names))
    probabilities = probe_probabilities(predict, images, head_masks, boxes, batch_size)
    return probe_summary(probabilities, labels, class_names)


def blurred_images(images: np.ndarray, sigma_fraction: float = BLUR_SIGMA_FRACTION) -> np.ndarray:
    """Gaussian-blurred copies, sigma = ``sigma_fraction`` of the larger side."""
    images = check_images(images)
    sigma = max(sigma_fraction * max(images.shape[1:3]), 0.5)
    return np.stack([cv2.GaussianBlur(image, (0, 0), sigma) for image in images])


def _auc(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area under ``(N, steps + 1)`` curves over the fraction 0..1."""
    steps = curves.shape[1] - 1
    return (curves[:, 1:] + curves[:, :-1]).sum(axis=1) / (2.0 * steps)


def _curve_probabilities(
    predict: Predict, chunk: np.ndarray, maps: np.ndarray, targets: np.ndarray, counts: np.ndarray,
    baseline: str, batch_size: int,
) -> np.ndarray:
    """``(n, 2, steps + 1)``: each image's ``targets`` probability along its deletion (0)
    and insertion (1) curve, the top ``counts[k]`` pixels of its map changed at step k."""
    n, height, width = chunk.shape[:3]
    base = blurred_images(chunk) if baseline == "blur" else np.zeros_like(chunk)
    ranked = resize_maps(maps, (height, width)).reshape(n, -1)
    order = np.argsort(-ranked, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(height * width)[None, :], axis=1)
    # (n, steps + 1, H, W, 1): True where the pixel is among the top ones at a step.
    top = (ranks[:, None, :] < counts[None, :, None]).reshape(n, len(counts), height, width, 1)
    deleted = np.where(top, base[:, None], chunk[:, None])
    inserted = np.where(top, chunk[:, None], base[:, None])
    batch = np.concatenate([deleted, inserted], axis=1).reshape(-1, height, width, 3)
    proba = predict_proba(predict, batch, max(batch_size, len(batch)))
    if targets.max() >= proba.shape[1] or targets.min() < 0:
        raise ValueError(f"class_index must lie in [0, {proba.shape[1]}), got {targets}")
    return proba.reshape(n, 2, len(counts), -1)[np.arange(n), :, :, targets]


def deletion_insertion(
    predict: Predict,
    images: np.ndarray,
    maps: np.ndarray,
    class_index: int | Sequence[int] | np.ndarray,
    steps: int = 20,
    baseline: str = "blur",
    batch_size: int = CURVE_BATCH,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves of each image's map (Petsiuk et al. 2018).

    Pixels are ranked by the map value (map resized to the image, ``resize_maps``; ties by pixel
    order). At step k of ``steps`` the top ``round(k / steps * H * W)`` pixels are replaced
    by the baseline (deletion) or taken from the image into the baseline (insertion), and
    the probability of ``class_index`` (one int, or one per image) is recorded.
    ``baseline``: ``"blur"`` (default, see the module docstring) or ``"zero"``.
    ``batch_size``: perturbed images per predict call (whole images' curves, at least one).

    Returns ``fractions`` ``(steps + 1,)``, ``deletion`` and ``insertion`` curves
    ``(N, steps + 1)``, ``deletion_auc`` and ``insertion_auc`` ``(N,)`` (trapezoid over the
    fraction). Lower deletion AUC and higher insertion AUC mean a more faithful map.
    """
    images = check_images(images)
    n, height, width = images.shape[:3]
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if baseline not in ("blur", "zero"):
        raise ValueError(f"baseline must be 'blur' or 'zero', got {baseline!r}")
    maps = np.asarray(maps)
    if maps.ndim != 3 or len(maps) != n:
        raise ValueError(f"maps must be (N, h, w) with N = {n}, got shape {maps.shape}")
    targets = np.broadcast_to(np.asarray(class_index), (n,))
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"class_index must be int (one, or one per image), got {targets.dtype}")
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * height * width).astype(np.int64)
    curves = np.empty((n, 2, steps + 1))
    # Images per predict call: each image brings 2 * (steps + 1) perturbed copies.
    per_call = max(1, batch_size // (2 * (steps + 1)))
    for start in range(0, n, per_call):
        part = slice(start, start + per_call)
        curves[part] = _curve_probabilities(predict, images[part], maps[part], targets[part], counts,
                                            baseline, batch_size)
    deletion, insertion = curves[:, 0], curves[:, 1]
    return {
        "fractions": fractions,
        "deletion": deletion,
        "insertion": insertion,
        "deletion_auc": _auc(deletion),
        "insertion_auc": _auc(insertion),
    }
