"""Reading runs: the manifest, the run picker's list, a run's tables and models, its evaluations.

:class:`Run` answers what pages ask (image size, image ops, boxes, the training run of an
evaluation, each model's entry and spec), so nothing outside this package decodes a manifest.
"""

from __future__ import annotations

import json
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
    PREDICTIONS,
    SPLIT,
    manifest_path,
    model_dir,
    training_run_dir,
)
from bt_core.artifacts.schema import STATUS_DONE, STATUS_PENDING, DatasetRecord, Evaluation, Manifest, ModelEntry
from bt_core.artifacts.tables import load_test_boxes, load_test_ids, validate_predictions


@dataclass
class ModelArtifacts:
    """What one model of a run left behind. ``error`` says why it cannot be used; ``info`` is
    the manifest entry as stored, ``entry`` the same typed."""

    name: str
    directory: Path
    status: str
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    error: str | None = None

    @property
    def entry(self) -> ModelEntry:
        return ModelEntry.from_json(self.name, self.info)

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
        return load_test_boxes(self.directory, load_test_ids(self.directory) if ids is None else ids)

    def test_heads(self) -> np.ndarray | None:
        """The head masks the analysis pass measured with (1.3): bool ``(N, S, S)`` in test
        image order; None when the run has none. ArtifactError when they are of other images."""
        stored = load_test_heads(self.directory)
        if stored is None:
            return None
        heads, ids = stored
        if ids.tolist() != load_test_ids(self.directory).tolist():
            raise ArtifactError(f"{self.directory}: test_heads.npz is not of the test images; analyze the run again")
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


@dataclass(frozen=True)
class RunSummary:
    """One line of the run picker; ``error`` is set when the run cannot be opened."""

    run_id: str
    directory: Path
    created: str
    dataset: str
    model_count: int
    error: str | None = None


def _read_manifest_json(run_dir: Path) -> tuple[dict[str, Any], Manifest]:
    path = manifest_path(run_dir)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: not a run folder")
    try:
        data = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
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
            runs.append(RunSummary(path.name, path, manifest.created, manifest.dataset.name, len(manifest.models)))
        except ArtifactError as exc:
            runs.append(RunSummary(path.name, path, "", "", 0, error=str(exc)))
    return sorted(runs, key=lambda r: (r.created, r.run_id), reverse=True)


def _read_model(run_dir: Path, name: str, info: dict[str, Any], class_names: list[str]) -> ModelArtifacts:
    directory = model_dir(run_dir, name)
    status = str(info.get("status", STATUS_PENDING))
    artifacts = ModelArtifacts(name=name, directory=directory, status=status, info=info)
    if status != STATUS_DONE:
        artifacts.error = info.get("error") or f"training {status}"
        return artifacts
    try:
        artifacts.predictions = pd.read_csv(directory / PREDICTIONS)
        validate_predictions(artifacts.predictions, class_names)
        artifacts.metrics = read_json(directory / METRICS)
        history_path = directory / HISTORY
        artifacts.history = pd.read_csv(history_path) if history_path.exists() else None
    except (OSError, ValueError, ArtifactError, pd.errors.ParserError) as exc:
        # ValueError covers bad JSON and empty CSV files.
        artifacts.predictions = None
        artifacts.error = f"{type(exc).__name__}: {exc}"
    return artifacts


def load_run(run_dir: Path) -> Run:
    """Read the tables of a run (never the models). A broken model is marked, not raised."""
    run_dir = Path(run_dir)
    manifest, typed = _read_manifest_json(run_dir)
    split_path = run_dir / SPLIT
    try:
        split = pd.read_csv(split_path)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{split_path} cannot be read: {exc}") from exc
    class_names = list(typed.class_names)
    models = {
        name: _read_model(run_dir, name, info if isinstance(info, dict) else {}, class_names)
        for name, info in manifest.get("models", {}).items()
    }
    return Run(run_id=run_dir.name, directory=run_dir, manifest=manifest, split=split, models=models,
               typed_manifest=typed)


def load_model(run_dir: Path, name: str) -> Any:
    """Load one trained model (imports Keras, so only call when a page needs the model)."""
    import keras

    path = model_dir(run_dir, name) / MODEL_FILE
    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a corrupt archive.
        raise ArtifactError(f"{path} cannot be loaded: {type(exc).__name__}: {exc}") from exc


def list_evaluations(run_dir: Path) -> list[str]:
    """The names of a run's evaluations with a readable manifest, sorted (hidden folders,
    such as one still being written, left out)."""
    root = Path(run_dir) / EVALUATIONS_DIR
    if not root.is_dir():
        return []
    names = []
    for path in root.iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        try:
            load_manifest(path)
        except ArtifactError:
            continue
        names.append(path.name)
    return sorted(names)
