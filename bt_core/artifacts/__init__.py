"""The artifact layout: the only module that knows run paths and file formats.

Training writes a run through :class:`RunWriter`; the dashboard reads it through
:func:`list_runs` and :func:`load_run`. Every file is written to a temporary name and
renamed, so a crash never leaves a half-written file that looks complete. The layout is
documented in docs/artifacts.md and versioned by ``format_version`` in manifest.json.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

FORMAT_VERSION = "1.2"

MANIFEST = "manifest.json"
SPLIT = "split.csv"
TEST_IMAGES = "test_images.npz"
TEST_BOXES = "test_boxes.csv"
TEST_BOX_COLUMNS = ["id", "x_min", "y_min", "x_max", "y_max"]
MODELS_DIR = "models"
MODEL_FILE = "model.keras"
HISTORY = "history.csv"
PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"

SPLIT_COLUMNS = ["path", "split", "label"]
HISTORY_COLUMNS = ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]

# Per-model status values in the manifest.
STATUS_PENDING = "pending"
STATUS_RUNNING = "running"
STATUS_DONE = "done"
STATUS_FAILED = "failed"

# The four files a finished model leaves behind.
MODEL_FILES = (MODEL_FILE, HISTORY, PREDICTIONS, METRICS)


class ArtifactError(Exception):
    """An artifact is missing, malformed or of an unsupported format version."""


# --------------------------------------------------------------------------- writing


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(tmp_path)`` then rename onto ``path`` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (no copy, and a later rename-replace of either never
    reaches the other); copy where links are not possible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean_json(value: Any) -> Any:
    """Replace NaN / inf (not valid JSON) by None, recursively."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(_clean_json(data), indent=2, default=_json_default, allow_nan=False)
    _atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    _atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=False))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def model_dir(run_dir: Path, model_name: str) -> Path:
    return Path(run_dir) / MODELS_DIR / model_name


def is_temporary_file(path: Path) -> bool:
    """A file left by a write that never finished: ``.<name>.<random>.tmp``, ``.<name>.tmp.keras``."""
    name = Path(path).name
    return name.startswith(".") and (name.endswith(".tmp") or name.endswith(".tmp.keras"))


def remove_temporary_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files a killed writer left anywhere in the run folder; returns them."""
    removed = []
    for path in sorted(Path(run_dir).rglob(".*")):
        if path.is_file() and is_temporary_file(path):
            path.unlink()
            removed.append(path)
    return removed


def model_files_problem(run_dir: Path, model_name: str, class_names: list[str]) -> str | None:
    """Why a model's four files are not all present and readable; None when they are.

    Reads the tables and checks that model.keras is an intact zip archive with a config,
    without loading the model (which would need Keras and, for big models, time).
    """
    import zipfile

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


class RunWriter:
    """Writes one run folder. The manifest is rewritten after every change of state."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any]):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = {"format_version": FORMAT_VERSION, **manifest}
        self.manifest.setdefault("models", {})
        self.save_manifest()

    def save_manifest(self) -> None:
        write_json(self.run_dir / MANIFEST, self.manifest)

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.save_manifest()

    def set_model_status(self, name: str, status: str, **fields: Any) -> None:
        entry = self.manifest["models"].setdefault(name, {})
        entry["status"] = status
        entry.update(fields)
        self.save_manifest()

    def reset_model(self, name: str) -> None:
        """Forget an unfinished model: its folder is deleted and its entry set back to pending."""
        import shutil

        directory = model_dir(self.run_dir, name)
        if directory.exists():
            shutil.rmtree(directory)
        self.manifest["models"][name] = {"status": STATUS_PENDING}
        self.save_manifest()

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

        _atomic_write(self.run_dir / TEST_IMAGES, save)

    def write_test_boxes(self, boxes: pd.DataFrame, ids: list[str] | np.ndarray) -> int:
        """The tumor boxes of the test images (``boxes`` indexed by image path, columns
        ``x_min..y_max`` normalised); returns how many test images have one."""
        test = boxes[boxes.index.isin(np.asarray(ids, dtype=str))]
        frame = test.reset_index().rename(columns={test.index.name or "index": "id"})
        write_csv(self.run_dir / TEST_BOXES, frame.reindex(columns=TEST_BOX_COLUMNS))
        return len(frame)

    def model_dir(self, name: str) -> Path:
        path = model_dir(self.run_dir, name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_model(self, name: str, model: Any) -> None:
        # Keras picks the format from the suffix, so the temporary name must end in .keras.
        target = self.model_dir(name) / MODEL_FILE
        tmp = target.with_name(f".{MODEL_FILE}.tmp.keras")
        try:
            model.save(tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()

    def write_history(self, name: str, history: pd.DataFrame) -> None:
        write_csv(self.model_dir(name) / HISTORY, history)

    def write_predictions(self, name: str, predictions: pd.DataFrame) -> None:
        validate_predictions(predictions, self.manifest["class_names"])
        write_csv(self.model_dir(name) / PREDICTIONS, predictions)

    def write_metrics(self, name: str, metrics: dict[str, Any]) -> None:
        write_json(self.model_dir(name) / METRICS, metrics)


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


# --------------------------------------------------------------------------- reading


@dataclass
class ModelArtifacts:
    """What one model of a run left behind. ``error`` says why it cannot be used."""

    name: str
    directory: Path
    status: str
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    error: str | None = None

    @property
    def usable(self) -> bool:
        return self.error is None and self.predictions is not None

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL_FILE


@dataclass
class Run:
    run_id: str
    directory: Path
    manifest: dict[str, Any]
    split: pd.DataFrame
    models: dict[str, ModelArtifacts]

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.get("config", {})

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


def check_format_version(version: Any) -> None:
    supported_major = int(FORMAT_VERSION.split(".")[0])
    try:
        major = int(str(version).split(".")[0])
    except ValueError as exc:
        raise ArtifactError(f"format_version {version!r} is not a version number") from exc
    if major > supported_major:
        raise ArtifactError(
            f"run has artifact format {version}, newer than this code reads ({FORMAT_VERSION}); "
            "update the project (git pull) to open it"
        )


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: not a run folder")
    try:
        manifest = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} does not hold a JSON object")
    check_format_version(manifest.get("format_version"))
    if not manifest.get("class_names"):
        raise ArtifactError(f"{path} names no classes")
    return manifest


def list_runs(artifacts_dir: Path) -> list[RunSummary]:
    """Every folder of ``artifacts_dir`` with a manifest, newest first; broken ones carry an error."""
    root = Path(artifacts_dir)
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if not path.is_dir() or path.name.startswith(".") or not (path / MANIFEST).exists():
            continue
        try:
            manifest = read_manifest(path)
            runs.append(
                RunSummary(
                    run_id=path.name,
                    directory=path,
                    created=str(manifest.get("created", "")),
                    dataset=str(manifest.get("dataset", {}).get("name", "")),
                    model_count=len(manifest.get("models", {})),
                )
            )
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
    manifest = read_manifest(run_dir)
    split_path = run_dir / SPLIT
    try:
        split = pd.read_csv(split_path)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{split_path} cannot be read: {exc}") from exc
    class_names = list(manifest["class_names"])
    models = {
        name: _read_model(run_dir, name, info if isinstance(info, dict) else {}, class_names)
        for name, info in manifest.get("models", {}).items()
    }
    return Run(run_id=run_dir.name, directory=run_dir, manifest=manifest, split=split, models=models)


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


# --------------------------------------------------------------------------- external evaluations

# A finished run's models scored on another dataset folder (bt_core.runs.evaluate): a run-like
# folder RUN_DIR/evaluations/<name>/ with the layout of a run, so every reader above opens
# it as a run. list_runs() lists top-level runs only.
EVALUATIONS_DIR = "evaluations"


def evaluation_dir(run_dir: Path, name: str) -> Path:
    """Where the evaluation ``name`` of a run lives (may not exist)."""
    return Path(run_dir) / EVALUATIONS_DIR / name


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
            read_manifest(path)
        except ArtifactError:
            continue
        names.append(path.name)
    return sorted(names)


# --------------------------------------------------------------------------- explanation maps

# Precomputed explanation maps (bt_core.explain.precompute): one file per model and method,
# models/<model>/maps/<method>.npz, so re-training a model (RunWriter.reset_model) drops them.
# Stored uncompressed, so one image's map can be read without reading the others (mmap).
MAPS_DIR = "maps"
MAPS_SUFFIX = ".npz"


def maps_dir(run_dir: Path, model_name: str) -> Path:
    return model_dir(run_dir, model_name) / MAPS_DIR


def maps_path(run_dir: Path, model_name: str, method: str) -> Path:
    """Where the precomputed maps of ``method`` for one model live (may not exist)."""
    return maps_dir(run_dir, model_name) / f"{method}{MAPS_SUFFIX}"


def list_maps(run_dir: Path, model_name: str) -> list[str]:
    """The methods a model has precomputed maps of, sorted (temporary files left out)."""
    directory = maps_dir(run_dir, model_name)
    if not directory.is_dir():
        return []
    return sorted(
        path.name[: -len(MAPS_SUFFIX)]
        for path in directory.iterdir()
        if path.is_file() and path.name.endswith(MAPS_SUFFIX) and not is_temporary_file(path)
    )


def _maps_problem(
    maps: np.ndarray, ids: np.ndarray, class_index: np.ndarray, check_values: bool = True
) -> str | None:
    """What is wrong with a set of maps, or None. ``check_values=False`` reads no map value
    (for a memory map, where that would read the whole file)."""
    if maps.ndim != 3 or maps.dtype != np.float16:
        return f"maps must be float16 (N, h, w), got {maps.dtype} {maps.shape}"
    if ids.ndim != 1 or class_index.ndim != 1 or not len(ids) == len(class_index) == len(maps):
        return f"{len(maps)} maps, {len(ids)} ids and {len(class_index)} class indices"
    if not np.issubdtype(class_index.dtype, np.integer):
        return f"class_index must be integers, got {class_index.dtype}"
    if check_values and maps.size and not (np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1):
        return "maps must be finite and in [0, 1]"
    return None


def write_maps(
    run_dir: Path,
    model_name: str,
    method: str,
    maps: np.ndarray,
    ids: list[str] | np.ndarray,
    class_index: np.ndarray,
    layer: str | None = None,
) -> Path:
    """Store one model's maps of ``method`` for the test images (atomic); returns the path.

    ``maps``: ``(N, h, w)`` in ``[0, 1]``, stored as float16; ``ids``: the test ids in
    ``test_images.npz`` order; ``class_index``: the class each map explains.
    """
    maps = np.clip(np.asarray(maps, dtype=np.float32), 0.0, 1.0).astype(np.float16)
    ids = np.asarray(ids, dtype=str)
    class_index = np.asarray(class_index, dtype=np.int64)
    path = maps_path(run_dir, model_name, method)
    problem = _maps_problem(maps, ids, class_index)
    if problem:
        raise ValueError(f"maps for {model_name} / {method}: {problem}")

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(
                handle, maps=maps, ids=ids, class_index=class_index,
                method=np.array(method), layer=np.array(layer or ""),
            )

    _atomic_write(path, save)
    return path


def _stored_npy_memmap(path: Path, member: str) -> np.ndarray | None:
    """A read-only memory map of an uncompressed ``.npy`` member of an ``.npz`` archive,
    or None when the member is compressed or of a header version this does not map."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local_header = handle.read(30)
        if len(local_header) != 30 or local_header[:4] != b"PK\x03\x04":
            raise ValueError(f"bad local header of {member}")
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"{member} holds Python objects")
    if offset + int(np.prod(shape)) * dtype.itemsize > path.stat().st_size:
        raise ValueError(f"{member} is truncated")
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran_order else "C")


def load_maps(
    run_dir: Path, model_name: str, method: str, *, mmap: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(maps float16 (N, h, w), ids (N,), class_index int64 (N,))`` of one model and method.

    ``mmap=True``: the maps are a read-only memory map of the file, so showing one image
    reads only its map (their value range is then not checked: clip what you show).
    Raises ArtifactError naming the file when it is missing, unreadable or inconsistent.
    """
    import zipfile
    import zlib

    path = maps_path(run_dir, model_name, method)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            ids, class_index = data["ids"], data["class_index"]
            mapped = _stored_npy_memmap(path, "maps.npy") if mmap else None
            maps = data["maps"] if mapped is None else mapped
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ArtifactError(f"{path} cannot be read: {type(exc).__name__}: {exc}") from exc
    problem = _maps_problem(maps, ids, class_index, check_values=mapped is None)
    if problem:
        raise ArtifactError(f"{path}: {problem}")
    return maps, ids.astype(str), class_index.astype(np.int64)


# --------------------------------------------------------------------------- shortcut measures

# bt_core.shortcuts.measure_run: shortcuts/summary.json (every model's score, flags, parts,
# probes, clusters; the dataset audit), shortcuts/models/<model>.csv (one row per test
# image) and shortcuts/duplicates.csv (the audit's duplicate pairs).
SHORTCUTS_DIR = "shortcuts"
SHORTCUTS_SUMMARY = "summary.json"
SHORTCUTS_DUPLICATES = "duplicates.csv"


def shortcuts_dir(run_dir: Path) -> Path:
    return Path(run_dir) / SHORTCUTS_DIR


def write_shortcuts(
    run_dir: Path, summary: dict[str, Any], per_image: dict[str, pd.DataFrame], pairs: pd.DataFrame | None
) -> None:
    """Write the measures; the summary last, so a present summary means complete tables."""
    folder = shortcuts_dir(run_dir)
    for name, table in per_image.items():
        write_csv(folder / MODELS_DIR / f"{name}.csv", table)
    if pairs is not None:
        write_csv(folder / SHORTCUTS_DUPLICATES, pairs)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(folder / SHORTCUTS_SUMMARY, {"created": created, **summary})


def load_shortcuts(run_dir: Path) -> dict[str, Any] | None:
    """The run's shortcut summary, or None when it was never measured."""
    path = shortcuts_dir(run_dir) / SHORTCUTS_SUMMARY
    if not path.is_file():
        return None
    try:
        summary = read_json(path)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(summary, dict) or not isinstance(summary.get("models"), dict):
        raise ArtifactError(f"{path} is not a shortcut summary")
    return summary


def load_shortcut_images(run_dir: Path, model_name: str) -> pd.DataFrame | None:
    """One model's per-image measures, or None when not measured."""
    path = shortcuts_dir(run_dir) / MODELS_DIR / f"{model_name}.csv"
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, dtype={"id": str, "label": str, "pred": str})
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc


def load_duplicates(run_dir: Path) -> pd.DataFrame | None:
    """The audit's duplicate pairs, or None when the audit did not run."""
    path = shortcuts_dir(run_dir) / SHORTCUTS_DUPLICATES
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, dtype={"id_a": str, "id_b": str})
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc
