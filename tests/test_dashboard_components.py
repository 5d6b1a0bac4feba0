"""The dashboard's pure parts: settings precedence, tables, labels and the chart."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bt_core.artifacts import RunSummary, load_run
from dashboard import components as c
from dashboard.settings import ARTIFACTS_ENV, artifacts_dir
from fabricate import CLASS_NAMES, SKIPPED, SPLIT_SIZES

# --------------------------------------------------------------------------- settings


def test_command_line_beats_environment_and_default():
    argv = ["--artifacts", "/runs/from-cli"]
    assert artifacts_dir(argv, {ARTIFACTS_ENV: "/runs/from-env"}) == Path("/runs/from-cli")


def test_environment_beats_default():
    assert artifacts_dir([], {ARTIFACTS_ENV: "/runs/from-env"}) == Path("/runs/from-env")


def test_default_is_artifacts_relative_to_the_current_directory():
    assert artifacts_dir([], {}) == Path("artifacts")
    assert not artifacts_dir([], {}).is_absolute()


def test_empty_environment_variable_is_ignored():
    assert artifacts_dir([], {ARTIFACTS_ENV: ""}) == Path("artifacts")


@pytest.mark.parametrize(
    "argv",
    [
        ["--server.port", "8599", "--artifacts", "/runs/x"],
        ["-q", "tests/test_x.py", "--artifacts=/runs/x", "--other", "1"],
    ],
)
def test_foreign_arguments_are_ignored(argv):
    assert artifacts_dir(argv, {}) == Path("/runs/x")


def test_abbreviated_flag_is_not_taken_for_artifacts():
    assert artifacts_dir(["--art", "/runs/x"], {}) == Path("artifacts")


def test_defaults_read_sys_argv_and_os_environ(monkeypatch):
    monkeypatch.setattr("sys.argv", ["dashboard/app.py"])
    monkeypatch.setenv(ARTIFACTS_ENV, "/runs/env")
    assert artifacts_dir() == Path("/runs/env")
    monkeypatch.setattr("sys.argv", ["dashboard/app.py", "--artifacts", "/runs/cli"])
    assert artifacts_dir() == Path("/runs/cli")


# --------------------------------------------------------------------------- models table


@pytest.fixture
def run(fabricated_run):
    return load_run(fabricated_run.run_dir)


@pytest.fixture
def table(run):
    return c.models_table(run)


def test_models_table_has_one_row_per_model_in_manifest_order(table, fabricated_run):
    assert list(table[c.MODEL]) == fabricated_run.model_names
    assert list(table.columns) == c.MODEL_TABLE_COLUMNS


# Spelled out rather than taken from components, so a wrong mapping there fails here.
EXPECTED_METRIC_KEYS = {
    "Accuracy": "accuracy",
    "Macro precision": "macro_precision",
    "Macro recall": "macro_recall",
    "Macro F1": "macro_f1",
    "Macro AUC (OvR)": "macro_auc",
}


def test_models_table_metrics_are_the_written_ones(table, fabricated_run):
    rows = table.set_index(c.MODEL)
    for name, metrics in fabricated_run.metrics.items():
        for column, key in EXPECTED_METRIC_KEYS.items():
            assert rows.loc[name, column] == pytest.approx(metrics[key]), (name, column)
        assert rows.loc[name, c.STATUS] == "done"
        assert rows.loc[name, c.PROBLEM] == ""
    info = fabricated_run.manifest["models"]["mobilenet_v2"]
    assert rows.loc["mobilenet_v2", c.TRAINABLE_PARAMS] == info["params_trainable"]
    assert rows.loc["mobilenet_v2", c.TRAIN_SECONDS] == pytest.approx(info["train_seconds"])
    assert rows.loc["mobilenet_v2", c.EPOCHS_RUN] == info["epochs_run"]


def test_failed_and_corrupt_models_keep_a_row_with_the_reason_and_blank_metrics(table, fabricated_run):
    rows = table.set_index(c.MODEL)
    failed = rows.loc[fabricated_run.failed_model]
    assert failed[c.STATUS] == "failed"
    assert failed[c.PROBLEM] == fabricated_run.failed_error
    assert pd.isna(failed[c.TRAINABLE_PARAMS])
    corrupt = rows.loc[fabricated_run.corrupt_model]
    assert corrupt[c.STATUS] == c.STATUS_BROKEN
    assert corrupt[c.PROBLEM].startswith("ParserError")
    for name in (fabricated_run.failed_model, fabricated_run.corrupt_model):
        assert rows.loc[name, c.METRIC_COLUMNS].isna().all(), name
    assert c.model_problems(table) == [
        (fabricated_run.corrupt_model, corrupt[c.PROBLEM]),
        (fabricated_run.failed_model, fabricated_run.failed_error),
    ]


def test_best_value_of_each_metric_column_is_highlighted(table, fabricated_run):
    styles = c.best_value_styles(table)
    for column, key in EXPECTED_METRIC_KEYS.items():
        best = max(fabricated_run.metrics, key=lambda name: fabricated_run.metrics[name][key])
        highlighted = table.loc[styles[column] == c.BEST_VALUE_CSS, c.MODEL].tolist()
        assert highlighted == [best], column
    other_columns = [col for col in table.columns if col not in c.METRIC_COLUMNS]
    assert (styles[other_columns] == "").all().all()


def test_best_value_styles_ignore_columns_without_values():
    table = pd.DataFrame({c.MODEL: ["a"], c.ACCURACY: [np.nan], c.PROBLEM: ["boom"]})
    assert (c.best_value_styles(table) == "").all().all()


def test_styled_table_shows_percentages_and_dashes(table, fabricated_run):
    html = c.style_models_table(table).to_html()
    accuracy = fabricated_run.metrics["efficientnet_b0"]["accuracy"]
    assert f"{accuracy:.1%}" in html
    assert c.MISSING in html
    assert c.BEST_VALUE_CSS.split(";")[0] in html


def test_chart_has_one_bar_group_per_usable_model_and_three_metrics(table, fabricated_run):
    figure = c.metrics_bar_chart(table)
    assert [trace.name for trace in figure.data] == c.CHART_METRICS
    accuracy = next(trace for trace in figure.data if trace.name == c.ACCURACY)
    assert list(accuracy.x) == fabricated_run.good_models
    expected = [fabricated_run.metrics[name]["accuracy"] for name in fabricated_run.good_models]
    assert list(accuracy.y) == pytest.approx(expected)


def test_chart_input_is_empty_when_no_model_is_usable(table):
    broken_only = table[table[c.PROBLEM] != ""]
    assert c.metrics_long(broken_only).empty


# --------------------------------------------------------------------------- labels and overview


def test_run_label_names_run_dataset_and_model_count():
    summary = RunSummary("20240501-run", Path("/a/20240501-run"), "2024-05-01", "figshare", 3)
    assert c.run_label(summary) == "20240501-run · figshare · 3 models"
    single = RunSummary("r", Path("/a/r"), "", "", 1)
    assert c.run_label(single) == "r · unknown dataset · 1 model"


def test_run_label_of_a_broken_run_carries_the_error():
    summary = RunSummary("r", Path("/a/r"), "", "", 0, error="run has artifact format 99.0")
    label = c.run_label(summary)
    assert label.startswith("⚠ r") and "run has artifact format 99.0" in label


def test_demo_command_names_make_demo_and_the_quoted_folder():
    command = c.demo_command(Path("/tmp/my runs"))
    assert command.splitlines()[0] == "make demo"
    assert "python train_all.py --demo --out '/tmp/my runs'" in command


def test_run_overview_summarises_the_manifest(run):
    overview = c.run_overview(run)
    n_classes = len(CLASS_NAMES)
    assert overview == {
        "dataset": "figshare-demo",
        "layout": "class_folders",
        "split_counts": {split: size * n_classes for split, size in SPLIT_SIZES.items()},
        "img_size": 64,
        "backend": "tensorflow",
        "device": "CPU",
        "skipped_files": len(SKIPPED),
    }
    line = c.overview_line(overview)
    assert "**figshare-demo**" in line and "test 48" in line and "64×64 px" in line
    assert "2 skipped files" in line


def test_run_overview_tolerates_a_bare_manifest(run):
    run.manifest = {"class_names": CLASS_NAMES}
    overview = c.run_overview(run)
    assert overview["split_counts"] == {"train": 0, "val": 0, "test": 0}
    assert overview["skipped_files"] == 0
    assert "unknown" in c.overview_line(overview)


# --------------------------------------------------------------------------- run details


def test_split_counts_table_has_classes_splits_and_totals(fabricated_run):
    table = c.split_counts_table(fabricated_run.manifest).set_index("Class")
    assert list(table.index) == [*CLASS_NAMES, "total"]
    assert list(table.columns) == ["train", "val", "test", "total"]
    for split, size in SPLIT_SIZES.items():
        assert table.loc["glioma", split] == fabricated_run.counts[split]["glioma"] == size
        assert table.loc["total", split] == size * len(CLASS_NAMES)
    assert table.loc["total", "total"] == sum(SPLIT_SIZES.values()) * len(CLASS_NAMES)


def test_split_counts_table_shows_a_counted_class_missing_from_class_names():
    manifest = {"class_names": ["a"], "dataset": {"counts": {"train": {"a": 2, "b": "x"}, "test": {"b": 1}}}}
    table = c.split_counts_table(manifest).set_index("Class")
    assert list(table.index) == ["a", "b", "total"]
    assert table.loc["b", "train"] == 0  # unreadable count
    assert table.loc["b", "test"] == 1


def test_skipped_files_table(fabricated_run):
    table = c.skipped_files_table(fabricated_run.manifest)
    assert table.to_dict("records") == SKIPPED
    assert list(c.skipped_files_table({}).columns) == ["path", "reason"]


def test_key_value_table_writes_values_as_text():
    table = c.key_value_table({"models": ["a", "b"], "weights": None, "epochs": 3})
    assert table.to_dict("records") == [
        {"Setting": "models", "Value": "a, b"},
        {"Setting": "weights", "Value": ""},
        {"Setting": "epochs", "Value": "3"},
    ]


def test_model_status_table_follows_the_manifest(fabricated_run):
    table = c.model_status_table(fabricated_run.manifest).set_index(c.MODEL)
    assert list(table.index) == fabricated_run.model_names
    assert table.loc[fabricated_run.failed_model, "Error"] == fabricated_run.failed_error
    assert table.loc[fabricated_run.failed_model, c.STATUS] == "failed"


def test_timing_summary():
    assert c.timing_summary({"timing": {"started": "s", "finished": "f", "seconds": 185}}) == {
        "Started": "s",
        "Finished": "f",
        "Duration": "3 min 5 s",
    }
    assert c.timing_summary({}) == {"Started": c.MISSING, "Finished": c.MISSING, "Duration": c.MISSING}
