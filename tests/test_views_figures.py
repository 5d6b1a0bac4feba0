"""bt_dashboard.views.figures: what every page's figures share (no Streamlit)."""

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

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


def tick_labels(low: float, high: float, ticks: dict) -> list[str]:
    """The labels plotly prints for ``ticks`` on [low, high] (d3's ".3f" / ".1%" are
    Python's format specs of the same name)."""
    step = ticks["dtick"]
    first = np.ceil((low - ticks["tick0"]) / step - 1e-9)
    positions = ticks["tick0"] + step * np.arange(first, np.floor((high - ticks["tick0"]) / step + 1e-9) + 1)
    return [format(position, ticks["tickformat"]) for position in positions]


@pytest.mark.parametrize(("low", "high"), [
    (0.975, 0.993),  # the Models page's macro AUC axis of issue 13
    (0.6, 0.95), (0.0, 1.0), (0.9810, 0.9815), (12.0, 130.0), (-0.03, 0.02), (0.5, 0.5),
])
@pytest.mark.parametrize("percent", [False, True])
def test_distinct_ticks_never_print_two_labels_alike(low, high, percent):
    ticks = view.distinct_ticks([high, low, float("nan")], percent=percent)
    labels = tick_labels(low - ticks["dtick"], high + ticks["dtick"], ticks)  # plotly pads the range
    assert 2 <= len(labels) <= view.DEFAULT_MAX_TICKS + 3
    assert len(set(labels)) == len(labels), labels


def test_distinct_ticks_pick_the_step_and_format_of_a_narrow_auc_axis():
    ticks = view.distinct_ticks([0.975, 0.993])
    assert ticks == {"tick0": 0, "dtick": 0.005, "tickformat": ".3f"}
    # The fixed ".2f" the issue saw repeats on the same ticks; the chosen format does not.
    two_decimals = [f"{value:.2f}" for value in (0.975, 0.98, 0.985, 0.99)]
    assert len(set(two_decimals)) < 4
    assert view.distinct_ticks([0.6, 0.95], percent=True) == {"tick0": 0, "dtick": 0.1, "tickformat": ".0%"}
    assert view.distinct_ticks([]) == view.distinct_ticks([0.0, 1.0])


@pytest.mark.parametrize(("span", "max_ticks", "step"), [
    (1.0, 6, 0.2), (0.018, 6, 0.005), (118.0, 6, 50.0), (10.0, 11, 1.0), (0.0, 6, 0.2), (3.0, 2, 5.0),
])
def test_tick_step_is_one_two_or_five_times_a_power_of_ten(span, max_ticks, step):
    assert view.tick_step(span, max_ticks) == pytest.approx(step)
    assert (abs(span) or 1) / view.tick_step(span, max_ticks) <= max_ticks - 1 + 1e-9


def test_tick_step_refuses_fewer_than_two_ticks():
    with pytest.raises(ValueError, match="max_ticks must be at least 2, got 1"):
        view.tick_step(1.0, 1)


def test_enlarge_fonts_reaches_axes_legend_annotations_trace_texts_and_colour_bars():
    figure = make_subplots(rows=1, cols=2)
    figure.add_trace(go.Heatmap(z=[[1, 2], [3, 4]], text=[["a", "b"], ["c", "d"]], texttemplate="%{text}"), 1, 1)
    figure.add_trace(go.Bar(x=["a"], y=[1], text=["1"]), 1, 2)
    figure.add_trace(go.Image(z=np.zeros((2, 2, 3))), 1, 2)  # no text, no colour bar: skipped
    figure.add_annotation(text="note", x=0, y=0)
    view.enlarge_fonts(figure, 20)
    layout = figure.layout
    assert layout.font.size == layout.legend.font.size == layout.hoverlabel.font.size == 20
    assert layout.title.font.size == 24
    assert all(axis.tickfont.size == 20 and axis.title.font.size == 20
               for axis in (layout.xaxis, layout.xaxis2, layout.yaxis, layout.yaxis2))
    assert layout.annotations[0].font.size == 20
    heatmap, bar, _ = figure.data
    assert heatmap.textfont.size == bar.textfont.size == heatmap.colorbar.tickfont.size == 20
