"""What the Inspect page shows (no Streamlit): which test images to offer, in what order,
which class a map explains, where a map comes from (precomputed or computed now), and the
probability bars. The pictures, outlines and shares are in :mod:`bt_dashboard.views.inspect_pictures`.

Image filters work on the models chosen on the page (``ModelData`` of one run, rows in
the same test-image order for every model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bt_core.artifacts import Run
from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views import deep_links
from bt_dashboard.views.inspect_pictures import Picture, live_shares, prepare_upload, stored_shares


INSPECT_PAGE = "app_pages/inspect.py"


# ?image=<test id> opens that image on the Inspect page (links from other pages use it).
IMAGE_QUERY_PARAM = deep_links.IMAGE


# The image shown last, kept across page switches (widget state is not).
SELECTED_IMAGE_KEY = "inspect_selected_image"
ALL_CLASSES = "All classes"
ALL_IMAGES = "All images"
MISCLASSIFIED_ANY = "Misclassified by any model"
MISCLASSIFIED_ALL = "Misclassified by all models"
DISAGREE = "Models disagree"
CONFIDENT_ERRORS = "Most confident errors"
FILTER_MODES = (ALL_IMAGES, MISCLASSIFIED_ANY, MISCLASSIFIED_ALL, DISAGREE, CONFIDENT_ERRORS)
OVERVIEW_COLUMNS = ["id", "label", "n_models", "n_wrong", "disagree", "error_probability", "error_model", "error_pred"]
TARGET_PREDICTED = "predicted"
TARGET_TRUE = "true"
SOURCE_PRECOMPUTED = "precomputed"
SOURCE_LIVE = "live"
RIGHT_COLOR, WRONG_COLOR, OTHER_COLOR = "#2ca02c", "#d62728", "#9aa5b1"


# Methods whose live map may take long, and why (shown while it is computed).
SLOW_LIVE_METHODS = {
    "scorecam": "one masked pass per channel of the layer: about a second for a small CNN, "
                "minutes for a 224 px backbone on a CPU; Faster Score-CAM is the interactive one, "
                "and `python train_all.py --explain RUN_DIR --methods scorecam` precomputes it",
}


def live_map_message(method_label: str, method: str, model: str) -> str:
    """What the page says while a live map is computed."""
    slow = SLOW_LIVE_METHODS.get(method)
    return f"{method_label} of {model}…" + (f" ({slow})" if slow else "")


# --------------------------------------------------------------------------- choosing images


def image_overview(
    model_data: Mapping[str, ModelData], class_names: Sequence[str], models: Iterable[str] | None = None
) -> pd.DataFrame:
    """One row per test image (test order) over the chosen models.

    Columns: ``id``, ``label``, ``n_models`` (chosen models), ``n_wrong`` (those that got
    it wrong), ``disagree``
    (the models predict more than one class), ``error_probability`` (the highest
    probability any chosen model gave a wrong prediction; NaN when none is wrong),
    ``error_model`` and ``error_pred`` (that model and its prediction).
    """
    names = [name for name in (model_data if models is None else models) if name in model_data]
    if not model_data:
        return pd.DataFrame(columns=OVERVIEW_COLUMNS)
    reference = next(iter(model_data.values()))
    n = len(reference.ids)
    overview = pd.DataFrame(
        {"id": np.asarray(reference.ids, dtype=str), "label": np.asarray(class_names)[reference.y_true]}
    )
    overview["n_models"] = len(names)
    if not names:
        overview["n_wrong"] = 0
        overview["disagree"] = False
        overview["error_probability"] = np.nan
        overview["error_model"] = None
        overview["error_pred"] = None
        return overview
    predicted = np.stack([np.asarray(model_data[name].proba).argmax(axis=1) for name in names], axis=1)
    confidence = np.stack([np.asarray(model_data[name].proba).max(axis=1) for name in names], axis=1)
    wrong = predicted != np.asarray(reference.y_true)[:, np.newaxis]
    error_confidence = np.where(wrong, confidence, -1.0)
    worst = error_confidence.argmax(axis=1)
    rows = np.arange(n)
    any_wrong = wrong.any(axis=1)
    overview["n_wrong"] = wrong.sum(axis=1)
    overview["disagree"] = (predicted != predicted[:, :1]).any(axis=1)
    overview["error_probability"] = np.where(any_wrong, error_confidence[rows, worst], np.nan)
    overview["error_model"] = np.where(any_wrong, np.asarray(names, dtype=object)[worst], None)
    overview["error_pred"] = np.where(
        any_wrong, np.asarray(class_names, dtype=object)[predicted[rows, worst]], None
    )
    return overview


def filter_image_ids(overview: pd.DataFrame, class_name: str | None = None, mode: str = ALL_IMAGES) -> list[str]:
    """The test ids a filter keeps, in test order, or by falling wrong-prediction
    probability for :data:`CONFIDENT_ERRORS` (ties keep test order).

    ``class_name``: a true class, or None / :data:`ALL_CLASSES` for every class.
    """
    if mode not in FILTER_MODES:
        raise ValueError(f"unknown filter {mode!r}; use one of {FILTER_MODES}")
    rows = overview
    if class_name not in (None, ALL_CLASSES):
        rows = rows[rows["label"] == class_name]
    if mode == MISCLASSIFIED_ANY:
        rows = rows[rows["n_wrong"] > 0]
    elif mode == MISCLASSIFIED_ALL:
        rows = rows[(rows["n_wrong"] == rows["n_models"]) & (rows["n_models"] > 0)]
    elif mode == DISAGREE:
        rows = rows[rows["disagree"]]
    elif mode == CONFIDENT_ERRORS:
        rows = rows[rows["n_wrong"] > 0].sort_values("error_probability", ascending=False, kind="stable")
    return [str(image_id) for image_id in rows["id"]]


def step_image(ids: Sequence[str], current: str | None, step: int) -> str | None:
    """The id ``step`` places from ``current`` in ``ids``, wrapping at both ends.

    An id not in the list (a filter changed under it) steps from outside the list:
    next gives the first id, previous the last. None for an empty list.
    """
    ids = list(ids)
    if not ids:
        return None
    if current not in ids:
        return ids[0] if step >= 0 else ids[-1]
    return ids[(ids.index(current) + step) % len(ids)]


def image_caption(row: Mapping[str, Any]) -> str:
    """How an image is named in the picker: its id, true class and how many models erred."""
    text = f"{row['id']} · {row['label']}"
    if row.get("n_wrong"):
        text += f" · {int(row['n_wrong'])} wrong"
        probability = row.get("error_probability")
        if probability is not None and np.isfinite(probability):
            text += f" (p={float(probability):.2f})"
    return text


def target_class_index(target: str, predicted: int, true: int | None, class_names: Sequence[str]) -> int:
    """The class a map explains: ``"predicted"``, ``"true"`` (the predicted class when the
    truth is unknown, as for an upload) or a class name."""
    if target == TARGET_PREDICTED:
        return int(predicted)
    if target == TARGET_TRUE:
        return int(predicted if true is None else true)
    if target in class_names:
        return list(class_names).index(target)
    raise ValueError(f"unknown target {target!r}; use predicted, true or a class name")


def target_label(target: str) -> str:
    """How an "Explain" choice reads: the predicted class, the true class or a class name."""
    if target == TARGET_PREDICTED:
        return "Predicted class"
    if target == TARGET_TRUE:
        return "True class"
    return f"Class {target}"


def precomputed_map(
    maps: tuple[np.ndarray, np.ndarray, np.ndarray] | None, image_id: str, class_index: int
) -> np.ndarray | None:
    """The stored map of one image when it explains ``class_index``; else None (compute live)."""
    if maps is None:
        return None
    stored, ids, classes = maps
    positions = np.flatnonzero(np.asarray(ids) == image_id)
    if not len(positions) or int(classes[positions[0]]) != int(class_index):
        return None
    return stored[positions[0]]



# --------------------------------------------------------------------------- display and maps


@dataclass(frozen=True)
class Display:
    """The page's settings: what is computed (models, method, target class, live), then how
    the pictures are drawn (colour map, map opacity, outlines; the display controls)."""

    models: list[str]
    method: str
    target: str
    live: bool = False
    colormap: str = "jet"
    alpha: float = 0.45
    outlines: bool = True


def model_input_size(run: Run, name: str) -> int:
    """The square input size of a model, as its stored spec says (the run's image size
    when the entry stores no spec)."""
    spec = run.entry(name).spec
    return spec.input_size if spec is not None else run.image_size


def test_image_map(
    stored: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    image_id: str,
    class_index: int,
    live: bool,
    compute_live: Callable[[], np.ndarray],
) -> tuple[np.ndarray, str]:
    """A test image's map and its source: the precomputed one (``stored``: maps, ids, classes)
    when it explains ``class_index`` and ``live`` is off, else ``compute_live()``."""
    cam = None if live else precomputed_map(stored, image_id, class_index)
    if cam is not None:
        return cam, SOURCE_PRECOMPUTED
    return compute_live(), SOURCE_LIVE


def map_shares(
    shares: pd.DataFrame | None, picture: Picture, cam: np.ndarray, source: str, image_id: str | None
) -> dict[str, float]:
    """Where the map's mass lies: the shares the analysis pass stored (``shares``, see
    :func:`~bt_dashboard.views.inspect_pictures.stored_shares`) for a precomputed map; for a map
    computed now (or a maps file without shares), measured now against the stored masks."""
    if source == SOURCE_PRECOMPUTED and image_id is not None:
        stored = stored_shares(shares, image_id)
        if stored is not None:
            return stored
    return live_shares(cam, picture.stored, picture.native_side)


def prepare_uploads(raw_bytes: bytes, sizes: Iterable[int], ops: Sequence[str] = ()) -> dict[int, np.ndarray]:
    """The upload prepared once per distinct model input size (:func:`prepare_upload`);
    ValueError for bytes that are not an image."""
    return {size: prepare_upload(raw_bytes, size, ops) for size in dict.fromkeys(sizes)}


# --------------------------------------------------------------------------- probabilities


def probability_table(probabilities: Sequence[float], class_names: Sequence[str], true: int | None) -> pd.DataFrame:
    """Class, probability and whether it is the predicted / true class, in class order."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = int(probabilities.argmax())
    return pd.DataFrame(
        {
            "class": list(class_names),
            "probability": probabilities,
            "predicted": np.arange(len(class_names)) == predicted,
            "true": np.arange(len(class_names)) == (-1 if true is None else true),
        }
    )


def probability_figure(probabilities: np.ndarray, class_names: Sequence[str], true: int | None) -> go.Figure:
    """Horizontal bars of one model's class probabilities: the predicted class green when
    right (or when the truth is unknown), red when wrong; the true class says so."""
    table = probability_table(probabilities, class_names, true)
    predicted = int(np.asarray(probabilities).argmax())
    right_color = RIGHT_COLOR if true is None or predicted == true else WRONG_COLOR
    colors = [right_color if flag else OTHER_COLOR for flag in table["predicted"]]
    labels = [f"{name} (true)" if is_true else name for name, is_true in zip(table["class"], table["true"])]
    figure = go.Figure(
        go.Bar(
            x=table["probability"], y=labels, orientation="h", marker_color=colors,
            text=[f"{p:.2f}" for p in table["probability"]], textposition="outside", cliponaxis=False,
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        # Top margin: room for the modebar, which would otherwise cover the first bar.
        height=70 + 26 * len(class_names), margin={"l": 10, "r": 30, "t": 34, "b": 6},
        xaxis={"range": [0, 1], "showticklabels": False, "showgrid": False}, yaxis={"autorange": "reversed"},
        showlegend=False,
    )
    return figure
