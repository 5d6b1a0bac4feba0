"""The Shortcuts page's "One model" tab: a model's parts per class, where each method looks,
its probes, deletion / insertion, its most suspect images and its strategy clusters.

Part of ``app_pages/shortcuts.py`` (not a page): it reads the run's stored shortcut measures,
tables and maps only, like the page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import streamlit as st

from bt_core.artifacts import ArtifactError, Run, ShortcutSummary
from bt_dashboard import loaders, presentation, query_state
from bt_dashboard.inspect_link import open_selected_row_in_inspect, show_inspect_link
from bt_dashboard.views import common, severity, shortcut_clusters, shortcut_model
from bt_dashboard.views import shortcuts as view
from bt_dashboard.widget_state import drop_stale_choice

MODEL_KEY = "shortcuts_model"
PROBE_MEASURE_KEY = "shortcuts_probe_measure"
WORST_BY_KEY = "shortcuts_worst_by"
WORST_N_KEY = "shortcuts_worst_n"
WORST_PICK_KEY = "shortcuts_inspect_image"
WORST_TABLE_KEY = "shortcuts_worst_table"
CLUSTER_CLASS_KEY = "shortcuts_cluster_class"
METHOD_GROUP_KEY = "shortcuts_method_group"

MAX_WORST, DEFAULT_WORST = 48, 12
THUMBNAIL_WIDTH, THUMBNAIL_SIDE = 150, 160
CLUSTER_MAP_SIDE, EXAMPLE_WIDTH = 128, 72
CLUSTERS_PER_ROW = 4
OVERLAY_ALPHA = 0.45

# What a malformed summary raises while a section reads it: that section shows an error,
# the rest of the page still renders.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def guarded(title: str, render: Callable[..., None], *args: Any) -> None:
    try:
        render(*args)
    except MALFORMED as exc:
        st.error(f"{title} cannot be shown: the shortcut summary is malformed ({type(exc).__name__}: {exc}).")


def show_counterfactuals(run: Run, name: str, record: Mapping[str, Any]) -> None:
    st.markdown("**Counterfactual probes** (the severity's evidence)")
    rows = severity.probe_rows(record)
    if rows.empty:
        st.caption("No counterfactual probes stored for this model (measured before they existed).")
        return
    presentation.show_table(rows, presentation.file_stem(run.run_id, "shortcuts-counterfactual", name),
                            styled=severity.style_probe_rows(rows))
    st.caption("Value: the share of the changed images whose decision went to the donor's class (source swap, "
               "style) or changed at all (border, controls); its Wilson 95% interval; chance: a blind guess; "
               "control: the same change within the class; excess: value minus control (what the severity counts).")


def show_model(run: Run, summary: ShortcutSummary, name: str, record: Mapping[str, Any]) -> None:
    verdict = view.verdict_of(record)
    if verdict.flags:
        st.markdown(f"**{name}**: {verdict.text}.\n" + "\n".join(
            f"- **{view.flag_label(flag)}**: {flag.get('sentence', '')}" for flag in verdict.flags))
    else:
        st.markdown(f"**{name}** raises no flag" + ("" if verdict.level == view.flag_rules.NOT_FLAGGED
                                                    else f" ({verdict.text})") + ".")
    guarded("The counterfactual probes", show_counterfactuals, run, name, record)
    st.markdown("**Parts per class**")
    parts = shortcut_model.parts_table(record)
    presentation.show_table(parts, presentation.file_stem(run.run_id, "shortcuts-parts", name),
                            styled=shortcut_model.style_parts(parts))
    st.caption(shortcut_model.PARTS_CAPTION)

    guarded("The method comparison", show_methods, run, summary, name, record)

    st.markdown("**Probes**")
    probes = shortcut_model.probe_table(record)
    if probes.empty:
        st.caption("No probes stored for this model.")
    else:
        measure = st.radio("Measure", list(shortcut_model.PROBE_MEASURES.values()), horizontal=True,
                           key=PROBE_MEASURE_KEY)
        presentation.show_figure(
            shortcut_model.probe_figure(probes, measure, title=f"{name}: {measure.lower()} per probe"),
            presentation.file_stem(run.run_id, "shortcuts-probes", name),
        )
        presentation.show_table(probes, presentation.file_stem(run.run_id, "shortcuts-probes", name),
                                styled=shortcut_model.style_probes(probes))
        st.caption(shortcut_model.PROBES_CAPTION)

    faithfulness = view.mapping(record.get("faithfulness"))
    if faithfulness.get("deletion_curve") or faithfulness.get("insertion_curve"):
        st.markdown("**Deletion and insertion**")
        presentation.show_figure(
            shortcut_model.curves_figure(faithfulness, title=f"{name}: mean deletion / insertion curves"),
            presentation.file_stem(run.run_id, "shortcuts-faithfulness", name),
        )
        st.caption(f"{view.MEASURE_SENTENCES[view.DELETION_AUC]} {view.MEASURE_SENTENCES[view.INSERTION_AUC]}")


def show_methods(run: Run, summary: ShortcutSummary, name: str, record: Mapping[str, Any]) -> None:
    """Where each precomputed explanation method looks, next to the map baselines."""
    st.markdown("**Where each method looks**")
    groups = shortcut_model.method_groups(record)
    if not groups:
        st.caption("This summary compares no explanation methods (measured before they were compared; "
                   "measure again to see them side by side).")
        return
    drop_stale_choice(METHOD_GROUP_KEY, groups)
    group = st.selectbox("Measured on", groups, key=METHOD_GROUP_KEY,
                         format_func=lambda g: "all test images" if g == "all" else f"{g} images")
    table = shortcut_model.method_table(summary, record, group, common.METHOD_LABELS)
    presentation.show_table(table, presentation.file_stem(run.run_id, "shortcuts-methods", name, group),
                            styled=shortcut_model.style_methods(table))
    st.caption(shortcut_model.methods_caption(summary, common.METHOD_LABELS))


# --------------------------------------------------------------------------- worst images


def worst_pictures(run: Run, name: str, method: str, wanted: list[str]) -> tuple[list[np.ndarray], list[str], str]:
    """Thumbnails of ``wanted`` test images (with their precomputed map when there is one),
    the ids found, and a note on the overlay."""
    images, archive_ids = loaders.load_test_images(run.directory)
    try:
        stored = loaders.load_precomputed_maps(run.directory, name, method)
    except ArtifactError:
        stored = None
    pictures, found = shortcut_model.worst_thumbnails(images, archive_ids, stored, wanted, THUMBNAIL_SIDE,
                                                      OVERLAY_ALPHA)
    note = shortcut_model.thumbnails_note(common.METHOD_LABELS.get(method, method), name, stored is not None)
    return pictures, found, note


def show_worst(run: Run, summary: ShortcutSummary, name: str) -> None:
    try:
        per_image = loaders.load_shortcut_images(run.directory, name)
    except ArtifactError as exc:
        st.warning(f"The per-image measures of {name} cannot be read: {exc}")
        return
    if per_image is None:
        st.info(f"No per-image measures of {name} (shortcuts/models/{name}.csv).")
        return
    with presentation.controls("Worst images"):
        by_column, n_column = st.columns([3, 2])
        by = by_column.radio("Rank by", shortcut_model.WORST_MODES, horizontal=True, key=WORST_BY_KEY,
                             help="Background-only prediction = true label: still right with the head blacked "
                                  "out (highest outside-head share first).")
        n = n_column.slider("Images", 1, MAX_WORST, DEFAULT_WORST, key=WORST_N_KEY)
    worst = shortcut_model.worst_images(per_image, by, n)
    if worst.empty:
        st.info("No test image matches.")
        return
    try:
        pictures, found, note = worst_pictures(run, name, view.measured_method(summary), list(worst["id"]))
    except ArtifactError as exc:
        st.warning(f"No thumbnails: {exc}")
    else:
        captions = dict(zip(worst["id"], (shortcut_model.worst_caption(row) for row in worst.to_dict("records"))))
        if pictures:
            st.image(pictures, caption=[captions[image_id] for image_id in found], width=THUMBNAIL_WIDTH)
        st.caption(note)
    show_inspect_link([str(image_id) for image_id in worst["id"]], WORST_PICK_KEY)
    presentation.show_table(
        worst, presentation.file_stem(run.run_id, "shortcuts-worst", name),
        styled=shortcut_model.style_worst(worst),
        key=WORST_TABLE_KEY, on_select="rerun", selection_mode="single-row",
    )
    open_selected_row_in_inspect(WORST_TABLE_KEY, worst)


# --------------------------------------------------------------------------- clusters


def show_cluster(run: Run, cluster: Mapping[str, Any], scale: float, images, archive_ids) -> None:
    label = cluster.get("label", "?")
    st.markdown(f"**Cluster {label}**")
    cam = shortcut_clusters.mean_map(cluster)
    if cam is not None:
        st.image(shortcut_clusters.map_picture(cam, scale, CLUSTER_MAP_SIDE), caption="mean map",
                 width=CLUSTER_MAP_SIDE)
    if cluster.get("clever_hans_candidate"):
        st.badge("Clever-Hans candidate", icon=":material/warning:", color="red")
    st.caption(shortcut_clusters.cluster_caption(cluster))
    shown = shortcut_clusters.cluster_examples(cluster, images, archive_ids)
    if shown:
        st.image(shown, width=EXAMPLE_WIDTH)


def show_clusters(run: Run, name: str, record: Mapping[str, Any]) -> None:
    classes = shortcut_clusters.cluster_classes(record)
    if not classes:
        st.info(f"No strategy clusters for {name}: no predicted class had enough maps to cluster.")
        return
    drop_stale_choice(CLUSTER_CLASS_KEY, classes)
    class_name = st.selectbox("Predicted class", classes, key=CLUSTER_CLASS_KEY)
    clusters = shortcut_clusters.cluster_list(record, class_name)
    st.caption(shortcut_clusters.clusters_caption(record, class_name))
    try:
        images, archive_ids = loaders.load_test_images(run.directory)
    except ArtifactError as exc:
        st.caption(f"No example images: {exc}")
        images, archive_ids = None, None
    scale = shortcut_clusters.clusters_scale(clusters)
    for start in range(0, len(clusters), CLUSTERS_PER_ROW):
        row = clusters[start : start + CLUSTERS_PER_ROW]
        for column, cluster in zip(st.columns(CLUSTERS_PER_ROW), row):
            with column:
                show_cluster(run, cluster, scale, images, archive_ids)
    table = shortcut_clusters.cluster_table(record, class_name)
    presentation.show_table(
        table, presentation.file_stem(run.run_id, "shortcuts-clusters", name, class_name),
        styled=shortcut_clusters.style_clusters(table),
    )



def show_one_model(run: Run, summary: ShortcutSummary) -> None:
    records = view.models(summary)
    names = list(records)
    if not names:
        st.info("No model of this run was measured.")
        return
    drop_stale_choice(MODEL_KEY, names)
    if MODEL_KEY not in st.session_state:  # a link's first model, else the most suspect one
        linked = [n for n in st.session_state.get(query_state.MODELS_KEY) or [] if n in names]
        st.session_state[MODEL_KEY] = linked[0] if linked else view.suspect_model(summary)

    def label(n: str) -> str:
        verdict = view.verdict_of(records[n])
        return n if verdict.level == view.flag_rules.NOT_FLAGGED else f"{n} ({verdict.text})"

    name = st.selectbox("Model", names, key=MODEL_KEY, format_func=label)
    model_tab, worst_tab, cluster_tab = st.tabs(["Parts & probes", "Worst images", "Clusters"])
    with model_tab:
        guarded("The model's parts", show_model, run, summary, name, records[name])
    with worst_tab:
        guarded("The worst images", show_worst, run, summary, name)
    with cluster_tab:
        guarded("The clusters", show_clusters, run, name, records[name])
