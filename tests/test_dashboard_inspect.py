"""The Inspect page, run headless with Streamlit's AppTest on a fabricated run whose
``simple_cnn`` is a real (tiny, random) Keras model, so live maps are computed for real.

``simple_cnn`` also has precomputed Grad-CAM maps; ``custom_cnn`` has predictions but no
model file (its map cannot be computed); ``vit_tiny`` is corrupt and ``resnet50`` failed.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from urllib.parse import parse_qs

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import layout
from bt_core.artifacts import (
    STATUS_DONE, RunWriter, load_maps, read_manifest, read_split, write_maps, write_test_heads,
)
from bt_core.explain import list_methods
from bt_core.runs.analyze import analyze_run
from bt_core.models import create_model
from bt_core.regions import box_pixel_bounds
from bt_dashboard.views import common
from bt_dashboard.views import inspect as inspect_view
from bt_dashboard.views import inspect_pictures as pictures_view
from bt_dashboard.settings import ARTIFACTS_ENV
from fabricate import CLASS_NAMES, fabricate_run

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
INSPECT_PAGE = "app_pages/inspect.py"
CONFUSION_PAGE = "app_pages/confusion.py"
REAL_MODEL, NO_FILE_MODEL = "simple_cnn", "custom_cnn"
SIDE = 32
BOXED = "test_0000"  # the one test image with a stored tumor box (test_boxes.csv)
BOX = (0.25, 0.25, 0.5, 0.5)


def write_boxes(writer: RunWriter, ids: list[str], boxes: dict[str, tuple[float, ...]]) -> None:
    """The run's test_boxes.csv, as training writes it."""
    table = pd.DataFrame.from_dict(boxes, orient="index", columns=["x_min", "y_min", "x_max", "y_max"])
    writer.write_test_boxes(table.rename_axis("image"), ids)


@pytest.fixture(scope="module")
def inspect_run(tmp_path_factory):
    """A fabricated run with a real simple_cnn, analysed: its Grad-CAM maps with their
    shares, the test images' head masks, and a stored tumor box for ``BOXED``. Its dataset
    folder's boxes.csv names another box, which the page must never read."""
    root = tmp_path_factory.mktemp("inspect")
    fabricated = fabricate_run(
        root / "artifacts", good_models={REAL_MODEL: 2.0, NO_FILE_MODEL: 1.0}, image_side=SIDE
    )
    dataset = root / "dataset"
    dataset.mkdir()
    (dataset / "boxes.csv").write_text(
        "image,label,x_min,y_min,x_max,y_max\n" + f"{BOXED},glioma,0.6,0.6,0.9,0.9\n", encoding="utf-8"
    )
    manifest = read_manifest(fabricated.run_dir)
    manifest["dataset"]["root"] = str(dataset)
    writer = RunWriter(fabricated.run_dir, manifest)
    # The analysis pass finds each test image's label in the split by its id.
    split = read_split(fabricated.run_dir)
    split.loc[split["split"] == "test", "path"] = fabricated.test_ids
    writer.write_split(split)
    write_boxes(writer, fabricated.test_ids, {BOXED: BOX})
    writer.save_model(REAL_MODEL, create_model(REAL_MODEL, len(CLASS_NAMES), input_size=SIDE))
    writer.set_model_status(
        REAL_MODEL, STATUS_DONE, preprocessing="rescale", last_conv_layer="last_conv", input_size=SIDE
    )
    writer.set_model_status(NO_FILE_MODEL, STATUS_DONE, preprocessing="rescale", input_size=SIDE)
    analyze_run(fabricated.run_dir, methods=["gradcam"], models=[REAL_MODEL], measure_method=None, progress=None)
    return fabricated


@pytest.fixture(autouse=True)
def no_dataset_boxes(monkeypatch):
    """The page reads the boxes the run stored, never a dataset's boxes.csv."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("the dashboard read a dataset's boxes.csv")

    monkeypatch.setattr("bt_core.data.boxes.read_boxes", refuse)


@pytest.fixture
def open_inspect(monkeypatch, inspect_run):
    """Open the app on the run, set query params / session state, then go to Inspect."""

    def open_inspect(query: dict[str, str] | None = None, state: dict | None = None) -> AppTest:
        monkeypatch.setattr("sys.argv", [str(APP)])
        monkeypatch.setenv(ARTIFACTS_ENV, str(inspect_run.run_dir.parent))
        app = AppTest.from_file(APP, default_timeout=60).run()
        assert not app.exception, [e.message for e in app.exception]
        for key, value in (state or {}).items():
            app.session_state[key] = value
        app.query_params.update(query or {})
        return run_page(app.switch_page(INSPECT_PAGE))

    return open_inspect


def run_page(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def image_captions(app: AppTest) -> list[str]:
    return [image.proto.imgs[0].caption for image in app.get("image")]


def shown_image_id(app: AppTest) -> str:
    return image_captions(app)[0].split(" · ")[0]


def test_every_method_has_a_label():
    assert list(common.METHOD_LABELS) == list_methods()


def test_page_shows_one_column_per_model_with_the_map_source(open_inspect, inspect_run):
    app = open_inspect()
    assert app.title[0].value == "Inspect"
    headers = [markdown.value for markdown in app.markdown]
    assert "**Input**" in headers and f"**{REAL_MODEL}**" in headers and f"**{NO_FILE_MODEL}**" in headers
    assert app.multiselect(key="inspect_models").value == [REAL_MODEL, NO_FILE_MODEL]  # the usable ones
    first = inspect_run.test_ids[0]
    assert shown_image_id(app) == first and app.query_params["image"] == first
    assert app.session_state[inspect_view.SELECTED_IMAGE_KEY] == first

    captions = image_captions(app)
    assert len(captions) == 2  # the input and simple_cnn's overlay; custom_cnn has no model file
    predicted = inspect_run.predictions[REAL_MODEL].set_index("id").loc[first, "pred"]
    assert captions[1] == f"Grad-CAM of {predicted} · precomputed"
    assert any(NO_FILE_MODEL in warning.value and "missing" in warning.value for warning in app.warning)
    assert len(app.get("plotly_chart")) == 2  # every model's probabilities, even without a map
    badges = [markdown.value for markdown in app.markdown if "badge" in markdown.value]
    assert len(badges) == 2
    _maps, ids, _classes = load_maps(inspect_run.run_dir, REAL_MODEL, "gradcam")
    assert list(ids) == inspect_run.test_ids  # the precomputed file the caption names


def test_live_maps_for_another_method_class_or_when_forced(open_inspect, inspect_run):
    app = open_inspect()
    app.toggle(key="inspect_live").set_value(True)
    run_page(app)
    assert image_captions(app)[1].endswith("· live")

    app.toggle(key="inspect_live").set_value(False)
    app.selectbox(key="inspect_method").select("layercam")
    run_page(app)
    assert image_captions(app)[1].startswith("LayerCAM of ") and image_captions(app)[1].endswith("· live")

    app.selectbox(key="inspect_method").select("gradcam")
    app.selectbox(key="inspect_target").select("pituitary")
    run_page(app)
    first = inspect_run.test_ids[0]
    predicted = inspect_run.predictions[REAL_MODEL].set_index("id").loc[first, "pred"]
    expected_source = "precomputed" if predicted == "pituitary" else "live"
    assert image_captions(app)[1] == f"Grad-CAM of pituitary · {expected_source}"


def test_an_image_id_in_the_url_opens_that_image_with_its_box(open_inspect, inspect_run):
    wanted = inspect_run.test_ids[5]
    app = open_inspect(query={"image": wanted})
    assert shown_image_id(app) == wanted
    assert app.selectbox(key="inspect_image").value == wanted
    assert any("No tumor box for this image." in caption.value for caption in app.caption)

    app = open_inspect(query={"image": BOXED})
    assert shown_image_id(app) == BOXED
    assert any("Green: the stored tumor box" in caption.value for caption in app.caption)


def test_shares_are_the_stored_ones_for_a_stored_map_and_measured_for_a_live_one(open_inspect, inspect_run):
    from bt_core.artifacts import load_map_shares, load_run, load_test_images
    from bt_core.explain import explain_spec

    app = open_inspect(query={"image": BOXED})
    assert image_captions(app)[1].endswith("· precomputed")
    stored = pictures_view.stored_shares(load_map_shares(inspect_run.run_dir, REAL_MODEL, "gradcam"), BOXED)
    assert np.isfinite(stored["in_box"]) and np.isfinite(stored["outside_head"])
    captions = [caption.value for caption in app.caption]
    assert pictures_view.shares_caption(stored) in captions

    app.toggle(key="inspect_live").set_value(True)
    run_page(app)
    assert image_captions(app)[1].endswith("· live")
    run = load_run(inspect_run.run_dir)
    images, ids = load_test_images(inspect_run.run_dir)
    position = list(ids).index(BOXED)
    predicted = CLASS_NAMES.index(inspect_run.predictions[REAL_MODEL].set_index("id").loc[BOXED, "pred"])
    model = keras.saving.load_model(run.models[REAL_MODEL].model_path, compile=False)
    cam = explain_spec(model, run.entry(REAL_MODEL).spec, images[position : position + 1], "gradcam",
                       class_index=predicted)[0]
    outlines = pictures_view.stored_outlines(run.test_boxes(), run.test_heads(), position)
    assert outlines.box == BOX
    live = pictures_view.live_shares(cam, outlines, SIDE)
    assert pictures_view.shares_caption(live) in [caption.value for caption in app.caption]


def test_the_remembered_image_reopens_and_an_unknown_id_is_reported(open_inspect, inspect_run):
    remembered = inspect_run.test_ids[7]
    app = open_inspect(state={inspect_view.SELECTED_IMAGE_KEY: remembered})
    assert shown_image_id(app) == remembered

    app = open_inspect(query={"image": "no/such.png"})
    assert any("no/such.png" in warning.value for warning in app.warning)
    assert shown_image_id(app) == inspect_run.test_ids[0]


def test_previous_and_next_buttons_wrap_and_update_the_url(open_inspect, inspect_run):
    ids = inspect_run.test_ids
    app = open_inspect()
    app.button(key="inspect_next").click()
    run_page(app)
    assert shown_image_id(app) == ids[1] and app.query_params["image"] == ids[1]
    app.button(key="inspect_previous").click()
    run_page(app)
    app.button(key="inspect_previous").click()
    run_page(app)
    assert shown_image_id(app) == ids[-1] and app.query_params["image"] == ids[-1]


def test_filters_list_only_the_matching_images(open_inspect):
    app = open_inspect()
    app.selectbox(key="inspect_filter").select(inspect_view.CONFIDENT_ERRORS)
    run_page(app)
    options = app.selectbox(key="inspect_image").options
    assert options and shown_image_id(app) == options[0].split(" · ")[0]
    app.selectbox(key="inspect_class").select("notumor")
    app.selectbox(key="inspect_filter").select(inspect_view.ALL_IMAGES)
    run_page(app)
    assert all(" · notumor" in option for option in app.selectbox(key="inspect_image").options)


def test_an_uploaded_image_is_predicted_and_explained_live(open_inspect):
    app = open_inspect()
    app.radio(key="inspect_source").set_value("Upload")
    run_page(app)
    gray = np.zeros((100, 80), np.uint8)
    cv2.circle(gray, (40, 50), 30, 160, -1)
    ok, encoded = cv2.imencode(".png", gray)
    assert ok
    app.get("file_uploader")[0].set_value(("scan.png", encoded.tobytes(), "image/png"))
    run_page(app)
    captions = image_captions(app)
    assert captions[0] == "scan.png · no label"
    assert captions[1].startswith("Grad-CAM of ") and captions[1].endswith("· live")
    assert any(NO_FILE_MODEL in warning.value for warning in app.warning)
    texts = [caption.value for caption in app.caption]
    assert "No outlines: an upload has no stored tumor box or head mask." in texts
    shares = [text for text in texts if "in the border band" in text]
    assert shares and not any("outside the head" in text or "tumor box" in text for text in shares)

    app.get("file_uploader")[0].set_value(("notes.png", b"not an image at all", "image/png"))
    run_page(app)
    assert any("notes.png" in error.value for error in app.error)


def test_confusion_page_links_the_cells_images_to_inspect(open_inspect, inspect_run):
    app = open_inspect()
    app.switch_page(CONFUSION_PAGE)
    run_page(app)
    predictions = inspect_run.predictions[REAL_MODEL]
    wrong = predictions[predictions["label"] != predictions["pred"]].iloc[0]
    app.selectbox(key="confusion_cell_model").select(REAL_MODEL)
    run_page(app)
    app.selectbox(key="confusion_cell").select((wrong["label"], wrong["pred"]))
    run_page(app)
    app.selectbox(key="confusion_inspect_image").select(wrong["id"])
    run_page(app)
    links = [link for link in app.get("page_link") if link.proto.page.endswith("inspect")]
    assert len(links) == 1
    assert parse_qs(links[0].proto.query_string) == {"image": [wrong["id"]]}


def test_picking_another_run_keeps_the_page_working(monkeypatch, inspect_run, tmp_path):
    import shutil

    from fabricate import fabricate_zoo_run

    artifacts = tmp_path / "artifacts"
    shutil.copytree(inspect_run.run_dir, artifacts / inspect_run.run_dir.name)
    zoo = fabricate_zoo_run(artifacts)  # newer: the picker opens it first
    monkeypatch.setattr("sys.argv", [str(APP)])
    monkeypatch.setenv(ARTIFACTS_ENV, str(artifacts))
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.switch_page(INSPECT_PAGE)
    run_page(app)
    assert app.multiselect(key="inspect_models").value == zoo.good_models[:4]
    app.selectbox(key="inspect_target").select("pituitary")
    run_page(app)
    app.sidebar.selectbox[0].select(str(artifacts / inspect_run.run_dir.name))
    run_page(app)
    # The chosen models of the zoo run that this run has too.
    assert app.multiselect(key="inspect_models").value == [REAL_MODEL, NO_FILE_MODEL]
    assert image_captions(app)[1] == "Grad-CAM of pituitary · " + (
        "precomputed"
        if inspect_run.predictions[REAL_MODEL].set_index("id").loc[inspect_run.test_ids[0], "pred"] == "pituitary"
        else "live"
    )


def test_switching_runs_keeps_the_models_the_new_run_has_else_all(monkeypatch, tmp_path):
    """The model picker after a run switch: the chosen models the new run has, else all of
    the new run's models, never an empty picker (a first visit: the first four)."""
    from fabricate import GOOD_MODELS, fabricate_zoo_run

    artifacts = tmp_path / "artifacts"
    other = fabricate_run(artifacts, image_side=SIDE)  # small_cnn, mobilenet_v2, efficientnet_b0
    zoo = fabricate_zoo_run(artifacts)  # newer, opened first; shares mobilenet_v2 and efficientnet_b0
    monkeypatch.setattr("sys.argv", [str(APP)])
    monkeypatch.setenv(ARTIFACTS_ENV, str(artifacts))
    app = run_page(AppTest.from_file(APP, default_timeout=60).run().switch_page(INSPECT_PAGE))
    picker = lambda: app.multiselect(key="inspect_models")  # noqa: E731
    assert picker().value == zoo.good_models[:4]

    picker().set_value(["simple_cnn"])  # a model the other run lacks
    run_page(app)
    app.sidebar.selectbox[0].select(str(other.run_dir))
    run_page(app)
    assert picker().options == list(GOOD_MODELS) and picker().value == list(GOOD_MODELS)
    assert "Choose at least one model." not in [info.value for info in app.info]
    assert app.query_params["models"] == ",".join(GOOD_MODELS)

    picker().set_value(["mobilenet_v2", "small_cnn"])  # one shared, one not
    run_page(app)
    app.sidebar.selectbox[0].select(str(zoo.run_dir))
    run_page(app)
    assert picker().value == ["mobilenet_v2"]

    app.sidebar.selectbox[0].select(str(other.run_dir))
    run_page(app)
    picker().set_value(["small_cnn"])  # a model the zoo run lacks: back there, all its models
    run_page(app)
    app.sidebar.selectbox[0].select(str(zoo.run_dir))
    run_page(app)
    assert len(zoo.good_models) > 4 and picker().value == list(zoo.good_models)

    picker().set_value([])  # cleared by the user: stays cleared, and the page says what to do
    run_page(app)
    assert picker().value == [] and "Choose at least one model." in [info.value for info in app.info]


# --------------------------------------------------------------------------- fragments


def counting(monkeypatch, module, name: str) -> list:
    """Count the calls of ``module.name`` (still calling it); returns the list of calls."""
    calls, original = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def rerun_fragment(app: AppTest, key: str) -> AppTest:
    """Rerun the fragment keyed ``key`` alone, as the browser does when a widget inside it
    changed (AppTest's run() always reruns the whole script). AppTest also makes a new
    PagesManager per run, so a fragment's run would know no page (page links fail); the
    server keeps its pages across runs: so does this run."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import RerunData
    from streamlit.testing.v1 import local_script_runner

    fragment_ids = list(app._fragment_storage._ids_by_target_key[key])
    pages = app._registered_pages
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_script_runner, "RerunData", partial(RerunData, fragment_id_queue=fragment_ids))
        patch.setattr(PagesManager, "get_pages", lambda _self: pages)
        return run_page(app)


def test_display_controls_redraw_the_pictures_without_rerunning_the_page(open_inspect, monkeypatch):
    app = open_inspect(query={"image": BOXED})
    overlays = counting(monkeypatch, pictures_view, "compose_overlay")
    overviews = counting(monkeypatch, inspect_view, "image_overview")  # the page's own work
    runs = app.session_state["inspect_picture_runs"]
    input_url, overlay_url = (image.proto.imgs[0].url for image in app.get("image")[:2])

    app.selectbox(key="inspect_colormap").select("viridis")
    rerun_fragment(app, "inspect_pictures")
    assert overviews == [] and app.session_state["inspect_picture_runs"] == runs + 1
    assert [call[2] for call in overlays] == ["viridis"]  # the colour map reached the overlay
    assert not app.title  # only the fragment was drawn again, not the page
    assert app.get("image")[1].proto.imgs[0].url != overlay_url

    app.slider(key="inspect_alpha").set_value(0.9)
    rerun_fragment(app, "inspect_pictures")
    assert overlays[-1][3] == pytest.approx(0.9) and overviews == []

    app.toggle(key="inspect_outlines").set_value(False)
    rerun_fragment(app, "inspect_pictures")
    assert overviews == [] and app.get("image")[0].proto.imgs[0].url != input_url  # the box is gone

    run_page(app)  # a whole run (what the page's other controls cause) does the page's work
    assert len(overviews) == 1 and app.title[0].value == "Inspect"
    assert app.selectbox(key="inspect_colormap").value == "viridis" and overlays[-1][2] == "viridis"


def test_choosing_a_confusion_cell_reruns_the_explorer_only(open_inspect, inspect_run, monkeypatch):
    from bt_dashboard.views import confusion as confusion_view

    app = open_inspect()
    app.switch_page(CONFUSION_PAGE)
    run_page(app)
    matrices = counting(monkeypatch, confusion_view, "confusion_figure")  # the page's own work
    predictions = inspect_run.predictions[REAL_MODEL]
    wrong = predictions[predictions["label"] != predictions["pred"]].iloc[0]
    expected = predictions[(predictions["label"] == wrong["label"]) & (predictions["pred"] == wrong["pred"])]

    app.selectbox(key="confusion_cell_model").select(REAL_MODEL)
    rerun_fragment(app, "confusion_cell_explorer")
    app.selectbox(key="confusion_cell").select((wrong["label"], wrong["pred"]))
    rerun_fragment(app, "confusion_cell_explorer")
    assert matrices == [] and not app.title
    assert [caption for image in app.get("image") for caption in
            (picture.caption for picture in image.proto.imgs)][0].startswith(f"true {wrong['label']} ")
    table = next(frame.value for frame in app.dataframe if "id" in frame.value.columns)
    assert list(table["id"]) == list(expected["id"])

    run_page(app)  # a whole run (a control outside the explorer) draws the matrices again
    assert len(matrices) == len(inspect_run.good_models) and app.title[0].value == "Confusion matrices"
    assert app.selectbox(key="confusion_cell").value == (wrong["label"], wrong["pred"])


# --------------------------------------------------------------------------- a crop_head run, dataset moved away

CROP_BOX = (0.1, 0.55, 0.45, 0.9)  # in the cropped frame, where boxes.csv's box would not be
CROP_SHARES = {"outside_head": 0.123, "border": 0.456, "in_box": 0.789}
CROP_SHARES_CAPTION = "79% of the map in the tumor box · 12% outside the head · 46% in the border band"


@pytest.fixture(scope="module")
def crop_head_run(tmp_path_factory):
    """A crop_head run whose dataset folder is gone, with stored boxes, head masks and the
    precomputed maps (and their shares) of custom_cnn, which has no model file: the page
    can only show what is stored."""
    root = tmp_path_factory.mktemp("crop-head")
    fabricated = fabricate_run(root / "artifacts", good_models={NO_FILE_MODEL: 2.0}, image_side=SIDE)
    manifest = read_manifest(fabricated.run_dir)
    manifest["preprocess"] = ["crop_head"]
    manifest["dataset"]["root"] = str(root / "moved-away")  # not on this machine
    writer = RunWriter(fabricated.run_dir, manifest)
    writer.set_model_status(NO_FILE_MODEL, STATUS_DONE, preprocessing="rescale", input_size=SIDE)
    ids = fabricated.test_ids
    write_boxes(writer, ids, {BOXED: CROP_BOX})
    heads = np.zeros((len(ids), SIDE, SIDE), bool)
    heads[:, 4:28, 6:26] = True
    write_test_heads(fabricated.run_dir, heads, ids)
    predicted = fabricated.predictions[NO_FILE_MODEL].set_index("id").loc[ids, "pred"]
    classes = np.array([CLASS_NAMES.index(name) for name in predicted])
    maps = np.full((len(ids), 8, 8), 0.5, np.float32)  # uniform: measured now, its shares would differ
    shares = {name: np.full(len(ids), value) for name, value in CROP_SHARES.items()}
    shares["in_box"][1:] = np.nan  # only BOXED (the first) has a box
    write_maps(fabricated.run_dir, NO_FILE_MODEL, "gradcam", maps, ids, classes, shares=shares)
    return fabricated, heads


def test_a_crop_head_run_without_its_dataset_shows_the_stored_box_head_and_shares(
    monkeypatch, crop_head_run
):
    fabricated, heads = crop_head_run
    assert not Path(read_manifest(fabricated.run_dir)["dataset"]["root"]).exists()
    drawn: list[tuple[np.ndarray, np.ndarray]] = []
    outlined_image = pictures_view.outlined_image

    def spy(image, box=None, head=None):
        picture = outlined_image(image, box, head)
        drawn.append((np.asarray(image), picture))
        return picture

    monkeypatch.setattr(pictures_view, "outlined_image", spy)
    monkeypatch.setattr("sys.argv", [str(APP)])
    monkeypatch.setenv(ARTIFACTS_ENV, str(fabricated.run_dir.parent))
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.query_params["image"] = BOXED
    app = run_page(app.switch_page(INSPECT_PAGE))

    assert shown_image_id(app) == BOXED and image_captions(app)[1].endswith("· precomputed")
    captions = [caption.value for caption in app.caption]
    assert CROP_SHARES_CAPTION in captions
    assert "Green: the stored tumor box (test_boxes.csv). White: the stored head outline (test_heads.npz)." in captions
    assert len(drawn) == 2  # the input, then custom_cnn's overlay
    for before, after in drawn:
        side = after.shape[0]
        col_start, row_start, col_stop, row_stop = box_pixel_bounds(CROP_BOX, side, side)
        rows, cols = np.nonzero((after == pictures_view.BOX_COLOR).all(axis=-1))
        # A 2 px line on the outermost pixels the stored box covers, one past them each side.
        assert (cols.min(), rows.min(), cols.max(), rows.max()) == (col_start - 1, row_start - 1, col_stop, row_stop)
        white = (after != before).any(axis=-1) & (after == pictures_view.HEAD_COLOR).all(axis=-1)
        rows, cols = np.nonzero(white)
        scale = side // SIDE  # the stored 32 px head mask, resized NEAREST to display size
        assert (rows.min(), cols.min(), rows.max(), cols.max()) == (4 * scale, 6 * scale, 28 * scale - 1,
                                                                    26 * scale - 1)


def test_a_run_without_head_masks_draws_no_head_outline_and_says_so(monkeypatch, crop_head_run, tmp_path):
    import shutil

    fabricated, _heads = crop_head_run
    run_dir = tmp_path / "artifacts" / fabricated.run_dir.name
    shutil.copytree(fabricated.run_dir, run_dir)
    layout.heads_path(run_dir).unlink()
    monkeypatch.setattr("sys.argv", [str(APP)])
    monkeypatch.setenv(ARTIFACTS_ENV, str(run_dir.parent))
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.query_params["image"] = BOXED
    app = run_page(app.switch_page(INSPECT_PAGE))
    captions = [caption.value for caption in app.caption]
    assert any("No head outline: the run has no stored head masks" in caption for caption in captions)
    assert CROP_SHARES_CAPTION in captions  # the stored shares do not need the masks
    assert "No tumor box" not in " ".join(captions)
