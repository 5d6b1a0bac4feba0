"""bt_dashboard.views.per_class: the Models page's per-class table (no Streamlit)."""

import numpy as np
import pytest
from sklearn import metrics as skm

from bt_core.artifacts import load_run
from bt_core.metrics import metrics_from_predictions
from bt_dashboard.views import common
from bt_dashboard.views import per_class as view

from fabricate import CLASS_NAMES


def test_every_usable_model_per_class_matches_scikit_learn(run, zoo):
    shown = view.per_class_view(run)
    table = shown.table
    assert list(table.columns) == view.COLUMNS
    good = [name for name in run.models if run.models[name].usable]
    assert set(shown.left_out) == {zoo.failed_model, zoo.corrupt_model}
    # Classes in manifest order; within a class the models side by side, in manifest order.
    assert list(table[view.CLASS]) == [name for name in CLASS_NAMES for _ in good]
    assert list(table[common.MODEL]) == good * len(CLASS_NAMES)
    for name in good:
        predictions = zoo.predictions[name]
        y_true, y_pred = predictions["label"], predictions["pred"]
        precision, recall, f1, support = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=CLASS_NAMES, zero_division=0)
        counts = skm.multilabel_confusion_matrix(y_true, y_pred, labels=CLASS_NAMES)
        rows = table[table[common.MODEL] == name].set_index(view.CLASS)
        for k, class_name in enumerate(CLASS_NAMES):
            (tn, fp), (fn, tp) = counts[k]
            row = rows.loc[class_name]
            assert (row[view.TP], row[view.FP], row[view.FN], row[view.TN]) == (tp, fp, fn, tn)
            assert row[view.SPECIFICITY] == pytest.approx(tn / (tn + fp))
            assert (row[view.PRECISION], row[view.RECALL], row[view.F1]) == pytest.approx(
                (precision[k], recall[k], f1[k]))
            assert row[view.SUPPORT] == support[k]


def test_a_run_before_format_1_6_says_its_counts_come_from_the_confusion_matrix(zoo):
    run = load_run(zoo.run_dir)
    older = view.per_class_view(run)
    assert older.derived == [name for name in run.models if run.models[name].usable]  # fabricated: no one_vs_rest
    assert view.derived_note(older.derived[:1]) == (
        f"{older.derived[0]} predates the stored one-vs-rest counts (artifact format 1.6): their TP / FP / FN / TN "
        "and specificity are read off the stored confusion matrix.")
    # Metrics as a 1.6 run stores them: read, not derived.
    for name in older.derived:
        run.models[name].metrics = metrics_from_predictions(zoo.predictions[name], CLASS_NAMES)
    newer = view.per_class_view(run)
    assert newer.derived == [] and view.derived_note(newer.derived) == ""
    assert newer.table.equals(older.table)


def test_a_model_without_a_usable_confusion_matrix_is_left_out_with_its_reason(zoo):
    run = load_run(zoo.run_dir)
    run.models["custom_cnn"].metrics = {"accuracy": 0.5, "confusion_matrix": [[1, 2], [3, 4]]}
    shown = view.per_class_view(run)
    assert shown.left_out["custom_cnn"] == "metrics.json has no usable confusion matrix"
    assert "custom_cnn" not in set(shown.table[common.MODEL])


def test_each_class_best_shares_are_marked_and_formatted(run):
    table = view.per_class_view(run).table
    styles = view.best_in_class(view.grid_table(table))
    for class_name, rows in table.groupby(view.CLASS):
        best = rows[view.F1].max()
        marked = styles.loc[rows.index, view.F1] == common.BEST_VALUE_CSS
        assert marked.any() and np.allclose(rows.loc[marked, view.F1], best), class_name
    assert (styles[view.SUPPORT] == "").all()
    styled = view.style_per_class(table)
    assert list(styled.data.columns) == view.GRID_COLUMNS
    first = table.iloc[0]
    assert styled.data.loc[0, view.COUNTS] == f"{first[view.TP]} / {first[view.FP]} / {first[view.FN]} / {first[view.TN]}"
    html = styled.to_html()
    assert f"{first[view.PRECISION]:.1%}" in html
