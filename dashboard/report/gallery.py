"""The report's Grad-CAM gallery: for each model, its most confident errors and the test images
whose stored maps sit most outside the head, as small PNG overlays embedded in the page.

Only stored files are read: the test images, each model's ``maps/<method>.npz`` with its
per-map outside-head shares (or, for maps written before 1.3, the same column of
``shortcuts/models/<model>.csv``) and the head masks; no model is loaded, no map recomputed.
Bounded: at most ``N_ERRORS`` + ``N_OUTSIDE`` images a model, stored at most ``THUMBNAIL_SIDE`` px
a side (never enlarged: the page scales them, so a 64 px image costs a quarter of a 128 px one).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from bt_core.artifacts import ArtifactError, Run, load_map_shares, load_maps, load_shortcut_images, load_test_images
from bt_core.artifacts import probability_columns
from bt_dashboard.report.html_parts import paragraph, plain, section
from bt_dashboard.views import common
from bt_dashboard.views.inspect_pictures import compose_overlay, enlarge_image
from bt_dashboard.views.shortcuts import DEFAULT_METHOD, measure_command

TITLE = "Grad-CAM gallery"
N_ERRORS, N_OUTSIDE = 4, 4
THUMBNAIL_SIDE = 128
ALPHA = 0.45


@dataclass(frozen=True)
class Picked:
    """One gallery image: its id and caption."""

    image_id: str
    caption: str


def confident_errors(predictions: pd.DataFrame, class_names: Sequence[str], n: int = N_ERRORS) -> pd.DataFrame:
    """The ``n`` wrong predictions with the highest probability on the predicted class,
    most confident first; columns id, label, pred, confidence."""
    columns = probability_columns(list(class_names))
    proba = predictions[columns].to_numpy(dtype=np.float64)
    table = pd.DataFrame({"id": predictions["id"].astype(str), "label": predictions["label"].astype(str),
                          "pred": predictions["pred"].astype(str), "confidence": proba.max(axis=1)})
    wrong = table[table["label"] != table["pred"]]
    return wrong.sort_values("confidence", ascending=False, kind="stable").head(n).reset_index(drop=True)


def most_outside(shares: pd.Series, n: int = N_OUTSIDE) -> pd.Series:
    """The ``n`` largest stored outside-head shares (by id), largest first; NaN left out."""
    finite = pd.to_numeric(shares, errors="coerce").dropna()
    return finite.sort_values(ascending=False, kind="stable").head(n)


def stored_outside_shares(run: Run, model: str, method: str) -> pd.Series | None:
    """Each stored map's outside-head share by id: the maps file's (1.3), else the measured
    per-image table's (the same number for the measured method); None when neither is stored.
    ArtifactError when the per-image table is broken."""
    try:
        shares = load_map_shares(run.directory, model, method)
    except ArtifactError:
        shares = None  # no maps file, or one without readable shares: the measured table may have them
    if shares is not None and "outside_head" in shares:
        return shares["outside_head"]
    per_image = load_shortcut_images(run.directory, model)
    if per_image is not None and "outside_head" in per_image and "id" in per_image:
        return pd.Series(per_image["outside_head"].to_numpy(), index=per_image["id"].astype(str))
    return None


def png_data_uri(image: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("an overlay could not be encoded as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def thumbnail_side(image_side: int) -> int:
    return min(THUMBNAIL_SIDE, int(image_side))


@dataclass
class GallerySource:
    """What every model's gallery reads, once: the test images, their head masks and the
    method of the stored maps."""

    images: np.ndarray
    positions: pd.Index
    heads: np.ndarray | None
    method: str

    def picture(self, image_id: str, cam: np.ndarray | None) -> np.ndarray:
        position = self.positions.get_loc(image_id)
        image = self.images[position]
        head = None if self.heads is None else self.heads[position]
        if cam is not None:
            image = compose_overlay(image, np.asarray(cam, dtype=np.float32), "jet", ALPHA, head=head)
        return enlarge_image(image, thumbnail_side(image.shape[0]))


def figure_html(picture: np.ndarray, caption: str) -> str:
    text = html.escape(plain(caption))
    return f'<figure><img src="{png_data_uri(picture)}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _model_gallery(run: Run, source: GallerySource, name: str) -> str:
    model = run.models[name]
    try:
        maps, map_ids, classes = load_maps(run.directory, name, source.method, mmap=True)
    except ArtifactError as exc:
        return f"<h3>{html.escape(name)}</h3>" + paragraph(
            f"No stored {source.method} maps ({exc}); add them with {measure_command(run.directory)}.")
    map_at = pd.Index(np.asarray(map_ids, dtype=str))
    class_index = {class_name: index for index, class_name in enumerate(run.class_names)}

    def cam_for(image_id: str, predicted: str) -> np.ndarray | None:
        position = map_at.get_indexer([image_id])[0]
        # A map explains the class predicted when it was made; show it only for that class.
        if position < 0 or int(classes[position]) != class_index.get(predicted, -1):
            return None
        return maps[position]

    predictions = model.predictions.set_index(model.predictions["id"].astype(str))
    errors = confident_errors(model.predictions, run.class_names)
    error_figures = [figure_html(source.picture(row.id, cam_for(row.id, row.pred)),
                                 f"{row.id}: {row.label} → {row.pred} ✗ · {row.confidence:.0%} confident")
                     for row in errors.itertuples(index=False)]
    parts = [f"<h3>{html.escape(name)}</h3>", "<h4>Most confident errors</h4>"]
    parts.append(f"<div class='gallery'>{''.join(error_figures)}</div>" if error_figures
                 else paragraph("No test image is misclassified."))
    parts.append("<h4>Maps most outside the head</h4>")
    try:
        shares = stored_outside_shares(run, name, source.method)
    except ArtifactError as exc:
        parts.append(paragraph(f"The stored outside-head shares cannot be read: {exc}"))
        return "\n".join(parts)
    if shares is None:
        parts.append(paragraph(f"No stored outside-head shares; add them with {measure_command(run.directory)}."))
        return "\n".join(parts)
    outside = [(image_id, share) for image_id, share in most_outside(shares).items() if image_id in predictions.index]
    outside_figures = []
    for image_id, share in outside:
        label, predicted = predictions.loc[image_id, "label"], predictions.loc[image_id, "pred"]
        mark = "✓" if label == predicted else "✗"
        outside_figures.append(figure_html(source.picture(image_id, cam_for(image_id, predicted)),
                                           f"{image_id}: {label} → {predicted} {mark} · {share:.0%} outside head"))
    parts.append(f"<div class='gallery'>{''.join(outside_figures)}</div>" if outside_figures
                 else paragraph("No stored map has an outside-head share."))
    return "\n".join(parts)


def gallery_section(run: Run, method: str | None) -> str:
    """The gallery of every usable model; one line instead when the test images cannot be read."""
    method = method or DEFAULT_METHOD
    try:
        images, ids = load_test_images(run.directory)
        heads = run.test_heads()
    except ArtifactError as exc:
        return section(TITLE, paragraph(f"The stored test images cannot be read: {exc}"))
    source = GallerySource(images, pd.Index(np.asarray(ids, dtype=str)), heads, method)
    usable = [name for name, model in run.models.items() if model.usable]
    if not usable:
        return section(TITLE, paragraph("No model of this run has test predictions."))
    label = common.METHOD_LABELS.get(method, method)
    outline = " (white line: the head the shortcut measures used)" if heads is not None else ""
    intro = paragraph(f"Stored {label} maps of the predicted class over the test images{outline}. Per model at most "
                      f"{N_ERRORS} confident errors and {N_OUTSIDE} images whose maps put most of their energy "
                      "outside the head.")
    return section(TITLE, intro, *(_model_gallery(run, source, name) for name in usable))
