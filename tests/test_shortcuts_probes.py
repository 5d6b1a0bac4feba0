"""bt_core.shortcuts.probes: hand-made predict functions that read one region only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bt_core.shortcuts.probes import (
    background_only,
    deletion_insertion,
    head_only,
    mask_images,
    occlude_boxes,
    predict_proba,
    probe_probabilities,
    probe_table,
)
from bt_core.regions import box_masks, head_masks

SIZE = 32
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
# Tumor box inside the head disc: pixel columns 18..25, rows 13..20 at 32 px (pixel centres).
TUMOR_BOX = (0.55, 0.4, 0.8, 0.65)
NO_BOX = (np.nan,) * 4


def heads(n: int, radius: int = 12) -> np.ndarray:
    images = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    for image in images:
        cv2.circle(image, (SIZE // 2, SIZE // 2), radius, (100, 100, 100), -1)
    return images


def one_hot(classes: np.ndarray, n_classes: int, confidence: float = 0.7) -> np.ndarray:
    proba = np.full((len(classes), n_classes), (1 - confidence) / (n_classes - 1))
    proba[np.arange(len(classes)), classes] = confidence
    return proba


def corner_predict(images: np.ndarray) -> np.ndarray:
    """Reads only a 4 x 4 "text mark" in the top-left corner: class k has intensity 60 (k + 1);
    a black corner gives class 0."""
    level = images[:, 1:5, 1:5, 0].astype(float).mean(axis=(1, 2))
    return one_hot(np.clip(np.round(level / 60) - 1, 0, 3).astype(int), 4)


def marked_images() -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([0, 1, 2, 3] * 2)
    images = heads(len(labels), radius=10)
    for image, label in zip(images, labels):
        image[1:5, 1:5] = 60 * (label + 1)
    return images, labels


def test_corner_reader_is_right_on_background_and_at_chance_on_the_head() -> None:
    images, labels = marked_images()
    masks = head_masks(images)
    assert not masks[:, 1:5, 1:5].any()  # the mark is no part of the head
    table = probe_table(corner_predict, images, labels, CLASSES, masks, batch_size=3)
    assert table.index.tolist() == ["original", "head_only", "background_only"]
    assert table.loc["original", "accuracy"] == 1.0
    assert table.loc["background_only", "accuracy"] == table.loc["original", "accuracy"]
    assert table.loc["head_only", "accuracy"] == pytest.approx(0.25)  # always class 0
    assert table.loc["head_only", "chance"] == pytest.approx(0.25)
    assert table.loc["original", "mean_confidence"] == pytest.approx(0.7)
    assert table.loc["head_only", "mean_true_prob"] == pytest.approx((2 * 0.7 + 6 * 0.1) / 8)
    assert table.loc["original", "tumor_predicted"] == pytest.approx(0.75)
    assert table.loc["original", "n"] == 8


def box_predict(images: np.ndarray) -> np.ndarray:
    """Glioma when the tumor box region is bright, else notumor (classes glioma, notumor)."""
    bright = images[:, 12:21, 17:26, 0].astype(float).mean(axis=(1, 2)) > 160
    return one_hot(np.where(bright, 0, 1), 2, confidence=0.9)


def tumor_images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = heads(4)
    labels = np.array([0, 0, 1, 1])
    boxes = np.array([TUMOR_BOX, TUMOR_BOX, NO_BOX, NO_BOX])
    inside = box_masks(boxes, (SIZE, SIZE))
    images[inside] = 230
    return images, labels, boxes


def faint_patch_predict(images: np.ndarray) -> np.ndarray:
    """Class 1 when the faint patch (intensity 5) of no_head_images is anywhere, else class 0."""
    return one_hot((images[..., 0] == 5).any(axis=(1, 2)).astype(int), 2)


def no_head_images() -> np.ndarray:
    """A 2 x 2 mark (too small to be a head: none is found) and a faint patch below the threshold."""
    images = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    images[:, 1:3, 1:3] = 255
    images[:, 20:30, 20:30] = 5
    return images


def test_an_image_with_no_head_found_is_all_head_so_its_background_is_black() -> None:
    images, labels = no_head_images(), np.array([1, 1])
    raw = head_masks(images)
    assert raw.any() and raw.mean() < 0.02  # the mark alone: no head found
    table = probe_table(faint_patch_predict, images, labels, ["notumor", "glioma"])
    # Taken as all head, the background-only copy is black: a failed mask cannot look like a shortcut.
    assert table.loc["background_only", "accuracy"] == 0.0 and table.loc["head_only", "accuracy"] == 1.0
    # The raw mask would leave the faint patch as "background", which then gives the class away.
    with_raw = probe_probabilities(faint_patch_predict, images, raw)
    assert (with_raw["background_only"][1].argmax(axis=1) == 1).all()


def test_box_reader_loses_its_tumors_when_the_box_is_occluded() -> None:
    images, labels, boxes = tumor_images()
    table = probe_table(box_predict, images, labels, ["glioma", "notumor"], boxes=boxes)
    assert table.loc["original", "accuracy"] == 1.0
    assert table.loc["original_boxed", ["n", "tumor_predicted"]].tolist() == [2, 1.0]
    assert table.loc["tumor_occluded", ["n", "tumor_predicted", "accuracy"]].tolist() == [2, 0, 0]


def test_occlusion_fills_with_the_head_not_a_black_box() -> None:
    images, _, boxes = tumor_images()
    masks = head_masks(images)
    occluded = occlude_boxes(images, boxes, masks)
    inside = box_masks(boxes, (SIZE, SIZE))
    assert np.abs(occluded[inside].astype(int) - 100).max() <= 1  # the head's median
    assert np.array_equal(occluded[2:], images[2:])  # no box: unchanged
    far = ~cv2.dilate(inside[0].astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.array_equal(occluded[0][far], images[0][far])
    assert np.array_equal(occluded[0][~masks[0]], images[0][~masks[0]])  # background kept


def test_masking() -> None:
    images, _ = marked_images()
    masks = head_masks(images)
    inside = head_only(images, masks)
    outside = background_only(images, masks)
    assert (inside[~masks] == 0).all() and np.array_equal(inside[masks], images[masks])
    assert (outside[masks] == 0).all() and np.array_equal(outside[~masks], images[~masks])
    assert (mask_images(images, masks[0], fill=7)[:, 0, 0] == 7).all()
    with pytest.raises(ValueError, match="fill must be 'zero' or an intensity"):
        mask_images(images, masks, fill="mean")
    with pytest.raises(ValueError, match=r"keep_mask must be \(H, W\) or \(N, H, W\)"):
        mask_images(images, masks[:2])


@pytest.mark.parametrize("negative", ["notumor", "no_tumor", "No Tumor"])
def test_tumor_predicted_finds_every_spelling_of_the_negative_class(negative: str) -> None:
    images, labels = marked_images()  # the corner reader predicts each label exactly
    names = [negative if name == "notumor" else name for name in CLASSES]
    table = probe_table(corner_predict, images, labels, names)
    # Two of the eight images are no-tumor (label 2): 6 / 8 are called a tumor.
    assert table.loc["original", "tumor_predicted"] == pytest.approx(0.75)


def test_tumor_predicted_is_nan_without_a_negative_class() -> None:
    images, labels = marked_images()
    table = probe_table(corner_predict, images, labels, ["glioma", "meningioma", "healthy", "pituitary"])
    assert table["tumor_predicted"].isna().all()
    assert table.loc["original", "accuracy"] == 1.0  # the rest of the table is still there


def test_predict_checks() -> None:
    images, labels = marked_images()
    with pytest.raises(ValueError, match=r"predict must return \(N, C\)"):
        predict_proba(lambda x: np.ones(len(x)), images)
    with pytest.raises(ValueError, match="returned 4 columns for 2 classes"):
        probe_table(corner_predict, images, labels % 2, ["glioma", "notumor"])


def test_predict_is_called_in_chunks() -> None:
    images, labels = marked_images()
    sizes: list[int] = []

    def recording(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        return corner_predict(batch)

    probe_table(recording, images, labels, CLASSES, batch_size=3)
    assert max(sizes) == 3 and sum(sizes) == 3 * len(images)


PATCH = (slice(4, 10), slice(20, 26))  # 6 x 6 bright patch the predict function reads


def patch_predict(images: np.ndarray) -> np.ndarray:
    level = images[:, PATCH[0], PATCH[1], 0].astype(float).mean(axis=(1, 2))
    p = 1 / (1 + np.exp(-(level - 180) / 10))
    return np.stack([1 - p, p], axis=1)


def test_deletion_and_insertion_reward_the_map_that_points_at_the_evidence() -> None:
    images = heads(2, radius=10)
    images[:, PATCH[0], PATCH[1]] = 255
    good = np.zeros((2, SIZE, SIZE), np.float32)
    good[:, PATCH[0], PATCH[1]] = 1.0
    maps = np.stack([good[0], 1.0 - good[1]])  # image 0: faithful map; image 1: inverted
    calls: list[int] = []

    def recording(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return patch_predict(batch)

    result = deletion_insertion(recording, images, maps, class_index=1, steps=10, batch_size=100)
    assert calls == [2 * 2 * 11]  # both images' curves in one predict call
    assert result["deletion"].shape == result["insertion"].shape == (2, 11)
    assert np.allclose(result["fractions"], np.linspace(0, 1, 11))
    original = patch_predict(images)[:, 1]
    assert np.allclose(result["deletion"][:, 0], original)
    assert np.allclose(result["insertion"][:, -1], original)
    deletion, insertion = result["deletion_auc"], result["insertion_auc"]
    assert deletion[0] < 0.1 < 0.9 < insertion[0]
    assert deletion[1] > 0.85 and insertion[1] < 0.15 and deletion[1] > insertion[1]
    expected = (result["deletion"][:, 1:] + result["deletion"][:, :-1]).sum(axis=1) / 20
    assert np.allclose(deletion, expected)


def test_deletion_insertion_zero_baseline_and_errors() -> None:
    images = heads(1)
    images[:, PATCH[0], PATCH[1]] = 255
    maps = np.ones((1, 8, 8), np.float32)
    result = deletion_insertion(patch_predict, images, maps, [1], steps=4, baseline="zero")
    assert result["insertion"][0, 0] == pytest.approx(patch_predict(np.zeros_like(images))[0, 1])
    with pytest.raises(ValueError, match="baseline must be 'blur' or 'zero'"):
        deletion_insertion(patch_predict, images, maps, 1, baseline="noise")
    with pytest.raises(ValueError, match=r"class_index must lie in \[0, 2\)"):
        deletion_insertion(patch_predict, images, maps, 2, steps=2)
    with pytest.raises(ValueError, match=r"maps must be \(N, h, w\) with N = 1"):
        deletion_insertion(patch_predict, images, maps[0], 1)
