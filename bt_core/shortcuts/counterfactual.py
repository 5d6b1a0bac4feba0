"""Counterfactual probes: keep an image's anatomy, give it another source, watch the decision.

A model that follows the anatomy keeps its answer when only the source changes (background,
border band, intensity style); a model that follows the source takes the donor's class. Each
probe changes images of one class and counts how often the decision moves, against a control
that makes the same kind of change within the class.

``predict`` follows :mod:`bt_core.shortcuts.probes`: any callable ``uint8 (N, S, S, 3) ->
probabilities (N, C)``, always called through :func:`~bt_core.shortcuts.probes.predict_proba`
on chunks of ``batch_size`` images. The tables pool every changed image of all their probes,
so ``predict`` sees ``ceil(images / batch_size)`` calls in all, never one per probe.

Image changes: :mod:`bt_core.shortcuts.source_changes` (fills chosen so the fill is no cue).

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

:func:`bt_core.shortcuts.severity.source_following_share` turns the rows into one severity with a
meaning (its docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from bt_core.data.classes import negative_class_index
from bt_core.metrics import one_class
from bt_core.regions import border_band, check_images, check_labels
from bt_core.shortcuts.probes import DEFAULT_BATCH, Predict, predict_proba
from bt_core.shortcuts.source_changes import (
    BORDER_METHODS,
    BORDER_WIDTH,
    apply_style,
    blank_border,
    checked_masks,
    pooled_style,
    swap_outside_head,
)

# Recipients per class: at 50 a flip rate's Wilson 95 % interval is at most +-0.14 wide.
PER_CLASS = 50

COLUMNS = (
    "probe", "recipient_class", "donor_class", "n", "excluded",
    "n_not_donor", "flipped_to_donor", "flip_to_donor", "n_changed", "changed",
    "n_correct", "n_left_true", "left_true", "true_prob_drop",
    "measure", "value", "ci_low", "ci_high", "chance", "control", "excess", "note",
)
SWAP_PROBES = ("source_swap",)
# What counterfactual_table can hold: source swaps, style match (+ border), border blank.
KINDS = ("swaps", "styles", "borders")


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


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson 95 % interval of :func:`bt_core.metrics.one_class.wilson_interval`;
    (NaN, NaN) for no trials (a row with n = 0 never raises)."""
    return one_class.wilson_interval(successes, trials) if trials > 0 else (math.nan, math.nan)


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
        self.heads = checked_masks(heads, self.images, "heads")
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
                result = apply_style(images, heads, style) if len(recipients) and style is not None else None
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


def counterfactual_table(
    predict: Predict,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    heads: np.ndarray | None,
    class_names: Sequence[str],
    *,
    kinds: Sequence[str] = KINDS,
    all_pairs: bool = False,
    per_class: int = PER_CLASS,
    border_width: float = BORDER_WIDTH,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
    original_proba: np.ndarray | None = None,
) -> pd.DataFrame:
    """Every counterfactual probe of one model in one flat table (:data:`COLUMNS`); ``kinds``
    (:data:`KINDS`) picks source swaps and controls, style match (alone and with the border
    blanked) and controls, border blank. The same recipients serve every kind, the originals
    are predicted once and every image of every probe goes through one batcher. Strings, ints
    and floats only: ``to_csv`` stores it and ``read_csv`` gives it back.

    Pairs of the swaps: every pair with the no-tumor class on either side
    (``negative_class_index``); every ordered pair when there is no such class or ``all_pairs``.
    ``heads``: usable head masks ``(N, H, W)`` (None: found here). ``original_proba``: the
    model's ``(N, C)`` probabilities of ``images`` when already known (not predicted again).
    Columns and drawing: module docstring.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown probe kinds {unknown}; known: {list(KINDS)}")
    probes = _Probes(predict, images, labels, heads, class_names, per_class, seed, batch_size, original_proba)
    probes.check_width(border_width)
    if "swaps" in kinds:
        probes.add_source_swaps(all_pairs)
    if "styles" in kinds:
        probes.add_styles(border_width)
    if "borders" in kinds:
        probes.add_borders(border_width)
    return probes.table()


def source_swap_table(predict: Predict, images: np.ndarray, labels, heads, class_names, **options) -> pd.DataFrame:
    """Source swaps: class r's heads on class d's outside, per pair r != d, plus one
    ``source_swap_control`` row per recipient class. Options as :func:`counterfactual_table`."""
    return counterfactual_table(predict, images, labels, heads, class_names, kinds=("swaps",), **options)


def style_table(predict: Predict, images: np.ndarray, labels, heads, class_names, **options) -> pd.DataFrame:
    """Tumor images in the no-tumor class's style, alone and with the border blanked, each
    against the same change in their own class's style; empty without a no-tumor class."""
    return counterfactual_table(predict, images, labels, heads, class_names, kinds=("styles",), **options)


def border_table(predict: Predict, images: np.ndarray, labels, heads, class_names, **options) -> pd.DataFrame:
    """Every class with its border band blanked outside the head (black, inpaint)."""
    return counterfactual_table(predict, images, labels, heads, class_names, kinds=("borders",), **options)
