"""The comparison pages' tables (dashboard/compare_tables.py) on a fabricated zoo run."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from bt_core.artifacts import load_run
from bt_core.metrics import run_comparison
from dashboard import compare_tables as ct
from dashboard import components as c
from fabricate import CLASS_NAMES, FINE_TUNED_MODEL, ZOO_MODELS, ZOO_TRAIN_GAP, fabricate_zoo_run

RESAMPLES = 200


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return fabricate_zoo_run(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def run(zoo):
    return load_run(zoo.run_dir)


@pytest.fixture(scope="module")
def model_data(run):
    data, _excluded = run_comparison.run_model_data(run)
    return data


@pytest.fixture(scope="module")
def leaderboard(run):
    return run_comparison.leaderboard(run, n_resamples=RESAMPLES, seed=0)


@pytest.fixture(scope="module")
def table(run, leaderboard, model_data):
    _data, excluded = run_comparison.run_model_data(run)
    return ct.leaderboard_table(run, leaderboard, excluded)


# --------------------------------------------------------------------------- leaderboard


def test_leaderboard_has_every_manifest_model_in_order(table, zoo):
    assert list(table[c.MODEL]) == zoo.model_names
    assert list(table.columns) == ct.LEADERBOARD_COLUMNS


def test_leaderboard_scores_are_the_fabricated_ones(table, zoo):
    rows = table.set_index(c.MODEL)
    for name, metrics in zoo.metrics.items():
        assert rows.loc[name, c.ACCURACY] == pytest.approx(metrics["accuracy"])
        assert rows.loc[name, c.MACRO_F1] == pytest.approx(metrics["macro_f1"])
        assert rows.loc[name, c.MACRO_AUC] == pytest.approx(metrics["macro_auc"])
        assert rows.loc[name, ct.LOG_LOSS] == pytest.approx(metrics["log_loss"], rel=1e-6)
        assert rows.loc[name, ct.ACCURACY_GAP] == pytest.approx(ZOO_TRAIN_GAP)


def test_leaderboard_tumor_columns_collapse_to_tumor_vs_no_tumor(table, zoo):
    predictions = zoo.predictions["custom_cnn"]
    is_tumor = predictions["label"] != "notumor"
    called_tumor = predictions["pred"] != "notumor"
    row = table.set_index(c.MODEL).loc["custom_cnn"]
    assert row[ct.TUMOR_SENSITIVITY] == pytest.approx((called_tumor & is_tumor).sum() / is_tumor.sum())
    assert row[ct.TUMOR_SPECIFICITY] == pytest.approx((~called_tumor & ~is_tumor).sum() / (~is_tumor).sum())
    assert row[ct.TUMOR_AUC] == pytest.approx(roc_auc_score(is_tumor, 1 - predictions["p_notumor"]))


def test_leaderboard_intervals_contain_the_estimate(table, leaderboard):
    for _, row in leaderboard.iterrows():
        assert row["accuracy_lower"] <= row["accuracy"] <= row["accuracy_upper"]
    text = table.set_index(c.MODEL).loc["custom_cnn", ct.ACCURACY_CI]
    row = leaderboard.set_index("model").loc["custom_cnn"]
    assert text == f"{row['accuracy_lower'] * 100:.1f}–{row['accuracy_upper']:.1%}"


def test_broken_models_keep_a_row_with_their_reason_and_no_scores(table, zoo):
    rows = table.set_index(c.MODEL)
    assert rows.loc[zoo.failed_model, c.PROBLEM] == zoo.failed_error
    assert rows.loc[zoo.corrupt_model, c.PROBLEM].startswith("ParserError")
    assert rows.loc[zoo.corrupt_model, c.STATUS] == c.STATUS_BROKEN
    assert rows.loc[zoo.failed_model, list(ct.SCORE_COLUMNS)].isna().all()
    assert rows.loc[zoo.failed_model, ct.ACCURACY_CI] == ""


def test_best_values_follow_each_columns_direction():
    table = pd.DataFrame({c.ACCURACY: [0.8, 0.9, np.nan], ct.LOG_LOSS: [0.3, 0.5, np.nan],
                          ct.ACCURACY_GAP: [-0.01, 0.2, np.nan], c.TRAIN_SECONDS: [50.0, 10.0, np.nan]})
    assert ct.best_rows(table, c.ACCURACY).tolist() == [False, True, False]
    assert ct.best_rows(table, ct.LOG_LOSS).tolist() == [True, False, False]
    assert ct.best_rows(table, ct.ACCURACY_GAP).tolist() == [True, False, False]
    assert ct.best_rows(table, c.TRAIN_SECONDS).tolist() == [False, True, False]
    styles = ct.leaderboard_styles(table)
    assert styles.loc[1, c.ACCURACY] == c.BEST_VALUE_CSS and styles.loc[0, c.ACCURACY] == ""


def test_best_accuracy_is_the_most_skilled_fabricated_model(table):
    best = table.loc[ct.best_rows(table, c.ACCURACY), c.MODEL].tolist()
    assert best == [max(ZOO_MODELS, key=lambda name: ZOO_MODELS[name][0])]


def test_formatted_leaderboard_shows_percentages_dashes_and_stars(table, zoo):
    shown = ct.formatted_leaderboard(table).set_index(c.MODEL)
    accuracy = zoo.metrics["custom_cnn"]["accuracy"]
    assert shown.loc["custom_cnn", c.ACCURACY].startswith(f"{accuracy:.1%}")
    assert shown.loc[zoo.failed_model, c.ACCURACY] == c.MISSING
    assert shown[c.ACCURACY].str.endswith("★").sum() >= 1
    assert shown.loc["simple_cnn", c.TRAINABLE_PARAMS].startswith("10,000")


def test_ci_text():
    assert ct.ci_text(0.851, 0.902) == "85.1–90.2%"
    assert ct.ci_text(0.9512, 0.98, percent=False) == "0.951–0.980"
    assert ct.ci_text(None, 0.9) == ""


# --------------------------------------------------------------------------- curves


def test_curves_for_one_class_give_each_models_curve_and_auc(model_data, zoo):
    by_model = ct.class_curves_by_model(model_data, CLASS_NAMES, "roc")
    curves, areas = ct.curves_for_class(by_model, "glioma")
    assert list(curves) == zoo.good_models
    predictions = zoo.predictions["simple_cnn"]
    expected = roc_auc_score(predictions["label"] == "glioma", predictions["p_glioma"])
    assert areas["simple_cnn"] == pytest.approx(expected)
    assert list(curves["simple_cnn"].columns) == ["x", "y"]


def test_tumor_roc_per_model_runs_from_zero_to_one(model_data):
    curves = ct.tumor_roc_by_model(model_data, CLASS_NAMES)
    assert set(curves) == set(model_data)
    for curve in curves.values():
        assert curve["x"].iloc[0] == 0 and curve["y"].iloc[-1] == 1


def test_no_tumor_roc_without_a_notumor_class(model_data):
    assert ct.tumor_roc_by_model(model_data, ["a", "b", "c", "d"]) == {}
    assert not ct.has_tumor_class(["a", "b"])


def test_class_prevalence_is_the_share_of_the_class(model_data):
    assert ct.class_prevalence(model_data, CLASS_NAMES, "notumor") == pytest.approx(0.25)


# --------------------------------------------------------------------------- confusion


def test_confusion_matrices_equal_sklearns_on_the_fabricated_predictions(model_data, zoo):
    matrices = ct.confusion_matrices(model_data, len(CLASS_NAMES))
    for name, predictions in zoo.predictions.items():
        expected = confusion_matrix(predictions["label"], predictions["pred"], labels=CLASS_NAMES)
        np.testing.assert_array_equal(matrices[name], expected)


def test_confusion_long_holds_every_cell_with_its_share(model_data):
    matrices = ct.confusion_matrices(model_data, len(CLASS_NAMES))
    long = ct.confusion_long(matrices, CLASS_NAMES)
    assert len(long) == len(matrices) * len(CLASS_NAMES) ** 2
    shares = long.groupby(["model", "true"])["row_share"].sum()
    np.testing.assert_allclose(shares, 1.0)


def test_cell_options_list_mistakes_first_and_skip_empty_cells():
    matrix = np.array([[5, 0], [3, 7]])
    options = ct.cell_options(matrix, ["a", "b"])
    assert options == [("b", "a"), ("b", "b"), ("a", "a")]
    assert ct.cell_label(("b", "a"), matrix, ["a", "b"]) == "✗ true b → predicted a (3 images)"


def test_cell_predictions_are_the_images_of_that_cell(run, model_data, zoo):
    predictions = zoo.predictions["custom_cnn"]
    expected = predictions[(predictions["label"] == "glioma") & (predictions["pred"] == "meningioma")]
    cell = ct.cell_predictions(run, model_data["custom_cnn"], "glioma", "meningioma")
    assert list(cell["id"]) == list(expected["id"])
    assert (cell["label"] == "glioma").all() and (cell["pred"] == "meningioma").all()
    np.testing.assert_allclose(cell["p_meningioma"], expected["p_meningioma"])


def test_cell_from_selection_reads_the_clicked_marker():
    selection = {"points": [{"x": "meningioma", "y": "glioma", "point_index": 1}]}
    assert ct.cell_from_selection(selection, CLASS_NAMES) == ("glioma", "meningioma")
    assert ct.cell_from_selection({"points": []}, CLASS_NAMES) is None
    assert ct.cell_from_selection(None, CLASS_NAMES) is None
    assert ct.cell_from_selection({"points": [{"x": 0.3, "y": 0.2}]}, CLASS_NAMES) is None


def test_image_positions_find_ids_in_the_archive():
    positions = ct.image_positions(np.array(["a", "b", "c"]), ["c", "a", "zz"])
    assert positions.tolist() == [2, 0, -1]


def test_thumbnail_caption_names_truth_prediction_and_probabilities():
    row = {"label": "glioma", "pred": "meningioma", "p_glioma": 0.3, "p_meningioma": 0.6}
    assert ct.thumbnail_caption(row, CLASS_NAMES) == "true glioma (p=0.30) · pred meningioma (p=0.60)"


# --------------------------------------------------------------------------- training / calibration


def test_histories_of_usable_models_and_two_phases_for_the_fine_tuned_one(run, zoo):
    histories = ct.histories(run)
    assert zoo.failed_model not in histories
    assert list(dict.fromkeys(histories[FINE_TUNED_MODEL]["phase"])) == ["head", "fine_tune"]
    assert ct.best_epoch(run, FINE_TUNED_MODEL) == zoo.manifest["models"][FINE_TUNED_MODEL]["best_epoch"]


def test_calibration_table_has_ece_and_brier_per_model(model_data):
    table = ct.calibration_table(model_data, 15)
    assert list(table[c.MODEL]) == list(model_data)
    assert table[ct.ECE].between(0, 1).all() and (table[ct.BRIER] > 0).all()
    # The sharpest fabricated model (temperature 0.7) is over-confident.
    assert table.set_index(c.MODEL).loc["simple_cnn", "Confidence − accuracy"] > 0


def test_reliability_bins_count_every_test_image(model_data, zoo):
    bins = ct.reliability_by_model(model_data, 10)
    for table in bins.values():
        assert table["count"].sum() == len(zoo.test_ids)


# --------------------------------------------------------------------------- significance


def test_significance_tables_cover_every_pair(model_data):
    pairs, matrix, cochran = ct.significance_tables(model_data)
    n = len(model_data)
    assert len(pairs) == n * (n - 1) // 2
    assert list(matrix.index) == list(matrix.columns) == list(model_data)
    assert 0 <= cochran["p_value"] <= 1
    flips = ct.flip_table(pairs)
    assert "A right, B wrong" in flips.columns and "p (Holm)" in flips.columns
    first = pairs.iloc[0]
    a, b = model_data[first["model_a"]].correct, model_data[first["model_b"]].correct
    assert first["a_right_b_wrong"] == int((a & ~b).sum())


def test_cochran_line_reads_as_a_sentence():
    line = ct.cochran_line({"statistic": 12.345, "df": 4, "p_value": 0.015, "n_models": 5, "reason": None})
    assert line.startswith("Cochran's Q across all 5 models: Q = 12.35, df = 4, p = 0.015")
    assert "differ" in line
    too_few = {"statistic": None, "df": None, "p_value": None, "n_models": 2, "reason": "needs at least 3 models"}
    assert "needs at least 3 models" in ct.cochran_line(too_few)
