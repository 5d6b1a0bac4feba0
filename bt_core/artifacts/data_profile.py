"""data/ (optional): the data explored, written at training time so the Data page needs no
dataset folder: ``profile.json`` (class counts, image sizes and channels, intensity
histograms, the sampled ids, the augmentation settings, duplicate groups) and
``thumbnails.npz`` (the small uint8 images those tables name). docs/artifacts.md has the
format; :mod:`bt_core.runs.data_profile` builds it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.files import atomic_write, read_json, write_json
from bt_core.artifacts.layout import data_profile_path, data_thumbnails_path
from bt_core.artifacts.tables import ARCHIVE_ERRORS

PROFILE_VERSION = 1
# The thumbnail sets of thumbnails.npz: <set>_images uint8 and <set>_ids, one id per image
# (grid, duplicates: (N, T, T, 3)) or per row of draws (augmentation: (N, D, T, T, 3)).
THUMBNAIL_SETS = ("grid", "augmentation", "duplicates")
REQUIRED_KEYS = ("profile_version", "class_names", "counts")


@dataclass(frozen=True, eq=False)
class DataProfile:
    """A run's data profile: the record of profile.json and the thumbnail arrays."""

    record: dict[str, Any]
    thumbnails: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.record["class_names"])

    def section(self, name: str) -> dict[str, Any]:
        """One section of the record (``{}`` when absent or not a mapping)."""
        value = self.record.get(name)
        return value if isinstance(value, dict) else {}

    def images(self, thumbnail_set: str) -> tuple[np.ndarray, np.ndarray]:
        """``(images, ids)`` of one thumbnail set (empty arrays when it has none)."""
        if thumbnail_set not in THUMBNAIL_SETS:
            raise ValueError(f"unknown thumbnail set {thumbnail_set!r}; valid: {', '.join(THUMBNAIL_SETS)}")
        images = self.thumbnails.get(f"{thumbnail_set}_images")
        ids = self.thumbnails.get(f"{thumbnail_set}_ids")
        if images is None or ids is None:
            return np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0, dtype=str)
        return images, ids


def _checked_thumbnails(thumbnails: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of the known sets, checked: uint8 RGB images with one id each."""
    checked: dict[str, np.ndarray] = {}
    for name in THUMBNAIL_SETS:
        images, ids = thumbnails.get(f"{name}_images"), thumbnails.get(f"{name}_ids")
        if images is None and ids is None:
            continue
        if images is None or ids is None:
            raise ValueError(f"thumbnail set {name!r} needs both {name}_images and {name}_ids")
        images, ids = np.asarray(images), np.asarray(ids, dtype=str)
        if images.dtype != np.uint8 or images.ndim not in (4, 5) or images.shape[-1] != 3:
            raise ValueError(f"{name}_images must be uint8 (N, [D,] T, T, 3), got {images.dtype} {images.shape}")
        if ids.ndim != 1 or len(ids) != len(images):
            raise ValueError(f"{name}_ids has {ids.shape} entries for {len(images)} images")
        checked[f"{name}_images"], checked[f"{name}_ids"] = images, ids
    unknown = sorted(set(thumbnails) - set(checked))
    if unknown:
        raise ValueError(f"unknown thumbnail arrays {unknown}")
    return checked


def write_data_profile(run_dir: Path, record: Mapping[str, Any], thumbnails: Mapping[str, np.ndarray]) -> Path:
    """Write data/thumbnails.npz, then data/profile.json (atomic each; a present profile.json
    means its thumbnails are complete). Returns the profile.json path."""
    record = dict(record)
    record.setdefault("profile_version", PROFILE_VERSION)
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise ValueError(f"a data profile needs {missing}")
    arrays = _checked_thumbnails(thumbnails)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    atomic_write(data_thumbnails_path(run_dir), save)
    path = data_profile_path(run_dir)
    write_json(path, record)
    return path


def load_data_profile(run_dir: Path) -> DataProfile | None:
    """The run's data profile, or None when it has none (runs before it). ArtifactError naming
    the file when profile.json or thumbnails.npz cannot be read or is inconsistent."""
    path = data_profile_path(run_dir)
    if not path.is_file():
        return None
    try:
        record = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} cannot be read: {type(exc).__name__}: {exc}") from exc
    if not isinstance(record, dict) or any(key not in record for key in REQUIRED_KEYS):
        raise ArtifactError(f"{path} is not a data profile: it needs {', '.join(REQUIRED_KEYS)}")
    if not isinstance(record["profile_version"], int) or record["profile_version"] > PROFILE_VERSION:
        raise ArtifactError(f"{path} has profile version {record['profile_version']!r}; this code reads "
                            f"{PROFILE_VERSION} and older: update the project")
    thumbnails_path = data_thumbnails_path(run_dir)
    try:
        with np.load(thumbnails_path, allow_pickle=False) as data:
            thumbnails = _checked_thumbnails({key: data[key] for key in data.files})
    except ARCHIVE_ERRORS as exc:
        raise ArtifactError(f"{thumbnails_path} cannot be read: {type(exc).__name__}: {exc}") from exc
    return DataProfile(record=record, thumbnails=thumbnails)
