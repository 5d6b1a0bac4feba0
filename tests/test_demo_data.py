"""The embedded demo dataset: layout, determinism, lesions where they belong, the planted mark."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core.data.boxes import read_boxes
from bt_core.data.demo import (
    DEMO_CLASSES,
    INCOMPLETE_MARKER,
    generate_demo_dataset,
)
from bt_core.data.layouts import discover

PER_CLASS = 60
SIZE = 128
TUMOR_CLASSES = ("glioma", "meningioma", "pituitary")
# The mark sits in the top-left corner; this region holds it and never the head.
MARK_ROWS, MARK_COLS = slice(0, int(0.09 * SIZE)), slice(0, int(0.3 * SIZE))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "demo"
    return generate_demo_dataset(root, per_class=PER_CLASS, image_size=SIZE)


@pytest.fixture(scope="module")
def metadata(demo) -> pd.DataFrame:
    return pd.read_csv(demo / "demo_metadata.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def boxes(demo) -> pd.DataFrame:
    return pd.read_csv(demo / "boxes.csv")


def read_gray(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def head_geometry(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head mask and each pixel's distance to the head's edge in units of the head radius."""
    _, bright = cv2.threshold(image, 80, 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    mask = np.zeros_like(image)
    cv2.drawContours(mask, [max(contours, key=cv2.contourArea)], -1, 255, thickness=-1)
    radius = np.sqrt((mask > 0).sum() / np.pi)
    return mask > 0, cv2.distanceTransform(mask, cv2.DIST_L2, 5) / radius


def box_pixels(row) -> tuple[int, int, int, int]:
    return tuple(int(round(row[c] * SIZE)) for c in ("x_min", "y_min", "x_max", "y_max"))


def box_contrast(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """|mean inside the box - mean of a band around it|, over brain pixels only (skull excluded);
    NaN when the box holds no brain pixel of this head."""
    x0, y0, x1, y1 = box
    _, depth = head_geometry(image)
    brain = depth > 0.25
    inside = np.zeros_like(brain)
    inside[y0:y1, x0:x1] = True
    pad = max(x1 - x0, y1 - y0) // 2
    around = np.zeros_like(brain)
    around[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad] = True
    around &= ~inside
    if not (inside & brain).any() or not (around & brain).any():
        return float("nan")
    return abs(float(image[inside & brain].mean()) - float(image[around & brain].mean()))


def test_classes_are_sorted_like_real_datasets():
    assert DEMO_CLASSES == ("glioma", "meningioma", "notumor", "pituitary")
    assert list(DEMO_CLASSES) == sorted(DEMO_CLASSES)


def test_layout_counts_names_and_pixels(demo):
    folders = sorted(p.name for p in demo.iterdir() if p.is_dir())
    assert folders == list(DEMO_CLASSES)
    for label in DEMO_CLASSES:
        names = sorted(p.name for p in (demo / label).iterdir())
        assert names == [f"{label}_{i:04d}.png" for i in range(1, PER_CLASS + 1)]
        for name in names[:10]:
            image = read_gray(demo / label / name)
            assert image is not None and image.dtype == np.uint8 and image.shape == (SIZE, SIZE)
    files = sorted(p.name for p in demo.iterdir() if p.is_file())
    assert files == ["DEMO.json", "boxes.csv", "demo_metadata.csv"]


def test_the_project_loader_reads_it(demo):
    index = discover(demo)
    assert index.class_names == DEMO_CLASSES
    assert len(index.items) == 4 * PER_CLASS and not index.skipped
    loaded_boxes, rejected = read_boxes(demo)
    assert len(loaded_boxes) == 3 * PER_CLASS and not rejected


def test_image_size_is_honoured(tmp_path):
    root = generate_demo_dataset(tmp_path / "d", per_class=2, image_size=96)
    assert read_gray(root / "pituitary" / "pituitary_0002.png").shape == (96, 96)


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    first = all_files(generate_demo_dataset(tmp_path / "a", per_class=4, seed=3))
    second = all_files(generate_demo_dataset(tmp_path / "b", per_class=4, seed=3))
    other = all_files(generate_demo_dataset(tmp_path / "c", per_class=4, seed=4))
    assert len(first) == 4 * 4 + 3
    assert first == second
    assert first.keys() == other.keys()
    images = [name for name in first if name.endswith(".png")]
    assert all(first[name] != other[name] for name in images)


def test_demo_json_records_what_was_planted(demo):
    params = json.loads((demo / "DEMO.json").read_text())
    assert params["seed"] == 0 and params["per_class"] == PER_CLASS and params["image_size"] == SIZE
    assert params["shortcut_class"] == "meningioma"
    assert params["shortcut_rate"] == 0.9 and params["other_rate"] == 0.05
    assert params["version"]


def test_boxes_csv_has_one_valid_box_per_tumor_image(demo, boxes, metadata):
    assert (demo / "boxes.csv").read_text().splitlines()[0] == "image,label,x_min,y_min,x_max,y_max"
    tumor_images = set(metadata.loc[metadata["label"].isin(TUMOR_CLASSES), "image"])
    assert set(boxes["image"]) == tumor_images and boxes["image"].is_unique
    assert not boxes["image"].str.startswith("notumor/").any()
    assert (boxes["image"].str.split("/").str[0] == boxes["label"]).all()
    coords = boxes[["x_min", "y_min", "x_max", "y_max"]]
    assert ((coords >= 0) & (coords <= 1)).all().all()
    assert (boxes["x_min"] < boxes["x_max"]).all() and (boxes["y_min"] < boxes["y_max"]).all()


def test_metadata_has_one_consistent_row_per_image(metadata, boxes):
    assert list(metadata.columns) == [
        "image", "label", "has_mark", "mark_text", "mark_corner", "lesion_cx", "lesion_cy", "lesion_radius",
    ]
    assert len(metadata) == 4 * PER_CLASS and metadata["image"].is_unique
    marked = metadata["has_mark"] == 1
    assert set(metadata["has_mark"]) <= {0, 1}
    assert (metadata.loc[marked, "mark_text"] != "").all() and (metadata.loc[~marked, "mark_text"] == "").all()
    assert (metadata.loc[marked, "mark_corner"] == "top-left").all()
    assert (metadata.loc[~marked, "mark_corner"] == "").all()
    notumor = metadata["label"] == "notumor"
    assert (metadata.loc[notumor, "lesion_cx"] == "").all()
    lesions = metadata[~notumor].merge(boxes, on="image")
    cx, cy = lesions["lesion_cx"].astype(float), lesions["lesion_cy"].astype(float)
    assert ((lesions["x_min"] <= cx) & (cx <= lesions["x_max"])).all()
    assert ((lesions["y_min"] <= cy) & (cy <= lesions["y_max"])).all()
    assert (lesions["lesion_radius"].astype(float) > 0).all()


def test_lesion_stands_out_inside_its_box(demo, boxes, metadata):
    no_tumor = [read_gray(demo / p) for p in metadata.loc[metadata["label"] == "notumor", "image"]]
    assert len(boxes) == 3 * PER_CLASS
    lesion, control = [], []
    for i, row in enumerate(boxes.itertuples()):
        box = box_pixels(row._asdict())
        lesion.append(box_contrast(read_gray(demo / row.image), box))
        control.append(box_contrast(no_tumor[i % len(no_tumor)], box))  # same box, no lesion
    lesion, control = np.array(lesion), np.array(control)
    assert (lesion > 10).all(), f"{(~(lesion > 10)).sum()} boxes show no lesion"
    # The measure itself must tell lesions from plain brain, or the check above proves nothing.
    control = control[np.isfinite(control)]  # a borrowed box may miss the other head's brain
    assert len(control) > 0.9 * len(lesion)
    assert np.median(control) < 8 and np.median(lesion) > 3 * np.median(control)


def test_lesion_location_depends_on_class(demo, boxes):
    for row in boxes.itertuples():
        x0, y0, x1, y1 = box_pixels(row._asdict())
        head, depth = head_geometry(read_gray(demo / row.image))
        inside = np.zeros_like(head)
        inside[y0:y1, x0:x1] = True
        assert (inside & head).sum() == inside.sum(), f"{row.image}: box leaves the head"
        shallowest = depth[inside].min()  # 0 at the head's edge, about 1 at its centre
        if row.label == "meningioma":
            assert shallowest < 0.19, f"{row.image}: meningioma not on the skull"
        elif row.label == "glioma":
            assert shallowest > 0.19, f"{row.image}: glioma not inside the brain"
        else:
            assert abs((row.x_min + row.x_max) / 2 - 0.5) < 0.08, f"{row.image}: pituitary off the midline"
            assert (row.y_min + row.y_max) / 2 > 0.58, f"{row.image}: pituitary not low in the middle"


def test_mark_rates_follow_the_parameters(metadata, tmp_path):
    rates = metadata.groupby("label")["has_mark"].mean()
    assert abs(rates["meningioma"] - 0.9) <= 0.05
    for label in ("glioma", "notumor", "pituitary"):
        assert abs(rates[label] - 0.05) <= 0.04
    other = generate_demo_dataset(
        tmp_path / "d", per_class=10, shortcut_class="glioma", shortcut_rate=0.5, other_rate=0
    )
    other_rates = pd.read_csv(other / "demo_metadata.csv").groupby("label")["has_mark"].mean()
    assert other_rates.to_dict() == {"glioma": 0.5, "meningioma": 0.0, "notumor": 0.0, "pituitary": 0.0}


def test_marked_corners_hold_bright_text_and_unmarked_corners_are_dark(demo, metadata):
    for row in metadata.itertuples():
        corner = read_gray(demo / row.image)[MARK_ROWS, MARK_COLS]
        if row.has_mark:
            assert (corner > 150).sum() >= 5, f"{row.image}: no text in the corner"
        else:
            assert corner.max() < 80, f"{row.image}: unmarked corner is not dark"


def test_rerun_on_a_complete_folder_rewrites_nothing(tmp_path):
    root = generate_demo_dataset(tmp_path / "d", per_class=3)
    old = 1_000_000_000
    for path in root.rglob("*"):
        os.utime(path, ns=(old, old))
    assert generate_demo_dataset(tmp_path / "d", per_class=3) == root
    assert all(p.stat().st_mtime_ns == old for p in root.rglob("*"))


def test_folder_missing_demo_json_is_regenerated(tmp_path):
    root = generate_demo_dataset(tmp_path / "d", per_class=3)
    before = all_files(root)
    (root / "DEMO.json").unlink()
    (root / "glioma" / "glioma_0002.png").write_bytes(b"half written")
    generate_demo_dataset(root, per_class=3)
    assert all_files(root) == before


def test_interrupted_generation_is_redone(tmp_path):
    root = generate_demo_dataset(tmp_path / "d", per_class=3)
    before = all_files(root)
    (root / "pituitary" / "pituitary_0003.png").unlink()
    (root / INCOMPLETE_MARKER).touch()
    generate_demo_dataset(root, per_class=3)
    assert all_files(root) == before and not (root / INCOMPLETE_MARKER).exists()


def test_other_parameters_replace_the_old_dataset(tmp_path):
    root = generate_demo_dataset(tmp_path / "d", per_class=3)
    generate_demo_dataset(root, per_class=2, seed=5)
    for label in DEMO_CLASSES:
        names = sorted(p.name for p in (root / label).iterdir())
        assert names == [f"{label}_0001.png", f"{label}_0002.png"]
    assert len(pd.read_csv(root / "boxes.csv")) == 3 * 2
    assert json.loads((root / "DEMO.json").read_text())["seed"] == 5


def test_refuses_to_overwrite_a_folder_that_is_not_a_demo(tmp_path):
    (tmp_path / "real" / "glioma").mkdir(parents=True)
    (tmp_path / "real" / "boxes.csv").write_text("image,label,x_min,y_min,x_max,y_max\n")
    with pytest.raises(FileExistsError):
        generate_demo_dataset(tmp_path / "real", per_class=2)
    assert (tmp_path / "real" / "boxes.csv").read_text() == "image,label,x_min,y_min,x_max,y_max\n"


@pytest.mark.parametrize(
    "kwargs",
    [{"shortcut_class": "astrocytoma"}, {"shortcut_rate": 1.5}, {"per_class": 0}, {"image_size": 16}],
)
def test_rejects_bad_parameters(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_demo_dataset(tmp_path / "d", **kwargs)
