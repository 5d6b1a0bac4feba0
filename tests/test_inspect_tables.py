"""The Inspect page's pure helpers (dashboard/inspect_tables.py) and bt_core.explain.masks."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core.artifacts import load_run
from bt_core.metrics.run_comparison import run_model_data
from bt_core.data.boxes import read_boxes
from bt_core.explain.masks import TOP_LEFT_TEXT_BOX, box_mask, head_mask, mass_share, mass_shares
from dashboard import inspect_tables as it
from fabricate import CLASS_NAMES, fabricate_zoo_run


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    fabricated = fabricate_zoo_run(tmp_path_factory.mktemp("inspect-zoo") / "artifacts")
    model_data, _excluded = run_model_data(load_run(fabricated.run_dir))
    return fabricated, model_data


def predicted_labels(fabricated, models) -> pd.DataFrame:
    """Per test id, each model's predicted class name (the fabricated predictions.csv)."""
    return pd.DataFrame({name: fabricated.predictions[name].set_index("id")["pred"] for name in models})


def true_labels(fabricated) -> pd.Series:
    first = next(iter(fabricated.predictions.values()))
    return first.set_index("id")["label"]


# --------------------------------------------------------------------------- filters


def test_overview_counts_errors_and_disagreement_per_image(zoo):
    fabricated, model_data = zoo
    overview = it.image_overview(model_data, CLASS_NAMES).set_index("id")
    predicted, truth = predicted_labels(fabricated, model_data), true_labels(fabricated)
    wrong = predicted.ne(truth, axis=0)
    assert list(overview.index) == fabricated.test_ids
    assert (overview["n_models"] == len(model_data)).all()
    assert overview["n_wrong"].to_dict() == wrong.sum(axis=1).to_dict()
    assert overview["disagree"].to_dict() == (predicted.nunique(axis=1) > 1).to_dict()
    assert overview["label"].to_dict() == truth.to_dict()


@pytest.mark.parametrize("models", [None, ["simple_cnn", "resnet18"], ["efficientnet_b0"]])
def test_filters_keep_the_right_ids(zoo, models):
    fabricated, model_data = zoo
    chosen = list(model_data) if models is None else models
    overview = it.image_overview(model_data, CLASS_NAMES, chosen)
    predicted, truth = predicted_labels(fabricated, chosen), true_labels(fabricated)
    wrong = predicted.ne(truth, axis=0)
    in_order = [image_id for image_id in fabricated.test_ids]

    def expect(mask: pd.Series) -> list[str]:
        return [image_id for image_id in in_order if mask[image_id]]

    assert it.filter_image_ids(overview) == in_order
    assert it.filter_image_ids(overview, it.ALL_CLASSES, it.ALL_IMAGES) == in_order
    assert it.filter_image_ids(overview, "glioma") == expect(truth == "glioma")
    assert it.filter_image_ids(overview, mode=it.MISCLASSIFIED_ANY) == expect(wrong.any(axis=1))
    assert it.filter_image_ids(overview, mode=it.MISCLASSIFIED_ALL) == expect(wrong.all(axis=1))
    assert it.filter_image_ids(overview, mode=it.DISAGREE) == expect(predicted.nunique(axis=1) > 1)
    both = it.filter_image_ids(overview, "meningioma", it.MISCLASSIFIED_ANY)
    assert both == expect(wrong.any(axis=1) & (truth == "meningioma"))
    assert it.filter_image_ids(overview, mode=it.MISCLASSIFIED_ANY)  # the zoo has errors to find


def test_most_confident_errors_are_sorted_by_the_wrong_predictions_probability(zoo):
    fabricated, model_data = zoo
    chosen = ["simple_cnn", "custom_cnn"]
    overview = it.image_overview(model_data, CLASS_NAMES, chosen)
    ordered = it.filter_image_ids(overview, mode=it.CONFIDENT_ERRORS)
    # Expected: per image, the highest max-probability among the chosen models that are wrong.
    truth = true_labels(fabricated)
    best: dict[str, tuple[float, str, str]] = {}
    for name in chosen:
        table = fabricated.predictions[name].set_index("id")
        for image_id, row in table.iterrows():
            if row["pred"] != truth[image_id]:
                probability = float(row[f"p_{row['pred']}"])
                if probability > best.get(image_id, (-1.0,))[0]:
                    best[image_id] = (probability, name, row["pred"])
    assert set(ordered) == set(best)
    probabilities = [best[image_id][0] for image_id in ordered]
    assert probabilities == sorted(probabilities, reverse=True)
    rows = overview.set_index("id")
    top = ordered[0]
    assert rows.loc[top, "error_probability"] == pytest.approx(best[top][0])
    assert (rows.loc[top, "error_model"], rows.loc[top, "error_pred"]) == best[top][1:]
    assert f"(p={best[top][0]:.2f})" in it.image_caption(rows.loc[top].to_dict() | {"id": top})


def test_no_models_and_unknown_filter(zoo):
    _fabricated, model_data = zoo
    overview = it.image_overview(model_data, CLASS_NAMES, [])
    assert it.filter_image_ids(overview, mode=it.MISCLASSIFIED_ALL) == []
    assert it.filter_image_ids(it.image_overview({}, CLASS_NAMES)) == []
    with pytest.raises(ValueError, match="unknown filter"):
        it.filter_image_ids(overview, mode="Most surprising")


def test_previous_and_next_wrap_around():
    ids = ["a", "b", "c"]
    assert it.step_image(ids, "a", 1) == "b"
    assert it.step_image(ids, "c", 1) == "a"
    assert it.step_image(ids, "a", -1) == "c"
    assert it.step_image(ids, "b", -1) == "a"
    assert it.step_image(ids, "gone", 1) == "a" and it.step_image(ids, "gone", -1) == "c"
    assert it.step_image(["only"], "only", 1) == "only"
    assert it.step_image([], "a", 1) is None


def test_target_class_and_precomputed_map_choice():
    assert it.target_class_index("predicted", 2, 1, CLASS_NAMES) == 2
    assert it.target_class_index("true", 2, 1, CLASS_NAMES) == 1
    assert it.target_class_index("true", 2, None, CLASS_NAMES) == 2  # an upload has no truth
    assert it.target_class_index("pituitary", 2, 1, CLASS_NAMES) == 3
    with pytest.raises(ValueError):
        it.target_class_index("tumor", 0, 0, CLASS_NAMES)
    maps = np.arange(2 * 4 * 4, dtype=np.float16).reshape(2, 4, 4) / 32
    stored = (maps, np.array(["x", "y"]), np.array([0, 3]))
    np.testing.assert_array_equal(it.precomputed_map(stored, "y", 3), maps[1])
    assert it.precomputed_map(stored, "y", 1) is None  # another class: compute live
    assert it.precomputed_map(stored, "z", 0) is None
    assert it.precomputed_map(None, "x", 0) is None


# --------------------------------------------------------------------------- pictures and masks


def head_image(size: int = 64, text: bool = True) -> np.ndarray:
    """A bright ellipse (the head) with a dark hole (a ventricle), and corner text."""
    image = np.zeros((size, size), np.uint8)
    cv2.ellipse(image, (size // 2, size // 2 + 4), (size // 3, size // 3 + 2), 0, 0, 360, 150, -1)
    cv2.circle(image, (size // 2, size // 2), 3, 0, -1)
    if text:
        cv2.putText(image, "SE 7", (1, 5), cv2.FONT_HERSHEY_SIMPLEX, 0.15, 255, 1, cv2.LINE_AA)
    return np.repeat(image[..., np.newaxis], 3, axis=-1)


def test_head_mask_is_the_filled_head_without_the_corner_text():
    image = head_image()
    mask = head_mask(image)
    ellipse = head_image(text=False)[..., 0] > 0
    ellipse = ellipse | (cv2.morphologyEx(ellipse.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8)) > 0)
    overlap = (mask & ellipse).sum() / (mask | ellipse).sum()
    assert overlap > 0.9
    assert mask[image.shape[0] // 2, image.shape[1] // 2]  # the ventricle hole is filled
    assert not mask[:8, :16].any()  # the text is not part of the head
    assert not head_mask(np.zeros((16, 16, 3), np.uint8)).any()


def test_mass_share_known_answers():
    cam = np.zeros((10, 10), np.float32)
    cam[:2, :3] = 1.0  # all mass in the top-left
    corner = box_mask(cam.shape, (0.0, 0.0, 0.25, 0.15))
    assert corner.sum() == 3 * 2
    assert mass_share(cam, corner) == pytest.approx(1.0)
    assert mass_share(np.ones((10, 10)), corner) == pytest.approx(0.06)
    assert np.isnan(mass_share(np.zeros((10, 10)), corner))
    # A low-resolution map is read against a full-size mask.
    assert mass_share(np.ones((5, 5)), box_mask((20, 20), (0, 0, 1, 0.45))) == pytest.approx(0.5)
    shares = mass_shares(np.stack([cam, np.ones_like(cam)]), box_mask(cam.shape, TOP_LEFT_TEXT_BOX))
    assert shares[0] == pytest.approx(1.0) and shares[1] == pytest.approx(0.06)


def test_overlay_with_outlines_and_shares():
    image = it.enlarge_image(head_image(), it.display_size(64))
    assert image.shape == (it.DISPLAY_SIZE, it.DISPLAY_SIZE, 3)
    cam = np.zeros((16, 16), np.float16)
    cam[6:10, 6:10] = 1
    shown = it.upsample_map(cam, image.shape[0])
    assert shown.dtype == np.float32 and shown.shape == image.shape[:2] and 0 <= shown.min() <= shown.max() <= 1
    head = it.head_outline(image)
    box = (0.3, 0.3, 0.7, 0.7)
    picture = it.compose_overlay(image, cam, "viridis", 0.5, box, head)
    assert picture.dtype == np.uint8 and picture.shape == image.shape
    # The box outline is drawn in green over the overlay.
    x0 = int(round(0.3 * (image.shape[1] - 1)))
    assert tuple(picture[image.shape[0] // 2, x0]) == it.BOX_COLOR
    shares = it.map_shares(shown, head, box)
    assert shares["box"] > 0.95 and shares["head"] > 0.95
    assert it.shares_caption(shares).startswith(f"{shares['box']:.0%} of the map in the tumor box")
    assert it.map_shares(shown, None, None) == {}
    untouched = it.outlined_image(image)
    np.testing.assert_array_equal(untouched, image)


def test_image_box_from_a_datasets_boxes_csv(tmp_path):
    (tmp_path / "boxes.csv").write_text(
        "image,label,x_min,y_min,x_max,y_max\nglioma/a.png,glioma,0.1,0.2,0.3,0.4\n", encoding="utf-8"
    )
    boxes, _rejected = read_boxes(tmp_path)
    assert it.image_box(boxes, "glioma/a.png") == (0.1, 0.2, 0.3, 0.4)
    assert it.image_box(boxes, "notumor/b.png") is None
    assert it.image_box(None, "glioma/a.png") is None


def test_probability_table_marks_predicted_and_true():
    table = it.probability_table([0.1, 0.6, 0.2, 0.1], CLASS_NAMES, true=0)
    assert list(table["class"]) == CLASS_NAMES
    assert list(table["predicted"]) == [False, True, False, False]
    assert list(table["true"]) == [True, False, False, False]
    assert not it.probability_table([0.1, 0.6, 0.2, 0.1], CLASS_NAMES, true=None)["true"].any()


# --------------------------------------------------------------------------- uploads


def test_entry_image_size_reads_ints_shapes_and_the_run_size():
    assert it.entry_image_size({"input_size": 224}, {}) == 224
    assert it.entry_image_size({"input_size": [64, 64, 3]}, {}) == 64
    assert it.entry_image_size({}, {"image_size": 128}) == 128
    assert it.entry_image_size({}, {"config": {"img_size": 96}}) == 96
    with pytest.raises(ValueError):
        it.entry_image_size({}, {})
    assert it.run_image_ops({"config": {"preprocess": ["crop_head", "clahe"]}}) == ("crop_head", "clahe")
    assert it.run_image_ops({}) == ()


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_uploaded_grayscale_or_color_image_of_any_size_becomes_model_input(suffix):
    gray = head_image(90)[..., 0][:, :70]  # 90 x 70 grayscale, not square
    ok, encoded = cv2.imencode(suffix, gray)
    assert ok
    prepared = it.prepare_upload(encoded.tobytes(), 32)
    assert prepared.dtype == np.uint8 and prepared.shape == (32, 32, 3)
    assert np.array_equal(prepared[..., 0], prepared[..., 1])  # grayscale stays gray
    color = np.dstack([gray, gray // 2, np.zeros_like(gray)])
    ok, encoded = cv2.imencode(suffix, color)
    assert it.prepare_upload(encoded.tobytes(), 48, ("clahe",)).shape == (48, 48, 3)


def test_an_upload_that_is_not_an_image_is_refused():
    with pytest.raises(ValueError):
        it.prepare_upload(b"%PDF-1.7 not an image", 32)
    with pytest.raises(ValueError):
        it.prepare_upload(b"", 32)
