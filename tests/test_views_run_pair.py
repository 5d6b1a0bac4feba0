"""The Compare runs page's views on hand-made leaderboards and predictions: known answers."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bt_core.metrics.run_comparison import ModelData
from bt_dashboard.views import run_pair as view
from bt_dashboard.views.common import ACCURACY, MACRO_AUC, MACRO_F1, MODEL

CLASSES = ["glioma", "notumor"]


def board(rows: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": name, "accuracy": a, "macro_f1": f, "macro_auc": auc, "n": 10}
                         for name, (a, f, auc) in rows.items()])


def test_deltas_are_b_minus_a_for_the_models_both_have_in_as_order():
    a = board({"m1": (0.70, 0.60, 0.80), "m2": (0.90, 0.85, 0.95), "only_a": (0.5, 0.5, 0.5)})
    b = board({"only_b": (0.1, 0.1, 0.1), "m2": (0.80, 0.90, math.nan), "m1": (0.75, 0.60, 0.70)})
    deltas = view.leaderboard_deltas(a, b)
    assert list(dict.fromkeys(deltas[MODEL])) == ["m1", "m2"]
    assert list(deltas[view.SCORE].unique()) == [ACCURACY, MACRO_F1, MACRO_AUC]  # the Models page's order
    got = deltas.set_index([MODEL, view.SCORE])
    assert got.loc[("m1", ACCURACY), view.DELTA] == pytest.approx(0.05)
    assert got.loc[("m2", ACCURACY), view.DELTA] == pytest.approx(-0.10)
    assert got.loc[("m2", MACRO_F1), "A"] == 0.85 and got.loc[("m2", MACRO_F1), "B"] == 0.90
    assert math.isnan(got.loc[("m2", MACRO_AUC), view.DELTA])  # undefined in B: no delta
    assert view.only_in(a, b) == ["only_a"] and view.only_in(b, a) == ["only_b"]

    figure = view.deltas_figure(deltas, ["m1", "m2"])
    bars = {trace.name: dict(zip(trace.x, trace.y)) for trace in figure.data}
    assert bars["m1"][ACCURACY] == pytest.approx(0.05) and bars["m1"][MACRO_AUC] == pytest.approx(-0.10)


def test_confusion_difference_subtracts_counts_only_for_the_same_classes():
    a = np.array([[5, 1], [2, 4]])
    b = np.array([[6, 0], [1, 5]])
    np.testing.assert_array_equal(view.confusion_difference(a, b, CLASSES, CLASSES), [[1, -1], [-1, 1]])
    reason = view.confusion_difference(a, b, CLASSES, ["notumor", "tumor"])
    assert reason == ("the two test sets have different classes (A: glioma, notumor; B: notumor, tumor), "
                      "so their matrices cannot be subtracted")
    assert isinstance(view.confusion_difference(a, b, CLASSES, CLASSES[::-1]), str)  # another order too


def model(ids, labels, p_notumor) -> ModelData:
    proba = np.c_[1 - np.asarray(p_notumor), p_notumor]
    y_true = np.asarray(labels)
    return ModelData("m", y_true, proba, proba.argmax(axis=1) == y_true, np.asarray(ids))


def test_disagreements_list_the_shared_images_predicted_differently():
    a = model(["x1", "x2", "x3", "x4"], [0, 1, 1, 0], [0.2, 0.9, 0.4, 0.3])  # predicts 0, 1, 0, 0
    b = model(["x4", "x3", "x5", "x1", "x2"], [1, 1, 0, 0, 1], [0.6, 0.95, 0.5, 0.1, 0.8])  # 1, 1, 1, 0, 1
    found = view.disagreements(a, CLASSES, b, CLASSES)
    assert found.shared == 4  # x5 is B's only
    assert found.label_conflicts == 1  # x4: glioma in A, notumor in B
    assert found.table.to_dict("records") == [
        {"id": "x3", "True": "notumor", "A predicts": "glioma", "A confidence": pytest.approx(0.6),
         "B predicts": "notumor", "B confidence": pytest.approx(0.95)}]
    assert view.disagreement_line(found) == ("1 of the 4 images both scored get different predictions (25.0%). "
                                             "1 shared ids have different true labels and are left out.")


def test_disagreements_compare_class_names_not_positions():
    a = model(["x1", "x2"], [0, 1], [0.1, 0.7])  # true glioma, notumor; predicts glioma (0.9), notumor (0.7)
    # B lists the classes the other way round: index 0 is notumor, 1 glioma.
    b = model(["x1", "x2"], [1, 0], [0.2, 0.6])  # true glioma, notumor; predicts notumor (0.8), glioma (0.6)
    found = view.disagreements(a, CLASSES, b, CLASSES[::-1])
    assert found.label_conflicts == 0
    assert list(found.table["id"]) == ["x1", "x2"]  # the most confident disagreement first
    assert list(found.table["True"]) == ["glioma", "notumor"]
    assert list(found.table["B predicts"]) == ["notumor", "glioma"]
    assert list(found.table["B confidence"]) == pytest.approx([0.8, 0.6])


def test_no_shared_image_id_is_said_plainly():
    found = view.disagreements(model(["a1"], [0], [0.1]), CLASSES, model(["b1"], [0], [0.1]), CLASSES)
    assert found.shared == 0 and found.table.empty
    assert view.disagreement_line(found) == (
        "The two test sets share no image id: there is nothing to compare image by image.")


def test_targets_list_each_run_and_its_evaluations_and_link_to_inspect():
    runs = {"/art/r1": "r1 · demo · 2 models", "/art/r2": "r2 · demo · 1 model"}
    targets = view.comparison_targets(runs, {"/art/r1": ["br35h"]})
    assert targets == {"/art/r1": "r1 · demo · 2 models",
                       str(Path("/art/r1/evaluations/br35h")): "r1 · demo · 2 models → evaluation br35h",
                       "/art/r2": "r2 · demo · 1 model"}
    folders = list(targets)
    # B: another run's own split, not A's evaluation.
    assert view.default_pair(folders, "/art/r1") == ("/art/r1", "/art/r2")
    assert view.default_pair(folders[:2], None) == ("/art/r1", folders[1])
    assert view.evaluation_parts("/art/r1/evaluations/br35h") == ("r1", "br35h")
    assert view.inspect_params("/art/r1/evaluations/br35h", "cnn", "img 1.png") == {
        "run": "r1", "test_set": "br35h", "models": "cnn", "image": "img 1.png"}
    assert view.inspect_params("/art/study/runs/cnn__none__s0", "cnn", "x") == {
        "run": "cnn__none__s0", "models": "cnn", "image": "x"}
