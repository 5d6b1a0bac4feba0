"""A deterministic synthetic brain-MRI dataset with a planted shortcut, made by code.

Each image is an MRI-like axial head slice; tumor classes differ in lesion look and place
(glioma: irregular ring-enhancing mass in a hemisphere; meningioma: small, faint, round mass
on the inner skull edge; pituitary: small bright midline mass low in the middle; notumor:
none). A scanner-style text mark is burned into the top-left corner of most images of one
class (``shortcut_class``) and a few of the others, so a model can be right for the wrong
reason, which the dashboard's Grad-CAM panels should reveal. See docs/demo-data.md.

Layout written under ``root`` (the single-pool layout of the real figshare dataset):
``<class>/<class>_<NNNN>.png``, ``boxes.csv``, ``demo_metadata.csv`` and, last, ``DEMO.json``.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import os
from pathlib import Path

import cv2

from bt_core.data.demo_slices import DEMO_CLASSES, burn_mark, class_generator, render_slice

TUMOR_CLASSES = ("glioma", "meningioma", "pituitary")
# Bump when the images or files change, so existing demo folders are regenerated.
GENERATOR_VERSION = "1"

BOXES_FILE = "boxes.csv"
METADATA_FILE = "demo_metadata.csv"
PARAMS_FILE = "DEMO.json"
# Present while a generation is under way; hidden so dataset discovery ignores it.
INCOMPLETE_MARKER = ".demo-incomplete"

BOX_HEADER = ("image", "label", "x_min", "y_min", "x_max", "y_max")
METADATA_HEADER = (
    "image",
    "label",
    "has_mark",
    "mark_text",
    "mark_corner",
    "lesion_cx",
    "lesion_cy",
    "lesion_radius",
)
MARK_CORNER = "top-left"
# The random stream (per class) that chooses the marked images; demo_slices draws each image
# from its own.
_MARK_STREAM = 2
def _marked_indices(seed: int, label: str, per_class: int, rate: float) -> set[int]:
    """Exactly round(rate * per_class) marked images per class, spread at random."""
    rng = class_generator(seed, label, _MARK_STREAM)
    count = int(round(rate * per_class))
    return {int(i) for i in rng.permutation(per_class)[:count]}


def _params(per_class, image_size, seed, shortcut_class, shortcut_rate, other_rate) -> dict:
    return {
        "generator": "bt_core.data.demo",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "per_class": per_class,
        "image_size": image_size,
        "classes": list(DEMO_CLASSES),
        "shortcut_class": shortcut_class,
        "shortcut_rate": shortcut_rate,
        "other_rate": other_rate,
        "mark_corner": MARK_CORNER,
    }


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _validate(per_class, image_size, seed, shortcut_class, shortcut_rate, other_rate) -> None:
    if shortcut_class not in DEMO_CLASSES:
        raise ValueError(f"shortcut_class must be one of {DEMO_CLASSES}, got {shortcut_class!r}")
    if not (_is_integer(per_class) and per_class >= 1):
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    # Below 64 px the mark and the small lesions no longer fit.
    if not (_is_integer(image_size) and image_size >= 64):
        raise ValueError(f"image_size must be an integer >= 64, got {image_size!r}")
    if not (_is_integer(seed) and seed >= 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, rate in (("shortcut_rate", shortcut_rate), ("other_rate", other_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {rate!r}")


def _image_name(label: str, index: int, per_class: int) -> str:
    digits = max(4, len(str(per_class)))
    return f"{label}/{label}_{index + 1:0{digits}d}.png"


def _is_complete(root: Path, params: dict) -> bool:
    params_path = root / PARAMS_FILE
    if not params_path.is_file() or (root / INCOMPLETE_MARKER).exists():
        return False
    try:
        written = json.loads(params_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if written != params:
        return False
    per_class = params["per_class"]
    names = [_image_name(c, i, per_class) for c in DEMO_CLASSES for i in range(per_class)]
    return all((root / n).is_file() for n in [BOXES_FILE, METADATA_FILE, *names])


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _csv_bytes(header: tuple[str, ...], rows: list[tuple]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _check_safe_to_write(root: Path) -> None:
    """Refuse to overwrite a folder that is not (an attempt at) a demo dataset, e.g. real data."""
    if not root.exists():
        return
    if not root.is_dir():
        raise NotADirectoryError(f"{root} exists and is not a folder")
    ours = any((root / n).exists() for n in (PARAMS_FILE, METADATA_FILE, INCOMPLETE_MARKER))
    if not ours and any(root.iterdir()):
        raise FileExistsError(
            f"{root} is not empty and holds no demo dataset ({PARAMS_FILE}); pick an empty folder"
        )


def _normalized(*values: float, size: int) -> tuple[str, ...]:
    # Fixed decimals keep the CSV bytes identical from run to run.
    return tuple(f"{v / size:.6f}" for v in values)


def _normalized_box(box: tuple[int, int, int, int], size: int) -> tuple[str, ...]:
    """Inclusive pixel box to normalized pixel edges: columns x0..x1 span [x0, x1 + 1)."""
    x0, y0, x1, y1 = box
    return _normalized(x0, y0, x1 + 1, y1 + 1, size=size)


def _remove_stale_images(root: Path, keep: set[str]) -> None:
    """Drop images of an earlier, larger generation so the folder holds exactly this one."""
    for label in DEMO_CLASSES:
        folder = root / label
        if folder.is_dir():
            for path in folder.glob(f"{label}_*.png"):
                if f"{label}/{path.name}" not in keep:
                    path.unlink()


def generate_demo_dataset(
    root: str | os.PathLike,
    per_class: int = 300,
    image_size: int = 128,
    seed: int = 0,
    shortcut_class: str = "meningioma",
    shortcut_rate: float = 0.9,
    other_rate: float = 0.05,
) -> Path:
    """Write the demo dataset under ``root`` and return ``root`` as a Path.

    Does nothing when ``root`` already holds a complete dataset made with the same
    parameters. The same parameters always give byte-identical files.
    """
    _validate(per_class, image_size, seed, shortcut_class, shortcut_rate, other_rate)
    per_class, image_size, seed = int(per_class), int(image_size), int(seed)
    shortcut_rate, other_rate = float(shortcut_rate), float(other_rate)
    root = Path(root)
    params = _params(per_class, image_size, seed, shortcut_class, shortcut_rate, other_rate)
    if _is_complete(root, params):
        return root
    _check_safe_to_write(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / INCOMPLETE_MARKER).touch()
    (root / PARAMS_FILE).unlink(missing_ok=True)

    names = {c: [_image_name(c, i, per_class) for i in range(per_class)] for c in DEMO_CLASSES}
    _remove_stale_images(root, {n for c in DEMO_CLASSES for n in names[c]})
    box_rows, metadata_rows = [], []
    for label in DEMO_CLASSES:
        (root / label).mkdir(exist_ok=True)
        rate = shortcut_rate if label == shortcut_class else other_rate
        marked = _marked_indices(seed, label, per_class, rate)
        for index, name in enumerate(names[label]):
            pixels, lesion, text = render_slice(label, index, seed, image_size)
            has_mark = index in marked
            if has_mark:
                burn_mark(pixels, text)
            ok, encoded = cv2.imencode(".png", pixels)
            if not ok:
                raise RuntimeError(f"OpenCV could not encode {name}")
            (root / name).write_bytes(encoded.tobytes())
            lesion_columns = ("", "", "")
            if lesion is not None:
                box_rows.append((name, label, *_normalized_box(lesion.box, image_size)))
                lesion_columns = _normalized(lesion.cx, lesion.cy, lesion.radius, size=image_size)
            mark_columns = (1, text, MARK_CORNER) if has_mark else (0, "", "")
            metadata_rows.append((name, label, *mark_columns, *lesion_columns))

    _write_atomic(root / BOXES_FILE, _csv_bytes(BOX_HEADER, box_rows))
    _write_atomic(root / METADATA_FILE, _csv_bytes(METADATA_HEADER, metadata_rows))
    # DEMO.json last: its presence (and the marker's absence) means the folder is complete.
    params_json = json.dumps(params, indent=2, sort_keys=True) + "\n"
    _write_atomic(root / PARAMS_FILE, params_json.encode("utf-8"))
    (root / INCOMPLETE_MARKER).unlink()
    return root
