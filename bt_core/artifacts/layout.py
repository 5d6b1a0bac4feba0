"""Every path and file name of a run folder: nothing outside this module spells one.

A run folder (docs/artifacts.md) holds the manifest, the split, the test images and boxes,
one folder per model (model, history, predictions, metrics, explanation maps and, while it
trains, its backup), the shortcut measures and, under ``evaluations/``, run-like folders of
external evaluations.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
SPLIT = "split.csv"
TEST_IMAGES = "test_images.npz"
TEST_BOXES = "test_boxes.csv"
TEST_BOX_COLUMNS = ["id", "x_min", "y_min", "x_max", "y_max"]
# 1.3: the usable head masks of the test images (bt_core.runs.analyze), bit-packed.
TEST_HEADS = "test_heads.npz"
MODELS_DIR = "models"
MODEL_FILE = "model.keras"
HISTORY = "history.csv"
PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"
# models/<model>/MODEL_CARD.md: the model card built from the run's own files (bt_core.runs.model_card).
MODEL_CARD = "MODEL_CARD.md"

SPLIT_COLUMNS = ["path", "split", "label"]
HISTORY_COLUMNS = ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]

# The four files a finished model leaves behind.
MODEL_FILES = (MODEL_FILE, HISTORY, PREDICTIONS, METRICS)
# models/<model>/backup/: the training state of a model still training (bt_core.training.backup),
# so --resume continues it from its last finished epoch; removed once the model is done.
BACKUP_DIR = "backup"
# models/<model>/tensorboard/<phase>/: Keras TensorBoard logs of a run trained with --tensorboard
# (bt_core.tracking.tensorboard_logs); optional, never read by the dashboard.
TENSORBOARD_DIR = "tensorboard"

# A finished run's models scored on another dataset folder (bt_core.runs.evaluate): a run-like
# folder RUN_DIR/evaluations/<name>/ with the layout of a run.
EVALUATIONS_DIR = "evaluations"

# Precomputed explanation maps (bt_core.runs.analyze): models/<model>/maps/<method>.npz,
# so re-training a model (RunWriter.reset_model) drops them with its folder.
MAPS_DIR = "maps"
MAPS_SUFFIX = ".npz"
# 1.3: each map's share of these regions, stored in its maps file as share_<name>.
MAP_SHARES = ("outside_head", "border", "in_box")
MAP_SHARE_PREFIX = "share_"
# Optional: each class's mean map and mean head mask of one method (bt_core.runs.analyze),
# models/<model>/maps/class_means/<method>.npz (a folder: list_maps lists files only).
CLASS_MEANS_DIR = "class_means"

# bt_core.runs.analyze: shortcuts/summary.json, shortcuts/models/<model>.csv and
# shortcuts/duplicates.csv.
SHORTCUTS_DIR = "shortcuts"
SHORTCUTS_SUMMARY = "summary.json"
SHORTCUTS_DUPLICATES = "duplicates.csv"
SHORTCUT_TABLE_SUFFIX = ".csv"
# The data explored (bt_core.runs.data_profile): data/profile.json (tables) and
# data/thumbnails.npz (small uint8 images), written at training time; optional.
DATA_PROFILE_DIR = "data"
DATA_PROFILE = "profile.json"
DATA_THUMBNAILS = "thumbnails.npz"


def manifest_path(run_dir: Path) -> Path:
    return Path(run_dir) / MANIFEST


def model_dir(run_dir: Path, model_name: str) -> Path:
    return Path(run_dir) / MODELS_DIR / model_name


def model_card_path(run_dir: Path, model_name: str) -> Path:
    """Where one model's card lives (may not exist: runs before cards, unfinished models)."""
    return model_dir(run_dir, model_name) / MODEL_CARD


def backup_dir(run_dir: Path, model_name: str) -> Path:
    """Where an unfinished model's training state lives (may not exist)."""
    return model_dir(run_dir, model_name) / BACKUP_DIR


def tensorboard_dir(run_dir: Path, model_name: str) -> Path:
    """Where a model's TensorBoard logs live, one folder per phase (may not exist)."""
    return model_dir(run_dir, model_name) / TENSORBOARD_DIR


def evaluation_dir(run_dir: Path, name: str) -> Path:
    """Where the evaluation ``name`` of a run lives (may not exist)."""
    return Path(run_dir) / EVALUATIONS_DIR / name


def evaluation_staging_dir(run_dir: Path, name: str) -> Path:
    """The hidden folder an evaluation is assembled in before it is renamed into place."""
    return Path(run_dir) / EVALUATIONS_DIR / f".{name}.evaluating"


def merge_staging_dir(out: Path, run_id: str) -> Path:
    """The hidden folder a merged run is assembled in before it is renamed into place."""
    return Path(out) / f".{run_id}.merging"


def training_run_dir(directory: Path) -> Path | None:
    """For an evaluation folder ``RUN/evaluations/NAME``: ``RUN``; None for any other folder."""
    directory = Path(directory)
    if directory.parent.name != EVALUATIONS_DIR:
        return None
    parent = directory.parent.parent
    return parent if manifest_path(parent).is_file() else None


def heads_path(run_dir: Path) -> Path:
    return Path(run_dir) / TEST_HEADS



def maps_dir(run_dir: Path, model_name: str) -> Path:
    return model_dir(run_dir, model_name) / MAPS_DIR


def maps_path(run_dir: Path, model_name: str, method: str) -> Path:
    """Where the precomputed maps of ``method`` for one model live (may not exist)."""
    return maps_dir(run_dir, model_name) / f"{method}{MAPS_SUFFIX}"


def class_mean_maps_path(run_dir: Path, model_name: str, method: str) -> Path:
    """Where one model's per-class mean maps of ``method`` live (may not exist)."""
    return maps_dir(run_dir, model_name) / CLASS_MEANS_DIR / f"{method}{MAPS_SUFFIX}"


def shortcuts_dir(run_dir: Path) -> Path:
    return Path(run_dir) / SHORTCUTS_DIR


def shortcut_summary_path(run_dir: Path) -> Path:
    return shortcuts_dir(run_dir) / SHORTCUTS_SUMMARY


def shortcut_images_path(run_dir: Path, model_name: str) -> Path:
    """One model's per-image shortcut measures (may not exist)."""
    return shortcuts_dir(run_dir) / MODELS_DIR / f"{model_name}{SHORTCUT_TABLE_SUFFIX}"


def duplicates_path(run_dir: Path) -> Path:
    return shortcuts_dir(run_dir) / SHORTCUTS_DUPLICATES


def data_profile_dir(run_dir: Path) -> Path:
    return Path(run_dir) / DATA_PROFILE_DIR


def data_profile_path(run_dir: Path) -> Path:
    """The data profile's tables (may not exist: runs before it)."""
    return data_profile_dir(run_dir) / DATA_PROFILE


def data_thumbnails_path(run_dir: Path) -> Path:
    return data_profile_dir(run_dir) / DATA_THUMBNAILS
