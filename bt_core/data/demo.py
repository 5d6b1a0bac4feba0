"""A deterministic synthetic brain-MRI dataset with a planted shortcut, made by code.

Each image is an MRI-like axial head slice; tumor classes differ in lesion look and place
(glioma: irregular ring-enhancing mass in a hemisphere; meningioma: small, faint, round mass
on the inner skull edge; pituitary: small bright midline mass low in the middle; notumor:
none). A scanner-style text mark is burned into the top-left corner of most images of one
class (``shortcut_class``) and a few of the others, so a model can be right for the wrong
reason, which the dashboard's Grad-CAM panels should reveal. A source signature (a border
texture outside the head, an intensity curve, or the mark itself) can be planted the same way
in a chosen class, so "train on one source mix, test on another" is two calls. See
docs/demo-data.md.

Layout written under ``root`` (the single-pool layout of the real figshare dataset):
``<class>/<class>_<NNNN>.png``, ``boxes.csv``, ``demo_metadata.csv`` and, last, ``DEMO.json``.
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bt_core.data.demo_slices import (
    DEMO_CLASSES,
    HEAD_MARGIN,
    HEAD_MARGIN_MIN_PX,
    TEXTURE_ANGLE_DEG,
    Slice,
    add_border_texture,
    burn_mark,
    class_generator,
    render_slice_parts,
    shift_intensity,
    texture_period,
)

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
# Only a dataset with a signature has this column, so one without stays byte-identical to
# generator version 1.
SIGNATURE_COLUMN = "has_signature"
SIGNATURES = ("border_texture", "intensity_shift", "mark")
# The strength each signature gets when none is given, and the range it must lie in.
# border_texture: peak grey levels added to the background; kept under the head finder's
# threshold (bt_core.regions.HEAD_THRESHOLD_CAP = 45 over a background near 5) so the texture
# never joins the head. intensity_shift: the gamma of the curve; 1 would change nothing.
DEFAULT_SIGNATURE_STRENGTH = {"border_texture": 12.0, "intensity_shift": 0.8}
SIGNATURE_STRENGTH_RANGE = {"border_texture": (1.0, 30.0), "intensity_shift": (0.5, 2.0)}
# The random streams (per class) that choose the marked and the signed images; demo_slices
# draws each image from its own.
_MARK_STREAM = 2
_SIGNATURE_STREAM = 3


def _chosen_indices(seed: int, label: str, per_class: int, rate: float, stream: int) -> set[int]:
    """Exactly round(rate * per_class) images of the class, spread at random."""
    rng = class_generator(seed, label, stream)
    count = int(round(rate * per_class))
    return {int(i) for i in rng.permutation(per_class)[:count]}


def _marked_indices(seed: int, label: str, per_class: int, rate: float) -> set[int]:
    return _chosen_indices(seed, label, per_class, rate, _MARK_STREAM)


def _signed_indices(seed: int, label: str, per_class: int, rate: float) -> set[int]:
    return _chosen_indices(seed, label, per_class, rate, _SIGNATURE_STREAM)


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


@dataclass(frozen=True)
class Signature:
    """A source signature to plant: which kind, in which class, on what share, how strong."""

    kind: str
    label: str
    rate: float
    other_rate: float
    strength: float | None  # None for the mark

    def params(self, image_size: int) -> dict:
        """Its DEMO.json keys, with the texture's geometry for a border texture."""
        params = {
            "signature": self.kind,
            "signature_class": self.label,
            "signature_rate": self.rate,
            "signature_other_rate": self.other_rate,
            "signature_strength": self.strength,
        }
        if self.kind == "border_texture":
            params |= {
                "texture_period_px": texture_period(image_size),
                "texture_angle_deg": TEXTURE_ANGLE_DEG,
                "texture_margin_px": max(HEAD_MARGIN_MIN_PX, HEAD_MARGIN * image_size),
            }
        return params


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _resolve_signature(signature, signature_class, signature_rate, signature_other_rate,
                       signature_strength, shortcut_rate, other_rate) -> Signature | None:
    """The signature's settings with defaults filled in, or None; ValueError on a bad one."""
    given = {
        "signature_class": signature_class,
        "signature_rate": signature_rate,
        "signature_other_rate": signature_other_rate,
        "signature_strength": signature_strength,
    }
    if signature is None:
        extra = [name for name, value in given.items() if value is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} given without a signature; pass signature= one of {SIGNATURES}")
        return None
    if signature not in SIGNATURES:
        raise ValueError(f"signature must be None or one of {SIGNATURES}, got {signature!r}")
    signature_class = "notumor" if signature_class is None else signature_class
    if signature_class not in DEMO_CLASSES:
        raise ValueError(f"signature_class must be one of {DEMO_CLASSES}, got {signature_class!r}")
    rates = {"signature_rate": 0.9 if signature_rate is None else signature_rate,
             "signature_other_rate": 0.0 if signature_other_rate is None else signature_other_rate}
    for name, rate in rates.items():
        if not (_is_number(rate) and 0.0 <= rate <= 1.0):
            raise ValueError(f"{name} must be a number in [0, 1], got {rate!r}")
    if signature == "mark":
        if signature_strength is not None:
            raise ValueError(f"signature_strength has no meaning for the mark, got {signature_strength!r}")
        if shortcut_rate or other_rate:
            raise ValueError(
                "signature='mark' chooses the marked images itself; set shortcut_rate=0 and "
                f"other_rate=0 (got {shortcut_rate!r} and {other_rate!r})"
            )
        strength = None
    else:
        low, high = SIGNATURE_STRENGTH_RANGE[signature]
        strength = DEFAULT_SIGNATURE_STRENGTH[signature] if signature_strength is None else signature_strength
        # A gamma of 1 is the identity curve: a signature that plants nothing.
        identity = " other than 1" if signature == "intensity_shift" else ""
        in_range = _is_number(strength) and low <= strength <= high
        if not in_range or (identity and strength == 1):
            raise ValueError(
                f"signature_strength of {signature} must be a number in [{low:g}, {high:g}]{identity}, got {strength!r}"
            )
        strength = float(strength)
    return Signature(
        signature, signature_class, float(rates["signature_rate"]), float(rates["signature_other_rate"]), strength
    )


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
        if not (_is_number(rate) and 0.0 <= rate <= 1.0):
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


def _draw(picture: Slice, signature: Signature | None, signed: bool, marked: bool,
          seed: int, label: str, index: int) -> np.ndarray:
    """The slice's final pixels: the signature first, then the mark, drawn sharp on top."""
    pixels = picture.pixels
    if signed and signature.kind == "border_texture":
        pixels = add_border_texture(picture, seed, label, index, signature.strength)
    elif signed and signature.kind == "intensity_shift":
        pixels = shift_intensity(pixels, signature.strength)
    if marked:
        burn_mark(pixels, picture.mark_text)
    return pixels


def generate_demo_dataset(
    root: str | os.PathLike,
    per_class: int = 300,
    image_size: int = 128,
    seed: int = 0,
    shortcut_class: str = "meningioma",
    shortcut_rate: float = 0.9,
    other_rate: float = 0.05,
    signature: str | None = None,
    signature_class: str | None = None,
    signature_rate: float | None = None,
    signature_other_rate: float | None = None,
    signature_strength: float | None = None,
) -> Path:
    """Write the demo dataset under ``root`` and return ``root`` as a Path.

    The text mark goes on ``round(shortcut_rate * per_class)`` images of ``shortcut_class``
    and ``round(other_rate * per_class)`` of each other class. ``signature`` (None,
    ``"border_texture"``, ``"intensity_shift"`` or ``"mark"``) plants a source signature the
    same way: on ``round(signature_rate * per_class)`` images of ``signature_class`` (default
    notumor, 0.9) and ``round(signature_other_rate * per_class)`` of each other class (default
    0), with ``signature_strength`` (border_texture: peak grey levels, default 12;
    intensity_shift: the gamma, default 0.8; mark: none). ``"mark"`` needs shortcut_rate =
    other_rate = 0. Without a signature the files are exactly those of generator version 1.

    Does nothing when ``root`` already holds a complete dataset made with the same
    parameters. The same parameters always give byte-identical files.
    """
    _validate(per_class, image_size, seed, shortcut_class, shortcut_rate, other_rate)
    planted = _resolve_signature(signature, signature_class, signature_rate, signature_other_rate,
                                 signature_strength, shortcut_rate, other_rate)
    per_class, image_size, seed = int(per_class), int(image_size), int(seed)
    shortcut_rate, other_rate = float(shortcut_rate), float(other_rate)
    root = Path(root)
    params = _params(per_class, image_size, seed, shortcut_class, shortcut_rate, other_rate)
    if planted is not None:
        params |= planted.params(image_size)
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
        signed = set()
        if planted is not None:
            signed_rate = planted.rate if label == planted.label else planted.other_rate
            signed = _signed_indices(seed, label, per_class, signed_rate)
            if planted.kind == "mark":
                marked = signed
        for index, name in enumerate(names[label]):
            picture = render_slice_parts(label, index, seed, image_size)
            has_mark = index in marked
            pixels = _draw(picture, planted, index in signed, has_mark, seed, label, index)
            ok, encoded = cv2.imencode(".png", pixels)
            if not ok:
                raise RuntimeError(f"OpenCV could not encode {name}")
            (root / name).write_bytes(encoded.tobytes())
            lesion, lesion_columns = picture.lesion, ("", "", "")
            if lesion is not None:
                box_rows.append((name, label, *_normalized_box(lesion.box, image_size)))
                lesion_columns = _normalized(lesion.cx, lesion.cy, lesion.radius, size=image_size)
            mark_columns = (1, picture.mark_text, MARK_CORNER) if has_mark else (0, "", "")
            signature_columns = () if planted is None else (int(index in signed),)
            metadata_rows.append((name, label, *mark_columns, *lesion_columns, *signature_columns))

    header = METADATA_HEADER if planted is None else (*METADATA_HEADER, SIGNATURE_COLUMN)
    _write_atomic(root / BOXES_FILE, _csv_bytes(BOX_HEADER, box_rows))
    _write_atomic(root / METADATA_FILE, _csv_bytes(header, metadata_rows))
    # DEMO.json last: its presence (and the marker's absence) means the folder is complete.
    params_json = json.dumps(params, indent=2, sort_keys=True) + "\n"
    _write_atomic(root / PARAMS_FILE, params_json.encode("utf-8"))
    (root / INCOMPLETE_MARKER).unlink()
    return root
