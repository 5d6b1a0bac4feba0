"""bt_core.regions and .attention: known answers on 32 x 32 synthetic heads."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core.shortcuts.attention import (
    MEASURES,
    attention_table,
    baseline_summary,
    box_energy,
    centered_gaussian_maps,
    default_tolerance,
    outside_head_share,
    pointing_game,
    random_maps,
    relevance_rank_accuracy,
    summarize_attention,
)
from bt_core.regions import border_band, box_masks, head_masks, map_share

SIZE = 32
CENTER_BOX = (0.25, 0.25, 0.75, 0.75)  # pixels 8..23 at 32 px, centred on 15.5
NO_BOX = (np.nan,) * 4


def disc_images(n: int, radius: int = 10) -> np.ndarray:
    """``n`` black 32 x 32 RGB images with a gray disc "head" in the middle."""
    images = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    for image in images:
        cv2.circle(image, (SIZE // 2, SIZE // 2), radius, (100, 100, 100), -1)
    return images


def peaked(row: int, col: int, size: int = SIZE) -> np.ndarray:
    cam = np.zeros((size, size), np.float32)
    cam[row, col] = 1.0
    return cam


def test_border_band_counts_the_frame() -> None:
    band = border_band((SIZE, SIZE), 0.1)  # 3 px on each side
    assert band.sum() == SIZE**2 - (SIZE - 6) ** 2
    assert band[0].all() and band[:, -1].all() and not band[3:-3, 3:-3].any()
    wide = border_band((20, 40), 0.1)
    assert wide[:2].all() and not wide[2, 4:-4].any() and wide[:, :4].all()


def test_region_errors() -> None:
    with pytest.raises(ValueError, match="border width must be in"):
        border_band((SIZE, SIZE), 0.6)
    with pytest.raises(ValueError, match="two positive sizes"):
        border_band((0, SIZE))
    with pytest.raises(ValueError, match=r"boxes must be \(N, 4\)"):
        box_masks(np.zeros((2, 3)), (SIZE, SIZE))
    with pytest.raises(ValueError, match="all NaN"):
        box_masks([[0.1, np.nan, 0.5, 0.5]], (SIZE, SIZE))
    with pytest.raises(ValueError, match="row 1 is"):
        box_masks([CENTER_BOX, (0.6, 0.1, 0.5, 0.5)], (SIZE, SIZE))
    with pytest.raises(TypeError, match="uint8"):
        head_masks(np.zeros((1, SIZE, SIZE, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        head_masks(np.zeros((SIZE, SIZE, 3), np.uint8))


def test_box_masks() -> None:
    masks = box_masks([CENTER_BOX, NO_BOX], (SIZE, SIZE))
    assert masks.shape == (2, SIZE, SIZE) and masks.dtype == bool
    assert masks[0].sum() == 16 * 16 and masks[0, 8:24, 8:24].all()
    assert not masks[1].any()


def test_head_masks_find_the_disc() -> None:
    heads = head_masks(disc_images(2))
    assert heads.shape == (2, SIZE, SIZE)
    assert heads[:, 16, 16].all() and not heads[:, 0, 0].any()
    assert abs(heads[0].sum() - math.pi * 10**2) < 40


def test_corner_map_is_all_border_and_outside_head() -> None:
    images = disc_images(1)
    cam = np.zeros((1, SIZE, SIZE), np.float32)
    cam[0, :3, :3] = 1.0
    assert map_share(cam, border_band((SIZE, SIZE)))[0] == pytest.approx(1.0)
    assert outside_head_share(cam, head_masks(images))[0] == pytest.approx(1.0)
    table = attention_table(cam, images, [0], ["a"])
    assert table.loc[0, "border"] == pytest.approx(1.0)
    assert table.loc[0, "outside_head"] == pytest.approx(1.0)


def test_an_image_with_no_head_found_counts_nothing_outside_the_head() -> None:
    images = np.concatenate([disc_images(1), np.zeros((1, SIZE, SIZE, 3), np.uint8)])  # image 1: no head
    cam = np.zeros((2, SIZE, SIZE), np.float32)
    cam[:, :3, :3] = 1.0  # all energy in the corner
    table = attention_table(cam, images, [0, 0], ["a"])  # default: the usable head masks
    assert table["outside_head"].tolist() == pytest.approx([1.0, 0.0])
    raw = attention_table(cam, images, [0, 0], ["a"], head_masks=head_masks(images))
    assert raw.loc[1, "outside_head"] == pytest.approx(1.0)  # what the raw, empty mask would say
    reference = baseline_summary(images[1:], [0], ["a"])
    assert reference.loc[("random", "all"), "outside_head"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"head_masks must be \(N, H, W\)"):
        attention_table(cam, images, [0, 0], ["a"], head_masks=np.ones((SIZE, SIZE), bool))


def test_box_energy_is_nan_without_box() -> None:
    maps = np.ones((2, SIZE, SIZE))
    shares = box_energy(maps, box_masks([CENTER_BOX, NO_BOX], (SIZE, SIZE)))
    assert shares[0] == pytest.approx(256 / 1024) and np.isnan(shares[1])


def test_pointing_game_hits_misses_and_tolerance() -> None:
    boxes = np.array([CENTER_BOX] * 4 + [NO_BOX])
    maps = np.stack(
        [
            peaked(15, 15),  # inside the box
            peaked(1, 1),  # far outside
            peaked(15, 25),  # 2 px right of the box: within 15/224 * 32 = 2.1 px
            peaked(15, 26),  # 3 px right: outside the tolerance
            peaked(15, 15),  # no box
        ]
    )
    assert default_tolerance((SIZE, SIZE)) == pytest.approx(15 / 224 * 32)
    hits = pointing_game(maps, boxes)
    assert hits[:4].tolist() == [1.0, 0.0, 1.0, 0.0] and np.isnan(hits[4])
    assert pointing_game(maps[2:3], boxes[2:3], tolerance_px=0)[0] == 0.0
    flat = np.ones((1, SIZE, SIZE))
    assert np.isnan(pointing_game(flat, boxes[:1])[0])
    with pytest.raises(ValueError, match="tolerance_px must be >= 0"):
        pointing_game(maps, boxes, tolerance_px=-1)


def test_pointing_game_reads_low_res_maps_at_image_size() -> None:
    cam = np.zeros((1, 8, 8), np.float32)
    cam[0, 1, 6] = 1.0  # top right
    top_right = np.array([(0.6, 0.0, 1.0, 0.4)])
    bottom_left = np.array([(0.0, 0.6, 0.4, 1.0)])
    assert pointing_game(cam, top_right, size=(SIZE, SIZE))[0] == 1.0
    assert pointing_game(cam, bottom_left, size=(SIZE, SIZE))[0] == 0.0


def test_relevance_rank_accuracy_known_answers() -> None:
    inside = box_masks([CENTER_BOX] * 3 + [NO_BOX], (SIZE, SIZE))
    box = inside[0].astype(np.float32)
    half = np.zeros((SIZE, SIZE), np.float32)
    half[8:16, 8:24] = 1.0  # half of the box ...
    half[0:8, 0:16] = 1.0  # ... and as many pixels outside it, equally high
    maps = np.stack([box, 1.0 - box, half, box])
    scores = relevance_rank_accuracy(maps, inside)
    assert scores[:3].tolist() == [1.0, 0.0, 0.5] and np.isnan(scores[3])
    with pytest.raises(ValueError, match=r"box masks must be \(N, H, W\)"):
        relevance_rank_accuracy(maps, inside[0])


def test_centered_gaussian_energy_in_a_centred_box() -> None:
    gauss = centered_gaussian_maps(2, (SIZE, SIZE), sigma=0.25)
    assert gauss.shape == (2, SIZE, SIZE) and gauss.max() == pytest.approx(1.0, abs=0.01)
    assert np.allclose(gauss[0], gauss[0].T) and np.allclose(gauss[0], gauss[0, ::-1])
    share = box_energy(gauss[:1], box_masks([CENTER_BOX], (SIZE, SIZE)))[0]
    # Separable: the share is (share of a 1-D Gaussian in pixels 8..23) squared.
    centres = np.arange(SIZE) + 0.5 - SIZE / 2
    line = np.exp(-0.5 * (centres / (0.25 * SIZE)) ** 2)
    assert share == pytest.approx((line[8:24].sum() / line.sum()) ** 2, rel=1e-6)
    # Continuum: +-1 sigma inside a +-2 sigma frame, per axis.
    continuum = (math.erf(1 / math.sqrt(2)) / math.erf(2 / math.sqrt(2))) ** 2
    assert share == pytest.approx(continuum, abs=0.01)
    with pytest.raises(ValueError, match="sigma > 0"):
        centered_gaussian_maps(1, (SIZE, SIZE), sigma=0)


def test_random_maps_are_reproducible() -> None:
    first, again, other = (random_maps(3, (8, 8), seed) for seed in (7, 7, 8))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.dtype == np.float32 and 0 <= first.min() and first.max() < 1


def test_attention_table_and_summary() -> None:
    images = disc_images(4)
    boxes = np.array([CENTER_BOX, CENTER_BOX, NO_BOX, NO_BOX])
    inside = box_masks(boxes[:1], (SIZE, SIZE))[0].astype(np.float32)
    maps = np.stack([inside, 1.0 - inside, inside, inside])
    table = attention_table(maps, images, [1, 1, 0, 0], ["notumor", "glioma"], boxes)
    assert list(table.columns) == ["label_index", "label", "has_box", *MEASURES]
    assert table["label"].tolist() == ["glioma", "glioma", "notumor", "notumor"]
    assert table.loc[0, ["in_box", "pointing_hit", "rank_accuracy"]].tolist() == [1.0, 1.0, 1.0]
    assert table.loc[1, ["in_box", "pointing_hit", "rank_accuracy"]].tolist() == [0.0, 0.0, 0.0]
    assert table.loc[2:, ["in_box", "pointing_hit", "rank_accuracy"]].isna().all().all()

    summary = summarize_attention(table)
    assert summary.index.tolist() == ["notumor", "glioma", "all"]  # class order, then all
    assert summary.loc["glioma", "in_box"] == pytest.approx(0.5)
    assert summary.loc["all", "in_box"] == pytest.approx(0.5)  # NaNs ignored
    assert np.isnan(summary.loc["notumor", "in_box"])
    assert summary.loc["all", ["n_images", "n_with_box"]].tolist() == [4, 2]
    assert summary.loc["all", "border"] == pytest.approx(table["border"].mean())
    with pytest.raises(ValueError, match="table lacks columns"):
        summarize_attention(table.drop(columns="border"))


def test_attention_table_input_errors() -> None:
    images = disc_images(2)
    with pytest.raises(ValueError, match="one map per image"):
        attention_table(np.ones((3, 8, 8)), images, [0, 0], ["a"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\)"):
        attention_table(np.ones((2, 8, 8)), images, [0, 1], ["a"])
    with pytest.raises(ValueError, match="boxes must have one row per image"):
        attention_table(np.ones((2, 8, 8)), images, [0, 0], ["a"], np.array([CENTER_BOX]))


def test_baseline_summary_matches_the_gaussian_answer() -> None:
    images = disc_images(4)
    boxes = np.array([CENTER_BOX, CENTER_BOX, NO_BOX, NO_BOX])
    labels, names = [1, 1, 0, 0], ["notumor", "glioma"]
    reference = baseline_summary(images, labels, names, boxes, map_shape=(SIZE, SIZE))
    assert isinstance(reference.index, pd.MultiIndex)
    assert set(reference.index.get_level_values(0)) == {"centered_gaussian", "random"}
    gauss = reference.loc[("centered_gaussian", "all")]
    expected = box_energy(
        centered_gaussian_maps(1, (SIZE, SIZE)), box_masks([CENTER_BOX], (SIZE, SIZE))
    )[0]
    assert gauss["in_box"] == pytest.approx(expected)
    assert gauss["pointing_hit"] == 1.0
    # The top 256 pixels of an isotropic Gaussian form a disc, which overhangs the square.
    assert 0.85 < gauss["rank_accuracy"] < 0.95
    # Uniform noise puts about the box's area share (1/4) of its energy in the box.
    assert reference.loc[("random", "all"), "in_box"] == pytest.approx(0.25, abs=0.03)
    again = baseline_summary(images, labels, names, boxes, map_shape=(SIZE, SIZE))
    pd.testing.assert_frame_equal(reference, again)
