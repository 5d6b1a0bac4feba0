"""Cached reads of the artifacts folder.

Every cache key holds the mtime of the manifests involved: training rewrites a run's
manifest after each change of state, so a new or re-trained run is read again while an
unchanged one comes from the cache. (Trained models will be loaded lazily, with
``st.cache_resource``, only on the pages that explain them.)

The comparison loaders below never load a model: every number comes from the run's
tables through :mod:`bt_core.metrics`, computed once per run and manifest version.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

import numpy as np
import pandas as pd

from bt_core import artifacts
from bt_core.artifacts import Run, RunSummary
from bt_core.metrics import run_comparison
from bt_core.metrics.run_comparison import ModelData
from dashboard import compare_tables

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def _manifest_mtime(run_dir: Path) -> int:
    """Modification time (ns) of a run's manifest; 0 when it is missing."""
    try:
        return (Path(run_dir) / artifacts.MANIFEST).stat().st_mtime_ns
    except OSError:
        return 0


def _runs_fingerprint(artifacts_dir: Path) -> tuple[tuple[str, int], ...]:
    """(folder, manifest mtime) for each sub-folder: changes whenever a run appears or changes."""
    root = Path(artifacts_dir)
    if not root.is_dir():
        return ()
    return tuple(
        sorted((path.name, _manifest_mtime(path)) for path in root.iterdir() if path.is_dir())
    )


@st.cache_data(show_spinner=False)
def _list_runs_cached(artifacts_dir: str, fingerprint: tuple[tuple[str, int], ...]) -> list[RunSummary]:
    del fingerprint  # part of the cache key only
    return artifacts.list_runs(Path(artifacts_dir))


def list_runs(artifacts_dir: Path | str) -> list[RunSummary]:
    """The runs of ``artifacts_dir``, newest first (see :func:`bt_core.artifacts.list_runs`)."""
    directory = Path(artifacts_dir)
    return _list_runs_cached(str(directory), _runs_fingerprint(directory))


def _evaluations_fingerprint(run_dir: Path) -> tuple[tuple[str, int], ...]:
    """(folder, manifest mtime) of each evaluation folder of a run."""
    root = Path(run_dir) / artifacts.EVALUATIONS_DIR
    if not root.is_dir():
        return ()
    return tuple(sorted((path.name, _manifest_mtime(path)) for path in root.iterdir() if path.is_dir()))


@st.cache_data(show_spinner=False)
def _list_evaluations_cached(run_dir: str, fingerprint: tuple[tuple[str, int], ...]) -> list[str]:
    del fingerprint  # part of the cache key only
    return artifacts.list_evaluations(Path(run_dir))


def list_evaluations(run_dir: Path | str) -> list[str]:
    """The names of a run's external evaluations, sorted (see
    :func:`bt_core.artifacts.list_evaluations`)."""
    directory = Path(run_dir)
    return _list_evaluations_cached(str(directory), _evaluations_fingerprint(directory))


@st.cache_data(show_spinner="Reading run…")
def _load_run_cached(run_dir: str, manifest_mtime: int) -> Run:
    del manifest_mtime  # part of the cache key only
    return artifacts.load_run(Path(run_dir))


def load_run_tables(run_dir: Path | str) -> Run:
    """Manifest, split and per-model tables of a run; raises ArtifactError if it cannot open."""
    directory = Path(run_dir)
    return _load_run_cached(str(directory), _manifest_mtime(directory))


@st.cache_data(show_spinner=False)
def _load_manifest_cached(run_dir: str, manifest_mtime: int) -> dict[str, Any]:
    del manifest_mtime  # part of the cache key only
    return artifacts.read_manifest(Path(run_dir))


def load_manifest(run_dir: Path | str) -> dict[str, Any]:
    """A run's manifest alone (opens even when the run's tables are broken)."""
    directory = Path(run_dir)
    return _load_manifest_cached(str(directory), _manifest_mtime(directory))


# --------------------------------------------------------------------------- comparisons


def _key(run_dir: Path | str) -> tuple[str, int]:
    directory = Path(run_dir)
    return str(directory), _manifest_mtime(directory)


@st.cache_data(show_spinner=False, max_entries=8)
def _model_data_cached(run_dir: str, manifest_mtime: int) -> tuple[dict[str, ModelData], dict[str, str]]:
    return run_comparison.run_model_data(_load_run_cached(run_dir, manifest_mtime))


def load_model_data(run_dir: Path | str) -> tuple[dict[str, ModelData], dict[str, str]]:
    """Labels and probabilities of every comparable model, and why the others are left out."""
    return _model_data_cached(*_key(run_dir))


@st.cache_data(show_spinner="Bootstrapping confidence intervals…", max_entries=8)
def _leaderboard_cached(run_dir: str, manifest_mtime: int, n_resamples: int, seed: int) -> pd.DataFrame:
    return run_comparison.leaderboard(_load_run_cached(run_dir, manifest_mtime), n_resamples=n_resamples, seed=seed)


def load_leaderboard(run_dir: Path | str) -> pd.DataFrame:
    """bt_core.metrics's leaderboard of the run, with paired-bootstrap intervals."""
    return _leaderboard_cached(*_key(run_dir), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)


@st.cache_data(show_spinner=False, max_entries=8)
def _model_scores_cached(run_dir: str, manifest_mtime: int) -> pd.DataFrame:
    run = _load_run_cached(run_dir, manifest_mtime)
    model_data, _excluded = _model_data_cached(run_dir, manifest_mtime)
    return compare_tables.model_scores_table(model_data, run.class_names)


def load_model_scores(run_dir: Path | str) -> pd.DataFrame:
    """Every model's scores without intervals (fast: no bootstrap)."""
    return _model_scores_cached(*_key(run_dir))


@st.cache_data(show_spinner=False, max_entries=16)
def _class_curves_cached(run_dir: str, manifest_mtime: int, kind: str) -> dict[str, pd.DataFrame]:
    run = _load_run_cached(run_dir, manifest_mtime)
    model_data, _excluded = _model_data_cached(run_dir, manifest_mtime)
    return compare_tables.class_curves_by_model(model_data, run.class_names, kind)


def load_class_curves(run_dir: Path | str, kind: str) -> dict[str, pd.DataFrame]:
    """Per model, its one-vs-rest ROC (``kind="roc"``) or precision-recall curves."""
    return _class_curves_cached(*_key(run_dir), kind)


@st.cache_data(show_spinner=False, max_entries=8)
def _tumor_roc_cached(run_dir: str, manifest_mtime: int) -> dict[str, pd.DataFrame]:
    run = _load_run_cached(run_dir, manifest_mtime)
    model_data, _excluded = _model_data_cached(run_dir, manifest_mtime)
    return compare_tables.tumor_roc_by_model(model_data, run.class_names)


def load_tumor_roc(run_dir: Path | str) -> dict[str, pd.DataFrame]:
    """Per model, its tumor vs no-tumor ROC curve."""
    return _tumor_roc_cached(*_key(run_dir))


@st.cache_data(show_spinner=False, max_entries=8)
def _confusion_cached(run_dir: str, manifest_mtime: int) -> dict[str, np.ndarray]:
    run = _load_run_cached(run_dir, manifest_mtime)
    model_data, _excluded = _model_data_cached(run_dir, manifest_mtime)
    return compare_tables.confusion_matrices(model_data, len(run.class_names))


def load_confusion_matrices(run_dir: Path | str) -> dict[str, np.ndarray]:
    """Per model, its confusion count matrix (rows true, columns predicted)."""
    return _confusion_cached(*_key(run_dir))


@st.cache_data(show_spinner=False, max_entries=16)
def _reliability_cached(
    run_dir: str, manifest_mtime: int, n_bins: int
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    model_data, _excluded = _model_data_cached(run_dir, manifest_mtime)
    return (
        compare_tables.reliability_by_model(model_data, n_bins),
        compare_tables.calibration_table(model_data, n_bins),
    )


def load_reliability(run_dir: Path | str, n_bins: int) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Per model, its reliability bins; and the per-model calibration table."""
    return _reliability_cached(*_key(run_dir), n_bins)


@st.cache_data(show_spinner=False, max_entries=8)
def _significance_cached(
    run_dir: str, manifest_mtime: int, alpha: float
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    model_data, _excluded = _model_data_cached(run_dir, manifest_mtime)
    return compare_tables.significance_tables(model_data, alpha)


@st.cache_data(show_spinner=False, max_entries=8)
def _differences_cached(run_dir: str, manifest_mtime: int) -> pd.DataFrame:
    model_data, _excluded = _model_data_cached(run_dir, manifest_mtime)
    return compare_tables.metric_differences(model_data)


def load_metric_differences(run_dir: Path | str) -> pd.DataFrame:
    """Pairwise macro AUC / macro F1 differences with paired bootstrap intervals and p."""
    return _differences_cached(*_key(run_dir))


def load_significance(
    run_dir: Path | str, alpha: float = 0.05
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Pairwise McNemar table, Holm p-value matrix and Cochran's Q of the run's models."""
    return _significance_cached(*_key(run_dir), alpha)


# cache_resource, not cache_data: the archive can be hundreds of MB, so it is shared
# read-only instead of copied on every rerun.
@st.cache_resource(show_spinner="Reading test images…", max_entries=2)
def _test_images_cached(run_dir: str, manifest_mtime: int) -> tuple[np.ndarray, np.ndarray]:
    del manifest_mtime  # part of the cache key only
    images, ids = artifacts.load_test_images(Path(run_dir))
    images.setflags(write=False)
    return images, ids


def load_test_images(run_dir: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images (uint8, read-only) and ids; raises ArtifactError if unreadable."""
    return _test_images_cached(*_key(run_dir))


# --------------------------------------------------------------------------- inspect page
# Everything below loads Keras lazily: only the Inspect page calls it, and only for the
# models chosen there.

MAX_LOADED_MODELS = 8


def _file_mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def model_file_mtime(run_dir: Path | str, name: str) -> int:
    """Modification time (ns) of a model's model.keras; 0 when it is missing."""
    return _file_mtime(artifacts.model_dir(Path(run_dir), name) / artifacts.MODEL_FILE)


@st.cache_resource(show_spinner="Loading model…", max_entries=MAX_LOADED_MODELS)
def _keras_model_cached(run_dir: str, name: str, model_mtime: int) -> Any:
    del model_mtime  # part of the cache key only: a re-trained model is loaded again
    # The explanations need TensorFlow; this only decides when Keras is not imported yet.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    model = artifacts.load_model(Path(run_dir), name)
    _prepare_explanations(model, run_dir, name)
    return model


def _prepare_explanations(model: Any, run_dir: str, name: str) -> None:
    """Trace the model's Grad-CAM views as part of loading it, so every live map after the
    load takes the warm time (about 0.1 s per model at 224 px) instead of the first one
    paying seconds of tracing. A failure here only leaves the first map slower."""
    from bt_core.explain import warm_up

    try:
        entry = artifacts.read_manifest(Path(run_dir))["models"][name]
        warm_up(model, entry)
    except (artifacts.ArtifactError, KeyError, ValueError, TypeError, RuntimeError):
        return


def load_keras_model(run_dir: Path | str, name: str) -> Any:
    """One trained model, loaded once per process and shared; raises ArtifactError."""
    return _keras_model_cached(str(run_dir), name, model_file_mtime(run_dir, name))


# cache_resource: one array for every session and rerun, never copied.
@st.cache_resource(show_spinner=False, max_entries=64)
def _maps_cached(run_dir: str, name: str, method: str, maps_mtime: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    del maps_mtime  # part of the cache key only
    # Memory-mapped: showing an image reads only its map, not the whole test set's.
    maps, ids, class_index = artifacts.load_maps(Path(run_dir), name, method, mmap=True)
    for array in (maps, ids, class_index):
        array.setflags(write=False)
    return maps, ids, class_index


def load_precomputed_maps(
    run_dir: Path | str, name: str, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A model's precomputed maps of ``method`` (maps, ids, class_index), or None when it has
    none; raises ArtifactError for a broken file."""
    path = artifacts.maps_path(Path(run_dir), name, method)
    mtime = _file_mtime(path)
    if not mtime:
        return None
    return _maps_cached(str(run_dir), name, method, mtime)


@st.cache_data(show_spinner=False, max_entries=512)
def _live_test_map(
    run_dir: str, name: str, method: str, image_id: str, class_index: int, model_mtime: int, manifest_mtime: int
) -> np.ndarray:
    from bt_core.explain.precompute import explain_entry

    model = _keras_model_cached(run_dir, name, model_mtime)
    images, ids = _test_images_cached(run_dir, manifest_mtime)
    position = int(np.flatnonzero(np.asarray(ids) == image_id)[0])
    entry = _load_manifest_cached(run_dir, manifest_mtime)["models"][name]
    return explain_entry(model, entry, images[position : position + 1], method, class_index)[0]


def live_test_map(run_dir: Path | str, name: str, method: str, image_id: str, class_index: int) -> np.ndarray:
    """The map of one test image computed now with the loaded model (cached per
    run, model, method, image and class); float32 ``(S, S)`` in ``[0, 1]``."""
    return _live_test_map(
        str(run_dir), name, method, str(image_id), int(class_index),
        model_file_mtime(run_dir, name), _manifest_mtime(Path(run_dir)),
    )


@st.cache_data(show_spinner=False, max_entries=64)
def _live_upload_map(
    run_dir: str, name: str, method: str, image: np.ndarray, class_index: int, model_mtime: int, manifest_mtime: int
) -> np.ndarray:
    from bt_core.explain.precompute import explain_entry

    model = _keras_model_cached(run_dir, name, model_mtime)
    entry = _load_manifest_cached(run_dir, manifest_mtime)["models"][name]
    return explain_entry(model, entry, image[np.newaxis], method, class_index)[0]


def live_upload_map(run_dir: Path | str, name: str, method: str, image: np.ndarray, class_index: int) -> np.ndarray:
    """The map of an uploaded image (uint8 ``(S, S, 3)``), computed now and cached."""
    return _live_upload_map(
        str(run_dir), name, method, image, int(class_index),
        model_file_mtime(run_dir, name), _manifest_mtime(Path(run_dir)),
    )


@st.cache_data(show_spinner=False, max_entries=64)
def _upload_probabilities(
    run_dir: str, name: str, image: np.ndarray, model_mtime: int, manifest_mtime: int
) -> np.ndarray:
    from bt_core.data.preprocess import preprocess_batch

    model = _keras_model_cached(run_dir, name, model_mtime)
    entry = _load_manifest_cached(run_dir, manifest_mtime)["models"][name]
    probabilities = model(preprocess_batch(image[np.newaxis], entry["preprocessing"]), training=False)
    return np.asarray(probabilities, dtype=np.float64)[0]


def upload_probabilities(run_dir: Path | str, name: str, image: np.ndarray) -> np.ndarray:
    """A model's class probabilities for an uploaded image (uint8 ``(S, S, 3)``)."""
    return _upload_probabilities(
        str(run_dir), name, image, model_file_mtime(run_dir, name), _manifest_mtime(Path(run_dir))
    )


@st.cache_data(show_spinner=False, max_entries=8)
def _boxes_cached(root: str, boxes_mtime: int) -> pd.DataFrame | None:
    del boxes_mtime  # part of the cache key only
    from bt_core.data.boxes import read_boxes

    try:
        boxes, _rejected = read_boxes(root)
    except (OSError, ValueError, pd.errors.ParserError):
        return None  # a broken boxes.csv only costs the box outline
    return boxes


def load_boxes(dataset_root: str | None) -> pd.DataFrame | None:
    """The tumor boxes of a run's dataset (indexed by image path), or None when the dataset
    folder or its boxes.csv is not on this machine."""
    if not dataset_root:
        return None
    from bt_core.data.boxes import BOXES_FILE

    mtime = _file_mtime(Path(dataset_root) / BOXES_FILE)
    return _boxes_cached(str(dataset_root), mtime) if mtime else None


# --------------------------------------------------------------------------- shortcuts page
# Only the files bt_core.shortcuts.measure_run wrote: no model, no map computed here. Each
# cache key holds the file's mtime, so a re-measured run is read again.


def shortcut_summary_mtime(run_dir: Path | str) -> int:
    """Modification time (ns) of a run's shortcuts/summary.json; 0 when it is missing."""
    return _file_mtime(artifacts.shortcuts_dir(Path(run_dir)) / artifacts.SHORTCUTS_SUMMARY)


@st.cache_data(show_spinner=False, max_entries=8)
def _shortcuts_cached(run_dir: str, summary_mtime: int) -> dict[str, Any] | None:
    del summary_mtime  # part of the cache key only
    return artifacts.load_shortcuts(Path(run_dir))


def load_shortcuts(run_dir: Path | str) -> dict[str, Any] | None:
    """The run's shortcut summary, or None when it was never measured; raises ArtifactError
    for a broken one."""
    return _shortcuts_cached(str(run_dir), shortcut_summary_mtime(run_dir))


@st.cache_data(show_spinner=False, max_entries=32)
def _shortcut_images_cached(run_dir: str, name: str, table_mtime: int) -> pd.DataFrame | None:
    del table_mtime  # part of the cache key only
    return artifacts.load_shortcut_images(Path(run_dir), name)


def load_shortcut_images(run_dir: Path | str, name: str) -> pd.DataFrame | None:
    """One model's per-image shortcut measures, or None; raises ArtifactError if unreadable."""
    path = artifacts.shortcuts_dir(Path(run_dir)) / artifacts.MODELS_DIR / f"{name}.csv"
    return _shortcut_images_cached(str(run_dir), name, _file_mtime(path))


@st.cache_data(show_spinner=False, max_entries=8)
def _duplicates_cached(run_dir: str, table_mtime: int) -> pd.DataFrame | None:
    del table_mtime  # part of the cache key only
    return artifacts.load_duplicates(Path(run_dir))


def load_duplicates(run_dir: Path | str) -> pd.DataFrame | None:
    """The audit's duplicate pairs, or None; raises ArtifactError if unreadable."""
    path = artifacts.shortcuts_dir(Path(run_dir)) / artifacts.SHORTCUTS_DUPLICATES
    return _duplicates_cached(str(run_dir), _file_mtime(path))
