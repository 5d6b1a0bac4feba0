"""The run's tables: predictions, split, test images and test boxes, and the check that a
model's four files are present and readable."""

from __future__ import annotations

import zipfile
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


def validate_predictions(frame: pd.DataFrame, class_names: list[str]) -> None:
    expected = ["id", "label", "pred", *probability_columns(class_names)]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise ArtifactError(f"predictions lack columns {missing}")
    unknown = set(frame["label"]).union(frame["pred"]) - set(class_names)
    if unknown:
        raise ArtifactError(f"predictions name classes not in the manifest: {sorted(unknown)}")
    probs = frame[probability_columns(class_names)].to_numpy(dtype=float)
    if not np.all(np.isfinite(probs)):
        raise ArtifactError("predictions hold non-finite probabilities")


def model_files_problem(run_dir: Path, model_name: str, class_names: list[str]) -> str | None:
    """Why a model's four files are not all present and readable; None when they are.

    Reads the tables and checks that model.keras is an intact zip archive with a config,
    without loading the model (which would need Keras and, for big models, time).
    """
    directory = model_dir(run_dir, model_name)
    missing = [name for name in MODEL_FILES if not (directory / name).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        validate_predictions(pd.read_csv(directory / PREDICTIONS), class_names)
        read_json(directory / METRICS)
        pd.read_csv(directory / HISTORY)
        with zipfile.ZipFile(directory / MODEL_FILE) as archive:
            if "config.json" not in archive.namelist() or archive.testzip() is not None:
                return f"{MODEL_FILE} is damaged"
    except (OSError, ValueError, ArtifactError, pd.errors.ParserError, zipfile.BadZipFile) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def read_split(run_dir: Path) -> pd.DataFrame:
    """The run's split.csv (path, split, label)."""
    path = Path(run_dir) / SPLIT
    try:
        split = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc
    missing = set(SPLIT_COLUMNS) - set(split.columns)
    if missing:
        raise ArtifactError(f"{path} lacks columns {sorted(missing)}")
    return split[SPLIT_COLUMNS]


def load_test_images(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images (uint8, N x H x W x C) and their ids."""
    path = Path(run_dir) / TEST_IMAGES
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["images"], data["ids"]
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc


def load_test_ids(run_dir: Path) -> np.ndarray:
    """The test ids of ``test_images.npz`` without decompressing the images."""
    path = Path(run_dir) / TEST_IMAGES
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["ids"].astype(str)
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc


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
    coords = table.drop_duplicates("id").set_index("id")[TEST_BOX_COLUMNS[1:]].astype(float)
    return coords.reindex(np.asarray(ids, dtype=str)).to_numpy(dtype=np.float64)
