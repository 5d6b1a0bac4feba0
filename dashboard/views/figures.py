"""What every page's figures share (no Streamlit): one colour per model, the PNG export
settings, where legends go, presentation-size fonts and tick settings whose labels never
repeat. Each page's own figures live in its view module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go


# D3's ten, then Dark24: a zoo larger than ten models still gets distinct colours.
MODEL_PALETTE = px.colors.qualitative.D3 + px.colors.qualitative.Dark24
CLASS_PALETTE = px.colors.qualitative.Set2
REFERENCE_LINE = {"color": "#9ca3af", "dash": "dot", "width": 1}
PNG_SCALE = 2
PRESENTATION_FONT_SIZE = 18
# Steps of a tick axis: 1, 2 or 5 times a power of ten, as plotly's own.
TICK_MANTISSAS = (1, 2, 5)
DEFAULT_MAX_TICKS = 6


def model_colors(model_names: Sequence[str]) -> dict[str, str]:
    """One colour per model, by position in the run's manifest (stable across pages)."""
    return {name: MODEL_PALETTE[index % len(MODEL_PALETTE)] for index, name in enumerate(model_names)}


def export_config(filename: str) -> dict:
    """Plotly config: the modebar camera saves a PNG at twice the size under ``filename``."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": PNG_SCALE},
    }


def legend_below(figure: go.Figure) -> go.Figure:
    """Legend under the x axes: above, it would hide the subplot titles."""
    figure.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0, "title": None},
        margin={"t": 60, "b": 90, "l": 50, "r": 20},
    )
    return figure


def legend_right(figure: go.Figure) -> go.Figure:
    """A vertical legend right of the plot: room for many models without hiding the title."""
    figure.update_layout(
        legend={"orientation": "v", "yanchor": "top", "y": 1, "x": 1.02, "xanchor": "left", "title": None},
        margin={"t": 60, "b": 40, "l": 50, "r": 20},
    )
    return figure


def enlarge_fonts(figure: go.Figure, size: int = PRESENTATION_FONT_SIZE) -> go.Figure:
    """Larger type on every part of a figure: Streamlit's chart theme replaces the global
    layout font, so titles, legend, axes, colour bars, annotations and trace texts are each
    set explicitly."""
    font = {"size": size}
    figure.update_layout(font=font, legend_font=font, title_font={"size": size + 4}, hoverlabel_font=font)
    figure.update_xaxes(tickfont=font, title_font=font)
    figure.update_yaxes(tickfont=font, title_font=font)
    figure.update_annotations(font_size=size)
    for trace in figure.data:
        for name, value in (("textfont_size", size), ("colorbar_tickfont_size", size)):
            try:
                trace.update({name: value})
            except ValueError:
                pass  # this trace type has no such text (an image has no colour bar)
    return figure


def tick_step(span: float, max_ticks: int = DEFAULT_MAX_TICKS) -> float:
    """The smallest step of 1, 2 or 5 times a power of ten that puts at most ``max_ticks``
    ticks on an axis ``span`` long (a span of 0 reads as 1)."""
    if max_ticks < 2:
        raise ValueError(f"max_ticks must be at least 2, got {max_ticks}")
    span = abs(float(span)) or 1.0
    raw = span / (max_ticks - 1)
    power = math.floor(math.log10(raw))
    for exponent in (power, power + 1):
        for mantissa in TICK_MANTISSAS:
            step = mantissa * 10.0 ** exponent
            if step >= raw * (1 - 1e-9):
                return step
    return 10.0 ** (power + 1)  # unreachable: 10 x 10^power >= raw


def tick_decimals(step: float, percent: bool = False) -> int:
    """Decimals that print every multiple of ``step`` (1, 2 or 5 x 10^k) exactly, so two
    ticks never print alike; two fewer for a percent axis."""
    exponent = math.floor(math.log10(abs(step)) + 1e-9)
    return max(0, -exponent - (2 if percent else 0))


def distinct_ticks(
    values: Iterable[float], *, max_ticks: int = DEFAULT_MAX_TICKS, percent: bool = False
) -> dict:
    """Axis settings (``tick0``, ``dtick``, ``tickformat``) for data ``values`` whose labels
    never repeat: plotly's own choice of step can be finer than a fixed ``tickformat`` prints
    ("0.98 0.98 0.99 0.99" on a macro AUC axis at ``.2f``), so the step is fixed from the
    values' span and the format shows as many decimals as that step needs.

    Use as ``figure.update_xaxes(**distinct_ticks(values), row=..., col=...)``; ``percent``
    for values in [0, 1] shown as percentages. The values' finite entries count; none gives
    the settings of the span [0, 1]."""
    numbers = np.asarray(list(values), dtype=float)
    numbers = numbers[np.isfinite(numbers)]
    low, high = (float(numbers.min()), float(numbers.max())) if numbers.size else (0.0, 1.0)
    span = high - low or (abs(high) * 0.1 or 1.0)
    step = tick_step(span, max_ticks)
    decimals = tick_decimals(step, percent)
    return {"tick0": 0, "dtick": step, "tickformat": f".{decimals}{'%' if percent else 'f'}"}
