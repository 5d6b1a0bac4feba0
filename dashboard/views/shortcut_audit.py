"""What the Shortcuts page's dataset audit shows (no Streamlit): the source probe and the
duplicate search of the run's shortcut summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.metrics import one_class
from bt_dashboard.views.common import as_number
from bt_dashboard.views.shortcuts import CHANCE, MODEL, mapping


# Source probe: "well above chance" once the balanced accuracy beats chance by this much
# and by two fold-standard-deviations (less can be a lucky split).
SOURCE_PROBE_MARGIN = 0.10
REGION_TEXT = {"border": "the image border", "background": "the background outside the head"}


def source_probe_table(audit: Mapping[str, Any]) -> pd.DataFrame:
    rows = [{
        "Region": str(region),
        "Balanced accuracy": as_number(values.get("balanced_accuracy")),
        "Std over folds": as_number(values.get("std")),
        CHANCE: as_number(values.get("chance")),
        "Folds": as_number(values.get("folds")),
        "Images": as_number(values.get("n_images")),
        "Region share of image": as_number(values.get("region_share")),
    } for region, values in ((r, mapping(v)) for r, v in mapping(audit.get("source_probe")).items())]
    return pd.DataFrame(rows, columns=["Region", "Balanced accuracy", "Std over folds", CHANCE, "Folds",
                                       "Images", "Region share of image"])


def source_probe_sentence(region: str, values: Mapping[str, Any]) -> str:
    """What the probe of one region says, in plain words ("well above chance" means beyond
    chance by :data:`SOURCE_PROBE_MARGIN` and by two fold standard deviations)."""
    accuracy, chance, std = (as_number(values.get(k)) for k in ("balanced_accuracy", "chance", "std"))
    where = REGION_TEXT.get(region, region)
    if not (np.isfinite(accuracy) and np.isfinite(chance)):
        return f"The probe of {where} has no result."
    measured = (f"From {where} alone a small linear model tells the classes apart with "
                f"{accuracy:.0%} balanced accuracy (chance {chance:.0%})")
    margin = max(SOURCE_PROBE_MARGIN, 2 * std if np.isfinite(std) else 0.0)
    if accuracy - chance > margin:
        return (measured + ": well above chance, so the classes differ in where their images come from "
                "(scanner, site, export), a shortcut any model can take.")
    return measured + ": close to chance, no sign that this region alone gives the class away."


def _count(value: float) -> str:
    return f"{value:.0f}" if np.isfinite(value) else "?"


def duplicates_line(duplicates: Mapping[str, Any]) -> str:
    pairs, exact, near = (as_number(duplicates.get(k)) for k in ("pairs", "exact_pairs", "near_pairs"))
    conflicts, kept, total = (as_number(duplicates.get(k)) for k in ("label_conflicts", "test_kept", "test_images"))
    distance, similarity = as_number(duplicates.get("max_distance")), as_number(duplicates.get("min_similarity"))
    text = f"**{_count(pairs)}** duplicate pairs ({_count(exact)} exact, {_count(near)} near"
    if np.isfinite(distance) and np.isfinite(similarity):
        text += f": pHash distance ≤ {distance:.0f} and similarity ≥ {similarity:.2f}"
    text += f"), **{_count(conflicts)}** of them under two different labels."
    if np.isfinite(kept) and np.isfinite(total):
        text += (f" De-duplicated test set: **{kept:.0f} of {total:.0f}** test images kept (a test image "
                 "with a copy in train or val is dropped; copies within test keep one).")
    unreadable = as_number(duplicates.get("unreadable"))
    if np.isfinite(unreadable) and unreadable:
        text += f" {unreadable:.0f} image(s) could not be read."
    return text


def duplicates_by_split(duplicates: Mapping[str, Any]) -> pd.DataFrame:
    """Pairs per split pair (rows) and kind (exact / near columns), with a total column."""
    records = [mapping(r) for r in duplicates.get("by_split_pair") or [] if isinstance(r, Mapping)]
    frame = pd.DataFrame(records, columns=["split_pair", "kind", "pairs"])
    if frame.empty:
        return pd.DataFrame(columns=["Split pair", "exact", "near", "total"])
    frame["pairs"] = pd.to_numeric(frame["pairs"], errors="coerce").fillna(0)
    table = frame.pivot_table(index="split_pair", columns="kind", values="pairs", aggfunc="sum", fill_value=0)
    for kind in ("exact", "near"):
        if kind not in table.columns:
            table[kind] = 0
    table = table[["exact", "near", *[c for c in table.columns if c not in ("exact", "near")]]]
    table["total"] = table.sum(axis=1)
    table = table.astype("int64").reset_index().rename(columns={"split_pair": "Split pair"})
    table.columns.name = None
    return table


DEDUP_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro F1", "macro_auc": "Macro AUC"}


def dedup_columns_comparing_classes() -> list[str]:
    """The columns of :func:`dedup_metrics_table` that test images of one class cannot score."""
    return [column for key, label in DEDUP_METRICS.items() if key in one_class.BOOTSTRAP_NEEDING_TWO_CLASSES
            for column in (label, f"{label} (de-dup)", f"Δ {label}")]


def dedup_metrics_table(duplicates: Mapping[str, Any], original: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per model, each test metric on the whole test set, on the de-duplicated one, and the
    change (de-duplicated minus original)."""
    rows = []
    for name, values in mapping(duplicates.get("deduplicated_metrics")).items():
        values, before = mapping(values), mapping(original.get(name))
        row: dict[str, Any] = {MODEL: str(name)}
        for key, label in DEDUP_METRICS.items():
            old, new = as_number(before.get(key)), as_number(values.get(key))
            row[label] = old
            row[f"{label} (de-dup)"] = new
            row[f"Δ {label}"] = new - old
        rows.append(row)
    columns = [MODEL] + [c for label in DEDUP_METRICS.values() for c in (label, f"{label} (de-dup)", f"Δ {label}")]
    return pd.DataFrame(rows, columns=columns)


def style_source_probe(table: pd.DataFrame) -> Styler:
    formats = {"Balanced accuracy": "{:.1%}", "Std over folds": "{:.1%}", CHANCE: "{:.1%}",
               "Region share of image": "{:.0%}", "Folds": "{:.0f}", "Images": "{:.0f}"}
    return table.style.format(formats, na_rep="—")


DEDUP_CAPTION = ("Test metrics on the whole test split and on the de-duplicated one; Δ = de-duplicated − "
                 "original. A drop means copies of training images flattered the score.")


def style_dedup_metrics(table: pd.DataFrame) -> Styler:
    # Numbers only: a column marked "not measurable" holds text.
    formats = {column: "{:+.1%}" if column.startswith("Δ") else "{:.1%}" for column in table.columns[1:]
               if pd.api.types.is_numeric_dtype(table[column])}
    return table.style.format(formats, na_rep="—")
