"""Image-level preprocessing ops, and that the dataset and uploads go through them alike."""

import cv2
import numpy as np
import pytest

from bt_core.data.dataset import load_dataset
from bt_core.data.images import UnreadableImageError
from bt_core.data.image_ops import IMAGE_OPS, apply_image_ops
from bt_core.data.images import decode_image_bytes
from bt_core.regions import head_mask, mask_bounds
from imagefolders import make_pool


def gray(image2d: np.ndarray) -> np.ndarray:
    return np.repeat(image2d[..., None], 3, axis=2).astype(np.uint8)


def low_contrast(size: int = 64) -> np.ndarray:
    """A grey ramp squeezed into 100..140 with a darker disc."""
    ramp = np.tile(np.linspace(100, 140, size), (size, 1))
    ys, xs = np.mgrid[:size, :size]
    ramp[(ys - size / 2) ** 2 + (xs - size / 2) ** 2 < (size / 5) ** 2] -= 20
    return gray(ramp)


def head_image(height: int = 120, width: int = 160) -> np.ndarray:
    """A bright elliptical 'head' off-centre in a black frame, plus a small text-like blob."""
    image = np.zeros((height, width), np.uint8)
    cv2.ellipse(image, (100, 60), (30, 40), 0, 0, 360, 150, -1)
    cv2.ellipse(image, (100, 60), (26, 36), 0, 0, 360, 90, -1)  # darker brain inside the skull
    image[5:9, 5:20] = 255  # scanner text in a corner: small, separate from the head
    return gray(image)


def test_names_and_unknown_op_lists_the_valid_ones():
    assert IMAGE_OPS == ("clahe", "sharpen", "histeq", "crop_head", "mask_background", "mask_border")
    with pytest.raises(ValueError, match="valid: clahe, sharpen, histeq, crop_head, mask_background, mask_border"):
        apply_image_ops(low_contrast(), ["clahe", "blur"])


def test_no_ops_returns_an_equal_copy():
    image = low_contrast()
    out = apply_image_ops(image, [])
    np.testing.assert_array_equal(out, image)
    assert out is not image


@pytest.mark.parametrize("op", IMAGE_OPS)
def test_each_op_keeps_shape_dtype_and_grayscale(op):
    image = head_image()
    out = apply_image_ops(image, [op])
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], out[..., 1])  # grayscale stays grayscale
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_clahe_and_histeq_stretch_a_low_contrast_image():
    image = low_contrast()
    spread = np.ptp(image[..., 0].astype(int))
    # CLAHE's clip limit bounds the gain; global equalization spreads to the full range.
    assert np.ptp(apply_image_ops(image, ["clahe"])[..., 0].astype(int)) > spread * 1.2
    assert np.ptp(apply_image_ops(image, ["histeq"])[..., 0].astype(int)) > spread * 4
    assert apply_image_ops(image, ["histeq"]).max() == 255  # global equalization reaches white


def test_clahe_matches_opencv_on_the_gray_level():
    image = low_contrast()
    expected = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(np.ascontiguousarray(image[..., 0]))
    np.testing.assert_array_equal(apply_image_ops(image, ["clahe"])[..., 0], expected)


def test_sharpen_is_an_unsharp_mask_that_keeps_flat_areas():
    flat = np.full((32, 32, 3), 77, np.uint8)
    np.testing.assert_array_equal(apply_image_ops(flat, ["sharpen"]), flat)
    step = np.zeros((32, 32), np.uint8)
    step[:, 16:] = 200
    out = apply_image_ops(gray(step), ["sharpen"])[..., 0].astype(int)
    assert out[:, 17].min() > 200 and out[:, 14].max() == 0  # overshoot on the bright side, clipped dark side
    blurred = cv2.GaussianBlur(gray(step), (0, 0), sigmaX=1.5).astype(float)
    expected = np.clip(np.rint(1.5 * gray(step) - 0.5 * blurred), 0, 255)
    assert np.abs(apply_image_ops(gray(step), ["sharpen"]) - expected).max() <= 1


def test_colour_images_are_equalized_on_luminance_only():
    rng = np.random.default_rng(0)
    image = rng.integers(90, 130, size=(48, 48, 3), dtype=np.uint8)
    out = apply_image_ops(image, ["histeq"])
    assert not np.array_equal(out[..., 0], out[..., 1])  # still colour
    luma = cv2.cvtColor(out, cv2.COLOR_RGB2YCrCb)[..., 0]
    assert np.ptp(luma.astype(int)) > 150


def test_crop_head_finds_the_largest_component_and_ignores_the_text():
    image = head_image()
    top, left, bottom, right = mask_bounds(head_mask(image))  # what crop_head crops to
    assert abs(top - 20) <= 2 and abs(bottom - 101) <= 2 and abs(left - 70) <= 2 and abs(right - 131) <= 2
    out = apply_image_ops(image, ["crop_head"])
    assert out.shape == image.shape
    # The head now fills the frame from top to bottom (a small margin either side) ...
    rows = np.flatnonzero(out[..., 0].max(axis=1) > 100)
    assert rows[0] <= 0.05 * out.shape[0] and rows[-1] >= 0.95 * out.shape[0]
    # ... is centred, keeps its aspect (taller than wide, as drawn), and the corner text is gone.
    cols = np.flatnonzero(out[..., 0].max(axis=0) > 100)
    assert abs((cols[0] + cols[-1]) / 2 - out.shape[1] / 2) < 4
    height_px, width_px = rows[-1] - rows[0], (cols[-1] - cols[0]) * out.shape[0] / out.shape[1]
    assert height_px / width_px == pytest.approx(40 / 30, rel=0.1)
    assert out[:10, :30].max() < 50


def test_crop_head_leaves_an_empty_image_alone():
    black = np.zeros((40, 40, 3), np.uint8)
    np.testing.assert_array_equal(apply_image_ops(black, ["crop_head"]), black)


def test_ops_run_in_the_given_order():
    image = head_image()
    a = apply_image_ops(image, ["crop_head", "histeq"])
    b = apply_image_ops(image, ["histeq", "crop_head"])
    np.testing.assert_array_equal(a, apply_image_ops(apply_image_ops(image, ["crop_head"]), ["histeq"]))
    assert not np.array_equal(a, b)


def test_uploads_and_the_dataset_get_the_same_pixels(tmp_path):
    """Ops run at full resolution BEFORE the resize, in training and for an uploaded file alike."""
    cv2.imwrite(str(tmp_path / "upload.png"), head_image()[..., 0])
    raw = (tmp_path / "upload.png").read_bytes()
    ops = ["crop_head", "clahe"]
    uploaded = decode_image_bytes(raw, 32, ops)
    assert uploaded.shape == (32, 32, 3) and uploaded.dtype == np.uint8
    full = cv2.cvtColor(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    expected = cv2.resize(apply_image_ops(full, ops), (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(uploaded, expected)
    assert not np.array_equal(uploaded, decode_image_bytes(raw, 32, []))
    with pytest.raises(UnreadableImageError):
        decode_image_bytes(b"not an image", 32, ops)
    with pytest.raises(ValueError, match="valid"):
        decode_image_bytes(raw, 32, ["nope"])

    root = make_pool(tmp_path / "pool", per_class=8, size=40)
    plain = load_dataset(root, image_size=32, seed=0)
    processed = load_dataset(root, image_size=32, seed=0, ops=("histeq",))
    assert processed.fingerprint == plain.fingerprint  # same files, same split
    first = plain.arrays["train"].ids[0]
    raw_first = (root / first).read_bytes()
    np.testing.assert_array_equal(processed.arrays["train"].images[0], decode_image_bytes(raw_first, 32, ["histeq"]))
    np.testing.assert_array_equal(plain.arrays["train"].images[0], decode_image_bytes(raw_first, 32, []))
    assert not np.array_equal(processed.arrays["train"].images, plain.arrays["train"].images)
