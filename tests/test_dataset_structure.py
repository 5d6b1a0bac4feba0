"""Dataset folders of the wrong shape (issue 11, structure): each is refused with one sentence
naming the folder, class or line, or skipped and listed; built on the fly in tmp_path."""

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core import cli
from bt_core.artifacts import DatasetRecord
from bt_core.data.boxes import read_boxes
from bt_core.data.dataset import load_dataset, load_test_folder
from bt_core.data.layouts import LAYOUT_POOL, discover
from bt_core.data.splits import make_split
from imagefolders import make_kaggle, make_pool, write_images

THREE = ("glioma", "meningioma", "notumor")
BOX_HEADER = "image,label,x_min,y_min,x_max,y_max\n"


def labels_of(root: Path) -> dict[str, str]:
    items = discover(root).items
    return dict(zip(items["path"], items["label"]))


def spoil(folder: Path) -> None:
    """Overwrite every image of ``folder`` with bytes no decoder reads."""
    for path in folder.iterdir():
        path.write_bytes(b"this is not an image")


def distinct_case_folders(root: Path) -> bool:
    """Whether this file system keeps 'Glioma' and 'glioma' apart (not so on macOS / Windows)."""
    probe = root / "case_probe"
    (probe / "A").mkdir(parents=True)
    (probe / "a").mkdir(exist_ok=True)
    distinct = len(list(probe.iterdir())) == 2
    for child in probe.iterdir():
        child.rmdir()
    probe.rmdir()
    return distinct


# --- class folders without images ---------------------------------------------------------


@pytest.mark.parametrize(
    "fill, described",
    [
        (lambda folder: None, r"pituitary \(0 images\)"),
        (
            lambda folder: [(folder / name).write_text("x") for name in ("c.csv", "a.txt", "b.doc", "d.md")],
            r"pituitary \(0 images; 4 files skipped: a\.txt, b\.doc, c\.csv, \.\.\.\)",
        ),
        (
            lambda folder: ((folder / ".DS_Store").write_text("x"), (folder / ".ipynb_checkpoints").mkdir()),
            r"pituitary \(0 images; 2 hidden entries ignored\)",
        ),
    ],
    ids=["empty", "only-non-images", "only-hidden"],
)
def test_a_pool_class_folder_without_images_is_refused_naming_it_and_what_it_holds(tmp_path, fill, described):
    make_pool(tmp_path, per_class=4, classes=THREE)
    (tmp_path / "pituitary").mkdir()
    fill(tmp_path / "pituitary")
    with pytest.raises(ValueError, match=rf"class folder 'pituitary' holds no image: {described}; add images"):
        discover(tmp_path)


def test_a_kaggle_class_empty_in_training_is_refused_with_the_counts_of_both_folders(tmp_path):
    make_kaggle(tmp_path, train_per_class=4, test_per_class=2, classes=THREE)
    for path in (tmp_path / "Training" / "meningioma").iterdir():
        path.unlink()
    (tmp_path / "Training" / "meningioma" / "readme.txt").write_text("x")
    with pytest.raises(
        ValueError,
        match=r"class 'meningioma' holds no image in Training: Training/meningioma \(0 images; 1 files skipped: "
        r"readme\.txt\), Testing/meningioma \(2 images\); every class needs images in both folders",
    ):
        discover(tmp_path)


def test_a_kaggle_testing_folder_without_a_class_names_the_missing_class(tmp_path):
    make_kaggle(tmp_path, train_per_class=4, test_per_class=2, classes=THREE)
    for path in (tmp_path / "Testing" / "notumor").iterdir():
        path.unlink()
    (tmp_path / "Testing" / "notumor").rmdir()
    with pytest.raises(ValueError, match=r"class folders differ between Training .*: \['notumor'\] only in Training$"):
        discover(tmp_path)


# --- class names that differ only in case ----------------------------------------------


def test_pool_class_folders_differing_only_in_case_are_refused_naming_both(tmp_path):
    if not distinct_case_folders(tmp_path):
        pytest.skip("this file system does not tell Glioma from glioma")
    make_pool(tmp_path, per_class=4, classes=("Glioma", "glioma", "notumor"))
    with pytest.raises(ValueError, match=r"class folders 'Glioma' and 'glioma' differ only in case"):
        discover(tmp_path)


def test_kaggle_class_folders_differing_only_in_case_are_refused_within_and_across_folders(tmp_path):
    if not distinct_case_folders(tmp_path):
        pytest.skip("this file system does not tell Glioma from glioma")
    within = make_kaggle(tmp_path / "within", train_per_class=4, test_per_class=2, classes=THREE)
    write_images(within / "Training" / "Glioma", 0, 4, 48, seed=9)
    with pytest.raises(ValueError, match=r"class folders 'Training/Glioma' and 'Training/glioma' differ only in case"):
        discover(within)
    across = make_kaggle(tmp_path / "across", train_per_class=4, test_per_class=2, classes=THREE)
    (across / "Testing" / "glioma").rename(across / "Testing" / "Glioma")
    with pytest.raises(ValueError, match=r"class folders 'Training/glioma' and 'Testing/Glioma' differ only in case"):
        discover(across)


# --- folders that are not a dataset ----------------------------------------------------


def test_a_file_given_as_the_dataset_folder_is_refused(tmp_path):
    (tmp_path / "data.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match=r"data\.zip is a file, not a dataset folder"):
        discover(tmp_path / "data.zip")


def test_training_without_testing_is_refused_not_taken_as_a_one_class_pool(tmp_path):
    make_pool(tmp_path / "Training", per_class=4, classes=THREE)
    with pytest.raises(ValueError, match=r"has a Training folder but no Testing folder; a kaggle layout needs both"):
        discover(tmp_path, min_classes=1)  # before: one class named 'Training'
    assert discover(tmp_path / "Training").layout == LAYOUT_POOL  # the hint the message gives works


def test_two_spellings_of_the_training_folder_are_refused(tmp_path):
    if not distinct_case_folders(tmp_path):
        pytest.skip("this file system does not tell Training from training")
    make_kaggle(tmp_path, train_per_class=4, test_per_class=2, classes=THREE)
    make_pool(tmp_path / "training", per_class=4, classes=THREE)
    with pytest.raises(ValueError, match=r"holds both 'Training' and 'training'; keep one of them"):
        discover(tmp_path)


def test_images_beside_the_class_folders_are_listed_as_skipped(tmp_path):
    make_pool(tmp_path, per_class=4, classes=THREE)
    cv2.imwrite(str(tmp_path / "stray.png"), np.zeros((32, 32), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image: not listed")
    index = discover(tmp_path)
    assert {s.path: s.reason for s in index.skipped} == {
        "stray.png": "image outside a class folder: not used (move it into its class folder)"
    }
    assert len(index.items) == 12
    loose = tmp_path / "loose"
    loose.mkdir()
    for i in range(3):
        cv2.imwrite(str(loose / f"{i}.png"), np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"no images found in .*loose \(3 images lie outside any class folder\)"):
        discover(loose)


# --- classes whose images do not decode ------------------------------------------------


def test_a_class_with_no_readable_training_image_is_refused_with_counts_per_split(tmp_path):
    make_pool(tmp_path, per_class=10, classes=THREE)
    spoil(tmp_path / "meningioma")
    with pytest.raises(ValueError) as raised:
        load_dataset(tmp_path, image_size=16, seed=0)
    message = str(raised.value)
    found = re.search(
        r"no readable image of class 'meningioma' \(train (\d+) found, \1 unreadable; val (\d+) found, \2 unreadable; "
        r"test (\d+) found, \3 unreadable\) in the train split; every class needs one to be trained and scored$",
        message,
    )
    assert found, message
    assert sum(int(n) for n in found.groups()) == 10 and "\n" not in message


def test_a_class_with_no_readable_test_image_is_refused_but_an_unreadable_val_class_is_not(tmp_path):
    make_kaggle(tmp_path, train_per_class=6, test_per_class=3, classes=THREE)
    spoil(tmp_path / "Testing" / "notumor")
    with pytest.raises(ValueError, match=r"class 'notumor' \(train \d+ found, 0 unreadable; val \d+ found, 0 "
                       r"unreadable; test 3 found, 3 unreadable\) in the test split"):
        load_dataset(tmp_path, image_size=16, seed=0)
    for path in (tmp_path / "Testing" / "notumor").iterdir():
        cv2.imwrite(str(path), np.full((32, 32), 60, np.uint8))
    val_paths = make_split(discover(tmp_path), seed=0).query("split == 'val' and label == 'glioma'")["path"]
    for relative in val_paths:
        (tmp_path / relative).write_bytes(b"broken")
    data = load_dataset(tmp_path, image_size=16, seed=0)  # val only steers early stopping: listed, not fatal
    assert data.counts()["val"]["glioma"] == 0 and set(val_paths) <= {s.path for s in data.skipped}


def test_an_evaluation_checks_only_its_test_split_and_may_hold_one_class(tmp_path):
    make_pool(tmp_path / "two", per_class=3, classes=("glioma", "notumor"))
    spoil(tmp_path / "two" / "notumor")
    with pytest.raises(ValueError, match=r"class 'notumor' \(test 3 found, 3 unreadable\) in the test split"):
        load_test_folder(tmp_path / "two", image_size=16)
    make_pool(tmp_path / "one", per_class=3, classes=("notumor",))
    data = load_test_folder(tmp_path / "one", image_size=16, min_classes=1)
    assert data.class_names == ["notumor"] and data.counts()["test"] == {"notumor": 3}


def test_train_all_refuses_a_class_without_readable_images_before_training(tmp_path, capsys, monkeypatch):
    data = make_pool(tmp_path / "data", per_class=8, size=32, classes=THREE)
    spoil(data / "glioma")

    def must_not_train(*args, **kwargs):
        raise AssertionError("a model trained on a dataset that should have been refused")

    monkeypatch.setattr("bt_core.runs.zoo._train_models", must_not_train)
    out = tmp_path / "out"
    code = cli.main(["--data", str(data), "--models", "simple_cnn", "--epochs", "1", "--img-size", "32",
                     "--out", str(out), "--no-explain"])
    err = capsys.readouterr().err
    assert code == 2
    assert re.search(r"error: .*no readable image of class 'glioma' \(train \d+ found, \d+ unreadable;.* in the "
                     r"train split", err), err
    assert not out.exists() or not any(out.iterdir())  # no run folder was started


# --- boxes.csv --------------------------------------------------------------------------


def test_boxes_lines_with_the_wrong_number_of_fields_or_bad_quoting_are_skipped_and_listed(tmp_path):
    make_pool(tmp_path, per_class=4, classes=THREE)
    (tmp_path / "boxes.csv").write_text(
        BOX_HEADER
        + "glioma/img_000.png,glioma,0.1,0.2,0.3,0.4\n"
        + "glioma/img_001.png,glioma,0.1,0.2,0.3,0.4,extra\n"
        + "\n"
        + "glioma/img_002.png,glioma,0.1,0.2\n"
        + '"glioma/img_003.png"x,glioma,0.1,0.2,0.3,0.4\n'
        + "meningioma/img_000.png,meningioma,0.5,0.5,0.7,0.8\n"
    )
    boxes, rejected = read_boxes(tmp_path, labels_of(tmp_path))
    assert set(boxes.index) == {"glioma/img_000.png", "meningioma/img_000.png"}
    assert [(r.path, r.reason) for r in rejected] == [
        ("boxes.csv", "boxes.csv line 3: 7 fields, expected 6"),
        ("boxes.csv", "boxes.csv line 5: 4 fields, expected 6"),
        ("boxes.csv", "boxes.csv line 6: not valid CSV (',' expected after '\"')"),
    ]


def test_boxes_of_unknown_images_wrong_labels_and_no_tumor_images_are_skipped_with_reasons(tmp_path):
    make_pool(tmp_path, per_class=4, classes=THREE)
    (tmp_path / "boxes.csv").write_text(
        BOX_HEADER
        + "glioma/img_000.png,glioma,0.1,0.2,0.3,0.4\n"
        + "glioma/missing.png,glioma,0.1,0.2,0.3,0.4\n"
        + "glioma/img_001.png,meningioma,0.1,0.2,0.3,0.4\n"
        + "glioma/img_002.png,Glioma,0.1,0.2,0.3,0.4\n"  # the same class, spelled in another case
        + "glioma/img_003.png,,0.1,0.2,0.3,0.4\n"  # no label given: nothing to disagree with
        + "notumor/img_000.png,notumor,0.1,0.2,0.3,0.4\n"
        + "meningioma/img_000.png,meningioma,x,0.2,0.3,0.4\n"
        + "meningioma/img_000.png,meningioma,0.1,0.2,0.3,0.4\n"  # a good row after a bad one counts
        + "meningioma/img_000.png,meningioma,0.2,0.2,0.3,0.4\n"
    )
    boxes, rejected = read_boxes(tmp_path, labels_of(tmp_path))
    assert sorted(boxes.index) == ["glioma/img_000.png", "glioma/img_002.png", "glioma/img_003.png",
                                   "meningioma/img_000.png"]
    assert boxes.loc["meningioma/img_000.png"].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert [(r.path, r.reason) for r in rejected] == [
        ("glioma/missing.png", "boxes.csv: no such image in the dataset"),
        ("glioma/img_001.png", "boxes.csv: label 'meningioma' but the image is in class folder 'glioma'"),
        ("notumor/img_000.png", "boxes.csv: box for an image of the no-tumor class 'notumor'"),
        ("meningioma/img_000.png", "boxes.csv: non-numeric coordinate"),
        ("meningioma/img_000.png", "boxes.csv: second box for the same image ignored"),
    ]
    # Without the dataset's images (the analysis pass of an old run), rows are checked alone.
    alone, _ = read_boxes(tmp_path)
    assert {"glioma/missing.png", "notumor/img_000.png"} <= set(alone.index)


def test_rejected_box_rows_reach_the_manifest_record_of_the_dataset(tmp_path):
    make_pool(tmp_path, per_class=6, classes=THREE)
    (tmp_path / "boxes.csv").write_text(
        BOX_HEADER
        + "glioma/img_000.png,glioma,0.1,0.2,0.3,0.4\n"
        + "glioma/gone.png,glioma,0.1,0.2,0.3,0.4\n"
        + "glioma/img_001.png,glioma,0.1,0.2,0.3\n"
    )
    data = load_dataset(tmp_path, image_size=16, seed=0)
    record = DatasetRecord.from_loaded(data)  # what the run's manifest stores as dataset.skipped
    assert {"path": "glioma/gone.png", "reason": "boxes.csv: no such image in the dataset"} in record.skipped
    assert {"path": "boxes.csv", "reason": "boxes.csv line 4: 5 fields, expected 6"} in record.skipped
    assert record.to_json()["skipped"] == [dict(s) for s in record.skipped]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"boxes\.csv is empty; expected the header image,label,x_min"),
        (b"\n  \n", r"boxes\.csv is empty"),
        ("image,label,x_min,y_min,x_max,y_max\nglioma/caf\u00e9.png,glioma,0.1,0.2,0.3,0.4\n".encode("latin-1"),
         r"boxes\.csv is not UTF-8 text \(byte 46: invalid continuation byte\); save it as UTF-8 CSV"),
        (b"image,label,x_min,y_min,x_max\nglioma/img_000.png,glioma,0.1,0.2,0.3\n",
         r"boxes\.csv lacks columns \['y_max'\]"),
    ],
    ids=["zero-bytes", "blank", "latin-1", "missing-column"],
)
def test_a_boxes_file_that_is_no_table_of_boxes_is_refused_naming_the_file(tmp_path, content, message):
    make_pool(tmp_path, per_class=8, classes=THREE)
    (tmp_path / "boxes.csv").write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path)) + "/" + message):
        load_dataset(tmp_path, image_size=16, seed=0)


def test_a_boxes_file_with_a_byte_order_mark_or_only_a_header_is_read(tmp_path):
    make_pool(tmp_path, per_class=4, classes=THREE)
    (tmp_path / "boxes.csv").write_bytes(("\ufeff" + BOX_HEADER + "glioma/img_000.png,glioma, 0.1,0.2,0.3,0.4\n")
                                         .encode("utf-8"))
    boxes, rejected = read_boxes(tmp_path, labels_of(tmp_path))
    assert boxes.loc["glioma/img_000.png"].tolist() == [0.1, 0.2, 0.3, 0.4] and rejected == []
    (tmp_path / "boxes.csv").write_text(BOX_HEADER)
    boxes, rejected = read_boxes(tmp_path, labels_of(tmp_path))
    assert boxes.empty and rejected == []


# --- splits -----------------------------------------------------------------------------


@pytest.mark.parametrize("cap", [0, -3])
def test_max_per_class_below_one_is_refused_not_read_as_no_cap(tmp_path, cap):
    make_pool(tmp_path, per_class=8, classes=THREE)
    with pytest.raises(ValueError, match=rf"max-per-class must be at least 1 image, got {cap}"):
        load_dataset(tmp_path, image_size=16, seed=0, max_per_class=cap)


def test_a_dataset_too_small_to_stratify_names_the_split_and_the_counts(tmp_path):
    make_pool(tmp_path, per_class=3, classes=("glioma", "meningioma", "notumor", "pituitary"))
    with pytest.raises(ValueError, match=r"cannot split off the test split \(15% of 12 images\) with each of the 4 "
                       r"classes on both sides \(.*\); add images or change the fraction"):
        make_split(discover(tmp_path), seed=0)
    kaggle = make_kaggle(tmp_path / "kaggle", train_per_class=4, test_per_class=2, classes=THREE)
    with pytest.raises(ValueError, match=r"cannot split off the val split of Training: classes with fewer than 2 "
                       r"images cannot be split"):
        make_split(discover(kaggle), seed=0, max_per_class=1)


def test_a_stored_split_is_checked_against_the_folder_it_is_applied_to(tmp_path):
    make_pool(tmp_path, per_class=8, classes=THREE)
    split = load_dataset(tmp_path, image_size=16, seed=0).split
    (tmp_path / split["path"].iloc[0]).unlink()
    with pytest.raises(ValueError, match=rf"1 image\(s\) of the stored split are no longer in .*, e\.g\. "
                       rf"{re.escape(split['path'].iloc[0])}"):
        load_dataset(tmp_path, image_size=16, split=split)
    rest = split.iloc[1:]
    twice = pd.concat([rest, rest.iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match=rf"stored split lists 1 image\(s\) more than once, e\.g\. "
                       rf"{re.escape(rest['path'].iloc[0])}"):
        load_dataset(tmp_path, image_size=16, split=twice)
    write_images(tmp_path / "pituitary", 3, 4, 48, seed=5)
    with pytest.raises(ValueError, match=r"class folder\(s\) \['pituitary'\] of .* were added since the split"):
        load_dataset(tmp_path, image_size=16, split=rest)
