"""Pure helpers of the Inspect page: which test images to show, in what order, and the
pictures drawn for them. No Streamlit here, so every rule is testable on its own.

Image filters work on the models chosen on the page (``ModelData`` of one run, rows in
the same test-image order for every model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Iterable

import cv2
import numpy as np
import pandas as pd

from bt_core.metrics.run_comparison import ModelData
from bt_core.explain.masks import box_mask, head_mask, mass_share
from bt_core.explain.overlay import draw_box, draw_contour, overlay

INSPECT_PAGE = "app_pages/inspect.py"
# ?image=<test id> opens that image on the Inspect page (links from other pages use it).
IMAGE_QUERY_PARAM = "image"
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

# The methods of bt_core.explain (``list_methods()``, which imports TensorFlow) as shown.
METHOD_LABELS = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "layercam": "LayerCAM",
    "scorecam": "Score-CAM",
    "faster_scorecam": "Faster Score-CAM",
    "smoothgrad": "SmoothGrad",
}

TARGET_PREDICTED = "predicted"
TARGET_TRUE = "true"

# Overlays are drawn at least this many pixels a side: a 64 px test image shown in a
# 350 px column would otherwise be a blur, with a box outline a pixel and a half wide.
DISPLAY_SIZE = 256
BOX_COLOR = (0, 255, 0)
HEAD_COLOR = (255, 255, 255)


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


# --------------------------------------------------------------------------- pictures


def display_size(image_side: int) -> int:
    return max(int(image_side), DISPLAY_SIZE)


def upsample_map(cam: np.ndarray, size: int) -> np.ndarray:
    """A (low-resolution, maybe float16) map as float32 ``(size, size)`` in ``[0, 1]``."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32))
    if cam.shape != (size, size):
        cam = cv2.resize(cam, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(cam, 0.0, 1.0)


def enlarge_image(image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 RGB image resized to ``(size, size)`` (unchanged when already that size)."""
    image = np.asarray(image)
    if image.shape[:2] == (size, size):
        return image
    interpolation = cv2.INTER_CUBIC if size > image.shape[0] else cv2.INTER_AREA
    return cv2.resize(image, (size, size), interpolation=interpolation)


def outlined_image(
    image: np.ndarray, box: Sequence[float] | None = None, head: np.ndarray | None = None
) -> np.ndarray:
    """The input with the head outline (bool mask) and the tumor box (normalised) drawn on it."""
    picture = np.asarray(image)
    if head is not None and head.any():
        picture = draw_contour(picture, head, color=HEAD_COLOR, thickness=1)
    if box is not None:
        picture = draw_box(picture, box, color=BOX_COLOR, thickness=2)
    return picture


def compose_overlay(
    image: np.ndarray,
    cam: np.ndarray,
    colormap: str = "jet",
    alpha: float = 0.45,
    box: Sequence[float] | None = None,
    head: np.ndarray | None = None,
) -> np.ndarray:
    """The map over the image at the image's size, then the outlines on top."""
    side = image.shape[0]
    return outlined_image(overlay(image, upsample_map(cam, side), colormap, alpha), box, head)


def image_box(boxes: pd.DataFrame | None, image_id: str) -> tuple[float, float, float, float] | None:
    """The tumor box of a test image from ``boxes.csv`` (indexed by image path), or None."""
    if boxes is None or image_id not in boxes.index:
        return None
    row = boxes.loc[image_id]
    return float(row["x_min"]), float(row["y_min"]), float(row["x_max"]), float(row["y_max"])


def head_outline(image: np.ndarray) -> np.ndarray:
    """The head mask of an image (see :func:`bt_core.explain.masks.head_mask`)."""
    return head_mask(image)


def map_shares(cam: np.ndarray, head: np.ndarray | None, box: Sequence[float] | None) -> dict[str, float]:
    """Share of the map's mass inside the head and inside the tumor box (when known)."""
    shares: dict[str, float] = {}
    if head is not None and head.any():
        shares["head"] = mass_share(cam, head)
    if box is not None:
        shape = head.shape if head is not None else np.asarray(cam).shape
        shares["box"] = mass_share(cam, box_mask(shape, box))
    return shares


def shares_caption(shares: Mapping[str, float]) -> str:
    parts = []
    if "box" in shares and np.isfinite(shares["box"]):
        parts.append(f"{shares['box']:.0%} of the map in the tumor box")
    if "head" in shares and np.isfinite(shares["head"]):
        parts.append(f"{1 - shares['head']:.0%} outside the head")
    return " · ".join(parts)


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


# --------------------------------------------------------------------------- uploads


def entry_image_size(entry: Mapping[str, Any], manifest: Mapping[str, Any]) -> int:
    """The square input size of a model: its entry's ``input_size`` (an int, or a shape
    such as ``[224, 224, 3]``), else the run's ``image_size``."""
    size = entry.get("input_size")
    if isinstance(size, (list, tuple)) and size:
        size = size[0]
    if size is None:
        size = manifest.get("image_size") or manifest.get("config", {}).get("img_size")
    if size is None:
        raise ValueError("the run records no input size")
    return int(size)


def prepare_upload(raw_bytes: bytes, image_size: int, ops: Sequence[str] | None = ()) -> np.ndarray:
    """An uploaded JPEG / PNG (grayscale or colour, any size) as the run's models saw their
    images: uint8 RGB ``(image_size, image_size, 3)`` after the run's ``preprocess`` ops.

    Raises ValueError (``UnreadableImageError``) for bytes that are not an image.
    """
    from bt_core.data.images import decode_image_bytes

    return decode_image_bytes(bytes(raw_bytes), int(image_size), tuple(ops or ()))


def run_image_ops(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """The image ops (``bt_core.data.image_ops``) the run applied when decoding, in order."""
    ops = manifest.get("preprocess") or manifest.get("config", {}).get("preprocess") or ()
    return tuple(str(op) for op in ops)
