"""Where explanation maps look, in numbers: energy outside the head, in the border, in the box.

Maps are float ``(N, h, w)`` (any resolution; resized to the masks by
:func:`bt_core.regions.resize_maps`), images uint8 ``(N, S, S, 3)``, boxes normalised
``(x0, y0, x1, y1)`` rows, NaN rows for images without one (pixel-centre rule of
:mod:`bt_core.regions`), head masks the usable ones (:func:`bt_core.regions.usable_head_masks`:
an image with no head found is all head). :func:`attention_table` resizes each map once to
the image size and takes every measure from that one copy. Measures per image:

- ``outside_head``: share of map energy outside the head (1 - its
  :func:`bt_core.regions.map_share` in the head).
- ``border``: share of map energy in the border band (where scanners burn text).
- ``in_box``: share of map energy inside the tumor box. NaN without box.
- ``pointing_hit``: 1 when the map's maximum lies in the box, with Zhang et al.'s (2018)
  tolerance of 15 px at 224 px, scaled to the image size. NaN without box.
- ``rank_accuracy``: relevance rank accuracy (Arras et al. 2022): with K = box area in
  pixels, the share of the K highest-valued pixels inside the box. NaN without box.

"Energy" is the sum of the map's values clipped at 0. Each measure is only meaningful beside
what a map that knows nothing gets: :func:`baseline_summary` runs the same measures on a
centred Gaussian and on uniform noise.

    table = attention_table(maps, images, labels, class_names, boxes)
    summary = summarize_attention(table)               # mean per class and "all"
    reference = baseline_summary(images, labels, class_names, boxes)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from bt_core.regions import (
    border_band,
    box_masks,
    box_pixel_bounds,
    check_boxes,
    check_images,
    check_labels,
    check_head_masks,
    check_shape,
    map_share,
    resize_maps,
)

MEASURES = ("outside_head", "border", "in_box", "pointing_hit", "rank_accuracy")
BASELINES = ("centered_gaussian", "random")
# Zhang et al. 2018 (excitation backprop) count a hit within 15 px of the object at 224 px.
POINTING_TOLERANCE_FRACTION = 15.0 / 224.0
DEFAULT_BORDER_WIDTH = 0.1
DEFAULT_SIGMA = 0.25
# The usual resolution of the stored explanation maps; the baselines are drawn at it.
DEFAULT_BASELINE_SHAPE = (64, 64)
# Images per chunk: bounds the memory of maps resized to full image size.
CHUNK = 64


def check_maps(maps: np.ndarray, n: int | None = None) -> np.ndarray:
    """Maps as float32 ``(N, h, w)`` with NaN/inf set to 0, or ValueError."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, h, w), got shape {maps.shape}")
    if n is not None and len(maps) != n:
        raise ValueError(f"maps must have one map per image ({n}), got {len(maps)}")
    return np.nan_to_num(maps.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def outside_head_share(maps: np.ndarray, head_masks: np.ndarray) -> np.ndarray:
    """Share of each map's energy outside the head, float ``(N,)``; NaN without energy."""
    return 1.0 - map_share(check_maps(maps), head_masks)


def box_energy(maps: np.ndarray, boxes_in: np.ndarray) -> np.ndarray:
    """Share of each map's energy inside its box mask, float ``(N,)``; NaN without box."""
    boxes_in = np.asarray(boxes_in, dtype=bool)
    if boxes_in.ndim != 3:
        raise ValueError(f"box masks must be (N, H, W), got shape {boxes_in.shape}")
    share = map_share(check_maps(maps), boxes_in)
    return np.where(boxes_in.any(axis=(1, 2)), share, np.nan)


def default_tolerance(shape: Sequence[int]) -> float:
    """Pointing-game tolerance in pixels at ``shape``: 15 px at 224, scaled to the larger side."""
    return POINTING_TOLERANCE_FRACTION * max(check_shape(shape))


def pointing_game(
    maps: np.ndarray,
    boxes: np.ndarray,
    tolerance_px: float | None = None,
    size: Sequence[int] | None = None,
) -> np.ndarray:
    """1.0 where the map's maximum lies within ``tolerance_px`` of the box, else 0.0; ``(N,)``.

    The map is resized (:func:`bt_core.regions.resize_maps`) to ``size`` (the images'
    ``(H, W)``; default the map's own) and its first maximum is taken; the distance to the
    box (the pixels its mask covers) is Euclidean, in pixels at ``size``. ``tolerance_px`` defaults to 15 px at 224 px, scaled
    to the larger side (Zhang et al. 2018). NaN for images without box and for flat maps
    (no maximum to point with).
    """
    maps = check_maps(maps)
    boxes = check_boxes(boxes, len(maps))
    height, width = check_shape(size if size is not None else maps.shape[1:])
    tolerance = default_tolerance((height, width)) if tolerance_px is None else float(tolerance_px)
    if tolerance < 0:
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    hits = np.full(len(maps), np.nan)
    for i in np.flatnonzero(~np.isnan(boxes).any(axis=1)):
        cam = resize_maps(maps[i], (height, width))
        if cam.max() <= cam.min():
            continue
        row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
        x0, y0, x_stop, y_stop = box_pixel_bounds(boxes[i], height, width)
        dx = max(x0 - col, 0, col - (x_stop - 1))
        dy = max(y0 - row, 0, row - (y_stop - 1))
        hits[i] = float(np.hypot(dx, dy) <= tolerance)
    return hits


def relevance_rank_accuracy(maps: np.ndarray, boxes_in: np.ndarray) -> np.ndarray:
    """Share of the K highest-valued pixels inside the box, K = box area (Arras et al. 2022).

    ``boxes_in``: bool ``(N, H, W)`` box masks; maps are resized to them. NaN for images
    without box and for flat maps (no ranking). Ties at the K-th value are cut arbitrarily.
    """
    boxes_in = np.asarray(boxes_in, dtype=bool)
    if boxes_in.ndim != 3:
        raise ValueError(f"box masks must be (N, H, W), got shape {boxes_in.shape}")
    maps = resize_maps(check_maps(maps, len(boxes_in)), boxes_in.shape[1:])
    scores = np.full(len(maps), np.nan)
    for i, (cam, inside) in enumerate(zip(maps, boxes_in)):
        k = int(inside.sum())
        if k == 0 or cam.max() <= cam.min():
            continue
        top = np.argpartition(-cam.ravel(), k - 1)[:k]
        scores[i] = float(inside.ravel()[top].mean())
    return scores


def centered_gaussian_maps(
    n: int, shape: Sequence[int], sigma: float = DEFAULT_SIGMA
) -> np.ndarray:
    """``n`` copies of a centred Gaussian, peak 1, float32 ``(n, H, W)``.

    ``sigma`` is relative to the size (``sigma * H`` rows, ``sigma * W`` columns), so the
    Gaussian is isotropic in normalised coordinates; pixel centres sit at ``(i + 0.5) / H``.
    The result is a read-only broadcast view (one map in memory).
    """
    height, width = check_shape(shape)
    if n < 1 or sigma <= 0:
        raise ValueError(f"n must be >= 1 and sigma > 0, got n={n}, sigma={sigma}")
    y = ((np.arange(height) + 0.5) / height - 0.5) / sigma
    x = ((np.arange(width) + 0.5) / width - 0.5) / sigma
    one = np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)
    return np.broadcast_to(one, (int(n), height, width))


def random_maps(n: int, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Uniform noise in ``[0, 1)``, float32 ``(n, H, W)``; the same ``seed`` gives the same maps."""
    height, width = check_shape(shape)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return np.random.default_rng(seed).random((int(n), height, width), dtype=np.float32)


def attention_table(
    maps: np.ndarray,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    boxes: np.ndarray | None = None,
    border_width: float = DEFAULT_BORDER_WIDTH,
    tolerance_px: float | None = None,
    head_masks: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per image: ``label_index``, ``label``, ``has_box`` and the :data:`MEASURES`.

    Masks are made at the image size and each map resized to it once, in chunks. ``boxes``:
    ``(N, 4)`` with NaN rows, or None (box measures all NaN). ``head_masks``: the usable
    head masks ``(N, H, W)`` (:func:`bt_core.regions.usable_head_masks` of the images when
    None). ``tolerance_px`` is in image pixels.
    """
    images = check_images(images)
    n, height, width = images.shape[:3]
    maps = check_maps(maps, n)
    labels = check_labels(labels, n, len(class_names))
    boxes = np.full((n, 4), np.nan) if boxes is None else check_boxes(boxes, n)
    head_masks = check_head_masks(head_masks, images)
    band = border_band((height, width), border_width)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in MEASURES}
    for start in range(0, n, CHUNK):
        part = slice(start, start + CHUNK)
        chunk = resize_maps(maps[part], (height, width))
        inside = box_masks(boxes[part], (height, width))
        columns["outside_head"].append(outside_head_share(chunk, head_masks[part]))
        columns["border"].append(map_share(chunk, band))
        columns["in_box"].append(box_energy(chunk, inside))
        columns["pointing_hit"].append(pointing_game(chunk, boxes[part], tolerance_px))
        columns["rank_accuracy"].append(relevance_rank_accuracy(chunk, inside))
    table = pd.DataFrame(
        {
            "label_index": labels,
            "label": [str(class_names[i]) for i in labels],
            "has_box": ~np.isnan(boxes).any(axis=1),
        }
    )
    for name in MEASURES:
        table[name] = np.concatenate(columns[name])
    return table


def summarize_attention(table: pd.DataFrame, by: str = "label") -> pd.DataFrame:
    """Mean of each measure per value of ``by`` and over "all" (NaNs ignored).

    Index: the groups in order of first appearance (class order when sorted by
    ``label_index``), then ``"all"``. Columns: ``n_images``, ``n_with_box``, the measures.
    """
    missing = [c for c in (by, "has_box", *MEASURES) if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}; make it with attention_table")
    if "label_index" in table.columns and by == "label":
        table = table.sort_values("label_index", kind="stable")
    rows: dict[str, dict[str, float]] = {}
    groups = [(str(key), part) for key, part in table.groupby(by, sort=False)]
    for key, part in [*groups, ("all", table)]:
        row = {"n_images": len(part), "n_with_box": int(part["has_box"].sum())}
        for name in MEASURES:
            values = part[name].to_numpy(dtype=np.float64)
            row[name] = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
        rows[key] = row
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = by
    return summary


def baseline_summary(
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    boxes: np.ndarray | None = None,
    border_width: float = DEFAULT_BORDER_WIDTH,
    tolerance_px: float | None = None,
    head_masks: np.ndarray | None = None,
    map_shape: Sequence[int] = DEFAULT_BASELINE_SHAPE,
    sigma: float = DEFAULT_SIGMA,
    seed: int = 0,
    by: str = "label",
) -> pd.DataFrame:
    """:func:`summarize_attention` for the two maps that know nothing, on the same images.

    Index: ``(baseline, group)`` with baseline in :data:`BASELINES` ("centered_gaussian",
    "random"), groups as in :func:`summarize_attention`. ``head_masks``: the usable head
    masks (computed once from the images when None).
    """
    images = check_images(images)
    n = len(images)
    head_masks = check_head_masks(head_masks, images)
    makers = {
        "centered_gaussian": lambda: centered_gaussian_maps(n, map_shape, sigma),
        "random": lambda: random_maps(n, map_shape, seed),
    }
    parts = []
    for name in BASELINES:
        table = attention_table(
            makers[name](),
            images,
            labels,
            class_names,
            boxes,
            border_width,
            tolerance_px,
            head_masks,
        )
        parts.append(summarize_attention(table, by))
    return pd.concat(parts, keys=list(BASELINES), names=["baseline", by])
