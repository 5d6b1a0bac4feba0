"""bt_dashboard.views.inspect: the Inspect page's image choice, pictures and uploads (no Streamlit)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core.regions import box_pixel_bounds
from bt_dashboard.views import inspect as view
from bt_dashboard.views import inspect_pictures as pictures

from imagefolders import head_image
from fabricate import CLASS_NAMES


def predicted_labels(fabricated, models) -> pd.DataFrame:
    """Per test id, each model's predicted class name (the fabricated predictions.csv)."""
    return pd.DataFrame({name: fabricated.predictions[name].set_index("id")["pred"] for name in models})


def true_labels(fabricated) -> pd.Series:
    first = next(iter(fabricated.predictions.values()))
    return first.set_index("id")["label"]


def test_overview_counts_errors_and_disagreement_per_image(zoo, model_data):
    fabricated = zoo
    overview = view.image_overview(model_data, CLASS_NAMES).set_index("id")
    predicted, truth = predicted_labels(fabricated, model_data), true_labels(fabricated)
    wrong = predicted.ne(truth, axis=0)
    assert list(overview.index) == fabricated.test_ids
    assert (overview["n_models"] == len(model_data)).all()
    assert overview["n_wrong"].to_dict() == wrong.sum(axis=1).to_dict()
    assert overview["disagree"].to_dict() == (predicted.nunique(axis=1) > 1).to_dict()
    assert overview["label"].to_dict() == truth.to_dict()


@pytest.mark.parametrize("models", [None, ["simple_cnn", "resnet18"], ["efficientnet_b0"]])
def test_filters_keep_the_right_ids(zoo, model_data, models):
    fabricated = zoo
    chosen = list(model_data) if models is None else models
    overview = view.image_overview(model_data, CLASS_NAMES, chosen)
    predicted, truth = predicted_labels(fabricated, chosen), true_labels(fabricated)
    wrong = predicted.ne(truth, axis=0)
    in_order = [image_id for image_id in fabricated.test_ids]

    def expect(mask: pd.Series) -> list[str]:
        return [image_id for image_id in in_order if mask[image_id]]

    assert view.filter_image_ids(overview) == in_order
    assert view.filter_image_ids(overview, view.ALL_CLASSES, view.ALL_IMAGES) == in_order
    assert view.filter_image_ids(overview, "glioma") == expect(truth == "glioma")
    assert view.filter_image_ids(overview, mode=view.MISCLASSIFIED_ANY) == expect(wrong.any(axis=1))
    assert view.filter_image_ids(overview, mode=view.MISCLASSIFIED_ALL) == expect(wrong.all(axis=1))
    assert view.filter_image_ids(overview, mode=view.DISAGREE) == expect(predicted.nunique(axis=1) > 1)
    both = view.filter_image_ids(overview, "meningioma", view.MISCLASSIFIED_ANY)
    assert both == expect(wrong.any(axis=1) & (truth == "meningioma"))
    assert view.filter_image_ids(overview, mode=view.MISCLASSIFIED_ANY)  # the zoo has errors to find


def test_most_confident_errors_are_sorted_by_the_wrong_predictions_probability(zoo, model_data):
    fabricated = zoo
    chosen = ["simple_cnn", "custom_cnn"]
    overview = view.image_overview(model_data, CLASS_NAMES, chosen)
    ordered = view.filter_image_ids(overview, mode=view.CONFIDENT_ERRORS)
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
    assert f"(p={best[top][0]:.2f})" in view.image_caption(rows.loc[top].to_dict() | {"id": top})


def test_no_models_and_unknown_filter(model_data):
    overview = view.image_overview(model_data, CLASS_NAMES, [])
    assert view.filter_image_ids(overview, mode=view.MISCLASSIFIED_ALL) == []
    assert view.filter_image_ids(view.image_overview({}, CLASS_NAMES)) == []
    with pytest.raises(ValueError, match="unknown filter"):
        view.filter_image_ids(overview, mode="Most surprising")


def test_previous_and_next_wrap_around():
    ids = ["a", "b", "c"]
    assert view.step_image(ids, "a", 1) == "b"
    assert view.step_image(ids, "c", 1) == "a"
    assert view.step_image(ids, "a", -1) == "c"
    assert view.step_image(ids, "b", -1) == "a"
    assert view.step_image(ids, "gone", 1) == "a" and view.step_image(ids, "gone", -1) == "c"
    assert view.step_image(["only"], "only", 1) == "only"
    assert view.step_image([], "a", 1) is None


def test_target_class_and_precomputed_map_choice():
    assert view.target_class_index("predicted", 2, 1, CLASS_NAMES) == 2
    assert view.target_class_index("true", 2, 1, CLASS_NAMES) == 1
    assert view.target_class_index("true", 2, None, CLASS_NAMES) == 2  # an upload has no truth
    assert view.target_class_index("pituitary", 2, 1, CLASS_NAMES) == 3
    with pytest.raises(ValueError):
        view.target_class_index("tumor", 0, 0, CLASS_NAMES)
    maps = np.arange(2 * 4 * 4, dtype=np.float16).reshape(2, 4, 4) / 32
    stored = (maps, np.array(["x", "y"]), np.array([0, 3]))
    np.testing.assert_array_equal(view.precomputed_map(stored, "y", 3), maps[1])
    assert view.precomputed_map(stored, "y", 1) is None  # another class: compute live
    assert view.precomputed_map(stored, "z", 0) is None
    assert view.precomputed_map(None, "x", 0) is None


def green_bounds(picture: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), inclusive, of the box colour's pixels."""
    rows, cols = np.nonzero((picture == pictures.BOX_COLOR).all(axis=-1))
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def outline_pixels(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Pixels the head outline turned white."""
    return (after != before).any(axis=-1) & (after == pictures.HEAD_COLOR).all(axis=-1)


def test_the_stored_box_is_drawn_on_the_pixels_it_covers_at_display_size():
    image = pictures.enlarge_image(head_image(text=False), pictures.display_size(64))
    assert image.shape == (pictures.DISPLAY_SIZE, pictures.DISPLAY_SIZE, 3)
    box = (0.3, 0.3, 0.7, 0.7)
    col_start, row_start, col_stop, row_stop = box_pixel_bounds(box, *image.shape[:2])
    cam = np.zeros((16, 16), np.float16)
    cam[6:10, 6:10] = 1
    picture = pictures.compose_overlay(image, cam, "viridis", 0.5, box, None)
    assert picture.dtype == np.uint8 and picture.shape == image.shape
    # A 2 px line on the outermost covered pixels reaches one pixel past them on each side.
    assert green_bounds(picture) == (col_start - 1, row_start - 1, col_stop, row_stop)
    np.testing.assert_array_equal(pictures.outlined_image(image), image)


def test_the_head_outline_is_the_stored_mask_resized_nearest():
    image = pictures.enlarge_image(head_image(text=False), pictures.DISPLAY_SIZE)
    head = np.zeros((64, 64), bool)
    head[10:50, 20:40] = True  # not the image's own head: the outline must follow the stored one
    drawn = outline_pixels(image, pictures.outlined_image(image, None, head))
    large = cv2.resize(head.astype(np.uint8), image.shape[1::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
    edge = large & ~cv2.erode(large.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert drawn.any() and not (drawn & ~edge).any()
    assert drawn.sum() >= 0.9 * edge.sum()
    # All head (how the analysis pass stores "no head found") and no head: no outline.
    for mask in (np.ones((64, 64), bool), np.zeros((64, 64), bool)):
        np.testing.assert_array_equal(pictures.outlined_image(image, None, mask), image)


def test_stored_outlines_and_what_their_caption_says():
    boxes = np.array([[0.1, 0.2, 0.3, 0.4], [np.nan] * 4])
    heads = np.zeros((2, 8, 8), bool)
    heads[0, 2:6, 2:6] = True
    heads[1] = True  # no head found in the second image
    image = np.zeros((8, 8, 3), np.uint8)
    first = pictures.stored_outlines(boxes, heads, 0)
    assert first.box == (0.1, 0.2, 0.3, 0.4) and np.array_equal(first.head, heads[0])
    picture = pictures.make_picture(image, first, True)
    assert picture.native_side == 8 and picture.image.shape == (pictures.DISPLAY_SIZE, pictures.DISPLAY_SIZE, 3)
    assert pictures.outline_caption(picture) == (
        "Green: the stored tumor box (test_boxes.csv). White: the stored head outline (test_heads.npz)."
    )
    assert pictures.outline_caption(pictures.make_picture(image, pictures.stored_outlines(boxes, heads, 1), True)) == (
        "No tumor box for this image. No head outline: no head was found in this image."
    )
    bare = pictures.make_picture(image, pictures.stored_outlines(None, None, 0), True)
    assert bare.box is None and bare.head is None
    assert "the run stored none" in pictures.outline_caption(bare)
    assert pictures.EXPLAIN_COMMAND in pictures.outline_caption(bare)
    assert "upload" in pictures.outline_caption(pictures.make_picture(image, pictures.UPLOAD_OUTLINES, True))
    hidden = pictures.make_picture(image, first, False)
    assert hidden.box is None and hidden.head is None and pictures.outline_caption(hidden) == ""


def test_stored_shares_are_read_as_stored_and_live_ones_against_the_stored_masks():
    frame = pd.DataFrame({"outside_head": [0.123], "border": [0.456], "in_box": [np.nan]}, index=["a"])
    assert pictures.stored_shares(frame, "a") == pytest.approx(
        {"outside_head": 0.123, "border": 0.456, "in_box": np.nan}, nan_ok=True)
    assert pictures.stored_shares(frame, "b") is None and pictures.stored_shares(None, "a") is None
    caption = pictures.shares_caption(pictures.stored_shares(frame, "a"))
    assert caption == "12% outside the head · 46% in the border band"

    head = np.zeros((10, 10), bool)
    head[:5] = True
    stored = pictures.StoredOutlines((0.2, 0.2, 0.6, 0.6), head, True, True)
    uniform = np.ones((5, 5), np.float32)  # resized to the 10 x 10 masks: every pixel the same mass
    # Border band of 1 px: 36 of 100 pixels; the box covers columns and rows 2..5: 16 pixels.
    assert pictures.live_shares(uniform, stored, 10) == pytest.approx(
        {"border": 0.36, "outside_head": 0.5, "in_box": 0.16})
    assert pictures.live_shares(uniform, pictures.UPLOAD_OUTLINES, 10) == pytest.approx({"border": 0.36})
    caption = pictures.shares_caption(pictures.live_shares(uniform, stored, 10))
    assert caption == "16% of the map in the tumor box · 50% outside the head · 36% in the border band"
    assert pictures.shares_caption(None) == ""


def test_probability_table_marks_predicted_and_true():
    table = view.probability_table([0.1, 0.6, 0.2, 0.1], CLASS_NAMES, true=0)
    assert list(table["class"]) == CLASS_NAMES
    assert list(table["predicted"]) == [False, True, False, False]
    assert list(table["true"]) == [True, False, False, False]
    assert not view.probability_table([0.1, 0.6, 0.2, 0.1], CLASS_NAMES, true=None)["true"].any()


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_uploaded_grayscale_or_color_image_of_any_size_becomes_model_input(suffix):
    gray = head_image(90)[..., 0][:, :70]  # 90 x 70 grayscale, not square
    ok, encoded = cv2.imencode(suffix, gray)
    assert ok
    prepared = pictures.prepare_upload(encoded.tobytes(), 32)
    assert prepared.dtype == np.uint8 and prepared.shape == (32, 32, 3)
    assert np.array_equal(prepared[..., 0], prepared[..., 1])  # grayscale stays gray
    color = np.dstack([gray, gray // 2, np.zeros_like(gray)])
    ok, encoded = cv2.imencode(suffix, color)
    assert pictures.prepare_upload(encoded.tobytes(), 48, ("clahe",)).shape == (48, 48, 3)


def test_an_upload_that_is_not_an_image_is_refused():
    with pytest.raises(ValueError):
        pictures.prepare_upload(b"%PDF-1.7 not an image", 32)
    with pytest.raises(ValueError):
        pictures.prepare_upload(b"", 32)


def test_a_precomputed_map_of_the_asked_class_is_used_else_the_map_is_computed_now():
    stored = (np.full((2, 4, 4), 0.25, np.float32), np.array(["a", "b"]), np.array([1, 0]))
    live = np.ones((4, 4), np.float32)
    cam, source = view.test_image_map(stored, "a", 1, False, lambda: live)
    assert source == view.SOURCE_PRECOMPUTED and float(cam.max()) == 0.25
    for args in ((stored, "a", 0, False), (stored, "a", 1, True), (None, "a", 1, False), (stored, "zz", 1, False)):
        cam, source = view.test_image_map(*args, lambda: live)
        assert source == view.SOURCE_LIVE and cam is live, args


def test_map_shares_are_the_stored_ones_for_a_precomputed_map_else_measured_now():
    head = np.zeros((8, 8), bool)
    head[2:6, 2:6] = True
    picture = pictures.make_picture(head_image(8), pictures.StoredOutlines(None, head, False, True), True)
    cam = np.zeros((8, 8), np.float32)
    cam[0, 0] = 1.0  # all of the mass outside the head, in the border
    stored = pd.DataFrame({"outside_head": [0.1], "border": [0.2], "in_box": [np.nan]}, index=["a"])
    assert view.map_shares(stored, picture, cam, view.SOURCE_PRECOMPUTED, "a")["outside_head"] == pytest.approx(0.1)
    measured = view.map_shares(stored, picture, cam, view.SOURCE_LIVE, "a")
    assert measured == pictures.live_shares(cam, picture.stored, 8)
    assert measured["outside_head"] == pytest.approx(1.0) and measured["border"] == pytest.approx(1.0)
    # A precomputed map whose file stored no shares for the image: measured now too.
    assert view.map_shares(stored, picture, cam, view.SOURCE_PRECOMPUTED, "zz") == measured


def test_model_input_size_reads_the_stored_spec(run):
    for name, model in run.models.items():
        spec = run.entry(name).spec
        expected = spec.input_size if spec is not None else run.image_size
        assert view.model_input_size(run, name) == expected


def test_an_upload_is_prepared_once_per_input_size():
    raw = cv2.imencode(".png", head_image(40))[1].tobytes()
    prepared = view.prepare_uploads(raw, [32, 64, 32])
    assert list(prepared) == [32, 64]
    assert prepared[32].shape == (32, 32, 3) and prepared[64].shape == (64, 64, 3)
    np.testing.assert_array_equal(prepared[32], pictures.prepare_upload(raw, 32))
    with pytest.raises(ValueError):
        view.prepare_uploads(b"not an image", [32])


def test_the_live_map_message_warns_only_for_the_slow_method():
    assert view.live_map_message("Grad-CAM++", "gradcam++", "vgg16") == "Grad-CAM++ of vgg16…"
    slow = view.live_map_message("Score-CAM", "scorecam", "vgg16")
    assert slow.startswith("Score-CAM of vgg16… (one masked pass per channel")
    assert "--methods scorecam" in slow
