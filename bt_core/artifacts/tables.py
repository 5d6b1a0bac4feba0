"""The run's tables: predictions, split, test images and test boxes, the check that a
model's four files are present and readable, and the cheap check of a model.keras file."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.files import read_json
from bt_core.artifacts.layout import (
    HISTORY,
    METRICS,
    MODEL_FILE,
    MODEL_FILES,
    PREDICTIONS,
    SPLIT,
    SPLIT_COLUMNS,
    TEST_BOX_COLUMNS,
    TEST_BOXES,
    TEST_IMAGES,
    model_dir,
)

# What reading a damaged .npz / .zip archive raises (a truncated file, a bad member).
ARCHIVE_ERRORS = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
# A predictions row's probabilities sum to 1 within this (the scoring path normalises rows).
SUM_TOLERANCE = 1e-3
KERAS_CONFIG = "config.json"
KERAS_WEIGHTS_PREFIX = "model.weights"


def predictions_frame(
    ids: list[str], labels: list[str], probabilities: np.ndarray, class_names: list[str]
) -> pd.DataFrame:
    """Build the predictions table: id, label, pred, then one p_<class> column per class."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    frame = pd.DataFrame({"id": list(ids), "label": list(labels)})
    frame["pred"] = [class_names[i] for i in probabilities.argmax(axis=1)]
    for index, name in enumerate(class_names):
        frame[f"p_{name}"] = probabilities[:, index]
    return frame


def probability_columns(class_names: list[str]) -> list[str]:
    return [f"p_{name}" for name in class_names]


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _check_probabilities(frame: pd.DataFrame, class_names: list[str]) -> None:
    columns = probability_columns(class_names)
    probs = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    ids = frame["id"].astype(str).to_numpy()
    bad = ~np.isfinite(probs)
    if bad.any():
        raise ArtifactError(
            f"{PREDICTIONS} has {_count(int(bad.any(axis=1).sum()), 'row', 'rows')} with a probability that is "
            f"not a finite number, e.g. {ids[bad.any(axis=1)][0]!r}"
        )
    outside = (probs < 0) | (probs > 1)
    if outside.any():
        row = int(np.flatnonzero(outside.any(axis=1))[0])
        raise ArtifactError(
            f"{PREDICTIONS} has {_count(int(outside.any(axis=1).sum()), 'row', 'rows')} with a probability "
            f"outside [0, 1], e.g. {probs[row][outside[row]][0]:g} for {ids[row]!r}"
        )
    sums = probs.sum(axis=1)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ArtifactError(
            f"{PREDICTIONS} has {_count(int(off.sum()), 'row', 'rows')} whose probabilities do not sum to 1, "
            f"e.g. {sums[row]:.4g} for {ids[row]!r}"
        )


def validate_predictions(frame: pd.DataFrame, class_names: list[str]) -> None:
    """ArtifactError naming what is wrong with a predictions table: a missing column, no rows,
    a class the manifest lacks, a probability that is no finite number, outside [0, 1], or a
    row not summing to 1."""
    expected = ["id", "label", "pred", *probability_columns(class_names)]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise ArtifactError(f"the predictions in {PREDICTIONS} lack columns {missing}")
    if frame.empty:
        raise ArtifactError(f"{PREDICTIONS} has no rows")
    unknown = set(frame["label"].astype(str)).union(frame["pred"].astype(str)) - set(class_names)
    if unknown:
        raise ArtifactError(f"{PREDICTIONS} names classes not in the manifest: {sorted(unknown)}")
    _check_probabilities(frame, class_names)


def align_predictions(
    frame: pd.DataFrame, test_ids: np.ndarray, test_labels: dict[str, str] | None = None
) -> pd.DataFrame:
    """The predictions in the run's test image order (``test_ids``, from test_images.npz);
    ArtifactError when they repeat an id, hold an id that is no test image, miss one, or (with
    ``test_labels``, split.csv's labels by id) give an image another label."""
    ids = frame["id"].astype(str)
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        raise ArtifactError(
            f"{PREDICTIONS} repeats {_count(len(repeated), 'test id', 'test ids')}, e.g. {repeated[0]!r}"
        )
    expected = pd.Index(np.asarray(test_ids, dtype=str))
    foreign = ids[~ids.isin(expected)].to_numpy()
    if len(foreign):
        raise ArtifactError(
            f"{PREDICTIONS} has {_count(len(foreign), 'row', 'rows')} whose id is not a test image of the run, "
            f"e.g. {foreign[0]!r}"
        )
    absent = expected[~expected.isin(ids)]
    if len(absent):
        raise ArtifactError(
            f"{PREDICTIONS} covers {len(ids)} of {len(expected)} test images; missing e.g. {absent[0]!r}"
        )
    aligned = frame.assign(id=ids).set_index("id").loc[expected].reset_index()
    if test_labels is not None:
        stored = aligned["id"].map(test_labels)
        differ = aligned[stored.notna() & (stored != aligned["label"].astype(str))]
        if len(differ):
            first = differ.iloc[0]
            raise ArtifactError(
                f"{PREDICTIONS} labels {_count(len(differ), 'test image', 'test images')} unlike {SPLIT}, "
                f"e.g. {first['id']!r}: {first['label']!r}, {SPLIT} {test_labels[first['id']]!r}"
            )
    return aligned


def read_predictions(
    directory: Path, class_names: list[str], test_ids: np.ndarray, test_labels: dict[str, str] | None = None
) -> pd.DataFrame:
    """A model's predictions.csv, checked (:func:`validate_predictions`) and in test image
    order (:func:`align_predictions`): ids and labels as text, probabilities as float64."""
    path = Path(directory) / PREDICTIONS
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ArtifactError(f"{PREDICTIONS} is empty") from None
    except (OSError, ValueError) as exc:  # ValueError: ParserError, UnicodeDecodeError
        raise ArtifactError(f"{type(exc).__name__}: {PREDICTIONS} cannot be read: {exc}") from exc
    validate_predictions(frame, class_names)
    columns = probability_columns(class_names)
    frame[columns] = frame[columns].astype(np.float64)
    return align_predictions(frame, test_ids, test_labels)


def keras_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable ``.keras`` archive, without loading it: missing, not a
    zip archive, a member cut off, no config.json that parses as an object, no weights.
    None when it looks intact. Reads the zip directory and config.json only (no weights)."""
    path = Path(path)
    if not path.is_file():
        return f"{MODEL_FILE} is missing"
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = {member.filename for member in members}
            if KERAS_CONFIG not in names:
                return f"{MODEL_FILE} is not a readable Keras file: it holds no {KERAS_CONFIG}"
            if not any(name.startswith(KERAS_WEIGHTS_PREFIX) for name in names):
                return f"{MODEL_FILE} is not a readable Keras file: it holds no weights ({KERAS_WEIGHTS_PREFIX}.*)"
            cut = [m.filename for m in members if m.header_offset + m.compress_size > size]
            if cut:
                return f"{MODEL_FILE} is not a readable Keras file: {cut[0]} is cut off"
            config = json.loads(archive.read(KERAS_CONFIG).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"{MODEL_FILE} is not a readable Keras file: its {KERAS_CONFIG} is not JSON ({exc})"
    except ARCHIVE_ERRORS as exc:
        return f"{MODEL_FILE} is not a readable Keras file: {type(exc).__name__}: {exc}"
    if not isinstance(config, dict) or "class_name" not in config:
        return f"{MODEL_FILE} is not a readable Keras file: its {KERAS_CONFIG} describes no model"
    return None


def model_files_problem(run_dir: Path, model_name: str, class_names: list[str]) -> str | None:
    """Why a model's four files are not all present and readable; None when they are.

    Reads the tables and checks that model.keras is an intact zip archive with a config,
    without loading the model (which would need Keras and, for big models, time).
    """
    directory = model_dir(run_dir, model_name)
    missing = [name for name in MODEL_FILES if not (directory / name).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    problem = keras_file_problem(directory / MODEL_FILE)
    if problem:
        return problem
    try:
        if (Path(run_dir) / TEST_IMAGES).is_file():  # by id, as every reader aligns them
            read_predictions(directory, class_names, load_test_ids(run_dir))
        else:
            validate_predictions(pd.read_csv(directory / PREDICTIONS), class_names)
        read_json(directory / METRICS)
        pd.read_csv(directory / HISTORY)
        with zipfile.ZipFile(directory / MODEL_FILE) as archive:
            if archive.testzip() is not None:
                return f"{MODEL_FILE} is damaged"
    except (ArtifactError, pd.errors.ParserError, *ARCHIVE_ERRORS) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def read_split(run_dir: Path) -> pd.DataFrame:
    """The run's split.csv (path, split, label), every value as text."""
    path = Path(run_dir) / SPLIT
    try:
        split = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ArtifactError(f"{path} is empty") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {type(exc).__name__}: {exc}") from exc
    missing = [column for column in SPLIT_COLUMNS if column not in split.columns]
    if missing:
        raise ArtifactError(f"{path} lacks columns {missing} (has {list(split.columns)[:5]})")
    return split[SPLIT_COLUMNS]


def _read_npy_header(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an .npy member, from its header (a few bytes decompressed)."""
    with archive.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    return tuple(shape), dtype


def test_images_header(run_dir: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """The test ids and the images' shape of ``test_images.npz``, read without decompressing
    the images; ArtifactError naming the file when it is missing, damaged (a truncated copy)
    or inconsistent (not uint8 ``(N, S, S, C)``, ids not one per image, repeated ids)."""
    path = Path(run_dir) / TEST_IMAGES
    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    try:
        with zipfile.ZipFile(path) as archive:
            shape, dtype = _read_npy_header(archive, "images.npy")
        with np.load(path, allow_pickle=False) as data:
            ids = data["ids"]
    except ARCHIVE_ERRORS as exc:
        raise ArtifactError(f"{path} cannot be read: {type(exc).__name__}: {exc}") from exc
    if dtype != np.uint8 or len(shape) != 4:
        raise ArtifactError(f"{path}: images must be uint8 (N, H, W, C), got {dtype} {shape}")
    ids = ids.astype(str)
    if ids.ndim != 1 or len(ids) != shape[0]:
        raise ArtifactError(f"{path} holds {shape[0]} images and {len(ids)} ids")
    repeated = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(repeated):
        raise ArtifactError(f"{path} repeats test ids, e.g. {repeated[0]!r}")
    return ids, shape


def load_test_images(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images (uint8, N x H x W x C) and their ids; ArtifactError naming the
    file when it is missing, damaged or inconsistent."""
    ids, _shape = test_images_header(run_dir)
    path = Path(run_dir) / TEST_IMAGES
    try:
        with np.load(path, allow_pickle=False) as data:
            images = data["images"]
    except ARCHIVE_ERRORS as exc:
        raise ArtifactError(f"{path} cannot be read: {type(exc).__name__}: {exc}") from exc
    return images, ids


def load_test_ids(run_dir: Path) -> np.ndarray:
    """The test ids of ``test_images.npz`` without decompressing the images."""
    return test_images_header(run_dir)[0]


def load_test_boxes(run_dir: Path, ids: list[str] | np.ndarray) -> np.ndarray | None:
    """Tumor boxes ``(N, 4)`` (x_min, y_min, x_max, y_max in [0, 1]) in ``ids`` order, NaN
    rows for images without one; None when the run stored no boxes (1.2, optional)."""
    path = Path(run_dir) / TEST_BOXES
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, dtype={"id": str})
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc
    if list(table.columns) != TEST_BOX_COLUMNS:
        raise ArtifactError(f"{path} must have columns {TEST_BOX_COLUMNS}, has {list(table.columns)}")
    try:
        coords = table.drop_duplicates("id").set_index("id")[TEST_BOX_COLUMNS[1:]].astype(float)
    except ValueError as exc:
        raise ArtifactError(f"{path} holds a coordinate that is no number: {exc}") from exc
    return coords.reindex(np.asarray(ids, dtype=str)).to_numpy(dtype=np.float64)
