"""The mitigation ops mask_background and mask_border: known answers, and that every path
(decoding a file, the dashboard's bytes) applies them the same way."""

import cv2
import numpy as np
import pytest

from bt_core.data.image_ops import apply_image_ops, apply_image_ops_with_frame, IDENTITY
from bt_core.data.images import decode_image_bytes
from bt_core.regions import border_band
from bt_core.shortcuts.attention import DEFAULT_BORDER_WIDTH

SIZE = 64
CENTRE, RADIUS = (32, 32), 18


def disc_with_text() -> np.ndarray:
    """A bright disc (the head) on black, white scanner text in the top-left corner."""
    image = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(image, CENTRE, RADIUS, 180, -1)
    image[1:5, 1:14] = 255  # the text: inside the border band, apart from the disc
    return np.repeat(image[..., None], 3, axis=2)


def distance_from_centre() -> np.ndarray:
    ys, xs = np.mgrid[:SIZE, :SIZE]
    return np.hypot(xs - CENTRE[0], ys - CENTRE[1])


def test_unknown_op_lists_the_new_names():
    with pytest.raises(ValueError, match="valid: clahe, sharpen, histeq, crop_head, mask_background, mask_border"):
        apply_image_ops(disc_with_text(), ["mask_head"])


def test_mask_border_blacks_out_the_band_the_measures_read_and_keeps_the_centre():
    image = disc_with_text()
    out = apply_image_ops(image, ["mask_border"])
    band = border_band((SIZE, SIZE), DEFAULT_BORDER_WIDTH)
    assert not out[band].any()  # the text is gone with the band
    np.testing.assert_array_equal(out[~band], image[~band])
    # Known answer at 64 px: round(0.1 * 64) = 6 rows / columns on each side.
    flat = apply_image_ops(np.full((SIZE, SIZE, 3), 200, np.uint8), ["mask_border"])
    assert flat[5, 32, 0] == 0 and flat[6, 32, 0] == 200
    assert flat[32, 58, 0] == 0 and flat[32, 57, 0] == 200


def test_mask_background_zeroes_outside_the_head_and_keeps_the_head():
    image = disc_with_text()
    out = apply_image_ops(image, ["mask_background"])
    distance = distance_from_centre()
    assert not out[distance > RADIUS + 2].any()  # the text and the black frame
    np.testing.assert_array_equal(out[distance < RADIUS - 2], image[distance < RADIUS - 2])


def test_mask_background_leaves_an_image_without_a_usable_head_unchanged():
    dot = np.zeros((SIZE, SIZE, 3), np.uint8)
    dot[30:33, 30:33] = 200  # 9 px: under MIN_HEAD_SHARE (2%) of 4,096, so no head is found
    np.testing.assert_array_equal(apply_image_ops(dot, ["mask_background"]), dot)
    black = np.zeros((SIZE, SIZE, 3), np.uint8)
    np.testing.assert_array_equal(apply_image_ops(black, ["mask_background"]), black)


@pytest.mark.parametrize("op", ["mask_background", "mask_border"])
def test_masks_keep_shape_dtype_frame_and_colour(op):
    image = disc_with_text()[:48]  # not square
    image[..., 0] = np.clip(image[..., 0].astype(int) + 20, 0, 255)  # colour, not grey
    out, frame = apply_image_ops_with_frame(image, [op])
    assert out.shape == image.shape and out.dtype == np.uint8
    assert frame == IDENTITY
    kept = out.any(axis=2)
    np.testing.assert_array_equal(out[kept], image[kept])  # a pixel is kept whole or zeroed


@pytest.mark.parametrize("ops", [("mask_border",), ("mask_background",), ("crop_head", "mask_border")])
def test_decoding_bytes_applies_the_ops_at_full_size_before_the_resize(ops):
    image = disc_with_text()
    ok, png = cv2.imencode(".png", image)
    assert ok
    expected = cv2.resize(apply_image_ops(image, ops), (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(decode_image_bytes(png.tobytes(), 32, ops), expected)
