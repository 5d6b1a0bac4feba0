"""Dataset audit: duplicate images within and across splits.

A test image that is also in train (or is a re-encoded / slightly altered copy of one) lets
a model score by memory; the same image under two classes is label noise. (Whether the
classes come from different sources is :mod:`bt_core.shortcuts.source_probe`.)

    hashes = hash_images(paths)                                    # one pass, 64-bit pHash
    report = find_duplicates(hashes, splits, labels, ids)
    keep = deduplicated_test_mask(report.pairs, test_ids)          # bool, over test_ids

NumPy, OpenCV, Pillow/imagehash, pandas and SciPy only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import imagehash
import numpy as np
import pandas as pd
from PIL import Image
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from bt_core.data.images import UnreadableImageError
from bt_core.regions import to_gray

# pHash: 8x8 = 64 bits of the low-frequency DCT of a 32x32 grayscale thumbnail.
HASH_SIZE = 8
HASH_BITS = HASH_SIZE * HASH_SIZE
# Near duplicates are found in two steps, because MRI slices share one layout (dark
# background, bright oval head) and so crowd pHash space:
# 1. pHash Hamming distance <= DEFAULT_MAX_DISTANCE of 64 bits. pHash sets exactly 32 bits
#    (median threshold), so distances are even: 4 = "at most 2 bits moved each way".
#    Re-encoding, mild noise, small contrast / crop changes stay within 0-4. On
#    brain-tumor-mri (checked by eye) pairs at 2-4 are nearly all the same image edited,
#    at 6 many are neighbouring slices or other patients, at 8 mostly different images.
DEFAULT_MAX_DISTANCE = 4
# 2. Pearson correlation of 32 x 32 grayscale thumbnails >= MIN_SIMILARITY. It removes the
#    pHash collisions of different images: on brain-tumor-mri, pairs at distance <= 4 of two
#    classes (all different images by eye) correlate at 0.54-0.90, copies at 0.95-1.0.
MIN_SIMILARITY = 0.92
THUMB_SIZE = 32
# Rows per block of the all-pairs Hamming search: BLOCK x N uint64 (~14 MB at N = 7,000).
BLOCK_ROWS = 256
# Splits in this order put pairs as (earlier, later): "train-test", never "test-train".
SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class ImageHashes:
    """Per image: 64-bit pHash, exact-pixel key, a small thumbnail to verify near duplicates,
    and why it could not be read (None if it could)."""

    phash: np.ndarray  # (N,) uint64; 0 for an unreadable image
    exact: tuple[str, ...]  # hex SHA-256 of size + grayscale pixels; "" for an unreadable image
    thumbs: np.ndarray  # (N, THUMB_SIZE**2) uint8 grayscale, INTER_AREA; zeros if unreadable
    errors: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.phash)

    @property
    def ok(self) -> np.ndarray:
        return np.array([e is None for e in self.errors], dtype=bool)


@dataclass(frozen=True, eq=False)
class DuplicateReport:
    """Duplicate pairs, counted per split pair and class, and the label conflicts among them."""

    pairs: pd.DataFrame  # id_a, id_b, split_a, split_b, label_a, label_b, distance, similarity, kind, group
    summary: pd.DataFrame  # split_pair, kind, label, conflict, pairs, images
    conflicts: pd.DataFrame  # the pairs whose labels differ
    max_distance: int
    min_similarity: float | None
    unreadable: int  # images left out because they could not be read


def read_gray(path: str | Path) -> np.ndarray:
    """Decode an image file at its own size to grayscale uint8 (color decoded, then converted,
    as bt_core.data.images does, so a file and its decoded RGB array hash the same)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # copes with non-ASCII names
    except OSError as exc:
        raise UnreadableImageError(f"cannot read file: {exc}") from exc
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error as exc:
        raise UnreadableImageError(f"OpenCV could not decode it: {exc}") from exc
    if image is None or image.size == 0:
        raise UnreadableImageError("not a decodable image (empty, corrupt or unsupported format)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _phash_bits(gray: np.ndarray) -> int:
    bits = imagehash.phash(Image.fromarray(gray), hash_size=HASH_SIZE).hash.flatten()
    return int(np.packbits(bits).view(">u8")[0])


def _exact_key(gray: np.ndarray) -> str:
    # The size is part of the key so that equal bytes in different shapes never match.
    digest = hashlib.sha256(f"{gray.shape[0]}x{gray.shape[1]}:".encode())
    digest.update(gray.tobytes())
    return digest.hexdigest()


def _thumb(gray: np.ndarray) -> np.ndarray:
    return cv2.resize(gray, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA).ravel()


_UNREADABLE_THUMB = np.zeros(THUMB_SIZE * THUMB_SIZE, dtype=np.uint8)


def _hash_one(
    item: np.ndarray | str | Path, loader: Callable[[str | Path], np.ndarray]
) -> tuple[int, str, np.ndarray, str | None]:
    try:
        gray = to_gray(item if isinstance(item, np.ndarray) else loader(item))
    except (UnreadableImageError, OSError) as exc:
        return 0, "", _UNREADABLE_THUMB, str(exc)
    return _phash_bits(gray), _exact_key(gray), _thumb(gray), None


def hash_images(
    items: Iterable[np.ndarray | str | Path],
    loader: Callable[[str | Path], np.ndarray] = read_gray,
    workers: int = 1,
) -> ImageHashes:
    """pHash and exact key of every image, in one pass over ``items``.

    ``items``: uint8 arrays ``(H, W)`` / ``(H, W, 3)`` RGB, or file paths read with ``loader``.
    Exact = the same grayscale pixels at the same size (a copy, or a lossless re-encoding
    such as PNG <-> BMP); a JPEG re-encoding changes pixels, so it is a near duplicate.
    Unreadable files are kept in place with ``errors`` set, and left out of the search.
    ``workers`` > 1 decodes in threads (OpenCV releases the GIL); one thread hashes the
    7,019 files of brain-tumor-mri in ~5 s, so the default is 1.
    """
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda item: _hash_one(item, loader), items))
    else:
        results = [_hash_one(item, loader) for item in items]
    return ImageHashes(
        phash=np.array([r[0] for r in results], dtype=np.uint64),
        exact=tuple(r[1] for r in results),
        thumbs=np.stack([r[2] for r in results]) if results else np.zeros((0, THUMB_SIZE**2), np.uint8),
        errors=tuple(r[3] for r in results),
    )


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return np.bitwise_count(values).astype(np.int16)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.int16)
    return table[values.view(np.uint8).reshape(values.shape + (8,))].sum(axis=-1, dtype=np.int16)


def hamming_pairs(phash: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (i < j) with popcount(h_i XOR h_j) <= ``max_distance``: (i, j, distance) arrays.

    Blocks of rows against the later columns: N = 7,000 is ~25M pairs, well under a second.
    """
    phash = np.asarray(phash, dtype=np.uint64)
    found_i, found_j, found_d = [], [], []
    for start in range(0, len(phash), BLOCK_ROWS):
        rows = phash[start : start + BLOCK_ROWS]
        distance = _popcount(rows[:, None] ^ phash[None, start:])
        # Keep the strict upper triangle: column offset > row offset within this block.
        upper = np.arange(len(phash) - start)[None, :] > np.arange(len(rows))[:, None]
        i, j = np.nonzero((distance <= max_distance) & upper)
        found_i.append(i + start)
        found_j.append(j + start)
        found_d.append(distance[i, j])
    if not found_i:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d).astype(int)


def thumb_similarity(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Pearson correlation of thumbnails i[k] and j[k]: blind to brightness and contrast,
    sensitive to anatomy. A flat thumbnail correlates 0 with anything (1 with its exact copy
    is decided by the exact key, not here)."""
    values = thumbs.astype(np.float32)
    centred = values - values.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    unit = centred / np.where(norms > 0, norms, 1.0)[:, None]
    return np.einsum("kd,kd->k", unit[i], unit[j]).clip(-1.0, 1.0)


def _split_rank(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split), "") if split in SPLIT_ORDER else (len(SPLIT_ORDER), str(split))


def _components(ids_a: Sequence, ids_b: Sequence) -> dict:
    """Connected components of the pair graph: id -> component number (0, 1, ...)."""
    codes, uniques = pd.factorize(pd.Series(list(ids_a) + list(ids_b), dtype=object))
    half = len(ids_a)
    graph = sparse.coo_matrix(
        (np.ones(half), (codes[:half], codes[half:])), shape=(len(uniques), len(uniques))
    )
    _, component = connected_components(graph, directed=False)
    return dict(zip(uniques, component))


_PAIR_COLUMNS = [
    "id_a", "id_b", "split_a", "split_b", "label_a", "label_b", "distance", "similarity", "kind", "group"
]
_SUMMARY_COLUMNS = ["split_pair", "kind", "label", "conflict", "pairs", "images"]


def _summary(pairs: pd.DataFrame) -> pd.DataFrame:
    if pairs.empty:
        return pd.DataFrame(columns=_SUMMARY_COLUMNS)
    frame = pairs.assign(
        split_pair=pairs["split_a"].astype(str) + "-" + pairs["split_b"].astype(str),
        conflict=pairs["label_a"] != pairs["label_b"],
    )
    frame["label"] = np.where(
        frame["conflict"], frame["label_a"].astype(str) + " / " + frame["label_b"].astype(str), frame["label_a"]
    )
    rows = []
    for (split_pair, kind, label, conflict), group in frame.groupby(
        ["split_pair", "kind", "label", "conflict"], sort=False
    ):
        images = pd.unique(pd.concat([group["id_a"], group["id_b"]], ignore_index=True))
        rows.append((split_pair, kind, label, bool(conflict), len(group), len(images)))
    summary = pd.DataFrame(rows, columns=_SUMMARY_COLUMNS)
    order = {
        pair: _split_rank(a) + _split_rank(b)
        for pair, a, b in zip(frame["split_pair"], frame["split_a"], frame["split_b"])
    }
    summary["_order"] = summary["split_pair"].map(order)
    return summary.sort_values(["_order", "kind", "conflict", "label"]).drop(columns="_order").reset_index(drop=True)


def _candidate_pairs(
    hashes: ImageHashes, max_distance: int, min_similarity: float | None
) -> tuple[np.ndarray, ...]:
    """``(i, j, distance, similarity, is_exact)`` of the duplicate pairs among the readable images."""
    readable = np.flatnonzero(hashes.ok)
    i, j, distance = hamming_pairs(hashes.phash[readable], max_distance)
    i, j = readable[i], readable[j]
    is_exact = np.array([hashes.exact[p] == hashes.exact[q] for p, q in zip(i, j)], dtype=bool)
    similarity = thumb_similarity(hashes.thumbs, i, j)
    similarity[is_exact] = 1.0
    if min_similarity is None:
        return i, j, distance, similarity, is_exact
    keep = is_exact | (similarity >= min_similarity)
    return i[keep], j[keep], distance[keep], similarity[keep], is_exact[keep]


def _pair_table(
    found: tuple[np.ndarray, ...], splits: Sequence[str], labels: Sequence, ids: Sequence
) -> pd.DataFrame:
    """The pairs of :func:`_candidate_pairs` as :data:`_PAIR_COLUMNS`, each oriented by split
    order, then by input order (so summaries read "train-test"), grouped and sorted."""
    i, j, distance, similarity, is_exact = found
    swap = np.array([_split_rank(splits[a]) > _split_rank(splits[b]) for a, b in zip(i, j)], dtype=bool)
    a, b = np.where(swap, j, i), np.where(swap, i, j)
    pairs = pd.DataFrame(
        {
            "id_a": pd.Series([ids[k] for k in a], dtype=object),
            "id_b": pd.Series([ids[k] for k in b], dtype=object),
            "split_a": [splits[k] for k in a],
            "split_b": [splits[k] for k in b],
            "label_a": [labels[k] for k in a],
            "label_b": [labels[k] for k in b],
            "distance": distance.astype(int),
            "similarity": similarity.astype(float),
            "kind": np.where(is_exact, "exact", "near"),
        }
    )
    if pairs.empty:
        return pd.DataFrame(columns=_PAIR_COLUMNS)
    component = _components(pairs["id_a"], pairs["id_b"])
    pairs["group"] = pairs["id_a"].map(component).astype(int)
    return pairs.sort_values(["group", "distance"], kind="stable").reset_index(drop=True)


def find_duplicates(
    hashes: ImageHashes,
    splits: Sequence[str],
    labels: Sequence,
    ids: Sequence | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    min_similarity: float | None = MIN_SIMILARITY,
) -> DuplicateReport:
    """Exact and near-duplicate pairs among all images, within and across splits.

    ``splits``, ``labels``, ``ids`` (default 0..N-1) are aligned with ``hashes``. A pair is
    ``exact`` when the pixels are identical, else ``near``: pHash Hamming distance <=
    ``max_distance`` and thumbnail correlation >= ``min_similarity`` (None: pHash alone;
    see the module constants for both defaults). Pairs are oriented train < val < test < other splits; ``group``
    numbers the connected groups of duplicates. ``summary`` counts pairs and images per
    (split pair, kind, class); a pair with two different labels is a conflict (label noise).
    """
    n = len(hashes)
    ids = list(range(n)) if ids is None else list(ids)
    splits, labels = list(splits), list(labels)
    if not len(splits) == len(labels) == len(ids) == n:
        raise ValueError(f"hashes, splits, labels and ids must have one entry per image ({n})")
    if len(set(ids)) != n:
        raise ValueError("ids must be unique")
    if not 0 <= max_distance < HASH_BITS:
        raise ValueError(f"max_distance must be in 0..{HASH_BITS - 1}, got {max_distance}")
    pairs = _pair_table(_candidate_pairs(hashes, max_distance, min_similarity), splits, labels, ids)
    return DuplicateReport(
        pairs=pairs,
        summary=_summary(pairs),
        conflicts=pairs[pairs["label_a"] != pairs["label_b"]].reset_index(drop=True),
        max_distance=int(max_distance),
        min_similarity=min_similarity,
        unreadable=int(n - int(hashes.ok.sum())),
    )


def deduplicated_test_mask(pairs: pd.DataFrame, test_ids: Sequence, test_split: str = "test") -> np.ndarray:
    """Bool mask over ``test_ids``: True for the test images to keep.

    A group of duplicates (connected through any chain of pairs) that reaches a train / val
    image drops all its test images, since a chain of near copies is still a leak; a group
    entirely inside test keeps one representative, the first in ``test_ids`` order.
    """
    test_ids = list(test_ids)
    if pairs.empty:
        return np.ones(len(test_ids), dtype=bool)
    component = _components(pairs["id_a"], pairs["id_b"])
    split_of = dict(zip(pairs["id_a"], pairs["split_a"])) | dict(zip(pairs["id_b"], pairs["split_b"]))
    leaked = {component[i] for i, split in split_of.items() if split != test_split}
    keep, seen = np.ones(len(test_ids), dtype=bool), set()
    for position, test_id in enumerate(test_ids):
        group = component.get(test_id)
        if group is None:
            continue
        if group in leaked or group in seen:
            keep[position] = False
        seen.add(group)
    return keep
