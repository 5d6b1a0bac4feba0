"""bt_dashboard.views.models: the Models page's overview, models table and leaderboard (no Streamlit)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from bt_core.artifacts import Manifest, load_run
from bt_core.metrics import run_comparison
from bt_dashboard.views import common
from bt_dashboard.views import figures
from bt_dashboard.views import leaderboard_figure
from bt_dashboard.views import models as view

from fabricate import CLASS_NAMES, ZOO_MODELS, ZOO_TRAIN_GAP
from fabricate import SKIPPED, SPLIT_SIZES


RESAMPLES = 200


@pytest.fixture(scope="module")
def leaderboard(run):
    return run_comparison.leaderboard(run, n_resamples=RESAMPLES, seed=0)


@pytest.fixture(scope="module")
def table(run, leaderboard, model_data):
    _data, excluded = run_comparison.run_model_data(run)
    return view.leaderboard_table(run, leaderboard, excluded)


# Spelled out rather than taken from components, so a wrong mapping there fails here.
EXPECTED_METRIC_KEYS = {
    "Accuracy": "accuracy",
    "Macro precision": "macro_precision",
    "Macro recall": "macro_recall",
    "Macro F1": "macro_f1",
    "Macro AUC (OvR)": "macro_auc",
}


MODELS = ["simple_cnn", "custom_cnn", "efficientnet_b0"]


@pytest.fixture
def colors():
    return figures.model_colors(MODELS)


def test_leaderboard_has_every_manifest_model_in_order(table, zoo):
    assert list(table[common.MODEL]) == zoo.model_names
    assert list(table.columns) == view.LEADERBOARD_COLUMNS


def test_leaderboard_scores_are_the_fabricated_ones(table, zoo):
    rows = table.set_index(common.MODEL)
    for name, metrics in zoo.metrics.items():
        assert rows.loc[name, common.ACCURACY] == pytest.approx(metrics["accuracy"])
        assert rows.loc[name, common.MACRO_F1] == pytest.approx(metrics["macro_f1"])
        assert rows.loc[name, common.MACRO_AUC] == pytest.approx(metrics["macro_auc"])
        assert rows.loc[name, view.LOG_LOSS] == pytest.approx(metrics["log_loss"], rel=1e-6)
        assert rows.loc[name, view.ACCURACY_GAP] == pytest.approx(ZOO_TRAIN_GAP)


def test_leaderboard_tumor_columns_collapse_to_tumor_vs_no_tumor(table, zoo):
    predictions = zoo.predictions["custom_cnn"]
    is_tumor = predictions["label"] != "notumor"
    called_tumor = predictions["pred"] != "notumor"
    row = table.set_index(common.MODEL).loc["custom_cnn"]
    assert row[view.TUMOR_SENSITIVITY] == pytest.approx((called_tumor & is_tumor).sum() / is_tumor.sum())
    assert row[view.TUMOR_SPECIFICITY] == pytest.approx((~called_tumor & ~is_tumor).sum() / (~is_tumor).sum())
    assert row[view.TUMOR_AUC] == pytest.approx(roc_auc_score(is_tumor, 1 - predictions["p_notumor"]))


def test_leaderboard_intervals_contain_the_estimate(table, leaderboard):
    for _, row in leaderboard.iterrows():
        assert row["accuracy_lower"] <= row["accuracy"] <= row["accuracy_upper"]
    text = table.set_index(common.MODEL).loc["custom_cnn", view.ACCURACY_CI]
    row = leaderboard.set_index("model").loc["custom_cnn"]
    assert text == f"{row['accuracy_lower'] * 100:.1f}–{row['accuracy_upper']:.1%}"


def test_broken_models_keep_a_row_with_their_reason_and_no_scores(table, zoo):
    rows = table.set_index(common.MODEL)
    assert rows.loc[zoo.failed_model, common.PROBLEM] == zoo.failed_error
    assert rows.loc[zoo.corrupt_model, common.PROBLEM].startswith("ParserError")
    assert rows.loc[zoo.corrupt_model, common.STATUS] == common.STATUS_BROKEN
    assert rows.loc[zoo.failed_model, list(view.SCORE_COLUMNS)].isna().all()
    assert rows.loc[zoo.failed_model, view.ACCURACY_CI] == ""


def test_best_values_follow_each_columns_direction():
    table = pd.DataFrame({common.ACCURACY: [0.8, 0.9, np.nan], view.LOG_LOSS: [0.3, 0.5, np.nan],
                          view.ACCURACY_GAP: [-0.01, 0.2, np.nan], common.TRAIN_SECONDS: [50.0, 10.0, np.nan]})
    assert view.best_rows(table, common.ACCURACY).tolist() == [False, True, False]
    assert view.best_rows(table, view.LOG_LOSS).tolist() == [True, False, False]
    assert view.best_rows(table, view.ACCURACY_GAP).tolist() == [True, False, False]
    assert view.best_rows(table, common.TRAIN_SECONDS).tolist() == [False, True, False]
    styles = view.leaderboard_styles(table)
    assert styles.loc[1, common.ACCURACY] == common.BEST_VALUE_CSS and styles.loc[0, common.ACCURACY] == ""


def test_best_accuracy_is_the_most_skilled_fabricated_model(table):
    best = table.loc[view.best_rows(table, common.ACCURACY), common.MODEL].tolist()
    assert best == [max(ZOO_MODELS, key=lambda name: ZOO_MODELS[name][0])]


def test_formatted_leaderboard_shows_percentages_dashes_and_stars(table, zoo):
    shown = view.formatted_leaderboard(table).set_index(common.MODEL)
    accuracy = zoo.metrics["custom_cnn"]["accuracy"]
    assert shown.loc["custom_cnn", common.ACCURACY].startswith(f"{accuracy:.1%}")
    assert shown.loc[zoo.failed_model, common.ACCURACY] == common.MISSING
    assert shown[common.ACCURACY].str.endswith("★").sum() >= 1
    assert shown.loc["simple_cnn", common.TRAINABLE_PARAMS].startswith("10,000")


def test_ci_text():
    assert view.ci_text(0.851, 0.902) == "85.1–90.2%"
    assert view.ci_text(0.9512, 0.98, percent=False) == "0.951–0.980"
    assert view.ci_text(None, 0.9) == ""


@pytest.fixture
def fabricated(fabricated_run):
    """The complete fabricated run (tests/conftest.py), read back."""
    return load_run(fabricated_run.run_dir)


@pytest.fixture
def models_table(fabricated):
    return view.models_table(fabricated)


def test_models_table_has_one_row_per_model_in_manifest_order(models_table, fabricated_run):
    assert list(models_table[common.MODEL]) == fabricated_run.model_names
    assert list(models_table.columns) == view.MODEL_TABLE_COLUMNS


def test_models_table_metrics_are_the_written_ones(models_table, fabricated_run):
    rows = models_table.set_index(common.MODEL)
    for name, metrics in fabricated_run.metrics.items():
        for column, key in EXPECTED_METRIC_KEYS.items():
            assert rows.loc[name, column] == pytest.approx(metrics[key]), (name, column)
        assert rows.loc[name, common.STATUS] == "done"
        assert rows.loc[name, common.PROBLEM] == ""
    info = fabricated_run.manifest["models"]["mobilenet_v2"]
    assert rows.loc["mobilenet_v2", common.TRAINABLE_PARAMS] == info["params_trainable"]
    assert rows.loc["mobilenet_v2", common.TRAIN_SECONDS] == pytest.approx(info["train_seconds"])
    assert rows.loc["mobilenet_v2", common.EPOCHS_RUN] == info["epochs_run"]


def test_failed_and_corrupt_models_keep_a_row_with_the_reason_and_blank_metrics(models_table, fabricated_run):
    rows = models_table.set_index(common.MODEL)
    failed = rows.loc[fabricated_run.failed_model]
    assert failed[common.STATUS] == "failed"
    assert failed[common.PROBLEM] == fabricated_run.failed_error
    assert pd.isna(failed[common.TRAINABLE_PARAMS])
    corrupt = rows.loc[fabricated_run.corrupt_model]
    assert corrupt[common.STATUS] == common.STATUS_BROKEN
    assert corrupt[common.PROBLEM].startswith("ParserError")
    for name in (fabricated_run.failed_model, fabricated_run.corrupt_model):
        assert rows.loc[name, view.METRIC_COLUMNS].isna().all(), name
    assert view.model_problems(models_table) == [
        (fabricated_run.corrupt_model, corrupt[common.PROBLEM]),
        (fabricated_run.failed_model, fabricated_run.failed_error),
    ]


def test_run_overview_summarises_the_manifest(fabricated):
    overview = view.run_overview(fabricated)
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
    line = view.overview_line(overview)
    assert "**figshare-demo**" in line and "test 48" in line and "64×64 px" in line
    assert "2 skipped files" in line


def test_run_overview_tolerates_a_bare_manifest(fabricated):
    bare = {"format_version": "1.3", "run_id": "bare", "class_names": CLASS_NAMES}
    run = dataclasses.replace(fabricated, manifest=bare, typed_manifest=Manifest.from_json(bare))
    overview = view.run_overview(run)
    assert overview["split_counts"] == {"train": 0, "val": 0, "test": 0}
    assert overview["skipped_files"] == 0
    assert "unknown" in view.overview_line(overview)


def test_leaderboard_ci_figure_draws_each_interval_around_its_estimate(colors):
    leaderboard = pd.DataFrame(
        {"model": ["simple_cnn", "custom_cnn"], "accuracy": [0.8, 0.9], "accuracy_lower": [0.7, 0.85],
         "accuracy_upper": [0.85, 0.95], "macro_f1": [0.78, 0.88], "macro_f1_lower": [0.7, 0.8],
         "macro_f1_upper": [0.8, 0.9], "macro_auc": [0.9, 0.95], "macro_auc_lower": [0.85, 0.9],
         "macro_auc_upper": [0.95, 0.99]}
    )
    figure = view.leaderboard_ci_figure(leaderboard, colors)
    assert len(figure.data) == 6  # 2 models x 3 metrics
    first = figure.data[0]
    assert first.y == ("simple_cnn",) and first.x == (0.8,)
    assert first.error_x.array[0] == pytest.approx(0.05) and first.error_x.arrayminus[0] == pytest.approx(0.1)
    assert first.marker.color == colors["simple_cnn"]
    assert [a.text for a in figure.layout.annotations] == ["Accuracy", "Macro F1", "Macro AUC"]


def test_leaderboard_has_sensitivity_at_95_specificity_and_the_reverse_with_intervals(table, leaderboard):
    columns = list(table.columns)
    assert columns.index(view.SENSITIVITY_AT_SPECIFICITY) == columns.index(view.TUMOR_AUC) + 1
    assert columns[columns.index(view.SENSITIVITY_AT_SPECIFICITY) + 1] == view.SENSITIVITY_AT_SPECIFICITY_CI
    scored = leaderboard.set_index("model")
    rows = table.set_index(common.MODEL)
    for name in scored.index:
        for column, key in ((view.SENSITIVITY_AT_SPECIFICITY, "sensitivity_at_95_specificity"),
                            (view.SPECIFICITY_AT_SENSITIVITY, "specificity_at_95_sensitivity")):
            assert rows.loc[name, column] == scored.loc[name, key]
            assert rows.loc[name, f"{column} {view.CI}"] == view.ci_text(scored.loc[name, f"{key}_lower"],
                                                                      scored.loc[name, f"{key}_upper"])
    shown = view.formatted_leaderboard(table).set_index(common.MODEL)
    value = rows.loc["custom_cnn", view.SENSITIVITY_AT_SPECIFICITY]
    assert shown.loc["custom_cnn", view.SENSITIVITY_AT_SPECIFICITY].startswith(f"{value:.1%}")
    assert "at least 95%" in view.COLUMN_HELP[view.SENSITIVITY_AT_SPECIFICITY]


def test_one_class_columns_hold_the_words_while_scored_columns_stay_numbers(table):
    columns = view.not_measurable_columns(CLASS_NAMES, CLASS_NAMES.index("glioma"))
    assert {view.SENSITIVITY_AT_SPECIFICITY, view.SPECIFICITY_AT_SENSITIVITY_CI, view.TUMOR_SPECIFICITY} <= set(columns)
    assert view.TUMOR_SENSITIVITY not in columns  # tumor images do measure sensitivity
    one_class_like = table.copy()
    for column in columns:  # what a folder of glioma images leaves: these blank for every model
        if column not in view.CI_COLUMNS:
            one_class_like[column] = np.nan
    marked = view.mark_not_measurable(one_class_like, columns)
    # The browser's grid draws a blank number as its placeholder whatever the Styler says: the words are data.
    for column in columns:
        assert set(marked[column]) == {"not measurable"}, column
    assert marked[common.ACCURACY].dtype == "float64"  # still sorts as numbers
    assert marked[common.ACCURACY].tolist() == pytest.approx(table[common.ACCURACY].tolist(), nan_ok=True)
    html = view.style_leaderboard(marked, columns).to_html()  # text columns get no number format
    assert html.count("not measurable") >= len(marked) * len(columns)
    assert set(view.formatted_leaderboard(marked)[view.TUMOR_AUC]) == {"not measurable"}
    # A column with some values keeps its numbers (and its blank cells).
    partly = table.copy()
    partly.loc[0, common.ACCURACY] = np.nan
    assert common.not_measurable_cells(partly, [common.ACCURACY])[common.ACCURACY].dtype == "float64"


@pytest.mark.parametrize("low, high, percent", [(0.975, 0.995, False), (0.981, 0.986, False), (0.9, 1.0, False),
                                                (0.972, 0.981, True), (0.5, 0.99, True), (0.99, 0.99, False)])
def test_axis_ticks_never_repeat_and_cover_the_values(low, high, percent):
    values, labels, (start, end) = leaderboard_figure.axis_ticks(low, high, percent)
    assert len(labels) == len(set(labels)) >= 2
    assert start <= low and end >= high and values[0] <= low + 1e-9 and values[-1] >= high - 1e-9
    parsed = [float(label.rstrip("%")) / (100 if percent else 1) for label in labels]
    assert parsed == pytest.approx(values)  # each label is its value, to the decimals shown


def test_the_macro_auc_panel_of_a_narrow_range_shows_distinct_ticks(colors):
    # The bug: AUCs between 0.975 and 0.995 read "0.98 0.98 0.99 0.99" with tickformat .2f.
    leaderboard = pd.DataFrame(
        {"model": ["simple_cnn", "custom_cnn"], "accuracy": [0.9, 0.92], "macro_f1": [0.9, 0.91],
         "macro_auc": [0.985, 0.99], "macro_auc_lower": [0.975, 0.982], "macro_auc_upper": [0.992, 0.995]}
    )
    figure = view.leaderboard_ci_figure(leaderboard, colors)
    auc_axis = figure.layout.xaxis3
    assert auc_axis.tickmode == "array" and auc_axis.tickformat is None
    assert list(auc_axis.ticktext) == ["0.975", "0.980", "0.985", "0.990", "0.995"]
    assert auc_axis.range[0] <= 0.975 and auc_axis.range[1] >= 0.995
    accuracy_ticks = list(figure.layout.xaxis.ticktext)
    assert len(accuracy_ticks) == len(set(accuracy_ticks)) and all(t.endswith("%") for t in accuracy_ticks)


def test_the_headline_grid_keeps_a_short_list_and_all_columns_keep_every_one(table):
    headline = view.shown_columns(table, all_columns=False)
    assert headline == view.HEADLINE_COLUMNS and headline[0] == common.MODEL
    assert view.ACCURACY_CI not in headline and common.PROBLEM not in headline
    assert view.shown_columns(table, all_columns=True) == view.LEADERBOARD_COLUMNS
    # A short header names its column in full on hover; a long one keeps its explanation.
    assert view.column_help(view.TUMOR_SENSITIVITY) == view.TUMOR_SENSITIVITY
    assert view.column_help(view.SENSITIVITY_AT_SPECIFICITY).startswith(f"{view.SENSITIVITY_AT_SPECIFICITY}: Tumor vs")
    assert view.column_help(common.MODEL) is None


def test_the_accuracy_interval_is_written_in_its_cell_while_the_value_stays_a_number(table):
    styled = view.style_leaderboard(table, intervals=table)
    html = styled.to_html()
    row = table.set_index(common.MODEL).loc["custom_cnn"]
    assert f"{row[common.ACCURACY]:.1%} ({row[view.ACCURACY_CI].removesuffix('%')})" in html
    # Other scores keep their own interval column: their cell is the value alone.
    assert f"{row[common.MACRO_F1]:.1%} (" not in html
    assert styled.data[common.ACCURACY].dtype == "float64"  # the grid sorts by the score
    assert f"{row[common.ACCURACY]:.1%} (" not in view.style_leaderboard(table).to_html()
