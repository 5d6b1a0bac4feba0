"""bt_dashboard.views.training: the Training page's histories, phases and learning curves (no Streamlit)."""

import pandas as pd
import pytest

from bt_dashboard.views import figures
from bt_dashboard.views import training as view

from fabricate import FINE_TUNED_MODEL


MODELS = ["simple_cnn", "custom_cnn", "efficientnet_b0"]


@pytest.fixture
def colors():
    return figures.model_colors(MODELS)


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


def test_histories_of_usable_models_and_two_phases_for_the_fine_tuned_one(run, zoo):
    histories = view.histories(run)
    assert zoo.failed_model not in histories
    assert list(dict.fromkeys(histories[FINE_TUNED_MODEL]["phase"])) == ["head", "fine_tune"]
    assert view.best_epoch(run, FINE_TUNED_MODEL) == zoo.manifest["models"][FINE_TUNED_MODEL]["best_epoch"]


def test_phase_spans_split_the_history_where_the_phase_changes():
    assert view.phase_spans(two_phase_history()) == [("head", 1, 2), ("fine_tune", 3, 5)]
    assert view.phase_spans(two_phase_history().assign(phase="scratch")) == [("scratch", 1, 5)]


def test_training_figure_marks_the_fine_tuning_phase_and_uses_a_log_lr_axis():
    figure = view.training_curves_figure(two_phase_history(), best_epoch=4)
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
    figure = view.training_curves_figure(two_phase_history().assign(phase="scratch"))
    assert not [shape for shape in figure.layout.shapes if shape.type == "rect"]


def test_validation_overlay_has_one_legend_entry_per_model(colors):
    history = two_phase_history()
    figure = view.validation_overlay_figure({"simple_cnn": history, "custom_cnn": history}, colors)
    shown = [trace.name for trace in figure.data if trace.showlegend]
    assert shown == ["simple_cnn", "custom_cnn"]
    assert len(figure.data) == 4
