"""bt_dashboard.views.figures: what every page's figures share (no Streamlit)."""

import pytest

from bt_dashboard.views import figures as view


MODELS = ["simple_cnn", "custom_cnn", "efficientnet_b0"]


@pytest.fixture
def colors():
    return view.model_colors(MODELS)


def test_model_colours_are_distinct_stable_and_follow_manifest_order():
    names = [f"model_{index}" for index in range(30)]
    colors = view.model_colors(names)
    assert len(set(colors.values())) == 30
    # A model keeps its colour whatever other figures show.
    assert view.model_colors(names[:3]) == {name: colors[name] for name in names[:3]}


def test_export_config_saves_a_named_png_at_twice_the_size():
    config = view.export_config("run_roc")
    assert config["toImageButtonOptions"] == {"format": "png", "filename": "run_roc", "scale": 2}
