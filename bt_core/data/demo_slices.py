"""The synthetic head slices of the demo set: anatomy, lesions, acquisition, the burned-in mark
and the source signatures (a border texture, an intensity curve).

Pure drawing (NumPy and OpenCV); :mod:`bt_core.data.demo` decides which images exist, which
carry the mark or a signature, and writes the dataset. See docs/demo-data.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

DEMO_CLASSES = ("glioma", "meningioma", "notumor", "pituitary")

MARK_TEXTS = ("GE 1.5T", "SIGNA", "L {n}", "R {n}", "SE {n}", "IM {n}", "1.5T")

# Head-frame radii (1.0 = outer edge of the skull), shared by the tissue layers and lesions.
BRAIN_EDGE = 0.82
SKULL_INNER = 0.87

# Independent random streams per class: this one per image, the texture phase another per
# image; demo.py chooses the marked and the signed images from two more.
_IMAGE_STREAM = 1
_TEXTURE_STREAM = 4

# Border texture: stripes of a fixed frequency and direction (a scanner's interference
# pattern), TEXTURE_CYCLES periods across the image side, so a resize keeps it the same.
TEXTURE_CYCLES = 16
TEXTURE_ANGLE_DEG = 30.0
# It stays this far outside the head (share of the image side, at least HEAD_MARGIN_MIN_PX),
# so bt_core.regions.head_mask (5x5 blur, threshold 45) finds the same head with it as
# without: with 2 px (the skull's blur) it grew the head of most 64 px images.
HEAD_MARGIN = 0.04
HEAD_MARGIN_MIN_PX = 4.0


@dataclass(frozen=True)
class Lesion:
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


def class_generator(seed: int, label: str, stream: int, index: int = 0) -> np.random.Generator:
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


def _draw_glioma(rng, image, xs, ys, head: _Head, brain_level, size, tissue) -> Lesion:
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
    return Lesion(cx, cy, radius, _mask_box(d <= 1.0))


def _draw_meningioma(rng, image, xs, ys, head: _Head, r_head, brain_level, size) -> Lesion:
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
    return Lesion(cx, cy, radius, _mask_box(dome >= 0.5))


def _draw_pituitary(rng, image, xs, ys, head: _Head, brain_level, size) -> Lesion:
    radius = size * rng.uniform(0.035, 0.055)
    cx, cy = head.to_pixels(rng.uniform(-0.03, 0.03), rng.uniform(0.36, 0.46))
    wide = rng.uniform(1.0, 1.3)  # pituitary adenomas are often a bit wider than tall
    d = np.hypot((xs - cx) / wide, ys - cy)
    blob = 1.0 - _smoothstep(radius - 1.0, radius + 1.0, d)
    level = brain_level * (1.0 + rng.uniform(0.7, 0.9))
    image[:] = image * (1.0 - blob) + level * blob
    return Lesion(cx, cy, radius, _mask_box(blob >= 0.5))


@dataclass(frozen=True)
class Slice:
    """One rendered slice before any mark or signature, and where a border signature may go."""

    pixels: np.ndarray  # uint8 (size, size)
    lesion: Lesion | None
    mark_text: str
    outside_head: np.ndarray  # bool (size, size): background at least the head margin off the skull


def render_slice(label: str, index: int, seed: int, size: int) -> tuple[np.ndarray, Lesion | None, str]:
    """One slice as uint8 without the mark, its lesion, and the mark text it would carry."""
    picture = render_slice_parts(label, index, seed, size)
    return picture.pixels, picture.lesion, picture.mark_text


def render_slice_parts(label: str, index: int, seed: int, size: int) -> Slice:
    """One slice (:class:`Slice`): pixels without mark or signature, lesion, mark text, background.

    Everything comes from one generator seeded by (seed, class, index), so each image can be
    remade on its own and does not depend on per_class or on whether it is marked or signed.
    """
    rng = class_generator(seed, label, _IMAGE_STREAM, index)
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

    tissue = image.copy()
    image = _add_ventricles(rng, image, xs, ys, head)

    lesion = None
    if label == "glioma":
        lesion = _draw_glioma(rng, image, xs, ys, head, brain_level, size, tissue)
    elif label == "meningioma":
        lesion = _draw_meningioma(rng, image, xs, ys, head, r, brain_level, size)
    elif label == "pituitary":
        lesion = _draw_pituitary(rng, image, xs, ys, head, brain_level, size)

    # The margin is in pixels across the head's shorter axis, so it is at least that wide everywhere.
    outside_head = r > 1.0 + max(HEAD_MARGIN_MIN_PX, HEAD_MARGIN * size) / head.a
    return Slice(_acquire(rng, image, size), lesion, _mark_text(rng), outside_head)


def _add_ventricles(
    rng: np.random.Generator, image: np.ndarray, xs: np.ndarray, ys: np.ndarray, head: _Head
) -> np.ndarray:
    """Lateral ventricles: two dark, tilted ellipses either side of the midline."""
    ventricle_level = rng.uniform(0.12, 0.18)
    spread, length = rng.uniform(0.08, 0.12), rng.uniform(0.16, 0.24)
    for side in (-1.0, 1.0):
        vx, vy = head.to_pixels(side * spread, rng.uniform(-0.12, -0.04))
        tilt = head.angle + side * math.radians(rng.uniform(10, 25))
        c, s = math.cos(tilt), math.sin(tilt)
        du, dv = (xs - vx) * c + (ys - vy) * s, -(xs - vx) * s + (ys - vy) * c
        q = (du / (0.055 * head.a)) ** 2 + (dv / (length * head.b)) ** 2
        ventricle = 1.0 - _smoothstep(0.8, 1.2, q)
        image = image * (1.0 - ventricle) + ventricle_level * ventricle
    return image


def _acquire(rng: np.random.Generator, image: np.ndarray, size: int) -> np.ndarray:
    """Acquisition: smooth intensity bias, global contrast/brightness, blur, then noise; uint8."""
    image *= 1.0 + 0.08 * _smooth_noise(rng, size, 3)
    image = image * rng.uniform(0.85, 1.15) + rng.uniform(-0.02, 0.03)
    sigma = rng.uniform(0.6, 1.0) * size / 128
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)
    image += rng.uniform(0.008, 0.025) * rng.standard_normal(image.shape).astype(np.float32)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _mark_text(rng: np.random.Generator) -> str:
    return MARK_TEXTS[int(rng.integers(len(MARK_TEXTS)))].format(n=int(rng.integers(1, 40)))


def burn_mark(pixels: np.ndarray, text: str) -> None:
    """Scanner-style overlay: small white text, drawn after blur and noise so it stays sharp."""
    size = pixels.shape[0]
    scale = 0.3 * size / 128
    thickness = max(1, round(size / 256))
    origin = (max(1, round(size * 0.015)), round(size * 0.075))
    cv2.putText(pixels, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)


def texture_period(size: int) -> float:
    """Period of the border texture's stripes in pixels at this image size."""
    return size / TEXTURE_CYCLES


def add_border_texture(picture: Slice, seed: int, label: str, index: int, strength: float) -> np.ndarray:
    """The slice's pixels with stripes of peak ``strength`` grey levels added outside the head.

    Fixed frequency and direction for every image (one source, one pattern); the phase comes
    from the image's own stream, so the pattern is a texture, not a fixed set of pixels.
    """
    size = picture.pixels.shape[0]
    phase = class_generator(seed, label, _TEXTURE_STREAM, index).uniform(0.0, 2.0 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    angle = math.radians(TEXTURE_ANGLE_DEG)
    along = xs * math.cos(angle) + ys * math.sin(angle)
    stripes = 0.5 * (1.0 + np.cos(2.0 * math.pi * along / texture_period(size) + phase))
    added = np.where(picture.outside_head, np.rint(strength * stripes), 0.0)
    return np.clip(picture.pixels + added, 0, 255).astype(np.uint8)


def gamma_table(gamma: float) -> np.ndarray:
    """uint8 lookup table of the curve ``255 * (v / 255) ** gamma`` (a scanner's other window)."""
    values = np.arange(256, dtype=np.float64) / 255.0
    return np.clip(np.rint(255.0 * values**gamma), 0, 255).astype(np.uint8)


def shift_intensity(pixels: np.ndarray, gamma: float) -> np.ndarray:
    """The whole slice through the gamma curve: gamma < 1 brightens the mid-tones, > 1 darkens."""
    return gamma_table(gamma)[pixels]
