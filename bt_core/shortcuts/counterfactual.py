"""Counterfactual probes: keep an image's anatomy, give it another source, watch the decision.

A model that follows the anatomy keeps its answer when only the source changes (background,
border band, intensity style); a model that follows the source takes the donor's class. Each
probe changes images of one class and counts how often the decision moves, against a control
that makes the same kind of change within the class.

``predict`` follows :mod:`bt_core.shortcuts.probes`: any callable ``uint8 (N, S, S, 3) ->
probabilities (N, C)``, always called through :func:`~bt_core.shortcuts.probes.predict_proba`
on chunks of ``batch_size`` images. The tables pool every changed image of all their probes,
so ``predict`` sees ``ceil(images / batch_size)`` calls in all, never one per probe.

Image changes (fills chosen so the fill is no cue):

- :func:`swap_outside_head`: the recipient's head pixels are kept bit for bit; every pixel
  outside it (background and border band) is the donor's pixel, except where the donor's own
  head lies: there it is the donor's per-channel median background (its pixels outside its
  head; 0 when the donor has none), so the donor's anatomy never leaks in.
- :func:`match_style`: inside each image's head, grey level ``g`` becomes the reference level
  at ``g``'s quantile (mid-rank) in this head, the reference being the pooled grey histogram
  of the reference images' heads (quantile mapping with ``np.interp``). The grey levels' map
  is applied to each channel value alike (exact for grey MRI, R = G = B). Outside the head
  nothing changes. Noise level and sharpness are not matched.
- :func:`blank_border`: the border band (:func:`bt_core.regions.border_band`) set to 0 or
  inpainted (OpenCV Telea, radius :data:`INPAINT_RADIUS`) from its inside neighbourhood. Given
  head masks, the band's pixels inside the head are kept (cropped heads reach the frame).

Drawing (seeded, deterministic): only images with a head found (a mask with pixels inside and
outside; ``usable_head_masks`` makes a failed mask all head) take part; the others are counted
in ``excluded``. Of class r, up to ``per_class`` recipients are drawn once (seed
``[seed, 0, r]``) and used by every probe of r, so its rows compare the same images. Donors of
pair (r, d) are drawn with seed ``[seed, 1, r, d]``, with replacement only when class d has
fewer images than recipients; the control's donor is another image of r, never the recipient.

Rows of every table (flat columns: :data:`COLUMNS`):

- ``probe``: ``source_swap`` (outside of the head from a donor of another class) and its
  ``source_swap_control`` (donor of the same class); ``style_match`` (tumor images in the
  no-tumor class's style) and ``style_match_control`` (their own class's style);
  ``border_black`` / ``border_inpaint`` (every class); ``style_border_black`` /
  ``style_border_inpaint`` (no-tumor style and blank border) and their ``..._control`` (own
  style and blank border).
- ``recipient_class``; ``donor_class``: the class whose source is brought in (the recipient's
  own for a control, ``""`` for the border probes).
- ``n``: changed images predicted; ``excluded``: images of the class without a head found.
- ``n_not_donor``, ``flipped_to_donor``, ``flip_to_donor``: recipients whose original was not
  predicted as the donor class, how many of them the changed image is, and the share (NaN for
  controls and border probes).
- ``n_changed``, ``changed``: predicted class different from the original's.
- ``n_correct``, ``n_left_true``, ``left_true``: originals predicted right, and the share of
  them predicted as any other class after the change (a control's "flip to any other class").
- ``true_prob_drop``: mean of P(true class) on the original minus on the changed image.
- ``measure``: the row's main measure, ``flip_to_donor`` or ``changed``; ``value``: its value;
  ``ci_low`` / ``ci_high``: its Wilson 95 % interval from the counts; ``chance``: its value
  for a blind uniform guess on the changed image (1 / C for a flip, (C - 1) / C for a change).
- ``control``: the control row's ``changed`` (NaN for controls and border probes, which have
  none); ``excess``: ``max(0, value - control)``.
- ``note``: why a row has ``n = 0`` (a class with no images never raises), else ``""``.

:func:`source_following_share` turns the swap rows into one severity with a meaning (its
docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from bt_core.data.classes import negative_class_index
from bt_core.regions import border_band, check_images, check_labels, to_gray, usable_head_masks
from bt_core.shortcuts.probes import DEFAULT_BATCH, Predict, predict_proba

# Border band of the border probes, as in the source probe (bt_core.shortcuts.source_probe).
BORDER_WIDTH = 0.1
# Recipients per class: at 50 a flip rate's Wilson 95 % interval is at most +-0.14 wide.
PER_CLASS = 50
# Telea's neighbourhood in pixels: small, so the fill comes from right inside the band.
INPAINT_RADIUS = 3
# Two-sided 95 % normal quantile of the Wilson intervals.
Z_95 = 1.959963984540054
BORDER_METHODS = ("black", "inpaint")

COLUMNS = (
    "probe", "recipient_class", "donor_class", "n", "excluded",
    "n_not_donor", "flipped_to_donor", "flip_to_donor", "n_changed", "changed",
    "n_correct", "n_left_true", "left_true", "true_prob_drop",
    "measure", "value", "ci_low", "ci_high", "chance", "control", "excess", "note",
)
SWAP_PROBES = ("source_swap",)


# --------------------------------------------------------------------------- image changes


def _masks(masks: np.ndarray | None, images: np.ndarray, name: str) -> np.ndarray:
    """Bool ``(N, H, W)`` masks of ``images``; None gives their usable head masks."""
    if masks is None:
        return usable_head_masks(images)[0]
    masks = np.asarray(masks)
    if masks.shape != images.shape[:3]:
        raise ValueError(f"{name} must be (N, H, W) = {images.shape[:3]}, got {masks.shape}")
    return masks.astype(bool)


def background_medians(images: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 3)``: each image's per-channel median outside its head (0 when all head)."""
    images = check_images(images)
    heads = _masks(heads, images, "heads")
    medians = np.zeros((len(images), 3), np.uint8)
    for i, (image, head) in enumerate(zip(images, heads)):
        outside = image[~head]
        if len(outside):
            medians[i] = np.round(np.median(outside, axis=0)).astype(np.uint8)
    return medians


def swap_outside_head(
    recipients: np.ndarray,
    recipient_heads: np.ndarray,
    donors: np.ndarray,
    donor_heads: np.ndarray,
) -> np.ndarray:
    """Each recipient's head on its donor's outside (rule in the module docstring).

    All four arrays pair up by position: images uint8 ``(N, H, W, 3)`` of one shape, heads
    bool ``(N, H, W)``. Returns new uint8 images.
    """
    recipients, donors = check_images(recipients), check_images(donors)
    if donors.shape != recipients.shape:
        raise ValueError(f"donors must have the recipients' shape {recipients.shape}, got {donors.shape}")
    recipient_heads = _masks(recipient_heads, recipients, "recipient_heads")
    donor_heads = _masks(donor_heads, donors, "donor_heads")
    fills = background_medians(donors, donor_heads)
    outside = np.where(donor_heads[..., None], fills[:, None, None, :], donors)
    return np.where(recipient_heads[..., None], recipients, outside)


@dataclass(frozen=True)
class _Quantiles:
    """The grey levels present in a histogram and their mid-rank quantiles (increasing)."""

    levels: np.ndarray
    quantiles: np.ndarray


def _quantiles(counts: np.ndarray) -> _Quantiles:
    cdf = np.cumsum(counts) / counts.sum()
    mid = cdf - counts / (2.0 * counts.sum())
    present = counts > 0
    return _Quantiles(np.flatnonzero(present).astype(np.float64), mid[present])


def _head_histogram(image: np.ndarray, head: np.ndarray) -> np.ndarray:
    return np.bincount(to_gray(image)[head], minlength=256)


def pooled_style(images: np.ndarray, heads: np.ndarray) -> _Quantiles:
    """The grey-level quantiles of all ``images``' head pixels pooled; ValueError if none."""
    images = check_images(images)
    heads = _masks(heads, images, "reference_heads")
    counts = sum(_head_histogram(image, head) for image, head in zip(images, heads))
    if counts.sum() == 0:
        raise ValueError("reference_heads hold no head pixel to take a style from")
    return _quantiles(counts)


def _match(images: np.ndarray, heads: np.ndarray, style: _Quantiles) -> np.ndarray:
    out = images.copy()
    levels = np.arange(256, dtype=np.float64)
    for i, (image, head) in enumerate(zip(images, heads)):
        if not head.any():
            continue
        own = _quantiles(_head_histogram(image, head))
        # Every value 0..255 gets a quantile, so a channel value that is no grey level maps too.
        lut = np.interp(np.interp(levels, own.levels, own.quantiles), style.quantiles, style.levels)
        out[i][head] = np.round(lut).astype(np.uint8)[image[head]]
    return out


def match_style(
    images: np.ndarray,
    heads: np.ndarray,
    reference_images: np.ndarray,
    reference_heads: np.ndarray,
) -> np.ndarray:
    """``images`` with each head's grey histogram mapped onto the reference heads' pooled one.

    Quantile mapping (module docstring); pixels outside ``heads`` are unchanged, and an image
    with an empty head mask is returned as it is.
    """
    images = check_images(images)
    heads = _masks(heads, images, "heads")
    return _match(images, heads, pooled_style(reference_images, reference_heads))


def blank_border(
    images: np.ndarray,
    width: float = BORDER_WIDTH,
    method: str = "black",
    heads: np.ndarray | None = None,
) -> np.ndarray:
    """``images`` with the border band of relative ``width`` set to 0 (``"black"``) or
    inpainted from inside (``"inpaint"``, Telea). ``heads``: band pixels inside them are kept."""
    images = check_images(images)
    if method not in BORDER_METHODS:
        raise ValueError(f"method must be one of {BORDER_METHODS}, got {method!r}")
    band = np.broadcast_to(border_band(images.shape[1:3], width), images.shape[:3])
    if heads is not None:
        band = band & ~_masks(heads, images, "heads")
    if method == "black":
        return np.where(band[..., None], np.uint8(0), images)
    out = images.copy()
    for i in np.flatnonzero(band.any(axis=(1, 2))):
        mask = band[i].astype(np.uint8)
        out[i] = cv2.inpaint(np.ascontiguousarray(images[i]), mask, INPAINT_RADIUS, cv2.INPAINT_TELEA)
    return out


# --------------------------------------------------------------------------- predicting


class _Batcher:
    """Collects the images of many probes and predicts them in full chunks as they fill, so
    ``predict`` is called ``ceil(total / batch_size)`` times in all."""

    def __init__(self, predict: Predict, batch_size: int, n_classes: int) -> None:
        self.predict, self.batch_size, self.n_classes = predict, batch_size, n_classes
        self.pending: list[np.ndarray] = []
        self.done: list[np.ndarray] = []
        self.total = 0

    def add(self, images: np.ndarray) -> slice:
        start, self.total = self.total, self.total + len(images)
        if len(images):
            self.pending.append(images)
            if sum(len(part) for part in self.pending) >= self.batch_size:
                self._flush(full_only=True)
        return slice(start, self.total)

    def _flush(self, full_only: bool) -> None:
        if not self.pending:
            return
        batch = np.concatenate(self.pending)
        ready = len(batch) // self.batch_size * self.batch_size if full_only else len(batch)
        if ready:
            proba = predict_proba(self.predict, batch[:ready], self.batch_size)
            if proba.shape[1] != self.n_classes:
                raise ValueError(f"predict returned {proba.shape[1]} columns for {self.n_classes} classes")
            self.done.append(proba)
        rest = batch[ready:]
        self.pending = [rest] if len(rest) else []

    def finish(self) -> np.ndarray:
        self._flush(full_only=False)
        return np.concatenate(self.done) if self.done else np.zeros((0, self.n_classes))


# --------------------------------------------------------------------------- rows


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial share; (NaN, NaN) for no trials."""
    if trials <= 0:
        return math.nan, math.nan
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class _Variant:
    probe: str
    recipient: int
    donor: int | None  # the class whose source is brought in; None for the border probes
    measure: str
    positions: np.ndarray  # the recipients' image indices
    rows: slice  # their changed images' rows in the batcher
    control: str | None  # probe whose row of the same recipient class is the control
    note: str


def _share(count: int, total: int) -> float:
    return count / total if total else math.nan


def _row(variant: _Variant, class_names: Sequence[str], labels: np.ndarray,
         original: np.ndarray, changed_proba: np.ndarray, excluded: int) -> dict:
    n, n_classes = len(variant.positions), len(class_names)
    true = labels[variant.positions]
    before, after = original.argmax(axis=1), changed_proba.argmax(axis=1)
    is_flip = variant.measure == "flip_to_donor"
    not_donor = (before != variant.donor) if is_flip else np.zeros(n, bool)
    flipped = int((not_donor & (after == variant.donor)).sum())
    moved = int((after != before).sum())
    correct = before == true
    left = int((correct & (after != true)).sum())
    picks = np.arange(n)
    row = {
        "probe": variant.probe,
        "recipient_class": str(class_names[variant.recipient]),
        "donor_class": "" if variant.donor is None else str(class_names[variant.donor]),
        "n": n,
        "excluded": excluded,
        "n_not_donor": int(not_donor.sum()),
        "flipped_to_donor": flipped,
        "flip_to_donor": _share(flipped, int(not_donor.sum())) if is_flip else math.nan,
        "n_changed": moved,
        "changed": _share(moved, n),
        "n_correct": int(correct.sum()),
        "n_left_true": left,
        "left_true": _share(left, int(correct.sum())),
        "true_prob_drop": float((original[picks, true] - changed_proba[picks, true]).mean()) if n else math.nan,
        "measure": variant.measure,
        "chance": 1 / n_classes if is_flip else (n_classes - 1) / n_classes,
        "control": math.nan,
        "excess": math.nan,
        "note": variant.note,
    }
    successes, trials = (flipped, row["n_not_donor"]) if is_flip else (moved, n)
    row["value"] = row["flip_to_donor"] if is_flip else row["changed"]
    row["ci_low"], row["ci_high"] = wilson_interval(successes, trials)
    return row


class _Probes:
    """One model's counterfactual probes on one image set: recipients drawn once per class,
    originals predicted once, every changed image predicted through one batcher."""

    def __init__(self, predict: Predict, images: np.ndarray, labels: Sequence[int] | np.ndarray,
                 heads: np.ndarray | None, class_names: Sequence[str], per_class: int, seed: int,
                 batch_size: int, original_proba: np.ndarray | None) -> None:
        self.images = check_images(images)
        self.class_names = [str(name) for name in class_names]
        if len(self.class_names) < 2:
            raise ValueError(f"counterfactual probes need at least 2 classes, got {self.class_names}")
        self.labels = check_labels(labels, len(self.images), len(self.class_names))
        self.heads = _masks(heads, self.images, "heads")
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.seed = int(seed)
        n_classes = len(self.class_names)
        covered = self.heads.reshape(len(self.images), -1).mean(axis=1)
        found = (covered > 0) & (covered < 1)
        self.members = [np.flatnonzero((self.labels == c) & found) for c in range(n_classes)]
        self.excluded = [int(((self.labels == c) & ~found).sum()) for c in range(n_classes)]
        # Recipients as positions within members, so a control can skip the recipient itself.
        self.picks = []
        for c, members in enumerate(self.members):
            rng = np.random.default_rng([self.seed, 0, c])
            self.picks.append(rng.choice(len(members), size=min(per_class, len(members)), replace=False))
        self.batcher = _Batcher(predict, batch_size, n_classes)
        self.variants: list[_Variant] = []
        self.original_positions = np.unique(np.concatenate([self.recipients(c) for c in range(n_classes)]))
        self.original_rows: slice | None = None  # batched with the first probe
        self.original_proba = None
        if original_proba is not None:
            original_proba = np.asarray(original_proba, dtype=np.float64)
            if original_proba.shape != (len(self.images), n_classes) or not np.isfinite(original_proba).all():
                raise ValueError(
                    f"original_proba must be finite (N, C) = {(len(self.images), n_classes)}, "
                    f"got shape {original_proba.shape}"
                )
            self.original_proba = original_proba

    @property
    def negative(self) -> int | None:
        return negative_class_index(self.class_names)

    def recipients(self, c: int) -> np.ndarray:
        return self.members[c][self.picks[c]]

    def empty_note(self, c: int, role: str) -> str:
        return f"no images of class {self.class_names[c]} with a head found {role}"

    def add(self, probe: str, recipient: int, donor: int | None, measure: str, changed: np.ndarray | None,
            control: str | None = None, note: str = "") -> None:
        """One probe row; ``changed`` None (or empty) gives a row with n = 0 and ``note``."""
        if self.original_proba is None and self.original_rows is None:
            self.original_rows = self.batcher.add(self.images[self.original_positions])
        positions = self.recipients(recipient) if changed is not None else np.zeros(0, np.int64)
        if not len(positions):
            note = note or self.empty_note(recipient, "to change")
        rows = self.batcher.add(changed if changed is not None else self.images[:0])
        self.variants.append(_Variant(probe, recipient, donor, measure, positions, rows, control, note))

    # ------------------------------------------------------------------- probe families

    def pairs(self, all_pairs: bool) -> list[tuple[int, int]]:
        n, negative = len(self.class_names), self.negative
        if all_pairs or negative is None:
            return [(r, d) for r in range(n) for d in range(n) if r != d]
        return [(r, negative) for r in range(n) if r != negative] + [(negative, d) for d in range(n) if d != negative]

    def add_source_swaps(self, all_pairs: bool) -> None:
        pairs = self.pairs(all_pairs)
        for r, d in pairs:
            recipients, donors_pool = self.recipients(r), self.members[d]
            if not len(recipients) or not len(donors_pool):
                role = "to take a background from" if len(recipients) else "to change"
                self.add("source_swap", r, d, "flip_to_donor", None, "source_swap_control",
                         self.empty_note(d if len(recipients) else r, role))
                continue
            rng = np.random.default_rng([self.seed, 1, r, d])
            donors = rng.choice(donors_pool, size=len(recipients), replace=len(donors_pool) < len(recipients))
            self.add("source_swap", r, d, "flip_to_donor", self.swap(recipients, donors), "source_swap_control")
        for r in sorted({r for r, _ in pairs}):
            picks, members = self.picks[r], self.members[r]
            if len(members) < 2:
                note = (f"the control needs 2 images of class {self.class_names[r]} with a head found, "
                        f"got {len(members)}")
                self.add("source_swap_control", r, r, "changed", None, note=note)
                continue
            rng = np.random.default_rng([self.seed, 1, r, r])
            others = rng.integers(0, len(members) - 1, size=len(picks))
            donors = members[others + (others >= picks)]  # another image of r, never the recipient
            self.add("source_swap_control", r, r, "changed", self.swap(members[picks], donors))

    def swap(self, recipients: np.ndarray, donors: np.ndarray) -> np.ndarray:
        images, heads = self.images, self.heads
        return swap_outside_head(images[recipients], heads[recipients], images[donors], heads[donors])

    def add_styles(self, width: float) -> None:
        negative = self.negative
        if negative is None:
            return
        styles = [pooled_style(self.images[m], self.heads[m]) if len(m) else None for m in self.members]
        no_style = "" if styles[negative] is not None else self.empty_note(negative, "to take a style from")
        for r in range(len(self.class_names)):
            if r == negative:
                continue
            recipients = self.recipients(r)
            images, heads = self.images[recipients], self.heads[recipients]
            # (probe suffix, style's class, measure, note when no image can be changed)
            for suffix, style_class, measure, note in (("", negative, "flip_to_donor", no_style),
                                                       ("_control", r, "changed", "")):
                style = styles[style_class]
                result = _match(images, heads, style) if len(recipients) and style is not None else None
                note = "" if result is not None or not len(recipients) else note
                control = None if suffix else "style_match_control"
                self.add(f"style_match{suffix}", r, style_class, measure, result, control, note)
                for method in BORDER_METHODS:
                    blanked = None if result is None else blank_border(result, width, method, heads)
                    control = None if suffix else f"style_border_{method}_control"
                    self.add(f"style_border_{method}{suffix}", r, style_class, measure, blanked, control, note)

    def check_width(self, width: float) -> None:
        """Refuse a bad border width before any work, even when no class has images."""
        border_band(self.images.shape[1:3], width)

    def add_borders(self, width: float) -> None:
        for r in range(len(self.class_names)):
            recipients = self.recipients(r)
            images, heads = self.images[recipients], self.heads[recipients]
            for method in BORDER_METHODS:
                blanked = blank_border(images, width, method, heads) if len(recipients) else None
                self.add(f"border_{method}", r, None, "changed", blanked)

    def table(self) -> pd.DataFrame:
        proba = self.batcher.finish()
        if self.original_proba is None:
            original = np.zeros((len(self.images), len(self.class_names)))
            if self.original_rows is not None:
                original[self.original_positions] = proba[self.original_rows]
        else:
            original = self.original_proba
        rows = [_row(v, self.class_names, self.labels, original[v.positions], proba[v.rows], self.excluded[v.recipient])
                for v in self.variants]
        changed = {(row["probe"], row["recipient_class"]): row["changed"] for row in rows}
        for variant, row in zip(self.variants, rows):
            if variant.control is not None:
                row["control"] = changed.get((variant.control, row["recipient_class"]), math.nan)
                if np.isfinite(row["control"]) and np.isfinite(row["value"]):
                    row["excess"] = max(0.0, row["value"] - row["control"])
        return pd.DataFrame(rows, columns=list(COLUMNS))


# --------------------------------------------------------------------------- tables


def source_swap_table(
    predict: Predict,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    heads: np.ndarray | None,
    class_names: Sequence[str],
    *,
    all_pairs: bool = False,
    per_class: int = PER_CLASS,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
    original_proba: np.ndarray | None = None,
) -> pd.DataFrame:
    """Source swaps: class r's heads on class d's outside, per ordered pair r != d, plus one
    ``source_swap_control`` row per recipient class (donor of the same class).

    Pairs: every pair with the no-tumor class on either side (``negative_class_index``);
    every ordered pair when there is no such class or ``all_pairs``. ``heads``: usable head
    masks ``(N, H, W)`` (None: found here). ``original_proba``: the model's ``(N, C)``
    probabilities of ``images`` when already known (not predicted again). Columns and
    drawing: module docstring.
    """
    probes = _Probes(predict, images, labels, heads, class_names, per_class, seed, batch_size, original_proba)
    probes.add_source_swaps(all_pairs)
    return probes.table()


def style_table(
    predict: Predict,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    heads: np.ndarray | None,
    class_names: Sequence[str],
    *,
    per_class: int = PER_CLASS,
    border_width: float = BORDER_WIDTH,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
    original_proba: np.ndarray | None = None,
) -> pd.DataFrame:
    """Tumor images (every class but no-tumor) in the no-tumor class's style, alone and with
    the border blanked (black, inpaint), each against the same change in their own class's
    style. Flips count towards the no-tumor class. Empty (with :data:`COLUMNS`) without a
    no-tumor class. Arguments as :func:`source_swap_table`."""
    probes = _Probes(predict, images, labels, heads, class_names, per_class, seed, batch_size, original_proba)
    probes.check_width(border_width)
    probes.add_styles(border_width)
    return probes.table()


def border_table(
    predict: Predict,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    heads: np.ndarray | None,
    class_names: Sequence[str],
    *,
    per_class: int = PER_CLASS,
    border_width: float = BORDER_WIDTH,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
    original_proba: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every class with its border band blanked outside the head (black, inpaint): how often
    the decision changes. Arguments as :func:`source_swap_table`."""
    probes = _Probes(predict, images, labels, heads, class_names, per_class, seed, batch_size, original_proba)
    probes.check_width(border_width)
    probes.add_borders(border_width)
    return probes.table()


def counterfactual_table(
    predict: Predict,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    heads: np.ndarray | None,
    class_names: Sequence[str],
    *,
    all_pairs: bool = False,
    per_class: int = PER_CLASS,
    border_width: float = BORDER_WIDTH,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
    original_proba: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every counterfactual probe of one model in one flat table (:data:`COLUMNS`): source
    swaps and controls, style match and controls, border blank, style + border and controls.

    The rows are those of :func:`source_swap_table`, :func:`style_table` and
    :func:`border_table` with the same arguments (same recipients), but the originals are
    predicted once and every image of every probe goes through one batcher. Strings, ints and
    floats only: ``to_csv`` stores it and ``read_csv`` gives it back.
    """
    probes = _Probes(predict, images, labels, heads, class_names, per_class, seed, batch_size, original_proba)
    probes.check_width(border_width)
    probes.add_source_swaps(all_pairs)
    probes.add_styles(border_width)
    probes.add_borders(border_width)
    return probes.table()


# --------------------------------------------------------------------------- severity


def source_following_share(
    table: pd.DataFrame,
    class_counts: Mapping[str, int] | pd.Series,
    probes: Sequence[str] = SWAP_PROBES,
) -> dict[str, float | str]:
    """Expected share of the model's decisions that follow the source rather than the anatomy.

    For each class r: ``part_r = max over donors d of excess(r -> d)``, where ``excess =
    max(0, flip_to_donor(r -> d) - control_changed(r))``: the share of r's images whose
    decision goes to the donor's class when only the outside of the head changes, beyond how
    often any change of outside moves it. ``severity = sum_r w_r part_r`` with ``w_r`` the
    class's share of ``class_counts`` (its test-set count). A class without a measured row
    (no pair, n = 0, no control) counts 0 and is left out of ``covered_share``: the severity is
    then a lower bound. ``probes``: the probes whose ``flip_to_donor`` rows count
    (``("source_swap", "style_match")`` to count style as source too).

    Interval: each part's is the Wilson 95 % interval of its driving pair's flip rate minus
    the control's point value, clipped at 0; the severity's sums the parts' bounds weighted
    (wider than a joint interval; ignores the control's own noise and that the driving pair
    is the largest of several).

    Returns a flat, JSON-ready dict: ``severity``, ``ci_low``, ``ci_high``, ``covered_share``,
    ``driving_pair`` (``"recipient -> donor"``, ``""`` when nothing follows the source),
    ``probes``, ``interval``, and per class ``part.<class>``, ``weight.<class>``,
    ``pair.<class>``, ``probe.<class>`` (the probe of that pair), ``flip_to_donor.<class>``,
    ``control.<class>``, ``ci_low.<class>``, ``ci_high.<class>``.
    """
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"table lacks the counterfactual columns {missing}")
    counts = {str(name): float(count) for name, count in dict(class_counts).items()}
    total = sum(counts.values())
    if total <= 0 or any(count < 0 for count in counts.values()):
        raise ValueError(f"class_counts must be non-negative with a positive sum, got {counts}")
    rows = table[table["probe"].isin(list(probes)) & (table["measure"] == "flip_to_donor")]
    unknown = sorted(set(rows["recipient_class"].astype(str)) - set(counts))
    if unknown:
        raise ValueError(f"class_counts has no count for the table's classes {unknown}")
    result: dict[str, float | str] = {}
    severity = low = high = covered = 0.0
    driver, driver_share = "", 0.0
    for name, count in counts.items():
        weight = count / total
        measured = rows[(rows["recipient_class"].astype(str) == name) & np.isfinite(rows["excess"].astype(float))]
        part = part_low = part_high = flip = control = math.nan
        pair = probe = ""
        if len(measured):
            best = measured.loc[measured["excess"].astype(float).idxmax()]
            part, flip, control = float(best["excess"]), float(best["flip_to_donor"]), float(best["control"])
            part_low = max(0.0, float(best["ci_low"]) - control)
            part_high = max(0.0, float(best["ci_high"]) - control)
            pair, probe = f"{name} -> {best['donor_class']}", str(best["probe"])
            severity, covered = severity + weight * part, covered + weight
            low, high = low + weight * part_low, high + weight * part_high
            if weight * part > driver_share:
                driver, driver_share = pair, weight * part
        result.update({
            f"part.{name}": part, f"weight.{name}": weight, f"pair.{name}": pair, f"probe.{name}": probe,
            f"flip_to_donor.{name}": flip, f"control.{name}": control,
            f"ci_low.{name}": part_low, f"ci_high.{name}": part_high,
        })
    return {
        "severity": severity, "ci_low": low, "ci_high": high, "covered_share": covered,
        "driving_pair": driver, "probes": ",".join(probes),
        "interval": "Wilson 95% of the driving pair's flip rate minus its control, weighted sum of the parts' bounds",
        **result,
    }
