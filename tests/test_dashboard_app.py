"""The dashboard as a user sees it, run headless with Streamlit's AppTest."""

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from sklearn.metrics import confusion_matrix, roc_auc_score

from bt_core.artifacts import MANIFEST, METRICS, model_dir, read_json, write_json
from bt_core.metrics.scores import expected_calibration_error
from bt_dashboard.views import common
from bt_dashboard.views import models as models_view
from bt_dashboard import loaders
from bt_dashboard.settings import ARTIFACTS_ENV
from bt_dashboard.sidebar import report_file_name
from fabricate import (
    CLASS_NAMES,
    FINE_TUNE_PHASES,
    FINE_TUNED_MODEL,
    SKIPPED,
    fabricate_run,
    fabricate_unreadable_run,
    fabricate_zoo_run,
)

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
RUN_PAGE = "app_pages/run_details.py"
MODELS_PAGE = "app_pages/models.py"


def displayed_table(element) -> "pa.Table":
    """The cell texts a styled st.dataframe shows (formatted by the Styler)."""
    return pa.ipc.open_stream(element.proto.arrow_data.styler.display_values).read_all()


def test_no_pages_folder_next_to_the_entry_script():
    # A "pages" folder beside app.py puts Streamlit in legacy multipage mode, which runs
    # a page without app.py (no run picker); page files belong in app_pages/.
    assert not (APP.parent / "pages").exists()


def test_models_page_shows_every_model_with_its_metrics(open_app, fabricated_run):
    app = open_app(fabricated_run.run_dir.parent)
    assert app.title[0].value == "Models"
    assert "figshare-demo" in app.markdown[0].value

    table = app.dataframe[0].value
    assert list(table[common.MODEL]) == fabricated_run.model_names
    rows = table.set_index(common.MODEL)
    for name, metrics in fabricated_run.metrics.items():
        assert rows.loc[name, common.ACCURACY] == pytest.approx(metrics["accuracy"])
        assert rows.loc[name, common.MACRO_AUC] == pytest.approx(metrics["macro_auc"])
    assert rows.loc[fabricated_run.failed_model, common.PROBLEM] == fabricated_run.failed_error
    assert rows.loc[fabricated_run.corrupt_model, common.PROBLEM].startswith("ParserError")

    # Shown as percentages; broken models are blank, not zero.
    shown = displayed_table(app.dataframe[0]).to_pandas().set_index(common.MODEL)
    accuracy = fabricated_run.metrics["efficientnet_b0"]["accuracy"]
    # The headline grid writes accuracy's interval in its cell; the value stays a number (it sorts).
    interval = rows.loc["efficientnet_b0", models_view.ACCURACY_CI].removesuffix("%")
    assert shown.loc["efficientnet_b0", common.ACCURACY] == f"{accuracy:.1%} ({interval})"
    assert app.toggle(key="leaderboard_all_columns").value is False
    assert json.loads(app.dataframe[0].proto.columns)[common.MODEL]["pinned"] is True
    assert list(app.dataframe[0].proto.column_order) == models_view.HEADLINE_COLUMNS
    app.toggle(key="leaderboard_all_columns").set_value(True).run()
    assert list(app.dataframe[0].proto.column_order) == models_view.LEADERBOARD_COLUMNS
    assert displayed_table(app.dataframe[0]).to_pandas().set_index(common.MODEL).loc[
        "efficientnet_b0", common.ACCURACY] == f"{accuracy:.1%}"  # its interval has its own column again
    assert shown.loc[fabricated_run.failed_model, common.ACCURACY] == common.MISSING

    warning = app.warning[0].value
    assert fabricated_run.failed_model in warning and fabricated_run.failed_error in warning
    assert fabricated_run.corrupt_model in warning and "ParserError" in warning
    assert len(app.get("plotly_chart")) == 1


def test_no_runs_says_so_and_shows_the_command_that_makes_one(open_app, artifacts_dir):
    app = open_app(artifacts_dir)
    assert "No runs" in app.info[0].value
    command = app.code[0].value
    assert "make demo" in command
    assert f"python train_all.py --demo --out {artifacts_dir}" in command
    assert not app.dataframe and not app.sidebar.selectbox

    app.switch_page(RUN_PAGE).run()
    assert not app.exception
    assert "No runs" in app.info[0].value and "make demo" in app.code[0].value


def test_missing_artifacts_folder_reads_as_no_runs(open_app, tmp_path):
    app = open_app(tmp_path / "does-not-exist")
    assert "No runs" in app.info[0].value


def test_unreadable_run_shows_an_error_naming_its_version(open_app, artifacts_dir):
    fabricate_unreadable_run(artifacts_dir, format_version="99.0")
    app = open_app(artifacts_dir)
    assert "99.0" in app.error[0].value
    assert not app.dataframe

    app.switch_page(RUN_PAGE).run()
    assert not app.exception
    assert "99.0" in app.error[0].value


def test_unreadable_run_is_labelled_in_the_picker_and_errors_when_picked(open_app, fabricated_run):
    artifacts = fabricated_run.run_dir.parent
    unreadable = fabricate_unreadable_run(artifacts, format_version="99.0")
    app = open_app(artifacts)

    picker = app.sidebar.selectbox[0]
    assert picker.value == str(fabricated_run.run_dir)  # an unreadable run sorts last
    assert "cannot open" in picker.options[1] and "99.0" in picker.options[1]
    assert not app.error

    picker.select(str(unreadable)).run()
    assert not app.exception
    assert "99.0" in app.error[0].value and not app.dataframe

    # Back to the good run: both pages open.
    app.sidebar.selectbox[0].select(str(fabricated_run.run_dir)).run()
    assert not app.exception and not app.error
    assert list(app.dataframe[0].value[common.MODEL]) == fabricated_run.model_names
    app.switch_page(RUN_PAGE).run()
    assert not app.exception and not app.error
    assert app.title[0].value == "Run"


def test_run_page_shows_counts_skipped_files_and_timing(open_app, fabricated_run):
    app = open_app(fabricated_run.run_dir.parent)
    app.switch_page(RUN_PAGE).run()
    assert not app.exception
    assert app.title[0].value == "Run"

    tables = [element.value for element in app.dataframe]
    counts = next(table for table in tables if "Class" in table.columns).set_index("Class")
    for split, per_class in fabricated_run.counts.items():
        for name in CLASS_NAMES:
            assert counts.loc[name, split] == per_class[name], (split, name)
    assert counts.loc["total", "total"] == sum(sum(per.values()) for per in fabricated_run.counts.values())

    skipped = next(table for table in tables if list(table.columns) == ["path", "reason"])
    assert skipped.to_dict("records") == SKIPPED
    assert "**Duration** 0:03:05" in [markdown.value for markdown in app.markdown][-1]


def test_picker_switches_between_runs(open_app, artifacts_dir):
    older = fabricate_run(artifacts_dir, "20240101-000000_old", created="2024-01-01T00:00:00",
                          good_models={"only_cnn": 1.0})
    newer = fabricate_run(artifacts_dir, "20240601-000000_new", created="2024-06-01T00:00:00")
    app = open_app(artifacts_dir)
    assert app.sidebar.selectbox[0].value == str(newer.run_dir)
    assert list(app.dataframe[0].value[common.MODEL]) == newer.model_names

    app.sidebar.selectbox[0].select(str(older.run_dir)).run()
    assert not app.exception
    assert list(app.dataframe[0].value[common.MODEL]) == older.model_names
    assert app.session_state["run_dir"] == str(older.run_dir)


def test_command_line_artifacts_beat_the_environment(monkeypatch, fabricated_run, tmp_path):
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "empty"))
    monkeypatch.setattr("sys.argv", [str(APP), "--artifacts", str(fabricated_run.run_dir.parent)])
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception and not app.info
    assert list(app.dataframe[0].value[common.MODEL]) == fabricated_run.model_names


def test_a_rewritten_manifest_is_read_again_and_an_unchanged_one_is_cached(fabricated_run):
    run_dir = fabricated_run.run_dir
    manifest_path = run_dir / MANIFEST
    assert loaders.load_run_tables(run_dir).manifest["dataset"]["name"] == "figshare-demo"
    assert [run.dataset for run in loaders.list_runs(run_dir.parent)] == ["figshare-demo"]

    manifest = read_json(manifest_path)
    manifest["dataset"]["name"] = "retrained"
    before = manifest_path.stat()
    write_json(manifest_path, manifest)
    # Same mtime as before: the cached tables are still served.
    os.utime(manifest_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert loaders.load_run_tables(run_dir).manifest["dataset"]["name"] == "figshare-demo"
    # A newer mtime (training rewrote the manifest): read again.
    os.utime(manifest_path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert loaders.load_run_tables(run_dir).manifest["dataset"]["name"] == "retrained"
    assert loaders.load_manifest(run_dir).dataset.name == "retrained"
    assert [run.dataset for run in loaders.list_runs(run_dir.parent)] == ["retrained"]


# --------------------------------------------------------------------------- comparison pages

CURVES_PAGE = "app_pages/curves.py"
CONFUSION_PAGE = "app_pages/confusion.py"
TRAINING_PAGE = "app_pages/training.py"
CALIBRATION_PAGE = "app_pages/calibration.py"
SIGNIFICANCE_PAGE = "app_pages/significance.py"
COMPARISON_PAGES = [MODELS_PAGE, CURVES_PAGE, CONFUSION_PAGE, TRAINING_PAGE, CALIBRATION_PAGE, SIGNIFICANCE_PAGE]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The fabricated five-model run (one fine-tuned in two phases), shared by these tests so
    the dashboard's caches are warm after the first."""
    return fabricate_zoo_run(tmp_path_factory.mktemp("zoo") / "artifacts")


@pytest.fixture
def zoo_app(open_app, zoo):
    return open_app(zoo.run_dir.parent)


def open_page(app: AppTest, page: str) -> AppTest:
    app.switch_page(page).run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def charts(app: AppTest) -> list[dict]:
    """The figures of the page's plotly charts, as Plotly JSON."""
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def chart_configs(app: AppTest) -> list[dict]:
    return [json.loads(chart.proto.config) for chart in app.get("plotly_chart")]


def download_names(app: AppTest) -> list[str]:
    return [button.proto.label for button in app.get("download_button")]


def dataframe_with(app: AppTest, column: str):
    return next(element.value for element in app.dataframe if column in element.value.columns)


def test_every_comparison_page_opens_on_the_zoo_run_with_pngs_and_csvs(zoo_app):
    expected_charts = {MODELS_PAGE: 1, CURVES_PAGE: 3, CONFUSION_PAGE: 6, TRAINING_PAGE: 2,
                       CALIBRATION_PAGE: 1, SIGNIFICANCE_PAGE: 1}
    for page in COMPARISON_PAGES:
        app = open_page(zoo_app, page)
        assert len(app.get("plotly_chart")) == expected_charts[page], page
        for config in chart_configs(app):
            options = config["toImageButtonOptions"]
            assert options["format"] == "png" and options["scale"] == 2
            assert options["filename"].startswith("20240701-120000_zoo")
        # Every table has a CSV button (the sidebar's report button aside).
        assert download_names(app).count("Download CSV") >= 1, page


def test_leaderboard_shows_every_model_with_intervals_and_tumor_scores(zoo_app, zoo):
    app = open_page(zoo_app, MODELS_PAGE)
    table = app.dataframe[0].value
    assert list(table[common.MODEL]) == zoo.model_names
    assert list(table.columns) == models_view.LEADERBOARD_COLUMNS
    rows = table.set_index(common.MODEL)
    for name, metrics in zoo.metrics.items():
        assert rows.loc[name, common.ACCURACY] == pytest.approx(metrics["accuracy"])
        assert rows.loc[name, common.MACRO_AUC] == pytest.approx(metrics["macro_auc"])
        assert rows.loc[name, models_view.ACCURACY_CI] != ""
    predictions = zoo.predictions["mobilenet_v2"]
    is_tumor, called_tumor = predictions["label"] != "notumor", predictions["pred"] != "notumor"
    assert rows.loc["mobilenet_v2", models_view.TUMOR_SENSITIVITY] == pytest.approx(
        (is_tumor & called_tumor).sum() / is_tumor.sum()
    )
    assert rows.loc[zoo.failed_model, common.PROBLEM] == zoo.failed_error
    shown = displayed_table(app.dataframe[0]).to_pandas().set_index(common.MODEL)
    assert shown.loc["custom_cnn", models_view.ACCURACY_GAP] == "+5.0%"
    interval_figure = charts(app)[0]
    assert {trace["name"] for trace in interval_figure["data"]} == set(zoo.good_models)


def test_curves_page_overlays_models_and_classes_and_the_tumor_roc(zoo_app, zoo):
    app = open_page(zoo_app, CURVES_PAGE)
    by_class, by_model, tumor = charts(app)
    assert [trace["name"].split(" (")[0] for trace in by_class["data"]] == zoo.good_models
    assert [trace["name"].split(" (")[0] for trace in by_model["data"]] == CLASS_NAMES
    assert [trace["name"].split(" (")[0] for trace in tumor["data"]] == zoo.good_models
    areas = dataframe_with(app, "glioma").set_index("Model")
    assert list(areas.index) == zoo.good_models
    predictions = zoo.predictions["resnet18"]
    expected = roc_auc_score(predictions["label"] == "pituitary", predictions["p_pituitary"])
    assert areas.loc["resnet18", "pituitary"] == pytest.approx(expected)

    app.radio(key="curves_kind").set_value("pr").run()
    app.selectbox(key="curves_class").select("notumor").run()
    assert not app.exception
    by_class = charts(app)[0]
    assert "Precision-recall: notumor" in by_class["layout"]["title"]["text"]
    assert by_class["data"][0]["name"].startswith(f"{zoo.good_models[0]} (AP ")


def test_confusion_page_counts_match_the_predictions(zoo_app, zoo):
    app = open_page(zoo_app, CONFUSION_PAGE)
    figures_by_title = {figure["layout"]["title"]["text"]: figure for figure in charts(app)}
    for name, predictions in zoo.predictions.items():
        expected = confusion_matrix(predictions["label"], predictions["pred"], labels=CLASS_NAMES)
        shown = figures_by_title[name]["data"][0]["text"]
        assert shown == [[str(count) for count in row] for row in expected], name

    app.radio(key="confusion_normalized").set_value(True).run()
    assert not app.exception
    glioma_row = charts(app)[0]["data"][0]["text"][0]
    assert all(text.endswith("%") for text in glioma_row)


def test_confusion_page_shows_exactly_the_stored_matrices(open_app, tmp_path):
    zoo = fabricate_zoo_run(tmp_path / "artifacts")
    # A stored matrix no prediction table gives: the page must show it as stored.
    n = len(CLASS_NAMES)
    stored = [[row * n + column for column in range(n)] for row in range(n)]
    path = model_dir(zoo.run_dir, "custom_cnn") / METRICS
    write_json(path, {**read_json(path), "confusion_matrix": stored})
    app = open_page(open_app(zoo.run_dir.parent), CONFUSION_PAGE)
    figures_by_title = {figure["layout"]["title"]["text"]: figure for figure in charts(app)}

    def shown(name):  # the counts written in the cells
        return figures_by_title[name]["data"][0]["text"]

    assert shown("custom_cnn") == [[str(count) for count in row] for row in stored]
    for name in zoo.good_models:
        expected = read_json(model_dir(zoo.run_dir, name) / METRICS)["confusion_matrix"]
        assert shown(name) == [[str(count) for count in row] for row in expected], name


def test_confusion_difference_of_two_chosen_models(zoo_app, zoo):
    app = open_page(zoo_app, CONFUSION_PAGE)
    app.selectbox(key="confusion_diff_a").select("simple_cnn")
    app.selectbox(key="confusion_diff_b").select("efficientnet_b0").run()
    difference = next(f for f in charts(app) if "−" in f["layout"]["title"]["text"])
    a = confusion_matrix(zoo.predictions["simple_cnn"]["label"], zoo.predictions["simple_cnn"]["pred"],
                         labels=CLASS_NAMES)
    b = confusion_matrix(zoo.predictions["efficientnet_b0"]["label"], zoo.predictions["efficientnet_b0"]["pred"],
                         labels=CLASS_NAMES)
    assert difference["data"][0]["text"][0][0] == f"{b[0, 0] - a[0, 0]:+d}"


def test_confusion_cell_selectbox_lists_that_cells_images(zoo_app, zoo):
    app = open_page(zoo_app, CONFUSION_PAGE)
    app.selectbox(key="confusion_cell_model").select("custom_cnn").run()
    app.selectbox(key="confusion_cell").select(("glioma", "meningioma")).run()
    assert not app.exception
    predictions = zoo.predictions["custom_cnn"]
    expected = predictions[(predictions["label"] == "glioma") & (predictions["pred"] == "meningioma")]
    assert len(expected) > 0
    label = app.selectbox(key="confusion_cell").format_func(("glioma", "meningioma"))
    assert f"({len(expected)} image" in label

    cell_table = dataframe_with(app, "p_glioma")
    assert list(cell_table["id"]) == list(expected["id"])
    thumbnails = app.get("image")[0]
    assert len(thumbnails.proto.imgs) == len(expected)
    assert "true glioma" in thumbnails.proto.imgs[0].caption


def test_training_page_marks_the_fine_tuning_phase(zoo_app, zoo):
    app = open_page(zoo_app, TRAINING_PAGE)
    app.selectbox(key="training_model").select(FINE_TUNED_MODEL).run()
    assert not app.exception
    figure, overlay = charts(app)
    shaded = [shape for shape in figure["layout"]["shapes"] if shape["type"] == "rect"]
    head_epochs = FINE_TUNE_PHASES["head"]
    assert shaded and all(shape["x0"] == head_epochs + 0.5 for shape in shaded)
    assert figure["layout"]["yaxis3"]["type"] == "log"
    assert any("fine_tune" in caption.value for caption in app.caption)
    history = dataframe_with(app, "lr")
    assert list(history["phase"]) == list(zoo.histories[FINE_TUNED_MODEL]["phase"])
    assert {trace["name"] for trace in overlay["data"]} == set(zoo.good_models)


def test_calibration_page_overlays_models_with_their_ece(zoo_app, zoo):
    app = open_page(zoo_app, CALIBRATION_PAGE)
    table = dataframe_with(app, common.ECE).set_index(common.MODEL)
    assert list(table.index) == zoo.good_models
    predictions = zoo.predictions["simple_cnn"]
    proba = predictions[[f"p_{name}" for name in CLASS_NAMES]].to_numpy()
    y_true = predictions["label"].map(CLASS_NAMES.index).to_numpy()
    assert table.loc["simple_cnn", common.ECE] == pytest.approx(expected_calibration_error(y_true, proba, 15))
    legend = [trace["name"] for trace in charts(app)[0]["data"] if trace.get("legendgroup")]
    assert legend[0] == f"simple_cnn (ECE {table.loc['simple_cnn', common.ECE]:.1%})"

    app.slider(key="calibration_bins").set_value(10).run()
    assert not app.exception
    ten_bins = dataframe_with(app, common.ECE).set_index(common.MODEL)
    assert ten_bins.loc["simple_cnn", common.ECE] == pytest.approx(expected_calibration_error(y_true, proba, 10))


def test_significance_page_tests_every_pair(zoo_app, zoo):
    app = open_page(zoo_app, SIGNIFICANCE_PAGE)
    n = len(zoo.good_models)
    pairs = dataframe_with(app, "A right, B wrong")
    assert len(pairs) == n * (n - 1) // 2
    first = pairs.iloc[0]
    right = {name: (p["label"] == p["pred"]).to_numpy() for name, p in zoo.predictions.items()}
    a, b = right[first["Model A"]], right[first["Model B"]]
    assert first["A right, B wrong"] == int((a & ~b).sum())
    assert first["A wrong, B right"] == int((~a & b).sum())
    assert any(f"Cochran's Q across all {n} models" in text.value for text in app.markdown)
    heatmap = charts(app)[0]["data"][0]
    assert list(heatmap["x"]) == zoo.good_models
    differences = dataframe_with(app, "95% interval")
    assert len(differences) == 2 * n * (n - 1) // 2  # macro AUC and macro F1, every pair
    assert set(differences["Metric"]) == {"Macro AUC", "Macro F1"}
    assert set(differences["Differ?"]) <= {"yes", "no"}


def test_presentation_toggle_changes_state_css_and_controls(zoo_app):
    app = open_page(zoo_app, CURVES_PAGE)
    assert app.session_state["presentation_mode"] is False
    assert not app.expander
    app.sidebar.toggle(key="presentation_mode").set_value(True).run()
    assert not app.exception
    assert app.session_state["presentation_mode"] is True
    assert app.query_params.get("present") == "1"
    assert [expander.label for expander in app.expander] == ["Options"]
    assert any("Presentation mode" in element.proto.body for element in app.get("html"))
    assert charts(app)[0]["layout"]["font"]["size"] == 18

    app.sidebar.toggle(key="presentation_mode").set_value(False).run()
    assert app.session_state["presentation_mode"] is False
    assert not app.expander and "present" not in app.query_params


def test_report_download_button_is_in_the_sidebar(zoo_app, zoo):
    buttons = [b for b in zoo_app.sidebar.get("download_button") if "report" in b.proto.label.lower()]
    assert len(buttons) == 1
    assert "self-contained HTML" in buttons[0].proto.help
    assert report_file_name(loaders.load_run_tables(zoo.run_dir)) == f"{zoo.run_dir.name.lower()}_report.html"


@pytest.mark.parametrize("page", COMPARISON_PAGES[1:])
def test_comparison_pages_without_runs_say_how_to_make_one(open_app, artifacts_dir, page):
    app = open_page(open_app(artifacts_dir), page)
    assert "No runs" in app.info[0].value


def test_comparison_pages_of_a_one_model_run_explain_what_they_need(open_app, artifacts_dir):
    fabricate_run(artifacts_dir, good_models={"only_cnn": 1.0})
    app = open_app(artifacts_dir)
    for page in COMPARISON_PAGES:
        open_page(app, page)
    assert "2 models" in app.info[0].value  # the significance page, opened last
    app = open_page(app, CONFUSION_PAGE)
    assert any("two models" in info.value for info in app.info)


def test_comparison_pages_of_a_run_without_usable_models_do_not_fail(open_app, artifacts_dir):
    fabricate_run(artifacts_dir, good_models={})  # only the failed and the corrupt model
    app = open_app(artifacts_dir)
    for page in COMPARISON_PAGES:
        open_page(app, page)
        assert app.info, page


# --------------------------------------------------------------------------- operating point


def plotly_array(value):
    """A figure's array from Plotly JSON: a list, or a typed array ({"dtype", "bdata"}: base64)."""
    import base64

    import numpy as np

    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def operating_counts(predictions, threshold: float) -> list[int]:
    is_tumor, called = predictions["label"] != "notumor", 1.0 - predictions["p_notumor"] >= threshold
    return [int((is_tumor & called).sum()), int((is_tumor & ~called).sum()),
            int((~is_tumor & called).sum()), int((~is_tumor & ~called).sum())]


def test_curves_page_operating_point_follows_the_threshold(zoo_app, zoo):
    from bt_dashboard.views import operating_point as operating_view

    app = open_page(zoo_app, CURVES_PAGE)
    assert app.slider(key="operating_threshold").value == 0.5
    count_columns = list(operating_view.COUNT_COLUMNS)
    for threshold in (0.5, 0.9):
        if threshold != 0.5:
            app.slider(key="operating_threshold").set_value(threshold).run()
            assert not app.exception, [e.message for e in app.exception]
        table = dataframe_with(app, "PPV").set_index(common.MODEL)
        assert list(table.index) == zoo.good_models
        for name in zoo.good_models:
            predictions = zoo.predictions[name]
            assert table.loc[name, count_columns].tolist() == operating_counts(predictions, threshold), name
        tumor = charts(app)[2]
        assert [trace["name"].split(" (")[0] for trace in tumor["data"]] == zoo.good_models
        assert f"threshold {threshold:.2f}" in tumor["layout"]["title"]["text"]
        first = tumor["data"][0]
        marked = plotly_array(first["marker"]["size"]).nonzero()[0]
        assert len(marked) == 1
        tp, fn, fp, tn = operating_counts(zoo.predictions[zoo.good_models[0]], threshold)
        assert plotly_array(first["y"])[marked[0]] == pytest.approx(tp / (tp + fn))
        assert plotly_array(first["x"])[marked[0]] == pytest.approx(fp / (fp + tn))
        matrices = [element.value for element in app.table if "Called tumor" in element.value.columns]
        assert len(matrices) == len(zoo.good_models)
        assert matrices[0].loc["Tumor", "Called tumor"] == tp and matrices[0].loc["No tumor", "Called no tumor"] == tn


def test_leaderboard_blanks_read_a_dash_and_fixed_point_columns_explain_themselves(zoo_app, zoo):
    app = open_page(zoo_app, MODELS_PAGE)
    board = app.dataframe[0]
    assert board.proto.placeholder == common.MISSING  # the grid's text for a blank cell (not "None")
    columns = json.loads(board.proto.columns)
    assert "at least 95%" in columns[models_view.SENSITIVITY_AT_SPECIFICITY]["help"]
    rows = board.value.set_index(common.MODEL)
    predictions = zoo.predictions["resnet18"]
    is_tumor = predictions["label"] != "notumor"
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(is_tumor, 1.0 - predictions["p_notumor"])
    assert rows.loc["resnet18", models_view.SENSITIVITY_AT_SPECIFICITY] == pytest.approx(tpr[1 - fpr >= 0.95].max())
    assert rows.loc["resnet18", models_view.SENSITIVITY_AT_SPECIFICITY_CI] != ""


def write_tiny_run(artifacts_dir: Path, classes: list[str], labels: list[str], proba) -> None:
    """A run of two done models with the same predictions, through RunWriter (no images)."""
    import pandas as pd

    from bt_core import artifacts as art

    writer = art.RunWriter(artifacts_dir / "tiny", {"run_id": "tiny", "created": "2026-11-30T10:00:00+00:00",
                                                    "class_names": classes, "dataset": {"name": "tiny"}})
    ids = [f"{i}.png" for i in range(len(labels))]
    writer.write_split(pd.DataFrame({"path": ids, "split": "test", "label": labels}))
    for name in ("a_cnn", "b_cnn"):
        writer.write_predictions(name, art.predictions_frame(ids, labels, proba, classes))
        writer.write_metrics(name, {})
        writer.set_model_status(name, art.STATUS_DONE)


def test_curves_page_of_a_run_without_a_no_tumor_class_says_the_threshold_does_not_apply(open_app, artifacts_dir):
    import numpy as np

    write_tiny_run(artifacts_dir, ["cat", "dog"], ["cat", "dog"] * 10, np.random.default_rng(0).dirichlet([1, 1], 20))
    app = open_page(open_app(artifacts_dir), CURVES_PAGE)
    assert any("threshold on P(tumor) does not apply" in info.value for info in app.info)
    assert not app.get("slider") and len(charts(app)) == 2  # the class curves only


def test_operating_point_of_tumor_images_alone_has_sensitivity_and_no_specificity(open_app, artifacts_dir):
    import numpy as np

    p_tumor = np.array([0.9, 0.8, 0.3, 0.6, 0.45, 0.99])
    write_tiny_run(artifacts_dir, ["notumor", "tumor"], ["tumor"] * 6, np.column_stack([1 - p_tumor, p_tumor]))
    app = open_page(open_app(artifacts_dir), CURVES_PAGE)
    assert any("the test set holds tumor images only" in info.value for info in app.info)
    assert not charts(app)  # no ROC without healthy scans
    element = next(element for element in app.dataframe if "PPV" in element.value.columns)
    shown = displayed_table(element).to_pandas().set_index(common.MODEL)
    from bt_dashboard.views import operating_point as operating_view

    interval = element.value.set_index(common.MODEL).loc["a_cnn", f"Sensitivity {operating_view.CI}"]
    assert shown.loc["a_cnn", "Sensitivity"] == f"{4 / 6:.1%} ({interval.removesuffix('%')})"
    assert shown.loc["a_cnn", "Specificity"] == "not measurable"
    assert element.proto.placeholder == "not measurable"  # what the browser's grid shows there
    assert any("Specificity not measurable for a_cnn, b_cnn (no no-tumor images)" in caption.value
               for caption in app.caption)
