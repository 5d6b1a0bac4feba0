"""What a dataset looks like, as small tables: class counts, image sizes and channels before
resizing, intensity histograms per class and region, seeded samples and thumbnails.

Pure functions of the split table, the file headers and the decoded uint8 arrays; the run's
Data page shows what :mod:`bt_core.runs.data_profile` stores from them.

    headers = read_headers(root, split["path"])                 # header only: no pixel decoded
    sizes = size_table(headers.assign(label=split["label"]))    # (width, height, channels, label) -> count
    histograms = intensity_histograms(images, labels, class_names)
    rows = sample_per_class(labels, len(class_names), per_class=6, seed=0)
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from bt_core.regions import border_band, to_gray, usable_head_masks

# Histogram bins over 0..255 grey levels: 64 bins of 4 levels keep the record small.
HISTOGRAM_BINS = 64
# Regions of the histograms: the whole image, the border band the source probe reads
# (bt_core.shortcuts.source_probe.BORDER_WIDTH) and the background outside the head, where
# scanner text and a different source's look show (what the dataset audit probes).
HISTOGRAM_REGIONS = ("image", "border", "background")
BORDER_WIDTH = 0.1
# At most this many images per class go into the histograms (seeded sample): 200 images of
# 224 px are 10 M pixels a class, plenty for a 64-bin histogram, and their head masks take ~1 s.
HISTOGRAM_IMAGES_PER_CLASS = 200
HEADER_COLUMNS = ["width", "height", "channels", "mode", "format", "error"]
SIZE_COLUMNS = ["width", "height", "channels", "label", "count"]


def read_header(path: str | Path) -> dict[str, object]:
    """Width, height, channels, Pillow mode and format of one image file, from its header
    (Pillow reads no pixel data); ``error`` says why not when the header cannot be read."""
    try:
        with Image.open(io.BytesIO(Path(path).read_bytes())) as image:
            width, height = image.size
            return {"width": int(width), "height": int(height), "channels": len(image.getbands()),
                    "mode": image.mode, "format": image.format or "", "error": None}
    except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises on a bad header
        return {"width": 0, "height": 0, "channels": 0, "mode": "", "format": "", "error": str(exc)}


def read_headers(root: str | Path, relative_paths: Iterable[str], workers: int = 4) -> pd.DataFrame:
    """:func:`read_header` of every file, in the order given (:data:`HEADER_COLUMNS`)."""
    paths = [Path(root) / relative for relative in relative_paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(read_header, paths))
    return pd.DataFrame(rows, columns=HEADER_COLUMNS)


def size_table(headers: pd.DataFrame) -> pd.DataFrame:
    """How many images of each class have each (width, height, channels): :data:`SIZE_COLUMNS`,
    most frequent first. ``headers`` holds :data:`HEADER_COLUMNS` and ``label``; files whose
    header could not be read are left out."""
    readable = headers[headers["error"].isna()] if "error" in headers else headers
    if readable.empty:
        return pd.DataFrame(columns=SIZE_COLUMNS)
    table = (readable.groupby(["width", "height", "channels", "label"], sort=False).size()
             .rename("count").reset_index())
    table = table.sort_values(["count", "width", "height", "channels", "label"],
                              ascending=[False, True, True, True, True], kind="stable")
    return table[SIZE_COLUMNS].astype({"width": int, "height": int, "channels": int, "count": int}).reset_index(drop=True)


def channel_counts(headers: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per class, how many files have each Pillow mode (``L``, ``RGB``, ``RGBA``, ``I;16`` ...):
    grey and colour files mixed in one class is a source difference worth seeing."""
    readable = headers[headers["error"].isna()] if "error" in headers else headers
    counts: dict[str, dict[str, int]] = {}
    for (label, mode), n in readable.groupby(["label", "mode"], sort=True).size().items():
        counts.setdefault(str(label), {})[str(mode)] = int(n)
    return counts


def sample_per_class(labels: Sequence[int] | np.ndarray, n_classes: int, per_class: int, seed: int) -> np.ndarray:
    """Indices of up to ``per_class`` images of each class (all of a smaller class), drawn
    without replacement with ``seed``; ordered by class, then by index. The same labels and
    seed give the same indices."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for class_index in range(n_classes):
        members = np.flatnonzero(labels == class_index)
        if len(members) > per_class:
            members = np.sort(rng.choice(members, size=per_class, replace=False))
        chosen.append(members)
    return np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, np.int64)


def region_masks(images: np.ndarray) -> dict[str, np.ndarray | None]:
    """Bool ``(N, H, W)`` of every :data:`HISTOGRAM_REGIONS` region of each image (None for
    the whole image). The background is outside the usable head mask (no head found: all
    head, so no background), as the audit's background probe reads it."""
    n, height, width = images.shape[:3]
    heads, _missing = usable_head_masks(images) if n else (np.zeros((0, height, width), bool), 0)
    return {
        "image": None,
        "border": np.broadcast_to(border_band((height, width), BORDER_WIDTH), (n, height, width)),
        "background": ~heads,
    }


def gray_histogram(grays: np.ndarray, mask: np.ndarray | None = None, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """Counts of grey levels in ``bins`` equal bins over 0..255 (int64), of the pixels of
    ``grays`` (uint8) where ``mask`` is True (all without one); sums to the pixel count."""
    if 256 % bins:
        raise ValueError(f"bins must divide 256, got {bins}")
    values = grays if mask is None else grays[mask]
    return np.bincount(values.ravel() // (256 // bins), minlength=bins).astype(np.int64)


def intensity_histograms(
    images: np.ndarray, labels: Sequence[int] | np.ndarray, class_names: Sequence[str], bins: int = HISTOGRAM_BINS
) -> dict[str, dict[str, list[int]]]:
    """``{region: {class: counts}}`` of grey levels (:func:`gray_histogram`) for every
    :data:`HISTOGRAM_REGIONS` region, over ``images`` (uint8 RGB or grey ``(N, H, W[, 3])``)."""
    labels = np.asarray(labels)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    images = np.asarray(images)
    grays = np.stack([to_gray(image) for image in images]) if len(images) else np.zeros((0, 1, 1), np.uint8)
    masks = region_masks(images if images.ndim == 4 else grays[..., None].repeat(3, axis=-1))
    histograms: dict[str, dict[str, list[int]]] = {}
    for region in HISTOGRAM_REGIONS:
        mask = masks[region]
        histograms[region] = {
            name: gray_histogram(grays[labels == index], None if mask is None else mask[labels == index], bins).tolist()
            for index, name in enumerate(class_names)
        }
    return histograms


def thumbnails(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(N, size, size, 3)``: each image resized to ``size`` (area filter when shrinking,
    bilinear when enlarging; callers choose ``size`` at most the images' side)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if images.shape[1:3] == (size, size):
        return images.copy()
    interpolation = cv2.INTER_AREA if images.shape[1] >= size else cv2.INTER_LINEAR
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for index, image in enumerate(images):
        out[index] = cv2.resize(image, (size, size), interpolation=interpolation)
    return out
