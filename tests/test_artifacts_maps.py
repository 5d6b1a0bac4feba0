"""The maps files (with their 1.3 shares) and test_heads.npz of bt_core.artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bt_core import artifacts
from bt_core.artifacts import (
    ArtifactError,
    RunWriter,
    add_map_shares,
    load_map_shares,
    load_maps,
    load_test_heads,
    write_maps,
    write_test_heads,
)

# --------------------------------------------------------------------------- maps files


def _maps_file(run_dir: Path) -> Path:
    maps = np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    return write_maps(run_dir, "simple_cnn", "gradcam", maps, ["a.png", "b.png"], np.array([0, 3]), layer="last_conv")


def test_write_then_load_maps_round_trip(tmp_path):
    path = _maps_file(tmp_path)
    assert path == tmp_path / "models" / "simple_cnn" / "maps" / "gradcam.npz"
    maps, ids, class_index = load_maps(tmp_path, "simple_cnn", "gradcam")
    assert maps.dtype == np.float16 and maps.shape == (2, 4, 4)
    assert list(ids) == ["a.png", "b.png"] and list(class_index) == [0, 3]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    mapped, mapped_ids, mapped_classes = load_maps(tmp_path, "simple_cnn", "gradcam", mmap=True)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, maps)
    assert list(mapped_ids) == list(ids) and list(mapped_classes) == list(class_index)


def _savez(path: Path, **arrays) -> None:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


TWO_IDS = np.array(["a.png", "b.png"])
DAMAGES = {
    "garbage": lambda path: path.write_bytes(b"not a zip archive"),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "missing-key": lambda path: _savez(path, maps=np.zeros((2, 4, 4), np.float16), ids=TWO_IDS),
    "out-of-range": lambda path: _savez(
        path, maps=np.full((2, 4, 4), 2.0, np.float16), ids=TWO_IDS, class_index=np.array([0, 1])
    ),
    "length-mismatch": lambda path: _savez(
        path, maps=np.zeros((3, 4, 4), np.float16), ids=TWO_IDS, class_index=np.array([0, 1])
    ),
}


# A memory map is not scanned for its values (that would read it all), so out-of-range
# values are refused only when the file is read whole.
BROKEN_CASES = [(damage, False) for damage in DAMAGES] + [(d, True) for d in DAMAGES if d != "out-of-range"]


@pytest.mark.parametrize(
    ("damage", "mmap"), BROKEN_CASES, ids=[f"{d}-{'mmap' if m else 'read'}" for d, m in BROKEN_CASES]
)
def test_a_broken_maps_file_raises_an_artifact_error_naming_it(tmp_path, damage, mmap):
    path = _maps_file(tmp_path)
    DAMAGES[damage](path)
    with pytest.raises(ArtifactError, match="gradcam.npz"):
        load_maps(tmp_path, "simple_cnn", "gradcam", mmap=mmap)


def test_missing_maps_file_and_bad_maps_to_write(tmp_path):
    with pytest.raises(ArtifactError, match="gradcam.npz is missing"):
        load_maps(tmp_path, "simple_cnn", "gradcam")
    assert artifacts.list_maps(tmp_path, "simple_cnn") == []
    with pytest.raises(ValueError, match="2 maps, 1 ids"):
        write_maps(tmp_path, "simple_cnn", "gradcam", np.zeros((2, 4, 4)), ["a"], np.array([0, 1]))


SHARES = {"outside_head": np.array([0.25, np.nan]), "border": np.array([0.5, 0.0]), "in_box": np.array([np.nan, 1.0])}


def test_shares_round_trip_inside_the_maps_file_and_the_maps_still_memory_map(tmp_path):
    maps = np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    write_maps(tmp_path, "m", "gradcam", maps, ["a.png", "b.png"], np.array([0, 3]), layer="conv", shares=SHARES)
    shares = load_map_shares(tmp_path, "m", "gradcam")
    assert list(shares.index) == ["a.png", "b.png"] and list(shares.columns) == list(artifacts.MAP_SHARES)
    for name, values in SHARES.items():
        np.testing.assert_array_equal(shares[name].to_numpy(), values)  # NaN where undefined
    stored, ids, classes = load_maps(tmp_path, "m", "gradcam", mmap=True)  # still (maps, ids, class_index)
    assert isinstance(stored, np.memmap) and list(ids) == ["a.png", "b.png"] and list(classes) == [0, 3]


def test_a_maps_file_before_1_3_has_no_shares_until_they_are_added(tmp_path):
    path = _maps_file(tmp_path)
    before = load_maps(tmp_path, "simple_cnn", "gradcam")
    assert load_map_shares(tmp_path, "simple_cnn", "gradcam") is None
    assert add_map_shares(tmp_path, "simple_cnn", "gradcam", SHARES) == path
    after = load_maps(tmp_path, "simple_cnn", "gradcam")
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)  # maps, ids and classes unchanged
    with np.load(path) as data:
        assert str(data["layer"]) == "last_conv"
    np.testing.assert_array_equal(load_map_shares(tmp_path, "simple_cnn", "gradcam")["border"], SHARES["border"])


def test_shares_must_name_every_region_once_per_map(tmp_path):
    maps = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match="shares must be exactly"):
        write_maps(tmp_path, "m", "gradcam", maps, ["a", "b"], np.array([0, 1]), shares={"border": np.zeros(2)})
    with pytest.raises(ValueError, match=r"share outside_head must be \(2,\)"):
        write_maps(tmp_path, "m", "gradcam", maps, ["a", "b"], np.array([0, 1]),
                   shares={**SHARES, "outside_head": np.zeros(3)})
    with pytest.raises(ArtifactError, match="gradcam.npz is missing"):
        load_map_shares(tmp_path, "m", "gradcam")


# --------------------------------------------------------------------------- test_heads.npz


def _run_with_test_images(run_dir: Path, ids: list[str]) -> None:
    writer = RunWriter(run_dir, {"run_id": run_dir.name, "class_names": ["a", "b"], "image_size": 5})
    writer.write_split(pd.DataFrame({"path": ids, "split": "test", "label": "a"}))
    writer.write_test_images(np.zeros((len(ids), 5, 5, 3), np.uint8), ids)


def test_head_masks_round_trip_bit_packed_and_through_run(tmp_path):
    rng = np.random.default_rng(0)
    heads = rng.random((3, 5, 5)) > 0.5  # 25 bits a mask: not a multiple of 8
    ids = ["x.png", "y.png", "z.png"]
    _run_with_test_images(tmp_path, ids)
    assert artifacts.load_run(tmp_path).test_heads() is None  # before the analysis pass
    path = write_test_heads(tmp_path, heads, ids)
    assert path == tmp_path / "test_heads.npz"
    with np.load(path) as data:
        assert data["heads"].dtype == np.uint8 and data["heads"].shape == (3, 4)
    loaded, loaded_ids = load_test_heads(tmp_path)
    np.testing.assert_array_equal(loaded, heads)
    assert loaded.dtype == bool and loaded_ids.tolist() == ids
    np.testing.assert_array_equal(artifacts.load_run(tmp_path).test_heads(), heads)


def test_head_masks_of_other_images_or_a_broken_file_are_refused(tmp_path):
    _run_with_test_images(tmp_path, ["x.png", "y.png"])
    write_test_heads(tmp_path, np.ones((2, 5, 5), bool), ["y.png", "x.png"])
    with pytest.raises(ArtifactError, match="not of the test images"):
        artifacts.load_run(tmp_path).test_heads()
    (tmp_path / "test_heads.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="test_heads.npz cannot be read"):
        load_test_heads(tmp_path)
    with pytest.raises(ValueError, match="bool"):
        write_test_heads(tmp_path, np.ones((2, 5, 5), np.uint8), ["x.png", "y.png"])
