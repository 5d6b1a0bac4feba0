"""The pure Plotly builders of the comparison views (dashboard/figures.py)."""

import numpy as np
import pandas as pd
import pytest

from dashboard import figures as f

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
MODELS = ["simple_cnn", "custom_cnn", "efficientnet_b0"]


@pytest.fixture
def colors():
    return f.model_colors(MODELS)


def curve(points):
    return pd.DataFrame(points, columns=["x", "y"])


def test_model_colours_are_distinct_stable_and_follow_manifest_order():
    names = [f"model_{index}" for index in range(30)]
    colors = f.model_colors(names)
    assert len(set(colors.values())) == 30
    # A model keeps its colour whatever other figures show.
    assert f.model_colors(names[:3]) == {name: colors[name] for name in names[:3]}


def test_export_config_saves_a_named_png_at_twice_the_size():
    config = f.export_config("run_roc")
    assert config["toImageButtonOptions"] == {"format": "png", "filename": "run_roc", "scale": 2}


def test_roc_overlay_has_one_coloured_curve_per_model_with_its_auc(colors):
    curves = {model: curve([(0, 0), (0.2, 0.7), (1, 1)]) for model in MODELS}
    areas = {"simple_cnn": 0.8, "custom_cnn": 0.85, "efficientnet_b0": float("nan")}
    figure = f.roc_overlay(curves, areas, colors, title="glioma")
    assert [trace.name for trace in figure.data] == [
        "simple_cnn (AUC 0.800)", "custom_cnn (AUC 0.850)", "efficientnet_b0 (AUC n/a)"
    ]
    assert [trace.line.color for trace in figure.data] == [colors[model] for model in MODELS]
    assert figure.layout.xaxis.title.text == "False positive rate"
    chance = figure.layout.shapes[0]
    assert (chance.x0, chance.y0, chance.x1, chance.y1) == (0, 0, 1, 1)


def test_pr_overlay_labels_average_precision_and_draws_the_prevalence_line(colors):
    figure = f.roc_overlay({"custom_cnn": curve([(0, 1), (1, 0.25)])}, {"custom_cnn": 0.61}, colors,
                           kind="pr", baseline=0.25)
    assert figure.data[0].name == "custom_cnn (AP 0.610)"
    assert figure.layout.xaxis.title.text == "Recall" and figure.layout.yaxis.title.text == "Precision"
    assert figure.layout.shapes[0].y0 == figure.layout.shapes[0].y1 == 0.25


def test_class_curves_figure_draws_each_class_in_class_order():
    table = pd.DataFrame(
        {"class": ["notumor"] * 2 + ["glioma"] * 2, "x": [0, 1, 0, 1], "y": [0, 1, 0, 1], "auc": [0.9, 0.9, 0.7, 0.7]}
    )
    figure = f.class_curves_figure(table, class_names=CLASSES)
    assert [trace.name for trace in figure.data] == ["glioma (AUC 0.700)", "notumor (AUC 0.900)"]


MATRIX = np.array([[8, 2, 0, 0], [1, 6, 1, 2], [0, 0, 10, 0], [0, 0, 0, 0]])


def test_row_normalize_gives_row_shares_and_leaves_an_empty_row_at_zero():
    shares = f.row_normalize(MATRIX)
    np.testing.assert_allclose(shares[0], [0.8, 0.2, 0, 0])
    np.testing.assert_allclose(shares[1].sum(), 1)
    assert (shares[3] == 0).all()


def test_confusion_figure_shows_counts_or_row_shares():
    counts = f.confusion_figure(MATRIX, CLASSES, normalized=False)
    heatmap = counts.data[0]
    assert np.array(heatmap.z).tolist() == MATRIX.tolist()
    assert heatmap.text[1][3] == "2"
    assert list(heatmap.x) == CLASSES and list(heatmap.y) == CLASSES

    shares = f.confusion_figure(MATRIX, CLASSES, normalized=True)
    assert shares.data[0].text[0][0] == "80%"
    assert shares.data[0].zmax == 1


def test_confusion_figure_has_a_clickable_marker_on_every_cell_naming_it():
    figure = f.confusion_figure(MATRIX, CLASSES, normalized=False)
    markers = figure.data[1]
    assert len(markers.x) == len(CLASSES) ** 2
    # Row 1 (true meningioma), column 3 (predicted pituitary) holds 2 images.
    index = 1 * len(CLASSES) + 3
    assert (markers.y[index], markers.x[index]) == ("meningioma", "pituitary")
    assert markers.customdata[index][0] == 2


def test_difference_figure_shows_b_minus_a_and_colours_improvement():
    a = np.array([[5, 5], [0, 10]])
    b = np.array([[8, 2], [1, 9]])
    figure = f.difference_figure(a, b, ["glioma", "notumor"], "A", "B", normalized=False)
    heatmap = figure.data[0]
    assert list(heatmap.text[0]) == ["+3", "-3"]
    # Both glioma cells improved for B: more right, fewer wrong, so both are positive.
    assert np.array(heatmap.z)[0].tolist() == [3, 3]
    # notumor: one fewer right and one more wrong, so both are negative.
    assert np.array(heatmap.z)[1].tolist() == [-1, -1]
    assert heatmap.zmid == 0


def two_phase_history():
    return pd.DataFrame(
        {
            "epoch": [1, 2, 3, 4, 5],
            "phase": ["head", "head", "fine_tune", "fine_tune", "fine_tune"],
            "loss": [1.0, 0.8, 0.6, 0.5, 0.45],
            "accuracy": [0.5, 0.6, 0.7, 0.75, 0.8],
            "val_loss": [1.1, 0.9, 0.7, 0.65, 0.66],
            "val_accuracy": [0.45, 0.55, 0.65, 0.7, 0.7],
            "lr": [1e-3, 1e-3, 1e-5, 5e-6, 2.5e-6],
        }
    )


def test_phase_spans_split_the_history_where_the_phase_changes():
    assert f.phase_spans(two_phase_history()) == [("head", 1, 2), ("fine_tune", 3, 5)]
    assert f.phase_spans(two_phase_history().assign(phase="scratch")) == [("scratch", 1, 5)]


def test_training_figure_marks_the_fine_tuning_phase_and_uses_a_log_lr_axis():
    figure = f.training_curves_figure(two_phase_history(), best_epoch=4)
    names = [trace.name for trace in figure.data]
    assert names == ["train loss", "validation loss", "train accuracy", "validation accuracy", "learning rate"]
    assert figure.layout.yaxis3.type == "log"
    shaded = [shape for shape in figure.layout.shapes if shape.type == "rect"]
    assert len(shaded) == 3  # one per panel
    assert {shape.x0 for shape in shaded} == {2.5} and {shape.x1 for shape in shaded} == {5.5}
    phase_lines = [s for s in figure.layout.shapes if s.type == "line" and s.x0 == 2.5]
    assert len(phase_lines) == 3
    assert any("fine_tune" in annotation.text for annotation in figure.layout.annotations)


def test_training_figure_of_one_phase_has_no_phase_marks():
    figure = f.training_curves_figure(two_phase_history().assign(phase="scratch"))
    assert not [shape for shape in figure.layout.shapes if shape.type == "rect"]


def test_validation_overlay_has_one_legend_entry_per_model(colors):
    history = two_phase_history()
    figure = f.validation_overlay_figure({"simple_cnn": history, "custom_cnn": history}, colors)
    shown = [trace.name for trace in figure.data if trace.showlegend]
    assert shown == ["simple_cnn", "custom_cnn"]
    assert len(figure.data) == 4


def test_reliability_figure_overlays_models_with_their_ece(colors):
    bins = pd.DataFrame(
        {"bin": [0, 1], "lower": [0.0, 0.5], "upper": [0.5, 1.0], "confidence": [0.4, np.nan],
         "accuracy": [0.3, np.nan], "count": [10, 0]}
    )
    figure = f.reliability_figure({"simple_cnn": bins, "custom_cnn": bins}, {"simple_cnn": 0.031,
                                  "custom_cnn": 0.2}, colors)
    lines = [trace for trace in figure.data if trace.type == "scatter" and trace.legendgroup]
    assert [trace.name for trace in lines] == ["simple_cnn (ECE 3.1%)", "custom_cnn (ECE 20.0%)"]
    assert list(lines[0].x) == [0.4]  # empty bins are not drawn
    assert figure.data[0].name == "perfectly calibrated"


def test_significance_heatmap_stars_significant_pairs_and_leaves_the_diagonal_blank():
    matrix = pd.DataFrame([[np.nan, 0.01], [0.01, np.nan]], index=["a", "b"], columns=["a", "b"])
    figure = f.significance_heatmap(matrix, alpha=0.05)
    assert figure.data[0].text[0][1] == "0.01*"
    assert figure.data[0].text[0][0] == ""
    matrix.iloc[0, 1] = matrix.iloc[1, 0] = 0.2
    assert f.significance_heatmap(matrix).data[0].text[1][0] == "0.2"


def test_leaderboard_ci_figure_draws_each_interval_around_its_estimate(colors):
    leaderboard = pd.DataFrame(
        {"model": ["simple_cnn", "custom_cnn"], "accuracy": [0.8, 0.9], "accuracy_lower": [0.7, 0.85],
         "accuracy_upper": [0.85, 0.95], "macro_f1": [0.78, 0.88], "macro_f1_lower": [0.7, 0.8],
         "macro_f1_upper": [0.8, 0.9], "macro_auc": [0.9, 0.95], "macro_auc_lower": [0.85, 0.9],
         "macro_auc_upper": [0.95, 0.99]}
    )
    figure = f.leaderboard_ci_figure(leaderboard, colors)
    assert len(figure.data) == 6  # 2 models x 3 metrics
    first = figure.data[0]
    assert first.y == ("simple_cnn",) and first.x == (0.8,)
    assert first.error_x.array[0] == pytest.approx(0.05) and first.error_x.arrayminus[0] == pytest.approx(0.1)
    assert first.marker.color == colors["simple_cnn"]
    assert [a.text for a in figure.layout.annotations] == ["Accuracy", "Macro F1", "Macro AUC"]
