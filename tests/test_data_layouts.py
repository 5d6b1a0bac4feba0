"""Dataset discovery, splits, decoding and boxes on small folders built on the fly."""

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core.data.boxes import read_boxes
from bt_core.data.dataset import load_dataset
from bt_core.data.images import UnreadableImageError, read_image
from bt_core.data.layouts import LAYOUT_KAGGLE, LAYOUT_POOL, discover
from bt_core.data.splits import make_split
from imagefolders import CLASSES, make_kaggle, make_pool


def test_kaggle_layout_keeps_testing_as_test_and_carves_stratified_val(tmp_path):
    make_kaggle(tmp_path, train_per_class=20, test_per_class=6)
    index = discover(tmp_path)
    assert index.layout == LAYOUT_KAGGLE
    assert index.class_names == CLASSES
    split = make_split(index, val_fraction=0.25, seed=1)
    counts = split.groupby(["split", "label"]).size().unstack()
    assert (counts.loc["test"] == 6).all()
    assert (counts.loc["val"] == 5).all()  # 25% of 20, the same for every class
    assert (counts.loc["train"] == 15).all()
    assert split.loc[split["split"] == "test", "path"].str.startswith("Testing/").all()
    assert not split["path"].duplicated().any()


def test_pool_layout_splits_70_15_15_stratified_and_seeded(tmp_path):
    make_pool(tmp_path, per_class=40)
    index = discover(tmp_path)
    assert index.layout == LAYOUT_POOL
    split = make_split(index, seed=7)
    counts = split.groupby(["split", "label"]).size().unstack()
    assert (counts.loc["test"] == 6).all() and (counts.loc["val"] == 6).all() and (counts.loc["train"] == 28).all()
    assert split.equals(make_split(index, seed=7))
    assert not split.equals(make_split(index, seed=8))


def test_class_names_are_sorted_folder_names_and_hidden_entries_ignored(tmp_path):
    make_pool(tmp_path, per_class=5, classes=("zeta", "alpha"))
    (tmp_path / ".hidden_class").mkdir()
    cv2.imwrite(str(tmp_path / ".hidden_class" / "x.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "alpha" / ".ipynb_checkpoints").mkdir()
    cv2.imwrite(str(tmp_path / "alpha" / ".ipynb_checkpoints" / "copy.png"), np.zeros((8, 8), np.uint8))
    cv2.imwrite(str(tmp_path / "alpha" / ".DS_Store.png"), np.zeros((8, 8), np.uint8))
    index = discover(tmp_path)
    assert index.class_names == ("alpha", "zeta")
    assert len(index.items) == 10
    assert not index.items["path"].str.contains(r"/\.").any()


def test_corrupt_and_foreign_files_are_skipped_and_reported(tmp_path):
    make_pool(tmp_path, per_class=12)
    (tmp_path / "glioma" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (tmp_path / "glioma" / "empty.png").write_bytes(b"")
    (tmp_path / "meningioma" / "notes.txt").write_text("not an image")
    data = load_dataset(tmp_path, image_size=32, seed=0)
    reasons = {s.path: s.reason for s in data.skipped}
    assert set(reasons) == {"glioma/broken.jpg", "glioma/empty.png", "meningioma/notes.txt"}
    assert "empty" in reasons["glioma/empty.png"]
    assert "not an image" in reasons["meningioma/notes.txt"]
    assert not data.split["path"].isin(list(reasons)).any()
    assert sum(len(a.labels) for a in data.arrays.values()) == 4 * 12


def test_read_image_gives_rgb_uint8_at_size_from_gray_and_color(tmp_path):
    gray = np.full((30, 50), 77, np.uint8)
    color = np.zeros((40, 40, 3), np.uint8)
    color[..., 2] = 255  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    cv2.imwrite(str(tmp_path / "color.png"), color)
    out_gray = read_image(tmp_path / "gray.png", 16)
    out_color = read_image(tmp_path / "color.png", 16)
    assert out_gray.shape == out_color.shape == (16, 16, 3)
    assert out_gray.dtype == np.uint8 and (out_gray == 77).all()
    assert (out_color[..., 0] == 255).all() and (out_color[..., 2] == 0).all()  # RGB
    with pytest.raises(UnreadableImageError):
        read_image(tmp_path / "missing.png", 16)


def test_loaded_arrays_match_the_split(tmp_path):
    make_kaggle(tmp_path, train_per_class=10, test_per_class=4, size=40)
    data = load_dataset(tmp_path, image_size=24, seed=3)
    for name, arrays in data.arrays.items():
        rows = data.split[data.split["split"] == name]
        assert arrays.images.shape == (len(rows), 24, 24, 3)
        assert list(arrays.ids) == rows["path"].tolist()
        assert [data.class_names[i] for i in arrays.labels] == rows["label"].tolist()
    assert data.counts()["test"] == {c: 4 for c in CLASSES}
    assert len(data.fingerprint) == 64
    assert load_dataset(tmp_path, image_size=24, seed=3).fingerprint == data.fingerprint


def test_fingerprint_changes_when_an_image_changes(tmp_path):
    make_pool(tmp_path, per_class=8)
    before = load_dataset(tmp_path, 16).fingerprint
    cv2.imwrite(str(tmp_path / "glioma" / "img_000.png"), np.full((48, 48), 3, np.uint8))
    assert load_dataset(tmp_path, 16).fingerprint != before


def test_boxes_are_read_validated_and_restricted_to_known_images(tmp_path):
    make_pool(tmp_path, per_class=8)
    pd.DataFrame(
        [
            ["glioma/img_000.png", "glioma", 0.1, 0.2, 0.3, 0.4],
            ["glioma/img_001.png", "glioma", 0.5, 0.5, 0.4, 0.9],  # x_min > x_max
            ["glioma/img_002.png", "glioma", 0.1, 0.2, 1.3, 0.4],  # outside [0, 1]
            ["pituitary/img_003.png", "pituitary", 0.4, 0.6, 0.6, 0.8],
            ["pituitary/not_there.png", "pituitary", 0.4, 0.6, 0.6, 0.8],
        ],
        columns=["image", "label", "x_min", "y_min", "x_max", "y_max"],
    ).to_csv(tmp_path / "boxes.csv", index=False)
    boxes, rejected = read_boxes(tmp_path)
    assert set(boxes.index) == {"glioma/img_000.png", "pituitary/img_003.png", "pituitary/not_there.png"}
    assert boxes.loc["glioma/img_000.png"].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert {r.path for r in rejected} == {"glioma/img_001.png", "glioma/img_002.png"}
    data = load_dataset(tmp_path, 16)
    assert set(data.boxes.index) == {"glioma/img_000.png", "pituitary/img_003.png"}
    assert {"glioma/img_001.png", "glioma/img_002.png"} <= {s.path for s in data.skipped}


def test_boxes_file_without_required_columns_is_a_clear_error(tmp_path):
    make_pool(tmp_path, per_class=4)
    (tmp_path / "boxes.csv").write_text("image,x,y\nglioma/img_000.png,1,2\n")
    with pytest.raises(ValueError, match="lacks columns"):
        read_boxes(tmp_path)


def test_no_boxes_file_gives_empty_boxes(tmp_path):
    make_pool(tmp_path, per_class=4)
    boxes, rejected = read_boxes(tmp_path)
    assert boxes.empty and rejected == []


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda root: None, "no images found"),
        (lambda root: make_pool(root, per_class=3, classes=("only",)), "at least 2 class"),
        (
            lambda root: (make_kaggle(root, 3, 2), (root / "Testing" / "extra").mkdir()),
            "class folders differ",
        ),
    ],
)
def test_unusable_folders_give_clear_errors(tmp_path, build, message):
    build(tmp_path)
    with pytest.raises(ValueError, match=message):
        discover(tmp_path)


def test_missing_folder_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        discover(tmp_path / "nope")


def test_max_per_class_caps_each_class_and_source(tmp_path):
    make_kaggle(tmp_path, train_per_class=20, test_per_class=10)
    split = make_split(discover(tmp_path), seed=0, max_per_class=8)
    counts = split.assign(source=split["path"].str.split("/").str[0]).groupby(["source", "label"]).size()
    assert (counts == 8).all()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_named_like_an_image_is_skipped_with_a_reason_not_read(tmp_path):
    make_pool(tmp_path, per_class=6)
    os.mkfifo(tmp_path / "glioma" / "pipe.jpg")  # reading it would block forever
    index = discover(tmp_path)
    reasons = {s.path: s.reason for s in index.skipped}
    assert "FIFO" in reasons["glioma/pipe.jpg"] and "not a regular file" in reasons["glioma/pipe.jpg"]
    assert "glioma/pipe.jpg" not in set(index.items["path"])
    with pytest.raises(UnreadableImageError, match=r"pipe\.jpg: not a regular file"):
        read_image(tmp_path / "glioma" / "pipe.jpg", 16)  # refused without opening it


def test_folder_symlink_and_broken_link_are_reported_file_links_are_read(tmp_path):
    data = make_pool(tmp_path / "data", per_class=6)
    outside = tmp_path / "outside"
    make_pool(outside, per_class=2, classes=("extra",))
    try:
        (data / "glioma" / "more").symlink_to(outside / "extra", target_is_directory=True)
        (data / "glioma" / "gone.png").symlink_to(tmp_path / "missing.png")
        (data / "glioma" / "linked.png").symlink_to(data / "meningioma" / "img_000.png")
    except (OSError, NotImplementedError):
        pytest.skip("symbolic links not available")
    index = discover(data)
    reasons = {s.path: s.reason for s in index.skipped}
    assert "symbolic link to a folder" in reasons["glioma/more"]
    assert "broken symbolic link" in reasons["glioma/gone.png"]
    paths = set(index.items["path"])
    assert "glioma/linked.png" in paths and not any(p.startswith("glioma/more/") for p in paths)
