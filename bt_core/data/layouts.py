"""Find the images and class names of a dataset folder in either supported layout.

- ``kaggle``: ``ROOT/Training/<class>/*`` and ``ROOT/Testing/<class>/*``
- ``pool``:   ``ROOT/<class>/*`` (the project makes its own train/val/test split)

Class names are the folder names, sorted. Hidden files and folders are ignored; files that
are not images are reported as skipped, never read. So are, with their reason: an image name
that is not a regular file (a FIFO would block training forever, a device never end), a broken
symbolic link, a symbolic link to a folder inside a class folder (not followed: it could
loop or reach outside the dataset; a class folder that is itself a link is read), and an
image lying beside the class folders instead of in one.

A folder that cannot be a dataset is refused with one sentence naming what is wrong (issue 11):
a file instead of a folder; a Training folder without a Testing one (or the reverse), or two
spellings of either; a class folder that holds no image (hidden files do not count), in a
pool or in either of Training / Testing; class folders that differ only in case (two classes
on Linux, one on macOS); a class present in only one of Training / Testing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
KAGGLE_TRAIN_DIRS = ("Training", "training", "Train", "train")
KAGGLE_TEST_DIRS = ("Testing", "testing", "Test", "test")
LAYOUT_KAGGLE = "kaggle"
LAYOUT_POOL = "pool"
_NAMES_SHOWN = 3  # skipped file names an error message lists before "..."


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


@dataclass
class _ClassFolder:
    """What one class folder holds: image paths (relative to the root), skipped files, and
    how many hidden entries were ignored (they make an otherwise empty folder look full)."""

    folder: Path
    images: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    hidden: int = 0

    def describe(self, root: Path) -> str:
        """'Training/glioma (0 images; 2 files skipped: a.txt, b.doc; 1 hidden entry ignored)'."""
        parts = [f"{len(self.images)} images"]
        if self.skipped:
            names = [Path(s.path).name for s in self.skipped[:_NAMES_SHOWN]]
            more = ", ..." if len(self.skipped) > _NAMES_SHOWN else ""
            parts.append(f"{len(self.skipped)} files skipped: {', '.join(names)}{more}")
        if self.hidden:
            parts.append(f"{self.hidden} hidden entr{'y' if self.hidden == 1 else 'ies'} ignored")
        return f"{self.folder.relative_to(root).as_posix()} ({'; '.join(parts)})"


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def _visible_subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _is_hidden(p.name))


def _existing(root: Path, names: tuple[str, ...]) -> list[Path]:
    return [root / n for n in names if (root / n).is_dir()]


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


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _scan_class_folder(root: Path, folder: Path) -> _ClassFolder:
    """The images under ``folder`` (paths relative to root), recursively, hidden parts pruned."""
    found = _ClassFolder(folder)
    for current, dirs, files in os.walk(folder):
        visible = sorted(d for d in dirs if not _is_hidden(d))
        found.hidden += len(dirs) - len(visible)
        for name in visible:
            if (Path(current) / name).is_symlink():  # os.walk lists it but does not enter it
                relative = (Path(current) / name).relative_to(root).as_posix()
                found.skipped.append(SkippedFile(relative, "symbolic link to a folder: not followed (copy the folder in)"))
        dirs[:] = [d for d in visible if not (Path(current) / d).is_symlink()]
        for name in sorted(files):
            if _is_hidden(name):
                found.hidden += 1
                continue
            relative = (Path(current) / name).relative_to(root).as_posix()
            if not _is_image_name(name):
                found.skipped.append(SkippedFile(relative, "not an image file (unknown extension)"))
            elif (problem := _file_problem(Path(current) / name)) is not None:
                found.skipped.append(SkippedFile(relative, problem))
            else:
                found.images.append(relative)
    return found


def _loose_images(root: Path, parent: Path) -> list[SkippedFile]:
    """Image files lying directly in ``parent``, beside the class folders: no class, not used."""
    return [
        SkippedFile(p.relative_to(root).as_posix(), "image outside a class folder: not used (move it into its class folder)")
        for p in sorted(parent.iterdir())
        if not _is_hidden(p.name) and _is_image_name(p.name) and not p.is_dir()
    ]


def _refuse_case_twins(root: Path, names: list[str], where: str) -> None:
    """Two class folders whose names differ only in case are one class to a person (and to
    macOS and Windows) but two to Linux: refuse rather than guess."""
    by_folded: dict[str, list[str]] = {}
    for name in names:
        by_folded.setdefault(name.casefold(), []).append(name)
    twins = [group for group in by_folded.values() if len(group) > 1]
    if twins:
        shown = " and ".join(f"'{where}{n}'" for n in twins[0])
        raise ValueError(f"{root}: class folders {shown} differ only in case; rename or merge them into one")


def _scan_classes(root: Path, parent: Path) -> tuple[dict[str, _ClassFolder], list[SkippedFile]]:
    class_dirs = _visible_subdirs(parent)
    where = "" if parent == root else f"{parent.name}/"
    _refuse_case_twins(root, [d.name for d in class_dirs], where)
    return {d.name: _scan_class_folder(root, d) for d in class_dirs}, _loose_images(root, parent)


def _refuse_empty_pool_classes(root: Path, classes: dict[str, _ClassFolder]) -> None:
    empty = [name for name, found in classes.items() if not found.images]
    if empty:
        described = "; ".join(classes[name].describe(root) for name in empty)
        noun = "class folder" if len(empty) == 1 else "class folders"
        raise ValueError(
            f"{root}: {noun} {', '.join(repr(n) for n in empty)} hold{'s' if len(empty) == 1 else ''} "
            f"no image: {described}; add images or remove the folder"
        )


def _refuse_empty_kaggle_classes(root: Path, train: dict[str, _ClassFolder], test: dict[str, _ClassFolder]) -> None:
    for name in sorted(train):
        if not train[name].images or not test[name].images:
            raise ValueError(
                f"{root}: class '{name}' holds no image in "
                f"{' nor '.join(f.folder.parent.name for f in (train[name], test[name]) if not f.images)}: "
                f"{train[name].describe(root)}, {test[name].describe(root)}; "
                "every class needs images in both folders"
            )


def _refuse_different_kaggle_classes(root: Path, train_dir: Path, test_dir: Path, train: list[str], test: list[str]) -> None:
    if sorted(train) == sorted(test):
        return
    folded_test = {n.casefold(): n for n in test}
    for name in train:
        if name not in test and name.casefold() in folded_test:
            raise ValueError(
                f"{root}: class folders '{train_dir.name}/{name}' and '{test_dir.name}/{folded_test[name.casefold()]}' "
                "differ only in case; give them the same name"
            )
    only_train = sorted(set(train) - set(test))
    only_test = sorted(set(test) - set(train))
    where = "; ".join(
        f"{names} only in {folder.name}" for names, folder in ((only_train, train_dir), (only_test, test_dir)) if names
    )
    raise ValueError(
        f"{root}: class folders differ between {train_dir.name} {sorted(train)} and {test_dir.name} {sorted(test)}: {where}"
    )


def _kaggle_folders(root: Path) -> tuple[Path, Path] | None:
    """(Training, Testing) of a kaggle layout, None for a pool; refuses half of a kaggle layout."""
    train_dirs, test_dirs = _existing(root, KAGGLE_TRAIN_DIRS), _existing(root, KAGGLE_TEST_DIRS)
    for found in (train_dirs, test_dirs):
        if len(found) > 1:
            raise ValueError(
                f"{root}: holds both {' and '.join(repr(p.name) for p in found)}; keep one of them"
            )
    if train_dirs and test_dirs:
        return train_dirs[0], test_dirs[0]
    if train_dirs or test_dirs:
        present = (train_dirs or test_dirs)[0]
        missing = "Testing" if train_dirs else "Training"
        raise ValueError(
            f"{root}: has a {present.name} folder but no {missing} folder; a kaggle layout needs both, "
            f"a pool holds its class folders directly (use {present} itself as the dataset folder)"
        )
    return None


def discover(root: str | Path, min_classes: int = 2) -> DatasetIndex:
    """Index a dataset folder; raises ValueError with the expected layout when it fits neither.

    ``min_classes``: training needs 2; an external evaluation may hold one class only."""
    root = Path(root).expanduser().resolve()
    if root.is_file():
        raise ValueError(f"{root} is a file, not a dataset folder (ROOT/<class>/* or ROOT/Training + ROOT/Testing)")
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    kaggle = _kaggle_folders(root)
    if kaggle:
        layout = LAYOUT_KAGGLE
        train_dir, test_dir = kaggle
        train, train_loose = _scan_classes(root, train_dir)
        test, test_loose = _scan_classes(root, test_dir)
        _refuse_different_kaggle_classes(root, train_dir, test_dir, list(train), list(test))
        _refuse_empty_kaggle_classes(root, train, test)
        folders = [("train", train), ("test", test)]
        loose = train_loose + test_loose
    else:
        layout = LAYOUT_POOL
        pool, loose = _scan_classes(root, root)
        _refuse_empty_pool_classes(root, pool)
        folders = [("", pool)]
    rows = [
        {"path": path, "label": name, "source": source}
        for source, classes in folders
        for name, found in classes.items()
        for path in found.images
    ]
    skipped = [s for _source, classes in folders for found in classes.values() for s in found.skipped] + loose
    items = pd.DataFrame(rows, columns=["path", "label", "source"])
    if items.empty:
        outside = f" ({len(loose)} images lie outside any class folder)" if loose else ""
        raise ValueError(
            f"no images found in {root}{outside}. Expected ROOT/Training/<class>/* + ROOT/Testing/<class>/* "
            f"or ROOT/<class>/* with image files ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    class_names = tuple(sorted(items["label"].unique()))
    if len(class_names) < min_classes:
        raise ValueError(
            f"{root}: need at least {min_classes} class folders with images, found {list(class_names)}"
        )
    return DatasetIndex(root, layout, class_names, items, tuple(skipped))
