"""Load a dataset folder into memory: index, split, decoded uint8 images, boxes, skipped files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bt_core.data.boxes import fit_boxes_to_frames, read_boxes
from bt_core.data.images import read_images
from bt_core.data.layouts import DatasetIndex, SkippedFile, discover
from bt_core.data.splits import SPLITS, make_split, split_counts
from bt_core.data.image_ops import check_image_ops


@dataclass(frozen=True)
class SplitArrays:
    images: np.ndarray  # uint8 (N, S, S, 3)
    labels: np.ndarray  # int class indices
    ids: np.ndarray  # dataset-relative paths


@dataclass
class LoadedDataset:
    index: DatasetIndex
    split: pd.DataFrame  # path, split, label: only files that decoded
    arrays: dict[str, SplitArrays]
    boxes: pd.DataFrame  # by image path, in the frame of the decoded images
    skipped: list[SkippedFile] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def class_names(self) -> list[str]:
        return list(self.index.class_names)

    @property
    def name(self) -> str:
        return self.index.root.name

    def counts(self) -> dict[str, dict[str, int]]:
        return split_counts(self.split, self.class_names)


def fingerprint(root: Path, relative_paths: list[str]) -> str:
    """SHA-256 over the sorted paths and file contents: the same data gives the same value."""
    digest = hashlib.sha256()
    for relative in sorted(relative_paths):
        digest.update(relative.encode())
        try:
            digest.update(hashlib.sha256((root / relative).read_bytes()).digest())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


def load_dataset(
    root: str | Path,
    image_size: int,
    seed: int = 42,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    max_per_class: int | None = None,
    ops: tuple[str, ...] = (),
    split: pd.DataFrame | None = None,
    required: tuple[str, ...] = SPLITS,
) -> LoadedDataset:
    """Discover, split and decode a dataset folder into memory.

    ``ops``: image-level preprocessing (bt_core.data.image_ops) applied at full resolution, before
    the resize. ``split``: a stored split (path, split, label) to reuse instead of making one,
    as a resumed run does; its paths must name images of this dataset. ``required``: the
    splits that must hold a readable image; ``arrays`` has only the splits that hold one.
    ``boxes`` are in the frame of the decoded images (moved with a ``crop_head``, clipped to
    [0, 1]); a box wholly outside the crop is dropped and listed in ``skipped``.
    """
    index = discover(root)
    ops = check_image_ops(ops)
    if split is None:
        split = make_split(index, val_fraction, test_fraction, seed, max_per_class)
    else:
        split = _checked_split(index, split)
    boxes, rejected_boxes = read_boxes(index.root)
    decoded = read_images(index.root, split["path"].tolist(), image_size, ops=ops, frames_for=boxes.index)
    images, split = decoded.images, split[decoded.ok].reset_index(drop=True)
    class_to_index = {name: i for i, name in enumerate(index.class_names)}
    arrays = {}
    for name in SPLITS:
        mask = (split["split"] == name).to_numpy()
        if not mask.any():
            if name not in required:
                continue
            raise ValueError(f"the {name} split of {index.root} holds no readable image")
        arrays[name] = SplitArrays(
            images=images[mask],
            labels=split.loc[mask, "label"].map(class_to_index).to_numpy(dtype=np.int64),
            ids=split.loc[mask, "path"].to_numpy(dtype=str),
        )
    boxes, outside_crop = fit_boxes_to_frames(boxes[boxes.index.isin(split["path"])], decoded.frames)
    skipped = [*index.skipped, *decoded.skipped, *rejected_boxes, *outside_crop]
    return LoadedDataset(
        index=index,
        split=split,
        arrays=arrays,
        boxes=boxes,
        skipped=skipped,
        fingerprint=fingerprint(index.root, split["path"].tolist()),
    )


def load_test_folder(root: str | Path, image_size: int, ops: tuple[str, ...] = ()) -> LoadedDataset:
    """Every image of a dataset folder as the test split, for scoring trained models on it
    (an external evaluation): Training and Testing of a kaggle layout, all of a pool.
    Decoded like :func:`load_dataset`; unreadable files are skipped and listed."""
    index = discover(root)
    split = index.items.assign(split="test")[["path", "split", "label"]]
    split = split.sort_values("path").reset_index(drop=True)
    return load_dataset(index.root, image_size, ops=ops, split=split, required=("test",))


def _checked_split(index: DatasetIndex, split: pd.DataFrame) -> pd.DataFrame:
    """A stored split, validated against the dataset it is applied to."""
    missing_columns = {"path", "split", "label"} - set(split.columns)
    if missing_columns:
        raise ValueError(f"stored split lacks columns {sorted(missing_columns)}")
    split = split[["path", "split", "label"]].astype(str).reset_index(drop=True)
    unknown_splits = set(split["split"]) - set(SPLITS)
    if unknown_splits:
        raise ValueError(f"stored split names unknown splits {sorted(unknown_splits)}")
    known = set(index.items["path"])
    absent = [p for p in split["path"] if p not in known]
    if absent:
        raise ValueError(
            f"{len(absent)} image(s) of the stored split are no longer in {index.root}, e.g. {absent[0]}"
        )
    labels = dict(zip(index.items["path"], index.items["label"]))
    relabelled = [p for p, label in zip(split["path"], split["label"]) if labels[p] != label]
    if relabelled:
        raise ValueError(f"{len(relabelled)} image(s) changed class since the split was made, e.g. {relabelled[0]}")
    return split
