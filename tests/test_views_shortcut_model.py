"""bt_dashboard.views.shortcut_model: the Shortcuts page's one-model tabs (parts, methods, probes,
worst images, clusters), without Streamlit."""

from __future__ import annotations

import math
import numpy as np
import pandas as pd
import pytest

from bt_dashboard.views import shortcut_clusters as clusters_view
from bt_dashboard.views import shortcut_model as view
from bt_dashboard.views import shortcuts as shortcuts_view

from test_views_shortcuts import part, small_summary


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


def test_parts_table_fires_by_the_documented_rule():
    table = view.parts_table(small_summary().models["bad_cnn"])
    rows = table.set_index(["Group", "Part"])
    assert rows.loc[("all", shortcuts_view.OUTSIDE_HEAD), "Fires"] == shortcuts_view.YES
    assert rows.loc[("all", shortcuts_view.BORDER), "Fires"] == shortcuts_view.NO
    assert rows.loc[("all", shortcuts_view.OCCLUDED_TUMOR), "Fires"] == ""  # not measured: never fires
    assert rows.loc[("notumor", "Background tells the class"), "Fires"] == shortcuts_view.YES
    assert rows.loc[("glioma", "Background tells the class"), "Fires"] == shortcuts_view.NO
    assert list(dict.fromkeys(table["Group"])) == ["all", "glioma", "notumor"]


def test_parts_table_reads_the_stored_flags_and_never_re_decides_them():
    below = part(0.19, 0.2, 0.2, "below", 0.05)
    flagged = {"parts": {"all": {"in_box": below}},
               "flags": [{"name": "in_box", "sentence": "s", "overall": True, "classes": []}]}
    assert view.parts_table(flagged)["Fires"].tolist() == [shortcuts_view.YES]
    # Beyond its threshold but stored without a flag (say, a newer rule): the page shows the stored verdict.
    unflagged = {"parts": {"all": {"in_box": below}}, "flags": []}
    assert view.parts_table(unflagged)["Fires"].tolist() == [shortcuts_view.NO]
    # A class-only flag fires in its classes, not overall.
    by_class = {"parts": {"all": {"border": part(0.5, 0.3, 0.34)}, "glioma": {"border": part(0.5, 0.3, 0.34)}},
                "flags": [{"name": "border", "overall": False, "classes": ["glioma"]}]}
    assert view.parts_table(by_class)["Fires"].tolist() == [shortcuts_view.NO, shortcuts_view.YES]


def test_method_table_puts_the_scored_method_first_then_the_baselines():
    summary = small_summary()
    labels = {"gradcam": "Grad-CAM", "faster_scorecam": "Faster Score-CAM"}
    table = view.method_table(summary, methods_record(), labels=labels)
    assert list(table.columns) == view.METHOD_TABLE_COLUMNS
    assert list(table[view.METHOD]) == ["Grad-CAM", "Faster Score-CAM", *shortcuts_view.BASELINE_LABELS.values()]
    assert list(table[view.SCORED]) == [shortcuts_view.YES, shortcuts_view.NO, "", ""]
    rows = table.set_index(view.METHOD)
    assert rows.loc["Grad-CAM", shortcuts_view.OUTSIDE_HEAD] == pytest.approx(0.56)
    assert rows.loc["Faster Score-CAM", shortcuts_view.BORDER] == pytest.approx(0.10)
    assert rows.loc["Faster Score-CAM", shortcuts_view.POINTING] == pytest.approx(0.5)
    assert rows.loc["Faster Score-CAM", view.IMAGES] == 20
    assert math.isnan(rows.loc["Grad-CAM", shortcuts_view.IN_BOX]) and math.isnan(rows.loc["Grad-CAM", view.RANK_ACCURACY])
    assert rows.loc[shortcuts_view.BASELINE_LABELS["random"], shortcuts_view.OUTSIDE_HEAD] == pytest.approx(0.55)
    assert all(table[column].dtype == np.float64 for column in [view.IMAGES, *view.METHOD_MEASURES.values()])
    assert view.methods_caption(summary, labels) == (
        "The score and flags use Grad-CAM; methods that disagree deserve a look on the Inspect page.")


def test_method_table_of_a_class_reads_missing_groups_and_baselines_as_blank():
    record = methods_record()
    assert view.method_groups(record) == ["all", "glioma", "notumor"]
    table = view.method_table(small_summary(), record, "glioma").set_index(view.METHOD)
    assert list(table.index) == ["gradcam", "faster_scorecam"]  # no glioma baselines stored
    assert table.loc["faster_scorecam", shortcuts_view.OUTSIDE_HEAD] == pytest.approx(0.2)
    assert table.loc["gradcam", [view.IMAGES, *view.METHOD_MEASURES.values()]].isna().all()  # malformed group


@pytest.mark.parametrize("stored", [None, "not a mapping", {}])
def test_a_record_without_methods_compared_gives_an_empty_table(stored):
    record = {} if stored is None else {"attention_by_method": stored}
    assert view.method_groups(record) == []
    table = view.method_table(small_summary(), record)
    assert table.empty and list(table.columns) == view.METHOD_TABLE_COLUMNS


def test_probe_table_and_figure_show_every_condition_with_the_chance_line():
    table = view.probe_table(small_summary().models["bad_cnn"])
    assert list(table["Condition"]) == ["Original", "Background only"]
    assert table.loc[1, "Accuracy"] == pytest.approx(0.30)
    figure = view.probe_figure(table, "Accuracy")
    assert [trace.name for trace in figure.data] == ["Original", "Background only", "chance", "chance"]
    assert not view.probe_figure(table, "Called tumor").layout.shapes
    assert [trace.type for trace in view.probe_figure(table, "Called tumor").data] == ["bar", "bar"]


def test_the_chance_marks_are_the_tables_chance_of_each_bar():
    """Chart and table agree: one chance per group and condition (the "all" group's boxed
    images have their own, a class's images 100%), not one line for all bars."""
    table = pd.DataFrame({
        "Group": ["all", "all", "glioma", "glioma"],
        "Condition": ["Original", "Tumor occluded", "Original", "Tumor occluded"],
        "Images": [40, 30, 10, 10], "Accuracy": [0.9, 0.3, 1.0, 0.0], "Called tumor": [0.7, 0.3, 1.0, 0.0],
        "Mean true-class probability": [0.8] * 4, "Mean confidence": [0.9] * 4, "Chance": [0.25, 1 / 3, 1.0, 1.0],
    })
    figure = view.probe_figure(table, "Accuracy")
    marks = {trace.offsetgroup: list(trace.y) for trace in figure.data if trace.type == "scatter"}
    assert marks == {"Original": [0.25, 1.0], "Tumor occluded": [pytest.approx(1 / 3), 1.0]}
    bars = {trace.offsetgroup: list(trace.customdata) for trace in figure.data if trace.type == "bar"}
    assert bars == marks  # the hover's chance is the same number
    assert figure.layout.scattermode == "group" and not figure.layout.shapes


def test_curves_figure_draws_deletion_and_insertion_with_their_auc():
    figure = view.curves_figure(small_summary().models["bad_cnn"]["faithfulness"])
    assert [trace.name for trace in figure.data] == ["Deletion (AUC 0.45)", "Insertion (AUC 0.80)"]
    assert list(figure.data[0].x) == [0.0, 0.5, 1.0]
    assert not view.curves_figure({}).data


def test_worst_images_rank_by_the_chosen_measure():
    assert list(view.worst_images(per_image(), view.BY_OUTSIDE, 3)["id"]) == ["b", "d", "a"]
    assert list(view.worst_images(per_image(), view.BY_BORDER, 2)["id"]) == ["a", "c"]
    # Still right with the head blacked out: b, d and c (no outside-head share: last); not a.
    assert list(view.worst_images(per_image(), view.BY_BACKGROUND, 10)["id"]) == ["b", "d", "c"]
    assert list(view.worst_images(per_image(), view.BY_OUTSIDE, 1).columns) == view.WORST_COLUMNS
    with pytest.raises(ValueError):
        view.worst_images(per_image(), "loudest", 3)


def test_worst_caption_marks_right_and_wrong():
    rows = per_image().to_dict("records")
    assert view.worst_caption(rows[0]) == "glioma → glioma ✓ · 20% outside head · 60% border · no head → notumor"
    assert view.worst_caption(rows[2]).startswith("notumor → glioma ✗ · n/a outside head")


def test_cluster_table_and_pictures():
    record = small_summary().models["bad_cnn"]
    assert clusters_view.cluster_classes(record) == ["notumor"]
    table = clusters_view.cluster_table(record, "notumor")
    assert list(table["Clever-Hans candidate"]) == [shortcuts_view.YES, shortcuts_view.NO]
    assert math.isnan(table.loc[1, "Off head"])
    clusters = clusters_view.cluster_list(record, "notumor")
    assert clusters_view.mean_map(clusters[1]) is None
    picture = clusters_view.map_picture(clusters_view.mean_map(clusters[0]), scale=0.5, size=32)
    assert picture.shape == (32, 32, 3) and picture.dtype == np.uint8
    assert clusters_view.cluster_table(record, "glioma").empty


def test_clusters_share_one_colour_scale_and_show_the_examples_the_archive_holds():
    record = small_summary().models["bad_cnn"]
    clusters = clusters_view.cluster_list(record, "notumor")
    assert clusters_view.clusters_scale(clusters) == pytest.approx(0.5)  # the garbled map is left out
    assert clusters_view.clusters_scale([]) == 1.0
    images = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    shown = clusters_view.cluster_examples(clusters[0], images, np.array(["b", "x", "a"]))
    np.testing.assert_array_equal(np.stack(shown), images[[2, 0]])  # examples a, b in stored order
    assert clusters_view.cluster_examples(clusters[0], None, None) == []
    caption = clusters_view.clusters_caption(record, "notumor")
    assert caption.startswith("2 cluster(s) of the maps of images predicted notumor (k = 2, 4 neighbours).")
