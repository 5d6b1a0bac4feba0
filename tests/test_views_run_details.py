"""bt_dashboard.views.run_details: the Run page's tables from the manifest (no Streamlit)."""

import pytest

from bt_core.artifacts import DatasetRecord, Evaluation, Manifest, load_manifest, load_run
from bt_dashboard.views import common
from bt_dashboard.views import models as models_view
from bt_dashboard.views import run_details as view

from fabricate import CLASS_NAMES, SKIPPED, SPLIT_SIZES


def bare(**fields) -> Manifest:
    return Manifest.from_json({"format_version": "1.3", "run_id": "r", "class_names": ["a"], **fields})


@pytest.fixture
def run(fabricated_run):
    return load_run(fabricated_run.run_dir)


@pytest.fixture
def table(run):
    return models_view.models_table(run)


@pytest.fixture
def manifest(fabricated_run):
    return load_manifest(fabricated_run.run_dir)


def test_split_counts_table_has_classes_splits_and_totals(fabricated_run, manifest):
    table = view.split_counts_table(manifest).set_index("Class")
    assert list(table.index) == [*CLASS_NAMES, "total"]
    assert list(table.columns) == ["train", "val", "test", "total"]
    for split, size in SPLIT_SIZES.items():
        assert table.loc["glioma", split] == fabricated_run.counts[split]["glioma"] == size
        assert table.loc["total", split] == size * len(CLASS_NAMES)
    assert table.loc["total", "total"] == sum(SPLIT_SIZES.values()) * len(CLASS_NAMES)


def test_split_counts_table_shows_a_counted_class_missing_from_class_names():
    manifest = bare(dataset={"counts": {"train": {"a": 2, "b": "x"}, "test": {"b": 1}}})
    table = view.split_counts_table(manifest).set_index("Class")
    assert list(table.index) == ["a", "b", "total"]
    assert table.loc["b", "train"] == 0  # unreadable count
    assert table.loc["b", "test"] == 1


def test_skipped_files_table(manifest):
    table = view.skipped_files_table(manifest.dataset)
    assert table.to_dict("records") == SKIPPED
    assert list(view.skipped_files_table(DatasetRecord()).columns) == ["path", "reason"]


def test_key_value_table_writes_values_as_text():
    table = view.key_value_table({"models": ["a", "b"], "weights": None, "epochs": 3})
    assert table.to_dict("records") == [
        {"Setting": "models", "Value": "a, b"},
        {"Setting": "weights", "Value": ""},
        {"Setting": "epochs", "Value": "3"},
    ]


def test_model_status_table_follows_the_manifest(fabricated_run, manifest):
    table = view.model_status_table(manifest).set_index(common.MODEL)
    assert list(table.index) == fabricated_run.model_names
    assert table.loc[fabricated_run.failed_model, "Error"] == fabricated_run.failed_error
    assert table.loc[fabricated_run.failed_model, common.STATUS] == "failed"
    assert table.loc[fabricated_run.failed_model, "Input size"] == "224"  # stored as [224, 224, 3]
    done = fabricated_run.good_models[0]
    assert table.loc[done, "Family"] == "custom" and table.loc[done, common.EPOCHS_RUN] == 3


def test_timing_summary_reads_as_dates_in_utc_and_h_mm_ss():
    manifest = bare(timing={"started": "2026-12-01T08:55:11+00:00", "finished": "2026-12-01T10:02:40+01:00",
                            "seconds": 3752.4})
    assert view.timing_summary(manifest) == {
        "Started": "2026-12-01 08:55 UTC",
        "Finished": "2026-12-01 09:02 UTC",  # +01:00 converted
        "Duration": "1:02:32",
    }
    assert view.timing_line(manifest) == (
        "**Started** 2026-12-01 08:55 UTC · **Finished** 2026-12-01 09:02 UTC · **Duration** 1:02:32"
    )
    assert set(view.timing_summary(bare()).values()) == {common.MISSING}


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2026-12-01T08:55:11+00:00", "2026-12-01 08:55 UTC"),
    ("2026-12-01T23:30:00-02:00", "2026-12-02 01:30 UTC"),  # the next day in UTC
    ("2024-07-01T12:00:00", "2024-07-01 12:00"),  # naive: no zone claimed
    ("yesterday", "yesterday"),
    ("", common.MISSING),
    (None, common.MISSING),
])
def test_readable_time(stamp, expected):
    assert common.readable_time(stamp) == expected


@pytest.mark.parametrize(("seconds", "expected"), [
    (0, "0:00:00"), (59.6, "0:01:00"), (185, "0:03:05"), (93_900, "26:05:00"),
    ("n/a", common.MISSING), (None, common.MISSING), (-1, common.MISSING),
])
def test_clock_duration(seconds, expected):
    assert common.clock_duration(seconds) == expected


def test_run_caption_shows_a_readable_creation_time(manifest):
    caption = view.run_caption(manifest, "/runs/r")
    assert f"`{manifest.run_id}` · created {common.readable_time(manifest.created)} · artifact format" in caption
    assert "T" not in common.readable_time(manifest.created)


def test_run_page_shows_the_timing_uncut(open_app, fabricated_run):
    app = open_app(fabricated_run.run_dir.parent)
    app.switch_page("app_pages/run_details.py").run()
    assert not app.exception
    manifest = load_manifest(fabricated_run.run_dir)
    assert view.timing_line(manifest) in [markdown.value for markdown in app.markdown]
    assert not app.metric  # st.metric cuts a long value with an ellipsis at 1280 px


def test_evaluation_text_names_the_run_the_data_and_the_negative_class():
    evaluation = Evaluation(of_run="run1", name="ext", mode="tumor", data="/data/ext", negative_class="no_tumor")
    text = view.evaluation_text(evaluation)
    assert "**ext**" in text and "`run1`" in text and "`/data/ext`" in text
    assert "1 − P(no_tumor)" in text
    assert "on the run's classes" in view.evaluation_text(Evaluation("run1", "ext", "classes", "/d"))


def test_dataset_line_and_environment(manifest):
    assert view.dataset_line(manifest.dataset) == (
        "**figshare-demo** · layout `class_folders` · root `data/figshare` · fingerprint `0123abcd`"
    )
    assert view.environment(manifest) == {"python": "3.11.9", "keras": "3.15.1", "tensorflow": "2.21.0",
                                          "backend": "tensorflow", "device": "CPU"}


def test_model_cards_are_the_stored_files_or_say_how_to_make_them(fabricated_run, manifest):
    from bt_core.artifacts.layout import model_card_path
    from bt_core.runs.model_card import write_model_cards

    command = f"python train_all.py --cards {fabricated_run.run_dir}"
    before = view.model_cards(fabricated_run.run_dir, manifest)
    assert fabricated_run.failed_model not in before  # never finished: no card to ask for
    assert set(before) == {*fabricated_run.good_models, fabricated_run.corrupt_model}
    assert all(text.startswith("No model card yet") and command in text for text in before.values())

    write_model_cards(fabricated_run.run_dir)
    cards = view.model_cards(fabricated_run.run_dir, manifest)
    for name in fabricated_run.good_models:
        assert cards[name] == model_card_path(fabricated_run.run_dir, name).read_text(encoding="utf-8")
        assert cards[name].startswith(f"# Model card: {name}\n")
    assert command in cards[fabricated_run.corrupt_model]  # its predictions cannot be read: no card

    model_card_path(fabricated_run.run_dir, fabricated_run.good_models[0]).write_bytes(b"\xff\xfe broken")
    broken = view.model_cards(fabricated_run.run_dir, manifest)[fabricated_run.good_models[0]]
    assert broken.startswith("The model card cannot be read:") and "MODEL_CARD.md" in broken
    assert view.model_cards(fabricated_run.run_dir, bare(evaluation={"of_run": "r", "name": "e", "mode": "tumor",
                                                                      "data": "/d"})) == {}


def test_run_page_shows_each_models_card_in_an_expander(open_app, fabricated_run):
    from bt_core.runs.model_card import NOT_FOR_CLINICAL_USE, write_model_cards

    write_model_cards(fabricated_run.run_dir)
    app = open_app(fabricated_run.run_dir.parent)
    app.switch_page("app_pages/run_details.py").run()
    assert not app.exception
    assert "Model cards" in [header.value for header in app.subheader]
    labels = [expander.label for expander in app.expander]
    assert labels == [*fabricated_run.good_models, fabricated_run.corrupt_model]
    first = app.expander[0]
    texts = [markdown.value for markdown in first.markdown]
    assert any(NOT_FOR_CLINICAL_USE in text for text in texts)
    assert any("## Test metrics with 95% intervals" in text for text in texts)
    corrupt = [markdown.value for markdown in app.expander[-1].markdown]
    assert any("python train_all.py --cards" in text for text in corrupt)
