"""What the Data page shows (no Streamlit): the run's stored data profile as tables, figures
and captioned thumbnails. Everything comes from ``data/`` of the run
(:class:`bt_core.artifacts.DataProfile`); nothing is read from the dataset folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bt_core.artifacts import DataProfile
from bt_dashboard.views import figures

SPLIT_ORDER = ("train", "val", "test")
REGION_LABELS = {"image": "Whole image", "border": "Border band", "background": "Background (outside the head)"}
CLASS, SPLIT, IMAGES = "Class", "Split", "Images"
WIDTH, HEIGHT, CHANNELS = "Width (px)", "Height (px)", "Channels"


@dataclass(frozen=True)
class Thumbnail:
    image: np.ndarray  # uint8 (T, T, 3)
    caption: str


def missing_profile_line(run_dir: str) -> str:
    """The one line a run without data/ shows: what is missing and the command that writes it."""
    return (f"This run has no data profile (runs trained before it lack one). Write it from the "
            f"dataset folder with `python train_all.py --profile {run_dir}`.")


def class_colors(class_names: Sequence[str]) -> dict[str, str]:
    palette = figures.CLASS_PALETTE
    return {name: palette[index % len(palette)] for index, name in enumerate(class_names)}


def counts_frame(profile: DataProfile) -> pd.DataFrame:
    """``Split``, ``Class``, ``Images``: the stored counts per split (train, val, test order)
    and class (profile order); classes absent from a split count 0."""
    counts = profile.record.get("counts") or {}
    splits = [s for s in SPLIT_ORDER if s in counts] + [s for s in counts if s not in SPLIT_ORDER]
    rows = [(split, name, int((counts.get(split) or {}).get(name, 0)))
            for split in splits for name in profile.class_names]
    return pd.DataFrame(rows, columns=[SPLIT, CLASS, IMAGES])


def counts_figure(profile: DataProfile) -> go.Figure:
    """Grouped bars: images per class, one bar group per split."""
    frame = counts_frame(profile)
    colors = class_colors(profile.class_names)
    figure = go.Figure()
    for name in profile.class_names:
        rows = frame[frame[CLASS] == name]
        figure.add_trace(go.Bar(x=rows[SPLIT], y=rows[IMAGES], name=name, marker_color=colors[name],
                                text=rows[IMAGES], textposition="outside"))
    figure.update_layout(barmode="group", height=360, margin={"t": 30, "b": 40},
                         xaxis_title="Split", yaxis_title="Images", legend_title_text="Class")
    return figure


def counts_table(profile: DataProfile) -> pd.DataFrame:
    """Classes as rows, splits as columns, with a total column."""
    table = counts_frame(profile).pivot(index=CLASS, columns=SPLIT, values=IMAGES)
    table = table.reindex(index=profile.class_names, columns=[s for s in counts_frame(profile)[SPLIT].unique()])
    table["total"] = table.sum(axis=1)
    table.columns.name = None
    return table.reset_index()


def sizes_table(profile: DataProfile) -> pd.DataFrame:
    """Width, height, channels and how many images of each class have them (files as stored,
    before the image ops and the resize), most frequent first."""
    rows = profile.section("sizes").get("table") or []
    frame = pd.DataFrame(rows, columns=["width", "height", "channels", "label", "count"])
    if frame.empty:
        return pd.DataFrame(columns=[WIDTH, HEIGHT, CHANNELS, *profile.class_names, "total"])
    wide = frame.pivot_table(index=["width", "height", "channels"], columns="label", values="count",
                             aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=[c for c in profile.class_names if c in wide.columns])
    wide["total"] = wide.sum(axis=1)
    wide = wide.sort_values("total", ascending=False).reset_index()
    return wide.rename(columns={"width": WIDTH, "height": HEIGHT, "channels": CHANNELS})


def sizes_figure(profile: DataProfile) -> go.Figure:
    """Width against height of the files, a marker per (size, class), its area the image count."""
    rows = pd.DataFrame(profile.section("sizes").get("table") or [],
                        columns=["width", "height", "channels", "label", "count"])
    colors = class_colors(profile.class_names)
    figure = go.Figure()
    top = max(int(rows["count"].max()) if len(rows) else 1, 1)
    for name in profile.class_names:
        part = rows[rows["label"] == name]
        if part.empty:
            continue
        figure.add_trace(go.Scatter(
            x=part["width"], y=part["height"], mode="markers", name=name, marker_color=colors[name],
            marker={"size": 8 + 32 * np.sqrt(part["count"] / top), "opacity": 0.6, "sizemode": "diameter"},
            customdata=np.stack([part["count"], part["channels"]], axis=1),
            hovertemplate="%{x} x %{y} px, %{customdata[1]} channel(s): %{customdata[0]} images<extra>" + name + "</extra>",
        ))
    figure.update_layout(height=360, margin={"t": 30, "b": 40}, xaxis_title=WIDTH, yaxis_title=HEIGHT,
                         legend_title_text="Class")
    return figure


def modes_table(profile: DataProfile) -> pd.DataFrame:
    """Per class, how many files have each Pillow mode (L grey, RGB, RGBA, I;16 ...)."""
    modes = profile.section("sizes").get("modes") or {}
    frame = pd.DataFrame({name: modes.get(name, {}) for name in profile.class_names}).fillna(0).astype(int)
    return frame.T.rename_axis(CLASS).reset_index()


def sizes_caption(profile: DataProfile) -> str:
    sizes = profile.section("sizes")
    table = sizes_table(profile)
    distinct = len(table)
    unreadable = int(sizes.get("unreadable_headers") or 0)
    shown = f"{distinct} distinct size{'s' if distinct != 1 else ''} (width x height x channels) in the files"
    extra = f"; {unreadable} file header(s) unreadable" if unreadable else ""
    return (f"{shown}, read from the {sizes.get('source', 'file headers')}{extra}. The models see every "
            f"image at {profile.record.get('image_size')} x {profile.record.get('image_size')} RGB.")


def histogram_regions(profile: DataProfile) -> list[str]:
    return [r for r in profile.section("histograms").get("regions") or [] if r in REGION_LABELS]


def histogram_frame(profile: DataProfile, region: str) -> pd.DataFrame:
    """``grey level`` (bin start), one column per class: the share of that class's pixels in
    the bin (each column sums to 1; NaN for a class with no pixel in the region)."""
    histograms = profile.section("histograms")
    counts = (histograms.get("counts") or {}).get(region)
    if counts is None:
        raise ValueError(f"the data profile has no histograms of region {region!r}")
    bins = int(histograms.get("bins") or len(next(iter(counts.values()))))
    frame = pd.DataFrame({"grey level": np.arange(bins) * (256 // bins)})
    for name in profile.class_names:
        values = np.asarray(counts.get(name, [0] * bins), dtype=float)
        frame[name] = values / values.sum() if values.sum() else np.nan
    return frame


def histogram_figure(profile: DataProfile, region: str) -> go.Figure:
    """One line per class: the share of its pixels at each grey level, in ``region``."""
    frame = histogram_frame(profile, region)
    colors = class_colors(profile.class_names)
    figure = go.Figure()
    for name in profile.class_names:
        figure.add_trace(go.Scatter(x=frame["grey level"], y=frame[name], mode="lines", name=name,
                                    line={"color": colors[name], "width": 2}))
    figure.update_layout(height=340, margin={"t": 40, "b": 40}, title=REGION_LABELS.get(region, region),
                         xaxis_title="Grey level (0-255)", yaxis_title="Share of pixels", legend_title_text="Class")
    figure.update_yaxes(tickformat=".1%")
    return figure


def histogram_caption(profile: DataProfile) -> str:
    histograms = profile.section("histograms")
    images = histograms.get("images") or {}
    counted = ", ".join(f"{name} {images.get(name, 0)}" for name in profile.class_names)
    return (f"Images per class counted (a seeded sample): {counted}; {histograms.get('space', '')}. "
            f"The border band ({float(histograms.get('border_width', 0.1)):.0%} of each side) and the "
            "background are the regions the dataset audit's source probe reads: classes whose curves "
            "differ there come from different sources (scanners, sites, exports), a shortcut a model can take.")


def _thumbnails(profile: DataProfile, thumbnail_set: str) -> dict[str, np.ndarray]:
    images, ids = profile.images(thumbnail_set)
    return {str(i): image for i, image in zip(ids, images)}


def grid_by_class(profile: DataProfile) -> dict[str, list[Thumbnail]]:
    """The stored random images of each class (profile order), captioned with their split."""
    grid = profile.section("grid")
    images = _thumbnails(profile, "grid")
    by_class: dict[str, list[Thumbnail]] = {name: [] for name in profile.class_names}
    for image_id, label, split in zip(grid.get("ids") or [], grid.get("labels") or [], grid.get("splits") or []):
        if image_id in images and label in by_class:
            by_class[label].append(Thumbnail(images[image_id], f"{split}: {image_id.rsplit('/', 1)[-1]}"))
    return by_class


def augmentation_rows(profile: DataProfile) -> list[tuple[str, list[Thumbnail]]]:
    """Per preview: a title (image, class, strength, models) and the original then each draw."""
    augmentation = profile.section("augmentation")
    frames, _ids = profile.images("augmentation")
    rows = []
    for preview, draws in zip(augmentation.get("previews") or [], frames):
        title = (f"{preview['id']} ({preview['label']}), augmentation {augmentation.get('mode')} at strength "
                 f"{float(preview['strength']):g}, as {', '.join(preview.get('models') or [])} trained")
        captions = ["original"] + [f"draw {k}" for k in range(1, len(draws))]
        rows.append((title, [Thumbnail(frame, caption) for frame, caption in zip(draws, captions)]))
    return rows


def augmentation_caption(profile: DataProfile) -> str:
    mode = profile.section("augmentation").get("mode")
    if mode == "none":
        return "This run trained without augmentation: every draw is the original image."
    where = "on the device, one random affine warp per image" if mode == "device" else "on the host (numpy)"
    return f"The run's own augmentation ({where}), applied to the same training image several times."


def duplicates_caption(profile: DataProfile) -> str:
    duplicates = profile.section("duplicates")
    if "skipped" in duplicates:
        return f"Duplicates not searched: {duplicates['skipped']}"
    if not duplicates.get("pairs"):
        return "No exact or near-duplicate images were found across the splits."
    return (f"{duplicates['pairs']} duplicate pair(s) ({duplicates.get('exact_pairs', 0)} exact, "
            f"{duplicates.get('near_pairs', 0)} near) in {duplicates.get('groups', 0)} group(s) of "
            f"{duplicates.get('images_in_groups', 0)} images; {duplicates.get('cross_split_groups', 0)} group(s) span "
            f"splits (a test image seen in training) and {duplicates.get('conflict_groups', 0)} carry two labels. "
            f"Near: pHash distance <= {duplicates.get('max_distance')} bits and thumbnail correlation >= "
            f"{duplicates.get('min_similarity')} (the dataset audit's rule).")


def duplicate_groups_table(profile: DataProfile) -> pd.DataFrame:
    """One row per shown group: its number, size, kind, splits, labels and conflict."""
    shown = profile.section("duplicates").get("shown") or []
    rows = [{"Group": g["group"], IMAGES: g["size"], "Kind": g["kind"],
             "Splits": ", ".join(f"{s} {n}" for s, n in g["splits"].items()),
             "Labels": " / ".join(g["labels"]), "Label conflict": bool(g["conflict"])} for g in shown]
    return pd.DataFrame(rows, columns=["Group", IMAGES, "Kind", "Splits", "Labels", "Label conflict"])


def duplicate_examples(profile: DataProfile) -> list[tuple[str, list[Thumbnail]]]:
    """Per shown group: a title and thumbnails of its example members (groups are disjoint,
    so each member has one thumbnail)."""
    images = _thumbnails(profile, "duplicates")
    rows = []
    for group in profile.section("duplicates").get("shown") or []:
        thumbs = [Thumbnail(images[m["id"]], f"{m['split']}, {m['label']}: {m['id'].rsplit('/', 1)[-1]}")
                  for m in group.get("shown") or [] if m["id"] in images]
        more = group["size"] - len(thumbs)
        title = (f"Group {group['group']}: {group['size']} {group['kind']} duplicate images "
                 f"({', '.join(f'{s} {n}' for s, n in group['splits'].items())}; {' / '.join(group['labels'])})"
                 + (f"; {more} more not shown" if more > 0 else ""))
        rows.append((title, thumbs))
    return rows
