"""bt_core.shortcuts.flags: each flag fires just beyond its threshold and not just before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bt_core.shortcuts import flags
from bt_core.shortcuts.flags import (
    BACKGROUND_ACCURACY_MARGIN,
    BORDER_LIMIT,
    FLAG_SENTENCES,
    OCCLUDED_TUMOR_LIMIT,
    OUTSIDE_HEAD_LIMIT,
    OUTSIDE_HEAD_MARGIN,
    PARTS,
    BACKGROUND_CLASS_LIMIT,
    ALL_PARTS,
    background_class_part,
    shortcut_flags,
    shortcut_parts,
    shortcut_score,
)

EPS = 1e-6
GAUSSIAN = {"outside_head": 0.15, "border": 0.12, "in_box": 0.2}
# Harmless values: nothing fires.
CLEAN = {"outside_head": 0.1, "border": 0.05, "in_box": 0.6}


def probes(
    background_accuracy: float = 0.25, occluded_tumor: float = 0.1, chance: float = 0.25
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "accuracy": [0.9, background_accuracy, 0.5],
            "chance": [chance, chance, 1.0],
            "tumor_predicted": [0.7, 0.0, occluded_tumor],
        },
        index=pd.Index(["original", "background_only", "tumor_occluded"], name="condition"),
    )


def flag_names(
    attention: dict | None = None,
    probe_summary: pd.DataFrame | None = None,
    baselines: dict | None = None,
) -> list[str]:
    parts = shortcut_parts(
        {**CLEAN, **(attention or {})},
        probes() if probe_summary is None else probe_summary,
        {"centered_gaussian": {**GAUSSIAN, **(baselines or {})}},
        n_classes=4,
    )
    return [name for name, _ in shortcut_flags(parts)]


def test_clean_model_has_no_flags() -> None:
    assert flag_names() == []


@pytest.mark.parametrize(
    ("key", "limit", "margin"),
    [("outside_head", OUTSIDE_HEAD_LIMIT, OUTSIDE_HEAD_MARGIN), ("border", BORDER_LIMIT, 0.0)],
)
def test_map_flags_fire_just_above_their_limit(key: str, limit: float, margin: float) -> None:
    assert flag_names({key: limit + EPS}) == [key]
    assert flag_names({key: limit - EPS}) == []
    assert flag_names({key: limit}) == []
    # Above the limit but not beyond a baseline (plus margin) that is higher still: no flag.
    high = limit + 0.1
    assert flag_names({key: high + margin - 0.01}, baselines={key: high}) == []
    # Beyond it by a hair (part under MIN_FLAG_PART): no flag either; clearly beyond: a flag.
    assert flag_names({key: high + margin + 0.01}, baselines={key: high}) == ([] if margin == 0 else [key])
    assert flag_names({key: high + margin + 0.05}, baselines={key: high}) == [key]


def test_border_flag_needs_more_than_an_evenly_spread_map() -> None:
    parts = shortcut_parts({**CLEAN, "border": 0.35}, probes(), {"centered_gaussian": GAUSSIAN}, 4, border_area=0.36)
    assert [name for name, _ in shortcut_flags(parts)] == []
    parts = shortcut_parts({**CLEAN, "border": 0.37}, probes(), {"centered_gaussian": GAUSSIAN}, 4, border_area=0.36)
    assert [name for name, _ in shortcut_flags(parts)] == []  # part 0.016: under MIN_FLAG_PART
    parts = shortcut_parts({**CLEAN, "border": 0.41}, probes(), {"centered_gaussian": GAUSSIAN}, 4, border_area=0.36)
    assert [name for name, _ in shortcut_flags(parts)] == ["border"]


def test_background_class_part_is_recall_minus_false_alarms() -> None:
    part = background_class_part(0.9, 0.05)
    assert part["value"] == pytest.approx(0.85) and part["part"] == pytest.approx(0.85)
    assert shortcut_flags({"background_class": part}) == [("background_class", FLAG_SENTENCES["background_class"])]
    # Every background-only image called this class: the background says nothing about it.
    assert shortcut_flags({"background_class": background_class_part(1.0, 1.0)}) == []
    assert shortcut_flags({"background_class": background_class_part(BACKGROUND_CLASS_LIMIT + 0.1, 0.1)}) == []


def test_background_accuracy_flag_is_relative_to_chance() -> None:
    threshold = 0.25 + BACKGROUND_ACCURACY_MARGIN
    assert flag_names(probe_summary=probes(threshold + EPS)) == ["background_accuracy"]
    assert flag_names(probe_summary=probes(threshold - EPS)) == []
    # Imbalanced classes: chance is the commonest class's share, not 1 / C.
    assert flag_names(probe_summary=probes(threshold + EPS, chance=0.5)) == []
    above = probes(0.5 + BACKGROUND_ACCURACY_MARGIN + EPS, chance=0.5)
    assert flag_names(probe_summary=above) == ["background_accuracy"]


def test_occluded_tumor_flag() -> None:
    assert flag_names(probe_summary=probes(occluded_tumor=OCCLUDED_TUMOR_LIMIT + EPS)) == [
        "occluded_tumor"
    ]
    assert flag_names(probe_summary=probes(occluded_tumor=OCCLUDED_TUMOR_LIMIT - EPS)) == []


def test_in_box_flag_fires_below_the_gaussian_baseline() -> None:
    # At least MIN_FLAG_PART (5%) below the baseline, relatively: a hair below is noise.
    assert flag_names({"in_box": GAUSSIAN["in_box"] * (1 - flags.MIN_FLAG_PART) - EPS}) == ["in_box"]
    assert flag_names({"in_box": GAUSSIAN["in_box"] - EPS}) == []
    assert flag_names({"in_box": GAUSSIAN["in_box"] + EPS}) == []
    assert flag_names({"in_box": np.nan}) == []  # no boxes: nothing to say


def test_parts_and_score_follow_the_documented_formula() -> None:
    attention = {"outside_head": 0.575, "border": 0.12, "in_box": 0.05}
    parts = shortcut_parts(
        attention, probes(0.625, 0.4), {"centered_gaussian": GAUSSIAN}, n_classes=4
    )
    assert list(parts) == list(PARTS)
    expected = {
        "outside_head": (0.575 - 0.15) / 0.85,  # 0.5
        "border": 0.0,  # at the baseline
        "background_accuracy": (0.625 - 0.25) / 0.75,  # 0.5
        "occluded_tumor": 0.4,
        "in_box": (0.2 - 0.05) / 0.2,  # 0.75
    }
    for name, value in expected.items():
        assert parts[name]["part"] == pytest.approx(value)
    assert shortcut_score(parts) == pytest.approx(np.mean(list(expected.values())))
    names = [name for name, _ in shortcut_flags(parts)]
    assert names == ["outside_head", "background_accuracy", "in_box"]
    assert all(sentence == FLAG_SENTENCES[name] for name, sentence in shortcut_flags(parts))


def test_missing_probes_leave_nan_parts_out_of_the_score() -> None:
    attention = {"outside_head": 0.575, "border": 0.12, "in_box": 0.2}
    parts = shortcut_parts(attention, None, {"centered_gaussian": GAUSSIAN}, n_classes=4)
    assert np.isnan(parts["background_accuracy"]["part"])
    assert np.isnan(parts["occluded_tumor"]["part"])
    assert shortcut_score(parts) == pytest.approx(0.5 / 3)
    nothing = shortcut_parts({}, None, {"centered_gaussian": {}}, n_classes=4)
    assert np.isnan(shortcut_score(nothing)) and shortcut_flags(nothing) == []


def test_baselines_from_a_baseline_summary_frame() -> None:
    index = pd.MultiIndex.from_tuples(
        [("centered_gaussian", "glioma"), ("centered_gaussian", "all"), ("random", "all")],
        names=["baseline", "label"],
    )
    frame = pd.DataFrame([{**GAUSSIAN, "in_box": 0.9}, GAUSSIAN, GAUSSIAN], index=index)
    parts = shortcut_parts(CLEAN, probes(), frame, n_classes=4)
    assert parts["in_box"]["reference"] == pytest.approx(0.2)  # the "all" row, not glioma's
    with pytest.raises(ValueError, match="'centered_gaussian' 'all' row"):
        shortcut_parts(CLEAN, probes(), {"random": GAUSSIAN}, n_classes=4)
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        shortcut_parts(CLEAN, probes(), frame, n_classes=1)


def test_every_part_has_one_sentence() -> None:
    assert set(FLAG_SENTENCES) == set(ALL_PARTS)
    for sentence in FLAG_SENTENCES.values():
        assert sentence.endswith(".") and sentence.count(". ") == 0


def test_outside_head_flag_needs_more_than_an_evenly_spread_map() -> None:
    def names(value: float) -> list[str]:
        parts = shortcut_parts({**CLEAN, "outside_head": value}, probes(), {"centered_gaussian": GAUSSIAN}, 4,
                               outside_area=0.5)
        return [name for name, _ in shortcut_flags(parts)]

    assert names(0.49) == []  # above the limit and the Gaussian, but no more than a flat map
    assert names(0.51) == []  # a hair beyond: its part 0.02 is under MIN_FLAG_PART
    assert names(0.53) == ["outside_head"]  # part 0.06


@pytest.mark.parametrize(
    ("severity", "verdict"),
    [
        ({"severity": 0.5, "ci_low": flags.SEVERITY_UNSAFE + 0.01}, flags.UNSAFE),
        ({"severity": 0.5, "ci_low": flags.SEVERITY_UNSAFE}, flags.UNCERTAIN),  # strictly above
        ({"severity": flags.SEVERITY_UNSAFE + 0.01, "ci_low": 0.0}, flags.UNCERTAIN),
        ({"severity": flags.SEVERITY_UNSAFE, "ci_low": 0.0}, flags.NO_EVIDENCE),
        ({"severity": 0.0, "ci_low": 0.0}, flags.NO_EVIDENCE),
        ({"severity": None}, flags.NOT_MEASURED),
        ({"severity": "n/a"}, flags.NOT_MEASURED),
        (None, flags.NOT_MEASURED),
    ],
)
def test_severity_verdict_is_unsafe_only_when_the_lower_bound_is_above_the_limit(severity, verdict):
    assert flags.severity_verdict(severity) == verdict
    assert flags.thresholds()["SEVERITY_UNSAFE"] == flags.SEVERITY_UNSAFE


# --------------------------------------------------------------------------- images per group and verdict


def test_a_part_on_too_few_images_is_not_judged() -> None:
    few, enough = flags.MIN_GROUP_IMAGES - 1, flags.MIN_GROUP_IMAGES
    loud = {**CLEAN, "outside_head": 0.9, "border": 0.9}
    parts = shortcut_parts({**loud, "n_images": few}, probes(), {"centered_gaussian": GAUSSIAN}, 4)
    assert parts["outside_head"]["too_few"] and parts["outside_head"]["n"] == few
    assert np.isnan(parts["outside_head"]["part"])
    assert [name for name, _ in shortcut_flags(parts)] == []
    parts = shortcut_parts({**loud, "n_images": enough}, probes(), {"centered_gaussian": GAUSSIAN}, 4)
    assert not parts["border"]["too_few"]
    assert [name for name, _ in shortcut_flags(parts)] == ["outside_head", "border"]
    # The probes count their own images: 5 background-only images cannot flag.
    table = probes(0.9).assign(n=[40, 5, 40])
    parts = shortcut_parts({**CLEAN, "n_images": 40}, table, {"centered_gaussian": GAUSSIAN}, 4)
    assert parts["background_accuracy"]["too_few"] and shortcut_flags(parts) == []
    assert np.isfinite(shortcut_score(parts))  # the judged parts still make a score
    # A class part stored without a count takes its group's.
    parts = {"outside_head": {**parts["outside_head"], "n": few, "too_few": True},
             "background_class": background_class_part(0.9, 0.0)}
    assert shortcut_flags(parts) == [] and np.isnan(shortcut_score(parts))


def stored_record(overall: list[str], in_classes: dict[str, list[str]], score: float, n_images: int = 40) -> dict:
    """A summary record as measures.measure_model stores it, flags given by name."""
    part = {"value": 0.5, "reference": 0.1, "threshold": 0.3, "direction": "above", "part": 0.4}
    groups = {"all": n_images, **{c: n_images // 4 for names in in_classes.values() for c in names}}
    names = dict.fromkeys([*overall, *in_classes])
    return {
        "score": score,
        "parts": {group: {name: dict(part) for name in names} for group in groups},
        "attention": {group: {"n_images": count} for group, count in groups.items()},
        "flags": [{"name": name, "sentence": "", "overall": name in overall, "classes": in_classes.get(name, [])}
                  for name in names],
    }


def test_the_verdict_separates_all_images_from_one_class() -> None:
    verdict = flags.flag_verdict(stored_record(["border"], {"in_box": ["meningioma"]}, 0.2))
    assert verdict.level == flags.ALL_IMAGES and verdict.text == "flagged on all images"
    assert [flag["name"] for flag in verdict.flags] == ["border", "in_box"]
    # The demo's cnn_bn: one flag within one class, score 0 on all images: not flagged.
    verdict = flags.flag_verdict(stored_record([], {"in_box": ["meningioma"]}, 0.0))
    assert verdict.level == flags.CLASSES_ONLY and verdict.text == "flagged in meningioma only"
    assert verdict.classes == ("meningioma",) and verdict.score == 0.0
    assert verdict.class_scores["meningioma"] == pytest.approx(0.4)
    two = flags.flag_verdict(stored_record([], {"in_box": ["glioma", "meningioma"]}, 0.0, n_images=80))
    assert two.text == "flagged in glioma and meningioma only"
    assert flags.flag_verdict(stored_record([], {}, 0.0)).level == flags.NOT_FLAGGED
    assert flags.flag_verdict(None).level == flags.FLAGS_NOT_MEASURED


def test_a_score_of_zero_is_never_flagged_on_all_images() -> None:
    verdict = flags.flag_verdict(stored_record(["border"], {}, 0.0))
    assert verdict.level == flags.NOT_FLAGGED and verdict.flags == ()


def test_stored_flags_on_too_few_images_do_not_count() -> None:
    """Runs measured before the minimum: their flags on 5 images are dropped by the verdict."""
    record = stored_record(["border"], {"in_box": ["meningioma"]}, 0.3, n_images=5)
    verdict = flags.flag_verdict(record)
    assert verdict.level == flags.TOO_FEW and verdict.flags == ()
    assert ("all", "border", 5.0) in flags.too_few_parts(record)
    # Enough images overall, too few within the class: only the overall flag counts.
    record = stored_record(["border"], {"in_box": ["meningioma"]}, 0.3, n_images=36)
    verdict = flags.flag_verdict(record)
    assert verdict.level == flags.ALL_IMAGES and [f["name"] for f in verdict.flags] == ["border"]
    assert flags.thresholds()["MIN_GROUP_IMAGES"] == flags.MIN_GROUP_IMAGES


def test_a_value_a_hair_beyond_a_threshold_equal_to_its_reference_does_not_fire() -> None:
    """The demo's shape: the area shares (0.553 outside the head, 0.34 in the border) exceed
    the Gaussian's, so threshold = reference; 0.556 outside the head is not a shortcut."""
    parts = shortcut_parts({"outside_head": 0.556, "border": 0.2, "in_box": 0.06, "n_images": 180, "n_with_box": 135},
                           probes(), {"centered_gaussian": {"outside_head": 0.15, "border": 0.12, "in_box": 0.05}},
                           4, border_area=0.34, outside_area=0.553)
    assert parts["outside_head"]["threshold"] == parts["outside_head"]["reference"] == pytest.approx(0.553)
    assert 0 < parts["outside_head"]["part"] < flags.MIN_FLAG_PART
    assert shortcut_flags(parts) == []
    # The same rule for a stored flag of a run measured before it: the verdict drops it.
    record = stored_record(["outside_head"], {}, 0.01)
    record["parts"]["all"]["outside_head"]["part"] = 0.007
    assert flags.flag_verdict(record).level == flags.NOT_FLAGGED
    record["parts"]["all"]["outside_head"]["part"] = flags.MIN_FLAG_PART
    assert flags.flag_verdict(record).level == flags.ALL_IMAGES
    assert flags.thresholds()["MIN_FLAG_PART"] == flags.MIN_FLAG_PART


def test_energy_in_box_of_a_class_without_boxes_is_not_applicable_not_too_few() -> None:
    """notumor images have no tumor box: no value on 0 images is never "too few images"."""
    parts = shortcut_parts({**CLEAN, "in_box": float("nan"), "n_images": 45, "n_with_box": 0}, probes(),
                           {"centered_gaussian": GAUSSIAN}, 4)
    assert parts["in_box"]["n"] == 0 and parts["in_box"]["too_few"] is None
    record = {"score": 0.0, "flags": [], "parts": {"notumor": parts}, "attention": {"notumor": {"n_images": 45}}}
    assert flags.too_few_parts(record) == []
    # As stored by runs before this rule (too_few true): still not listed.
    record["parts"]["notumor"]["in_box"] = {**parts["in_box"], "too_few": True}
    assert flags.too_few_parts(record) == []
    # A real shortage still is: 4 boxed images with a value.
    record["parts"]["notumor"]["in_box"] = {**parts["in_box"], "value": 0.1, "n": 4, "too_few": True}
    assert flags.too_few_parts(record) == [("notumor", "in_box", 4.0)]
