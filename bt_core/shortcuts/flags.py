"""One model's shortcut evidence as five parts, a score in [0, 1] and plain-language flags.

Inputs: the ``"all"`` row of :func:`bt_core.shortcuts.attention.summarize_attention`, the
:func:`bt_core.shortcuts.probes.probe_table` and the
:func:`bt_core.shortcuts.attention.baseline_summary` (its centred-Gaussian ``"all"`` row is
the reference of the map measures: what a map that only looks at the centre gets).

Thresholds (a flag fires strictly beyond its threshold; NaN never fires):

- ``outside_head``: outside-head energy share > :data:`OUTSIDE_HEAD_LIMIT` (0.30), more
  than :data:`OUTSIDE_HEAD_MARGIN` (0.15) above the Gaussian baseline (an upsampled 7 x 7
  or 8 x 8 CAM spills over the head's edge by itself) and, when ``outside_area`` is given,
  above the share of the image outside the head (what an evenly spread map puts there: a
  diffuse map is unfocused, not a look at the background). Heads fill most of an MRI frame and a centred Gaussian puts ~0.1-0.2
  outside them; 30% of the evidence on black background is more than blur can explain.
- ``border``: border-band share > :data:`BORDER_LIMIT` (0.25), above the Gaussian
  baseline and, when ``border_area`` is given, above the band's share of the image area
  (what an evenly spread map puts there). The band of width 0.1 is 36% of the image; a centred Gaussian puts ~0.12 there,
  a flat map ~0.36; a quarter of the energy in the frame is about twice the Gaussian.
- ``background_accuracy``: background-only accuracy > chance + :data:`BACKGROUND_ACCURACY_MARGIN`
  (0.15), chance = max(1 / C, share of the commonest class). With the head blacked out no
  anatomy is left; 15 points above blind guessing is more than noise on a test set of
  hundreds of images.
- ``background_class`` (per class): on background-only images, recall of the class minus
  the rate at which other images are called it > :data:`BACKGROUND_CLASS_LIMIT` (0.5): the
  background (a mark, text, a frame) tells this class apart.
- ``occluded_tumor``: share of tumor-occluded images still called a tumor >
  :data:`OCCLUDED_TUMOR_LIMIT` (0.5). A model that reads the tumor should mostly change its
  mind once it is gone; a majority that does not decides on something else.
- ``in_box``: energy-in-box < the Gaussian baseline - :data:`IN_BOX_MARGIN` (0.0). A map
  that knows nothing but the image centre already does that well; less means the map
  avoids the tumor.

Score: each part is the measure rescaled to [0, 1], 0 = no worse than its reference (the
Gaussian baseline, chance, or 0 tumor calls), 1 = the worst possible (all energy outside
the head / in the border, perfect background-only accuracy, every occluded tumor still
called tumor, no energy in the box):

    part = clip((value - reference) / (1 - reference), 0, 1)     # in_box: (ref - value) / ref

:func:`shortcut_score` is the mean of the parts that could be measured (NaN if none).

Images: a part is judged only on at least :data:`MIN_GROUP_IMAGES` (10) images (its ``n``:
the group's maps, its maps with a box, or the probe's images). Below that one image moves a
share by more than ten points, most of a margin: the part is stored with ``too_few`` true and
a NaN ``part``, leaves the score and never fires (the pages say "too few images to judge").
A part measured on no image with no value (energy in the box of notumor images, which have no
box) is not applicable: ``too_few`` None, never listed. A flag also needs its ``part`` at least
:data:`MIN_FLAG_PART` (0.05): a threshold can equal its reference (an area share larger than
the Gaussian's, the Gaussian's energy in the box), and a value a hair beyond it is noise.

Verdict (:func:`flag_verdict`, one rule for the dashboard, the report and the model cards): a
model is flagged on all images when a flag fired on all its test images (which implies a score
above 0); flagged in classes only when flags fired only within one or more classes (the score
of all images may then be 0: such a model is never counted as flagged); else not flagged, or
too few images to judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

OUTSIDE_HEAD_LIMIT = 0.30
OUTSIDE_HEAD_MARGIN = 0.15
BACKGROUND_CLASS_LIMIT = 0.5
BORDER_LIMIT = 0.25
BACKGROUND_ACCURACY_MARGIN = 0.15
OCCLUDED_TUMOR_LIMIT = 0.5
IN_BOX_MARGIN = 0.0
# A flag also needs its part (the rescaled excess over its reference) at least this large: a
# value a hair beyond a threshold that equals its reference (an area share, the Gaussian's
# energy in the box) is noise, not a shortcut.
MIN_FLAG_PART = 0.05
# A part needs this many images to be judged (see the module docstring).
MIN_GROUP_IMAGES = 10
TOO_FEW_IMAGES = "too few images to judge"

PARTS = ("outside_head", "border", "background_accuracy", "occluded_tumor", "in_box")
# Measured per class only (see background_class_part); flags in this order.
ALL_PARTS = (*PARTS[:3], "background_class", *PARTS[3:])
GAUSSIAN = "centered_gaussian"

# One sentence per flag, shown by the dashboard when the flag fires.
FLAG_SENTENCES: dict[str, str] = {
    "outside_head": (
        f"More than {OUTSIDE_HEAD_LIMIT:.0%} of the explanation energy lies outside the head, "
        "more than a centred blob or an evenly spread map puts there: the model looks at "
        "background, not brain."
    ),
    "border": (
        f"More than {BORDER_LIMIT:.0%} of the explanation energy lies in the image border, "
        "where scanners burn in text, more than a centred blob puts there."
    ),
    "background_accuracy": (
        f"With the head blacked out the model is still more than "
        f"{BACKGROUND_ACCURACY_MARGIN * 100:.0f} points above chance: the background alone "
        "carries the label."
    ),
    "background_class": (
        "With the head blacked out the model still picks this class for most of its images "
        f"and rarely for the others (recall minus false-alarm rate above {BACKGROUND_CLASS_LIMIT:.0%}): "
        "something outside the head, such as a mark or text, carries this class."
    ),
    "occluded_tumor": (
        f"More than {OCCLUDED_TUMOR_LIMIT:.0%} of the tumor images are still called a tumor "
        "after the tumor box is filled in: the decision rests on something else."
    ),
    "in_box": (
        "The explanation energy in the tumor box is below what a map that only looks at "
        "the image centre gets: the model looks away from the tumor."
    ),
}


def _value(row: Mapping[str, Any] | pd.Series | None, key: str) -> float:
    if row is None or key not in row:
        return float("nan")
    value = row[key]
    return float(value) if value is not None else float("nan")


def _gaussian_row(baselines: pd.DataFrame | Mapping[str, Any]) -> Mapping[str, Any]:
    """The centred-Gaussian ``"all"`` row of a baseline summary, or a mapping's entry."""
    try:
        if isinstance(baselines, pd.DataFrame):
            if isinstance(baselines.index, pd.MultiIndex):
                return baselines.loc[(GAUSSIAN, "all")]
            return baselines.loc[GAUSSIAN]
        return baselines[GAUSSIAN]
    except KeyError as error:
        raise ValueError(
            f"baselines lack the {GAUSSIAN!r} 'all' row; make them with baseline_summary"
        ) from error


def _rise(value: float, reference: float) -> float:
    """``clip((value - reference) / (1 - reference), 0, 1)``; NaN if either is NaN."""
    if not (np.isfinite(value) and np.isfinite(reference)):
        return float("nan")
    if reference >= 1.0:
        return 0.0
    return float(np.clip((value - reference) / (1.0 - reference), 0.0, 1.0))


def _part(value: float, reference: float, threshold: float, direction: str, part: float,
          n: float | None = None) -> dict:
    """One part; with ``n`` (its images) below :data:`MIN_GROUP_IMAGES` it is ``too_few``:
    its part is NaN (out of the score) and it cannot fire (``too_few`` None: ``n`` unknown)."""
    count = _number(n)
    # No image at all with a NaN value is "not applicable" (notumor has no tumor box), not too few.
    not_applicable = np.isfinite(count) and count == 0 and not np.isfinite(_number(value))
    too_few = bool(count < MIN_GROUP_IMAGES) if np.isfinite(count) and not not_applicable else None
    return {
        "value": value,
        "reference": reference,
        "threshold": threshold,
        "direction": direction,
        "part": float("nan") if too_few else part,
        "n": int(count) if np.isfinite(count) else None,
        "too_few": too_few,
    }


def too_few_images(part: Mapping[str, Any], group_images: float = float("nan")) -> bool:
    """Whether a part had fewer than :data:`MIN_GROUP_IMAGES` images: its stored ``n``, else
    ``group_images`` (a part stored without a count, e.g. before counts were stored). A part
    on no image with no value is not applicable, never too few."""
    if _number(part.get("n")) == 0 and not np.isfinite(_number(part.get("value"))):
        return False
    if part.get("too_few") is not None:
        return bool(part.get("too_few"))
    count = _number(part.get("n"))
    count = count if np.isfinite(count) else _number(group_images)
    return bool(np.isfinite(count) and count < MIN_GROUP_IMAGES)


def shortcut_parts(
    attention_all: Mapping[str, Any] | pd.Series,
    probe_summary: pd.DataFrame | None,
    baselines: pd.DataFrame | Mapping[str, Any],
    n_classes: int,
    border_area: float | None = None,
    outside_area: float | None = None,
) -> dict[str, dict]:
    """The five parts of :data:`PARTS`, each a dict of ``value`` (the measure),
    ``reference`` (Gaussian baseline, chance, or 0), ``threshold`` and ``direction``
    ("above"/"below": the flag fires when the value is strictly beyond the threshold) and
    ``part`` (in [0, 1], see the module docstring). Missing measures give NaN.
    ``border_area`` / ``outside_area``: the share of the image in the border band / outside
    the head, what an evenly spread map puts there; when given, a map must exceed it.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    gaussian = _gaussian_row(baselines)
    parts: dict[str, dict] = {}
    areas = {"outside_head": outside_area, "border": border_area}
    for name, limit in (("outside_head", OUTSIDE_HEAD_LIMIT), ("border", BORDER_LIMIT)):
        value, gaussian_value = _value(attention_all, name), _value(gaussian, name)
        area = areas[name]
        if not np.isfinite(gaussian_value):
            reference, threshold = gaussian_value, limit
        else:
            # Coarse CAMs upsampled spill over the head's edge: only a clear excess over
            # the centred Gaussian counts.
            margin = OUTSIDE_HEAD_MARGIN if name == "outside_head" else 0.0
            reference = gaussian_value
            threshold = max(limit, gaussian_value + margin)
            if area is not None and np.isfinite(area):
                # A map spread evenly puts the region's area share there: no preference.
                reference = max(reference, float(area))
                threshold = max(threshold, float(area))
        parts[name] = _part(value, reference, threshold, "above", _rise(value, reference),
                            _value(attention_all, "n_images"))

    def probe(condition: str) -> Mapping[str, Any] | None:
        if probe_summary is None or condition not in probe_summary.index:
            return None
        return probe_summary.loc[condition]

    background = probe("background_only")
    value = _value(background, "accuracy")
    chance = max(1.0 / n_classes, np.nan_to_num(_value(background, "chance")))
    parts["background_accuracy"] = _part(
        value, chance, chance + BACKGROUND_ACCURACY_MARGIN, "above", _rise(value, chance), _value(background, "n")
    )
    occluded = probe("tumor_occluded")
    value = _value(occluded, "tumor_predicted")
    parts["occluded_tumor"] = _part(value, 0.0, OCCLUDED_TUMOR_LIMIT, "above", _rise(value, 0.0),
                                    _value(occluded, "n"))
    value, reference = _value(attention_all, "in_box"), _value(gaussian, "in_box")
    if np.isfinite(value) and np.isfinite(reference) and reference > 0:
        fall = float(np.clip((reference - value) / reference, 0.0, 1.0))
    else:
        fall = float("nan")
    parts["in_box"] = _part(value, reference, reference - IN_BOX_MARGIN, "below", fall,
                            _value(attention_all, "n_with_box"))
    return parts


def background_class_part(recall: float, false_rate: float, n: float | None = None) -> dict:
    """The ``background_class`` part of one class: on background-only images, the share of
    the class's images still called that class minus the share of other images called it
    (Youden's J: 0 = the background says nothing about the class, 1 = it says everything).
    ``n``: the class's images (None: unknown; :func:`shortcut_flags` then uses the group's)."""
    value = float(recall) - float(false_rate) if np.isfinite(recall) and np.isfinite(false_rate) else float("nan")
    return _part(value, 0.0, BACKGROUND_CLASS_LIMIT, "above", _rise(value, 0.0), n)


def thresholds() -> dict[str, float]:
    """The documented thresholds, by name (stored with every measured run)."""
    return {
        "SEVERITY_UNSAFE": SEVERITY_UNSAFE,
        "OUTSIDE_HEAD_LIMIT": OUTSIDE_HEAD_LIMIT,
        "OUTSIDE_HEAD_MARGIN": OUTSIDE_HEAD_MARGIN,
        "BACKGROUND_CLASS_LIMIT": BACKGROUND_CLASS_LIMIT,
        "BORDER_LIMIT": BORDER_LIMIT,
        "BACKGROUND_ACCURACY_MARGIN": BACKGROUND_ACCURACY_MARGIN,
        "OCCLUDED_TUMOR_LIMIT": OCCLUDED_TUMOR_LIMIT,
        "IN_BOX_MARGIN": IN_BOX_MARGIN,
        "MIN_GROUP_IMAGES": MIN_GROUP_IMAGES,
        "MIN_FLAG_PART": MIN_FLAG_PART,
    }


def group_images(parts: Mapping[str, Mapping[str, Any]]) -> float:
    """The images of a group of parts: its map parts' count (NaN when none is stored)."""
    return max((_number(parts.get(name, {}).get("n")) for name in ("outside_head", "border")),
               key=lambda count: count if np.isfinite(count) else -1.0, default=float("nan"))


def shortcut_flags(parts: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(flag_name, sentence)`` for every part whose value is strictly beyond its threshold
    and that had enough images (:func:`too_few_images`; a part without a count of its own
    takes the group's)."""
    flags = []
    images = group_images(parts)
    for name in ALL_PARTS:
        if name not in parts or too_few_images(parts[name], images):
            continue
        value, threshold = float(parts[name]["value"]), float(parts[name]["threshold"])
        if not (np.isfinite(value) and np.isfinite(threshold)):
            continue
        beyond = value > threshold if parts[name]["direction"] == "above" else value < threshold
        part = _number(parts[name].get("part"))
        if beyond and not (np.isfinite(part) and part < MIN_FLAG_PART):
            flags.append((name, FLAG_SENTENCES[name]))
    return flags


def shortcut_score(parts: Mapping[str, Mapping[str, Any]]) -> float:
    """Mean of the measured parts, in [0, 1]; NaN when none could be measured (a part on too
    few images is not measured)."""
    images = group_images(parts)
    values = np.array([float("nan") if too_few_images(p, images) else _number(p.get("part"))
                       for p in parts.values()], dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


# --------------------------------------------------------------------------- verdict

ALL_IMAGES, CLASSES_ONLY, NOT_FLAGGED, TOO_FEW = (
    "flagged on all images", "flagged in classes only", "not flagged", TOO_FEW_IMAGES)
FLAGS_NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class FlagVerdict:
    """A stored model record's verdict (:func:`flag_verdict`)."""

    level: str  # ALL_IMAGES, CLASSES_ONLY, NOT_FLAGGED, TOO_FEW or FLAGS_NOT_MEASURED
    flags: tuple[dict, ...]  # the stored flags that count, groups on too few images dropped
    classes: tuple[str, ...]  # where flags fired within a class only
    score: float  # of all test images
    class_scores: dict[str, float]  # of each class's images (its stored parts)

    @property
    def text(self) -> str:
        """"flagged on all images", "flagged in meningioma only", ... "not flagged"."""
        if self.level == CLASSES_ONLY:
            names = list(self.classes)
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            return f"flagged in {listed} only"
        return self.level


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def group_count(record: Mapping[str, Any], group: str) -> float:
    """A stored group's images: its parts' count, else its attention row's ``n_images``."""
    parts = {name: _mapping(part) for name, part in _mapping(_mapping(record.get("parts")).get(group)).items()}
    count = group_images(parts)
    return count if np.isfinite(count) else _number(_mapping(_mapping(record.get("attention")).get(group)).get("n_images"))


def judged(record: Mapping[str, Any], group: str, name: str) -> bool:
    """Whether the stored part ``name`` of ``group`` had enough images to be judged."""
    part = _mapping(_mapping(_mapping(record.get("parts")).get(group)).get(name))
    return not too_few_images(part, group_count(record, group))


def flag_counts(record: Mapping[str, Any], group: str, name: str) -> bool:
    """Whether a stored flag of ``group`` counts: its part had enough images and a part of at
    least :data:`MIN_FLAG_PART` (runs measured before that rule may store weaker flags)."""
    part = _number(_mapping(_mapping(_mapping(record.get("parts")).get(group)).get(name)).get("part"))
    return judged(record, group, name) and not (np.isfinite(part) and part < MIN_FLAG_PART)


def too_few_parts(record: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """``(group, part, images)`` of every stored part left unjudged for too few images."""
    found = []
    for group, parts in _mapping(record.get("parts")).items():
        for name, part in _mapping(parts).items():
            if not judged(record, str(group), str(name)):
                count = _number(_mapping(part).get("n"))
                found.append((str(group), str(name), count if np.isfinite(count) else group_count(record, str(group))))
    return found


def flag_verdict(record: Mapping[str, Any] | None) -> FlagVerdict:
    """The verdict of one stored model record (the rule in the module docstring): its stored
    flags, minus groups judged on too few images or with a part under :data:`MIN_FLAG_PART`
    (runs measured before those rules)."""
    record = _mapping(record)
    kept = []
    for flag in record.get("flags") or []:
        flag = _mapping(flag)
        name = str(flag.get("name", ""))
        overall = bool(flag.get("overall")) and flag_counts(record, "all", name)
        classes = [str(c) for c in flag.get("classes") or [] if flag_counts(record, str(c), name)]
        if overall or classes:
            kept.append({**flag, "overall": overall, "classes": classes})
    score = _number(record.get("score"))
    parts = _mapping(record.get("parts"))
    class_scores = {str(group): shortcut_score({n: _mapping(p) for n, p in _mapping(values).items()})
                    for group, values in parts.items() if group != "all"}
    # A flag on all images with a score of 0 cannot come from these rules: never count it.
    scored = not (np.isfinite(score) and score <= 0)
    if scored and any(flag["overall"] for flag in kept):
        level, classes = ALL_IMAGES, ()
    else:
        kept = [{**flag, "overall": False} for flag in kept if flag["classes"]]
        classes = tuple(dict.fromkeys(c for flag in kept for c in flag["classes"]))
        all_parts = _mapping(parts.get("all"))
        if classes:
            level = CLASSES_ONLY
        elif all_parts and all(not judged(record, "all", str(name)) for name in all_parts):
            level = TOO_FEW
        elif not all_parts and not np.isfinite(score):
            level = FLAGS_NOT_MEASURED
        else:
            level = NOT_FLAGGED
    return FlagVerdict(level, tuple(kept), classes, score, class_scores)


# --------------------------------------------------------------------------- severity
#
# The parts above say where a model looks; they do not say how much of its behaviour a change
# of source would move. The severity does (bt_core.shortcuts.severity.source_following_share):
# the expected share of the model's decisions that follow the source rather than the anatomy,
# measured by giving each test image's head the outside (background and border band) of an
# image of another class, or its head the intensity style of the no-tumor class, and counting
# the decisions that go to that class, beyond the same change within the class (the control);
# per class the probe that moves it most counts. Its reading, for a user: "if the images came
# from a site that looks like class d, about this share of the decisions would move to d".
# It is measured on the run's own test images, so it needs no external data. Both sides are
# needed: on a border-marked set the source lives outside the head, on brain-tumor-mri in the
# head's intensity style (the Br35H no-tumor look); ``swap_severity`` and ``style_severity``
# keep them apart. It is a lower bound for what no probe moves (scanner noise, resolution).
#
# The rule for "unsafe": the severity's lower 95 % bound above SEVERITY_UNSAFE. A tenth of
# the decisions dictated by the outside of the head is more than any clinical reader would
# accept, and the bound, not the point, keeps a small test set from raising the alarm on
# noise. Above SEVERITY_UNSAFE with a lower bound below it: "uncertain" (more test images
# would decide). benchmarks/severity_validation.py checks that the severity orders models by
# their measured drop on a shifted source; docs/results.md has the table.

SEVERITY_UNSAFE = 0.10
UNSAFE, UNCERTAIN, NO_EVIDENCE, NOT_MEASURED = "unsafe", "uncertain", "no evidence", "not measured"


def severity_verdict(severity: Mapping[str, Any] | None) -> str:
    """:data:`UNSAFE`, :data:`UNCERTAIN`, :data:`NO_EVIDENCE` or :data:`NOT_MEASURED` for a
    stored severity record (the rule above)."""
    if not isinstance(severity, Mapping):
        return NOT_MEASURED
    value, low = _number(severity.get("severity")), _number(severity.get("ci_low"))
    if not np.isfinite(value):
        return NOT_MEASURED
    if np.isfinite(low) and low > SEVERITY_UNSAFE:
        return UNSAFE
    return UNCERTAIN if value > SEVERITY_UNSAFE else NO_EVIDENCE


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
