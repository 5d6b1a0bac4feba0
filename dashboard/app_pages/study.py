"""Study page: the study picked in the sidebar, read from its tables and study.json only.

Per model × variant the mean ± sd over seeds of every metric (each seed a dot in the
figure), the seed-to-seed flip rate, each variant against the baseline (seed-matched, with
the interval the tables state the method of), and the cells' status.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from bt_core.artifacts import ArtifactError, study_tables
from bt_core.artifacts.study import CELL_DONE, StudyManifest
from bt_dashboard import presentation, settings, study_loaders
from bt_dashboard.study_picker import selected_study_dir
from bt_dashboard.views import study as view

METRIC_KEY = "study_metric"
EFFECT_METRIC_KEY = "study_effect_metric"
STUDY_COMMAND = "python train_all.py --study study.toml --out {artifacts}"


def spec_order(study: StudyManifest) -> tuple[list[str], list[str]]:
    """The spec's models and variant names, in its order (tables follow it)."""
    spec = study.spec
    models = [str(name) for name in spec.get("models") or []]
    variants = [str(item.get("name") if isinstance(item, dict) else item) for item in spec.get("variants") or []]
    return models, variants


def open_study() -> tuple[str, StudyManifest] | None:
    """The picked study's folder and manifest, or None after saying why there is none."""
    study_dir = selected_study_dir()
    if study_dir is None:
        if study_loaders.list_studies(settings.artifacts_dir()):
            st.info("Pick a study in the sidebar (**Study**) to see it here.")
        else:
            st.info(f"No study in `{settings.artifacts_dir()}` yet. Run one (models × variants × seeds):")
            st.code(STUDY_COMMAND.format(artifacts=settings.artifacts_dir()), language="bash")
        return None
    try:
        return study_dir, study_loaders.load_study(study_dir)
    except ArtifactError as exc:
        st.error(f"Study `{study_dir}` cannot be opened: {exc}")
        return None


def read_tables(study_dir: str) -> dict[str, pd.DataFrame]:
    """The study's tables (empty before the first cell is done); a broken one is named and read as empty."""
    tables = {}
    for name in study_tables.STUDY_TABLES:
        if not study_tables.study_table_path(Path(study_dir), name).is_file():  # not written yet: normal
            tables[name] = study_tables.empty_study_table(name)
            continue
        try:
            tables[name] = study_loaders.load_study_table(study_dir, name)
        except ArtifactError as exc:
            st.warning(f"The study's {name} table cannot be read: {exc}")
            tables[name] = study_tables.empty_study_table(name)
    return tables


def show_status(study: StudyManifest, study_id: str, expanded: bool = False) -> None:
    with st.expander(f"Cell status ({view.status_line(study.cells)})", expanded=expanded):
        table = view.status_table(study.cells)
        presentation.show_table(table, presentation.file_stem(study_id, "cells"))


def show_seed_summary(tables: dict[str, pd.DataFrame], study_id: str, models: list[str], variants: list[str]) -> None:
    st.subheader("Over seeds")
    groups, flips, cells = tables["groups"], tables["flips"], tables["cells"]
    tabs = view.metric_groups(list(groups["metric"].astype(str)))
    for (title, metrics), tab in zip(tabs.items(), st.tabs(list(tabs))):
        with tab:
            shown = view.headline_metrics(metrics)
            if len(shown) < len(metrics) and st.toggle("Every score", key=f"study_all_scores_{title}",
                                                       help="The evaluation's every leaderboard score; "
                                                            "the CSV always has them all."):
                shown = metrics
            table = view.summary_table(groups, shown, flips if title == "Shortcuts" else None, models, variants)
            presentation.show_table(table, presentation.file_stem(study_id, "seeds", title), csv=False)
            presentation.csv_download(view.summary_table(groups, metrics, flips if title == "Shortcuts" else None,
                                                         models, variants),
                                      presentation.file_stem(study_id, "seeds", title))
    st.caption("Mean ± sample sd over seeds (groups.csv). Flip rate: over every pair of seeds, the share of the "
               "test images both scored whose predicted class differs, averaged (flips.csv).")
    options = view.ordered_metrics(list(cells["metric"].astype(str))) if not cells.empty else []
    if not options:
        return
    if st.session_state.get(METRIC_KEY) not in options:
        st.session_state[METRIC_KEY] = "accuracy" if "accuracy" in options else options[0]
    metric = st.selectbox("Metric", options, format_func=view.metric_label, key=METRIC_KEY)
    presentation.show_figure(view.seed_figure(cells, groups, metric, models, variants),
                             presentation.file_stem(study_id, "seeds", metric))


def show_effects(effects: pd.DataFrame, study_id: str, models: list[str], variants: list[str]) -> None:
    st.subheader("Variant effect")
    metrics = view.effect_metrics(effects)
    if not metrics:
        st.info("No variant effect yet: it needs the baseline and another variant finished on matched seeds.")
        return
    st.markdown(view.effects_caption(effects))
    if st.session_state.get(EFFECT_METRIC_KEY) not in metrics:
        st.session_state[EFFECT_METRIC_KEY] = metrics[0]
    metric = st.selectbox("Effect on", metrics, format_func=view.metric_label, key=EFFECT_METRIC_KEY)
    presentation.show_figure(view.forest_figure(effects, metric, models, variants),
                             presentation.file_stem(study_id, "effect", metric))
    table = view.effects_table(effects, metrics, models, variants)
    # Baseline and method are the caption's (one each); the CSV keeps them per row.
    shown = table.drop(columns=["Baseline", "Method"])
    presentation.show_table(shown, presentation.file_stem(study_id, "effects"), csv=False,
                            styled=shown.style.format({"Difference": "{:+.3f}"}, na_rep=view.MISSING))
    presentation.csv_download(table, presentation.file_stem(study_id, "effects"))
    st.caption("Difference and interval from effects.csv; the CSV also has each row's baseline and method. "
               "An interval that excludes 0 suggests a change beyond seed and image noise; with fewer than "
               "5 seeds the intervals are optimistic (the seed level has few values to vary).")


def study_page() -> None:
    st.title("Study")
    opened = open_study()
    if opened is None:
        return
    study_dir, study = opened
    study_id = study.study_id
    models, variants = spec_order(study)
    st.markdown(f"**{study_id}** · {view.status_line(study.cells)} · scheduler {study.scheduler}")
    tables = read_tables(study_dir)
    if tables["groups"].empty:
        st.info(view.no_results_message(study.count(CELL_DONE), study_dir))
        show_status(study, study_id, expanded=True)
        return
    show_seed_summary(tables, study_id, models, variants)
    show_effects(tables["effects"], study_id, models, variants)
    show_status(study, study_id)


study_page()
