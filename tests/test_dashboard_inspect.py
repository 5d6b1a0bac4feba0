"""The Inspect page, run headless with Streamlit's AppTest on a fabricated run whose
``simple_cnn`` is a real (tiny, random) Keras model, so live maps are computed for real.

``simple_cnn`` also has precomputed Grad-CAM maps; ``custom_cnn`` has predictions but no
model file (its map cannot be computed); ``vit_tiny`` is corrupt and ``resnet50`` failed.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import STATUS_DONE, RunWriter, load_maps, read_manifest
from bt_core.explain import list_methods
from bt_core.explain.precompute import precompute_run_maps
from bt_core.models import create_model
from dashboard import inspect_tables as it
from dashboard.settings import ARTIFACTS_ENV
from fabricate import CLASS_NAMES, fabricate_run

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
INSPECT_PAGE = "app_pages/inspect.py"
CONFUSION_PAGE = "app_pages/confusion.py"
REAL_MODEL, NO_FILE_MODEL = "simple_cnn", "custom_cnn"
SIDE = 32
BOXED = "test_0000"  # the one test image with a tumor box in the dataset's boxes.csv
BOX = (0.25, 0.25, 0.5, 0.5)


@pytest.fixture(scope="module")
def inspect_run(tmp_path_factory):
    """(fabricated run, test ids) with a real simple_cnn and its precomputed Grad-CAM."""
    root = tmp_path_factory.mktemp("inspect")
    fabricated = fabricate_run(
        root / "artifacts", good_models={REAL_MODEL: 2.0, NO_FILE_MODEL: 1.0}, image_side=SIDE
    )
    dataset = root / "dataset"
    dataset.mkdir()
    (dataset / "boxes.csv").write_text(
        "image,label,x_min,y_min,x_max,y_max\n" + f"{BOXED},glioma," + ",".join(map(str, BOX)) + "\n",
        encoding="utf-8",
    )
    manifest = read_manifest(fabricated.run_dir)
    manifest["dataset"]["root"] = str(dataset)
    writer = RunWriter(fabricated.run_dir, manifest)
    writer.save_model(REAL_MODEL, create_model(REAL_MODEL, len(CLASS_NAMES), input_size=SIDE))
    writer.set_model_status(
        REAL_MODEL, STATUS_DONE, preprocessing="rescale", last_conv_layer="last_conv", input_size=SIDE
    )
    writer.set_model_status(NO_FILE_MODEL, STATUS_DONE, preprocessing="rescale", input_size=SIDE)
    precompute_run_maps(fabricated.run_dir, methods=["gradcam"], models=[REAL_MODEL], progress=None)
    return fabricated


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
    assert list(it.METHOD_LABELS) == list_methods()


def test_page_shows_one_column_per_model_with_the_map_source(open_inspect, inspect_run):
    app = open_inspect()
    assert app.title[0].value == "Inspect"
    headers = [markdown.value for markdown in app.markdown]
    assert "**Input**" in headers and f"**{REAL_MODEL}**" in headers and f"**{NO_FILE_MODEL}**" in headers
    assert app.multiselect(key="inspect_models").value == [REAL_MODEL, NO_FILE_MODEL]  # the usable ones
    first = inspect_run.test_ids[0]
    assert shown_image_id(app) == first and app.query_params["image"] == first
    assert app.session_state[it.SELECTED_IMAGE_KEY] == first

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

    app = open_inspect(query={"image": BOXED})
    assert shown_image_id(app) == BOXED
    assert any("tumor box" in caption.value for caption in app.caption)


def test_the_remembered_image_reopens_and_an_unknown_id_is_reported(open_inspect, inspect_run):
    remembered = inspect_run.test_ids[7]
    app = open_inspect(state={it.SELECTED_IMAGE_KEY: remembered})
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
    app.selectbox(key="inspect_filter").select(it.CONFIDENT_ERRORS)
    run_page(app)
    options = app.selectbox(key="inspect_image").options
    assert options and shown_image_id(app) == options[0].split(" · ")[0]
    app.selectbox(key="inspect_class").select("notumor")
    app.selectbox(key="inspect_filter").select(it.ALL_IMAGES)
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
