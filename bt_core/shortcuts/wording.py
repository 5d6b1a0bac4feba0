"""Fired shortcut flags in words, with the model's own numbers: one text for the dashboard, the
report and the model cards (which must not import the dashboard)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

OUTSIDE_HEAD = "Outside head"
BORDER = "Border"
BACKGROUND_ACCURACY = "Background-only accuracy"
OCCLUDED_TUMOR = "Tumor still called tumor (occluded)"
IN_BOX = "Energy in box"
PART_LABELS = {
    "outside_head": OUTSIDE_HEAD,
    "border": BORDER,
    "background_accuracy": BACKGROUND_ACCURACY,
    "background_class": "Background tells the class",
    "occluded_tumor": OCCLUDED_TUMOR,
    "in_box": IN_BOX,
}
# What a fired flag means for one model, with its numbers: {v} value, {r} reference.
_REASONS = {
    "outside_head": "{v} of its map energy lies outside the head (reference {r}: a centred blob, or an evenly spread map)",
    "border": "{v} of its map energy lies in the image border (reference {r})",
    "background_accuracy": "it is still {v} accurate with the head blacked out (chance {r})",
    "background_class": "the background alone tells the class apart (recall minus false alarms {v})",
    "occluded_tumor": "{v} of the tumor images are still called a tumor once the tumor is hidden",
    "in_box": "only {v} of its map energy falls in the tumor box (a centred blob: {r})",
}


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one (a malformed entry reads as missing)."""
    return value if isinstance(value, Mapping) else {}


def as_number(value: Any) -> float:
    """A float, or NaN for anything missing or not numeric (a blank cell, not a crash)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def part_value(record: Mapping[str, Any], part: str, group: str = "all", key: str = "value") -> float:
    return as_number(mapping(mapping(mapping(record.get("parts")).get(group)).get(part)).get(key))


def percent(value: float) -> str:
    return f"{value:.0%}" if math.isfinite(value) else "n/a"


def flag_label(flag: Mapping[str, Any]) -> str:
    """One flag as text: its part, and the classes it fired for ("only" when not overall)."""
    name = str(flag.get("name", "?"))
    label = PART_LABELS.get(name, name)
    classes = [str(c) for c in flag.get("classes") or []]
    overall = bool(flag.get("overall"))
    if overall and classes:
        return f"{label} (all images; also {', '.join(classes)})"
    if overall:
        return f"{label} (all images)"
    if classes:
        return f"{label} ({', '.join(classes)} only)"
    return label


def flag_reason(flag: Mapping[str, Any], record: Mapping[str, Any]) -> str:
    """A fired flag in words, with the model's numbers."""
    name = str(flag.get("name", ""))
    template = _REASONS.get(name)
    if template is None:
        return str(flag.get("sentence") or name)
    classes = [str(c) for c in flag.get("classes") or []]

    def text(group: str) -> str:
        return template.format(v=percent(part_value(record, name, group)),
                               r=percent(part_value(record, name, group, "reference")))

    if flag.get("overall"):
        reason = text("all")
        if not classes:
            return reason
        also = f"also within {', '.join(classes)}"
        return f"{reason[:-1]}; {also})" if reason.endswith(")") else f"{reason} ({also})"
    return "; ".join(f"in {group} images, {text(group)}" for group in classes) or text("all")


def verdict_label(verdict: Any) -> str:
    """A :class:`bt_core.shortcuts.flags.FlagVerdict` as a cell: "on all images", "in meningioma
    only", "no", "too few images to judge" or "not measured"."""
    text = str(verdict.text)
    if text.startswith("flagged "):
        return text[len("flagged "):]
    return "no" if text == "not flagged" else text


def too_few_line(too_few: list[tuple[str, str, float]], minimum: int) -> str | None:
    """The parts left unjudged (:func:`bt_core.shortcuts.flags.too_few_parts`) in one line, or None."""
    if not too_few:
        return None
    listed = "; ".join(f"{PART_LABELS.get(name, name)} on {'all' if group == 'all' else group} images "
                       f"({'?' if not math.isfinite(count) else f'{count:.0f}'})" for group, name, count in too_few)
    return f"Too few images to judge (at least {minimum} needed): {listed}."
