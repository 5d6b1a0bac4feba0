"""The analysis pass end to end (bt_core.runs.analyze through ``train_all.py --explain``): a
model that can only tell meningioma from glioma by a corner mark outside the head is named,
for that class, by the measures; what Inspect reads (heads, shares, boxes) is what they used."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core import artifacts as art
from bt_core import cli, regions
from bt_core.runs.analyze import analyze_run

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
SIZE = 40
LESION = {"glioma": (0.5, 0.35), "meningioma": (0.5, 0.35), "pituitary": (0.5, 0.65)}  # centre x, y


def head_image(name: str, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, ...] | None]:
    image = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(image, (SIZE // 2, SIZE // 2), int(SIZE * 0.36), 90, thickness=-1)
    image = np.clip(image.astype(int) + rng.integers(-8, 9, image.shape) * (image > 0), 0, 255).astype(np.uint8)
    box = None
    if name in LESION:
        cx, cy = LESION[name]
        cv2.circle(image, (int(cx * SIZE), int(cy * SIZE)), 4, 200, thickness=-1)
        box = (cx - 0.13, cy - 0.13, cx + 0.13, cy + 0.13)
    if name == "meningioma":  # the planted mark: the only thing that tells it from glioma
        image[1:6, 1:6] = 255
    return image, box


def make_marked_pool(root: Path, per_class: int = 80) -> Path:
    rows = []
    for index, name in enumerate(CLASSES):
        rng = np.random.default_rng(index)
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image, box = head_image(name, rng)
            cv2.imwrite(str(root / name / f"{i:03d}.png"), image)
            if box is not None:
                rows.append({"image": f"{name}/{i:03d}.png", "label": name, "x_min": box[0], "y_min": box[1],
                             "x_max": box[2], "y_max": box[3]})
    pd.DataFrame(rows).to_csv(root / "boxes.csv", index=False)
    return root


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("marked")
    data = make_marked_pool(tmp / "data")
    out = tmp / "artifacts"
    code = cli.main(["--data", str(data), "--models", "simple_cnn", "--epochs", "12", "--img-size", str(SIZE),
                           "--out", str(out), "--run-id", "marked", "--augment", "none", "--no-explain"])
    assert code == 0
    run_dir = out / "marked"
    assert art.load_shortcuts(run_dir) is None  # nothing measured yet
    assert cli.main(["--explain", str(run_dir), "--methods", "gradcam,layercam"]) == 0
    return run_dir


def test_the_model_that_uses_the_mark_is_flagged_for_that_class(measured_run):
    run = art.load_run(measured_run)
    assert run.models["simple_cnn"].metrics["accuracy"] >= 0.9  # it learned, with the mark's help
    summary = art.load_shortcuts(measured_run)
    record = summary["models"]["simple_cnn"]
    flags = {flag["name"]: flag for flag in record["flags"]}
    assert "background_class" in flags and flags["background_class"]["classes"] == ["meningioma"]
    meningioma = record["parts"]["meningioma"]["background_class"]
    assert meningioma["value"] > 0.8  # marked background alone: called meningioma, others not
    # The probes agree: head only, meningioma is lost to glioma; background only, it is kept.
    probes = record["probes"]["meningioma"]
    assert probes["background_only"]["accuracy"] > 0.8 and probes["head_only"]["accuracy"] < 0.5


def test_the_source_swap_finds_the_two_classes_the_mark_ties_and_sets_the_severity(measured_run):
    record = art.load_shortcuts(measured_run)["models"]["simple_cnn"]
    severity = record["severity"]
    # Swapping the outside of the head moves glioma to meningioma (the mark comes in) and
    # meningioma to glioma (the mark goes): at least those two classes' decisions follow it.
    assert severity["pair.glioma"] == "glioma -> meningioma" and severity["part.glioma"] > 0.7
    assert severity["pair.meningioma"] == "meningioma -> glioma" and severity["part.meningioma"] > 0.7
    assert severity["severity"] >= 0.35 and severity["ci_low"] <= severity["severity"] <= severity["ci_high"]
    rows = pd.DataFrame(record["counterfactual"])
    # The outside of a no-tumor image carries no mark: bringing it in moves no tumor class.
    to_notumor = rows[(rows["probe"] == "source_swap") & (rows["donor_class"] == "notumor")]
    assert (to_notumor["value"] < 0.2).all()
    swap = rows[(rows["probe"] == "source_swap") & (rows["recipient_class"] == "meningioma")
                & (rows["donor_class"] == "glioma")].iloc[0]
    control = rows[(rows["probe"] == "source_swap_control") & (rows["recipient_class"] == "meningioma")].iloc[0]
    assert swap["value"] > 0.7 and control["value"] < 0.3 and swap["control"] == control["value"]
    assert set(rows["probe"]) >= {"source_swap", "source_swap_control", "style_match", "border_black"}


def test_measures_have_their_documented_shape_and_ranges(measured_run):
    summary = art.load_shortcuts(measured_run)
    record = summary["models"]["simple_cnn"]
    assert summary["has_boxes"] and summary["method"] == "gradcam"
    by_method = record["attention_by_method"]
    assert set(by_method) == {"gradcam", "layercam"} and by_method["gradcam"] == record["attention"]
    assert set(by_method["layercam"]) == set(record["attention"])
    assert set(record["attention"]) == {"all", *CLASSES}
    for group, row in record["attention"].items():
        for key in ("outside_head", "border"):
            # None: every map of the group is empty (Grad-CAM with no positive evidence).
            assert (row[key] is None and group != "all") or 0.0 <= row[key] <= 1.0, (group, key)
    assert record["attention"]["notumor"]["in_box"] is None  # no boxes for no-tumor images
    in_box = [record["attention"][name]["in_box"] for name in ("glioma", "meningioma", "pituitary")]
    assert any(value is not None for value in in_box)  # some tumor class has non-empty maps
    assert all(value is None or 0.0 <= value <= 1.0 for value in in_box)
    assert 0.0 <= record["score"] <= 1.0
    table = art.load_shortcut_images(measured_run, "simple_cnn")
    _images, ids = art.load_test_images(measured_run)
    assert table["id"].tolist() == ids.tolist()
    assert set(table["background_pred"]) <= set(CLASSES)
    sampled = table["deletion_auc"].notna()
    assert sampled.any() and table.loc[sampled, ["deletion_auc", "insertion_auc"]].stack().between(0, 1).all()
    faithfulness = record["faithfulness"]
    assert len(faithfulness["deletion_curve"]) == faithfulness["steps"] + 1
    # The audit ran on the dataset folder: every test image kept or dropped, metrics beside.
    duplicates = summary["audit"]["duplicates"]
    # These synthetic heads differ only by noise: near duplicates of each other, all of them.
    assert duplicates["test_images"] == len(ids) and duplicates["near_pairs"] > 0
    assert duplicates["test_kept"] == 0 and duplicates["deduplicated_metrics"] == {}
    assert set(summary["audit"]["source_probe"]) == {"border", "background"}


def test_a_model_without_maps_is_skipped_with_the_command(measured_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(measured_run, copy)
    shutil.rmtree(copy / "models" / "simple_cnn" / "maps")
    result = analyze_run(copy, methods=["layercam"], progress=None)
    summary = art.load_shortcuts(copy)
    assert summary["models"] == {} and result["shortcuts"]["skipped"] == summary["skipped"]
    assert "train_all.py --explain" in summary["skipped"]["simple_cnn"]
    assert "--methods gradcam" in summary["skipped"]["simple_cnn"]
    assert "shortcut measures" in result["skipped"]["simple_cnn"]


def test_an_evaluation_on_the_training_data_is_audited_as_leaked(measured_run):
    data = Path(art.load_run(measured_run).manifest["dataset"]["root"])
    assert cli.main(["--evaluate", str(measured_run), "--data", str(data), "--name", "same",
                           "--methods", "gradcam"]) == 0
    summary = art.load_shortcuts(art.evaluation_dir(measured_run, "same"))
    assert "simple_cnn" in summary["models"]
    duplicates = summary["audit"]["duplicates"]
    pairs = {(row["split_pair"], row["kind"]) for row in duplicates["by_split_pair"]}
    assert ("train-test", "exact") in pairs  # every training image is also in the evaluation
    assert duplicates["test_kept"] < duplicates["test_images"]


def test_an_image_without_a_head_counts_as_all_head():
    images = np.zeros((2, 32, 32, 3), np.uint8)
    cv2.circle(images[0], (16, 16), 10, (120, 120, 120), thickness=-1)  # a head; image 1 is black
    heads, missing = regions.usable_head_masks(images)
    assert missing == 1 and heads[1].all()
    assert 0.2 < heads[0].mean() < 0.5


def test_stored_box_shares_are_the_measured_ones_without_the_dataset(measured_run, tmp_path):
    """Inspect reads the stored head, boxes and shares: the dataset folder may be gone."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(measured_run, copy)
    run = art.load_run(copy)
    shutil.move(run.dataset.root, tmp_path / "moved-away")
    heads, boxes = run.test_heads(), run.test_boxes()
    assert heads is not None and boxes is not None and np.isfinite(boxes).all(axis=1).any()
    maps = art.load_maps(copy, "simple_cnn", "gradcam")[0]
    shares = art.load_map_shares(copy, "simple_cnn", "gradcam")
    in_box = regions.map_share(maps, regions.box_masks(boxes, heads.shape[1:]))
    boxed = np.isfinite(boxes).all(axis=1)
    np.testing.assert_allclose(shares["in_box"].to_numpy()[boxed], in_box[boxed], rtol=1e-12)
    assert (~boxed).any() and np.isnan(shares["in_box"].to_numpy()[~boxed]).all()  # no box: NaN
    np.testing.assert_allclose(shares["outside_head"], 1 - regions.map_share(maps, heads), rtol=1e-12)
    table = art.load_shortcut_images(copy, "simple_cnn").set_index("id").loc[shares.index]
    for name in ("outside_head", "border", "in_box"):  # exactly what the Shortcuts page measured
        np.testing.assert_allclose(shares[name], table[name], rtol=1e-9, equal_nan=True)
