"""What the Shortcuts page shows of one model's strategy clusters (no Streamlit): the
clusters of the maps of each predicted class, their table, mean maps and example images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.explain.overlay import colorize
from bt_core.regions import resize_maps
from bt_dashboard.views.common import as_number, image_positions
from bt_dashboard.views.shortcuts import NO, YES, mapping


def cluster_classes(record: Mapping[str, Any]) -> list[str]:
    return [str(name) for name, value in mapping(record.get("clusters")).items() if isinstance(value, Mapping)]


def cluster_list(record: Mapping[str, Any], class_name: str) -> list[Mapping[str, Any]]:
    found = mapping(mapping(record.get("clusters")).get(class_name)).get("clusters")
    return [mapping(c) for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []


def cluster_table(record: Mapping[str, Any], class_name: str) -> pd.DataFrame:
    """The strategy clusters of the maps of one predicted class."""
    rows = [{
        "Cluster": int(as_number(c.get("label"))) if np.isfinite(as_number(c.get("label"))) else -1,
        "Size": as_number(c.get("size")),
        "Share": as_number(c.get("share")),
        "Tightness": as_number(c.get("tightness")),
        "Off head": as_number(c.get("off_head")),
        "Clever-Hans candidate": YES if c.get("clever_hans_candidate") else NO,
        "Examples": ", ".join(str(e) for e in c.get("examples") or []),
    } for c in cluster_list(record, class_name)]
    return pd.DataFrame(rows, columns=["Cluster", "Size", "Share", "Tightness", "Off head",
                                       "Clever-Hans candidate", "Examples"])


def style_clusters(table: pd.DataFrame) -> Styler:
    return table.style.format({"Share": "{:.0%}", "Off head": "{:.0%}", "Tightness": "{:.3f}", "Size": "{:.0f}"},
                              na_rep="—")


def clusters_caption(record: Mapping[str, Any], class_name: str) -> str:
    """How the clusters of one predicted class were made, and how to read them."""
    details = mapping(mapping(record.get("clusters")).get(class_name))
    notes = "; ".join(str(note) for note in details.get("notes") or [])
    return (f"{len(cluster_list(record, class_name))} cluster(s) of the maps of images predicted {class_name} "
            f"(k = {details.get('k', '?')}, {details.get('n_neighbors', '?')} neighbours). Mean maps share "
            "one colour scale. A Clever-Hans candidate is a tight cluster whose maps sit off the head."
            + (f" Notes: {notes}" if notes else ""))


def clusters_scale(clusters: Sequence[Mapping[str, Any]]) -> float:
    """The largest value of the clusters' mean maps: one colour scale for all of them."""
    maps = [cam for cam in (mean_map(c) for c in clusters) if cam is not None]
    return max((float(np.nanmax(cam)) for cam in maps), default=1.0)


def cluster_examples(cluster: Mapping[str, Any], images: np.ndarray | None,
                     archive_ids: Sequence[str] | None) -> list[np.ndarray]:
    """The test images a cluster names as examples that the archive holds (none without images)."""
    examples = [str(e) for e in cluster.get("examples") or []]
    if images is None or not examples:
        return []
    return [images[p] for p in image_positions(archive_ids, examples) if p >= 0]


def mean_map(cluster: Mapping[str, Any]) -> np.ndarray | None:
    """A cluster's mean map as float32 ``(h, w)``, or None when missing or malformed."""
    try:
        array = np.asarray(cluster.get("mean_map"), dtype=np.float32)
    except (TypeError, ValueError):
        return None
    return array if array.ndim == 2 and array.size else None


def map_picture(cam: np.ndarray, scale: float, size: int = 128, colormap: str = "jet") -> np.ndarray:
    """A small map upsampled to ``size`` px and colourised, divided by ``scale`` (the largest
    value of the maps shown together, so their colours compare)."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32))
    if scale > 0:
        cam = cam / scale
    return colorize(resize_maps(np.clip(cam, 0.0, 1.0), size, clip=True), colormap)


def cluster_caption(cluster: Mapping[str, Any]) -> str:
    """One cluster's size, share, tightness and off-head share as one line."""
    size, share = as_number(cluster.get("size")), as_number(cluster.get("share"))
    tightness, off_head = as_number(cluster.get("tightness")), as_number(cluster.get("off_head"))
    off_text = "—" if not np.isfinite(off_head) else f"{off_head:.0%}"
    return f"{size:.0f} maps ({share:.0%}) · tightness {tightness:.3f} · {off_text} off head"
