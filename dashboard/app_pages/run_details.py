"""Run page: what the manifest records about the chosen run."""

import streamlit as st

from bt_core.artifacts import ArtifactError, Manifest
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import selected_run_dir, show_no_runs
from bt_dashboard.views import run_details as view


def show_evaluation(manifest: Manifest) -> None:
    evaluation = manifest.evaluation
    if evaluation is None:
        return
    st.subheader("External evaluation")
    st.markdown(view.evaluation_text(evaluation))
    if evaluation.not_trained:
        names = ", ".join(f"`{name}`" for name in evaluation.not_trained)
        st.caption(f"Not trained in the run, so not scored: {names}")


def show_dataset(manifest: Manifest) -> None:
    st.subheader("Dataset")
    st.markdown(view.dataset_line(manifest.dataset))
    presentation.show_table(view.split_counts_table(manifest), "split-counts", csv=False)
    skipped = view.skipped_files_table(manifest.dataset)
    st.markdown(f"**Skipped files:** {len(skipped)}")
    if not skipped.empty:
        presentation.show_table(skipped, "skipped-files", csv=False)


def show_setup(manifest: Manifest) -> None:
    config_column, versions_column = st.columns(2)
    with config_column:
        st.subheader("Config")
        presentation.show_table(view.key_value_table(manifest.config), "config", csv=False)
    with versions_column:
        st.subheader("Versions")
        presentation.show_table(view.key_value_table(view.environment(manifest)), "versions", csv=False)


def show_timing(manifest: Manifest) -> None:
    st.subheader("Timing")
    st.markdown(view.timing_line(manifest))


def show_model_cards(run_dir, manifest: Manifest) -> None:
    cards = view.model_cards(run_dir, manifest)
    if not cards:
        return
    st.subheader("Model cards")
    for name, text in cards.items():
        with st.expander(name):
            st.markdown(text)


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
    st.caption(view.run_caption(manifest, run_dir))
    show_evaluation(manifest)
    show_dataset(manifest)
    st.subheader("Models")
    presentation.show_table(view.model_status_table(manifest), "models", csv=False)
    show_model_cards(run_dir, manifest)
    show_setup(manifest)
    show_timing(manifest)


run_details_page()
