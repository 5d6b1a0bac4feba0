"""The data profile: its pure parts against known answers, the augmentation preview, the
profile built from a tiny folder, its files' round trip, and the training hook."""

import json

import cv2
import numpy as np
import pytest

from bt_core import artifacts as art
from bt_core import cli
from bt_core.artifacts.layout import data_profile_path, data_thumbnails_path
from bt_core.data import profile
from bt_core.data.dataset import load_dataset
from bt_core.regions import border_band, usable_head_masks
from bt_core.runs.data_profile import GRID_PER_CLASS, duplicate_groups, profile_run
from bt_core.shortcuts import audit
from bt_core.training.augment_preview import augmentation_preview
from fabricate import (
    PROFILE_COLOUR_SIDE,
    PROFILE_COPY,
    PROFILE_PER_CLASS,
    PROFILE_SIDE,
    fabricate_data_profile,
    fabricate_profile_folder,
)
from imagefolders import CLASSES, head_image


# --------------------------------------------------------------------------- pure parts


def test_headers_give_size_and_channels_before_any_resize(tmp_path):
    cv2.imwrite(str(tmp_path / "grey.png"), np.zeros((30, 50), np.uint8))
    cv2.imwrite(str(tmp_path / "colour.jpg"), np.full((64, 48, 3), 120, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    headers = profile.read_headers(tmp_path, ["grey.png", "colour.jpg", "broken.png"])
    assert headers.loc[0, ["width", "height", "channels", "mode", "format"]].tolist() == [50, 30, 1, "L", "PNG"]
    assert headers.loc[1, ["width", "height", "channels", "mode", "format"]].tolist() == [48, 64, 3, "RGB", "JPEG"]
    assert headers.loc[:1, "error"].isna().all() and "cannot identify image" in headers.loc[2, "error"]

    headers["label"] = ["a", "a", "b"]
    table = profile.size_table(headers)
    assert table.to_dict(orient="records") == [
        {"width": 48, "height": 64, "channels": 3, "label": "a", "count": 1},
        {"width": 50, "height": 30, "channels": 1, "label": "a", "count": 1},
    ]  # the unreadable file left out; ties by width
    assert profile.channel_counts(headers) == {"a": {"L": 1, "RGB": 1}}


def test_histograms_sum_to_the_pixels_of_each_region_and_class():
    rng = np.random.default_rng(0)
    heads = np.stack([head_image(32, text=False)] * 3)
    noise = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    images, labels = np.concatenate([heads, noise]), np.array([0, 0, 0, 1, 1])
    histograms = profile.intensity_histograms(images, labels, ["head", "noise"], bins=64)
    assert list(histograms) == list(profile.HISTOGRAM_REGIONS)
    band = border_band((32, 32), profile.BORDER_WIDTH).sum()
    masks, _ = usable_head_masks(images)
    for index, name in enumerate(["head", "noise"]):
        n = int((labels == index).sum())
        assert sum(histograms["image"][name]) == n * 32 * 32
        assert sum(histograms["border"][name]) == n * band
        assert sum(histograms["background"][name]) == int((~masks[labels == index]).sum())
        assert len(histograms["image"][name]) == 64
    # A known answer: the synthetic head is 0 outside and 150 inside (bin 150 // 4 = 37).
    head_counts = np.array(histograms["image"]["head"])
    assert set(np.flatnonzero(head_counts)) == {0, 37}
    assert head_counts[37] == 3 * int((heads[0, ..., 0] == 150).sum())
    np.testing.assert_array_equal(profile.gray_histogram(noise[..., 0], bins=64),
                                  np.histogram(noise[..., 0], bins=64, range=(0, 256))[0])
    with pytest.raises(ValueError, match="bins must divide 256"):
        profile.gray_histogram(noise[..., 0], bins=60)


def test_the_seeded_sample_is_reproducible_and_takes_a_small_class_whole():
    labels = np.array([0] * 20 + [1] * 3 + [2] * 9)
    first = profile.sample_per_class(labels, 3, per_class=5, seed=7)
    np.testing.assert_array_equal(first, profile.sample_per_class(labels, 3, per_class=5, seed=7))
    assert [int((labels[first] == c).sum()) for c in range(3)] == [5, 3, 5]
    assert not np.array_equal(first, profile.sample_per_class(labels, 3, per_class=5, seed=8))
    assert list(labels[first]) == sorted(labels[first])  # by class


def test_thumbnails_keep_the_colours_and_refuse_other_arrays():
    images = np.zeros((2, 64, 64, 3), np.uint8)
    images[1, ..., 0] = 200
    small = profile.thumbnails(images, 16)
    assert small.shape == (2, 16, 16, 3) and small.dtype == np.uint8
    assert (small[1, ..., 0] == 200).all() and not small[0].any()
    with pytest.raises(ValueError, match=r"uint8 \(N, H, W, 3\)"):
        profile.thumbnails(images[..., 0], 16)


@pytest.mark.parametrize("mode", ["device", "numpy"])
def test_augmentation_preview_differs_per_draw_but_keeps_the_shape(mode):
    image = head_image(48)
    frames = augmentation_preview(image, mode, 1.0, draws=4, seed=3)
    assert frames.shape == (4, 48, 48, 3) and frames.dtype == np.uint8
    assert len({frame.tobytes() for frame in frames}) == 4  # every draw a new transform
    np.testing.assert_array_equal(frames, augmentation_preview(image, mode, 1.0, draws=4, seed=3))


def test_augmentation_preview_without_augmentation_repeats_the_image():
    image = head_image(32)
    np.testing.assert_array_equal(augmentation_preview(image, "none", 1.0, 3, 0), np.stack([image] * 3))
    np.testing.assert_array_equal(augmentation_preview(image, "device", 0.0, 2, 0), np.stack([image] * 2))
    with pytest.raises(ValueError, match="unknown augmentation 'gpu'"):
        augmentation_preview(image, "gpu", 1.0, 2, 0)


def test_duplicate_groups_put_label_conflicts_and_leaks_first():
    hashes = audit.hash_images([np.full((32, 32), v, np.uint8) for v in (10, 10, 10, 200, 200)])
    hashes_ids = ["a", "b", "c", "d", "e"]
    report = audit.find_duplicates(hashes, ["train", "train", "train", "train", "test"], ["x", "x", "x", "y", "z"], hashes_ids)
    split_of = dict(zip(hashes_ids, ["train", "train", "train", "train", "test"]))
    label_of = dict(zip(hashes_ids, ["x", "x", "x", "y", "z"]))
    groups = duplicate_groups(report.pairs, split_of, label_of)
    assert [sorted(g["members"]) for g in groups] == [["d", "e"], ["a", "b", "c"]]
    assert groups[0]["conflict"] and groups[0]["splits"] == {"train": 1, "test": 1}
    assert groups[1]["size"] == 3 and groups[1]["kind"] == "exact" and not groups[1]["conflict"]


# --------------------------------------------------------------------------- built from a folder


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    base = tmp_path_factory.mktemp("profile")
    record = fabricate_data_profile(base / "run", base / "data", seed=0)
    return base, record, art.load_data_profile(base / "run")


def test_the_profile_counts_match_the_split_and_sizes_the_files(profiled):
    base, record, stored = profiled
    dataset = load_dataset(base / "data", image_size=PROFILE_SIDE, seed=0)
    assert record["counts"] == dataset.counts() == stored.record["counts"]
    sizes = {(row["width"], row["label"]): row["count"] for row in record["sizes"]["table"]}
    assert sizes[(PROFILE_COLOUR_SIDE, "pituitary")] == 1
    assert sizes[(PROFILE_SIDE, "meningioma")] == PROFILE_PER_CLASS + 1  # the planted copy
    assert record["sizes"]["modes"]["pituitary"] == {"L": PROFILE_PER_CLASS, "RGB": 1}
    images = record["histograms"]["images"]
    assert sum(record["histograms"]["counts"]["image"]["glioma"]) == images["glioma"] * PROFILE_SIDE**2


def test_the_grid_is_seeded_per_class_and_its_thumbnails_round_trip(profiled, tmp_path):
    base, record, stored = profiled
    grid_images, grid_ids = stored.images("grid")
    assert grid_ids.tolist() == record["grid"]["ids"] and grid_images.shape[1:] == (PROFILE_SIDE, PROFILE_SIDE, 3)
    assert [record["grid"]["labels"].count(c) for c in CLASSES] == [GRID_PER_CLASS] * 4
    assert all(i.startswith(label + "/") or i == PROFILE_COPY[1]
               for i, label in zip(grid_ids, record["grid"]["labels"]))
    again = fabricate_data_profile(tmp_path / "run", tmp_path / "data", seed=0)
    assert again["grid"] == record["grid"]
    np.testing.assert_array_equal(art.load_data_profile(tmp_path / "run").images("grid")[0], grid_images)
    frames, ids = stored.images("augmentation")
    assert frames.shape == (len(record["augmentation"]["previews"]), 6, PROFILE_SIDE, PROFILE_SIDE, 3)
    assert ids.tolist() == [p["id"] for p in record["augmentation"]["previews"]]


def test_the_planted_copy_is_a_duplicate_group_with_two_labels(profiled):
    _base, record, stored = profiled
    duplicates = record["duplicates"]
    (group,) = [g for g in duplicates["shown"] if set(PROFILE_COPY) <= set(g["members"])]
    assert group["kind"] == "exact" and group["conflict"] and group["labels"] == ["glioma", "meningioma"]
    assert {(m["id"], m["label"]) for m in group["shown"]} == {(PROFILE_COPY[0], "glioma"), (PROFILE_COPY[1], "meningioma")}
    assert duplicates["shown"][0] == group and duplicates["conflict_groups"] >= 1
    images, ids = stored.images("duplicates")
    first, second = (images[ids.tolist().index(member)] for member in PROFILE_COPY)
    np.testing.assert_array_equal(first, second)


def test_files_are_optional_checked_and_named_in_errors(tmp_path, profiled):
    assert art.load_data_profile(tmp_path) is None  # a run before profiles
    with pytest.raises(ValueError, match=r"a data profile needs \['counts'\]"):
        art.write_data_profile(tmp_path, {"class_names": ["a"]}, {})
    with pytest.raises(ValueError, match="grid_ids has"):
        art.write_data_profile(tmp_path, {"class_names": ["a"], "counts": {}},
                               {"grid_images": np.zeros((2, 4, 4, 3), np.uint8), "grid_ids": np.array(["x"])})
    art.write_data_profile(tmp_path, {"class_names": ["a"], "counts": {"train": {"a": 1}}}, {})
    assert art.load_data_profile(tmp_path).images("grid")[0].shape == (0, 1, 1, 3)
    data_thumbnails_path(tmp_path).write_bytes(b"garbage")
    with pytest.raises(art.ArtifactError, match="thumbnails.npz cannot be read"):
        art.load_data_profile(tmp_path)
    data_profile_path(tmp_path).write_text("{oops")
    with pytest.raises(art.ArtifactError, match="profile.json cannot be read: JSONDecodeError"):
        art.load_data_profile(tmp_path)
    data_profile_path(tmp_path).write_text(json.dumps({"profile_version": 9, "class_names": [], "counts": {}}))
    with pytest.raises(art.ArtifactError, match="profile version 9; this code reads 1"):
        art.load_data_profile(tmp_path)


# --------------------------------------------------------------------------- training and the CLI function


def test_training_writes_the_profile_and_profile_run_rewrites_it(tmp_path):
    data = fabricate_profile_folder(tmp_path / "data")
    out = tmp_path / "artifacts"
    command = ["--data", str(data), "--models", "simple_cnn", "--epochs", "1", "--img-size", "32",
               "--out", str(out), "--run-id", "profiled", "--batch-size", "16", "--no-explain"]
    assert cli.main(command) == 0
    run_dir = out / "profiled"
    trained = art.load_data_profile(run_dir)
    assert trained.record["counts"] == art.load_manifest(run_dir).dataset.counts
    assert trained.record["augmentation"]["mode"] == "device"
    assert trained.record["augmentation"]["previews"][0]["models"] == ["simple_cnn"]
    written = data_profile_path(run_dir).stat().st_mtime_ns
    assert cli.main([*command, "--resume"]) == 0  # nothing left to train: the profile is kept
    assert data_profile_path(run_dir).stat().st_mtime_ns == written

    data_profile_path(run_dir).unlink()
    assert profile_run(run_dir) == data_profile_path(run_dir)
    again = art.load_data_profile(run_dir)
    assert again.record["grid"] == trained.record["grid"] and again.record["duplicates"] == trained.record["duplicates"]
    np.testing.assert_array_equal(again.images("augmentation")[0], trained.images("augmentation")[0])

    cv2.imwrite(str(data / "glioma" / "img_000.png"), np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="is not the dataset profiled was trained on"):
        profile_run(run_dir)
    with pytest.raises(ValueError, match="is not on this machine; give it with --data"):
        profile_run(run_dir, data=tmp_path / "elsewhere")
