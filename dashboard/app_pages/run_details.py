"""Run page: what the manifest records about the chosen run."""

from typing import Any

import streamlit as st

from bt_core.artifacts import ArtifactError
from dashboard import components, loaders
from dashboard.run_picker import selected_run_dir, show_no_runs


def show_evaluation(manifest: dict[str, Any]) -> None:
    """What an external evaluation scored: whose models, on which data, how."""
    evaluation = manifest.get("evaluation")
    if not isinstance(evaluation, dict):
        return
    st.subheader("External evaluation")
    mode = evaluation.get("mode")
    how = (
        f"tumor detection: P(tumor) = 1 − P({evaluation.get('negative_class', 'notumor')}) of each model"
        if mode == "tumor"
        else "on the run's classes"
    )
    st.markdown(
        f"**{evaluation.get('name', 'unknown')}**: the models of run `{evaluation.get('of_run', 'unknown')}` "
        f"scored on `{evaluation.get('data', '')}`, {how}. Every image of that folder is a test image; "
        "the models are the run's, unchanged."
    )
    not_trained = evaluation.get("not_trained") or []
    if not_trained:
        st.caption("Not trained in the run, so not scored: " + ", ".join(f"`{name}`" for name in not_trained))


def show_dataset(manifest: dict[str, Any]) -> None:
    dataset = manifest.get("dataset") or {}
    st.subheader("Dataset")
    st.markdown(
        f"**{dataset.get('name', 'unknown')}** · layout `{dataset.get('layout', 'unknown')}` · "
        f"root `{dataset.get('root', '')}` · fingerprint `{dataset.get('fingerprint', '')}`"
    )
    st.dataframe(components.split_counts_table(manifest), hide_index=True)
    skipped = components.skipped_files_table(manifest)
    st.markdown(f"**Skipped files:** {len(skipped)}")
    if not skipped.empty:
        st.dataframe(skipped, hide_index=True)


def show_models(manifest: dict[str, Any]) -> None:
    st.subheader("Models")
    st.dataframe(components.model_status_table(manifest), hide_index=True)


def show_setup(manifest: dict[str, Any]) -> None:
    config_column, versions_column = st.columns(2)
    with config_column:
        st.subheader("Config")
        st.dataframe(components.key_value_table(manifest.get("config")), hide_index=True)
    with versions_column:
        st.subheader("Versions")
        environment = {
            **(manifest.get("versions") or {}),
            "backend": manifest.get("backend"),
            "device": manifest.get("device"),
        }
        st.dataframe(components.key_value_table(environment), hide_index=True)


def show_timing(manifest: dict[str, Any]) -> None:
    st.subheader("Timing")
    for column, (name, value) in zip(st.columns(3), components.timing_summary(manifest).items()):
        column.metric(name, value)


def run_details_page() -> None:
    st.title("Run")
    run_dir = selected_run_dir()
    if run_dir is None:
        show_no_runs()
        return
    try:
        manifest = loaders.load_manifest(run_dir)
    except ArtifactError as exc:
        st.error(f"Run `{run_dir}` cannot be opened: {exc}")
        return
    st.caption(
        f"`{manifest.get('run_id', run_dir)}` · created {manifest.get('created', 'unknown')} · "
        f"artifact format {manifest.get('format_version')}"
    )
    show_evaluation(manifest)
    show_dataset(manifest)
    show_models(manifest)
    show_setup(manifest)
    show_timing(manifest)


run_details_page()
