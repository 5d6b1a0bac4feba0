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
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEMO_CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
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
MARK_TEXTS = ("GE 1.5T", "SIGNA", "L {n}", "R {n}", "SE {n}", "IM {n}", "1.5T")

# Head-frame radii (1.0 = outer edge of the skull), shared by the tissue layers and lesions.
BRAIN_EDGE = 0.82
SKULL_INNER = 0.87

# Independent random streams per class: one per image, one for choosing the marked images.
_IMAGE_STREAM = 1
_MARK_STREAM = 2


@dataclass(frozen=True)
class _Lesion:
    """Where a lesion was drawn, in pixels; ``box`` is (col_min, row_min, col_max, row_max)."""

    cx: float
    cy: float
    radius: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class _Head:
    cx: float
    cy: float
    a: float  # semi-axis across (pixels)
    b: float  # semi-axis along (pixels)
    angle: float  # radians

    def to_pixels(self, u: float, v: float) -> tuple[float, float]:
        """Head-frame (u, v) in units of the semi-axes to image (x, y)."""
        dx, dy = u * self.a, v * self.b
        c, s = math.cos(self.angle), math.sin(self.angle)
        return self.cx + dx * c - dy * s, self.cy + dx * s + dy * c


def _generator(seed: int, label: str, stream: int, index: int = 0) -> np.random.Generator:
    # The stream id comes last and is never 0: numpy pads short seeds with zeros, so a
    # trailing 0 could make two different seeds collide.
    return np.random.default_rng([seed, DEMO_CLASSES.index(label), index, stream])


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Zero-mean, roughly unit-variance noise with features about size/cells pixels wide."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _head_radius(head: _Head, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    c, s = math.cos(head.angle), math.sin(head.angle)
    dx, dy = xs - head.cx, ys - head.cy
    u = (dx * c + dy * s) / head.a
    v = (-dx * s + dy * c) / head.b
    return np.sqrt(u * u + v * v)


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _draw_glioma(rng, image, xs, ys, head: _Head, brain_level, size, tissue) -> _Lesion:
    radius = size * rng.uniform(0.08, 0.12)
    reach = 1.15 * radius / min(head.a, head.b)  # lesion extent in head-frame units
    while True:  # rejection-sample a centre in one hemisphere, well inside the brain
        u = rng.choice((-1.0, 1.0)) * rng.uniform(0.15, 0.5)
        v = rng.uniform(-0.5, 0.3)
        if math.hypot(u, v) + reach < 0.66:
            break
    cx, cy = head.to_pixels(u, v)
    # Irregular outline: a circle whose radius wobbles with a few low harmonics.
    phi = np.arctan2(ys - cy, xs - cx)
    wobble = np.ones_like(phi)
    for harmonic in (2, 3, 5):
        wobble += rng.uniform(0.04, 0.13) * np.cos(harmonic * phi + rng.uniform(0, 2 * np.pi))
    d = np.hypot(xs - cx, ys - cy) / (radius * wobble)
    # Mass effect: the tumor pushes the ventricle away, so under it lies plain tissue.
    displaced = 1.0 - _smoothstep(1.1, 1.5, d)
    image[:] = image * (1.0 - displaced) + tissue * displaced
    core = rng.uniform(0.4, 0.6)
    rim = _smoothstep(core - 0.15, core + 0.1, d) * (1.0 - _smoothstep(0.85, 1.1, d))
    necrosis = 1.0 - _smoothstep(core - 0.15, core + 0.1, d)
    edema = _smoothstep(0.95, 1.15, d) * (1.0 - _smoothstep(1.35, 1.9, d))
    image += (
        rng.uniform(0.3, 0.4) * rim
        - rng.uniform(0.08, 0.15) * necrosis
        - rng.uniform(0.06, 0.1) * edema
    ) * brain_level / 0.4
    return _Lesion(cx, cy, radius, _mask_box(d <= 1.0))


def _draw_meningioma(rng, image, xs, ys, head: _Head, r_head, brain_level, size) -> _Lesion:
    radius = size * rng.uniform(0.045, 0.065)
    # Any place on the convexity except the bottom, which belongs to the skull base/sella.
    psi = rng.uniform(math.radians(135), math.radians(405))
    ex, ey = head.to_pixels(SKULL_INNER * math.cos(psi), SKULL_INNER * math.sin(psi))
    inward = np.array([head.cx - ex, head.cy - ey])
    inward /= np.linalg.norm(inward)
    cx, cy = ex + inward[0] * 0.75 * radius, ey + inward[1] * 0.75 * radius
    # Extra-axial: a dome that fills the CSF gap and stops at the skull.
    dome = 1.0 - _smoothstep(radius - 0.7, radius + 0.7, np.hypot(xs - cx, ys - cy))
    dome *= 1.0 - _smoothstep(SKULL_INNER - 0.01, SKULL_INNER + 0.01, r_head)
    level = brain_level * (1.0 + rng.uniform(0.4, 0.55))
    image[:] = image * (1.0 - dome) + (level + 0.01 * rng.standard_normal(image.shape)) * dome
    return _Lesion(cx, cy, radius, _mask_box(dome >= 0.5))


def _draw_pituitary(rng, image, xs, ys, head: _Head, brain_level, size) -> _Lesion:
    radius = size * rng.uniform(0.035, 0.055)
    cx, cy = head.to_pixels(rng.uniform(-0.03, 0.03), rng.uniform(0.36, 0.46))
    wide = rng.uniform(1.0, 1.3)  # pituitary adenomas are often a bit wider than tall
    d = np.hypot((xs - cx) / wide, ys - cy)
    blob = 1.0 - _smoothstep(radius - 1.0, radius + 1.0, d)
    level = brain_level * (1.0 + rng.uniform(0.7, 0.9))
    image[:] = image * (1.0 - blob) + level * blob
    return _Lesion(cx, cy, radius, _mask_box(blob >= 0.5))


def _render(label: str, index: int, seed: int, size: int) -> tuple[np.ndarray, _Lesion | None, str]:
    """One slice as uint8 without the mark, its lesion, and the mark text it would carry.

    Everything comes from one generator seeded by (seed, class, index), so each image can be
    remade on its own and does not depend on per_class or on whether it is marked.
    """
    rng = _generator(seed, label, _IMAGE_STREAM, index)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    a = size * rng.uniform(0.31, 0.37)
    head = _Head(
        cx=size * (0.5 + rng.uniform(-0.025, 0.025)),
        cy=size * (0.52 + rng.uniform(-0.02, 0.02)),
        a=a,
        b=a * rng.uniform(1.08, 1.2),
        angle=math.radians(rng.uniform(-10, 10)),
    )
    r = _head_radius(head, xs, ys)
    edge = 1.2 / head.a  # about one pixel in head-frame units, for soft tissue boundaries

    # Tissue layers from the outside in: background, bright skull/scalp, CSF gap, brain.
    brain_level = rng.uniform(0.36, 0.44)
    image = np.full((size, size), 0.02, dtype=np.float32)
    head_mask = 1.0 - _smoothstep(1.0 - edge, 1.0 + edge, r)
    skull_level = rng.uniform(0.7, 0.85) + 0.05 * _smooth_noise(rng, size, 10)
    image += head_mask * (skull_level - 0.02)
    gap = 1.0 - _smoothstep(SKULL_INNER - edge, SKULL_INNER + edge, r)
    image += gap * (0.14 - skull_level)
    brain = 1.0 - _smoothstep(BRAIN_EDGE - edge, BRAIN_EDGE + edge, r)
    # Grey/white matter: a slightly brighter, noisy-edged core plus low-frequency texture.
    white = _smoothstep(0.7, 0.55, r + 0.08 * _smooth_noise(rng, size, 6))
    texture = 0.035 * _smooth_noise(rng, size, 5) + 0.02 * _smooth_noise(rng, size, 14)
    image += brain * (brain_level - 0.14 + 0.05 * white + texture)

    # Lateral ventricles: two dark, tilted ellipses either side of the midline.
    ventricle_level = rng.uniform(0.12, 0.18)
    spread, length = rng.uniform(0.08, 0.12), rng.uniform(0.16, 0.24)
    tissue = image.copy()
    for side in (-1.0, 1.0):
        vx, vy = head.to_pixels(side * spread, rng.uniform(-0.12, -0.04))
        tilt = head.angle + side * math.radians(rng.uniform(10, 25))
        c, s = math.cos(tilt), math.sin(tilt)
        du, dv = (xs - vx) * c + (ys - vy) * s, -(xs - vx) * s + (ys - vy) * c
        q = (du / (0.055 * head.a)) ** 2 + (dv / (length * head.b)) ** 2
        ventricle = 1.0 - _smoothstep(0.8, 1.2, q)
        image = image * (1.0 - ventricle) + ventricle_level * ventricle

    lesion = None
    if label == "glioma":
        lesion = _draw_glioma(rng, image, xs, ys, head, brain_level, size, tissue)
    elif label == "meningioma":
        lesion = _draw_meningioma(rng, image, xs, ys, head, r, brain_level, size)
    elif label == "pituitary":
        lesion = _draw_pituitary(rng, image, xs, ys, head, brain_level, size)

    # Acquisition: smooth intensity bias, global contrast/brightness, blur, then noise.
    image *= 1.0 + 0.08 * _smooth_noise(rng, size, 3)
    image = image * rng.uniform(0.85, 1.15) + rng.uniform(-0.02, 0.03)
    sigma = rng.uniform(0.6, 1.0) * size / 128
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    image += rng.uniform(0.008, 0.025) * rng.standard_normal(image.shape).astype(np.float32)
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return pixels, lesion, _mark_text(rng)


def _mark_text(rng: np.random.Generator) -> str:
    return MARK_TEXTS[int(rng.integers(len(MARK_TEXTS)))].format(n=int(rng.integers(1, 40)))


def _burn_mark(pixels: np.ndarray, text: str) -> None:
    """Scanner-style overlay: small white text, drawn after blur and noise so it stays sharp."""
    size = pixels.shape[0]
    scale = 0.3 * size / 128
    thickness = max(1, round(size / 256))
    origin = (max(1, round(size * 0.015)), round(size * 0.075))
    cv2.putText(pixels, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)


def _marked_indices(seed: int, label: str, per_class: int, rate: float) -> set[int]:
    """Exactly round(rate * per_class) marked images per class, spread at random."""
    rng = _generator(seed, label, _MARK_STREAM)
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
            pixels, lesion, text = _render(label, index, seed, image_size)
            has_mark = index in marked
            if has_mark:
                _burn_mark(pixels, text)
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
