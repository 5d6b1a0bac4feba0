"""The source probe (bt_core.shortcuts.source_probe) and its record in the analysis pass
(bt_core.shortcuts.measures.source_probe_record): a corner mark is read from the border band."""

import numpy as np
import pytest

from bt_core.regions import usable_head_masks
from bt_core.shortcuts.measures import source_probe_record
from bt_core.shortcuts.source_probe import source_probe
from test_shortcuts_audit import scan


def marked_dataset(where: str, per_class: int = 60, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of fake scans; class 1 has a bright square either in a corner or in the centre."""
    images, labels = [], []
    for label in (0, 1):
        for index in range(per_class):
            image = scan(1000 * label + index, size)
            if label == 1 and where == "corner":
                image[1:5, 1:5] = 255
            if label == 1 and where == "centre":
                image[28:36, 28:36] = 255
            images.append(image)
            labels.append(label)
    return np.array(images), np.array(labels)


def test_source_probe_reads_the_corner_mark_from_the_border_band():
    images, labels = marked_dataset("corner")
    probe = source_probe(images, labels)  # default region: the border band
    assert probe.balanced_accuracy >= 0.95 and probe.chance == 0.5 and probe.folds == 5
    assert 0.3 < probe.region_share < 0.4  # a 10 % band on each side of a square


def test_source_probe_is_near_chance_when_only_the_centre_differs():
    images, labels = marked_dataset("centre")
    border = source_probe(images, labels)
    assert border.balanced_accuracy < 0.7
    # The same data seen through the centre: the mark is found, so the probe itself works.
    centre = np.zeros(images.shape[1:], dtype=bool)
    centre[16:48, 16:48] = True
    assert source_probe(images, labels, masks=centre).balanced_accuracy >= 0.95
    per_image = np.repeat(~centre[None], len(images), axis=0)
    assert source_probe(images, labels, masks=per_image).balanced_accuracy < 0.7
    assert source_probe(images, labels, masks=lambda gray: gray < 40).chance == 0.5


def test_source_probe_needs_two_classes():
    images, labels = marked_dataset("corner", per_class=3)
    with pytest.raises(ValueError, match="2 classes"):
        source_probe(images, np.zeros(len(images)))
    with pytest.raises(ValueError, match="does not match"):
        source_probe(images, labels, masks=np.ones((10, 10), dtype=bool))


def test_the_record_ignores_a_class_without_test_images():
    images, labels = marked_dataset("corner", per_class=10)
    heads, _not_found = usable_head_masks(np.repeat(images[..., None], 3, axis=-1))
    # Class indices 0 and 2 of three classes: class 1 has no test image, which is no reason to skip.
    record = source_probe_record(images, labels * 2, heads)
    assert record is not None and set(record) == {"border", "background"}
    assert record["border"]["balanced_accuracy"] >= 0.95 and record["border"]["chance"] == 0.5
    assert record["border"]["folds"] == 5 and record["border"]["n_images"] == len(images)
    assert source_probe_record(images, np.zeros(len(images), int), heads) is None  # one class
    one_of_a_class = np.r_[np.zeros(len(images) - 1, int), 1]
    assert source_probe_record(images, one_of_a_class, heads) is None  # no 2-fold split possible
    with pytest.raises(ValueError, match="labels must be"):
        source_probe_record(images, labels[:-1], heads)
