"""bt_dashboard.views.shortcut_overview: the Shortcuts page's first screen (no Streamlit)."""

from __future__ import annotations

import numpy as np
import pytest

from bt_core.artifacts import ShortcutSummary
from bt_core.shortcuts import flags
from bt_dashboard.views import shortcut_overview as view
from bt_dashboard.views import shortcut_model


def part(value, threshold, direction="above", reference=0.1, n=40):
    return {"value": value, "reference": reference, "threshold": threshold, "direction": direction,
            "part": 0.5, "n": n, "too_few": n < flags.MIN_GROUP_IMAGES}


def summary() -> ShortcutSummary:
    """``marked`` flagged on all images (border), ``quiet`` within meningioma only (score 0),
    ``tiny`` measured on 6 images."""
    return ShortcutSummary.from_json({"models": {
        "marked": {"score": 0.3, "parts": {"all": {"border": part(0.5, 0.25), "in_box": part(0.1, 0.2, "below")}},
                   "flags": [{"name": "border", "overall": True, "classes": []},
                             {"name": "in_box", "overall": True, "classes": []}]},
        "quiet": {"score": 0.0,
                  "parts": {"all": {"border": part(0.1, 0.25), "in_box": part(0.3, 0.2, "below")},
                            "meningioma": {"in_box": part(0.1, 0.2, "below", n=12),
                                           "background_class": part(0.25, 0.5, n=12)}},
                  "flags": [{"name": "in_box", "overall": False, "classes": ["meningioma"]}]},
        "tiny": {"score": None, "parts": {"all": {"border": part(0.9, 0.25, n=6)}}, "flags": []},
    }})


def test_points_put_each_evaluation_beside_its_models_own_point():
    measured = ShortcutSummary.from_json({"models": {"marked": {"score": 0.45, "flags": []}}})
    points = view.overview_points(summary(), {"marked": 0.97, "quiet": 0.6},
                                  [("site_b", measured, {"marked": 0.7, "quiet": 0.55}), ("site_c", None, {"quiet": 0.5})])
    own = points[points["Test set"] == view.OWN_TEST_SET].set_index("Model")
    assert own.loc["marked", "Accuracy"] == 0.97 and own.loc["quiet", "Score"] == 0.0
    assert own.loc["marked", "Verdict"] == flags.ALL_IMAGES and own.loc["quiet", "Verdict"] == "flagged in meningioma only"
    assert np.isnan(own.loc["tiny", "Accuracy"])
    other = points[points["Test set"] != view.OWN_TEST_SET]
    assert other[["Model", "Test set", "Accuracy", "Score", "Score measured on"]].values.tolist() == [
        ["marked", "site_b", 0.7, 0.45, "site_b"],  # the evaluation's own score
        ["quiet", "site_b", 0.55, 0.0, view.OWN_TEST_SET],  # not measured there: the run's
        ["quiet", "site_c", 0.5, 0.0, view.OWN_TEST_SET],
    ]
    figure = view.overview_figure(points, {"marked": "#1f77b4", "quiet": "#ff7f0e"})
    joins = [trace for trace in figure.data if trace.mode == "lines"]
    assert [(list(t.x), list(t.y)) for t in joins] == [([0.97, 0.7], [0.3, 0.45]), ([0.6, 0.55], [0.0, 0.0]),
                                                       ([0.6, 0.5], [0.0, 0.0])]
    diamonds = [trace for trace in figure.data if trace.marker.symbol == "diamond"]
    assert [trace.name for trace in diamonds] == ["marked on site_b", "quiet on site_b", "quiet on site_c"]
    region = figure.layout.shapes[0]
    assert (region.x0, region.y0) == (view.REGION_ACCURACY, view.REGION_SCORE) and region.x1 > 1
    assert figure.layout.annotations[0].text == f"<b>{view.REGION_LABEL}</b>"
    rings = {trace.name: trace.marker.line.color for trace in figure.data if trace.mode == "markers+text"
             and trace.marker.symbol != "diamond"}
    assert rings["marked"] == view.VERDICT_MARKERS[flags.ALL_IMAGES][1]
    assert rings["quiet"] == view.VERDICT_MARKERS[flags.CLASSES_ONLY][1]


def test_the_heatmap_is_each_part_over_its_threshold():
    ratios, texts, hovers = view.parts_grid(summary())
    border, in_box, by_class = (flags_label("border"), flags_label("in_box"), flags_label("background_class"))
    assert ratios.loc["marked", border] == pytest.approx(2.0) and texts.loc["marked", border] == "2.00 ⚑"
    assert ratios.loc["marked", in_box] == pytest.approx(2.0)  # below: threshold over value
    assert ratios.loc["quiet", in_box] == pytest.approx(0.2 / 0.3)
    assert texts.loc["quiet", in_box] == "0.66 ◐"  # rounded down: short of its threshold
    assert "fired within meningioma" in hovers.loc["quiet", in_box]
    assert ratios.loc["quiet", by_class] == pytest.approx(0.5) and texts.loc["quiet", by_class] == "0.50"
    assert "meningioma images" in hovers.loc["quiet", by_class]
    assert texts.loc["tiny", border] == "too few" and np.isnan(ratios.loc["tiny", border])
    assert texts.loc["tiny", in_box] == "—"
    assert "value 50.0%, threshold 25.0% (fires when above)" in hovers.loc["marked", border]
    figure = view.parts_heatmap(summary())
    assert list(figure.data[0].y) == ["marked", "quiet", "tiny"] and figure.data[0].zmax == view.RATIO_CAP


def flags_label(name: str) -> str:
    from bt_core.shortcuts.wording import PART_LABELS
    return PART_LABELS[name]


def test_the_parts_table_says_too_few_images():
    record = summary().models["tiny"]
    assert shortcut_model.parts_table(record)["Fires"].tolist() == [flags.TOO_FEW_IMAGES]


def test_mean_maps_grid_has_a_map_and_a_head_outline_per_model_and_class():
    head = np.zeros((8, 8), np.float32)
    head[2:6, 2:6] = 1.0
    stored = {"classes": ("glioma", "notumor"), "counts": np.array([3, 4]),
              "maps": np.stack([np.full((8, 8), 0.2), np.full((8, 8), 0.6)]).astype(np.float32),
              "heads": np.stack([head, head])}
    means = {"a": stored, "b": {**stored, "classes": ("notumor",), "counts": np.array([4]),
                                "maps": stored["maps"][1:], "heads": stored["heads"][1:]}}
    assert view.mean_map_classes(means, ["glioma", "meningioma", "notumor"]) == ["glioma", "notumor"]
    figure = view.mean_maps_figure(means, ["glioma", "meningioma", "notumor"], "Grad-CAM")
    heatmaps = [trace for trace in figure.data if trace.type == "heatmap"]
    assert [trace.name for trace in heatmaps] == ["a · glioma", "a · notumor", "b · notumor"]
    assert [trace.zmax for trace in heatmaps] == pytest.approx([0.6] * 3)  # one scale for all
    x, y = view.head_outline(head)
    corners = {(px, py) for px, py in zip(x, y) if px is not None}
    assert corners == {(2.0, 2.0), (2.0, 5.0), (5.0, 5.0), (5.0, 2.0)}
    assert view.head_outline(np.zeros((4, 4))) == ([], [])
    assert view.missing_mean_maps_line(["a"], view.explain_command("/runs/my run")) == (
        "No mean maps per class stored for a (analyzed before they were stored): re-run `bt-zoo explain '/runs/my run'`.")
