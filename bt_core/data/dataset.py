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
from bt_core.data.splits import SPLITS, make_split, split_counts, subsample_per_class
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
    min_classes: int = 2,
    split_rule: str = "original",
) -> LoadedDataset:
    """Discover, split and decode a dataset folder into memory.

    ``ops``: image-level preprocessing (bt_core.data.image_ops) applied at full resolution, before
    the resize. ``split``: a stored split (path, split, label) to reuse instead of making one,
    as a resumed run does; its paths must name images of this dataset. ``split_rule``: how a
    new split is made (``bt_core.data.splits.SPLIT_RULES``: original, grouped, regroup); a
    stored split is used as it is. ``required``: the splits that must hold a readable image; ``arrays`` has only the splits that hold one. Of
    those, the train and test splits must hold a readable image of every class (ValueError
    with each split's found / unreadable counts otherwise). ``boxes.csv`` is checked against
    the folder's images and classes (:func:`bt_core.data.boxes.read_boxes`).
    ``boxes`` are in the frame of the decoded images (moved with a ``crop_head``, clipped to
    [0, 1]); a box wholly outside the crop is dropped and listed in ``skipped``.
    """
    index = discover(root, min_classes=min_classes)
    ops = check_image_ops(ops)
    if split is None:
        split = make_split(index, val_fraction, test_fraction, seed, max_per_class, split=split_rule)
    else:
        split = _checked_split(index, split)
    boxes, rejected_boxes = read_boxes(index.root, labels=dict(zip(index.items["path"], index.items["label"])))
    decoded = read_images(index.root, split["path"].tolist(), image_size, ops=ops, frames_for=boxes.index)
    _refuse_classes_without_readable_images(index, split, decoded.ok, required)
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


def load_test_folder(
    root: str | Path, image_size: int, ops: tuple[str, ...] = (), min_classes: int = 2,
    max_per_class: int | None = None, seed: int = 42,
) -> LoadedDataset:
    """Every image of a dataset folder as the test split, for scoring trained models on it
    (an external evaluation): Training and Testing of a kaggle layout, all of a pool; with
    ``max_per_class`` at most that many per class and source folder, chosen with ``seed``.
    Decoded like :func:`load_dataset`; unreadable files are skipped and listed."""
    index = discover(root, min_classes=min_classes)
    split = subsample_per_class(index.items, max_per_class, seed).assign(split="test")[["path", "split", "label"]]
    split = split.sort_values("path").reset_index(drop=True)
    return load_dataset(index.root, image_size, ops=ops, split=split, required=("test",), min_classes=min_classes)


def _refuse_classes_without_readable_images(
    index: DatasetIndex, split: pd.DataFrame, readable: np.ndarray, required: tuple[str, ...]
) -> None:
    """A class with no readable image in the train split cannot be learnt, and in the test
    split cannot be scored (its recall and AUC are undefined): refuse, with every split's
    counts, instead of training a model that silently never sees it."""
    found = pd.crosstab(split["label"], split["split"]).reindex(
        index=list(index.class_names), columns=list(SPLITS), fill_value=0
    )
    usable = pd.crosstab(split.loc[readable, "label"], split.loc[readable, "split"]).reindex(
        index=list(index.class_names), columns=list(SPLITS), fill_value=0
    )
    present = [s for s in SPLITS if found[s].sum()]
    for name in ("train", "test"):
        if name not in required:
            continue
        empty = [c for c in index.class_names if usable.loc[c, name] == 0]
        if not empty:
            continue
        described = ", ".join(
            f"'{c}' ("
            + "; ".join(f"{s} {found.loc[c, s]} found, {found.loc[c, s] - usable.loc[c, s]} unreadable" for s in present)
            + ")"
            for c in empty
        )
        noun = "class" if len(empty) == 1 else "classes"
        raise ValueError(
            f"{index.root}: no readable image of {noun} {described} in the {name} split; "
            "every class needs one to be trained and scored"
        )


def _checked_split(index: DatasetIndex, split: pd.DataFrame) -> pd.DataFrame:
    """A stored split, validated against the dataset it is applied to."""
    missing_columns = {"path", "split", "label"} - set(split.columns)
    if missing_columns:
        raise ValueError(f"stored split lacks columns {sorted(missing_columns)}")
    split = split[["path", "split", "label"]].astype(str).reset_index(drop=True)
    unknown_splits = set(split["split"]) - set(SPLITS)
    if unknown_splits:
        raise ValueError(f"stored split names unknown splits {sorted(unknown_splits)}")
    repeated = split["path"][split["path"].duplicated()]
    if not repeated.empty:
        raise ValueError(f"stored split lists {repeated.nunique()} image(s) more than once, e.g. {repeated.iloc[0]}")
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
    added = sorted(set(index.class_names) - set(split["label"]))
    if added:
        raise ValueError(f"class folder(s) {added} of {index.root} were added since the split was made")
    return split
