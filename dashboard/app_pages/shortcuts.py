"""Shortcuts page: which models are right for the wrong reasons?

Everything comes from the run's shortcut measures (``shortcuts/``, written by
``python train_all.py --explain RUN_DIR``). The first screen carries the verdict: the
headline by severity (flagged on all images, within one class only, too few images), test
accuracy against shortcut score (external evaluations joined to each model), the flag parts
against their thresholds, and each model's mean map per class. Below, in tabs: the verdict in
words with the full table, the counterfactual severity, one model (its parts per class, where
each method looks, the probes, deletion / insertion, its most suspect images, its strategy
clusters) and the dataset audit. No model is loaded and no map computed here: the page reads
one JSON file, a few CSV tables and small map files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from bt_core.artifacts import ArtifactError, Run, ShortcutSummary, evaluation_dir
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import open_selected_run
from bt_dashboard.shortcut_model_tab import guarded, show_one_model
from bt_dashboard.views import common, figures, severity, shortcut_audit
from bt_dashboard.views import shortcut_overview as overview
from bt_dashboard.views import shortcuts as view

DUPLICATE_ROWS = 200


def open_summary(run: Run) -> ShortcutSummary | None:
    """The run's shortcut summary, or None after saying why there is none."""
    try:
        stored = loaders.load_shortcuts(run.directory)
        summary = None if stored is None else view.read_summary(stored)
    except ArtifactError as exc:
        st.error(f"The shortcut measures of this run cannot be read: {exc}")
        st.caption("Measure them again (the maps are kept):")
        st.code(view.measure_command(run.directory), language="bash")
        return None
    if summary is None:
        st.info("This run has no shortcut measures yet. Make them (explanation maps, then the measures; "
                "no training, the trained models are reused):")
        st.code(view.measure_command(run.directory), language="bash")
        return None
    return summary


# --------------------------------------------------------------------------- severity


def show_severity(run: Run, summary: ShortcutSummary, accuracies: Mapping[str, Any]) -> None:
    table = severity.severity_table(summary, accuracies)
    unsafe = (table[severity.VERDICT] == "unsafe").any()
    (st.warning if unsafe else st.info)(severity.severity_headline(summary))
    presentation.show_table(table, presentation.file_stem(run.run_id, "shortcuts-severity"),
                            styled=severity.style_severity_table(table))
    records = view.models(summary)
    st.markdown("\n".join(f"- {severity.severity_sentence(name, records[name])}" for name in table[severity.MODEL]))
    st.caption(severity.severity_caption())
    if table[severity.SEVERITY].isna().any():
        st.caption("Models without a severity were measured before the counterfactual probes existed; measure again:")
        st.code(view.measure_command(run.directory), language="bash")


# --------------------------------------------------------------------------- verdict


def show_headline(summary: ShortcutSummary) -> None:
    """The verdict by severity, and the counterfactual severity's headline, one line each."""
    headline = view.verdict_headline(summary)
    in_classes = view.models_at(summary, view.flag_rules.CLASSES_ONLY)
    (st.warning if view.flagged_models(summary) else st.info if in_classes else st.success)(headline)
    st.markdown(f"Counterfactual severity: {severity.severity_headline(summary)}")


def evaluation_points(run: Run) -> list[tuple[str, ShortcutSummary | None, dict[str, Any]]]:
    """Each external evaluation of the run: its name, shortcut summary (None: not measured)
    and accuracies; an evaluation that cannot be read is left out with a caption."""
    if run.is_evaluation:
        return []
    found, problems = [], []
    for name in loaders.list_evaluations(run.directory):
        folder = evaluation_dir(run.directory, name)
        try:
            evaluation = loaders.load_run_tables(folder)
            stored = loaders.load_shortcuts(folder)
            summary = None if stored is None else view.read_summary(stored)
        except ArtifactError as exc:
            problems.append(f"{name} ({exc})")
            continue
        found.append((name, summary,
                      {model: metrics.get("accuracy") for model, metrics in view.stored_metrics(evaluation).items()}))
    if problems:
        st.caption("Evaluations left out of the picture: " + "; ".join(problems))
    return found


def show_overview(run: Run, summary: ShortcutSummary, accuracies: Mapping[str, Any]) -> None:
    points = overview.overview_points(summary, accuracies, evaluation_points(run))
    colors = figures.model_colors(list(run.models))
    left, right = st.columns([5, 6])
    with left:
        presentation.show_figure(overview.overview_figure(points, colors),
                                 presentation.file_stem(run.run_id, "shortcuts-overview"))
        st.caption(overview.OVERVIEW_CAPTION)
    with right:
        presentation.show_figure(overview.parts_heatmap(summary), presentation.file_stem(run.run_id, "shortcuts-parts"))
        st.caption(overview.HEATMAP_CAPTION)


def show_mean_maps(run: Run, summary: ShortcutSummary) -> None:
    method = view.measured_method(summary)
    label = common.METHOD_LABELS.get(method, method)
    means, missing = {}, []
    for name in view.models(summary):
        try:
            stored = loaders.load_class_mean_maps(run.directory, name, method)
        except ArtifactError as exc:
            st.caption(f"The mean maps of {name} cannot be read: {exc}")
            continue
        if stored is None:
            missing.append(name)
        else:
            means[name] = stored
    if means:
        presentation.show_figure(overview.mean_maps_figure(means, run.class_names, label),
                                 presentation.file_stem(run.run_id, "shortcuts-mean-maps", method))
        st.caption(overview.mean_maps_caption(label))
    if missing:
        st.caption(overview.missing_mean_maps_line(missing, overview.explain_command(run.directory)))


def show_verdict(run: Run, summary: ShortcutSummary, accuracies: Mapping[str, Any]) -> None:
    lines = view.verdict_lines(summary, accuracies)
    if lines:
        st.markdown("\n".join(f"- {line}" for line in lines))
    table = view.verdict_table(summary, accuracies)
    all_columns = st.toggle("All columns", key="shortcuts_verdict_all_columns",
                            help="The flags as text, chance, the pointing game and the deletion / insertion "
                                 "AUCs; the CSV always has them all.")
    columns = view.shown_verdict_columns(all_columns)
    chance = None if all_columns else table
    filename = presentation.file_stem(run.run_id, "shortcuts-verdict")
    if presentation.shows_static_table(table):
        # A static table has no column order of its own: it gets the shown columns only.
        shown = table[columns]
        presentation.show_table(shown, filename, csv=False, styled=view.style_verdict(shown, chance))
        presentation.csv_download(table, filename)
    else:
        presentation.show_table(
            table, filename, styled=view.style_verdict(table, chance), column_order=columns,
            column_config={column: st.column_config.Column(
                view.VERDICT_LABELS.get(column), help=view.verdict_column_help(column),
                pinned=column == view.MODEL or None) for column in table.columns},
        )
    st.caption(view.verdict_caption(summary))
    too_few = view.too_few_caption(summary)
    if too_few:
        st.caption(too_few)
    with st.expander("What each part measures"):
        st.caption("\n".join(f"- {line}" for line in view.parts_explained()))
    skipped = view.skipped_line(summary)
    if skipped:
        st.caption(f"Not measured: {skipped}")
    one = common.one_class_test(run)
    if one is not None:
        st.caption(f"The test images are all {one.class_name}, so chance is 100% and background-only accuracy "
                   "cannot flag; the probes' *Called tumor* under *Background only* says how often a model still "
                   "calls tumor with the head blacked out.")


# --------------------------------------------------------------------------- audit


def show_audit(run: Run, summary: ShortcutSummary) -> None:
    audit = summary.audit
    st.markdown("**Source probe**")
    probe = shortcut_audit.source_probe_table(audit)
    one = common.one_class_test(run)
    if probe.empty and one is not None:
        st.caption(f"Source probe: {one.text} (it tells classes apart, so it needs two).")
    elif probe.empty:
        st.caption("Not measured (it needs two classes with two test images each).")
    else:
        for region, values in view.mapping(audit.get("source_probe")).items():
            st.markdown(f"- {shortcut_audit.source_probe_sentence(str(region), view.mapping(values))}")
        presentation.show_table(probe, presentation.file_stem(run.run_id, "shortcuts-source-probe"),
                                styled=shortcut_audit.style_source_probe(probe))

    st.markdown("**Duplicates**")
    duplicates = view.mapping(audit.get("duplicates"))
    if "skipped" in duplicates:
        st.info(f"Duplicate search skipped: {duplicates['skipped']}")
        return
    if not duplicates:
        st.caption("Not measured.")
        return
    st.markdown(shortcut_audit.duplicates_line(duplicates))
    left, right = st.columns([2, 3])
    with left:
        by_split = shortcut_audit.duplicates_by_split(duplicates)
        presentation.show_table(by_split, presentation.file_stem(run.run_id, "shortcuts-duplicates-by-split"))
    with right:
        metrics = shortcut_audit.dedup_metrics_table(duplicates, view.stored_metrics(run))
        if one is not None:  # the words in the cells: the browser's table ignores a Styler's na_rep
            not_measurable = shortcut_audit.dedup_columns_comparing_classes()
            styled = common.mark_not_measurable(
                shortcut_audit.style_dedup_metrics(common.not_measurable_cells(metrics, not_measurable)),
                not_measurable)
        else:
            styled = shortcut_audit.style_dedup_metrics(metrics)
        presentation.show_table(metrics, presentation.file_stem(run.run_id, "shortcuts-deduplicated-metrics"),
                                styled=styled)
        st.caption(shortcut_audit.DEDUP_CAPTION)
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
    accuracies = {name: metrics.get("accuracy") for name, metrics in view.stored_metrics(run).items()}
    guarded("The verdict", show_headline, summary)
    guarded("The overview", show_overview, run, summary, accuracies)
    guarded("The mean maps", show_mean_maps, run, summary)
    st.caption(view.measured_caption(summary, common.METHOD_LABELS))
    verdict_tab, severity_tab, model_tab, audit_tab = st.tabs(
        ["Verdict in words", "Counterfactual severity", "One model", "Dataset audit"])
    with verdict_tab:
        guarded("The verdict", show_verdict, run, summary, accuracies)
    with severity_tab:
        guarded("The severity", show_severity, run, summary, accuracies)
    with model_tab:
        show_one_model(run, summary)
    with audit_tab:
        guarded("The audit", show_audit, run, summary)


shortcuts_page()
