"""Stratified, seeded train / val / test splits for both dataset layouts."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from bt_core.data.layouts import LAYOUT_KAGGLE, DatasetIndex

SPLITS = ("train", "val", "test")


def _stratified_cut(frame: pd.DataFrame, fraction: float, seed: int, what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off ``fraction`` of ``frame`` (``what``: the part cut off, for messages) with the
    class proportions kept."""
    counts = frame["label"].value_counts()
    too_small = counts[counts < 2]
    if not too_small.empty:
        raise ValueError(
            f"cannot split off {what}: classes with fewer than 2 images cannot be split: {too_small.to_dict()}"
        )
    try:
        rest, cut = train_test_split(frame, test_size=fraction, stratify=frame["label"], random_state=seed)
    except ValueError as exc:  # too few images for every class to have one on each side
        raise ValueError(
            f"cannot split off {what} ({fraction:.0%} of {len(frame)} images) with each of the "
            f"{len(counts)} classes on both sides ({exc}); add images or change the fraction"
        ) from None
    return rest, cut


def subsample_per_class(frame: pd.DataFrame, max_per_class: int | None, seed: int) -> pd.DataFrame:
    """At most ``max_per_class`` rows of each (source, label), chosen with the seed (None: all)."""
    if max_per_class is None:
        return frame
    if max_per_class < 1:  # head(0) would keep nothing and head(-n) all but n: neither is a cap
        raise ValueError(f"max-per-class must be at least 1 image, got {max_per_class}")
    shuffled = frame.sample(frac=1.0, random_state=seed)
    return shuffled.groupby(["source", "label"], sort=False).head(max_per_class).sort_index()


def make_split(
    index: DatasetIndex,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 42,
    max_per_class: int | None = None,
) -> pd.DataFrame:
    """Columns path, split, label; sorted by split then path so the file is stable.

    kaggle layout: test is the Testing folder; val is a stratified ``val_fraction`` of Training.
    pool layout: train / val / test = 1 - val - test / val / test, stratified.
    """
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"bad fractions: val {val_fraction}, test {test_fraction}")
    items = subsample_per_class(index.items, max_per_class, seed)
    if index.layout == LAYOUT_KAGGLE:
        test = items[items["source"] == "test"]
        train, val = _stratified_cut(items[items["source"] == "train"], val_fraction, seed, "the val split of Training")
    else:
        rest, test = _stratified_cut(items, test_fraction, seed, "the test split")
        train, val = _stratified_cut(rest, val_fraction / (1 - test_fraction), seed, "the val split")
    parts = [part.assign(split=name) for name, part in zip(SPLITS, (train, val, test))]
    split = pd.concat(parts, ignore_index=True)[["path", "split", "label"]]
    order = {name: i for i, name in enumerate(SPLITS)}
    split = split.sort_values(["split", "path"], key=lambda c: c.map(order) if c.name == "split" else c)
    return split.reset_index(drop=True)


def split_counts(split: pd.DataFrame, class_names: list[str]) -> dict[str, dict[str, int]]:
    """{split: {class: count}} with zeros where a class is absent."""
    table = pd.crosstab(split["split"], split["label"]).reindex(index=list(SPLITS), columns=class_names, fill_value=0)
    return {s: {c: int(table.loc[s, c]) for c in class_names} for s in SPLITS}
