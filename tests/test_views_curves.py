"""bt_dashboard.views.curves: the ROC & PR page's curves, areas and overlays (no Streamlit)."""

import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from bt_dashboard.views import curves as view
from bt_dashboard.views import figures
from bt_dashboard.views import operating_point as operating_view

from fabricate import CLASS_NAMES


CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


MODELS = ["simple_cnn", "custom_cnn", "efficientnet_b0"]


@pytest.fixture
def colors():
    return figures.model_colors(MODELS)


def curve(points):
    return pd.DataFrame(points, columns=["x", "y"])


def test_curves_for_one_class_give_each_models_curve_and_auc(model_data, zoo):
    by_model = view.class_curves_by_model(model_data, CLASS_NAMES, "roc")
    curves, areas = view.curves_for_class(by_model, "glioma")
    assert list(curves) == zoo.good_models
    predictions = zoo.predictions["simple_cnn"]
    expected = roc_auc_score(predictions["label"] == "glioma", predictions["p_glioma"])
    assert areas["simple_cnn"] == pytest.approx(expected)
    assert list(curves["simple_cnn"].columns) == ["x", "y"]


def test_tumor_roc_per_model_runs_from_zero_to_one(model_data):
    curves = view.tumor_roc_by_model(model_data, CLASS_NAMES)
    assert set(curves) == set(model_data)
    for curve in curves.values():
        assert curve["x"].iloc[0] == 0 and curve["y"].iloc[-1] == 1


def test_no_tumor_roc_without_a_notumor_class(model_data):
    assert view.tumor_roc_by_model(model_data, ["a", "b", "c", "d"]) == {}
    assert not view.has_tumor_class(["a", "b"])


def test_class_prevalence_is_the_share_of_the_class(model_data):
    assert view.class_prevalence(model_data, CLASS_NAMES, "notumor") == pytest.approx(0.25)


def test_roc_overlay_has_one_coloured_curve_per_model_with_its_auc(colors):
    curves = {model: curve([(0, 0), (0.2, 0.7), (1, 1)]) for model in MODELS}
    areas = {"simple_cnn": 0.8, "custom_cnn": 0.85, "efficientnet_b0": float("nan")}
    figure = view.roc_overlay(curves, areas, colors, title="glioma")
    assert [trace.name for trace in figure.data] == [
        "simple_cnn (AUC 0.800)", "custom_cnn (AUC 0.850)", "efficientnet_b0 (AUC n/a)"
    ]
    assert [trace.line.color for trace in figure.data] == [colors[model] for model in MODELS]
    assert figure.layout.xaxis.title.text == "False positive rate"
    chance = figure.layout.shapes[0]
    assert (chance.x0, chance.y0, chance.x1, chance.y1) == (0, 0, 1, 1)


def test_pr_overlay_labels_average_precision_and_draws_the_prevalence_line(colors):
    figure = view.roc_overlay({"custom_cnn": curve([(0, 1), (1, 0.25)])}, {"custom_cnn": 0.61}, colors,
                           kind="pr", baseline=0.25)
    assert figure.data[0].name == "custom_cnn (AP 0.610)"
    assert figure.layout.xaxis.title.text == "Recall" and figure.layout.yaxis.title.text == "Precision"
    assert figure.layout.shapes[0].y0 == figure.layout.shapes[0].y1 == 0.25


def test_class_curves_figure_draws_each_class_in_class_order():
    table = pd.DataFrame(
        {"class": ["notumor"] * 2 + ["glioma"] * 2, "x": [0, 1, 0, 1], "y": [0, 1, 0, 1], "auc": [0.9, 0.9, 0.7, 0.7]}
    )
    figure = view.class_curves_figure(table, class_names=CLASSES)
    assert [trace.name for trace in figure.data] == ["glioma (AUC 0.700)", "notumor (AUC 0.900)"]


# --------------------------------------------------------------------------- operating point
def tumor_labels(model_data, name):
    data = model_data[name]
    return data.y_true != CLASS_NAMES.index("notumor"), 1.0 - data.proba[:, CLASS_NAMES.index("notumor")]


def test_operating_table_is_every_models_confusion_at_the_threshold(model_data):
    scores = operating_view.binary_scores(model_data, CLASS_NAMES)
    points = operating_view.operating_points(scores, 0.7)
    table = operating_view.operating_table(points).set_index("Model")
    assert list(table.index) == list(model_data)
    for name in model_data:
        is_tumor, p_tumor = tumor_labels(model_data, name)
        tn, fp, fn, tp = confusion_matrix(is_tumor, p_tumor >= 0.7, labels=[False, True]).ravel()
        row = table.loc[name]
        counts = [row[column] for column in operating_view.COUNT_COLUMNS]
        assert counts == [tp, fn, fp, tn]
        assert row["Sensitivity"] == pytest.approx(tp / (tp + fn))
        assert row["NPV"] == pytest.approx(tn / (tn + fn))
        record = points[name]["specificity"]
        assert row[f"Specificity {operating_view.CI}"] == view_ci(record)
        shown = operating_view.confusion_2x2(points[name])
        assert shown.loc["Tumor", "Called tumor"] == tp and shown.loc["No tumor", "Called no tumor"] == tn
    assert operating_view.tumor_share(scores) == pytest.approx(0.75)


def view_ci(record):
    return f"{record['ci_low']:.1%}–{record['ci_high']:.1%}".replace("%–", "–")


def test_a_measure_without_a_denominator_reads_not_measurable_with_the_reason(model_data):
    scores = operating_view.binary_scores(model_data, CLASS_NAMES)
    points = operating_view.operating_points(scores, 1.0)  # no score reaches 1: nothing called tumor
    table = operating_view.operating_table(points)
    assert table["PPV"].isna().all() and (table[f"PPV {operating_view.CI}"] == "").all()
    assert table["Sensitivity"].tolist() == [0.0] * len(table)
    assert "not measurable" in operating_view.style_operating_table(table).to_html()
    notes = operating_view.not_measurable_notes(points)
    assert notes == [f"PPV not measurable for {', '.join(model_data)} (no image called tumor)"]


def test_operating_roc_shows_thresholds_on_hover_and_marks_the_operating_point(model_data):
    scores = operating_view.binary_scores(model_data, CLASS_NAMES)
    tables = operating_view.threshold_tables(scores)
    names = list(model_data)
    figure = view.operating_roc(tables, {names[0]: 0.9}, figures.model_colors(names), 0.5, title="tumor")
    assert [trace.name for trace in figure.data] == [f"{names[0]} (AUC 0.900)", *(f"{n} (AUC n/a)" for n in names[1:])]
    for name, trace in zip(names, figure.data):
        table = tables[name]
        marked = [index for index, size in enumerate(trace.marker.size) if size > 0]
        assert marked == [int((table["threshold"] >= 0.5).sum()) - 1]
        point = operating_view.operating_points({name: scores[name]}, 0.5)[name]
        assert trace.y[marked[0]] == pytest.approx(point["sensitivity"]["value"])
        assert 1 - trace.x[marked[0]] == pytest.approx(point["specificity"]["value"])
        assert trace.text[0] == "∞ (nothing called tumor)"
        assert trace.text[1] == f"{table['threshold'].iloc[1]:.4f}"
        expected = [point["specificity"]["value"], point["tp"], point["fn"], point["fp"], point["tn"]]
        assert list(trace.customdata[marked[0]]) == pytest.approx(expected)
        assert "threshold %{text}" in trace.hovertemplate and "TP %{customdata[1]}" in trace.hovertemplate
    moved = view.operating_roc(tables, {}, {}, 0.9)
    assert list(moved.data[0].marker.size).index(14) < list(figure.data[0].marker.size).index(14)


def test_the_grid_shows_each_share_with_its_interval_and_the_counts_in_one_cell(model_data):
    scores = operating_view.binary_scores(model_data, CLASS_NAMES)
    points = operating_view.operating_points(scores, 0.7)
    table = operating_view.operating_table(points)
    first = table.iloc[0]
    counts = [first[column] for column in operating_view.COUNT_COLUMNS]
    assert first[operating_view.COUNTS_TEXT] == " / ".join(str(count) for count in counts)
    assert set(operating_view.SHOWN_COLUMNS) <= set(table.columns)
    shown = table[operating_view.SHOWN_COLUMNS]
    html = operating_view.style_operating_table(shown, intervals=table).to_html()
    interval = first[f"Sensitivity {operating_view.CI}"].removesuffix("%")
    assert f"{first['Sensitivity']:.1%} ({interval})" in html
    assert shown["Sensitivity"].dtype == "float64"  # the grid sorts by the share
