"""The Shortcuts page, run headless with Streamlit's AppTest on a fabricated run whose
shortcut measures are written through bt_core.artifacts.write_shortcuts (no model: the
summary is built by fabricate.write_shortcut_measures, its parts and flags by
bt_core.shortcuts.flags, so they follow the documented thresholds)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import SHORTCUTS_SUMMARY, shortcuts_dir
from bt_core.shortcuts import flags
from bt_dashboard.views import severity as severity_view
from bt_dashboard.views import shortcut_model as shortcut_model_view
from bt_dashboard.views import shortcuts as shortcuts_view
from fabricate import (
    CLASS_NAMES,
    SHORTCUT_GAUSSIAN,
    SHORTCUT_RANDOM,
    fabricate_run,
    write_class_means,
    write_shortcut_measures,
)

SHORTCUTS_PAGE = "app_pages/shortcuts.py"
MODELS_PAGE = "app_pages/models.py"
FLAGGED, CLEAN = "simple_cnn", "cnn_bn"
GAUSSIAN, RANDOM = SHORTCUT_GAUSSIAN, SHORTCUT_RANDOM


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("shortcuts") / "artifacts"
    fabricated = fabricate_run(root, good_models={FLAGGED: 2.5, CLEAN: 1.5, "efficientnet_b0": 3.0},
                               image_side=16)
    # The flagged model also gets precomputed maps: its worst images have an overlay.
    summary = write_shortcut_measures(fabricated, FLAGGED, CLEAN, skipped="efficientnet_b0")
    write_class_means(fabricated, FLAGGED)  # CLEAN's were never stored: the page says how to make them
    return fabricated, summary


def run_page(app: AppTest, page: str | None = None) -> AppTest:
    if page is not None:
        app.switch_page(page)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def test_the_flags_of_the_fabricated_summary_follow_the_thresholds(measured):
    _fabricated, summary = measured
    fired = [flag["name"] for flag in summary["models"][FLAGGED]["flags"]]
    assert fired == ["outside_head", "border", "background_accuracy"]
    assert summary["models"][CLEAN]["flags"] == []


def test_page_shows_the_verdict_naming_the_flagged_model(open_app, measured):
    fabricated, _summary = measured
    app = run_page(open_app(fabricated.run_dir.parent), SHORTCUTS_PAGE)
    assert app.title[0].value == "Shortcuts"
    assert not app.error, texts(app.error)
    assert any(f"1 of 2 measured models is flagged on all test images ({FLAGGED})" in text
               for text in texts(app.warning))
    accuracy = fabricated.metrics[FLAGGED]["accuracy"]
    verdict = next(text for text in texts(app.markdown) if f"**{FLAGGED}**: {accuracy:.1%} accurate" in text)
    assert f"**{FLAGGED}**: {accuracy:.1%} accurate, but 60% of its map energy lies outside the head" in verdict
    assert f"Not flagged by any threshold: **{CLEAN}**" in verdict

    table = next(frame.value for frame in app.dataframe
                 if list(frame.value.columns) == shortcuts_view.VERDICT_COLUMNS)
    rows = table.set_index(shortcuts_view.MODEL)
    assert rows.loc[FLAGGED, shortcuts_view.FLAGGED] == shortcuts_view.ON_ALL_IMAGES
    assert rows.loc[CLEAN, shortcuts_view.FLAGGED] == shortcuts_view.NO
    assert rows.loc[FLAGGED, shortcuts_view.ACCURACY] == pytest.approx(accuracy)
    assert rows.loc[shortcuts_view.BASELINE_LABELS["random"], shortcuts_view.OUTSIDE_HEAD] == pytest.approx(RANDOM["outside_head"])
    grid = next(frame for frame in app.dataframe if list(frame.value.columns) == shortcuts_view.VERDICT_COLUMNS)
    assert list(grid.proto.column_order) == shortcuts_view.HEADLINE_VERDICT_COLUMNS  # the rest: "All columns"
    captions = " ".join(texts(app.caption))
    assert "OUTSIDE_HEAD_LIMIT" in captions and flags.FLAG_SENTENCES["in_box"] in captions
    assert re.search(r"Measured \d{4}-\d\d-\d\d \d\d:\d\d UTC from", captions)  # readable, not ISO
    assert "efficientnet_b0" in captions  # skipped, with its reason

    # The flagged model is opened first: its probes and curves, worst images, clusters, audit.
    assert app.selectbox(key="shortcuts_model").value == FLAGGED
    charts = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    assert len(charts) == 5  # overview, parts, mean maps; the model's probes and curves
    probes = next(chart for chart in charts if chart["data"][0].get("name") == "Original")
    assert [trace["name"] for trace in probes["data"]] == ["Original", "Head only", "Background only", *["chance"] * 3]
    thumbnails = app.get("image")[0].proto.imgs
    assert len(thumbnails) == 12 and "outside head" in thumbnails[0].caption
    assert any("precomputed Grad-CAM" in text for text in texts(app.caption))
    links = [link for link in app.get("page_link") if link.proto.page.endswith("inspect")]
    assert len(links) == 1
    worst = shortcut_model_view.worst_images(pd.read_csv(shortcuts_dir(fabricated.run_dir) / "models" / f"{FLAGGED}.csv",
                                        dtype={"id": str}), shortcut_model_view.BY_OUTSIDE, 12)
    assert parse_qs(links[0].proto.query_string) == {"image": [worst["id"][0]]}
    assert sum("Clever-Hans candidate" in text for text in texts(app.markdown)) == 1  # the badge
    assert any("well above chance" in text for text in texts(app.markdown))
    assert any("close to chance" in text for text in texts(app.markdown))
    dedup = next(frame.value for frame in app.dataframe if "Accuracy (de-dup)" in frame.value.columns)
    assert dedup.set_index(shortcuts_view.MODEL).loc[FLAGGED, "Accuracy (de-dup)"] == pytest.approx(0.5)
    labels = [button.proto.label for button in app.get("download_button")]
    assert labels.count("Download CSV") >= 5 and "Download all 2 pairs (CSV)" in labels


def test_page_follows_the_chosen_model_and_ranking(open_app, measured):
    fabricated, _summary = measured
    app = run_page(open_app(fabricated.run_dir.parent), SHORTCUTS_PAGE)
    app.selectbox(key="shortcuts_model").select(CLEAN)
    run_page(app)
    app.radio(key="shortcuts_worst_by").set_value(shortcut_model_view.BY_BACKGROUND)
    app.slider(key="shortcuts_worst_n").set_value(3)
    run_page(app)
    assert not app.error, texts(app.error)
    assert len(app.get("image")[0].proto.imgs) <= 3
    assert any(f"No precomputed Grad-CAM maps of {CLEAN}" in text for text in texts(app.caption))
    app.radio(key="shortcuts_probe_measure").set_value("Called tumor")
    run_page(app)
    assert not app.error


def method_frame(app: AppTest) -> pd.DataFrame:
    return next(frame.value for frame in app.dataframe if list(frame.value.columns) == shortcut_model_view.METHOD_TABLE_COLUMNS)


def test_page_compares_where_each_method_looks_with_the_baselines(open_app, measured):
    fabricated, summary = measured
    app = run_page(open_app(fabricated.run_dir.parent), SHORTCUTS_PAGE)
    assert any(text == "**Where each method looks**" for text in texts(app.markdown))
    rows = method_frame(app).set_index(shortcut_model_view.METHOD)
    assert list(rows.index) == ["Grad-CAM", "Faster Score-CAM", *shortcuts_view.BASELINE_LABELS.values()]
    assert list(rows[shortcut_model_view.SCORED]) == [shortcuts_view.YES, shortcuts_view.NO, "", ""]
    by_method = summary["models"][FLAGGED]["attention_by_method"]
    assert rows.loc["Faster Score-CAM", shortcuts_view.OUTSIDE_HEAD] == pytest.approx(
        by_method["faster_scorecam"]["all"]["outside_head"])
    assert rows.loc["Grad-CAM", shortcuts_view.BORDER] == pytest.approx(by_method["gradcam"]["all"]["border"])
    assert rows.loc[shortcuts_view.BASELINE_LABELS["random"], shortcuts_view.OUTSIDE_HEAD] == pytest.approx(RANDOM["outside_head"])
    assert ("The score and flags use Grad-CAM; methods that disagree deserve a look on the Inspect page."
            in texts(app.caption))

    # One class's images: that group's measures and baselines.
    group = app.selectbox(key="shortcuts_method_group")
    assert group.options == ["all test images", *(f"{name} images" for name in CLASS_NAMES)]
    group.select("notumor")
    run_page(app)
    assert not app.error, texts(app.error)
    rows = method_frame(app).set_index(shortcut_model_view.METHOD)
    notumor = by_method["faster_scorecam"]["notumor"]
    assert rows.loc["Faster Score-CAM", shortcuts_view.OUTSIDE_HEAD] == pytest.approx(notumor["outside_head"])
    assert rows.loc["Faster Score-CAM", shortcut_model_view.IMAGES] == notumor["n_images"]
    assert rows.loc[shortcuts_view.BASELINE_LABELS["random"], shortcut_model_view.IMAGES] == notumor["n_images"]


def test_a_summary_without_methods_compared_says_so_in_one_line(open_app, artifacts_dir):
    fabricated = fabricate_run(artifacts_dir, good_models={FLAGGED: 2.5, CLEAN: 1.5})
    write_shortcut_measures(fabricated, FLAGGED, CLEAN)
    path = shortcuts_dir(fabricated.run_dir) / SHORTCUTS_SUMMARY
    summary = json.loads(path.read_text(encoding="utf-8"))
    for record in summary["models"].values():
        del record["attention_by_method"]
    path.write_text(json.dumps(summary), encoding="utf-8")
    app = run_page(open_app(artifacts_dir), SHORTCUTS_PAGE)
    assert not app.error, texts(app.error)
    assert any("compares no explanation methods" in text for text in texts(app.caption))
    assert not [frame for frame in app.dataframe if list(frame.value.columns) == shortcut_model_view.METHOD_TABLE_COLUMNS]
    assert app.get("plotly_chart")  # the rest of the model's section is there


def test_a_run_without_measures_shows_the_command_that_makes_them(open_app, artifacts_dir):
    fabricated = fabricate_run(artifacts_dir)
    app = run_page(open_app(artifacts_dir), SHORTCUTS_PAGE)
    assert "no shortcut measures yet" in app.info[0].value
    assert app.code[0].value == f"python train_all.py --explain {fabricated.run_dir}"
    assert not app.error and not app.dataframe


def test_a_corrupt_summary_shows_an_error_and_the_app_keeps_working(open_app, artifacts_dir):
    fabricated = fabricate_run(artifacts_dir)
    path = shortcuts_dir(fabricated.run_dir) / SHORTCUTS_SUMMARY
    path.parent.mkdir(parents=True)
    path.write_text('{"models": {"simple_cnn": ', encoding="utf-8")
    app = run_page(open_app(artifacts_dir), SHORTCUTS_PAGE)
    assert "cannot be read" in app.error[0].value and str(path) in app.error[0].value
    assert f"--explain {fabricated.run_dir}" in app.code[0].value
    app = run_page(app, MODELS_PAGE)
    assert not app.error and app.title[0].value == "Models"


def test_a_malformed_summary_does_not_raise(open_app, artifacts_dir):
    fabricated = fabricate_run(artifacts_dir)
    path = shortcuts_dir(fabricated.run_dir) / SHORTCUTS_SUMMARY
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "models": {"small_cnn": {"score": "high", "flags": "many", "parts": [1, 2], "probes": {"all": 3},
                                 "clusters": {"glioma": {"clusters": [{"mean_map": [[1, 2], [3]]}]}}},
                   "mobilenet_v2": None},
        "audit": {"duplicates": {"pairs": "two", "by_split_pair": [{"kind": "near"}]}, "source_probe": []},
        "thresholds": [], "baselines": "none",
    }), encoding="utf-8")
    app = run_page(open_app(artifacts_dir), SHORTCUTS_PAGE)
    table = next(frame.value for frame in app.dataframe
                 if list(frame.value.columns) == shortcuts_view.VERDICT_COLUMNS)
    assert list(table[shortcuts_view.MODEL]) == ["small_cnn", "mobilenet_v2"]
    assert set(table[shortcuts_view.FLAGGED]) == {flags.FLAGS_NOT_MEASURED}
    assert any("**?** duplicate pairs" in text for text in texts(app.markdown))


def test_page_leads_with_the_severity_and_shows_the_probes_that_drive_it(open_app, measured):
    fabricated, summary = measured
    app = run_page(open_app(fabricated.run_dir.parent), SHORTCUTS_PAGE)
    assert any(text.startswith("Counterfactual severity: 1 of 2 measured models is unsafe")
               for text in texts(app.markdown))  # on the first screen
    headline = next(text for text in texts(app.warning) if "unsafe" in text)
    assert headline.startswith("1 of 2 measured models is unsafe: more than 10% of their decisions follow the source")
    table = next(frame.value for frame in app.dataframe if list(frame.value.columns) == severity_view.SEVERITY_COLUMNS)
    assert list(table.columns) == severity_view.SEVERITY_COLUMNS
    rows = table.set_index(severity_view.MODEL)
    stored = summary["models"][FLAGGED]["severity"]
    assert list(table[severity_view.MODEL]) == [FLAGGED, CLEAN]  # most severe first
    assert rows.loc[FLAGGED, severity_view.SEVERITY] == pytest.approx(stored["severity"]) == pytest.approx(0.8)
    assert rows.loc[FLAGGED, severity_view.VERDICT] == flags.UNSAFE
    assert rows.loc[CLEAN, severity_view.VERDICT] == flags.NO_EVIDENCE and rows.loc[CLEAN, severity_view.SEVERITY] == 0
    sentence = next(text for text in texts(app.markdown) if f"**{FLAGGED}** (unsafe)" in text)
    assert "about 80% [" in sentence and "of its" in sentence and "once they get the outside" in sentence
    probes = next(frame.value for frame in app.dataframe if list(frame.value.columns) == severity_view.PROBE_COLUMNS)
    swaps = probes[probes["Probe"] == severity_view.PROBE_LABELS["source_swap"]]
    assert len(swaps) == len(CLASS_NAMES) and swaps["Value"].tolist() == pytest.approx([0.8] * len(CLASS_NAMES))


def test_the_first_screen_carries_the_verdict_in_pictures_and_the_rest_is_in_tabs(open_app, measured):
    fabricated, summary = measured
    app = run_page(open_app(fabricated.run_dir.parent), SHORTCUTS_PAGE)
    charts = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    overview, parts, means = charts[:3]
    own = {trace["name"]: trace for trace in overview["data"] if trace.get("mode") == "markers+text"}
    assert set(own) == {FLAGGED, CLEAN}
    assert own[FLAGGED]["y"] == [pytest.approx(summary["models"][FLAGGED]["score"])]
    assert own[FLAGGED]["x"] == [pytest.approx(fabricated.metrics[FLAGGED]["accuracy"])]
    assert any("right for the wrong reasons" in note["text"] for note in overview["layout"]["annotations"])
    assert parts["data"][0]["type"] == "heatmap" and parts["data"][0]["y"] == [FLAGGED, CLEAN]
    assert "⚑" in parts["data"][0]["text"][0][0]  # outside head fired on all the flagged model's images
    assert {trace["name"].split(" · ")[0] for trace in means["data"] if trace["type"] == "heatmap"} == {FLAGGED}
    line = next(text for text in texts(app.caption) if "No mean maps per class stored" in text)
    assert line == (f"No mean maps per class stored for {CLEAN} (analyzed before they were stored): "
                    f"re-run `bt-zoo explain {fabricated.run_dir}`.")

    # The sentences and tables below, in tabs; the dataset audit is not under the model picker.
    tabs = {tab.label: tab for tab in app.tabs}
    assert list(tabs) == ["Verdict in words", "Counterfactual severity", "One model", "Parts & probes",
                          "Worst images", "Clusters", "Dataset audit"]
    assert tabs["One model"].selectbox(key="shortcuts_model").value == FLAGGED
    audit = tabs["Dataset audit"]
    assert not audit.selectbox and any("**Source probe**" == text for text in texts(audit.markdown))
