"""bt_dashboard.views.shortcuts: the Shortcuts page's summary reading and verdict (no Streamlit)."""

from __future__ import annotations

import math
import numpy as np
import pytest

from bt_core.artifacts import ShortcutSummary
from bt_core.shortcuts import flags
from bt_dashboard.views import shortcut_model as shortcut_model_view
from bt_dashboard.views import shortcuts as view


def part(value, reference, threshold, direction="above", score=None):
    return {"value": value, "reference": reference, "threshold": threshold, "direction": direction,
            "part": score}


def small_summary() -> ShortcutSummary:
    """Two measured models: ``bad_cnn`` flagged overall (outside head) and for one class
    (background tells notumor apart); ``good_cnn`` clean, with unmeasured (None) values and
    no faithfulness; a third record that is not even a mapping."""
    bad_parts = {
        "all": {
            "outside_head": part(0.56, 0.26, 0.41, score=0.40),
            "border": part(0.20, 0.34, 0.34, score=0.0),
            "background_accuracy": part(0.30, 0.25, 0.40, score=0.07),
            "occluded_tumor": part(None, 0.0, 0.5),
            "in_box": part(None, None, None, "below"),
        },
        "glioma": {"outside_head": part(0.30, 0.25, 0.40, score=0.07),
                   "background_class": part(0.10, 0.0, 0.5, score=0.1)},
        "notumor": {"outside_head": part(0.90, 0.26, 0.41, score=0.86),
                    "background_class": part(0.84, 0.0, 0.5, score=0.84)},
    }
    return ShortcutSummary.from_json({
        "created": "2026-01-01T00:00:00+00:00",
        "method": "gradcam",
        "models": {
            "bad_cnn": {
                "score": 0.26,
                "flags": [
                    {"name": "outside_head", "sentence": flags.FLAG_SENTENCES["outside_head"], "overall": True,
                     "classes": ["notumor"]},
                    {"name": "background_class", "sentence": flags.FLAG_SENTENCES["background_class"],
                     "overall": False, "classes": ["notumor"]},
                ],
                "parts": bad_parts,
                "attention": {"all": {"n_images": 20, "outside_head": 0.56, "border": 0.20, "in_box": None,
                                      "pointing_hit": None}},
                "probes": {"all": {
                    "original": {"n": 20, "accuracy": 0.95, "mean_confidence": 0.9, "mean_true_prob": 0.9,
                                 "tumor_predicted": 0.5, "chance": 0.5},
                    "background_only": {"n": 20, "accuracy": 0.30, "mean_confidence": 0.6,
                                        "mean_true_prob": 0.4, "tumor_predicted": 0.2, "chance": 0.5},
                }},
                "faithfulness": {"images": 8, "steps": 2, "deletion_auc": 0.45, "insertion_auc": 0.8,
                                 "deletion_curve": [0.9, 0.5, 0.1], "insertion_curve": [0.2, 0.7, 0.9]},
                "clusters": {"notumor": {"k": 2, "n_neighbors": 4, "notes": [], "clusters": [
                    {"label": 0, "size": 8, "share": 0.8, "tightness": 0.3, "off_head": 1.0,
                     "examples": ["a", "b"], "mean_map": np.full((16, 16), 0.5).tolist(),
                     "clever_hans_candidate": True},
                    {"label": 1, "size": 2, "share": 0.2, "tightness": 0.05, "off_head": None,
                     "examples": ["c"], "mean_map": "garbled", "clever_hans_candidate": False},
                ]}},
            },
            "good_cnn": {
                "score": None,
                "flags": [],
                "parts": {"all": {"outside_head": part(0.10, 0.26, 0.41, score=0.0)}},
            },
            "odd_cnn": "not a record",
        },
        "skipped": {"vit": "no gradcam maps"},
        "audit": {},
        "baselines": {
            "centered_gaussian/all": {"outside_head": 0.26, "border": 0.12, "in_box": None, "pointing_hit": None},
            "random/all": {"outside_head": 0.55, "border": 0.34, "in_box": None, "pointing_hit": None},
        },
        "thresholds": flags.thresholds(),
        "has_boxes": False,
    })


ACCURACIES = {"bad_cnn": 0.9667, "good_cnn": 0.9}


def test_verdict_table_has_a_row_per_model_then_the_baselines():
    table = view.verdict_table(small_summary(), ACCURACIES)
    assert list(table.columns) == view.VERDICT_COLUMNS
    assert list(table[view.MODEL]) == ["bad_cnn", "good_cnn", "odd_cnn", *view.BASELINE_LABELS.values()]
    rows = table.set_index(view.MODEL)
    assert list(rows[view.FLAGGED][:3]) == [view.ON_ALL_IMAGES, "no", flags.FLAGS_NOT_MEASURED]
    assert rows.loc["bad_cnn", view.ACCURACY] == pytest.approx(0.9667)
    assert rows.loc["bad_cnn", view.OUTSIDE_HEAD] == pytest.approx(0.56)
    assert rows.loc["bad_cnn", view.BACKGROUND_ACCURACY] == pytest.approx(0.30)
    assert rows.loc["bad_cnn", view.CHANCE] == pytest.approx(0.25)
    assert rows.loc["bad_cnn", view.DELETION_AUC] == pytest.approx(0.45)
    assert rows.loc["bad_cnn", view.FLAGS] == (
        "Outside head (all images; also notumor); Background tells the class (notumor only)"
    )
    gaussian = rows.loc[view.BASELINE_LABELS["centered_gaussian"]]
    assert gaussian[view.OUTSIDE_HEAD] == pytest.approx(0.26) and gaussian[view.BORDER] == pytest.approx(0.12)
    assert gaussian[view.FLAGGED] == "" and math.isnan(gaussian[view.SCORE])


def test_verdict_table_reads_missing_and_malformed_values_as_nan():
    table = view.verdict_table(small_summary(), {"bad_cnn": "n/a"}).set_index(view.MODEL)
    numeric = [view.ACCURACY, view.SCORE, *view.PART_COLUMNS]
    assert all(table[column].dtype == np.float64 for column in numeric)
    assert table.loc["good_cnn", view.OUTSIDE_HEAD] == pytest.approx(0.10)
    for column in numeric:
        if column != view.OUTSIDE_HEAD:
            assert math.isnan(table.loc["good_cnn", column]), column
    assert table.loc["bad_cnn", [view.ACCURACY, view.OCCLUDED_TUMOR, view.IN_BOX, view.POINTING]].isna().all()
    assert table.loc["odd_cnn", numeric].isna().all() and table.loc["odd_cnn", view.FLAGS] == ""


def test_verdict_table_of_an_empty_summary_is_empty_with_the_columns():
    empty = ShortcutSummary(models={})
    table = view.verdict_table(empty, {})
    assert table.empty and list(table.columns) == view.VERDICT_COLUMNS
    assert view.verdict_headline(empty) == "No model of this run was measured."


def test_only_models_with_stored_flags_are_flagged():
    summary = small_summary()
    assert view.flagged_models(summary) == ["bad_cnn"]
    assert view.suspect_model(summary) == "bad_cnn"
    summary.models["bad_cnn"]["flags"] = []
    assert view.flagged_models(summary) == []
    assert view.verdict_headline(summary) == "None of the 3 measured models is flagged on all test images."


def test_verdict_sentence_names_the_flagged_model_with_its_accuracy_and_numbers():
    summary = small_summary()
    lines = view.verdict_lines(summary, ACCURACIES)
    assert lines[0] == (
        "**bad_cnn**: 96.7% accurate, but 56% of its map energy lies outside the head "
        "(reference 26%: a centred blob, or an evenly spread map; also within notumor); in notumor images, the background alone tells the "
        "class apart (recall minus false alarms 84%)."
    )
    assert lines[1:] == ["Not flagged by any threshold: **good_cnn** (90.0% accurate).", "No parts stored: **odd_cnn**."]
    assert view.verdict_headline(summary) == (
        "Right for the wrong reasons? 1 of 3 measured models is flagged on all test images (bad_cnn)."
    )


def test_a_model_flagged_in_one_class_only_is_not_counted_as_flagged():
    """The demo's cnn_bn: one flag within one class, score 0 on all images."""
    summary = small_summary()
    bad = summary.models["bad_cnn"]
    bad["flags"] = [flag for flag in bad["flags"] if not flag["overall"]]
    bad["score"] = 0.0
    assert view.flagged_models(summary) == [] and view.models_at(summary, flags.CLASSES_ONLY) == ["bad_cnn"]
    assert view.verdict_headline(summary) == (
        "None of the 3 measured models is flagged on all test images; 1 is flagged within one class only "
        "(bad_cnn: notumor).")
    table = view.verdict_table(summary, ACCURACIES).set_index(view.MODEL)
    assert table.loc["bad_cnn", view.FLAGGED] == "in notumor only"
    styles = view.verdict_styles(table.reset_index())
    assert styles.loc[0, [view.MODEL, view.FLAGGED, view.FLAGS]].tolist() == [view.CLASS_FLAGGED_CSS] * 3
    line = view.verdict_lines(summary, ACCURACIES)[0]
    assert line.startswith("**bad_cnn** (96.7% accurate, score 0.00; score within notumor 0.85): flagged in notumor "
                           "only, not on all images: in notumor images, the background alone tells the class apart")
    assert view.suspect_model(summary) == "bad_cnn"  # still the one to look at first


def test_stored_flags_on_too_few_images_are_not_counted_and_say_so():
    summary = small_summary()
    summary.models["bad_cnn"]["attention"]["all"]["n_images"] = 5  # measured before the minimum
    summary.models["bad_cnn"]["attention"]["notumor"] = {"n_images": 3}
    assert view.flagged_models(summary) == []
    assert view.verdict_headline(summary).endswith(f"1 cannot be judged (bad_cnn: {flags.TOO_FEW_IMAGES}).")
    assert view.verdict_table(summary, ACCURACIES).loc[0, view.FLAGGED] == flags.TOO_FEW_IMAGES
    caption = view.too_few_caption(summary)
    assert caption.startswith(f"- **bad_cnn**: Too few images to judge (at least {flags.MIN_GROUP_IMAGES} needed): "
                              "Outside head on all images (5)")
    assert view.too_few_caption(small_summary()) is None


def test_captions_list_every_threshold_and_explain_every_part():
    text = view.thresholds_text(small_summary())
    for name, value in flags.thresholds().items():
        assert f"`{name}` = {value:g}" in text
    explained = view.parts_explained()
    for name in flags.ALL_PARTS:
        assert any(flags.FLAG_SENTENCES[name] in line for line in explained), name
    assert any(line.startswith(f"**{view.POINTING}**") for line in explained)


@pytest.mark.parametrize(
    ("value", "fires"),
    [(flags.OCCLUDED_TUMOR_LIMIT, view.NO), (flags.OCCLUDED_TUMOR_LIMIT + 1e-6, view.YES)],
)
def test_the_parts_table_shows_the_passs_strict_threshold_rule(value, fires):
    parts = {"occluded_tumor": part(value, 0.0, flags.OCCLUDED_TUMOR_LIMIT, score=value)}
    # The flags as the analysis pass stores them: shortcut_flags of the "all" group.
    stored = [{"name": name, "sentence": sentence, "overall": True, "classes": []}
              for name, sentence in flags.shortcut_flags(parts)]
    record = {"parts": {"all": parts}, "flags": stored}
    assert shortcut_model_view.parts_table(record)["Fires"].tolist() == [fires]


def test_the_measured_method_defaults_to_grad_cam_and_the_caption_names_it():
    summary = small_summary()
    labels = {"gradcam": "Grad-CAM"}
    assert view.measured_method(summary) == "gradcam"
    assert view.measured_caption(summary, labels) == (
        "Measured 2026-01-01 00:00 UTC from Grad-CAM maps, without tumor boxes (box measures blank).")
    unnamed = view.read_summary({"models": {}, "has_boxes": True})
    assert view.measured_method(unnamed) == view.DEFAULT_METHOD == "gradcam"
    assert view.measured_caption(unnamed, {}).endswith("from gradcam maps, with tumor boxes.")
    assert "`OUTSIDE_HEAD_LIMIT` = " in view.verdict_caption(summary)
    assert view.verdict_caption(unnamed).endswith("Thresholds: not stored.")


def test_the_headline_verdict_grid_writes_chance_in_the_background_cell():
    table = view.verdict_table(small_summary(), ACCURACIES)
    assert view.shown_verdict_columns(all_columns=True) == view.VERDICT_COLUMNS
    headline = view.shown_verdict_columns(all_columns=False)
    assert view.FLAGS not in headline and view.CHANCE not in headline and headline[0] == view.MODEL
    shown = table[headline]
    html = view.style_verdict(shown, chance=table).to_html()
    assert "30.0% (chance 25%)" in html  # bad_cnn: background-only accuracy 0.30, chance 0.25
    assert "(chance" not in view.style_verdict(table).to_html()
    assert view.verdict_column_help(view.IN_BOX) == view.IN_BOX and view.verdict_column_help(view.BORDER) is None
