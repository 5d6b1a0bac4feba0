"""The data explored, stored in the run (data/, bt_core.artifacts.data_profile): class counts,
image sizes and channels before resizing, intensity histograms per class and region, a seeded
grid of images per class, the run's augmentation applied to a few images, and the duplicate
groups with examples.

Written at training time from the dataset already in memory (:func:`write_run_data_profile`,
called by :func:`bt_core.runs.zoo.run_zoo` after the split is written), or afterwards for an
existing run from its dataset folder (:func:`profile_run`). The duplicate groups come from the
dataset audit's own functions (:mod:`bt_core.shortcuts.audit`) on the image files, as the
analysis pass finds them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_core.artifacts import ArtifactError, load_manifest, read_split
from bt_core.artifacts.data_profile import write_data_profile
from bt_core.artifacts.files import is_disk_full
from bt_core.artifacts.layout import data_profile_path
from bt_core.data import profile
from bt_core.data.dataset import LoadedDataset, load_dataset
from bt_core.training.augment_preview import augmentation_preview

logger = logging.getLogger(__name__)
Say = Callable[[str], Any]

THUMBNAIL_SIZE = 96  # px, at most the run's image size
GRID_PER_CLASS = 6  # random images per class in the grid
AUGMENT_IMAGES = 2  # training images shown through the augmentation
AUGMENT_DRAWS = 5  # random draws of each (the original is shown beside them)
DUPLICATE_GROUPS_SHOWN = 8  # groups with example thumbnails
DUPLICATE_MEMBERS_SHOWN = 4  # example images per group shown


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Catalogue:
    """Every image of every split by one row number, without copying the arrays together."""

    def __init__(self, dataset: LoadedDataset):
        names = list(dataset.arrays)
        self._arrays = [dataset.arrays[s].images for s in names]
        self._starts = np.cumsum([0] + [len(a) for a in self._arrays])
        self.ids = np.concatenate([dataset.arrays[s].ids for s in names]).astype(str)
        self.labels = np.concatenate([dataset.arrays[s].labels for s in names])
        self.row_of = {str(i): row for row, i in enumerate(self.ids)}
        self.side = int(self._arrays[0].shape[1])

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 ``(len(rows), S, S, 3)`` of those rows."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.side, self.side, 3), dtype=np.uint8)
        for position, row in enumerate(rows):
            part = int(np.searchsorted(self._starts, row, side="right") - 1)
            out[position] = self._arrays[part][row - self._starts[part]]
        return out


def sizes_section(dataset: LoadedDataset) -> dict[str, Any]:
    """Image sizes and channels of the files as they are on disk, before any image op or resize."""
    headers = profile.read_headers(dataset.index.root, dataset.split["path"].tolist())
    headers["label"] = dataset.split["label"].to_numpy()
    return {
        "source": "file headers, before the image ops and the resize",
        "table": profile.size_table(headers).to_dict(orient="records"),
        "modes": profile.channel_counts(headers),
        "unreadable_headers": int(headers["error"].notna().sum()),
    }


def histograms_section(catalogue: _Catalogue, class_names: Sequence[str], seed: int) -> dict[str, Any]:
    rows = profile.sample_per_class(catalogue.labels, len(class_names), profile.HISTOGRAM_IMAGES_PER_CLASS, seed)
    sampled = catalogue.labels[rows]
    return {
        "bins": profile.HISTOGRAM_BINS,
        "regions": list(profile.HISTOGRAM_REGIONS),
        "border_width": profile.BORDER_WIDTH,
        "space": "grey levels of the images as stored (after the image ops, at the run's image size)",
        "images": {name: int((sampled == index).sum()) for index, name in enumerate(class_names)},
        "counts": profile.intensity_histograms(catalogue.take(rows), sampled, class_names),
    }


def augmentation_strengths(models: Sequence[str], recipes: Mapping[str, Mapping[str, Any]] | None = None) -> dict[float, list[str]]:
    """Each augmentation strength of the run's models, with the models that train with it
    (stored recipes win; the registry's recipe otherwise)."""
    from bt_core.models import get_spec

    recipes = recipes or {}
    strengths: dict[float, list[str]] = {}
    for name in models:
        stored = recipes.get(name) or {}
        strength = float(stored["augment_strength"]) if "augment_strength" in stored else get_spec(name).recipe.augment_strength
        strengths.setdefault(strength, []).append(name)
    return strengths


def augmentation_section(
    images: np.ndarray, ids: np.ndarray, labels: np.ndarray, class_names: Sequence[str], mode: str,
    strengths: Mapping[float, Sequence[str]], seed: int, size: int,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The record, thumbnails ``(P, 1 + AUGMENT_DRAWS, T, T, 3)`` (the original first) and ids."""
    rng = np.random.default_rng(seed)
    classes = rng.permutation(len(class_names))[:AUGMENT_IMAGES]
    rows = [int(rng.choice(np.flatnonzero(labels == c))) for c in classes if (labels == c).any()]
    previews, frames, shown_ids = [], [], []
    for strength, models in strengths.items():
        for row in rows:
            draws = augmentation_preview(images[row], mode, strength, AUGMENT_DRAWS, seed + row)
            frames.append(profile.thumbnails(np.concatenate([images[row][None], draws]), size))
            shown_ids.append(str(ids[row]))
            previews.append({"id": str(ids[row]), "label": class_names[int(labels[row])],
                             "strength": strength, "models": list(models)})
    record = {"mode": mode, "draws": AUGMENT_DRAWS, "previews": previews}
    empty = np.zeros((0, 1 + AUGMENT_DRAWS, size, size, 3), np.uint8)
    return record, (np.stack(frames) if frames else empty), np.asarray(shown_ids, dtype=str)


def duplicate_groups(pairs: pd.DataFrame, split_of: Mapping[str, str], label_of: Mapping[str, str]) -> list[dict[str, Any]]:
    """One record per group of the audit's pairs: its members, splits, labels and kind; label
    conflicts first, then groups across splits, then larger groups."""
    groups = []
    for number, group in pairs.groupby("group", sort=True):
        members = list(pd.unique(pd.concat([group["id_a"], group["id_b"]], ignore_index=True)))
        splits = pd.Series([split_of[m] for m in members]).value_counts().to_dict()
        labels = sorted({label_of[m] for m in members})
        groups.append({
            "group": int(number), "size": len(members),
            "kind": "exact" if (group["kind"] == "exact").all() else "near",
            "splits": {str(k): int(v) for k, v in splits.items()},
            "labels": labels, "conflict": len(labels) > 1, "members": [str(m) for m in members],
        })
    return sorted(groups, key=lambda g: (not g["conflict"], len(g["splits"]) < 2, -g["size"], g["group"]))


def duplicates_section(dataset: LoadedDataset, catalogue: _Catalogue, size: int) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The audit's duplicate pairs over all splits (hashed from the files, as the analysis pass
    does), summarised by group, and thumbnails of a few members of the first groups."""
    try:  # imported here: training must not need imagehash (the GPU image has none)
        from bt_core.shortcuts import audit
        from bt_core.shortcuts.measures import HASH_WORKERS
    except ImportError as exc:
        return {"skipped": f"the dataset audit cannot run here ({exc}); run `bt-zoo profile RUN` where it can"}, \
            np.zeros((0, size, size, 3), np.uint8), np.array([], dtype=str)
    split = dataset.split
    files = [Path(dataset.index.root) / p for p in split["path"]]
    hashes = audit.hash_images(files, workers=HASH_WORKERS)
    report = audit.find_duplicates(hashes, split["split"].tolist(), split["label"].tolist(), split["path"].tolist())
    pairs = report.pairs
    split_of, label_of = dict(zip(split["path"], split["split"])), dict(zip(split["path"], split["label"]))
    groups = duplicate_groups(pairs, split_of, label_of)
    shown, thumbs, thumb_ids = [], [], []
    for group in groups[:DUPLICATE_GROUPS_SHOWN]:
        examples = [m for m in group["members"] if m in catalogue.row_of][:DUPLICATE_MEMBERS_SHOWN]
        shown.append({**group, "shown": [{"id": m, "split": split_of[m], "label": label_of[m]} for m in examples]})
        thumb_ids.extend(examples)
        thumbs.extend(catalogue.row_of[m] for m in examples)
    record = {
        "pairs": int(len(pairs)),
        "exact_pairs": int((pairs["kind"] == "exact").sum()) if len(pairs) else 0,
        "near_pairs": int((pairs["kind"] == "near").sum()) if len(pairs) else 0,
        "groups": len(groups),
        "images_in_groups": int(sum(g["size"] for g in groups)),
        "cross_split_groups": int(sum(len(g["splits"]) > 1 for g in groups)),
        "conflict_groups": int(sum(g["conflict"] for g in groups)),
        "unreadable": report.unreadable,
        "max_distance": report.max_distance,
        "min_similarity": report.min_similarity,
        "summary": report.summary.to_dict(orient="records"),
        "shown": shown,
    }
    stacked = profile.thumbnails(catalogue.take(thumbs), size) if thumbs else np.zeros((0, size, size, 3), np.uint8)
    return record, stacked, np.asarray(thumb_ids, dtype=str)


def build_data_profile(
    dataset: LoadedDataset, *, augment_mode: str, strengths: Mapping[float, Sequence[str]], seed: int,
    image_ops: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The record of profile.json and the thumbnail arrays of a loaded dataset."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    def timed(part: str, compute: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        result = compute()
        seconds[part] = round(time.perf_counter() - began, 2)
        return result

    class_names = dataset.class_names
    catalogue = _Catalogue(dataset)
    ids, labels = catalogue.ids, catalogue.labels
    size = int(min(THUMBNAIL_SIZE, catalogue.side))
    grid_rows = profile.sample_per_class(labels, len(class_names), GRID_PER_CLASS, seed)
    train = dataset.arrays["train"]
    augmentation, augment_images, augment_ids = timed("augmentation", lambda: augmentation_section(
        train.images, train.ids, train.labels, class_names, augment_mode, strengths, seed, size))
    duplicates, duplicate_images, duplicate_ids = timed(
        "duplicates", lambda: duplicates_section(dataset, catalogue, size))
    split_of = dict(zip(dataset.split["path"], dataset.split["split"]))
    record = {
        "created": _now(),
        "seed": int(seed),
        "class_names": class_names,
        "image_size": catalogue.side,
        "image_ops": list(image_ops),
        "thumbnail_size": size,
        "counts": dataset.counts(),
        "sizes": timed("sizes", lambda: sizes_section(dataset)),
        "histograms": timed("histograms", lambda: histograms_section(catalogue, class_names, seed)),
        "grid": {"per_class": GRID_PER_CLASS, "ids": ids[grid_rows].tolist(),
                 "labels": [class_names[int(i)] for i in labels[grid_rows]],
                 "splits": [split_of[i] for i in ids[grid_rows]]},
        "augmentation": augmentation,
        "duplicates": duplicates,
        "seconds_by_part": seconds,
    }
    thumbnails = {
        "grid_images": profile.thumbnails(catalogue.take(grid_rows), size), "grid_ids": ids[grid_rows],
        "augmentation_images": augment_images, "augmentation_ids": augment_ids,
        "duplicates_images": duplicate_images, "duplicates_ids": duplicate_ids,
    }
    record["seconds"] = round(time.perf_counter() - started, 2)
    return record, thumbnails


def write_run_data_profile(run_dir: Path, dataset: LoadedDataset, config: Any, say: Say | None = None,
                           recipes: Mapping[str, Mapping[str, Any]] | None = None) -> Path | None:
    """Build and write the data profile of a run from its loaded dataset (``config``: the
    run's RunConfig), unless the run has one (a resumed run keeps its own). A failure is
    logged and returns None: the profile never stops training; a full disk is raised, as
    every later write would fail too."""
    if has_data_profile(run_dir):
        return data_profile_path(run_dir)
    try:
        record, thumbnails = build_data_profile(
            dataset, augment_mode=config.augment_mode, strengths=augmentation_strengths(config.models, recipes),
            seed=config.seed, image_ops=config.preprocess)
        path = write_data_profile(run_dir, record, thumbnails)
    except (ValueError, OSError, ArtifactError) as exc:
        if is_disk_full(exc):
            raise
        logger.warning("data profile not written (%s: %s); python train_all.py --profile %s writes it later",
                       type(exc).__name__, exc, run_dir)
        return None
    (say or logger.info)(f"data profile written in {record['seconds']:.1f}s: {path.parent}")
    return path


def profile_run(run_dir: Path | str, data: Path | str | None = None, say: Say | None = None) -> Path:
    """(Re)write the data profile of an existing run from its dataset folder (``data``, default
    the manifest's ``dataset.root``), decoded on the run's stored split with its image size and
    ops. ValueError when the folder is missing or no longer the run's dataset (fingerprint)."""
    from bt_core.runs.resume import config_from_manifest

    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    config = config_from_manifest(manifest, strict=False)
    root = Path(data if data is not None else manifest.dataset.root or config.data)
    if not root.is_dir():
        raise ValueError(f"dataset folder {root} is not on this machine; give it with --data")
    dataset = load_dataset(root, image_size=manifest.image_size, ops=tuple(manifest.image_ops),
                           split=read_split(run_dir))
    if manifest.dataset.fingerprint and dataset.fingerprint != manifest.dataset.fingerprint:
        raise ValueError(f"{root} is not the dataset {run_dir.name} was trained on (fingerprint "
                         f"{manifest.dataset.fingerprint[:12]}... then, {dataset.fingerprint[:12]}... now)")
    recipes = {name: entry.recipe for name, entry in manifest.models.items() if entry.recipe}
    record, thumbnails = build_data_profile(
        dataset, augment_mode=manifest.augment_mode, strengths=augmentation_strengths(list(manifest.models), recipes),
        seed=config.seed, image_ops=tuple(manifest.image_ops))
    path = write_data_profile(run_dir, record, thumbnails)
    (say or logger.info)(f"data profile written in {record['seconds']:.1f}s: {path.parent}")
    return path


def has_data_profile(run_dir: Path) -> bool:
    return data_profile_path(run_dir).is_file()
