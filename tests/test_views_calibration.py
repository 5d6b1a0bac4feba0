"""bt_dashboard.views.calibration: the Calibration page's reliability bins, table and figure (no Streamlit)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from bt_dashboard.views import calibration as view
from bt_dashboard.views import common
from bt_dashboard.views import figures



MODELS = ["simple_cnn", "custom_cnn", "efficientnet_b0"]


@pytest.fixture
def colors():
    return figures.model_colors(MODELS)


def test_calibration_table_has_ece_brier_and_accuracy_per_model(model_data, zoo):
    table = view.calibration_table(model_data, 15)
    assert list(table[common.MODEL]) == list(model_data)
    assert table[common.ECE].between(0, 1).all() and (table[common.BRIER] > 0).all()
    rows = table.set_index(common.MODEL)
    for name, predictions in zoo.predictions.items():
        expected = accuracy_score(predictions["label"], predictions["pred"])
        assert rows.loc[name, common.ACCURACY] == pytest.approx(expected) == zoo.metrics[name]["accuracy"]
    # The sharpest fabricated model (temperature 0.7) is over-confident.
    assert table.set_index(common.MODEL).loc["simple_cnn", "Confidence − accuracy"] > 0


def test_reliability_bins_count_every_test_image(model_data, zoo):
    bins = view.reliability_by_model(model_data, 10)
    for table in bins.values():
        assert table["count"].sum() == len(zoo.test_ids)


def test_reliability_figure_overlays_models_with_their_ece(colors):
    bins = pd.DataFrame(
        {"bin": [0, 1], "lower": [0.0, 0.5], "upper": [0.5, 1.0], "confidence": [0.4, np.nan],
         "accuracy": [0.3, np.nan], "count": [10, 0]}
    )
    figure = view.reliability_figure({"simple_cnn": bins, "custom_cnn": bins}, {"simple_cnn": 0.031,
                                  "custom_cnn": 0.2}, colors)
    lines = [trace for trace in figure.data if trace.type == "scatter" and trace.legendgroup]
    assert [trace.name for trace in lines] == ["simple_cnn (ECE 3.1%)", "custom_cnn (ECE 20.0%)"]
    assert list(lines[0].x) == [0.4]  # empty bins are not drawn
    assert figure.data[0].name == "perfectly calibrated"
