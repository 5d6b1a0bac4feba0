"""bt_core.shortcuts.counterfactual: constructed images and predict functions with known answers.

Class k of the synthetic set has its own source (background level 10 (k + 1) outside the
head, so also in the border band), its own head shape (disc radius 6 + k) and its own head
intensity (80 + 40 k). Each reader below decides from one of the three only.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core.regions import border_band
from bt_core.shortcuts.severity import source_following_share
from bt_core.shortcuts.counterfactual import (
    COLUMNS,
    border_table,
    counterfactual_table,
    source_swap_table,
    style_table,
    wilson_interval,
)
from bt_core.shortcuts.source_changes import blank_border, match_style, swap_outside_head

SIZE = 32
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
NOTUMOR = 2
BAND = border_band((SIZE, SIZE), 0.1)
AREAS = np.array([np.count_nonzero(cv2.circle(np.zeros((SIZE, SIZE), np.uint8), (16, 16), 6 + k, 1, -1))
                  for k in range(4)])
MARK = (14, 16)  # a head pixel of every class: 255 switches the half reader to the border


def disc(radius: int) -> np.ndarray:
    return cv2.circle(np.zeros((SIZE, SIZE), np.uint8), (16, 16), radius, 1, -1).astype(bool)


def synthetic(per_class: int = 6, classes: tuple[int, ...] = (0, 1, 2, 3), marked_half: bool = False):
    """Images, labels and head masks; image i of a class differs by one head pixel (i)."""
    images, labels, heads = [], [], []
    for k in classes:
        for i in range(per_class):
            head = disc(6 + k)
            image = np.full((SIZE, SIZE, 3), 10 * (k + 1), np.uint8)
            image[head] = 80 + 40 * k
            image[16, 12] = 80 + 40 * k + i  # off-centre, keeps shape and centre intensity
            if marked_half and i % 2 == 0:
                image[MARK] = 255
            images.append(image), labels.append(k), heads.append(head)
    return np.stack(images), np.array(labels), np.stack(heads)


def one_hot(classes: np.ndarray, confidence: float = 0.7) -> np.ndarray:
    proba = np.full((len(classes), 4), (1 - confidence) / 3)
    proba[np.arange(len(classes)), classes] = confidence
    return proba


def border_class(images: np.ndarray) -> np.ndarray:
    level = images[:, BAND].astype(float).mean(axis=(1, 2))
    return np.clip(np.round(level / 10) - 1, 0, 3).astype(int)


def shape_class(images: np.ndarray) -> np.ndarray:
    area = (images[..., 0] > 60).sum(axis=(1, 2))
    return np.abs(area[:, None] - AREAS[None]).argmin(axis=1)


def border_reader(images: np.ndarray) -> np.ndarray:
    return one_hot(border_class(images))


def shape_reader(images: np.ndarray) -> np.ndarray:
    return one_hot(shape_class(images))


def intensity_reader(images: np.ndarray) -> np.ndarray:
    level = images[:, 15:18, 15:18, 0].astype(float).mean(axis=(1, 2))
    return one_hot(np.clip(np.round((level - 80) / 40), 0, 3).astype(int))


def half_reader(images: np.ndarray) -> np.ndarray:
    """The border on marked images (half of each class), the head shape on the others."""
    marked = images[:, MARK[0], MARK[1], 0] == 255
    return one_hot(np.where(marked, border_class(images), shape_class(images)))


class Recorder:
    """A predict function that records the size of every chunk it is given."""

    def __init__(self, predict) -> None:
        self.predict, self.chunks = predict, []

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.chunks.append(len(images))
        return self.predict(images)


def rows(table: pd.DataFrame, probe: str) -> pd.DataFrame:
    return table[table["probe"] == probe].set_index(["recipient_class", "donor_class"])


# --------------------------------------------------------------------------- image changes


def test_swap_keeps_the_recipient_head_bit_for_bit_and_fills_the_donor_head_with_its_background() -> None:
    rng = np.random.default_rng(0)
    recipient, donor = rng.integers(100, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    donor[~disc(11)] = rng.integers(0, 40, (np.count_nonzero(~disc(11)), 3))
    recipient_head, donor_head = disc(6), disc(11)
    out = swap_outside_head(recipient[None], recipient_head[None], donor[None], donor_head[None])[0]
    assert out.dtype == np.uint8
    assert np.array_equal(out[recipient_head], recipient[recipient_head])
    outside_both = ~recipient_head & ~donor_head
    assert np.array_equal(out[outside_both], donor[outside_both])
    ring = ~recipient_head & donor_head  # the donor's anatomy never leaks in
    expected = np.round(np.median(donor[~donor_head], axis=0)).astype(np.uint8)
    assert (out[ring] == expected).all() and not np.array_equal(out[ring][0], donor[ring][0])


def test_swap_refuses_mismatched_or_non_uint8_input() -> None:
    images, _, heads = synthetic(2)
    shapes = r"donors must have the recipients' shape \(8, 32, 32, 3\), got \(7, 32, 32, 3\)"
    with pytest.raises(ValueError, match=shapes):
        swap_outside_head(images, heads, images[:7], heads[:7])
    with pytest.raises(ValueError, match=r"recipient_heads must be \(N, H, W\) = \(8, 32, 32\), got \(7, 32, 32\)"):
        swap_outside_head(images, heads[:7], images, heads)
    with pytest.raises(TypeError, match="images must be uint8, got dtype float32"):
        swap_outside_head(images.astype(np.float32), heads, images, heads)


def test_style_match_maps_the_head_quantiles_onto_the_pooled_reference_and_keeps_the_outside() -> None:
    head = np.zeros((SIZE, SIZE), bool)
    head[5:15, 5:15] = True
    image = np.full((1, SIZE, SIZE, 3), 7, np.uint8)
    image[0][head] = np.arange(100)[:, None]  # grey levels 0..99, once each
    references = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    references[0][head] = np.arange(100, 150).repeat(2)[:, None]  # pooled: 100..199, twice each
    references[1][head] = np.arange(150, 200).repeat(2)[:, None]
    out = match_style(image, head[None], references, np.stack([head, head]))
    assert np.array_equal(out[0][head].astype(int), image[0][head].astype(int) + 100)
    assert np.array_equal(out[0][~head], image[0][~head])
    with pytest.raises(ValueError, match="reference_heads hold no head pixel to take a style from"):
        match_style(image, head[None], references, np.zeros((2, SIZE, SIZE), bool))


def test_blank_border_keeps_the_head_bit_for_bit_black_or_inpainted() -> None:
    rng = np.random.default_rng(1)
    images = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    images[:, BAND] = rng.integers(150, 256, (2, np.count_nonzero(BAND), 3))  # burned-in text
    head = np.stack([disc(9), disc(20)])  # the second head reaches into the band
    images[head] = 120
    for method in ("black", "inpaint"):
        out = blank_border(images, 0.1, method, head)
        assert np.array_equal(out[head], images[head]), method
        assert np.array_equal(out[:, ~BAND], images[:, ~BAND]), method
    black = blank_border(images, 0.1, "black", head)
    assert (black[0][BAND] == 0).all() and (black[1][BAND & ~head[1]] == 0).all()
    inpainted = blank_border(images, 0.1, "inpaint", head)
    assert inpainted[0][BAND].max() < 40  # filled from the black inside, the text is gone
    assert (blank_border(images, 0.1, "black")[:, BAND] == 0).all()  # no heads: all the band
    with pytest.raises(ValueError, match=r"method must be one of \('black', 'inpaint'\), got 'blur'"):
        blank_border(images, 0.1, "blur")


# --------------------------------------------------------------------------- tables


def test_border_reader_takes_the_donor_class_on_every_swap_and_never_moves_on_the_control() -> None:
    images, labels, heads = synthetic()
    table = source_swap_table(border_reader, images, labels, heads, CLASSES, batch_size=5)
    assert list(table.columns) == list(COLUMNS)
    swaps, controls = rows(table, "source_swap"), rows(table, "source_swap_control")
    tumors = [c for c in CLASSES if c != "notumor"]
    expected_pairs = {(c, "notumor") for c in tumors} | {("notumor", c) for c in tumors}
    assert set(swaps.index) == expected_pairs
    assert (swaps["n"] == 6).all() and (swaps["n_not_donor"] == 6).all() and (swaps["flip_to_donor"] == 1.0).all()
    assert (swaps["control"] == 0.0).all() and (swaps["excess"] == 1.0).all() and (swaps["chance"] == 0.25).all()
    assert swaps["true_prob_drop"].tolist() == pytest.approx([0.6] * 6)
    assert set(controls.index) == {(c, c) for c in CLASSES}
    assert (controls["changed"] == 0.0).all() and (controls["left_true"] == 0.0).all()
    assert controls["control"].isna().all() and (controls["chance"] == 0.75).all()
    everything = source_swap_table(border_reader, images, labels, heads, CLASSES, all_pairs=True)
    assert len(rows(everything, "source_swap")) == 12 and (rows(everything, "source_swap")["flip_to_donor"] == 1).all()


@pytest.mark.parametrize("reader", [shape_reader, intensity_reader])
def test_head_readers_never_flip_on_a_source_swap(reader) -> None:
    images, labels, heads = synthetic()
    table = source_swap_table(reader, images, labels, heads, CLASSES)
    assert (table["changed"] == 0.0).all() and (rows(table, "source_swap")["flip_to_donor"] == 0.0).all()
    assert (table["true_prob_drop"] == 0.0).all()


def test_style_match_flips_an_intensity_reader_to_no_tumor_but_not_a_shape_reader() -> None:
    images, labels, heads = synthetic()
    intensity = style_table(intensity_reader, images, labels, heads, CLASSES)
    tumors = {"glioma", "meningioma", "pituitary"}
    for probe in ("style_match", "style_border_black", "style_border_inpaint"):
        flips, controls = rows(intensity, probe), rows(intensity, f"{probe}_control")
        assert set(flips.index) == {(c, "notumor") for c in tumors}
        assert (flips["flip_to_donor"] == 1.0).all() and (flips["excess"] == 1.0).all(), probe
        assert set(controls.index) == {(c, c) for c in tumors} and (controls["changed"] == 0.0).all(), probe
    shape = style_table(shape_reader, images, labels, heads, CLASSES)
    assert len(shape) == 18 and (shape["changed"] == 0.0).all()
    unused = Recorder(shape_reader)  # no no-tumor class: no row, and nothing predicted
    assert style_table(unused, images, labels, heads, ["a", "b", "c", "d"]).empty and unused.chunks == []


def test_border_blank_moves_a_border_reader_and_no_head_reader() -> None:
    images, labels, heads = synthetic()
    table = border_table(border_reader, images, labels, heads, CLASSES)
    black, inpaint = rows(table, "border_black"), rows(table, "border_inpaint")
    # A black band reads as level 0: class 0, so every other class changes.
    assert black["changed"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert (inpaint["changed"] == 0.0).all()  # the band is refilled with the background's own level
    assert (border_table(shape_reader, images, labels, heads, CLASSES)["changed"] == 0.0).all()


def test_severity_is_one_for_the_border_reader_zero_for_the_head_reader_and_half_for_half() -> None:
    images, labels, heads = synthetic(marked_half=True)
    counts = pd.Series(labels).map(dict(enumerate(CLASSES))).value_counts()
    severities = {}
    for reader in (border_reader, shape_reader, half_reader):
        table = counterfactual_table(reader, images, labels, heads, CLASSES)
        severities[reader.__name__] = source_following_share(table, counts)
    border, shape, half = severities["border_reader"], severities["shape_reader"], severities["half_reader"]
    assert border["severity"] == pytest.approx(1.0) and border["covered_share"] == pytest.approx(1.0)
    assert 0.5 < border["ci_low"] < 1.0 and border["ci_high"] == pytest.approx(1.0)
    assert border["pair.glioma"] == "glioma -> notumor" and border["weight.glioma"] == 0.25
    assert shape["severity"] == 0.0 and shape["driving_pair"] == "" and shape["ci_high"] > 0
    assert half["severity"] == pytest.approx(0.5) and half["part.notumor"] == pytest.approx(0.5)
    assert all(isinstance(value, (float, str)) for value in half.values())


def test_severity_weights_the_classes_by_their_test_share_and_refuses_missing_counts() -> None:
    images, labels, heads = synthetic(marked_half=True)
    table = counterfactual_table(half_reader, images, labels, heads, CLASSES)
    table.loc[(table["probe"] == "source_swap") & (table["recipient_class"] == "glioma"), "excess"] = 1.0
    share = source_following_share(table, {"glioma": 70, "meningioma": 10, "notumor": 10, "pituitary": 10})
    assert share["severity"] == pytest.approx(0.7 * 1.0 + 0.3 * 0.5)
    assert share["driving_pair"] == "glioma -> notumor"
    with pytest.raises(ValueError, match=r"class_counts has no count for the table's classes \['pituitary'\]"):
        source_following_share(table, {"glioma": 1, "meningioma": 1, "notumor": 1})
    with pytest.raises(ValueError, match=r"table lacks the counterfactual columns \['excess'\]"):
        source_following_share(table.drop(columns="excess"), {"glioma": 1})


def test_the_control_donor_is_another_image_of_the_class_never_the_recipient_itself() -> None:
    images, labels, heads = synthetic(5)
    images[:, 0, 0] = images[:, 16, 12] - images[:, 16, 16]  # the outside names its image: 0..4

    def self_reader(batch: np.ndarray) -> np.ndarray:
        """The head's class while the outside is the image's own, the next class otherwise."""
        own = batch[:, 0, 0, 0] == batch[:, 16, 12, 0] - batch[:, 16, 16, 0]
        return one_hot((shape_class(batch) + ~own) % 4)

    for seed in range(3):
        table = source_swap_table(self_reader, images, labels, heads, CLASSES, seed=seed)
        controls = rows(table, "source_swap_control")
        assert (controls["n"] == 5).all() and (controls["changed"] == 1.0).all()


def test_the_same_seed_draws_the_same_images_and_another_seed_others() -> None:
    images, labels, heads = synthetic()

    def seen(seed: int) -> tuple[pd.DataFrame, list[bytes]]:
        shown = []

        def predict(batch: np.ndarray) -> np.ndarray:
            shown.extend(image.tobytes() for image in batch)
            return border_reader(batch)

        return counterfactual_table(predict, images, labels, heads, CLASSES, per_class=3, seed=seed), shown

    first, again, other = seen(0), seen(0), seen(1)
    pd.testing.assert_frame_equal(first[0], again[0])
    assert first[1] == again[1] and first[1] != other[1]
    assert (first[0]["n"] == 3).all()


def test_predict_is_called_in_full_chunks_of_at_most_batch_size_and_the_originals_once() -> None:
    images, labels, heads = synthetic()
    recorder = Recorder(border_reader)
    table = counterfactual_table(recorder, images, labels, heads, CLASSES, batch_size=7)
    total = int(table["n"].sum()) + len(images)  # every changed image, and each original once
    assert sum(recorder.chunks) == total and len(recorder.chunks) == math.ceil(total / 7)
    assert max(recorder.chunks) <= 7
    known = Recorder(border_reader)
    again = counterfactual_table(known, images, labels, heads, CLASSES, batch_size=7,
                                 original_proba=border_reader(images))
    assert sum(known.chunks) == table["n"].sum()
    pd.testing.assert_frame_equal(table, again)


def test_a_class_without_images_gives_rows_with_n_zero_and_a_reason() -> None:
    images, labels, heads = synthetic(3, classes=(0, 1, 2))  # no pituitary image
    images1, labels1, heads1 = synthetic(1, classes=(3,))
    images, labels = np.concatenate([images, images1]), np.concatenate([labels, labels1])
    heads = np.concatenate([heads, heads1])
    heads[0] = True  # no head found: excluded, reported
    table = counterfactual_table(border_reader, images, labels, heads, CLASSES)
    control = rows(table, "source_swap_control").loc[("pituitary", "pituitary")]
    assert control["n"] == 0
    assert control["note"] == "the control needs 2 images of class pituitary with a head found, got 1"
    assert rows(table, "source_swap").loc[("pituitary", "notumor"), "n"] == 1
    assert rows(table, "source_swap_control").loc[("glioma", "glioma"), ["n", "excluded"]].tolist() == [2, 1]

    images, labels, heads = synthetic(3, classes=(0, 1, 2))
    table = counterfactual_table(border_reader, images, labels, heads, CLASSES)
    to_pituitary = rows(table, "source_swap").loc[("notumor", "pituitary")]
    assert to_pituitary["n"] == 0
    assert to_pituitary["note"] == "no images of class pituitary with a head found to take a background from"
    pituitary = table[table["recipient_class"] == "pituitary"]
    assert len(pituitary) > 0 and (pituitary["n"] == 0).all() and pituitary["value"].isna().all()
    changed = pituitary[pituitary["probe"] != "source_swap_control"]
    assert (changed["note"] == "no images of class pituitary with a head found to change").all()


def test_bad_input_is_refused_with_one_clear_sentence() -> None:
    images, labels, heads = synthetic(2)
    with pytest.raises(ValueError, match=r"labels must be \(N,\) with N = 8, got shape \(7,\)"):
        counterfactual_table(border_reader, images, labels[:7], heads, CLASSES)
    with pytest.raises(ValueError, match=r"heads must be \(N, H, W\) = \(8, 32, 32\), got \(32, 32\)"):
        counterfactual_table(border_reader, images, labels, heads[0], CLASSES)
    with pytest.raises(TypeError, match="images must be uint8, got dtype int64"):
        counterfactual_table(border_reader, images.astype(np.int64), labels, heads, CLASSES)
    with pytest.raises(ValueError, match="predict returned 3 columns for 4 classes"):
        counterfactual_table(lambda batch: border_reader(batch)[:, :3], images, labels, heads, CLASSES)
    with pytest.raises(ValueError, match=r"original_proba must be finite \(N, C\) = \(8, 4\), got shape \(8, 3\)"):
        counterfactual_table(border_reader, images, labels, heads, CLASSES, original_proba=np.zeros((8, 3)))
    with pytest.raises(ValueError, match="border width must be in"):
        counterfactual_table(border_reader, images, labels, heads, CLASSES, border_width=0.5)
    with pytest.raises(ValueError, match="per_class must be >= 1, got 0"):
        counterfactual_table(border_reader, images, labels, heads, CLASSES, per_class=0)


def test_the_table_is_flat_and_round_trips_through_csv(tmp_path) -> None:
    images, labels, heads = synthetic(3)
    table = counterfactual_table(half_reader, images, labels, heads, CLASSES)
    assert len(table) == 10 + 18 + 8  # 6 pairs + 4 controls, 3 tumor classes x 6 style rows, 4 x 2 borders
    assert all(table[c].map(type).isin([str, int, float]).all() for c in table.columns)
    table.to_csv(tmp_path / "counterfactual.csv", index=False)
    back = pd.read_csv(tmp_path / "counterfactual.csv").fillna({"donor_class": "", "note": ""})
    pd.testing.assert_frame_equal(back, table, check_dtype=False)


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert all(math.isnan(bound) for bound in wilson_interval(0, 0))
