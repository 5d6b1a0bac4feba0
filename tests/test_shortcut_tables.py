"""dashboard.shortcut_tables: the Shortcuts page's tables and sentences from a small summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bt_core.shortcuts import flags
from dashboard import shortcut_tables as sc

CLASSES = ["glioma", "notumor"]


def part(value, reference, threshold, direction="above", score=None):
    return {"value": value, "reference": reference, "threshold": threshold, "direction": direction,
            "part": score}


def small_summary() -> dict:
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
    return {
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
    }


ACCURACIES = {"bad_cnn": 0.9667, "good_cnn": 0.9}


# --------------------------------------------------------------------------- verdict


def test_verdict_table_has_a_row_per_model_then_the_baselines():
    table = sc.verdict_table(small_summary(), ACCURACIES)
    assert list(table.columns) == sc.VERDICT_COLUMNS
    assert list(table[sc.MODEL]) == ["bad_cnn", "good_cnn", "odd_cnn", *sc.BASELINE_LABELS.values()]
    rows = table.set_index(sc.MODEL)
    assert list(rows[sc.FLAGGED][:3]) == [sc.YES, sc.NO, sc.NO]
    assert rows.loc["bad_cnn", sc.ACCURACY] == pytest.approx(0.9667)
    assert rows.loc["bad_cnn", sc.OUTSIDE_HEAD] == pytest.approx(0.56)
    assert rows.loc["bad_cnn", sc.BACKGROUND_ACCURACY] == pytest.approx(0.30)
    assert rows.loc["bad_cnn", sc.CHANCE] == pytest.approx(0.25)
    assert rows.loc["bad_cnn", sc.DELETION_AUC] == pytest.approx(0.45)
    assert rows.loc["bad_cnn", sc.FLAGS] == (
        "Outside head (all images; also notumor); Background tells the class (notumor only)"
    )
    gaussian = rows.loc[sc.BASELINE_LABELS["centered_gaussian"]]
    assert gaussian[sc.OUTSIDE_HEAD] == pytest.approx(0.26) and gaussian[sc.BORDER] == pytest.approx(0.12)
    assert gaussian[sc.FLAGGED] == "" and math.isnan(gaussian[sc.SCORE])


def test_verdict_table_reads_missing_and_malformed_values_as_nan():
    table = sc.verdict_table(small_summary(), {"bad_cnn": "n/a"}).set_index(sc.MODEL)
    numeric = [sc.ACCURACY, sc.SCORE, *sc.PART_COLUMNS]
    assert all(table[column].dtype == np.float64 for column in numeric)
    assert table.loc["good_cnn", sc.OUTSIDE_HEAD] == pytest.approx(0.10)
    for column in numeric:
        if column != sc.OUTSIDE_HEAD:
            assert math.isnan(table.loc["good_cnn", column]), column
    assert table.loc["bad_cnn", [sc.ACCURACY, sc.OCCLUDED_TUMOR, sc.IN_BOX, sc.POINTING]].isna().all()
    assert table.loc["odd_cnn", numeric].isna().all() and table.loc["odd_cnn", sc.FLAGS] == ""


def test_verdict_table_of_an_empty_summary_is_empty_with_the_columns():
    table = sc.verdict_table({}, {})
    assert table.empty and list(table.columns) == sc.VERDICT_COLUMNS
    assert sc.verdict_headline({}) == "No model of this run was measured."


def test_only_models_with_stored_flags_are_flagged():
    summary = small_summary()
    assert sc.flagged_models(summary) == ["bad_cnn"]
    assert sc.suspect_model(summary) == "bad_cnn"
    summary["models"]["bad_cnn"]["flags"] = []
    assert sc.flagged_models(summary) == []
    assert sc.verdict_headline(summary) == "None of the 3 measured models is flagged by the documented thresholds."


def test_verdict_sentence_names_the_flagged_model_with_its_accuracy_and_numbers():
    summary = small_summary()
    lines = sc.verdict_lines(summary, ACCURACIES)
    assert lines[0] == (
        "**bad_cnn**: 96.7% accurate, but 56% of its map energy lies outside the head "
        "(reference 26%: a centred blob, or an evenly spread map; also within notumor); in notumor images, the background alone tells the "
        "class apart (recall minus false alarms 84%)."
    )
    assert lines[1] == "Not flagged by any threshold: **good_cnn** (90.0% accurate), **odd_cnn**."
    assert sc.verdict_headline(summary) == (
        "Right for the wrong reasons? 1 of 3 measured models is flagged by the documented thresholds."
    )


def test_captions_list_every_threshold_and_explain_every_part():
    text = sc.thresholds_text(small_summary())
    for name, value in flags.thresholds().items():
        assert f"`{name}` = {value:g}" in text
    explained = sc.parts_explained()
    for name in flags.ALL_PARTS:
        assert any(flags.FLAG_SENTENCES[name] in line for line in explained), name
    assert any(line.startswith(f"**{sc.POINTING}**") for line in explained)


# --------------------------------------------------------------------------- one model


def test_parts_table_fires_by_the_documented_rule():
    table = sc.parts_table(small_summary()["models"]["bad_cnn"])
    rows = table.set_index(["Group", "Part"])
    assert rows.loc[("all", sc.OUTSIDE_HEAD), "Fires"] == sc.YES
    assert rows.loc[("all", sc.BORDER), "Fires"] == sc.NO
    assert rows.loc[("all", sc.OCCLUDED_TUMOR), "Fires"] == ""  # not measured: never fires
    assert rows.loc[("notumor", "Background tells the class"), "Fires"] == sc.YES
    assert rows.loc[("glioma", "Background tells the class"), "Fires"] == sc.NO
    assert list(dict.fromkeys(table["Group"])) == ["all", "glioma", "notumor"]


@pytest.mark.parametrize(
    ("value", "fires"),
    [(flags.OCCLUDED_TUMOR_LIMIT, sc.NO), (flags.OCCLUDED_TUMOR_LIMIT + 1e-6, sc.YES)],
)
def test_a_part_fires_strictly_beyond_its_threshold(value, fires):
    record = {"parts": {"all": {"occluded_tumor": part(value, 0.0, flags.OCCLUDED_TUMOR_LIMIT, score=value)}}}
    assert sc.parts_table(record)["Fires"].tolist() == [fires]


def test_in_box_fires_below_its_threshold():
    record = {"parts": {"all": {"in_box": part(0.19, 0.2, 0.2, "below", 0.05)}}}
    assert sc.parts_table(record)["Fires"].tolist() == [sc.YES]


def methods_record() -> dict:
    """A record with attention for two methods: Faster Score-CAM stored first, a class group
    Grad-CAM lacks, a malformed group and a missing measure."""
    def looks(n, outside, border, pointing=None):
        return {"n_images": n, "n_with_box": 0, "outside_head": outside, "border": border, "in_box": None,
                "pointing_hit": pointing, "rank_accuracy": None}

    return {"attention_by_method": {
        "faster_scorecam": {"all": looks(20, 0.30, 0.10, 0.5), "glioma": looks(10, 0.2, 0.05),
                            "notumor": looks(10, 0.4, 0.15)},
        "gradcam": {"all": looks(20, 0.56, 0.20), "glioma": "garbled"},
    }}


def test_method_table_puts_the_scored_method_first_then_the_baselines():
    summary = small_summary()
    labels = {"gradcam": "Grad-CAM", "faster_scorecam": "Faster Score-CAM"}
    table = sc.method_table(summary, methods_record(), labels=labels)
    assert list(table.columns) == sc.METHOD_TABLE_COLUMNS
    assert list(table[sc.METHOD]) == ["Grad-CAM", "Faster Score-CAM", *sc.BASELINE_LABELS.values()]
    assert list(table[sc.SCORED]) == [sc.YES, sc.NO, "", ""]
    rows = table.set_index(sc.METHOD)
    assert rows.loc["Grad-CAM", sc.OUTSIDE_HEAD] == pytest.approx(0.56)
    assert rows.loc["Faster Score-CAM", sc.BORDER] == pytest.approx(0.10)
    assert rows.loc["Faster Score-CAM", sc.POINTING] == pytest.approx(0.5)
    assert rows.loc["Faster Score-CAM", sc.IMAGES] == 20
    assert math.isnan(rows.loc["Grad-CAM", sc.IN_BOX]) and math.isnan(rows.loc["Grad-CAM", sc.RANK_ACCURACY])
    assert rows.loc[sc.BASELINE_LABELS["random"], sc.OUTSIDE_HEAD] == pytest.approx(0.55)
    assert all(table[column].dtype == np.float64 for column in [sc.IMAGES, *sc.METHOD_MEASURES.values()])
    assert sc.methods_caption(summary, labels) == (
        "The score and flags use Grad-CAM; methods that disagree deserve a look on the Inspect page.")


def test_method_table_of_a_class_reads_missing_groups_and_baselines_as_blank():
    record = methods_record()
    assert sc.method_groups(record) == ["all", "glioma", "notumor"]
    table = sc.method_table(small_summary(), record, "glioma").set_index(sc.METHOD)
    assert list(table.index) == ["gradcam", "faster_scorecam"]  # no glioma baselines stored
    assert table.loc["faster_scorecam", sc.OUTSIDE_HEAD] == pytest.approx(0.2)
    assert table.loc["gradcam", [sc.IMAGES, *sc.METHOD_MEASURES.values()]].isna().all()  # malformed group


@pytest.mark.parametrize("stored", [None, "not a mapping", {}])
def test_a_record_without_methods_compared_gives_an_empty_table(stored):
    record = {} if stored is None else {"attention_by_method": stored}
    assert sc.method_groups(record) == []
    table = sc.method_table(small_summary(), record)
    assert table.empty and list(table.columns) == sc.METHOD_TABLE_COLUMNS


def test_probe_table_and_figure_show_every_condition_with_the_chance_line():
    table = sc.probe_table(small_summary()["models"]["bad_cnn"])
    assert list(table["Condition"]) == ["Original", "Background only"]
    assert table.loc[1, "Accuracy"] == pytest.approx(0.30)
    figure = sc.probe_figure(table, "Accuracy")
    assert [trace.name for trace in figure.data] == ["Original", "Background only"]
    assert [shape.y0 for shape in figure.layout.shapes] == [0.5]
    assert not sc.probe_figure(table, "Called tumor").layout.shapes


def test_curves_figure_draws_deletion_and_insertion_with_their_auc():
    figure = sc.curves_figure(small_summary()["models"]["bad_cnn"]["faithfulness"])
    assert [trace.name for trace in figure.data] == ["Deletion (AUC 0.45)", "Insertion (AUC 0.80)"]
    assert list(figure.data[0].x) == [0.0, 0.5, 1.0]
    assert not sc.curves_figure({}).data


# --------------------------------------------------------------------------- worst images, clusters


def per_image() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "b", "c", "d"],
        "label": ["glioma", "notumor", "notumor", "glioma"],
        "pred": ["glioma", "notumor", "glioma", "glioma"],
        "background_pred": ["notumor", "notumor", "notumor", "glioma"],
        "has_box": [False] * 4,
        "outside_head": [0.2, 0.9, np.nan, 0.5],
        "border": [0.6, 0.1, 0.3, 0.2],
        "in_box": [np.nan] * 4,
        "cluster": [0, 1, -1, 0],
    })


def test_worst_images_rank_by_the_chosen_measure():
    assert list(sc.worst_images(per_image(), sc.BY_OUTSIDE, 3)["id"]) == ["b", "d", "a"]
    assert list(sc.worst_images(per_image(), sc.BY_BORDER, 2)["id"]) == ["a", "c"]
    # Still right with the head blacked out: b, d and c (no outside-head share: last); not a.
    assert list(sc.worst_images(per_image(), sc.BY_BACKGROUND, 10)["id"]) == ["b", "d", "c"]
    assert list(sc.worst_images(per_image(), sc.BY_OUTSIDE, 1).columns) == sc.WORST_COLUMNS
    with pytest.raises(ValueError):
        sc.worst_images(per_image(), "loudest", 3)


def test_worst_caption_marks_right_and_wrong():
    rows = per_image().to_dict("records")
    assert sc.worst_caption(rows[0]) == "glioma → glioma ✓ · 20% outside head · 60% border · no head → notumor"
    assert sc.worst_caption(rows[2]).startswith("notumor → glioma ✗ · n/a outside head")


def test_cluster_table_and_pictures():
    record = small_summary()["models"]["bad_cnn"]
    assert sc.cluster_classes(record) == ["notumor"]
    table = sc.cluster_table(record, "notumor")
    assert list(table["Clever-Hans candidate"]) == [sc.YES, sc.NO]
    assert math.isnan(table.loc[1, "Off head"])
    clusters = sc.cluster_list(record, "notumor")
    assert sc.mean_map(clusters[1]) is None
    picture = sc.map_picture(sc.mean_map(clusters[0]), scale=0.5, size=32)
    assert picture.shape == (32, 32, 3) and picture.dtype == np.uint8
    assert sc.cluster_table(record, "glioma").empty


# --------------------------------------------------------------------------- audit


def test_source_probe_sentence_says_whether_the_region_gives_the_class_away():
    above = {"balanced_accuracy": 0.52, "std": 0.05, "chance": 0.25}
    assert "well above chance" in sc.source_probe_sentence("border", above)
    noisy = {"balanced_accuracy": 0.40, "std": 0.1, "chance": 0.25}  # 15 points < 2 std
    assert "close to chance" in sc.source_probe_sentence("background", noisy)
    assert "no result" in sc.source_probe_sentence("border", {})
    table = sc.source_probe_table({"source_probe": {"border": above}})
    assert table.loc[0, "Balanced accuracy"] == pytest.approx(0.52)


def test_duplicates_by_split_and_deduplicated_metrics():
    duplicates = {
        "pairs": 5, "exact_pairs": 1, "near_pairs": 4, "label_conflicts": 2, "unreadable": 0,
        "max_distance": 4, "min_similarity": 0.92, "test_images": 10, "test_kept": 8,
        "by_split_pair": [{"split_pair": "train-test", "kind": "near", "pairs": 3},
                          {"split_pair": "train-test", "kind": "exact", "pairs": 1},
                          {"split_pair": "test-test", "kind": "near", "pairs": 1}],
        "deduplicated_metrics": {"bad_cnn": {"accuracy": 0.9, "macro_f1": 0.88, "macro_auc": None}},
    }
    by_split = sc.duplicates_by_split(duplicates).set_index("Split pair")
    assert by_split.loc["train-test"].to_dict() == {"exact": 1, "near": 3, "total": 4}
    assert by_split.loc["test-test", "total"] == 1
    metrics = sc.dedup_metrics_table(duplicates, {"bad_cnn": {"accuracy": 0.95, "macro_f1": 0.9, "macro_auc": 0.99}})
    row = metrics.set_index(sc.MODEL).loc["bad_cnn"]
    assert row["Accuracy"] == pytest.approx(0.95) and row["Accuracy (de-dup)"] == pytest.approx(0.9)
    assert row["Δ Accuracy"] == pytest.approx(-0.05) and math.isnan(row["Δ Macro AUC"])
    line = sc.duplicates_line(duplicates)
    assert "**5** duplicate pairs (1 exact, 4 near" in line and "**8 of 10**" in line
    assert sc.duplicates_by_split({}).empty
