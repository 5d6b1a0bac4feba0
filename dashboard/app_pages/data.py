"""Data page: the data the run was trained on, from its stored profile (data/ of the run),
so it works without the dataset folder: class counts, image sizes and channels, intensity
histograms, random images per class, the augmentation and the duplicate groups."""

import streamlit as st

from bt_core.artifacts import ArtifactError, DataProfile
from bt_core.artifacts.layout import training_run_dir
from bt_dashboard import loaders, presentation
from bt_dashboard.run_picker import open_selected_run
from bt_dashboard.views import data as view
from bt_dashboard.views import run_details

THUMBNAIL_WIDTH = 112  # px on screen; presentation mode shows them larger
PRESENTING_THUMBNAIL_WIDTH = 160


def show_thumbnails(thumbnails: list[view.Thumbnail]) -> None:
    if not thumbnails:
        st.caption("No image stored.")
        return
    width = PRESENTING_THUMBNAIL_WIDTH if presentation.presentation_enabled() else THUMBNAIL_WIDTH
    st.image([t.image for t in thumbnails], caption=[t.caption for t in thumbnails], width=width)


def show_counts(profile: DataProfile, stem: str) -> None:
    st.subheader("Class counts per split")
    presentation.show_figure(view.counts_figure(profile), presentation.file_stem(stem, "class-counts"))
    presentation.show_table(view.counts_table(profile), presentation.file_stem(stem, "class-counts"))


def show_skipped(training_dir, stem: str) -> None:
    """The files the loader could not read: not in the profile (it saw what decoded), in the manifest."""
    try:
        skipped = run_details.skipped_files_table(loaders.load_manifest(training_dir).dataset)
    except ArtifactError as exc:
        st.error(f"The manifest cannot be read: {exc}")
        return
    if skipped.empty:
        return
    st.warning(f"{len(skipped)} file(s) of the dataset could not be read and are in no split, table or "
               "picture below (also listed on the Run page).")
    with st.expander("Unreadable files"):
        presentation.show_table(skipped, presentation.file_stem(stem, "unreadable-files"))


def show_sizes(profile: DataProfile, stem: str) -> None:
    st.subheader("Image sizes and channels before resizing")
    st.caption(view.sizes_caption(profile))
    presentation.show_figure(view.sizes_figure(profile), presentation.file_stem(stem, "image-sizes"))
    presentation.show_table(view.sizes_table(profile), presentation.file_stem(stem, "image-sizes"))
    st.markdown("**Files per colour mode** (Pillow: `L` grey, `RGB` colour, `RGBA` with transparency)")
    presentation.show_table(view.modes_table(profile), presentation.file_stem(stem, "colour-modes"))


def show_histograms(profile: DataProfile, stem: str) -> None:
    st.subheader("Intensity histograms per class")
    st.caption(view.histogram_caption(profile))
    regions = view.histogram_regions(profile)
    if not regions:
        st.caption("The profile holds no histograms.")
        return
    for region, tab in zip(regions, st.tabs([view.REGION_LABELS[r] for r in regions])):
        with tab:
            presentation.show_figure(view.histogram_figure(profile, region),
                                     presentation.file_stem(stem, "histogram", region))


def show_grid(profile: DataProfile) -> None:
    st.subheader("Random images per class")
    st.caption(f"A seeded sample (seed {profile.record.get('seed')}) of every split, as the models see them "
               f"(after the image ops), shrunk to {profile.record.get('thumbnail_size')} px.")
    for name, thumbnails in view.grid_by_class(profile).items():
        st.markdown(f"**{name}**")
        show_thumbnails(thumbnails)


def show_augmentation(profile: DataProfile) -> None:
    st.subheader("Augmentation preview")
    st.caption(view.augmentation_caption(profile))
    for title, thumbnails in view.augmentation_rows(profile):
        st.markdown(title)
        show_thumbnails(thumbnails)


def show_duplicates(profile: DataProfile, stem: str) -> None:
    st.subheader("Duplicate groups")
    st.caption(view.duplicates_caption(profile))
    table = view.duplicate_groups_table(profile)
    if table.empty:
        return
    presentation.show_table(table, presentation.file_stem(stem, "duplicate-groups"))
    for title, thumbnails in view.duplicate_examples(profile):
        st.markdown(title)
        show_thumbnails(thumbnails)


def data_page() -> None:
    st.title("Data")
    run = open_selected_run()  # a run that cannot be opened says why, as on every page
    if run is None:
        return
    training_dir = training_run_dir(run.directory) or run.directory  # an evaluation shows its run's data
    try:
        profile = loaders.load_data_profile(str(training_dir))
    except ArtifactError as exc:
        st.error(f"The data profile cannot be read: {exc}")
        return
    if profile is None:
        st.info(view.missing_profile_line(str(training_dir)))
        return
    if training_dir != run.directory:
        st.caption(f"An external evaluation: this is the data its training run `{training_dir.name}` was trained on.")
    stem = training_dir.name
    show_counts(profile, stem)
    show_skipped(training_dir, stem)
    show_sizes(profile, stem)
    show_histograms(profile, stem)
    show_grid(profile)
    show_augmentation(profile)
    show_duplicates(profile, stem)


data_page()
