"""SpRAy-style strategy clusters find known groups of maps and the Clever-Hans one."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from bt_core.regions import map_share
from bt_core.shortcuts.clusters import (
    MAX_EIGEN_RATIO,
    choose_k,
    clever_hans_candidates,
    strategy_clusters,
)

SIZE = 64


def blob(cy: float, cx: float, sigma: float = 6.0) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE]
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))


def make_maps(centres, counts, seed: int, jitter: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Float16 maps in [0, 1]: a jittered blob per group plus uniform noise."""
    rng = np.random.default_rng(seed)
    maps, truth = [], []
    for group, ((cy, cx), count) in enumerate(zip(centres, counts)):
        for _ in range(count):
            cam = blob(cy + rng.normal(0, jitter), cx + rng.normal(0, jitter)) + rng.uniform(0, 0.05, (SIZE, SIZE))
            maps.append(cam / cam.max())
            truth.append(group)
    return np.array(maps, dtype=np.float16), np.array(truth)


def disc_head() -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE]
    return (y - 32) ** 2 + (x - 32) ** 2 <= 24**2


@pytest.mark.parametrize("seed", [0, 1])
def test_three_blob_positions_give_three_clusters(seed):
    maps, truth = make_maps([(20, 20), (44, 44), (20, 44)], [30, 25, 20], seed)
    result = strategy_clusters(maps, seed=0)
    assert result.k == 3
    assert adjusted_rand_score(truth, result.labels) == 1.0
    assert [c.size for c in result.clusters] == [30, 25, 20]  # label 0 is the largest
    assert result.eigenvalues[:3] == pytest.approx(0.0, abs=1e-6)
    first = result.clusters[0]
    assert first.mean_map.shape == (SIZE, SIZE)
    # The best example is the member closest to the cluster mean, and all members are listed.
    assert sorted(first.members.tolist()) == list(range(30))
    assert result.table()["size"].tolist() == [30, 25, 20]


def test_one_homogeneous_cloud_and_noise_give_one_cluster():
    maps, _ = make_maps([(32, 32)], [80], seed=0, jitter=6.0)
    assert strategy_clusters(maps).k == 1
    noise = np.random.default_rng(0).uniform(size=(80, 32, 32))
    assert strategy_clusters(noise).k == 1


def test_corner_group_off_the_head_is_the_only_clever_hans_candidate():
    maps, truth = make_maps([(30, 28), (36, 38), (3, 3)], [30, 30, 8], seed=0, jitter=3.0)
    result = strategy_clusters(maps, head_masks=disc_head())
    suspects = clever_hans_candidates(result)
    assert len(suspects) == 1
    suspect = suspects[0]
    assert sorted(suspect.members.tolist()) == list(np.flatnonzero(truth == 2))
    assert suspect.off_head > 0.7 and suspect.share < 0.25
    others = [c for c in result.clusters if c.label != suspect.label]
    assert all(c.off_head < 0.3 for c in others)
    # Per-image masks (N, H, W) at another size give the same shares.
    per_image = np.repeat(disc_head()[None], len(maps), axis=0)
    again = strategy_clusters(maps, head_masks=per_image)
    assert [c.off_head for c in again.clusters] == pytest.approx([c.off_head for c in result.clusters])
    # Shares measured already (the attention table's outside_head) give the same clusters' shares.
    measured = 1.0 - map_share(maps, disc_head())
    given = strategy_clusters(maps, seed=0, off_head=measured)
    assert [c.off_head for c in given.clusters] == [c.off_head for c in result.clusters]
    with pytest.raises(ValueError, match="one share per map"):
        strategy_clusters(maps, off_head=measured[:-1])


def test_candidates_need_head_masks_unless_told_otherwise():
    maps, _ = make_maps([(30, 28), (3, 3)], [40, 8], seed=1, jitter=3.0)
    result = strategy_clusters(maps)
    with pytest.raises(ValueError, match="head_masks"):
        clever_hans_candidates(result)
    assert [c.size for c in clever_hans_candidates(result, min_off_head=None)] == [8]


def test_two_maps_are_one_cluster():
    result = strategy_clusters(np.random.default_rng(0).uniform(size=(2, 16, 16)))
    assert result.k == 1 and result.labels.tolist() == [0, 0]
    assert "too few" in result.notes[0]
    assert clever_hans_candidates(result, min_off_head=None) == []


def test_identical_nan_and_empty_maps():
    same = strategy_clusters(np.full((10, 16, 16), 0.3))
    assert same.k == 1 and "identical" in same.notes[0]
    maps, truth = make_maps([(20, 20), (44, 44), (20, 44)], [30, 25, 20], seed=0)
    maps = maps.astype(np.float32)
    maps[5, :3, :3] = np.nan
    result = strategy_clusters(maps)
    assert result.k == 3 and adjusted_rand_score(truth, result.labels) == 1.0
    assert any("NaN" in note for note in result.notes)
    with pytest.raises(ValueError, match="N = 0"):
        strategy_clusters(np.zeros((0, 8, 8)))
    with pytest.raises(ValueError, match=r"\(N, h, w\)"):
        strategy_clusters(np.zeros((8, 8)))


def test_choose_k_rule():
    assert choose_k(np.array([0, 0, 0, 0.3, 0.35, 0.4])) == 3
    # Two exact zeros and a third small one: k = 3 has the wider clear gap.
    assert choose_k(np.array([0, 0, 0.01, 0.07, 0.08, 0.1])) == 3
    # A smooth spectrum (ratios above MAX_EIGEN_RATIO) has no clear gap.
    smooth = np.array([0, 0.03, 0.045, 0.085, 0.14, 0.15])
    assert all(smooth[k - 1] > MAX_EIGEN_RATIO * smooth[k] for k in range(2, 5))
    assert choose_k(smooth) == 1
    assert choose_k(np.array([0.0, 0.5])) == 1
