"""Source probe: can a tiny model tell the classes apart from one image region alone?

When a linear model tells the classes apart from the image border or the background alone,
the classes come from different sources (scanners, sites, exports): a shortcut any
classifier can take.

    probe = source_probe(images, labels)                           # border band by default
    probe = source_probe(images, labels, masks=~heads)             # the background

NumPy, OpenCV and scikit-learn only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bt_core.regions import border_band, to_gray

# Source probe: width of the default border band (bt_core.regions.border_band) as a share of
# the image's height (top and bottom rows) and width (left and right columns).
BORDER_WIDTH = 0.1
# Inverse L2 strength of the probe's logistic regression. A tiny, well-regularised model is
# the point (its accuracy is a lower bound on the source signal), and it converges ~7x
# faster than C = 1: 8 s instead of 54 s for 5 folds of brain-tumor-mri, 0.76 vs 0.78.
PROBE_C = 0.1


@dataclass(frozen=True)
class SourceProbe:
    """Cross-validated balanced accuracy of a linear model that sees only one image region."""

    balanced_accuracy: float  # mean over folds
    std: float
    chance: float  # 1 / number of classes
    scores: tuple[float, ...]
    folds: int
    n_images: int
    region_share: float  # mean share of the image the region covers


def region_features(gray: np.ndarray, region: np.ndarray, size: int = 16, bins: int = 16) -> np.ndarray:
    """Features of one region of one image: the image zeroed outside the region, shrunk to
    ``size`` x ``size`` (INTER_AREA), plus the region's mean, std and intensity histogram."""
    pixels = gray.astype(np.float32) / 255.0
    region = np.asarray(region, dtype=bool)
    small = cv2.resize(np.where(region, pixels, 0.0), (size, size), interpolation=cv2.INTER_AREA).ravel()
    inside = pixels[region]
    if inside.size == 0:
        stats, histogram = np.zeros(2), np.zeros(bins)
    else:
        stats = np.array([inside.mean(), inside.std()])
        histogram = np.histogram(inside, bins=bins, range=(0.0, 1.0))[0] / inside.size
    return np.concatenate([small, stats, histogram]).astype(np.float32)


def source_probe(
    images: np.ndarray | Sequence[np.ndarray],
    labels: Sequence,
    masks: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    size: int = 16,
    bins: int = 16,
    folds: int = 5,
    seed: int = 0,
) -> SourceProbe:
    """How well a linear model tells the classes apart from one image region alone.

    ``masks``: bool ``(N, H, W)``, one ``(H, W)`` for all, a function image -> mask, or None
    for a border band of width BORDER_WIDTH. Pass the not-head mask to probe the background.
    Model: standardised features -> logistic regression, stratified ``folds``-fold CV,
    balanced accuracy. Near 1 from the border alone: the classes differ in source, not anatomy;
    near ``chance`` (1 / classes): the region carries no class signal.
    """
    grays = [to_gray(image) for image in images]
    labels = np.asarray(labels)
    if len(grays) != len(labels):
        raise ValueError(f"{len(grays)} images but {len(labels)} labels")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        raise ValueError("source_probe needs at least 2 classes with at least 2 images each")
    if masks is None or callable(masks):
        region_of = masks if callable(masks) else (lambda gray: border_band(gray.shape, BORDER_WIDTH))
        regions = [np.asarray(region_of(g), dtype=bool) for g in grays]
    else:
        array = np.asarray(masks, dtype=bool)
        regions = [array] * len(grays) if array.ndim == 2 else list(array)
        if len(regions) != len(grays):
            raise ValueError(f"masks must be (H, W) or (N, H, W) with N = {len(grays)}, got {array.shape}")
    for gray, region in zip(grays, regions):
        if region.shape != gray.shape:
            raise ValueError(f"mask shape {region.shape} does not match image shape {gray.shape}")
    features = np.stack([region_features(g, r, size, bins) for g, r in zip(grays, regions)])
    n_folds = int(min(folds, counts.min()))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=2000))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, features, labels, cv=cv, scoring="balanced_accuracy")
    return SourceProbe(
        balanced_accuracy=float(scores.mean()),
        std=float(scores.std()),
        chance=1.0 / len(classes),
        scores=tuple(float(s) for s in scores),
        folds=n_folds,
        n_images=len(grays),
        region_share=float(np.mean([r.mean() for r in regions])),
    )
