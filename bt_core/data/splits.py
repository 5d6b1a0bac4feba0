"""Stratified, seeded train / val / test splits for both dataset layouts.

Three rules (``RunConfig.split``, ``--split``):

    original  kaggle: Testing is test, val a stratified cut of Training; pool: stratified cuts
    grouped   exact and near-duplicate groups never straddle train / val / test. kaggle:
              Testing stays test, Training images with a copy in Testing are dropped, val is a
              grouped cut of the rest; pool: grouped test and val cuts
    regroup   kaggle: Training and Testing pooled, then split as a grouped pool; pool: grouped

A group is a connected component of the duplicate pairs the audit finds
(:func:`bt_core.shortcuts.audit.find_duplicates`: the same grayscale pixels, or pHash
Hamming distance <= ``DEFAULT_MAX_DISTANCE`` and thumbnail correlation >= ``MIN_SIMILARITY``),
so a chain of near copies is one group. A grouped cut is one fold of scikit-learn's
``StratifiedGroupKFold`` (``round(1 / fraction)`` folds, shuffled with the seed): class
proportions are kept approximately, not exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from bt_core.data.layouts import LAYOUT_KAGGLE, DatasetIndex

SPLITS = ("train", "val", "test")
SPLIT_RULES = ("original", "grouped", "regroup")

_log = logging.getLogger(__name__)


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


def check_split_rule(rule: str) -> str:
    """``rule`` if it is one of :data:`SPLIT_RULES`, else ValueError naming the valid ones."""
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split {rule!r}; valid: {', '.join(SPLIT_RULES)}")
    return rule


def duplicate_groups(root: str | Path, paths: Sequence[str], workers: int = 1) -> np.ndarray:
    """An int group per image of ``paths`` (relative to ``root``): images joined by a chain of
    exact or near-duplicate pairs (the audit's rule, module docstring) share one. An image
    that cannot be read has a group of its own. ``workers``: decoding threads (hash_images)."""
    # Imported here: the audit needs imagehash, which training with the original split must not
    # (the GPU image has none; benchmarks/gpu_run.sh --smoke hides it to check).
    from bt_core.shortcuts.audit import find_duplicates, hash_images

    hashes = hash_images([Path(root) / path for path in paths], workers=workers)
    n = len(hashes)
    pairs = find_duplicates(hashes, splits=[""] * n, labels=[""] * n).pairs  # ids: 0..n-1
    a, b = pairs["id_a"].to_numpy(dtype=np.int64), pairs["id_b"].to_numpy(dtype=np.int64)
    graph = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def _grouped_cut(
    frame: pd.DataFrame, groups: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Like :func:`_stratified_cut`, but no group (aligned with ``frame``) lands on both sides:
    one fold of ``StratifiedGroupKFold(round(1 / fraction))``."""
    folds = int(round(1 / fraction))
    if folds < 2:
        raise ValueError(f"cannot split off {what} by groups: a grouped cut is 1/k of the images "
                         f"(k = round(1 / fraction) >= 2), so the fraction must be under 2/3, got {fraction}")
    distinct = len(np.unique(groups))
    if distinct < folds:
        raise ValueError(
            f"cannot split off {what} ({fraction:.0%}) by groups: {len(frame)} images form only "
            f"{distinct} duplicate group(s), fewer than the {folds} folds needed"
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    rest_rows, cut_rows = next(splitter.split(np.zeros(len(frame)), frame["label"].to_numpy(), groups))
    rest, cut = frame.iloc[rest_rows], frame.iloc[cut_rows]
    for side, part in (("the rest", rest), (what, cut)):
        missing = sorted(set(frame["label"]) - set(part["label"]))
        if missing:
            raise ValueError(
                f"cannot split off {what} by groups with every class on both sides: {side} has no "
                f"image of {missing}; add images or change the fraction"
            )
    return rest, cut


def _grouped_parts(
    items: pd.DataFrame, groups: np.ndarray, kaggle_test: bool, val_fraction: float, test_fraction: float, seed: int,
    max_per_class: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """train, val, test with no duplicate group on two of them. ``kaggle_test``: the test set
    is the Testing folder (source "test"), and Training images grouped with one are dropped,
    then Training is capped at ``max_per_class`` (``items`` holds all of Training then)."""
    items = items.assign(_group=groups)
    if kaggle_test:
        test = items[items["source"] == "test"]
        training = items[items["source"] == "train"]
        leaking = training["_group"].isin(set(test["_group"]))
        _log.info("grouped split: dropped %d of %d Training images with a copy in Testing",
                  int(leaking.sum()), len(training))
        training = subsample_per_class(training[~leaking], max_per_class, seed)
        train, val = _grouped_cut(training, training["_group"].to_numpy(), val_fraction, seed,
                                  "the val split of Training")
    else:
        rest, test = _grouped_cut(items, groups, test_fraction, seed, "the test split")
        train, val = _grouped_cut(rest, rest["_group"].to_numpy(), val_fraction / (1 - test_fraction), seed,
                                  "the val split")
    return train, val, test


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
    split: str = "original",
    workers: int = 1,
) -> pd.DataFrame:
    """Columns path, split, label; sorted by split then path so the file is stable.

    kaggle layout: test is the Testing folder; val is a stratified ``val_fraction`` of Training.
    pool layout: train / val / test = 1 - val - test / val / test, stratified.
    ``split``: the rule (module docstring); "grouped" and "regroup" read every image once to
    find the duplicate groups (``workers`` decoding threads) and never place a group on two
    splits; under "grouped" on a kaggle layout the dropped Training images are in no split.
    """
    check_split_rule(split)
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"bad fractions: val {val_fraction}, test {test_fraction}")
    items = subsample_per_class(index.items, max_per_class, seed)
    if split != "original":
        kaggle_test = index.layout == LAYOUT_KAGGLE and split == "grouped"
        if kaggle_test and max_per_class is not None:
            # The same Testing sample as "original", and Training capped only after its copies of
            # Testing images are dropped: a grouped run trains on as many images as an original one.
            items = pd.concat([index.items[index.items["source"] == "train"], items[items["source"] == "test"]])
        groups = duplicate_groups(index.root, items["path"].tolist(), workers=workers)
        train, val, test = _grouped_parts(items, groups, kaggle_test, val_fraction, test_fraction, seed,
                                          max_per_class if kaggle_test else None)
    elif index.layout == LAYOUT_KAGGLE:
        test = items[items["source"] == "test"]
        train, val = _stratified_cut(items[items["source"] == "train"], val_fraction, seed, "the val split of Training")
    else:
        rest, test = _stratified_cut(items, test_fraction, seed, "the test split")
        train, val = _stratified_cut(rest, val_fraction / (1 - test_fraction), seed, "the val split")
    parts = [part.assign(split=name) for name, part in zip(SPLITS, (train, val, test))]
    table = pd.concat(parts, ignore_index=True)[["path", "split", "label"]]
    order = {name: i for i, name in enumerate(SPLITS)}
    table = table.sort_values(["split", "path"], key=lambda c: c.map(order) if c.name == "split" else c)
    return table.reset_index(drop=True)


def split_counts(split: pd.DataFrame, class_names: list[str]) -> dict[str, dict[str, int]]:
    """{split: {class: count}} with zeros where a class is absent."""
    table = pd.crosstab(split["split"], split["label"]).reindex(index=list(SPLITS), columns=class_names, fill_value=0)
    return {s: {c: int(table.loc[s, c]) for c in class_names} for s in SPLITS}
