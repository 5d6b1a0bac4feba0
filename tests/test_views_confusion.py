"""bt_dashboard.views.confusion: the Confusion page's matrices, cells, thumbnails and figures (no Streamlit)."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from bt_core.artifacts import load_run
from bt_dashboard.views import confusion as view

from fabricate import CLASS_NAMES


CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


MATRIX = np.array([[8, 2, 0, 0], [1, 6, 1, 2], [0, 0, 10, 0], [0, 0, 0, 0]])


def test_confusion_matrices_are_the_stored_ones_and_equal_sklearns(run, model_data, zoo):
    matrices = view.confusion_matrices(run, model_data)
    assert list(matrices) == list(model_data)
    for name, predictions in zoo.predictions.items():
        np.testing.assert_array_equal(matrices[name], run.models[name].metrics["confusion_matrix"])
        expected = confusion_matrix(predictions["label"], predictions["pred"], labels=CLASS_NAMES)
        np.testing.assert_array_equal(matrices[name], expected)


def test_confusion_matrices_read_metrics_json_not_the_predictions(zoo, model_data):
    run = load_run(zoo.run_dir)  # a copy to change: the module's run stays as stored
    stored = np.arange(len(CLASS_NAMES) ** 2).reshape(len(CLASS_NAMES), -1)
    run.models["custom_cnn"].metrics["confusion_matrix"] = stored.tolist()
    np.testing.assert_array_equal(view.confusion_matrices(run, model_data)["custom_cnn"], stored)


@pytest.mark.parametrize("broken", [None, [[1, 2], [3, 4]], "garbled", [[0.5] * 4] * 4, [[-1] * 4] * 4])
def test_a_model_without_a_usable_stored_matrix_is_counted_from_its_predictions(zoo, model_data, broken):
    run = load_run(zoo.run_dir)
    run.models["custom_cnn"].metrics["confusion_matrix"] = broken
    predictions = zoo.predictions["custom_cnn"]
    expected = confusion_matrix(predictions["label"], predictions["pred"], labels=CLASS_NAMES)
    np.testing.assert_array_equal(view.confusion_matrices(run, model_data)["custom_cnn"], expected)
    assert view.stored_matrix({"confusion_matrix": broken}, len(CLASS_NAMES)) is None


def test_confusion_long_holds_every_cell_with_its_share(run, model_data):
    matrices = view.confusion_matrices(run, model_data)
    long = view.confusion_long(matrices, CLASS_NAMES)
    assert len(long) == len(matrices) * len(CLASS_NAMES) ** 2
    shares = long.groupby(["model", "true"])["row_share"].sum()
    np.testing.assert_allclose(shares, 1.0)


def test_cell_options_list_mistakes_first_and_skip_empty_cells():
    matrix = np.array([[5, 0], [3, 7]])
    options = view.cell_options(matrix, ["a", "b"])
    assert options == [("b", "a"), ("b", "b"), ("a", "a")]
    assert view.cell_label(("b", "a"), matrix, ["a", "b"]) == "✗ true b → predicted a (3 images)"


def test_cell_predictions_are_the_images_of_that_cell(run, model_data, zoo):
    predictions = zoo.predictions["custom_cnn"]
    expected = predictions[(predictions["label"] == "glioma") & (predictions["pred"] == "meningioma")]
    cell = view.cell_predictions(run, model_data["custom_cnn"], "glioma", "meningioma")
    assert list(cell["id"]) == list(expected["id"])
    assert (cell["label"] == "glioma").all() and (cell["pred"] == "meningioma").all()
    np.testing.assert_allclose(cell["p_meningioma"], expected["p_meningioma"])


def test_cell_from_selection_reads_the_clicked_marker():
    selection = {"points": [{"x": "meningioma", "y": "glioma", "point_index": 1}]}
    assert view.cell_from_selection(selection, CLASS_NAMES) == ("glioma", "meningioma")
    assert view.cell_from_selection({"points": []}, CLASS_NAMES) is None
    assert view.cell_from_selection(None, CLASS_NAMES) is None
    assert view.cell_from_selection({"points": [{"x": 0.3, "y": 0.2}]}, CLASS_NAMES) is None


def test_thumbnail_caption_names_truth_prediction_and_probabilities():
    row = {"label": "glioma", "pred": "meningioma", "p_glioma": 0.3, "p_meningioma": 0.6}
    assert view.thumbnail_caption(row, CLASS_NAMES) == "true glioma (p=0.30) · pred meningioma (p=0.60)"


def test_row_normalize_gives_row_shares_and_leaves_an_empty_row_at_zero():
    shares = view.row_normalize(MATRIX)
    np.testing.assert_allclose(shares[0], [0.8, 0.2, 0, 0])
    np.testing.assert_allclose(shares[1].sum(), 1)
    assert (shares[3] == 0).all()


def test_confusion_figure_shows_counts_or_row_shares():
    counts = view.confusion_figure(MATRIX, CLASSES, normalized=False)
    heatmap = counts.data[0]
    assert np.array(heatmap.z).tolist() == MATRIX.tolist()
    assert heatmap.text[1][3] == "2"
    assert list(heatmap.x) == CLASSES and list(heatmap.y) == CLASSES

    shares = view.confusion_figure(MATRIX, CLASSES, normalized=True)
    assert shares.data[0].text[0][0] == "80%"
    assert shares.data[0].zmax == 1


def test_confusion_figure_has_a_clickable_marker_on_every_cell_naming_it():
    figure = view.confusion_figure(MATRIX, CLASSES, normalized=False)
    markers = figure.data[1]
    assert len(markers.x) == len(CLASSES) ** 2
    # Row 1 (true meningioma), column 3 (predicted pituitary) holds 2 images.
    index = 1 * len(CLASSES) + 3
    assert (markers.y[index], markers.x[index]) == ("meningioma", "pituitary")
    assert markers.customdata[index][0] == 2


def test_difference_figure_shows_b_minus_a_and_colours_improvement():
    a = np.array([[5, 5], [0, 10]])
    b = np.array([[8, 2], [1, 9]])
    figure = view.difference_figure(a, b, ["glioma", "notumor"], "A", "B", normalized=False)
    heatmap = figure.data[0]
    assert list(heatmap.text[0]) == ["+3", "-3"]
    # Both glioma cells improved for B: more right, fewer wrong, so both are positive.
    assert np.array(heatmap.z)[0].tolist() == [3, 3]
    # notumor: one fewer right and one more wrong, so both are negative.
    assert np.array(heatmap.z)[1].tolist() == [-1, -1]
    assert heatmap.zmid == 0
