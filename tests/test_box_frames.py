"""Tumor boxes follow the image ops: the frame crop_head applies moves the boxes with the image,
so a run's test_boxes.csv always sits on the lesion in its test_images.npz."""

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core import artifacts as art
from bt_core import cli
from bt_core.data.boxes import fit_boxes_to_frames
from bt_core.data.dataset import load_dataset
from bt_core.data.image_ops import IDENTITY, Frame, apply_image_ops, apply_image_ops_with_frame, head_window
from bt_core.data.images import FRAME_COLUMNS, decode_image_bytes, decode_image_bytes_with_frame
from bt_core.regions import box_masks

HEAD, LESION = 110, 230


def head_with_lesion(height, width, centre, axes, lesion_box):
    """A grey elliptical head (``centre`` x, y and ``axes`` in pixels) on black, with a bright
    lesion filling the normalised ``lesion_box`` (pixel-centre rule, as box masks are drawn)."""
    image = np.zeros((height, width), np.uint8)
    cv2.ellipse(image, centre, axes, 0, 0, 360, HEAD, -1)
    image[box_masks([lesion_box], (height, width))[0]] = LESION
    return np.repeat(image[..., None], 3, axis=2)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize(
    "height, width, centre, axes, box",
    [
        (120, 200, (140, 60), (35, 45), (0.62, 0.35, 0.78, 0.6)),  # off-centre, wide image
        (120, 200, (40, 60), (30, 50), (0.12, 0.3, 0.28, 0.55)),  # the square reaches past the left edge
        (180, 100, (50, 120), (30, 40), (0.35, 0.6, 0.6, 0.75)),  # tall image, head low
    ],
)
def test_a_box_follows_the_head_crop_onto_the_same_pixels(height, width, centre, axes, box):
    image = head_with_lesion(height, width, centre, axes, box)
    cropped, frame = apply_image_ops_with_frame(image, ["crop_head"])
    np.testing.assert_array_equal(cropped, apply_image_ops(image, ["crop_head"]))  # one implementation
    assert frame != IDENTITY
    mapped = np.clip(frame.map_boxes(np.array([box])), 0, 1)
    lesion_after_crop = cropped[..., 0] > (HEAD + LESION) / 2  # the lesion carried through the crop
    assert iou(box_masks(mapped, cropped.shape[:2])[0], lesion_after_crop) > 0.9
    # Known answer: the frame is the crop window (x0, y0, side) in original pixels.
    x0, y0, side = head_window(image)
    assert frame == Frame(x0 / width, y0 / height, width / side, height / side)


def test_padding_is_accounted_for_when_the_window_reaches_past_the_image():
    image = head_with_lesion(120, 200, (40, 60), (30, 50), (0.12, 0.3, 0.28, 0.55))
    x0, _y0, _side = head_window(image)
    assert x0 < 0  # black padding on the left of the crop
    _cropped, frame = apply_image_ops_with_frame(image, ["crop_head"])
    left_edge = frame.map_boxes(np.array([[0.0, 0.0, 1.0, 1.0]]))[0, 0]
    assert left_edge == pytest.approx(-x0 / _side)  # the image's left edge lands right of the padding


@pytest.mark.parametrize("op", ["clahe", "sharpen", "histeq"])
def test_ops_that_keep_the_frame_report_the_identity(op):
    image = head_with_lesion(64, 64, (30, 30), (20, 20), (0.4, 0.4, 0.6, 0.6))
    out, frame = apply_image_ops_with_frame(image, [op])
    assert frame == IDENTITY
    np.testing.assert_array_equal(out, apply_image_ops(image, [op]))
    np.testing.assert_allclose(IDENTITY.map_boxes(np.array([[0.1, 0.2, 0.3, 0.4]])), [[0.1, 0.2, 0.3, 0.4]])


def test_no_head_and_no_ops_keep_the_frame():
    assert apply_image_ops_with_frame(np.zeros((40, 40, 3), np.uint8), ["crop_head"])[1] == IDENTITY
    assert apply_image_ops_with_frame(np.zeros((40, 40, 3), np.uint8), [])[1] == IDENTITY


def test_frames_compose_in_the_order_the_ops_ran():
    first, second = Frame(0.1, 0.2, 2.0, 4.0), Frame(0.25, 0.5, 2.0, 2.0)
    point = np.array([[0.5, 0.5, 0.5, 0.5]])
    # (0.5 - 0.1) * 2 = 0.8 -> (0.8 - 0.25) * 2 = 1.1; (0.5 - 0.2) * 4 = 1.2 -> (1.2 - 0.5) * 2 = 1.4
    np.testing.assert_allclose(first.then(second).map_boxes(point), [[1.1, 1.4, 1.1, 1.4]])
    np.testing.assert_allclose(first.then(second).map_boxes(point), second.map_boxes(first.map_boxes(point)))
    image = head_with_lesion(120, 200, (140, 60), (35, 45), (0.62, 0.35, 0.78, 0.6))
    assert apply_image_ops_with_frame(image, ["crop_head", "clahe"])[1] == apply_image_ops_with_frame(
        image, ["crop_head"])[1]


def test_decoding_reports_the_frame_the_resize_keeps(tmp_path):
    image = head_with_lesion(120, 200, (140, 60), (35, 45), (0.62, 0.35, 0.78, 0.6))
    raw = cv2.imencode(".png", image[..., 0])[1].tobytes()
    decoded, frame = decode_image_bytes_with_frame(raw, 48, ("crop_head",))
    np.testing.assert_array_equal(decoded, decode_image_bytes(raw, 48, ("crop_head",)))
    assert frame == apply_image_ops_with_frame(image, ["crop_head"])[1]
    mapped = np.clip(frame.map_boxes(np.array([[0.62, 0.35, 0.78, 0.6]])), 0, 1)
    assert iou(box_masks(mapped, (48, 48))[0], decoded[..., 0] > (HEAD + LESION) / 2) > 0.8  # coarse at 48 px


def test_boxes_are_clipped_to_the_crop_and_dropped_when_wholly_outside():
    boxes = pd.DataFrame(
        [[0.1, 0.1, 0.3, 0.3], [0.0, 0.4, 0.2, 0.6], [0.4, 0.4, 0.6, 0.6], [0.4, 0.4, 0.6, 0.6]],
        columns=["x_min", "y_min", "x_max", "y_max"],
        index=pd.Index(["a.png", "b.png", "c.png", "d.png"], name="image"),
    )
    window = Frame(0.25, 0.25, 2.0, 2.0).as_array()  # the middle half of the image
    frames = pd.DataFrame([window, window, window], columns=FRAME_COLUMNS, index=["a.png", "b.png", "c.png"])
    fitted, dropped = fit_boxes_to_frames(boxes, frames)
    assert [s.path for s in dropped] == ["b.png"] and "outside the head crop" in dropped[0].reason
    np.testing.assert_allclose(fitted.loc["a.png"], [0.0, 0.0, 0.1, 0.1])  # clipped at the crop's corner
    np.testing.assert_allclose(fitted.loc["c.png"], [0.3, 0.3, 0.7, 0.7])
    np.testing.assert_allclose(fitted.loc["d.png"], [0.4, 0.4, 0.6, 0.6])  # no frame: identity
    assert fitted.index.name == "image"


LESION_BOXES = [(0.55, 0.3, 0.7, 0.45), (0.6, 0.5, 0.75, 0.65), (0.5, 0.55, 0.62, 0.7)]


def make_boxed_pool(root, per_class=6, size=96):
    """Four classes of off-centre heads; every glioma and meningioma image has a bright lesion
    at its box (boxes.csv), the other classes none."""
    rows = []
    for class_index, name in enumerate(("glioma", "meningioma", "notumor", "pituitary")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            box = LESION_BOXES[(i + class_index) % len(LESION_BOXES)]
            with_lesion = class_index < 2
            image = head_with_lesion(size, size, (60 + i % 3, 50), (24, 30), box if with_lesion else (0, 0, 0.01, 0.01))
            if not with_lesion:
                image[:2, :2] = 0
            relative = f"{name}/img_{i:03d}.png"
            cv2.imwrite(str(root / relative), image[..., 0])
            if with_lesion:
                rows.append([relative, name, *box])
    pd.DataFrame(rows, columns=["image", "label", "x_min", "y_min", "x_max", "y_max"]).to_csv(
        root / "boxes.csv", index=False)
    return root


def assert_boxes_sit_on_the_lesions(images, boxes):
    boxed = np.isfinite(boxes).all(axis=1)
    assert boxed.any()
    for image, box in zip(images[boxed], boxes[boxed]):
        inside = box_masks([box], image.shape[:2])[0]
        gray = image[..., 0].astype(float)
        assert gray[inside].mean() > 180 > gray[~inside].mean()


def test_load_dataset_moves_the_boxes_with_a_head_crop(tmp_path):
    root = make_boxed_pool(tmp_path / "data")
    plain = load_dataset(root, 48, seed=0)
    cropped = load_dataset(root, 48, seed=0, ops=("crop_head",))
    assert set(cropped.boxes.index) == set(plain.boxes.index)  # every box stays on its cropped head
    assert not np.allclose(cropped.boxes.to_numpy(), plain.boxes.to_numpy())
    for data in (plain, cropped):
        for split in data.arrays.values():
            assert_boxes_sit_on_the_lesions(split.images, data.boxes.reindex(split.ids).to_numpy())


def test_a_crop_head_run_stores_boxes_on_the_lesions_of_its_test_images(tmp_path):
    root = make_boxed_pool(tmp_path / "data")
    out = tmp_path / "artifacts"
    assert cli.main(["--data", str(root), "--models", "simple_cnn", "--epochs", "1", "--img-size", "48",
                     "--out", str(out), "--run-id", "r", "--preprocess", "crop_head", "--no-explain"]) == 0
    run = art.load_run(out / "r")
    assert run.image_ops == ("crop_head",) and (run.directory / art.TEST_BOXES).is_file()
    images, ids = art.load_test_images(run.directory)
    assert_boxes_sit_on_the_lesions(images, run.test_boxes(ids))
    # An evaluation decodes with the run's ops, and its boxes follow the crop the same way.
    assert cli.main(["--evaluate", str(run.directory), "--data", str(root), "--name", "again", "--no-explain"]) == 0
    evaluation = art.load_run(art.evaluation_dir(run.directory, "again"))
    assert evaluation.image_ops == ("crop_head",) and (evaluation.directory / art.TEST_BOXES).is_file()
    images, ids = art.load_test_images(evaluation.directory)
    assert len(ids) == 24
    assert_boxes_sit_on_the_lesions(images, evaluation.test_boxes(ids))


def run_without_test_boxes(root, run_dir):
    """A run as formats before 1.2 left it: its dataset has a boxes.csv, the run no test_boxes.csv."""
    dataset = load_dataset(root, 48, seed=0)
    test = dataset.arrays["test"]
    writer = art.RunWriter(run_dir, art.Manifest(run_id=run_dir.name, class_names=tuple(dataset.class_names),
                                                 image_size=48, dataset=art.DatasetRecord.from_loaded(dataset)))
    writer.write_split(dataset.split)
    writer.write_test_images(test.images, test.ids)
    return dataset.boxes.reindex(test.ids).to_numpy(), test.ids


def test_analysis_stores_an_older_runs_test_boxes_without_rewriting_its_manifest(tmp_path):
    from bt_core.runs.analyze import run_boxes

    root = make_boxed_pool(tmp_path / "data", per_class=8, size=48)
    expected, ids = run_without_test_boxes(root, tmp_path / "run")
    assert np.isfinite(expected).all(axis=1).any()
    manifest = art.manifest_path(tmp_path / "run")
    before, content = manifest.stat(), manifest.read_bytes()
    np.testing.assert_allclose(run_boxes(art.load_run(tmp_path / "run"), ids), expected)
    assert (tmp_path / "run" / art.TEST_BOXES).is_file()
    after = manifest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns) and manifest.read_bytes() == content


def test_analysis_takes_no_boxes_from_a_changed_dataset_and_records_rejected_rows(tmp_path):
    from bt_core.runs.analyze import run_boxes

    root = make_boxed_pool(tmp_path / "data", per_class=8, size=48)
    _expected, ids = run_without_test_boxes(root, tmp_path / "run")
    changed = root / ids[0]
    original = changed.read_bytes()
    cv2.imwrite(str(changed), np.full((48, 48), 7, np.uint8))  # the folder is not the run's any more
    assert run_boxes(art.load_run(tmp_path / "run"), ids) is None
    assert not (tmp_path / "run" / art.TEST_BOXES).exists()

    changed.write_bytes(original)
    with open(root / "boxes.csv", "a") as handle:
        handle.write("glioma/img_001.png,glioma,0.6,0.1,0.4,0.5\n")  # a duplicate row, min above max
    assert run_boxes(art.load_run(tmp_path / "run"), ids) is not None
    skipped = art.load_manifest(tmp_path / "run").dataset.skipped
    assert {"path": "glioma/img_001.png", "reason": "boxes.csv: min not below max"} in [dict(s) for s in skipped]
    art.record_skipped(tmp_path / "run", skipped)  # already listed: nothing new, no rewrite
    assert len(art.load_manifest(tmp_path / "run").dataset.skipped) == len(skipped)
