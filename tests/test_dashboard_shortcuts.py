"""The Shortcuts page, run headless with Streamlit's AppTest on a fabricated run whose
shortcut measures are written through bt_core.artifacts.write_shortcuts (no model: the
summary is built here, its parts and flags by bt_core.shortcuts.flags, so they follow the
documented thresholds)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import SHORTCUTS_SUMMARY, shortcuts_dir, write_maps, write_shortcuts
from bt_core.shortcuts import flags
from dashboard import shortcut_tables as sc
from dashboard.settings import ARTIFACTS_ENV
from fabricate import CLASS_NAMES, fabricate_run

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
SHORTCUTS_PAGE = "app_pages/shortcuts.py"
MODELS_PAGE = "app_pages/models.py"
FLAGGED, CLEAN = "simple_cnn", "cnn_bn"
GAUSSIAN = {"outside_head": 0.2, "border": 0.12, "in_box": None, "pointing_hit": None}
RANDOM = {"outside_head": 0.55, "border": 0.34, "in_box": None, "pointing_hit": None}


def model_record(outside_head: float, border: float, background_accuracy: float, examples: list[str]) -> dict:
    attention_all = {"n_images": 48, "outside_head": outside_head, "border": border, "in_box": np.nan,
                     "pointing_hit": np.nan, "rank_accuracy": np.nan}
    probes = pd.DataFrame(
        {"n": [48, 48, 48], "accuracy": [0.9, 0.7, background_accuracy], "mean_confidence": [0.9, 0.8, 0.5],
         "mean_true_prob": [0.85, 0.6, 0.4], "tumor_predicted": [0.75, 0.6, 0.3], "chance": [0.25] * 3},
        index=pd.Index(["original", "head_only", "background_only"], name="condition"),
    )
    parts = flags.shortcut_parts(attention_all, probes, {flags.GAUSSIAN: GAUSSIAN}, len(CLASS_NAMES),
                                 border_area=0.36)
    mean_map = np.outer(np.hanning(16), np.hanning(16)).round(4).tolist()
    return {
        "score": flags.shortcut_score(parts),
        "flags": [{"name": name, "sentence": sentence, "overall": True, "classes": []}
                  for name, sentence in flags.shortcut_flags(parts)],
        "parts": {"all": parts},
        "attention": {"all": attention_all},
        "probes": {"all": {condition: row.to_dict() for condition, row in probes.iterrows()}},
        "faithfulness": {"images": 12, "steps": 4, "deletion_auc": 0.4, "insertion_auc": 0.7,
                         "deletion_curve": [0.9, 0.6, 0.4, 0.2, 0.1], "insertion_curve": [0.2, 0.5, 0.7, 0.8, 0.9]},
        "clusters": {"glioma": {"k": 2, "n_neighbors": 4, "notes": [], "clusters": [
            {"label": 0, "size": 9, "share": 0.75, "tightness": 0.3, "off_head": 0.9, "examples": examples[:3],
             "mean_map": mean_map, "clever_hans_candidate": True},
            {"label": 1, "size": 3, "share": 0.25, "tightness": 0.05, "off_head": 0.1, "examples": examples[3:5],
             "mean_map": mean_map, "clever_hans_candidate": False},
        ]}},
        "seconds": 1.0,
    }


def per_image_table(predictions: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(predictions)
    return pd.DataFrame({
        "id": predictions["id"], "label": predictions["label"], "pred": predictions["pred"],
        "background_pred": rng.choice(CLASS_NAMES, n), "has_box": False,
        "outside_head": rng.uniform(0, 1, n), "border": rng.uniform(0, 1, n), "in_box": np.nan,
        "pointing_hit": np.nan, "rank_accuracy": np.nan,
        "deletion_auc": rng.uniform(0, 1, n), "insertion_auc": rng.uniform(0, 1, n), "cluster": -1,
    })


def write_measures(fabricated) -> dict:
    """A small valid shortcut summary, per-image tables and duplicate pairs for the run."""
    ids = fabricated.test_ids
    records = {
        FLAGGED: model_record(0.6, 0.45, 0.6, ids),  # outside head, border, background accuracy fire
        CLEAN: model_record(0.25, 0.1, 0.3, ids),
    }
    pairs = pd.DataFrame({
        "id_a": ["train/glioma/img_000.jpg", ids[0]], "id_b": [ids[1], ids[2]],
        "split_a": ["train", "test"], "split_b": ["test", "test"], "label_a": ["glioma", "glioma"],
        "label_b": ["glioma", "notumor"], "distance": [2, 4], "similarity": [0.99, 0.95],
        "kind": ["near", "near"], "group": [0, 1],
    })
    summary = {
        "method": "gradcam",
        "models": records,
        "skipped": {"efficientnet_b0": "no gradcam maps"},
        "audit": {
            "source_probe": {
                "border": {"balanced_accuracy": 0.6, "std": 0.05, "chance": 0.25, "folds": 5, "n_images": 48,
                           "region_share": 0.36},
                "background": {"balanced_accuracy": 0.3, "std": 0.05, "chance": 0.25, "folds": 5,
                               "n_images": 48, "region_share": 0.5},
            },
            "duplicates": {
                "pairs": 2, "exact_pairs": 0, "near_pairs": 2, "label_conflicts": 1, "unreadable": 0,
                "max_distance": 4, "min_similarity": 0.92,
                "by_split_pair": [{"split_pair": "train-test", "kind": "near", "pairs": 1},
                                  {"split_pair": "test-test", "kind": "near", "pairs": 1}],
                "summary": [], "test_images": len(ids), "test_kept": len(ids) - 2,
                "deduplicated_metrics": {name: {"accuracy": 0.5, "macro_f1": 0.5, "macro_auc": 0.7}
                                         for name in records},
            },
        },
        "baselines": {"centered_gaussian/all": GAUSSIAN, "random/all": RANDOM},
        "thresholds": flags.thresholds(),
        "has_boxes": False,
        "seconds": 2.0,
    }
    per_image = {name: per_image_table(fabricated.predictions[name], seed)
                 for seed, name in enumerate(records)}
    write_shortcuts(fabricated.run_dir, summary, per_image, pairs)
    return summary


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("shortcuts") / "artifacts"
    fabricated = fabricate_run(root, good_models={FLAGGED: 2.5, CLEAN: 1.5, "efficientnet_b0": 3.0},
                               image_side=16)
    summary = write_measures(fabricated)
    # Precomputed maps of the flagged model: its worst images get an overlay.
    predicted = fabricated.predictions[FLAGGED]["pred"].map(CLASS_NAMES.index).to_numpy()
    maps = np.random.default_rng(0).uniform(0, 1, (len(fabricated.test_ids), 4, 4))
    write_maps(fabricated.run_dir, FLAGGED, "gradcam", maps, fabricated.test_ids, predicted)
    return fabricated, summary


@pytest.fixture
def open_app(monkeypatch):
    def open_app(artifacts: Path) -> AppTest:
        monkeypatch.setattr("sys.argv", [str(APP)])
        monkeypatch.setenv(ARTIFACTS_ENV, str(artifacts))
        app = AppTest.from_file(APP, default_timeout=30).run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    return open_app


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
    assert "1 of 2 measured models is flagged" in app.warning[0].value
    accuracy = fabricated.metrics[FLAGGED]["accuracy"]
    verdict = next(text for text in texts(app.markdown) if f"**{FLAGGED}**" in text)
    assert f"**{FLAGGED}**: {accuracy:.1%} accurate, but 60% of its map energy lies outside the head" in verdict
    assert f"Not flagged by any threshold: **{CLEAN}**" in verdict

    table = app.dataframe[0].value
    assert list(table.columns) == sc.VERDICT_COLUMNS
    rows = table.set_index(sc.MODEL)
    assert rows.loc[FLAGGED, sc.FLAGGED] == sc.YES and rows.loc[CLEAN, sc.FLAGGED] == sc.NO
    assert rows.loc[FLAGGED, sc.ACCURACY] == pytest.approx(accuracy)
    assert rows.loc[sc.BASELINE_LABELS["random"], sc.OUTSIDE_HEAD] == pytest.approx(RANDOM["outside_head"])
    captions = " ".join(texts(app.caption))
    assert "OUTSIDE_HEAD_LIMIT" in captions and flags.FLAG_SENTENCES["in_box"] in captions
    assert "efficientnet_b0" in captions  # skipped, with its reason

    # The flagged model is opened first: its probes and curves, worst images, clusters, audit.
    assert app.selectbox(key="shortcuts_model").value == FLAGGED
    charts = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    assert len(charts) == 2
    assert [trace["name"] for trace in charts[0]["data"]] == ["Original", "Head only", "Background only"]
    thumbnails = app.get("image")[0].proto.imgs
    assert len(thumbnails) == 12 and "outside head" in thumbnails[0].caption
    assert any("precomputed Grad-CAM" in text for text in texts(app.caption))
    links = [link for link in app.get("page_link") if link.proto.page.endswith("inspect")]
    assert len(links) == 1
    worst = sc.worst_images(pd.read_csv(shortcuts_dir(fabricated.run_dir) / "models" / f"{FLAGGED}.csv",
                                        dtype={"id": str}), sc.BY_OUTSIDE, 12)
    assert parse_qs(links[0].proto.query_string) == {"image": [worst["id"][0]]}
    assert sum("Clever-Hans candidate" in text for text in texts(app.markdown)) == 1  # the badge
    assert any("well above chance" in text for text in texts(app.markdown))
    assert any("close to chance" in text for text in texts(app.markdown))
    dedup = next(frame.value for frame in app.dataframe if "Accuracy (de-dup)" in frame.value.columns)
    assert dedup.set_index(sc.MODEL).loc[FLAGGED, "Accuracy (de-dup)"] == pytest.approx(0.5)
    labels = [button.proto.label for button in app.get("download_button")]
    assert labels.count("Download CSV") >= 5 and "Download all 2 pairs (CSV)" in labels


def test_page_follows_the_chosen_model_and_ranking(open_app, measured):
    fabricated, _summary = measured
    app = run_page(open_app(fabricated.run_dir.parent), SHORTCUTS_PAGE)
    app.selectbox(key="shortcuts_model").select(CLEAN)
    run_page(app)
    app.radio(key="shortcuts_worst_by").set_value(sc.BY_BACKGROUND)
    app.slider(key="shortcuts_worst_n").set_value(3)
    run_page(app)
    assert not app.error, texts(app.error)
    assert len(app.get("image")[0].proto.imgs) <= 3
    assert any(f"No precomputed Grad-CAM maps of {CLEAN}" in text for text in texts(app.caption))
    app.radio(key="shortcuts_probe_measure").set_value("Called tumor")
    run_page(app)
    assert not app.error


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
    table = app.dataframe[0].value
    assert list(table[sc.MODEL]) == ["small_cnn", "mobilenet_v2"]
    assert set(table[sc.FLAGGED]) == {sc.NO}
    assert any("**?** duplicate pairs" in text for text in texts(app.markdown))
