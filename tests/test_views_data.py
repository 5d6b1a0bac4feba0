"""The Data page: its views against the stored profile, and the page (AppTest) on a
fabricated run with and without a profile, and without the dataset folder."""

import shutil

import numpy as np
import pytest

from bt_core import artifacts as art
from bt_core.artifacts.layout import data_profile_path
from bt_dashboard.views import data as view
from fabricate import PROFILE_COPY, SKIPPED, fabricate_data_profile, fabricate_run

DATA_PAGE = "app_pages/data.py"


@pytest.fixture(scope="module")
def profiled_run(tmp_path_factory):
    """A fabricated run with a data profile, its dataset folder removed afterwards."""
    base = tmp_path_factory.mktemp("data-page")
    fabricated = fabricate_run(base / "artifacts")
    record = fabricate_data_profile(fabricated.run_dir, base / "data", seed=0)
    shutil.rmtree(base / "data")  # the page reads the run only
    return fabricated, record, art.load_data_profile(fabricated.run_dir)


def test_counts_follow_the_stored_split(profiled_run):
    _fabricated, record, profile = profiled_run
    frame = view.counts_frame(profile)
    assert list(dict.fromkeys(frame[view.SPLIT])) == ["train", "val", "test"]
    for row in frame.itertuples(index=False):
        assert row[2] == record["counts"][row[0]].get(row[1], 0)
    table = view.counts_table(profile).set_index(view.CLASS)
    assert (table["total"] == table[["train", "val", "test"]].sum(axis=1)).all()
    figure = view.counts_figure(profile)
    assert [trace.name for trace in figure.data] == profile.class_names
    assert list(figure.data[0].y) == frame[frame[view.CLASS] == profile.class_names[0]][view.IMAGES].tolist()


def test_sizes_and_modes_tables(profiled_run):
    _fabricated, record, profile = profiled_run
    sizes = view.sizes_table(profile)
    assert sizes["total"].sum() == sum(row["count"] for row in record["sizes"]["table"])
    colour = sizes[sizes[view.CHANNELS] == 3]
    assert colour[[view.WIDTH, "pituitary", "total"]].values.tolist() == [[40, 1, 1]]
    modes = view.modes_table(profile).set_index(view.CLASS)
    assert modes.loc["pituitary", "RGB"] == 1 and modes.loc["glioma", "RGB"] == 0
    assert "2 distinct sizes" in view.sizes_caption(profile)
    assert sum(len(trace.x) for trace in view.sizes_figure(profile).data) == len(record["sizes"]["table"])


def test_histograms_are_shares_of_each_class_pixels(profiled_run):
    _fabricated, record, profile = profiled_run
    assert view.histogram_regions(profile) == ["image", "border", "background"]
    frame = view.histogram_frame(profile, "border")
    counts = record["histograms"]["counts"]["border"]["glioma"]
    np.testing.assert_allclose(frame["glioma"].to_numpy(), np.array(counts) / sum(counts))
    assert frame["grey level"].tolist()[:3] == [0, 4, 8]
    with pytest.raises(ValueError, match="no histograms of region 'head'"):
        view.histogram_frame(profile, "head")


def test_thumbnails_are_grouped_and_captioned(profiled_run):
    _fabricated, record, profile = profiled_run
    grid = view.grid_by_class(profile)
    assert list(grid) == profile.class_names
    assert sum(len(t) for t in grid.values()) == len(record["grid"]["ids"])
    rows = view.augmentation_rows(profile)
    assert [len(frames) for _title, frames in rows] == [1 + record["augmentation"]["draws"]] * len(rows)
    assert [t.caption for t in rows[0][1]][:2] == ["original", "draw 1"]
    examples = view.duplicate_examples(profile)
    title, thumbs = examples[0]
    assert title.startswith("Group ") and "glioma / meningioma" in title
    assert sorted(t.caption for t in thumbs) == [
        f"{m['split']}, {m['label']}: {m['id'].rsplit('/', 1)[-1]}" for m in sorted(
            record["duplicates"]["shown"][0]["shown"], key=lambda m: f"{m['split']}, {m['label']}")]
    assert {m["id"] for m in record["duplicates"]["shown"][0]["shown"]} == set(PROFILE_COPY)
    assert {m["label"] for m in record["duplicates"]["shown"][0]["shown"]} == {"glioma", "meningioma"}
    table = view.duplicate_groups_table(profile)
    assert table.loc[0, "Label conflict"] and table.loc[0, "Splits"] == "train 1, test 1"


def test_the_page_shows_every_section_without_the_dataset_folder(open_app, profiled_run):
    fabricated, record, _profile = profiled_run
    app = open_app(fabricated.run_dir.parent)
    app.switch_page(DATA_PAGE).run()
    assert not app.exception, [e.message for e in app.exception]
    assert app.title[0].value == "Data"
    assert [s.value for s in app.subheader] == [
        "Class counts per split", "Image sizes and channels before resizing", "Intensity histograms per class",
        "Random images per class", "Augmentation preview", "Duplicate groups"]
    assert len(app.get("plotly_chart")) == 2 + len(record["histograms"]["regions"])
    rows = app.get("image")  # one st.image per class, preview and duplicate group
    assert len(rows) == 4 + len(record["augmentation"]["previews"]) + len(record["duplicates"]["shown"])
    assert [len(row.proto.imgs) for row in rows[4:6]] == [1 + record["augmentation"]["draws"]] * 2
    assert [image.caption for image in rows[4].proto.imgs][:2] == ["original", "draw 1"]
    captions = " ".join(c.value for c in app.caption)
    assert "1 duplicate pair(s) (1 exact, 0 near)" in captions and "carry two labels" in captions
    # The files the loader skipped are in no table above: the manifest's list says so.
    assert [w.value for w in app.warning] == [
        f"{len(SKIPPED)} file(s) of the dataset could not be read and are in no split, table or picture below "
        "(also listed on the Run page)."]
    unreadable = [t.value for t in app.dataframe if list(t.value.columns) == ["path", "reason"]]
    assert unreadable and unreadable[0]["path"].tolist() == [item["path"] for item in SKIPPED]


def test_a_run_without_a_profile_says_which_command_writes_it(open_app, tmp_path):
    fabricated = fabricate_run(tmp_path / "artifacts")
    app = open_app(fabricated.run_dir.parent)
    app.switch_page(DATA_PAGE).run()
    assert not app.exception
    assert [i.value for i in app.info] == [view.missing_profile_line(str(fabricated.run_dir))]
    assert f"python train_all.py --profile {fabricated.run_dir}" in app.info[0].value
    assert not app.get("plotly_chart")

    data_profile_path(fabricated.run_dir).parent.mkdir()
    data_profile_path(fabricated.run_dir).write_text("{oops")
    app.run()
    assert not app.exception
    assert "The data profile cannot be read" in app.error[0].value and "JSONDecodeError" in app.error[0].value
