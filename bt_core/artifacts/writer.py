"""RunWriter: writes one run folder; the manifest is rewritten after every change of state.

Two writers that leave the manifest alone serve the analysis pass of a finished run:
:func:`write_test_boxes`, and :func:`record_skipped`, which changes it only when there is
something new to record.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bt_core.artifacts.files import atomic_write, naming_a_full_disk, read_json, write_csv, write_json
from bt_core.artifacts.layout import (
    BACKUP_DIR,
    TENSORBOARD_DIR,
    HISTORY,
    HISTORY_COLUMNS,
    METRICS,
    MODEL_FILE,
    PREDICTIONS,
    SPLIT,
    SPLIT_COLUMNS,
    TEST_BOX_COLUMNS,
    TEST_BOXES,
    TEST_IMAGES,
    backup_dir,
    manifest_path,
    model_dir,
)
from bt_core.artifacts.schema import FORMAT_VERSION, STATUS_PENDING, Manifest
from bt_core.artifacts.tables import validate_predictions


class RunWriter:
    """Writes one run folder. ``manifest``: a :class:`Manifest` (what the pipeline passes) or,
    for tests and benchmarks that fabricate runs, its JSON object. ``self.manifest`` is the
    JSON object as written."""

    def __init__(self, run_dir: Path, manifest: Manifest | Mapping[str, Any]):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(manifest, Manifest):
            self.manifest = manifest.to_json()
        else:
            self.manifest = {"format_version": FORMAT_VERSION, **manifest}
        self.manifest.setdefault("models", {})
        self.save_manifest()

    def save_manifest(self) -> None:
        write_json(manifest_path(self.run_dir), self.manifest)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def timing(self) -> dict[str, Any]:
        """The manifest's ``timing`` block as written (a copy)."""
        return dict(self.manifest.get("timing") or {})

    def update_timing(self, **fields: Any) -> None:
        """Set ``timing`` fields (``seconds``, ``finished``, ...) and save."""
        self.manifest.setdefault("timing", {}).update(fields)
        self.save_manifest()

    def _current_session(self) -> dict[str, Any]:
        sessions = self.manifest.get("sessions")
        if not sessions:
            raise ValueError(f"the manifest of {self.run_dir} records no training session")
        return sessions[-1]

    def add_trained(self, name: str, seconds: float) -> None:
        """The current (last) session trained ``name`` (done or failed); ``seconds``: the run's
        total so far, kept current after every model so a killed run accounts for its work."""
        self._current_session().setdefault("trained", []).append(name)
        self.update_timing(seconds=seconds)

    def finish_session(self, finished: str, seconds: float) -> None:
        """The current session and the run's timing end at ``finished``, after ``seconds`` in all."""
        self._current_session()["finished"] = finished
        self.update_timing(finished=finished, seconds=seconds)

    def set_model_status(self, name: str, status: str, **fields: Any) -> None:
        entry = self.manifest["models"].setdefault(name, {})
        entry["status"] = status
        entry.update(fields)
        self.save_manifest()

    def reset_model(self, name: str) -> None:
        """Forget an unfinished model: its entry is set back to pending and its folder deleted,
        except the training state a resume continues from (``backup/``, ``history.csv`` and
        ``tensorboard/``, when there is a backup)."""
        directory = model_dir(self.run_dir, name)
        if directory.exists():
            keep = {BACKUP_DIR, HISTORY, TENSORBOARD_DIR} if backup_dir(self.run_dir, name).is_dir() else set()
            for path in directory.iterdir():
                if path.name in keep:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        self.manifest["models"][name] = {"status": STATUS_PENDING}
        self.save_manifest()

    def backup_dir(self, name: str) -> Path:
        """The model's training state folder (``models/<name>/backup/``; may not exist)."""
        return backup_dir(self.run_dir, name)

    def remove_backup(self, name: str) -> None:
        """Drop the model's training state: it is done, or its state is not worth continuing."""
        shutil.rmtree(backup_dir(self.run_dir, name), ignore_errors=True)

    def history_so_far(self, name: str) -> pd.DataFrame:
        """The model's history.csv as written so far (by an interrupted session too); an empty
        table when there is none or it cannot be read (the resume then starts the model over)."""
        path = model_dir(self.run_dir, name) / HISTORY
        try:
            return pd.read_csv(path)
        except (OSError, ValueError):  # absent, empty or torn (pandas' parse errors are ValueErrors)
            return pd.DataFrame(columns=HISTORY_COLUMNS)

    def write_split(self, split: pd.DataFrame) -> None:
        missing = set(SPLIT_COLUMNS) - set(split.columns)
        if missing:
            raise ValueError(f"split table lacks columns {sorted(missing)}")
        write_csv(self.run_dir / SPLIT, split[SPLIT_COLUMNS])

    def write_test_images(self, images: np.ndarray, ids: list[str] | np.ndarray) -> None:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"test images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        ids = np.asarray(ids, dtype=str)
        if len(ids) != len(images):
            raise ValueError(f"{len(ids)} ids for {len(images)} test images")

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, images=images, ids=ids)

        atomic_write(self.run_dir / TEST_IMAGES, save)

    def write_test_boxes(self, boxes: pd.DataFrame, ids: list[str] | np.ndarray) -> int:
        """:func:`write_test_boxes` into this run."""
        return write_test_boxes(self.run_dir, boxes, ids)

    def model_dir(self, name: str) -> Path:
        path = model_dir(self.run_dir, name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_model(self, name: str, model: Any) -> None:
        # Keras picks the format from the suffix, so the temporary name must end in .keras.
        target = self.model_dir(name) / MODEL_FILE
        tmp = target.with_name(f".{MODEL_FILE}.tmp.keras")
        try:
            with naming_a_full_disk(target):
                model.save(tmp)
                os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()

    def write_history(self, name: str, history: pd.DataFrame) -> None:
        """Rewritten after every epoch while the model trains (atomically), and once more when done."""
        write_csv(self.model_dir(name) / HISTORY, history)

    def write_predictions(self, name: str, predictions: pd.DataFrame) -> None:
        validate_predictions(predictions, self.class_names)
        write_csv(self.model_dir(name) / PREDICTIONS, predictions)

    def write_metrics(self, name: str, metrics: dict[str, Any]) -> None:
        write_json(self.model_dir(name) / METRICS, metrics)


def write_test_boxes(run_dir: Path, boxes: pd.DataFrame, ids: list[str] | np.ndarray) -> int:
    """test_boxes.csv: the tumor boxes of the test images ``ids`` (``boxes`` indexed by image
    path, columns ``x_min..y_max`` normalised, in the stored images' frame); returns how many
    test images have one. The manifest is not touched."""
    test = boxes[boxes.index.isin(np.asarray(ids, dtype=str))]
    frame = test.reset_index().rename(columns={test.index.name or "index": "id"})
    write_csv(Path(run_dir) / TEST_BOXES, frame.reindex(columns=TEST_BOX_COLUMNS))
    return len(frame)


def record_skipped(run_dir: Path, skipped: Sequence[Mapping[str, str]]) -> int:
    """Add files skipped after training (``{"path", "reason"}``) to the manifest's
    ``dataset.skipped``; returns how many were new. The manifest is rewritten only then, so
    readers that cache on its modification time keep their caches otherwise."""
    path = manifest_path(Path(run_dir))
    data = read_json(path)
    Manifest.from_json(data, where=path)  # the usual checks before rewriting it
    dataset = data.setdefault("dataset", {})
    listed = {(str(s.get("path")), str(s.get("reason"))) for s in dataset.get("skipped") or ()}
    pairs = dict.fromkeys((str(s["path"]), str(s["reason"])) for s in skipped)
    new = [{"path": file, "reason": reason} for file, reason in pairs if (file, reason) not in listed]
    if new:
        dataset["skipped"] = [*(dataset.get("skipped") or ()), *new]
        write_json(path, data)
    return len(new)
