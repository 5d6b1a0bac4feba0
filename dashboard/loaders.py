"""Cached reads of the artifacts folder, each keyed by the mtimes of the files it reads.

Training rewrites a run's manifest after each change of state, so a new or re-trained run
is read again while an unchanged one comes from the cache. What is computed from a run's
tables is keyed by every file they come from (:func:`run_files`), so a repaired or newly
damaged file is read again too; a model, a map file or a shortcut table is keyed by its own
file the same way. One decorator, :func:`cached_by_mtime`, does this for every loader.

The comparison loaders never load a model: every number comes from the run's tables
through :mod:`bt_core.metrics`, computed once per version of those files. Only the
Inspect page loads models (Keras lazily, ``st.cache_resource``), only for the models
chosen there.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from bt_core import artifacts
from bt_core.artifacts import Manifest, Run, RunSummary
from bt_core.metrics import run_comparison
from bt_core.metrics.run_comparison import ModelData
from bt_core.reference.published import PublishedResult, published_results_path
from bt_core.reference.published import load_published_results as load_published_figures
from bt_dashboard.views import calibration, confusion, curves, models, significance

if TYPE_CHECKING:  # importing the registry imports Keras: only the Inspect page's models do that
    from bt_core.models.registry import ModelSpec

MAX_LOADED_MODELS = 8

Result = TypeVar("Result")


def file_mtime(path: Path) -> int:
    """Modification time (ns) of a file; 0 when it is missing."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def cached_by_mtime(
    paths: Callable[..., Iterable[Path]], *, resource: bool = False, **cache_options: Any
) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    """Cache a loader in ``st.cache_data`` (``st.cache_resource`` with ``resource=True``),
    keyed by its arguments and by the mtime of every path ``paths(*args)`` names.

    A changed (or newly written, or deleted) file is read again; unchanged ones come from
    the cache. Loaders take positional arguments only; a path argument reaches the loader
    as text, so a ``Path`` and its ``str`` share one entry. ``cache_options``
    (``show_spinner``, ``max_entries``) go to Streamlit.
    """
    cache = st.cache_resource if resource else st.cache_data

    def decorate(load: Callable[..., Result]) -> Callable[..., Result]:
        def cached(mtimes: tuple[tuple[str, int], ...], *args: Any) -> Result:
            del mtimes  # part of the cache key only
            return load(*args)

        # Streamlit names a cache by the function's module and qualified name: one per loader.
        cached.__module__, cached.__qualname__, cached.__name__ = load.__module__, load.__qualname__, load.__name__
        cached_load = cache(**cache_options)(cached)

        @functools.wraps(load)
        def loader(*args: Any) -> Result:
            args = tuple(str(arg) if isinstance(arg, PurePath) else arg for arg in args)
            mtimes = tuple((str(path), file_mtime(Path(path))) for path in paths(*args))
            return cached_load(mtimes, *args)

        loader.clear = cached_load.clear  # type: ignore[attr-defined]
        return loader

    return decorate


# --------------------------------------------------------------------------- which files key a loader


def run_opening_files(run_dir: Path) -> list[Path]:
    """What opening a run reads before its models: manifest, split and test images."""
    return [artifacts.manifest_path(run_dir), run_dir / artifacts.SPLIT, run_dir / artifacts.TEST_IMAGES]


def run_files(run_dir: Path | str, *_args: Any) -> list[Path]:
    """The files a run's tables come from (manifest, split, test images, each model's four
    files): the key of everything computed from them, so a repaired (or newly broken) file
    is read again, not only a changed manifest."""
    run_dir = Path(run_dir)
    paths = run_opening_files(run_dir)
    models = run_dir / artifacts.MODELS_DIR
    if models.is_dir():
        for folder in sorted(models.iterdir()):
            paths.extend(folder / name for name in artifacts.MODEL_FILES)
    return paths


def sub_folder_runs(root: Path) -> list[Path]:
    """What opening each sub-folder reads first: a run (or evaluation) appearing, changing or
    breaking shows."""
    if not root.is_dir():
        return []
    return [path for folder in sorted(root.iterdir()) if folder.is_dir() for path in run_opening_files(folder)]


def model_file(run_dir: str, name: str, *_args: Any) -> list[Path]:
    """A model's model.keras: a re-trained model is loaded again."""
    return [artifacts.model_dir(Path(run_dir), name) / artifacts.MODEL_FILE]


def model_and_manifest(run_dir: str, name: str, *_args: Any) -> list[Path]:
    """A model's model.keras and its run's manifest (which holds the model's preprocessing)."""
    return [*model_file(run_dir, name), artifacts.manifest_path(Path(run_dir))]


def test_images_file(run_dir: Path | str) -> list[Path]:
    """The run's test_images.npz and manifest."""
    return [Path(run_dir) / artifacts.TEST_IMAGES, artifacts.manifest_path(Path(run_dir))]


def stored_file(path_of: Callable[..., Path]) -> Callable[..., list[Path]]:
    """The one file ``path_of(run_dir, *args)`` (a :mod:`bt_core.artifacts.layout` helper) names."""
    return lambda run_dir, *args: [path_of(Path(run_dir), *args)]


# --------------------------------------------------------------------------- runs


@cached_by_mtime(lambda artifacts_dir: sub_folder_runs(Path(artifacts_dir)), show_spinner=False)
def list_runs(artifacts_dir: Path | str) -> list[RunSummary]:
    """The runs of ``artifacts_dir``, newest first (see :func:`bt_core.artifacts.list_runs`)."""
    return artifacts.list_runs(Path(artifacts_dir))


def evaluation_folders(run_dir: Path | str) -> list[Path]:
    return sub_folder_runs(Path(run_dir) / artifacts.EVALUATIONS_DIR)


@cached_by_mtime(evaluation_folders, show_spinner=False)
def list_evaluations(run_dir: Path | str) -> list[str]:
    """The names of a run's external evaluations, sorted (see
    :func:`bt_core.artifacts.list_evaluations`)."""
    return artifacts.list_evaluations(Path(run_dir))


@cached_by_mtime(evaluation_folders, show_spinner=False)
def evaluation_problems(run_dir: Path | str) -> dict[str, str]:
    """Why each of a run's evaluations that cannot be opened cannot, by name."""
    return artifacts.evaluation_problems(Path(run_dir))


@cached_by_mtime(run_files, show_spinner="Reading run…")
def load_run_tables(run_dir: Path | str) -> Run:
    """Manifest, split and per-model tables of a run; raises ArtifactError if it cannot open."""
    return artifacts.load_run(Path(run_dir))


@cached_by_mtime(lambda run_dir: [artifacts.manifest_path(Path(run_dir))], show_spinner=False)
def load_manifest(run_dir: Path | str) -> Manifest:
    """A run's manifest alone, typed (opens even when the run's tables are broken)."""
    return artifacts.load_manifest(Path(run_dir))


# --------------------------------------------------------------------------- comparisons


@cached_by_mtime(run_files, show_spinner=False, max_entries=8)
def load_model_data(run_dir: Path | str) -> tuple[dict[str, ModelData], dict[str, str]]:
    """Labels and probabilities of every comparable model, and why the others are left out."""
    return run_comparison.run_model_data(load_run_tables(run_dir))


# Recomputed from predictions.csv, not read from metrics.json: the bootstrap intervals resample
# the per-image predictions, and the point estimates come from the same scores call so that
# each estimate sits inside its interval (metrics.json also lacks ECE, Brier, tumor scores).
@cached_by_mtime(run_files, show_spinner="Bootstrapping confidence intervals…", max_entries=8)
def load_leaderboard(run_dir: Path | str) -> pd.DataFrame:
    """bt_core.metrics's leaderboard of the run, with paired-bootstrap intervals."""
    return run_comparison.leaderboard(load_run_tables(run_dir))


@cached_by_mtime(run_files, show_spinner=False, max_entries=8)
def load_model_scores(run_dir: Path | str) -> pd.DataFrame:
    """Every model's scores without intervals (fast: no bootstrap)."""
    model_data, _excluded = load_model_data(run_dir)
    return models.model_scores_table(model_data, load_run_tables(run_dir).class_names)


@cached_by_mtime(run_files, show_spinner=False, max_entries=16)
def load_class_curves(run_dir: Path | str, kind: str) -> dict[str, pd.DataFrame]:
    """Per model, its one-vs-rest ROC (``kind="roc"``) or precision-recall curves."""
    model_data, _excluded = load_model_data(run_dir)
    return curves.class_curves_by_model(model_data, load_run_tables(run_dir).class_names, kind)


@cached_by_mtime(run_files, show_spinner=False, max_entries=8)
def load_tumor_roc(run_dir: Path | str) -> dict[str, pd.DataFrame]:
    """Per model, its tumor vs no-tumor ROC curve."""
    model_data, _excluded = load_model_data(run_dir)
    return curves.tumor_roc_by_model(model_data, load_run_tables(run_dir).class_names)


@cached_by_mtime(run_files, show_spinner=False, max_entries=8)
def load_confusion_matrices(run_dir: Path | str) -> dict[str, np.ndarray]:
    """Per comparable model, its stored confusion count matrix (rows true, columns predicted)."""
    model_data, _excluded = load_model_data(run_dir)
    return confusion.confusion_matrices(load_run_tables(run_dir), model_data)


@cached_by_mtime(run_files, show_spinner=False, max_entries=16)
def load_reliability(run_dir: Path | str, n_bins: int) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Per model, its reliability bins; and the per-model calibration table."""
    model_data, _excluded = load_model_data(run_dir)
    table = calibration.calibration_table(model_data, n_bins)
    return calibration.reliability_by_model(model_data, n_bins), table


@cached_by_mtime(run_files, show_spinner=False, max_entries=8)
def load_significance(run_dir: Path | str, alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Pairwise McNemar table, Holm p-value matrix and Cochran's Q of the run's models."""
    model_data, _excluded = load_model_data(run_dir)
    return significance.significance_tables(model_data, alpha)


@cached_by_mtime(run_files, show_spinner=False, max_entries=8)
def load_metric_differences(run_dir: Path | str) -> pd.DataFrame:
    """Pairwise macro AUC / macro F1 differences with paired bootstrap intervals and p."""
    model_data, _excluded = load_model_data(run_dir)
    return significance.metric_differences(model_data)


# A resource, not data: the archive can be hundreds of MB, so it is shared read-only
# instead of copied on every rerun.
@cached_by_mtime(test_images_file, resource=True, show_spinner="Reading test images…", max_entries=2)
def load_test_images(run_dir: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images (uint8, read-only) and ids; raises ArtifactError if unreadable."""
    images, ids = artifacts.load_test_images(Path(run_dir))
    images.setflags(write=False)
    return images, ids


# --------------------------------------------------------------------------- inspect page
# Keras is imported only here, only when the Inspect page needs a live map or an upload's
# prediction, and only for the models chosen there.


@cached_by_mtime(model_file, resource=True, show_spinner="Loading model…", max_entries=MAX_LOADED_MODELS)
def load_keras_model(run_dir: Path | str, name: str) -> Any:
    """One trained model, loaded once per process and shared, its Grad-CAM views traced;
    raises ArtifactError, with the model's ``live_problem`` (a missing or damaged
    model.keras, a model not trained) before Keras is imported."""
    stored = load_run_tables(run_dir).models.get(name)
    if stored is None:
        raise artifacts.ArtifactError(f"run {Path(run_dir).name} has no model {name!r}")
    if stored.live_problem:
        raise artifacts.ArtifactError(f"model {name} cannot be loaded: {stored.live_problem}")
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
        warm_up(model, model_spec(run_dir, name))
    except (artifacts.ArtifactError, ValueError, TypeError, RuntimeError):
        return


def model_spec(run_dir: Path | str, name: str) -> ModelSpec:
    """The spec the run stored for model ``name`` (its preprocessing, layer and input size);
    ArtifactError for a model that is not done or whose stored spec cannot be used."""
    spec = load_run_tables(run_dir).entry(name).spec
    if spec is None:
        raise artifacts.ArtifactError(f"model {name} of {run_dir} is not trained")
    return spec


# A resource: one array for every session and rerun, never copied.
@cached_by_mtime(lambda run_dir, name, method: [artifacts.maps_path(Path(run_dir), name, method)],
                 resource=True, show_spinner=False, max_entries=64)
def load_precomputed_maps(
    run_dir: Path | str, name: str, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A model's precomputed maps of ``method`` (maps, ids, class_index), or None when it has
    none; raises ArtifactError for a broken file."""
    if not artifacts.maps_path(Path(run_dir), name, method).is_file():
        return None
    # Memory-mapped: showing an image reads only its map, not the whole test set's.
    maps, ids, class_index = artifacts.load_maps(Path(run_dir), name, method, mmap=True)
    for array in (maps, ids, class_index):
        array.setflags(write=False)
    return maps, ids, class_index


@cached_by_mtime(lambda run_dir, name, method: [artifacts.maps_path(Path(run_dir), name, method)],
                 show_spinner=False, max_entries=64)
def load_map_shares(run_dir: Path | str, name: str, method: str) -> pd.DataFrame | None:
    """The shares the analysis pass stored beside a model's precomputed maps (indexed by
    test id), or None when it has no maps file or one without shares; ArtifactError for a
    broken file."""
    if not artifacts.maps_path(Path(run_dir), name, method).is_file():
        return None
    return artifacts.load_map_shares(Path(run_dir), name, method)


@cached_by_mtime(lambda run_dir: [Path(run_dir) / artifacts.TEST_BOXES, *run_files(run_dir)],
                 show_spinner=False, max_entries=8)
def load_test_boxes(run_dir: Path | str) -> np.ndarray | None:
    """The stored tumor boxes of the test images (``Run.test_boxes``: ``(N, 4)`` in test image
    order, NaN rows without one), or None when the run stored none; ArtifactError if unreadable."""
    return load_run_tables(run_dir).test_boxes()


@cached_by_mtime(lambda run_dir: [artifacts.heads_path(Path(run_dir)), *run_files(run_dir)],
                 resource=True, show_spinner=False, max_entries=2)
def load_test_heads(run_dir: Path | str) -> np.ndarray | None:
    """The head masks the analysis pass measured with (``Run.test_heads``: bool ``(N, S, S)``
    in test image order, read-only), or None when the run has none; ArtifactError if unusable."""
    heads = load_run_tables(run_dir).test_heads()
    if heads is not None:
        heads.setflags(write=False)
    return heads


def _explain_now(run_dir: str, name: str, method: str, images: np.ndarray, class_index: int) -> np.ndarray:
    from bt_core.explain import explain_spec

    model = load_keras_model(run_dir, name)
    return explain_spec(model, model_spec(run_dir, name), images, method, class_index=int(class_index))[0]


@cached_by_mtime(model_and_manifest, show_spinner=False, max_entries=512)
def live_test_map(run_dir: Path | str, name: str, method: str, image_id: str, class_index: int) -> np.ndarray:
    """The map of one test image computed now with the loaded model (cached per
    run, model, method, image and class); float32 ``(S, S)`` in ``[0, 1]``."""
    images, ids = load_test_images(run_dir)
    position = int(np.flatnonzero(np.asarray(ids) == str(image_id))[0])
    return _explain_now(run_dir, name, method, images[position : position + 1], class_index)


@cached_by_mtime(model_and_manifest, show_spinner=False, max_entries=64)
def live_upload_map(run_dir: Path | str, name: str, method: str, image: np.ndarray, class_index: int) -> np.ndarray:
    """The map of an uploaded image (uint8 ``(S, S, 3)``), computed now and cached."""
    return _explain_now(run_dir, name, method, image[np.newaxis], class_index)


@cached_by_mtime(model_and_manifest, show_spinner=False, max_entries=64)
def upload_probabilities(run_dir: Path | str, name: str, image: np.ndarray) -> np.ndarray:
    """A model's class probabilities for an uploaded image (uint8 ``(S, S, 3)``)."""
    from bt_core.data.preprocess import preprocess_batch

    model = load_keras_model(run_dir, name)
    probabilities = model(preprocess_batch(image[np.newaxis], model_spec(run_dir, name).preprocessing),
                          training=False)
    return np.asarray(probabilities, dtype=np.float64)[0]


# --------------------------------------------------------------------------- shortcuts page
# Only the files the analysis pass (bt_core.runs.analyze) wrote: no model, no map computed here.


@cached_by_mtime(stored_file(artifacts.shortcut_summary_path), show_spinner=False, max_entries=8)
def load_shortcuts(run_dir: Path | str) -> dict[str, Any] | None:
    """The run's shortcut summary, or None when it was never measured; raises ArtifactError
    for a broken one."""
    return artifacts.load_shortcuts(Path(run_dir))


@cached_by_mtime(stored_file(artifacts.shortcut_images_path), show_spinner=False, max_entries=32)
def load_shortcut_images(run_dir: Path | str, name: str) -> pd.DataFrame | None:
    """One model's per-image shortcut measures, or None; raises ArtifactError if unreadable."""
    return artifacts.load_shortcut_images(Path(run_dir), name)


@cached_by_mtime(stored_file(artifacts.duplicates_path), show_spinner=False, max_entries=8)
def load_duplicates(run_dir: Path | str) -> pd.DataFrame | None:
    """The audit's duplicate pairs, or None; raises ArtifactError if unreadable."""
    return artifacts.load_duplicates(Path(run_dir))


# --------------------------------------------------------------------------- models page: published results


@cached_by_mtime(lambda: [published_results_path()], show_spinner=False)
def load_published_results() -> tuple[PublishedResult, ...]:
    """The published figures shown beside a run's (bt_core/reference/published_results.toml)."""
    return load_published_figures()


@cached_by_mtime(stored_file(artifacts.class_mean_maps_path), show_spinner=False, max_entries=64)
def load_class_mean_maps(run_dir: Path | str, name: str, method: str) -> dict[str, Any] | None:
    """One model's mean map and mean head per class, or None (analyzed before they were
    stored); raises ArtifactError if unreadable."""
    return artifacts.load_class_mean_maps(Path(run_dir), name, method)


# --------------------------------------------------------------------------- data page


@cached_by_mtime(lambda run_dir: [artifacts.data_profile_path(Path(run_dir)),
                                  artifacts.data_thumbnails_path(Path(run_dir))], show_spinner=False)
def load_data_profile(run_dir: Path | str) -> artifacts.DataProfile | None:
    """The run's data profile (both files), or None; raises ArtifactError if unreadable."""
    return artifacts.load_data_profile(Path(run_dir))

