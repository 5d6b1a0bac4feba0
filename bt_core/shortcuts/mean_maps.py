"""Each class's mean explanation map and mean head mask: what a model looks at on average for
the test images of one class, with the outline of where the heads are (the Shortcuts page's
grid). Pure NumPy on arrays in memory; the analysis pass stores the result
(:func:`bt_core.artifacts.write_class_mean_maps`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bt_core.regions import resize_maps


@dataclass(frozen=True)
class ClassMeanMaps:
    """Per class with test images (in class order): its name, image count, mean map and mean
    head mask, both ``(h, w)`` float32 at the maps' size."""

    classes: tuple[str, ...]
    counts: np.ndarray  # int64 (C,)
    maps: np.ndarray  # float32 (C, h, w), in [0, 1]
    heads: np.ndarray  # float32 (C, h, w): the share of the class's images whose head covers a pixel


def class_mean_maps(maps: np.ndarray, labels: np.ndarray, heads: np.ndarray,
                    class_names: Sequence[str]) -> ClassMeanMaps:
    """Mean of ``maps`` ``(N, h, w)`` and of the bool head masks ``heads`` ``(N, S, S)`` (shrunk
    to ``(h, w)`` by area) over the images of each class of ``labels`` (int ``(N,)``); classes
    without images are left out. ValueError when the lengths disagree."""
    maps = np.asarray(maps, dtype=np.float32)
    labels = np.asarray(labels)
    heads = np.asarray(heads)
    if maps.ndim != 3 or heads.ndim != 3 or not len(maps) == len(labels) == len(heads):
        raise ValueError(f"maps (N, h, w), labels (N,) and heads (N, S, S) must agree, got {maps.shape}, "
                         f"{labels.shape}, {heads.shape}")
    size = maps.shape[1:]
    present = [index for index in range(len(class_names)) if (labels == index).any()]
    mean_maps, mean_heads, counts = [], [], []
    for index in present:
        members = labels == index
        mean_maps.append(maps[members].mean(axis=0))
        # The mean of the masks, then shrunk: an area filter is linear, so this is the mean of
        # each mask shrunk, computed once.
        mean_heads.append(resize_maps(heads[members].mean(axis=0, dtype=np.float32), size, clip=True))
        counts.append(int(members.sum()))
    side = (0, *size)
    return ClassMeanMaps(
        classes=tuple(str(class_names[index]) for index in present),
        counts=np.asarray(counts, dtype=np.int64),
        maps=np.stack(mean_maps).astype(np.float32) if mean_maps else np.zeros(side, np.float32),
        heads=np.stack(mean_heads).astype(np.float32) if mean_heads else np.zeros(side, np.float32),
    )
