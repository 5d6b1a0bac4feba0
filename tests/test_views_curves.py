"""bt_dashboard.views.curves: the ROC & PR page's curves, areas and overlays (no Streamlit)."""

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from bt_dashboard.views import curves as view
from bt_dashboard.views import figures

from fabricate import CLASS_NAMES


CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


MODELS = ["simple_cnn", "custom_cnn", "efficientnet_b0"]


@pytest.fixture
def colors():
    return figures.model_colors(MODELS)


def curve(points):
    return pd.DataFrame(points, columns=["x", "y"])


def test_curves_for_one_class_give_each_models_curve_and_auc(model_data, zoo):
    by_model = view.class_curves_by_model(model_data, CLASS_NAMES, "roc")
    curves, areas = view.curves_for_class(by_model, "glioma")
    assert list(curves) == zoo.good_models
    predictions = zoo.predictions["simple_cnn"]
    expected = roc_auc_score(predictions["label"] == "glioma", predictions["p_glioma"])
    assert areas["simple_cnn"] == pytest.approx(expected)
    assert list(curves["simple_cnn"].columns) == ["x", "y"]


def test_tumor_roc_per_model_runs_from_zero_to_one(model_data):
    curves = view.tumor_roc_by_model(model_data, CLASS_NAMES)
    assert set(curves) == set(model_data)
    for curve in curves.values():
        assert curve["x"].iloc[0] == 0 and curve["y"].iloc[-1] == 1


def test_no_tumor_roc_without_a_notumor_class(model_data):
    assert view.tumor_roc_by_model(model_data, ["a", "b", "c", "d"]) == {}
    assert not view.has_tumor_class(["a", "b"])


def test_class_prevalence_is_the_share_of_the_class(model_data):
    assert view.class_prevalence(model_data, CLASS_NAMES, "notumor") == pytest.approx(0.25)


def test_roc_overlay_has_one_coloured_curve_per_model_with_its_auc(colors):
    curves = {model: curve([(0, 0), (0.2, 0.7), (1, 1)]) for model in MODELS}
    areas = {"simple_cnn": 0.8, "custom_cnn": 0.85, "efficientnet_b0": float("nan")}
    figure = view.roc_overlay(curves, areas, colors, title="glioma")
    assert [trace.name for trace in figure.data] == [
        "simple_cnn (AUC 0.800)", "custom_cnn (AUC 0.850)", "efficientnet_b0 (AUC n/a)"
    ]
    assert [trace.line.color for trace in figure.data] == [colors[model] for model in MODELS]
    assert figure.layout.xaxis.title.text == "False positive rate"
    chance = figure.layout.shapes[0]
    assert (chance.x0, chance.y0, chance.x1, chance.y1) == (0, 0, 1, 1)


def test_pr_overlay_labels_average_precision_and_draws_the_prevalence_line(colors):
    figure = view.roc_overlay({"custom_cnn": curve([(0, 1), (1, 0.25)])}, {"custom_cnn": 0.61}, colors,
                           kind="pr", baseline=0.25)
    assert figure.data[0].name == "custom_cnn (AP 0.610)"
    assert figure.layout.xaxis.title.text == "Recall" and figure.layout.yaxis.title.text == "Precision"
    assert figure.layout.shapes[0].y0 == figure.layout.shapes[0].y1 == 0.25


def test_class_curves_figure_draws_each_class_in_class_order():
    table = pd.DataFrame(
        {"class": ["notumor"] * 2 + ["glioma"] * 2, "x": [0, 1, 0, 1], "y": [0, 1, 0, 1], "auc": [0.9, 0.9, 0.7, 0.7]}
    )
    figure = view.class_curves_figure(table, class_names=CLASSES)
    assert [trace.name for trace in figure.data] == ["glioma (AUC 0.700)", "notumor (AUC 0.900)"]
