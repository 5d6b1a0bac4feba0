"""Inspect page: one test image (or an upload) through the chosen models side by side.

Each model's column shows where it looked (an explanation map over the image, with the
tumor box and the head outline), what it predicted and whether that was right, so a model
that reads scanner text, the skull or the border instead of the tumor stands out.

Maps come from the run's precomputed files when they hold the asked-for class (instant),
else they are computed live with the model, which is loaded only here and only for the
chosen models. ``?image=<test id>`` opens an image (the Confusion page links here so);
``?models=a,b&method=m`` choose the models and method (``bt_dashboard.query_state``), and the
page writes its choices back into the URL.

The display controls (colour map, opacity, outlines) and the pictures they change are a
fragment (``st.fragment``): changing one redraws the pictures only, not the page (the model
data, the image filters, the probability charts).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import streamlit as st

from bt_core.artifacts import ArtifactError, Run
from bt_core.metrics.run_comparison import ModelData
from bt_core.explain.overlay import COLORMAPS
from bt_dashboard import loaders, presentation, query_state
from bt_dashboard.run_picker import open_run_models
from bt_dashboard.widget_state import drop_stale_choice
from bt_dashboard.views import common
from bt_dashboard.views import deep_links as links
from bt_dashboard.views import inspect as view
from bt_dashboard.views import inspect_pictures as pictures
from bt_dashboard.views.inspect import Display

MODELS_KEY = query_state.MODELS_KEY
METHOD_KEY = query_state.METHOD_KEY
TARGET_KEY = "inspect_target"
COLORMAP_KEY = "inspect_colormap"
ALPHA_KEY = "inspect_alpha"
LIVE_KEY = "inspect_live"
OUTLINES_KEY = "inspect_outlines"
SOURCE_KEY = "inspect_source"
CLASS_KEY = "inspect_class"
FILTER_KEY = "inspect_filter"
IMAGE_KEY = "inspect_image"
UPLOAD_KEY = "inspect_upload"
# How often the pictures' fragment ran: a display control reruns it alone.
PICTURE_RUNS_KEY = "inspect_picture_runs"
PICTURES_FRAGMENT = "inspect_pictures"

TEST_SET = "Test image"
UPLOAD = "Upload"
DEFAULT_MODEL_COUNT = 4
Loaded = TypeVar("Loaded")
MapCompute = Callable[[int], tuple[np.ndarray, str]]


@dataclass(frozen=True)
class Panel:
    """One model's column: its probabilities and how to get its map of a class; both None
    when the model could not predict, which ``problem`` explains."""

    name: str
    probabilities: np.ndarray | None
    compute: MapCompute | None
    problem: str | None = None


def _live_errors() -> tuple[type[BaseException], ...]:
    """What a live explanation may raise: bad files or settings, and TensorFlow's own
    errors (out of memory), whose type exists only once TensorFlow is imported."""
    errors: tuple[type[BaseException], ...] = (ArtifactError, ValueError, TypeError, RuntimeError, MemoryError)
    tensorflow = sys.modules.get("tensorflow")
    errors_module = getattr(tensorflow, "errors", None)
    return errors + ((errors_module.OpError,) if errors_module is not None else ())


def read_or_caption(load: Callable[[], Loaded], problem: str) -> Loaded | None:
    """``load()``, or None after a caption saying ``problem``: an unreadable stored file
    costs only what it shows (an outline, the stored shares), never the page."""
    try:
        return load()
    except ArtifactError as exc:
        st.caption(f"{problem}: {exc}")
        return None


# --------------------------------------------------------------------------- controls


def render_controls(run: Run, names: list[str]) -> Display:
    """The controls that change what is computed (models, method, class, live); the display
    controls are the pictures' fragment's (``render_display_controls``)."""
    targets = [view.TARGET_PREDICTED, view.TARGET_TRUE, *run.class_names]
    chosen_before = MODELS_KEY in st.session_state
    drop_stale_choice(MODELS_KEY, names)
    drop_stale_choice(TARGET_KEY, targets)
    # Seeded through the state, not default=: the state is also trimmed above. A new run that
    # has none of the chosen models shows all of its own; a first visit, the first few.
    switched_to_none = chosen_before and MODELS_KEY not in st.session_state
    st.session_state.setdefault(MODELS_KEY, names if switched_to_none else names[:DEFAULT_MODEL_COUNT])
    with presentation.controls():
        models = st.multiselect(
            "Models", names, key=MODELS_KEY,
            help="One column per model. Models are loaded only when a map must be computed live.",
        )
        method_column, target_column, toggle_column = st.columns([2, 2, 2])
        method = method_column.selectbox(
            "Method", list(common.METHOD_LABELS), format_func=common.METHOD_LABELS.get, key=METHOD_KEY
        )
        target = target_column.selectbox(
            "Explain", targets, format_func=view.target_label,
            key=TARGET_KEY, help="The class whose evidence the map shows.",
        )
        live = toggle_column.toggle(
            "Always compute live", key=LIVE_KEY,
            help=f"Ignore the run's precomputed maps ({pictures.EXPLAIN_COMMAND}).",
        )
    query_state.write_models(models)
    query_state.write(links.METHOD, method)
    return Display(list(models), method, target, live=bool(live))


def render_display_controls(display: Display) -> Display:
    """Colour map, opacity and outlines: they change only the pictures."""
    with presentation.controls("Display"):
        colormap_column, alpha_column, outline_column = st.columns([1.4, 2, 2])
        colormap = colormap_column.selectbox("Colormap", list(COLORMAPS), key=COLORMAP_KEY)
        alpha = alpha_column.slider("Map opacity", 0.0, 1.0, 0.45, 0.05, key=ALPHA_KEY)
        outlines = outline_column.toggle(
            "Box and head outline", value=True, key=OUTLINES_KEY,
            help="Green: the tumor box the run stored (test_boxes.csv). "
            "White: the head mask the analysis pass measured with (test_heads.npz).",
        )
    return replace(display, colormap=colormap, alpha=float(alpha), outlines=bool(outlines))


def adopt_requested_image(ids: np.ndarray) -> None:
    """Open the image a link asked for (``?image=``): reset the filters so it is listed."""
    requested = query_state.requested(links.IMAGE)
    if requested is None:
        return
    if requested not in set(np.asarray(ids, dtype=str)):
        st.warning(f"Image `{requested}` is not in this run's test set.")
        return
    st.session_state[IMAGE_KEY] = requested
    st.session_state[view.SELECTED_IMAGE_KEY] = requested
    st.session_state[CLASS_KEY] = view.ALL_CLASSES
    st.session_state[FILTER_KEY] = view.ALL_IMAGES
    st.session_state[SOURCE_KEY] = TEST_SET


def step(candidates: list[str], offset: int) -> None:
    """Previous / next button callback."""
    st.session_state[IMAGE_KEY] = view.step_image(candidates, st.session_state.get(IMAGE_KEY), offset)


def remember(image_id: str) -> None:
    """Keep the image for the next visit and in the URL, so the tab can be reloaded or shared."""
    st.session_state[view.SELECTED_IMAGE_KEY] = image_id
    query_state.write(links.IMAGE, image_id)


def choose_image(run: Run, overview) -> str | None:
    drop_stale_choice(CLASS_KEY, [view.ALL_CLASSES, *run.class_names])
    class_column, filter_column = st.columns(2)
    class_name = class_column.selectbox("True class", [view.ALL_CLASSES, *run.class_names], key=CLASS_KEY)
    mode = filter_column.selectbox(
        "Show", view.FILTER_MODES, key=FILTER_KEY,
        help="Over the chosen models. Most confident errors: sorted by the probability of the wrong prediction.",
    )
    candidates = view.filter_image_ids(overview, class_name, mode)
    if not candidates:
        st.info("No test image matches these filters.")
        return None
    if st.session_state.get(IMAGE_KEY) not in candidates:
        remembered = st.session_state.get(view.SELECTED_IMAGE_KEY)
        st.session_state[IMAGE_KEY] = remembered if remembered in candidates else candidates[0]
    captions = {row["id"]: view.image_caption(row) for row in overview.to_dict("records")}
    back, pick, forward = st.columns([1, 10, 1], vertical_alignment="bottom")
    back.button("◀", key="inspect_previous", on_click=step, args=(candidates, -1), help="Previous image",
                width="stretch")
    image_id = pick.selectbox(
        f"Image ({len(candidates)} of {len(overview)})", candidates, format_func=captions.get, key=IMAGE_KEY
    )
    forward.button("▶", key="inspect_next", on_click=step, args=(candidates, 1), help="Next image", width="stretch")
    remember(image_id)
    return image_id


# --------------------------------------------------------------------------- columns


def show_input(picture: pictures.Picture, caption: str) -> None:
    st.markdown("**Input**")
    st.image(pictures.outlined_image(picture.image, picture.box, picture.head), caption=caption, width="stretch")
    if pictures.outline_caption(picture):
        st.caption(pictures.outline_caption(picture))


def show_badge(predicted: int, true: int | None, class_names: list[str]) -> None:
    if true is None:
        st.badge(f"predicts {class_names[predicted]}", color="blue")
    elif predicted == true:
        st.badge(f"right: {class_names[predicted]}", icon=":material/check:", color="green")
    else:
        st.badge(f"wrong: {class_names[predicted]}", icon=":material/close:", color="red")


def test_image_map(run: Run, name: str, display: Display, image_id: str, class_index: int):
    """The map of a test image and its source (precomputed, else computed now)."""
    stored = None if display.live else read_or_caption(
        lambda: loaders.load_precomputed_maps(run.directory, name, display.method),
        "Precomputed maps unreadable, computing live")

    def compute_live() -> np.ndarray:
        with st.spinner(view.live_map_message(common.METHOD_LABELS[display.method], display.method, name)):
            return loaders.live_test_map(run.directory, name, display.method, image_id, class_index)

    return view.test_image_map(stored, image_id, class_index, display.live, compute_live)


def show_map(run: Run, name: str, display: Display, picture: pictures.Picture, class_index: int, compute,
             image_id: str | None) -> None:
    """Overlay of the map ``compute()`` returns, with its source and where its mass lies."""
    try:
        cam, source = compute()
    except _live_errors() as exc:
        st.warning(f"No map for {name}: {type(exc).__name__}: {exc}")
        return
    label = common.METHOD_LABELS[display.method]
    st.image(
        pictures.compose_overlay(picture.image, cam, display.colormap, display.alpha, picture.box, picture.head),
        caption=f"{label} of {run.class_names[class_index]} · {source}",
        width="stretch",
    )
    shares = None
    if source == view.SOURCE_PRECOMPUTED and image_id is not None:
        shares = read_or_caption(lambda: loaders.load_map_shares(run.directory, name, display.method),
                                 "Stored shares unreadable")
    caption = pictures.shares_caption(view.map_shares(shares, picture, cam, source, image_id))
    if caption:
        st.caption(caption)


def show_model_column(
    run: Run, panel: Panel, display: Display, picture: pictures.Picture, true: int | None, image_id: str | None
) -> None:
    st.markdown(f"**{panel.name}**")
    if panel.problem is not None:
        st.warning(panel.problem)
        return
    predicted = int(np.asarray(panel.probabilities).argmax())
    show_badge(predicted, true, run.class_names)
    class_index = view.target_class_index(display.target, predicted, true, run.class_names)
    show_map(run, panel.name, display, picture, class_index, lambda: panel.compute(class_index), image_id)


@st.fragment(key=PICTURES_FRAGMENT)
def show_pictures(
    run: Run, display: Display, image: np.ndarray, outlines: pictures.StoredOutlines, caption: str,
    true: int | None, panels: list[Panel], image_id: str | None,
) -> None:
    """The display controls and the pictures they change: a fragment, so that changing a
    control reruns this function only."""
    st.session_state[PICTURE_RUNS_KEY] = st.session_state.get(PICTURE_RUNS_KEY, 0) + 1
    display = render_display_controls(display)
    picture = pictures.make_picture(image, outlines, display.outlines)
    columns = st.columns(1 + len(panels))
    with columns[0]:
        show_input(picture, caption)
    for column, panel in zip(columns[1:], panels):
        with column:
            show_model_column(run, panel, display, picture, true, image_id)


def show_probabilities(run: Run, panels: list[Panel], true: int | None) -> None:
    """Each model's probability bars, under its picture (outside the pictures' fragment)."""
    columns = st.columns(1 + len(panels))
    for column, panel in zip(columns[1:], panels):
        if panel.probabilities is None:
            continue
        with column:
            presentation.show_figure(
                view.probability_figure(panel.probabilities, run.class_names, true),
                presentation.file_stem(run.run_id, "inspect", panel.name),
                key=f"inspect_probabilities_{panel.name}",
            )


def show_test_image(
    run: Run, model_data: dict[str, ModelData], ids: np.ndarray, images: np.ndarray, display: Display
) -> None:
    overview = view.image_overview(model_data, run.class_names, display.models)
    image_id = choose_image(run, overview)
    if image_id is None:
        return
    position = int(np.flatnonzero(np.asarray(ids, dtype=str) == image_id)[0])
    boxes = read_or_caption(lambda: loaders.load_test_boxes(run.directory), "Stored tumor boxes unreadable")
    heads = read_or_caption(lambda: loaders.load_test_heads(run.directory), "Stored head masks unusable")
    true = int(next(iter(model_data.values())).y_true[position])
    panels = []
    for name in display.models:
        data = model_data[name]
        row = int(np.flatnonzero(np.asarray(data.ids, dtype=str) == image_id)[0])
        panels.append(Panel(name, np.asarray(data.proba[row]),
                            lambda class_index, name=name: test_image_map(run, name, display, image_id, class_index)))
    show_pictures(run, display, images[position], pictures.stored_outlines(boxes, heads, position),
                  f"{image_id} · true {run.class_names[true]}", true, panels, image_id)
    show_probabilities(run, panels, true)


def upload_panel(run: Run, name: str, display: Display, image: np.ndarray) -> Panel:
    """A model's prediction of an upload, and its live map; the reason when it cannot predict."""
    try:
        probabilities = loaders.upload_probabilities(run.directory, name, image)
    except _live_errors() as exc:
        return Panel(name, None, None, f"{name} cannot predict: {type(exc).__name__}: {exc}")
    return Panel(name, probabilities, lambda class_index: (
        loaders.live_upload_map(run.directory, name, display.method, image, class_index), view.SOURCE_LIVE))


def show_upload(run: Run, display: Display) -> None:
    uploaded = st.file_uploader(
        "An MRI image (JPEG or PNG, grayscale or colour, any size)", type=["jpg", "jpeg", "png"], key=UPLOAD_KEY
    )
    if uploaded is None:
        st.caption("It is decoded, prepared and resized as the run's training images were, then every chosen "
                   "model predicts it and explains its prediction live.")
        return
    try:
        sizes = {name: view.model_input_size(run, name) for name in display.models}
        prepared = view.prepare_uploads(uploaded.getvalue(), sizes.values(), run.image_ops)
    except (ValueError, ArtifactError) as exc:
        st.error(f"`{uploaded.name}` cannot be used: {exc}")
        return
    panels = [upload_panel(run, name, display, prepared[sizes[name]]) for name in display.models]
    show_pictures(run, display, next(iter(prepared.values())), pictures.UPLOAD_OUTLINES,
                  f"{uploaded.name} · no label", None, panels, None)
    show_probabilities(run, panels, None)


def inspect_page() -> None:
    st.title("Inspect")
    opened = open_run_models()
    if opened is None:
        return
    run, model_data = opened
    try:
        images, ids = loaders.load_test_images(run.directory)
    except ArtifactError as exc:
        st.error(f"The test images cannot be read: {exc}")
        return
    adopt_requested_image(ids)
    display = render_controls(run, list(model_data))
    if not display.models:
        st.info("Choose at least one model.")
        return
    source = st.radio("Image", [TEST_SET, UPLOAD], horizontal=True, key=SOURCE_KEY, label_visibility="collapsed")
    if source == UPLOAD:
        show_upload(run, display)
    else:
        show_test_image(run, model_data, ids, images, display)


inspect_page()
