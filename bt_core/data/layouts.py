"""Find the images and class names of a dataset folder in either supported layout.

- ``kaggle``: ``ROOT/Training/<class>/*`` and ``ROOT/Testing/<class>/*``
- ``pool``:   ``ROOT/<class>/*`` (the project makes its own train/val/test split)

Class names are the folder names, sorted. Hidden files and folders are ignored; files that
are not images are reported as skipped, never read. So are, with their reason: an image name
that is not a regular file (a FIFO would block training forever, a device never end), a broken
symbolic link, and a symbolic link to a folder inside a class folder (not followed: it could
loop or reach outside the dataset; a class folder that is itself a link is read).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
KAGGLE_TRAIN_DIRS = ("Training", "training", "Train", "train")
KAGGLE_TEST_DIRS = ("Testing", "testing", "Test", "test")
LAYOUT_KAGGLE = "kaggle"
LAYOUT_POOL = "pool"


@dataclass(frozen=True)
class SkippedFile:
    path: str  # relative to the dataset root, forward slashes
    reason: str


@dataclass(frozen=True)
class DatasetIndex:
    """Every image of a dataset folder: ``items`` has columns path, label, source
    (``train`` / ``test`` for the kaggle layout, empty for a pool)."""

    root: Path
    layout: str
    class_names: tuple[str, ...]
    items: pd.DataFrame
    skipped: tuple[SkippedFile, ...]


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def _visible_subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _is_hidden(p.name))


def _first_existing(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _file_problem(path: Path) -> str | None:
    """Why an image-named file cannot be read as one (None: a regular file, or a link to one)."""
    try:
        mode = path.stat().st_mode  # follows a link to its target
    except FileNotFoundError:
        return "broken symbolic link (its target does not exist)" if path.is_symlink() else "file vanished"
    except OSError as exc:
        return f"cannot stat file: {exc}"
    if stat.S_ISREG(mode):
        return None
    kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device or special file"
    return f"not a regular file ({kind}); not read"


def _scan_class_folder(root: Path, folder: Path) -> tuple[list[str], list[SkippedFile]]:
    """Image paths (relative to root) under ``folder``, recursively, hidden parts pruned."""
    images, skipped = [], []
    for current, dirs, files in os.walk(folder):
        visible = sorted(d for d in dirs if not _is_hidden(d))
        for name in visible:
            if (Path(current) / name).is_symlink():  # os.walk lists it but does not enter it
                relative = (Path(current) / name).relative_to(root).as_posix()
                skipped.append(SkippedFile(relative, "symbolic link to a folder: not followed (copy the folder in)"))
        dirs[:] = [d for d in visible if not (Path(current) / d).is_symlink()]
        for name in sorted(files):
            if _is_hidden(name):
                continue
            relative = (Path(current) / name).relative_to(root).as_posix()
            if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append(SkippedFile(relative, "not an image file (unknown extension)"))
            elif (problem := _file_problem(Path(current) / name)) is not None:
                skipped.append(SkippedFile(relative, problem))
            else:
                images.append(relative)
    return images, skipped


def _scan_classes(root: Path, parent: Path, source: str) -> tuple[list[dict], list[SkippedFile], list[str]]:
    rows, skipped = [], []
    class_dirs = _visible_subdirs(parent)
    for class_dir in class_dirs:
        images, bad = _scan_class_folder(root, class_dir)
        rows.extend({"path": p, "label": class_dir.name, "source": source} for p in images)
        skipped.extend(bad)
    return rows, skipped, [d.name for d in class_dirs]


def discover(root: str | Path) -> DatasetIndex:
    """Index a dataset folder; raises ValueError with the expected layout when it fits neither."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    train_dir = _first_existing(root, KAGGLE_TRAIN_DIRS)
    test_dir = _first_existing(root, KAGGLE_TEST_DIRS)
    if train_dir and test_dir:
        layout = LAYOUT_KAGGLE
        train_rows, skipped, train_classes = _scan_classes(root, train_dir, "train")
        test_rows, test_skipped, test_classes = _scan_classes(root, test_dir, "test")
        if sorted(train_classes) != sorted(test_classes):
            raise ValueError(
                f"{root}: class folders differ between {train_dir.name} {sorted(train_classes)} "
                f"and {test_dir.name} {sorted(test_classes)}"
            )
        rows, skipped = train_rows + test_rows, skipped + test_skipped
    else:
        layout = LAYOUT_POOL
        rows, skipped, _ = _scan_classes(root, root, "")
    items = pd.DataFrame(rows, columns=["path", "label", "source"])
    if items.empty:
        raise ValueError(
            f"no images found in {root}. Expected ROOT/Training/<class>/* + ROOT/Testing/<class>/* "
            f"or ROOT/<class>/* with image files ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    class_names = tuple(sorted(items["label"].unique()))
    if len(class_names) < 2:
        raise ValueError(f"{root}: need at least 2 class folders with images, found {list(class_names)}")
    return DatasetIndex(root, layout, class_names, items, tuple(skipped))
