"""Reading runs: the manifest, the run picker's list, a run's tables and models, its evaluations.

:class:`Run` answers what pages ask (image size, image ops, boxes, the training run of an
evaluation, each model's entry and spec), so nothing outside this package decodes a manifest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.files import read_json
from bt_core.artifacts.heads import load_test_heads
from bt_core.artifacts.layout import (
    EVALUATIONS_DIR,
    HISTORY,
    METRICS,
    MODEL_FILE,
    SPLIT,
    TEST_IMAGES,
    manifest_path,
    model_card_path,
    model_dir,
    training_run_dir,
)
from bt_core.artifacts.schema import STATUS_RUNNING, DatasetRecord, Evaluation, Manifest, ModelEntry
from bt_core.artifacts.tables import (
    keras_file_problem,
    load_test_boxes,
    read_predictions,
    read_split,
    test_images_header,
)

# A model's name is a folder of the run: no separators, no "..", nothing hidden.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# history.csv columns that must hold numbers (blank cells are allowed: NaN).
_HISTORY_NUMBERS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr")


@dataclass
class ModelArtifacts:
    """What one model of a run left behind. ``info`` is the manifest entry as stored,
    ``entry`` the same typed.

    ``error`` says why its results cannot be used (every page leaves it out);
    ``live_problem`` why its model.keras cannot be loaded (only a live map or an upload
    needs it: the stored results still count); ``history_problem`` why it has no training
    curves (only the Training page needs them). ``predictions`` are in the order of the
    run's test images (``Run.test_ids``)."""

    name: str
    directory: Path
    status: str
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    error: str | None = None
    live_problem: str | None = None
    history_problem: str | None = None
    stored_entry: ModelEntry | None = field(default=None, repr=False)

    @property
    def entry(self) -> ModelEntry:
        return self.stored_entry if self.stored_entry is not None else ModelEntry.from_json(self.name, self.info)

    @property
    def usable(self) -> bool:
        return self.error is None and self.predictions is not None

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL_FILE


@dataclass
class Run:
    """A run (or an evaluation) as stored: ``manifest`` is the JSON object, ``typed_manifest``
    the same read through :class:`Manifest`, the one decoder; use the properties."""

    run_id: str
    directory: Path
    manifest: dict[str, Any]
    split: pd.DataFrame
    models: dict[str, ModelArtifacts]
    typed_manifest: Manifest
    # The test images' ids in test_images.npz order (split.csv's test rows without the file):
    # the order of every model's predictions.
    test_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))

    @property
    def class_names(self) -> list[str]:
        return list(self.typed_manifest.class_names)

    @property
    def image_size(self) -> int:
        """The square size of the stored test images and of every model input."""
        if self.typed_manifest.image_size is None:
            raise ArtifactError(f"{manifest_path(self.directory)} records no image size")
        return self.typed_manifest.image_size

    @property
    def image_ops(self) -> tuple[str, ...]:
        """The image ops applied, in order, when decoding (``()`` for a 1.0 run)."""
        return self.typed_manifest.image_ops

    @property
    def augment_mode(self) -> str:
        return self.typed_manifest.augment_mode

    @property
    def dataset(self) -> DatasetRecord:
        return self.typed_manifest.dataset

    @property
    def evaluation(self) -> Evaluation | None:
        return self.typed_manifest.evaluation

    @property
    def is_evaluation(self) -> bool:
        return self.typed_manifest.is_evaluation

    def entry(self, name: str) -> ModelEntry:
        """The manifest entry of model ``name``; ArtifactError for a model the run lacks."""
        try:
            return self.typed_manifest.models[name]
        except KeyError:
            raise ArtifactError(f"run {self.run_id} has no model {name!r}") from None

    def test_boxes(self, ids: list[str] | np.ndarray | None = None) -> np.ndarray | None:
        """The stored tumor boxes ``(N, 4)`` in ``ids`` order (default: the test images'),
        NaN rows for images without one; None when the run stored none."""
        return load_test_boxes(self.directory, self.test_ids if ids is None else ids)

    def test_heads(self) -> np.ndarray | None:
        """The head masks the analysis pass measured with (1.3): bool ``(N, S, S)`` in test
        image order; None when the run has none. ArtifactError when they are of other images
        or of another size than the test images."""
        stored = load_test_heads(self.directory)
        if stored is None:
            return None
        heads, ids = stored
        image_ids, image_shape = test_images_header(self.directory)
        if ids.tolist() != image_ids.tolist():
            raise ArtifactError(f"{self.directory}: test_heads.npz is not of the test images; analyze the run again")
        if heads.shape[1:] != tuple(image_shape[1:3]):
            raise ArtifactError(
                f"{self.directory}: test_heads.npz holds {heads.shape[1]} x {heads.shape[2]} masks for "
                f"{image_shape[1]} x {image_shape[2]} test images; analyze the run again"
            )
        return heads

    def parent_run(self) -> Run | None:
        """For an evaluation: the training run it belongs to; None for a run. ArtifactError
        when the training run is not beside the evaluation any more."""
        if not self.is_evaluation:
            return None
        parent = training_run_dir(self.directory)
        if parent is None:
            raise ArtifactError(f"{self.directory} is an evaluation but no training run holds it")
        return load_run(parent)

    def usable_models(self) -> list[ModelArtifacts]:
        return [m for m in self.models.values() if m.usable]

    def same_data_as(self, other: Run) -> bool:
        """True when both datasets carry the same fingerprint (same files, same contents): an
        "external" evaluation of a run's own dataset, whose scores are not external."""
        return bool(self.dataset.fingerprint) and self.dataset.fingerprint == other.dataset.fingerprint


@dataclass(frozen=True)
class RunSummary:
    """One line of the run picker; ``error`` is set when the run cannot be opened."""

    run_id: str
    directory: Path
    created: str
    dataset: str
    model_count: int
    error: str | None = None


_JSON_TYPE_NAMES = {list: "a list", dict: "an object", str: "a string", type(None): "null"}


def _type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _check_manifest_shape(data: Any, path: Path) -> None:
    """ArtifactError for a manifest whose top level cannot be a run's: not an object,
    ``models`` not an object by model name, ``class_names`` not distinct names."""
    if not isinstance(data, Mapping):
        raise ArtifactError(f"{path} does not hold a JSON object (it holds {_type_name(data)})")
    models = data.get("models")
    if models is not None and not isinstance(models, Mapping):
        raise ArtifactError(
            f"{path} is malformed: models must be an object of model entries by name, not {_type_name(models)}"
        )
    names = data.get("class_names")
    if names and (
        not isinstance(names, list)
        or not all(isinstance(name, str) and name for name in names)
        or len(set(names)) != len(names)
    ):
        raise ArtifactError(f"{path} is malformed: class_names must be a list of distinct names, got {str(names)[:80]}")


def _read_json_file(path: Path, named: Any) -> Any:
    """The JSON in ``path``; ArtifactError naming it as ``named`` when it cannot be read."""
    try:
        return read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{named} is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise ArtifactError(f"{named} cannot be read: {exc}") from exc


def _read_manifest_json(run_dir: Path) -> tuple[dict[str, Any], Manifest]:
    """The manifest as stored and typed (:meth:`Manifest.from_json`, the one decoder)."""
    path = manifest_path(run_dir)
    if not path.is_file():
        if path.exists():
            raise ArtifactError(f"{path} is not a file")
        raise ArtifactError(f"{path} is missing: not a run folder")
    data = _read_json_file(path, path)
    _check_manifest_shape(data, path)
    return data, Manifest.from_json(data, where=path)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest's JSON object as stored, checked by :meth:`Manifest.from_json`."""
    return _read_manifest_json(run_dir)[0]


def load_manifest(run_dir: Path) -> Manifest:
    """The run's manifest, typed; ArtifactError when missing, malformed or too new."""
    return _read_manifest_json(run_dir)[1]


def list_runs(artifacts_dir: Path) -> list[RunSummary]:
    """Every folder of ``artifacts_dir`` with a manifest, newest first; broken ones carry an error."""
    root = Path(artifacts_dir)
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if not path.is_dir() or path.name.startswith(".") or not manifest_path(path).exists():
            continue
        try:
            manifest = load_manifest(path)
        except ArtifactError as exc:
            runs.append(RunSummary(path.name, path, "", "", 0, error=str(exc)))
            continue
        summary = RunSummary(path.name, path, manifest.created, manifest.dataset.name, len(manifest.models))
        try:
            _test_set(path, read_split(path))
        except ArtifactError as exc:
            summary = RunSummary(summary.run_id, path, summary.created, summary.dataset, summary.model_count,
                                 error=str(exc))
        runs.append(summary)
    return sorted(runs, key=lambda r: (r.created, r.run_id), reverse=True)


@dataclass(frozen=True)
class _TestSet:
    """The run's test ids, where they come from, and split.csv's labels of them (None unless
    split.csv lists every one)."""

    ids: np.ndarray
    source: str
    labels: dict[str, str] | None


def _test_set(run_dir: Path, split: pd.DataFrame) -> _TestSet:
    """The run's test ids: test_images.npz's, or split.csv's test rows when the file is
    absent. ArtifactError when test_images.npz is damaged or there is no test image at all."""
    test_rows = split[split["split"] == "test"].drop_duplicates("path")
    if (Path(run_dir) / TEST_IMAGES).exists():
        ids, source = test_images_header(run_dir)[0], TEST_IMAGES
    else:
        ids, source = test_rows["path"].to_numpy(dtype=str), SPLIT
    if len(ids) == 0:
        raise ArtifactError(f"{run_dir} has no test images ({TEST_IMAGES}, or test rows in {SPLIT})")
    labels = dict(zip(test_rows["path"], test_rows["label"]))
    return _TestSet(ids, source, labels if all(image_id in labels for image_id in ids) else None)


def _read_metrics(directory: Path) -> dict[str, Any]:
    path = directory / METRICS
    if not path.is_file():
        raise ArtifactError(f"{METRICS} is missing")
    metrics = _read_json_file(path, METRICS)
    if not isinstance(metrics, dict):
        raise ArtifactError(f"{METRICS} does not hold a JSON object (it holds {_type_name(metrics)})")
    return metrics


def _read_history(directory: Path) -> tuple[pd.DataFrame | None, str | None]:
    """(history, None), or (None, why there are no training curves)."""
    path = directory / HISTORY
    if not path.is_file():
        return None, f"{HISTORY} is missing"
    try:
        history = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None, f"{HISTORY} is empty"
    except (OSError, ValueError) as exc:  # ValueError: ParserError, UnicodeDecodeError
        return None, f"{HISTORY} cannot be read: {type(exc).__name__}: {exc}"
    if "epoch" not in history.columns:
        return None, f"{HISTORY} has no epoch column (columns {list(history.columns)[:6]})"
    for column in _HISTORY_NUMBERS:
        if column in history.columns:
            values = pd.to_numeric(history[column], errors="coerce")
            bad = history[column][values.isna() & history[column].notna()]
            if len(bad):
                return None, f"{HISTORY}: column {column} holds values that are not numbers, e.g. {str(bad.iloc[0])!r}"
            history[column] = values
    return history, None


def _read_model(
    run_dir: Path, name: str, info: Any, entry: ModelEntry, class_names: list[str], test_set: _TestSet
) -> ModelArtifacts:
    directory = model_dir(run_dir, name)
    artifacts = ModelArtifacts(name=name, directory=directory, status=entry.status,
                               info=dict(info) if isinstance(info, Mapping) else {}, stored_entry=entry)
    if not _SAFE_NAME.fullmatch(name):
        artifacts.error = artifacts.live_problem = (
            f"model name {name!r} is not a safe folder name (letters, digits, '-', '_', '.'), so its files are not read"
        )
        return artifacts
    if not entry.is_done:
        artifacts.error = artifacts.live_problem = entry.error or f"training {entry.status}"
        if entry.status == STATUS_RUNNING and (directory / HISTORY).is_file():
            artifacts.history, _problem = _read_history(directory)  # written every epoch: live curves
        return artifacts
    artifacts.live_problem = keras_file_problem(directory / MODEL_FILE)
    try:
        predictions = read_predictions(directory, class_names, test_set.ids, test_set.labels)
    except ArtifactError as exc:
        note = f" (without {TEST_IMAGES} the test ids are {SPLIT}'s test rows)" if test_set.source == SPLIT else ""
        artifacts.error = f"{exc}{note}"
        return artifacts
    try:
        artifacts.metrics = _read_metrics(directory)
    except ArtifactError as exc:
        artifacts.error = str(exc)
        return artifacts
    artifacts.predictions = predictions
    artifacts.history, artifacts.history_problem = _read_history(directory)
    return artifacts


def load_run(run_dir: Path) -> Run:
    """Read the tables of a run (never the models). ArtifactError when the run cannot be
    opened (manifest, split.csv, test_images.npz); a broken model is marked, not raised."""
    run_dir = Path(run_dir)
    manifest, typed = _read_manifest_json(run_dir)
    split = read_split(run_dir)
    test_set = _test_set(run_dir, split)
    class_names = list(typed.class_names)
    stored = manifest.get("models") or {}
    models = {
        name: _read_model(run_dir, name, stored.get(name), entry, class_names, test_set)
        for name, entry in typed.models.items()
    }
    return Run(run_id=run_dir.name, directory=run_dir, manifest=manifest, split=split, models=models,
               typed_manifest=typed, test_ids=test_set.ids)


def load_model(run_dir: Path, name: str) -> Any:
    """Load one trained model (imports Keras, so only call when a page needs the model)."""
    path = model_dir(run_dir, name) / MODEL_FILE
    problem = keras_file_problem(path)
    if problem:
        raise ArtifactError(f"model {name} cannot be loaded: {problem} ({path})")
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a corrupt archive.
        raise ArtifactError(f"{path} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def load_model_card(run_dir: Path, name: str) -> str | None:
    """The stored ``MODEL_CARD.md`` of model ``name`` as Markdown; None when it has none (a
    run written before cards, an unfinished model). ArtifactError when it cannot be read."""
    path = model_card_path(run_dir, name)
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc


def _evaluation_folders(run_dir: Path) -> list[Path]:
    """A run's evaluation folders, sorted (hidden ones, such as one still being written, left out)."""
    root = Path(run_dir) / EVALUATIONS_DIR
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def list_evaluations(run_dir: Path) -> list[str]:
    """The names of a run's evaluations with a readable manifest, sorted (hidden folders,
    such as one still being written, left out)."""
    names = []
    for path in _evaluation_folders(run_dir):
        try:
            load_manifest(path)
        except ArtifactError:
            continue
        names.append(path.name)
    return names


def evaluation_problems(run_dir: Path) -> dict[str, str]:
    """Why each evaluation of a run that cannot be opened cannot (its manifest, split.csv
    or test images), by name; the run itself is not affected."""
    problems = {}
    for path in _evaluation_folders(run_dir):
        try:
            load_manifest(path)
            _test_set(path, read_split(path))
        except ArtifactError as exc:
            problems[path.name] = str(exc)
    return problems
