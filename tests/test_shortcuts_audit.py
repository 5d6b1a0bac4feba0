"""Dataset audit: exact / near duplicates across splits and the de-duplicated test set."""

import time

import cv2
import numpy as np
import pytest

from bt_core.shortcuts.audit import (
    DEFAULT_MAX_DISTANCE,
    MIN_SIMILARITY,
    deduplicated_test_mask,
    find_duplicates,
    hamming_pairs,
    hash_images,
)
from imagefolders import SHARED_DATA

BRAIN_TUMOR_MRI = SHARED_DATA / "brain-tumor-mri"


def scan(seed: int, size: int = 128) -> np.ndarray:
    """A fake axial slice: dark background, bright disc, smooth random texture inside."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size]
    head = (y - size / 2) ** 2 / 0.9 + (x - size / 2) ** 2 / 0.7 <= (0.45 * size) ** 2
    texture = cv2.resize(rng.uniform(0, 1, (8, 8)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    image = np.where(head, 80 + 140 * texture, 5 + rng.uniform(0, 10, (size, size)))
    return np.clip(image, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


def noisy(image: np.ndarray, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def originals() -> list[np.ndarray]:
    return [scan(seed) for seed in range(6)]


def test_copies_are_exact_or_near_and_different_images_are_not(originals):
    base = originals[0]
    rgb = cv2.cvtColor(base, cv2.COLOR_GRAY2RGB)  # same pixels in three channels: exact
    images = [base, base.copy(), rgb, jpeg(base), noisy(base)] + originals[1:]
    hashes = hash_images(images)
    report = find_duplicates(hashes, ["train"] * len(images), ["glioma"] * len(images))
    pairs = {(a, b): kind for a, b, kind in zip(report.pairs["id_a"], report.pairs["id_b"], report.pairs["kind"])}
    assert pairs[(0, 1)] == pairs[(0, 2)] == pairs[(1, 2)] == "exact"
    assert pairs[(0, 3)] == pairs[(0, 4)] == pairs[(3, 4)] == "near"
    # The five versions of image 0 are one group; the five other images pair with nothing.
    assert set(pairs) == {(a, b) for a in range(5) for b in range(a + 1, 5)}
    assert report.pairs["group"].nunique() == 1
    assert (report.pairs["distance"] <= DEFAULT_MAX_DISTANCE).all()
    assert (report.pairs["similarity"] >= MIN_SIMILARITY).all()
    assert len(report.conflicts) == 0


def test_hashing_is_deterministic_and_files_match_arrays(originals, tmp_path):
    three = originals[:3]
    first, second = hash_images(three), hash_images(iter(three))
    assert first.phash.tolist() == second.phash.tolist() and first.exact == second.exact
    assert first.phash.dtype == np.uint64 and len(first) == 3
    paths = []
    for index, image in enumerate(three):
        paths.append(tmp_path / f"scan_{index}.png")
        cv2.imwrite(str(paths[-1]), image)  # PNG is lossless: the decoded pixels are the same
    (tmp_path / "broken.png").write_bytes(b"not an image")
    from_files = hash_images(paths + [tmp_path / "broken.png"], workers=2)
    assert from_files.phash[:3].tolist() == first.phash.tolist() and from_files.exact[:3] == first.exact
    assert from_files.ok.tolist() == [True, True, True, False] and "decodable" in from_files.errors[3]
    report = find_duplicates(from_files, ["train"] * 4, ["a"] * 4)
    assert report.unreadable == 1 and report.pairs.empty and report.summary.empty


def test_cross_split_duplicate_leaves_the_test_set_and_test_groups_keep_one(originals):
    a, b, c, d, e, f = originals
    images = [a, b, jpeg(a), c, d, noisy(d), e, f]
    ids = ["tr_a", "tr_b", "te_a", "te_c", "te_d", "te_d2", "va_e", "te_e"]
    splits = ["train", "train", "test", "test", "test", "test", "val", "test"]
    labels = ["glioma"] * len(images)
    images[7] = e.copy()
    report = find_duplicates(hash_images(images), splits, labels, ids)
    test_ids = [i for i, s in zip(ids, splits) if s == "test"]
    # te_a copies train, te_e copies val; te_d / te_d2 are one group inside test: keep te_d.
    assert deduplicated_test_mask(report.pairs, test_ids).tolist() == [False, True, True, False, False]
    summary = report.summary.set_index(["split_pair", "kind"])
    assert summary.loc[("train-test", "near"), "pairs"] == 1  # oriented train first
    assert summary.loc[("val-test", "exact"), "images"] == 2
    assert summary.loc[("test-test", "near"), "pairs"] == 1
    assert deduplicated_test_mask(report.pairs.iloc[0:0], test_ids).all()


def test_same_image_in_two_classes_is_a_conflict(originals):
    a, b = originals[:2]
    report = find_duplicates(
        hash_images([a, b, a.copy()]), ["train", "train", "test"], ["glioma", "notumor", "meningioma"], ["x", "y", "z"]
    )
    assert len(report.conflicts) == 1
    row = report.conflicts.iloc[0]
    assert (row["id_a"], row["id_b"], row["kind"]) == ("x", "z", "exact")
    conflict_rows = report.summary[report.summary["conflict"]]
    assert conflict_rows["label"].tolist() == ["glioma / meningioma"]


def test_hamming_pairs_match_brute_force():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=700, dtype=np.uint64)
    hashes[rng.integers(0, 700, 50)] ^= np.uint64(0b1011)  # some near copies at distance 3
    hashes[10] = hashes[600]
    i, j, d = hamming_pairs(hashes, 6)
    bits = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1)
    full = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    want = {(p, q) for p, q in zip(*np.nonzero(np.triu(full <= 6, k=1)))}
    assert set(zip(i.tolist(), j.tolist())) == want and (10, 600) in want
    assert all(full[p, q] == dist for p, q, dist in zip(i, j, d))


def test_bad_arguments():
    hashes = hash_images([scan(0), scan(1)])
    with pytest.raises(ValueError, match="one entry per image"):
        find_duplicates(hashes, ["train"], ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        find_duplicates(hashes, ["train"] * 2, ["a"] * 2, ["x", "x"])
    with pytest.raises(TypeError, match="uint8"):
        hash_images([np.zeros((8, 8), dtype=np.float32)])


@pytest.mark.shared_data
def test_brain_tumor_mri_has_cross_split_duplicates():
    if not BRAIN_TUMOR_MRI.is_dir():
        pytest.skip(f"{BRAIN_TUMOR_MRI} is absent (only a development checkout has ../shared/data)")
    from bt_core.data.layouts import discover

    items = discover(BRAIN_TUMOR_MRI).items
    started = time.perf_counter()
    hashes = hash_images(str(BRAIN_TUMOR_MRI) + "/" + items["path"])
    seconds = time.perf_counter() - started
    report = find_duplicates(hashes, items["source"], items["label"], items["path"])
    pairs = report.pairs
    cross = pairs[pairs["split_a"] != pairs["split_b"]]
    test_ids = items.loc[items["source"] == "test", "path"]
    kept = test_ids[deduplicated_test_mask(pairs, test_ids)]
    print(
        f"\nhashed {len(items)} images in {seconds:.1f} s; pairs: "
        f"{pairs.groupby([pairs['split_a'] + '-' + pairs['split_b'], 'kind']).size().to_dict()}; "
        f"conflicts {len(report.conflicts)}; test kept {len(kept)} of {len(test_ids)}"
    )
    assert report.unreadable == 0
    assert (cross["kind"] == "exact").sum() > 100 and (cross["kind"] == "near").sum() > 100
    assert len(kept) < len(test_ids)
