"""What every page's figures share (no Streamlit): one colour per model, the PNG export
settings, and where legends go. Each page's own figures live in its view module.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.express as px
import plotly.graph_objects as go


# D3's ten, then Dark24: a zoo larger than ten models still gets distinct colours.
MODEL_PALETTE = px.colors.qualitative.D3 + px.colors.qualitative.Dark24
CLASS_PALETTE = px.colors.qualitative.Set2
REFERENCE_LINE = {"color": "#9ca3af", "dash": "dot", "width": 1}
PNG_SCALE = 2


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
