"""Shortcuts page: which models are right for the wrong reasons?

Everything comes from the run's shortcut measures (``shortcuts/``, written by
``python train_all.py --explain RUN_DIR``): a verdict row per model (score, flags, parts,
next to what a centred-Gaussian or random map gets), then for one model its parts per
class, where each precomputed explanation method looks, the probes, the deletion /
insertion curves, its most suspect images (each opens on the Inspect page), its strategy
clusters, and the dataset audit. No model is loaded and no
map computed here: the page reads one JSON file and a few CSV tables.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from bt_core.artifacts import ArtifactError, Run
from dashboard import inspect_tables as it
from dashboard.inspect_link import open_selected_row_in_inspect, show_inspect_link
from dashboard import loaders, presentation
from dashboard import shortcut_tables as sc
from dashboard.run_picker import open_selected_run

MODEL_KEY = "shortcuts_model"
PROBE_MEASURE_KEY = "shortcuts_probe_measure"
WORST_BY_KEY = "shortcuts_worst_by"
WORST_N_KEY = "shortcuts_worst_n"
WORST_PICK_KEY = "shortcuts_inspect_image"
WORST_TABLE_KEY = "shortcuts_worst_table"
CLUSTER_CLASS_KEY = "shortcuts_cluster_class"
METHOD_GROUP_KEY = "shortcuts_method_group"

MEASURE_COMMAND = "python train_all.py --explain {run_dir}"
MAX_WORST, DEFAULT_WORST = 48, 12
THUMBNAIL_WIDTH, THUMBNAIL_SIDE = 150, 160
CLUSTER_MAP_SIDE, EXAMPLE_WIDTH = 128, 72
CLUSTERS_PER_ROW = 4
DUPLICATE_ROWS = 200
OVERLAY_ALPHA = 0.45
FLAGGED_CSS = "background-color: #fde2e1"
# What a malformed summary raises while a section reads it: that section shows an error,
# the rest of the page still renders.
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def guarded(title: str, render: Callable[..., None], *args: Any) -> None:
    try:
        render(*args)
    except MALFORMED as exc:
        st.error(f"{title} cannot be shown: the shortcut summary is malformed ({type(exc).__name__}: {exc}).")


def drop_stale_choice(key: str, options: list) -> None:
    """Forget a selectbox value the current run does not offer (another run was picked)."""
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


def measure_command(run: Run) -> str:
    return MEASURE_COMMAND.format(run_dir=shlex.quote(str(run.directory)))


def open_summary(run: Run) -> dict[str, Any] | None:
    """The run's shortcut summary, or None after saying why there is none."""
    try:
        summary = loaders.load_shortcuts(run.directory)
    except ArtifactError as exc:
        st.error(f"The shortcut measures of this run cannot be read: {exc}")
        st.caption("Measure them again (the maps are kept):")
        st.code(measure_command(run), language="bash")
        return None
    if summary is None:
        st.info("This run has no shortcut measures yet. Make them (explanation maps, then the measures; "
                "no training, the trained models are reused):")
        st.code(measure_command(run), language="bash")
        return None
    return summary


# --------------------------------------------------------------------------- verdict


def verdict_styles(table: pd.DataFrame) -> pd.DataFrame:
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    styles.loc[table[sc.FLAGGED] == sc.YES, [sc.MODEL, sc.FLAGGED, sc.FLAGS]] = FLAGGED_CSS
    return styles


def show_verdict(run: Run, summary: Mapping[str, Any], accuracies: Mapping[str, Any]) -> None:
    headline = sc.verdict_headline(summary)
    (st.warning if sc.flagged_models(summary) else st.success)(headline)
    lines = sc.verdict_lines(summary, accuracies)
    if lines:
        st.markdown("\n".join(f"- {line}" for line in lines))
    table = sc.verdict_table(summary, accuracies)
    formats = {column: "{:.1%}" for column in sc.SHARE_COLUMNS}
    formats.update({sc.SCORE: "{:.2f}", sc.DELETION_AUC: "{:.2f}", sc.INSERTION_AUC: "{:.2f}"})
    styled = table.style.format(formats, na_rep="—").apply(verdict_styles, axis=None)
    presentation.show_table(table, presentation.file_stem(run.run_id, "shortcuts-verdict"), styled=styled)
    st.caption(
        "One row per measured model (all test images), then the map baselines: what a centred Gaussian "
        "and a random map get on the same images; compare the map columns against them. Click a column "
        "header to sort. A model is flagged only when a part is strictly beyond its documented threshold "
        f"(bt_core.shortcuts.flags). Thresholds: {sc.thresholds_text(summary) or 'not stored'}."
    )
    st.caption("\n".join(f"- {line}" for line in sc.parts_explained()))
    skipped = sc.skipped_line(summary)
    if skipped:
        st.caption(f"Not measured: {skipped}")


# --------------------------------------------------------------------------- one model


def show_model(run: Run, summary: Mapping[str, Any], name: str, record: Mapping[str, Any]) -> None:
    flags = sc.flag_list(record)
    if flags:
        st.markdown("\n".join(f"- **{sc.flag_label(flag)}**: {flag.get('sentence', '')}" for flag in flags))
    else:
        st.markdown(f"**{name}** raises no flag.")
    st.markdown("**Parts per class**")
    parts = sc.parts_table(record)
    styled = parts.style.format(
        {"Value": "{:.3f}", "Reference": "{:.3f}", "Threshold": "{:.3f}", "Part score": "{:.2f}"}, na_rep="—"
    )
    presentation.show_table(parts, presentation.file_stem(run.run_id, "shortcuts-parts", name), styled=styled)
    st.caption("Value against its reference (centred-Gaussian map, chance, or 0) and threshold; the part "
               "score rescales it to 0 (no worse than the reference) … 1 (worst possible). Within a class, "
               "background-only accuracy is replaced by recall minus false-alarm rate.")

    guarded("The method comparison", show_methods, run, summary, name, record)

    st.markdown("**Probes**")
    probes = sc.probe_table(record)
    if probes.empty:
        st.caption("No probes stored for this model.")
    else:
        measure = st.radio("Measure", list(sc.PROBE_MEASURES.values()), horizontal=True, key=PROBE_MEASURE_KEY)
        presentation.show_figure(
            sc.probe_figure(probes, measure, title=f"{name}: {measure.lower()} per probe"),
            presentation.file_stem(run.run_id, "shortcuts-probes", name),
        )
        styled = probes.style.format({label: "{:.1%}" for label in [*sc.PROBE_MEASURES.values(), sc.CHANCE]}
                                     | {"Images": "{:.0f}"}, na_rep="—")
        presentation.show_table(probes, presentation.file_stem(run.run_id, "shortcuts-probes", name), styled=styled)
        st.caption("Head only: the background blacked out. Background only: the head blacked out (no anatomy "
                   "left). Tumor occluded: the tumor box filled in (only with tumor boxes). A model that reads "
                   "the anatomy drops to chance without the head and stops calling a tumor once it is gone.")

    faithfulness = sc.mapping(record.get("faithfulness"))
    if faithfulness.get("deletion_curve") or faithfulness.get("insertion_curve"):
        st.markdown("**Deletion and insertion**")
        presentation.show_figure(
            sc.curves_figure(faithfulness, title=f"{name}: mean deletion / insertion curves"),
            presentation.file_stem(run.run_id, "shortcuts-faithfulness", name),
        )
        st.caption(f"{sc.MEASURE_SENTENCES[sc.DELETION_AUC]} {sc.MEASURE_SENTENCES[sc.INSERTION_AUC]}")


def show_methods(run: Run, summary: Mapping[str, Any], name: str, record: Mapping[str, Any]) -> None:
    """Where each precomputed explanation method looks, next to the map baselines."""
    st.markdown("**Where each method looks**")
    groups = sc.method_groups(record)
    if not groups:
        st.caption("This summary compares no explanation methods (measured before they were compared; "
                   "measure again to see them side by side).")
        return
    drop_stale_choice(METHOD_GROUP_KEY, groups)
    group = st.selectbox("Measured on", groups, key=METHOD_GROUP_KEY,
                         format_func=lambda g: "all test images" if g == "all" else f"{g} images")
    table = sc.method_table(summary, record, group, it.METHOD_LABELS)
    formats = {label: "{:.1%}" for label in sc.METHOD_MEASURES.values()} | {sc.IMAGES: "{:.0f}"}
    presentation.show_table(table, presentation.file_stem(run.run_id, "shortcuts-methods", name, group),
                            styled=table.style.format(formats, na_rep="—"))
    st.caption(sc.methods_caption(summary, it.METHOD_LABELS))


# --------------------------------------------------------------------------- worst images


def overlay_pictures(run: Run, name: str, method: str, wanted: list[str]) -> tuple[list[np.ndarray], list[str], str]:
    """Thumbnails of ``wanted`` test images (with their precomputed map when there is one),
    the ids found, and a note on the overlay."""
    images, archive_ids = loaders.load_test_images(run.directory)
    where = sc.positions(archive_ids, wanted)
    try:
        stored = loaders.load_precomputed_maps(run.directory, name, method)
    except ArtifactError:
        stored = None
    map_at = sc.positions(stored[1], wanted) if stored is not None else np.full(len(wanted), -1)
    pictures, found = [], []
    for image_id, position, map_position in zip(wanted, where, map_at):
        if position < 0:
            continue
        image = it.enlarge_image(images[position], max(THUMBNAIL_SIDE, images.shape[1]))
        if map_position >= 0:
            image = it.compose_overlay(image, stored[0][map_position], "jet", OVERLAY_ALPHA)
        pictures.append(image)
        found.append(image_id)
    label = it.METHOD_LABELS.get(method, method)
    note = (f"Overlay: the precomputed {label} map of the predicted class, the one measured."
            if stored is not None else f"No precomputed {label} maps of {name}: images without overlay.")
    return pictures, found, note


def show_worst(run: Run, summary: Mapping[str, Any], name: str) -> None:
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
        by = by_column.radio("Rank by", sc.WORST_MODES, horizontal=True, key=WORST_BY_KEY,
                             help="Background-only prediction = true label: still right with the head blacked "
                                  "out (highest outside-head share first).")
        n = n_column.slider("Images", 1, MAX_WORST, DEFAULT_WORST, key=WORST_N_KEY)
    worst = sc.worst_images(per_image, by, n)
    if worst.empty:
        st.info("No test image matches.")
        return
    try:
        pictures, found, note = overlay_pictures(run, name, str(summary.get("method") or "gradcam"), list(worst["id"]))
    except ArtifactError as exc:
        st.warning(f"No thumbnails: {exc}")
    else:
        captions = dict(zip(worst["id"], (sc.worst_caption(row) for row in worst.to_dict("records"))))
        if pictures:
            st.image(pictures, caption=[captions[image_id] for image_id in found], width=THUMBNAIL_WIDTH)
        st.caption(note)
    show_inspect_link([str(image_id) for image_id in worst["id"]], WORST_PICK_KEY)
    formats = {"outside_head": "{:.1%}", "border": "{:.1%}", "in_box": "{:.1%}"}
    presentation.show_table(
        worst, presentation.file_stem(run.run_id, "shortcuts-worst", name),
        styled=worst.style.format(formats, na_rep="—"),
        key=WORST_TABLE_KEY, on_select="rerun", selection_mode="single-row",
    )
    open_selected_row_in_inspect(WORST_TABLE_KEY, worst)


# --------------------------------------------------------------------------- clusters


def show_cluster(run: Run, cluster: Mapping[str, Any], scale: float, images, archive_ids) -> None:
    label = cluster.get("label", "?")
    st.markdown(f"**Cluster {label}**")
    cam = sc.mean_map(cluster)
    if cam is not None:
        st.image(sc.map_picture(cam, scale, CLUSTER_MAP_SIDE), caption="mean map", width=CLUSTER_MAP_SIDE)
    if cluster.get("clever_hans_candidate"):
        st.badge("Clever-Hans candidate", icon=":material/warning:", color="red")
    size, share = sc.number(cluster.get("size")), sc.number(cluster.get("share"))
    tightness, off_head = sc.number(cluster.get("tightness")), sc.number(cluster.get("off_head"))
    st.caption(f"{size:.0f} maps ({share:.0%}) · tightness {tightness:.3f} · "
               f"{'—' if not np.isfinite(off_head) else f'{off_head:.0%}'} off head")
    examples = [str(e) for e in cluster.get("examples") or []]
    if images is not None and examples:
        where = sc.positions(archive_ids, examples)
        shown = [images[p] for p in where if p >= 0]
        if shown:
            st.image(shown, width=EXAMPLE_WIDTH)


def show_clusters(run: Run, name: str, record: Mapping[str, Any]) -> None:
    classes = sc.cluster_classes(record)
    if not classes:
        st.info(f"No strategy clusters for {name}: no predicted class had enough maps to cluster.")
        return
    drop_stale_choice(CLUSTER_CLASS_KEY, classes)
    class_name = st.selectbox("Predicted class", classes, key=CLUSTER_CLASS_KEY)
    clusters = sc.cluster_list(record, class_name)
    details = sc.mapping(sc.mapping(record.get("clusters")).get(class_name))
    notes = "; ".join(str(note) for note in details.get("notes") or [])
    st.caption(f"{len(clusters)} cluster(s) of the maps of images predicted {class_name} "
               f"(k = {details.get('k', '?')}, {details.get('n_neighbors', '?')} neighbours). Mean maps share "
               "one colour scale. A Clever-Hans candidate is a tight cluster whose maps sit off the head."
               + (f" Notes: {notes}" if notes else ""))
    try:
        images, archive_ids = loaders.load_test_images(run.directory)
    except ArtifactError as exc:
        st.caption(f"No example images: {exc}")
        images, archive_ids = None, None
    maps = [cam for cam in (sc.mean_map(c) for c in clusters) if cam is not None]
    scale = max((float(np.nanmax(cam)) for cam in maps), default=1.0)
    for start in range(0, len(clusters), CLUSTERS_PER_ROW):
        row = clusters[start : start + CLUSTERS_PER_ROW]
        for column, cluster in zip(st.columns(CLUSTERS_PER_ROW), row):
            with column:
                show_cluster(run, cluster, scale, images, archive_ids)
    table = sc.cluster_table(record, class_name)
    presentation.show_table(
        table, presentation.file_stem(run.run_id, "shortcuts-clusters", name, class_name),
        styled=table.style.format({"Share": "{:.0%}", "Off head": "{:.0%}", "Tightness": "{:.3f}",
                                   "Size": "{:.0f}"}, na_rep="—"),
    )


# --------------------------------------------------------------------------- audit


def show_audit(run: Run, summary: Mapping[str, Any]) -> None:
    audit = sc.mapping(summary.get("audit"))
    st.markdown("**Source probe**")
    probe = sc.source_probe_table(audit)
    if probe.empty:
        st.caption("Not measured (it needs two classes with two test images each).")
    else:
        for region, values in sc.mapping(audit.get("source_probe")).items():
            st.markdown(f"- {sc.source_probe_sentence(str(region), sc.mapping(values))}")
        formats = {"Balanced accuracy": "{:.1%}", "Std over folds": "{:.1%}", sc.CHANCE: "{:.1%}",
                   "Region share of image": "{:.0%}", "Folds": "{:.0f}", "Images": "{:.0f}"}
        presentation.show_table(probe, presentation.file_stem(run.run_id, "shortcuts-source-probe"),
                                styled=probe.style.format(formats, na_rep="—"))

    st.markdown("**Duplicates**")
    duplicates = sc.mapping(audit.get("duplicates"))
    if "skipped" in duplicates:
        st.info(f"Duplicate search skipped: {duplicates['skipped']}")
        return
    if not duplicates:
        st.caption("Not measured.")
        return
    st.markdown(sc.duplicates_line(duplicates))
    left, right = st.columns([2, 3])
    with left:
        by_split = sc.duplicates_by_split(duplicates)
        presentation.show_table(by_split, presentation.file_stem(run.run_id, "shortcuts-duplicates-by-split"))
    with right:
        original = {name: model.metrics for name, model in run.models.items() if model.usable}
        metrics = sc.dedup_metrics_table(duplicates, original)
        formats = {column: "{:+.1%}" if column.startswith("Δ") else "{:.1%}" for column in metrics.columns[1:]}
        presentation.show_table(metrics, presentation.file_stem(run.run_id, "shortcuts-deduplicated-metrics"),
                                styled=metrics.style.format(formats, na_rep="—"))
        st.caption("Test metrics on the whole test split and on the de-duplicated one; Δ = de-duplicated − "
                   "original. A drop means copies of training images flattered the score.")
    try:
        pairs = loaders.load_duplicates(run.directory)
    except ArtifactError as exc:
        st.warning(f"The duplicate pairs cannot be read: {exc}")
        return
    if pairs is None or pairs.empty:
        return
    st.dataframe(pairs.head(DUPLICATE_ROWS), hide_index=True)
    presentation.csv_download(pairs, presentation.file_stem(run.run_id, "shortcuts-duplicates"),
                              label=f"Download all {len(pairs)} pairs (CSV)")
    if len(pairs) > DUPLICATE_ROWS:
        st.caption(f"Showing the first {DUPLICATE_ROWS} of {len(pairs)} pairs; the download holds all.")


# --------------------------------------------------------------------------- page


def shortcuts_page() -> None:
    st.title("Shortcuts")
    run = open_selected_run()
    if run is None:
        return
    summary = open_summary(run)
    if summary is None:
        return
    method = it.METHOD_LABELS.get(str(summary.get("method")), summary.get("method"))
    boxes = "with tumor boxes" if summary.get("has_boxes") else "without tumor boxes (box measures blank)"
    st.caption(f"Measured {summary.get('created', '')} from {method} maps, {boxes}.")
    usable = {name: model for name, model in run.models.items() if model.usable}
    accuracies = {name: model.metrics.get("accuracy") for name, model in usable.items()}
    guarded("The verdict", show_verdict, run, summary, accuracies)

    records = sc.models(summary)
    names = list(records)
    if names:
        st.subheader("One model")
        drop_stale_choice(MODEL_KEY, names)
        if MODEL_KEY not in st.session_state:
            st.session_state[MODEL_KEY] = sc.suspect_model(summary)
        name = st.selectbox("Model", names, key=MODEL_KEY,
                            format_func=lambda n: f"{n} (flagged)" if sc.is_flagged(records[n]) else n)
    model_tab, worst_tab, cluster_tab, audit_tab = st.tabs(
        ["Parts & probes", "Worst images", "Clusters", "Dataset audit"]
    )
    if names:
        with model_tab:
            guarded("The model's parts", show_model, run, summary, name, records[name])
        with worst_tab:
            guarded("The worst images", show_worst, run, summary, name)
        with cluster_tab:
            guarded("The clusters", show_clusters, run, name, records[name])
    else:
        for tab in (model_tab, worst_tab, cluster_tab):
            tab.info("No model of this run was measured.")
    with audit_tab:
        guarded("The audit", show_audit, run, summary)


shortcuts_page()
