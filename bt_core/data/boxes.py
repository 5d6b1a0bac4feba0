"""Tumor boxes from an optional ``ROOT/boxes.csv``.

Format: ``image,label,x_min,y_min,x_max,y_max``; ``image`` is the path relative to the
root (forward slashes); coordinates are normalized to [0, 1], x right, y down. No-tumor
images have no row. Invalid rows are reported, not fatal. The boxes refer to the image files;
:func:`fit_boxes_to_frames` carries them into the frame of the decoded images (a head crop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bt_core.data.image_ops import IDENTITY, map_boxes
from bt_core.data.layouts import SkippedFile

BOXES_FILE = "boxes.csv"
BOX_COLUMNS = ["x_min", "y_min", "x_max", "y_max"]
REQUIRED_COLUMNS = ["image", *BOX_COLUMNS]


def read_boxes(root: str | Path) -> tuple[pd.DataFrame, list[SkippedFile]]:
    """Valid boxes indexed by image path, and the rows rejected with reasons.

    Returns an empty frame when the dataset has no boxes.csv.
    """
    path = Path(root) / BOXES_FILE
    empty = pd.DataFrame(columns=BOX_COLUMNS, index=pd.Index([], name="image"), dtype=float)
    if not path.is_file():
        return empty, []
    table = pd.read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; expected image,label,x_min,y_min,x_max,y_max")
    table["image"] = table["image"].astype(str).str.replace("\\", "/", regex=False)
    coords = table[BOX_COLUMNS].apply(pd.to_numeric, errors="coerce")
    finite = np.isfinite(coords.to_numpy(dtype=float)).all(axis=1)
    in_range = ((coords >= 0) & (coords <= 1)).all(axis=1).to_numpy()
    ordered = ((coords["x_min"] < coords["x_max"]) & (coords["y_min"] < coords["y_max"])).to_numpy()
    duplicate = table["image"].duplicated(keep="first").to_numpy()
    valid = finite & in_range & ordered & ~duplicate
    rejected = []
    for row, ok_finite, ok_range, ok_order, dup in zip(
        table["image"], finite, in_range, ordered, duplicate
    ):
        if not ok_finite:
            rejected.append(SkippedFile(row, "boxes.csv: non-numeric coordinate"))
        elif not ok_range:
            rejected.append(SkippedFile(row, "boxes.csv: coordinate outside [0, 1]"))
        elif not ok_order:
            rejected.append(SkippedFile(row, "boxes.csv: min not below max"))
        elif dup:
            rejected.append(SkippedFile(row, "boxes.csv: second box for the same image ignored"))
    boxes = coords[valid].astype(float)
    boxes.index = pd.Index(table["image"][valid], name="image")
    return boxes, rejected


def fit_boxes_to_frames(boxes: pd.DataFrame, frames: pd.DataFrame) -> tuple[pd.DataFrame, list[SkippedFile]]:
    """Each box (indexed by image path) in its image's frame (``frames``: rows of
    ``Frame.as_array`` by path; identity where absent), clipped to [0, 1]; a box left with
    no area (it lay wholly outside the crop) is dropped and reported."""
    if boxes.empty:
        return boxes, []
    present = frames.reindex(boxes.index).to_numpy(dtype=np.float64)
    identity = IDENTITY.as_array().astype(np.float64)
    present = np.where(np.isnan(present), identity, present)
    mapped = np.clip(map_boxes(boxes[BOX_COLUMNS].to_numpy(dtype=np.float64), present), 0.0, 1.0)
    has_area = (mapped[:, 0] < mapped[:, 2]) & (mapped[:, 1] < mapped[:, 3])
    fitted = pd.DataFrame(mapped[has_area], columns=BOX_COLUMNS, index=boxes.index[has_area])
    dropped = [SkippedFile(path, "boxes.csv: box lies outside the head crop") for path in boxes.index[~has_area]]
    return fitted, dropped
