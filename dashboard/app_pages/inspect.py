"""Inspect page: one test image (or an upload) through the chosen models side by side.

Each model's column shows where it looked (an explanation map over the image, with the
tumor box and the head outline), what it predicted and whether that was right, so a model
that reads scanner text, the skull or the border instead of the tumor stands out.

Maps come from the run's precomputed files when they hold the asked-for class (instant),
else they are computed live with the model, which is loaded only here and only for the
chosen models. ``?image=<test id>`` opens an image (the Confusion page links here so).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from bt_core.artifacts import ArtifactError, Run
from bt_core.metrics.run_comparison import ModelData
from bt_core.explain.overlay import COLORMAPS
from dashboard import inspect_tables as it
from dashboard import loaders, presentation
from dashboard.run_picker import open_run_models

MODELS_KEY = "inspect_models"
METHOD_KEY = "inspect_method"
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
# The image id this page last wrote to the URL: a different ?image= came from a link.
URL_IMAGE_KEY = "inspect_url_image"

TEST_SET = "Test image"
UPLOAD = "Upload"
DEFAULT_MODEL_COUNT = 4
SOURCE_PRECOMPUTED = "precomputed"
SOURCE_LIVE = "live"
RIGHT_COLOR, WRONG_COLOR, OTHER_COLOR = "#2ca02c", "#d62728", "#9aa5b1"


@dataclass(frozen=True)
class View:
    """The page's display settings."""

    models: list[str]
    method: str
    target: str
    colormap: str
    alpha: float
    live: bool
    outlines: bool


@dataclass
class Picture:
    """The image every model column draws on, at display size, with its outlines."""

    image: np.ndarray  # uint8 RGB, display size
    head: np.ndarray | None
    box: tuple[float, float, float, float] | None


def _live_errors() -> tuple[type[BaseException], ...]:
    """What a live explanation may raise: bad files or settings, and TensorFlow's own
    errors (out of memory), whose type exists only once TensorFlow is imported."""
    errors: tuple[type[BaseException], ...] = (ArtifactError, ValueError, TypeError, RuntimeError, MemoryError)
    tensorflow = sys.modules.get("tensorflow")
    errors_module = getattr(tensorflow, "errors", None)
    return errors + ((errors_module.OpError,) if errors_module is not None else ())


# --------------------------------------------------------------------------- controls


def drop_stale_choice(key: str, options: list) -> None:
    """Forget a widget's value that the current run does not offer (another run was picked),
    so the widget falls back to its default instead of failing."""
    if key not in st.session_state:
        return
    value = st.session_state[key]
    if isinstance(value, list):
        kept = [item for item in value if item in options]
        if kept != value:
            st.session_state[key] = kept
    elif value not in options:
        del st.session_state[key]


def target_label(target: str) -> str:
    if target == it.TARGET_PREDICTED:
        return "Predicted class"
    if target == it.TARGET_TRUE:
        return "True class"
    return f"Class {target}"


def render_controls(run: Run, names: list[str]) -> View:
    targets = [it.TARGET_PREDICTED, it.TARGET_TRUE, *run.class_names]
    drop_stale_choice(MODELS_KEY, names)
    drop_stale_choice(TARGET_KEY, targets)
    # Seeded through the state, not default=: the state is also trimmed above.
    st.session_state.setdefault(MODELS_KEY, names[:DEFAULT_MODEL_COUNT])
    with presentation.controls():
        models = st.multiselect(
            "Models", names, key=MODELS_KEY,
            help="One column per model. Models are loaded only when a map must be computed live.",
        )
        method_column, target_column, colormap_column, alpha_column, toggle_column = st.columns([2, 2, 1.4, 2, 2])
        method = method_column.selectbox(
            "Method", list(it.METHOD_LABELS), format_func=it.METHOD_LABELS.get, key=METHOD_KEY
        )
        target = target_column.selectbox(
            "Explain", targets, format_func=target_label,
            key=TARGET_KEY, help="The class whose evidence the map shows.",
        )
        colormap = colormap_column.selectbox("Colormap", list(COLORMAPS), key=COLORMAP_KEY)
        alpha = alpha_column.slider("Map opacity", 0.0, 1.0, 0.45, 0.05, key=ALPHA_KEY)
        live = toggle_column.toggle(
            "Always compute live", key=LIVE_KEY,
            help="Ignore the run's precomputed maps (python -m bt_core.explain.precompute RUN_DIR).",
        )
        outlines = toggle_column.toggle(
            "Box and head outline", value=True, key=OUTLINES_KEY,
            help="Green: the tumor box of the dataset's boxes.csv (when the dataset is on this machine). "
            "White: the head, found by thresholding the image.",
        )
    return View(list(models), method, target, colormap, float(alpha), bool(live), bool(outlines))


def adopt_requested_image(ids: np.ndarray) -> None:
    """Open the image a link asked for (``?image=``): reset the filters so it is listed."""
    requested = st.query_params.get(it.IMAGE_QUERY_PARAM)
    if not requested or requested == st.session_state.get(URL_IMAGE_KEY):
        return
    st.session_state[URL_IMAGE_KEY] = requested
    if requested not in set(np.asarray(ids, dtype=str)):
        st.warning(f"Image `{requested}` is not in this run's test set.")
        return
    st.session_state[IMAGE_KEY] = requested
    st.session_state[it.SELECTED_IMAGE_KEY] = requested
    st.session_state[CLASS_KEY] = it.ALL_CLASSES
    st.session_state[FILTER_KEY] = it.ALL_IMAGES
    st.session_state[SOURCE_KEY] = TEST_SET


def step(candidates: list[str], offset: int) -> None:
    """Previous / next button callback."""
    st.session_state[IMAGE_KEY] = it.step_image(candidates, st.session_state.get(IMAGE_KEY), offset)


def remember(image_id: str) -> None:
    """Keep the image for the next visit and in the URL, so the tab can be reloaded or shared."""
    st.session_state[it.SELECTED_IMAGE_KEY] = image_id
    st.session_state[URL_IMAGE_KEY] = image_id
    if st.query_params.get(it.IMAGE_QUERY_PARAM) != image_id:
        st.query_params[it.IMAGE_QUERY_PARAM] = image_id


def choose_image(run: Run, overview) -> str | None:
    drop_stale_choice(CLASS_KEY, [it.ALL_CLASSES, *run.class_names])
    class_column, filter_column = st.columns(2)
    class_name = class_column.selectbox("True class", [it.ALL_CLASSES, *run.class_names], key=CLASS_KEY)
    mode = filter_column.selectbox(
        "Show", it.FILTER_MODES, key=FILTER_KEY,
        help="Over the chosen models. Most confident errors: sorted by the probability of the wrong prediction.",
    )
    candidates = it.filter_image_ids(overview, class_name, mode)
    if not candidates:
        st.info("No test image matches these filters.")
        return None
    if st.session_state.get(IMAGE_KEY) not in candidates:
        remembered = st.session_state.get(it.SELECTED_IMAGE_KEY)
        st.session_state[IMAGE_KEY] = remembered if remembered in candidates else candidates[0]
    captions = {row["id"]: it.image_caption(row) for row in overview.to_dict("records")}
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


def make_picture(image: np.ndarray, box, outlines: bool) -> Picture:
    side = it.display_size(image.shape[0])
    large = it.enlarge_image(image, side)
    if not outlines:
        return Picture(large, None, None)
    return Picture(large, it.head_outline(large), box)


def show_input(picture: Picture, caption: str) -> None:
    st.markdown("**Input**")
    st.image(it.outlined_image(picture.image, picture.box, picture.head), caption=caption, width="stretch")
    if picture.box is not None:
        st.caption("Green: tumor box (boxes.csv). White: head outline.")
    elif picture.head is not None:
        st.caption("White: head outline. No tumor box for this image.")


def probability_figure(probabilities: np.ndarray, class_names: list[str], true: int | None) -> go.Figure:
    table = it.probability_table(probabilities, class_names, true)
    predicted = int(np.asarray(probabilities).argmax())
    right_color = RIGHT_COLOR if true is None or predicted == true else WRONG_COLOR
    colors = [right_color if flag else OTHER_COLOR for flag in table["predicted"]]
    labels = [f"{name} (true)" if is_true else name for name, is_true in zip(table["class"], table["true"])]
    figure = go.Figure(
        go.Bar(
            x=table["probability"], y=labels, orientation="h", marker_color=colors,
            text=[f"{p:.2f}" for p in table["probability"]], textposition="outside", cliponaxis=False,
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    figure.update_layout(
        # Top margin: room for the modebar, which would otherwise cover the first bar.
        height=70 + 26 * len(class_names), margin={"l": 10, "r": 30, "t": 34, "b": 6},
        xaxis={"range": [0, 1], "showticklabels": False, "showgrid": False}, yaxis={"autorange": "reversed"},
        showlegend=False,
    )
    return figure


def show_badge(predicted: int, true: int | None, class_names: list[str]) -> None:
    if true is None:
        st.badge(f"predicts {class_names[predicted]}", color="blue")
    elif predicted == true:
        st.badge(f"right: {class_names[predicted]}", icon=":material/check:", color="green")
    else:
        st.badge(f"wrong: {class_names[predicted]}", icon=":material/close:", color="red")


def test_image_map(run: Run, name: str, view: View, image_id: str, class_index: int) -> tuple[np.ndarray | None, str]:
    """The map of a test image and where it came from (precomputed or live)."""
    if not view.live:
        try:
            stored = loaders.load_precomputed_maps(run.directory, name, view.method)
        except ArtifactError as exc:
            st.caption(f"Precomputed maps unreadable, computing live: {exc}")
            stored = None
        cam = it.precomputed_map(stored, image_id, class_index)
        if cam is not None:
            return cam, SOURCE_PRECOMPUTED
    with st.spinner(f"{it.METHOD_LABELS[view.method]} of {name}…"):
        return loaders.live_test_map(run.directory, name, view.method, image_id, class_index), SOURCE_LIVE


def show_map(run: Run, name: str, view: View, picture: Picture, class_index: int, compute) -> None:
    """Overlay of the map ``compute()`` returns, with its source and where its mass lies."""
    try:
        cam, source = compute()
    except _live_errors() as exc:
        st.warning(f"No map for {name}: {type(exc).__name__}: {exc}")
        return
    shown = it.upsample_map(cam, picture.image.shape[0])
    label = it.METHOD_LABELS[view.method]
    st.image(
        it.compose_overlay(picture.image, shown, view.colormap, view.alpha, picture.box, picture.head),
        caption=f"{label} of {run.class_names[class_index]} · {source}",
        width="stretch",
    )
    shares = it.shares_caption(it.map_shares(shown, picture.head, picture.box))
    if shares:
        st.caption(shares)


def show_model_column(
    run: Run, name: str, view: View, picture: Picture, probabilities: np.ndarray, true: int | None, compute
) -> None:
    st.markdown(f"**{name}**")
    predicted = int(np.asarray(probabilities).argmax())
    show_badge(predicted, true, run.class_names)
    class_index = it.target_class_index(view.target, predicted, true, run.class_names)
    show_map(run, name, view, picture, class_index, lambda: compute(class_index))
    presentation.show_figure(
        probability_figure(probabilities, run.class_names, true),
        presentation.file_stem(run.run_id, "inspect", name),
        key=f"inspect_probabilities_{name}",
    )


def show_test_image(
    run: Run, model_data: dict[str, ModelData], ids: np.ndarray, images: np.ndarray, view: View
) -> None:
    overview = it.image_overview(model_data, run.class_names, view.models)
    image_id = choose_image(run, overview)
    if image_id is None:
        return
    position = int(np.flatnonzero(np.asarray(ids, dtype=str) == image_id)[0])
    boxes = loaders.load_boxes(run.manifest.get("dataset", {}).get("root")) if view.outlines else None
    picture = make_picture(images[position], it.image_box(boxes, image_id), view.outlines)
    true = int(next(iter(model_data.values())).y_true[position])
    columns = st.columns(1 + len(view.models))
    with columns[0]:
        show_input(picture, f"{image_id} · true {run.class_names[true]}")
    for column, name in zip(columns[1:], view.models):
        data = model_data[name]
        row = int(np.flatnonzero(np.asarray(data.ids, dtype=str) == image_id)[0])
        with column:
            show_model_column(
                run, name, view, picture, np.asarray(data.proba[row]), true,
                lambda class_index, name=name: test_image_map(run, name, view, image_id, class_index),
            )


def show_upload(run: Run, view: View) -> None:
    uploaded = st.file_uploader(
        "An MRI image (JPEG or PNG, grayscale or colour, any size)", type=["jpg", "jpeg", "png"], key=UPLOAD_KEY
    )
    if uploaded is None:
        st.caption("It is decoded, prepared and resized as the run's training images were, then every chosen "
                   "model predicts it and explains its prediction live.")
        return
    ops = it.run_image_ops(run.manifest)
    prepared: dict[int, np.ndarray] = {}
    try:
        for name in view.models:
            size = it.entry_image_size(run.manifest["models"][name], run.manifest)
            if size not in prepared:
                prepared[size] = it.prepare_upload(uploaded.getvalue(), size, ops)
    except ValueError as exc:
        st.error(f"`{uploaded.name}` cannot be used: {exc}")
        return
    first = next(iter(prepared.values()))
    picture = make_picture(first, None, view.outlines)
    columns = st.columns(1 + len(view.models))
    with columns[0]:
        show_input(picture, f"{uploaded.name} · no label")
    for column, name in zip(columns[1:], view.models):
        image = prepared[it.entry_image_size(run.manifest["models"][name], run.manifest)]
        with column:
            try:
                probabilities = loaders.upload_probabilities(run.directory, name, image)
            except _live_errors() as exc:
                st.markdown(f"**{name}**")
                st.warning(f"{name} cannot predict: {type(exc).__name__}: {exc}")
                continue
            show_model_column(
                run, name, view, picture, probabilities, None,
                lambda class_index, name=name, image=image: (
                    loaders.live_upload_map(run.directory, name, view.method, image, class_index), SOURCE_LIVE
                ),
            )


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
    view = render_controls(run, list(model_data))
    if not view.models:
        st.info("Choose at least one model.")
        return
    source = st.radio("Image", [TEST_SET, UPLOAD], horizontal=True, key=SOURCE_KEY, label_visibility="collapsed")
    if source == UPLOAD:
        show_upload(run, view)
    else:
        show_test_image(run, model_data, ids, images, view)


inspect_page()
