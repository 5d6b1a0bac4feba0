"""bt_core.regions: the pixel-centre box rule, map resizing, map shares and the head mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bt_core.explain.overlay import box_pixels, draw_box
from bt_core.regions import (
    SHARE_CHUNK,
    box_masks,
    box_pixel_bounds,
    head_mask,
    head_masks,
    map_share,
    mask_bounds,
    resize_maps,
    to_gray,
    usable_head_masks,
)

from imagefolders import head_image


def centre_rule(box, height: int, width: int) -> np.ndarray:
    """The definition, pixel by pixel: a pixel is in when its centre lies in [x0, x1) x [y0, y1)."""
    x0, y0, x1, y1 = box
    cx = (np.arange(width) + 0.5) / width
    cy = (np.arange(height) + 0.5) / height
    return ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]


# --------------------------------------------------------------------------- boxes


def test_a_quarter_box_covers_a_quarter_of_the_side_at_64_px():
    mask = box_masks([(0.25, 0.25, 0.5, 0.5)], (64, 64))[0]
    assert mask.sum() == 16 * 16
    assert mask[16:32, 16:32].all()
    assert box_pixel_bounds((0.25, 0.25, 0.5, 0.5), 64, 64) == (16, 16, 32, 32)


def test_box_masks_follow_the_pixel_centre_definition():
    rng = np.random.default_rng(0)
    corners = np.sort(rng.uniform(0, 1, size=(200, 2, 2)), axis=2)
    boxes = np.stack([corners[:, 0, 0], corners[:, 1, 0], corners[:, 0, 1], corners[:, 1, 1]], axis=1)
    for height, width in [(64, 64), (224, 224), (20, 40)]:
        masks = box_masks(boxes, (height, width))
        for box, mask in zip(boxes, masks):
            expected = centre_rule(box, height, width)
            if expected.any(axis=0).any() and expected.any(axis=1).any():
                np.testing.assert_array_equal(mask, expected)
            # A box of width w covers w * W columns, up to one either way.
            cols = mask.any(axis=0).sum()
            assert abs(cols - (box[2] - box[0]) * width) <= 1


def test_a_box_thinner_than_a_pixel_covers_the_pixel_holding_its_centre():
    mask = box_masks([(0.5, 0.5, 0.505, 0.505)], (64, 64))[0]  # 0.3 px wide, centre in pixel 32
    assert mask.sum() == 1 and mask[32, 32]
    # A thin strip holds no pixel centre across, but keeps its full length.
    strip = box_masks([(0.101, 0.0, 0.102, 1.0)], (10, 10))[0]
    assert strip.sum() == 10 and strip[:, 1].all()


def test_edges_on_a_pixel_centre_belong_to_the_box_on_the_left_only():
    # 0.15 * 10 = 1.5 is the centre of pixel 1: in for x0, out for x1.
    assert box_pixel_bounds((0.15, 0.0, 0.35, 1.0), 10, 10) == (1, 0, 3, 10)
    whole = box_masks([(0.0, 0.0, 1.0, 1.0), (np.nan,) * 4], (7, 5))
    assert whole[0].all() and not whole[1].any()


def test_the_drawn_box_outlines_the_mask():
    box = (0.3, 0.2, 0.7, 0.9)
    mask = box_masks([box], (50, 40))[0]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    assert box_pixels(box, 50, 40) == (cols[0], rows[0], cols[-1], rows[-1])
    drawn = draw_box(np.zeros((50, 40, 3), np.uint8), box, color=(0, 255, 0), thickness=1)[..., 1] > 0
    outline = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    np.testing.assert_array_equal(drawn, outline)


def test_box_errors():
    with pytest.raises(ValueError, match="normalised"):
        box_pixel_bounds((0.5, 0.0, 0.4, 0.5), 10, 10)
    with pytest.raises(ValueError, match="numbers"):
        box_pixel_bounds((np.nan,) * 4, 10, 10)
    with pytest.raises(ValueError, match="row 1 is"):
        box_masks([(0, 0, 1, 1), (0, 0, 1.5, 1)], (10, 10))


# --------------------------------------------------------------------------- resizing


def test_shrinking_averages_blocks_and_growing_is_bilinear():
    maps = np.arange(32, dtype=np.float32).reshape(2, 4, 4)
    small = resize_maps(maps, 2)
    expected = maps.reshape(2, 2, 2, 2, 2).mean(axis=(2, 4))  # mean of each 2 x 2 block
    np.testing.assert_allclose(small, expected)
    low = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    grown = resize_maps(low, (32, 24))
    assert grown.shape == (3, 32, 24) and grown.dtype == np.float32
    reference = cv2.resize(low[1], (24, 32), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(grown[1], reference)
    # One side growing is growing: bilinear.
    mixed = resize_maps(low[0], (4, 16))
    np.testing.assert_array_equal(mixed, cv2.resize(low[0], (16, 4), interpolation=cv2.INTER_LINEAR))


def test_resize_cleans_and_clips():
    cam = np.array([[np.nan, np.inf], [2.0, -1.0]], np.float16)
    same = resize_maps(cam, (2, 2))
    assert same.dtype == np.float32 and same.tolist() == [[0.0, 0.0], [2.0, -1.0]]
    assert resize_maps(cam, 2, clip=True).tolist() == [[0.0, 0.0], [1.0, 0.0]]
    assert resize_maps(np.zeros((0, 8, 8)), 4).shape == (0, 4, 4)
    with pytest.raises(ValueError, match=r"maps must be \(h, w\) or \(N, h, w\)"):
        resize_maps(np.ones(4), 2)
    with pytest.raises(ValueError, match="two positive sizes"):
        resize_maps(np.ones((4, 4)), 0)


# --------------------------------------------------------------------------- map shares


# The top-left box where the demo data (and many scanners) burn in text: x, y in [0, 1].
TOP_LEFT_TEXT_BOX = (0.0, 0.0, 0.25, 0.15)


def test_map_share_known_answers():
    cam = np.zeros((10, 10), np.float32)
    cam[:1, :2] = 1.0  # all mass in the top-left text box
    corner = box_masks([TOP_LEFT_TEXT_BOX], cam.shape)[0]
    assert corner.sum() == 2 * 1  # columns 0-1 (centres 0.05, 0.15 < 0.25), row 0 (0.05 < 0.15)
    assert map_share(cam, corner) == pytest.approx(1.0)
    assert isinstance(map_share(cam, corner), float)
    assert map_share(np.ones((10, 10)), corner) == pytest.approx(0.02)
    assert np.isnan(map_share(np.zeros((10, 10)), corner))
    assert np.isnan(map_share(-np.ones((10, 10)), corner))  # clipped at 0: no mass
    # A low-resolution map is read against a full-size mask: 9 of 20 rows.
    assert map_share(np.ones((5, 5)), box_masks([(0, 0, 1, 0.45)], (20, 20))[0]) == pytest.approx(0.45)


def test_map_share_of_a_stack_against_one_mask_or_one_mask_each():
    rng = np.random.default_rng(1)
    maps = rng.random((SHARE_CHUNK + 6, 8, 8)).astype(np.float32)  # more than one chunk
    masks = rng.random((len(maps), 16, 16)) > 0.5
    shares = map_share(maps, masks)
    grown = resize_maps(maps, 16)
    expected = (grown * masks).sum(axis=(1, 2)) / grown.sum(axis=(1, 2))
    np.testing.assert_allclose(shares, expected, rtol=1e-6)
    one = map_share(maps, masks[0])
    np.testing.assert_allclose(one, [map_share(m, masks[0]) for m in maps])
    with pytest.raises(ValueError, match=r"masks must be \(H, W\) or \(N, H, W\) with N = 70"):
        map_share(maps, masks[:3])
    with pytest.raises(ValueError, match=r"maps must be \(h, w\) or \(N, h, w\)"):
        map_share(np.ones(4), masks[0])


# --------------------------------------------------------------------------- the head


def test_head_mask_is_the_filled_head_without_the_corner_text():
    image = head_image()
    mask = head_mask(image)
    ellipse = head_image(text=False)[..., 0] > 0
    ellipse = ellipse | (cv2.morphologyEx(ellipse.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)) > 0)
    overlap = (mask & ellipse).sum() / (mask | ellipse).sum()
    assert overlap > 0.9
    assert mask[image.shape[0] // 2, image.shape[1] // 2]  # the ventricle hole is filled
    assert not mask[:8, :16].any()  # the text is not part of the head
    assert not head_mask(np.zeros((16, 16, 3), np.uint8)).any()
    np.testing.assert_array_equal(head_masks(image[None])[0], mask)


def test_mask_bounds_are_the_box_of_the_true_pixels():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    mask[7, 4] = True
    assert mask_bounds(mask) == (2, 3, 8, 9)
    assert mask_bounds(np.zeros((4, 4), bool)) is None
    top, left, bottom, right = mask_bounds(head_mask(head_image()))
    # The ellipse: centre (32, 36), half-axes 21 x 23 pixels.
    assert (abs(top - 13) <= 1, abs(bottom - 60) <= 1, abs(left - 11) <= 1, abs(right - 54) <= 1) == (True,) * 4


def test_an_image_without_a_head_counts_as_all_head():
    images = np.stack([head_image(32, text=False), np.zeros((32, 32, 3), np.uint8)])
    heads, missing = usable_head_masks(images)
    assert missing == 1 and heads[1].all()
    np.testing.assert_array_equal(heads[0], head_mask(images[0]))


def test_to_gray_of_every_layout():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    assert to_gray(rgb)[0, 0] == 76  # 0.299 * 255, OpenCV's RGB weights
    assert to_gray(rgb[..., :1]).shape == (2, 2) and to_gray(rgb[..., 0]).shape == (2, 2)
    with pytest.raises(TypeError, match="uint8"):
        to_gray(rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        to_gray(np.zeros((2, 2, 2), np.uint8))
