"""export-mlflow against a real local MLflow file store, read back with mlflow.search_runs and
MlflowClient: one MLflow run per usable model with the leaderboard's numbers, the history as
steps, the shortcut verdicts as tags, the files as artifacts; no duplicates on a second export."""

import logging
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from bt_core.artifacts import EVALUATIONS_DIR, load_run, load_shortcuts
from bt_core.artifacts.layout import model_card_path, tensorboard_dir
from bt_core.metrics import leaderboard
from bt_core.shortcuts.flags import flag_verdict, severity_verdict
from bt_core.tracking import mlflow_export
from bt_core.tracking.mlflow_export import ALLOW_FILE_STORE, export_run
from bt_core.tracking.mlflow_records import flatten, leaderboard_metrics
from fabricate import (
    CORRUPT_MODEL,
    FAILED_MODEL,
    ZOO_MODELS,
    ZOO_SHORTCUT_CLEAN,
    ZOO_SHORTCUT_FLAGGED,
    ZOO_SHORTCUT_SKIPPED,
    fabricate_run,
    fabricate_zoo_run,
)

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

EXPERIMENT = "figshare-zoo"  # the fabricated zoo run's dataset name: the default experiment
CARD_MODEL = "custom_cnn"
TENSORBOARD_MODEL = "simple_cnn"
EVALUATION = "external"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The zoo run with shortcut measures, an evaluation, a model card and TensorBoard logs of
    one model each, exported once to a fresh file store (without the file-store opt-in set)."""
    root = tmp_path_factory.mktemp("mlflow")
    fabricated = fabricate_zoo_run(root / "artifacts", shortcuts=True)
    run_dir = fabricated.run_dir
    fabricate_run(run_dir / EVALUATIONS_DIR, EVALUATION, dataset_name="external", seed=3,
                  good_models={name: skill for name, (skill, _) in ZOO_MODELS.items()})
    model_card_path(run_dir, CARD_MODEL).write_text("# Model card: custom_cnn\nNot for clinical use.\n", encoding="utf-8")
    events = tensorboard_dir(run_dir, TENSORBOARD_MODEL) / "scratch" / "train"
    events.mkdir(parents=True)
    (events / "events.out.tfevents.1.host.1.0.v2").write_bytes(b"\0" * 16)
    report = root / "report.html"
    report.write_text("<html><body>report</body></html>", encoding="utf-8")
    uri = (root / "mlruns").as_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(ALLOW_FILE_STORE, raising=False)
        ids = export_run(run_dir, tracking_uri=uri, report_html=report)
        assert ALLOW_FILE_STORE not in os.environ  # set for the export's own calls only
    return fabricated, uri, ids


@pytest.fixture
def client(exported, monkeypatch):
    monkeypatch.setenv(ALLOW_FILE_STORE, "true")  # MLflow 3 reads a file store only with it
    _, uri, _ = exported
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def runs_by_model(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {row["tags.bt_zoo.model"]: row for _, row in frame.iterrows()}


def test_one_mlflow_run_per_usable_model_with_the_leaderboards_numbers(exported, client):
    fabricated, _, ids = exported
    frame = mlflow.search_runs(experiment_names=[EXPERIMENT])
    rows = runs_by_model(frame)
    assert sorted(rows) == sorted(ZOO_MODELS) and sorted(frame["run_id"]) == sorted(ids)
    table = leaderboard(load_run(fabricated.run_dir), n_resamples=1000, seed=0).set_index("model")
    for name, row in rows.items():
        assert row["tags.bt_zoo.run_id"] == fabricated.run_dir.name and row["status"] == "FINISHED"
        assert row["metrics.accuracy"] == pytest.approx(fabricated.metrics[name]["accuracy"])  # scikit-learn's
        assert row["metrics.macro_f1"] == pytest.approx(fabricated.metrics[name]["macro_f1"])
        assert row["metrics.accuracy_ci_low"] == pytest.approx(table.loc[name, "accuracy_lower"])
        assert row["metrics.macro_auc_ci_high"] == pytest.approx(table.loc[name, "macro_auc_upper"])
        assert row["metrics.params_trainable"] == table.loc[name, "params_trainable"]
        assert row["params.image_size"] == "64" and row["params.seed"] == "7"
        assert row["params.dataset.fingerprint"] == "0123abcd" and row["params.dataset.name"] == EXPERIMENT
        assert row["params.preprocessing"] == "rescale" and row["params.image_ops"] == "none"
        assert row["tags.bt_zoo.backend"] == "tensorflow"


def test_the_history_is_logged_per_epoch_and_the_evaluation_under_its_name(exported, client):
    fabricated, _, _ = exported
    rows = runs_by_model(mlflow.search_runs(experiment_names=[EXPERIMENT]))
    evaluation = leaderboard(load_run(fabricated.run_dir / EVALUATIONS_DIR / EVALUATION)).set_index("model")
    for name, history in fabricated.histories.items():
        run_id = rows[name]["run_id"]
        for column in ("loss", "val_accuracy"):
            logged = sorted(client.get_metric_history(run_id, f"history/{column}"), key=lambda m: m.step)
            assert [m.step for m in logged] == history["epoch"].tolist()
            assert [m.value for m in logged] == pytest.approx(history[column].tolist())
        assert rows[name][f"metrics.eval/{EVALUATION}/accuracy"] == pytest.approx(evaluation.loc[name, "accuracy"])
        assert rows[name][f"metrics.eval/{EVALUATION}/accuracy_ci_low"] == pytest.approx(
            evaluation.loc[name, "accuracy_lower"])


def test_shortcut_flags_verdicts_and_deduplicated_metrics_come_from_the_stored_summary(exported, client):
    fabricated, _, _ = exported
    summary = load_shortcuts(fabricated.run_dir)
    rows = runs_by_model(mlflow.search_runs(experiment_names=[EXPERIMENT]))
    for name in (ZOO_SHORTCUT_FLAGGED, ZOO_SHORTCUT_CLEAN):
        record, row = summary["models"][name], rows[name]
        verdict = flag_verdict(record)
        assert row["tags.bt_zoo.shortcut_flags"] == (",".join(f["name"] for f in verdict.flags) or "none")
        assert row["tags.bt_zoo.shortcut_flag_verdict"] == verdict.text
        assert row["tags.bt_zoo.shortcut_verdict"] == severity_verdict(record["severity"])
        assert row["metrics.shortcut/score"] == pytest.approx(record["score"])
        assert row["metrics.shortcut/severity_ci_low"] == pytest.approx(record["severity"]["ci_low"])
        dedup = summary["audit"]["duplicates"]["deduplicated_metrics"][name]
        assert row["metrics.dedup/macro_auc"] == pytest.approx(dedup["macro_auc"])
    assert rows[ZOO_SHORTCUT_FLAGGED]["tags.bt_zoo.shortcut_flags"] != "none"
    assert rows[ZOO_SHORTCUT_FLAGGED]["tags.bt_zoo.shortcut_flag_verdict"] == "flagged on all images"
    assert rows[ZOO_SHORTCUT_CLEAN]["tags.bt_zoo.shortcut_flag_verdict"] != "flagged on all images"
    assert rows[ZOO_SHORTCUT_SKIPPED]["tags.bt_zoo.shortcuts"] == "skipped: no gradcam maps"
    assert pd.isna(rows[ZOO_SHORTCUT_SKIPPED]["metrics.shortcut/score"])


def test_the_files_are_logged_as_artifacts(exported, client):
    rows = runs_by_model(mlflow.search_runs(experiment_names=[EXPERIMENT]))

    def files(model, path=None):
        return {item.path for item in client.list_artifacts(rows[model]["run_id"], path)}

    assert {"predictions.csv", "metrics.json", "history.csv", "report"} <= files(ZOO_SHORTCUT_CLEAN)
    assert files(CARD_MODEL, "report") == {"report/report.html"}
    assert "MODEL_CARD.md" in files(CARD_MODEL) and "MODEL_CARD.md" not in files(TENSORBOARD_MODEL)
    assert client.get_run(rows[CARD_MODEL]["run_id"]).data.tags["mlflow.note.content"].startswith("# Model card")
    assert files(TENSORBOARD_MODEL, "tensorboard/scratch/train") == {
        "tensorboard/scratch/train/events.out.tfevents.1.host.1.0.v2"}


def test_exporting_again_replaces_the_runs_and_broken_models_are_named(exported, client, caplog, tmp_path):
    fabricated, _, _ = exported
    uri = (tmp_path / "mlruns").as_uri()  # a store of its own: the other tests see the first export
    first = export_run(fabricated.run_dir, tracking_uri=uri)
    with caplog.at_level(logging.WARNING, logger=mlflow_export.__name__):
        again = export_run(fabricated.run_dir, tracking_uri=uri)
    warned = " ".join(caplog.messages)
    assert f"model {FAILED_MODEL} is not exported: ResourceExhaustedError" in warned
    assert f"model {CORRUPT_MODEL} is not exported: ParserError" in warned
    mlflow.set_tracking_uri(uri)
    active = mlflow.search_runs(experiment_names=[EXPERIMENT])
    assert sorted(active["run_id"]) == sorted(again) and len(again) == len(ZOO_MODELS)
    everything = mlflow.search_runs(experiment_names=[EXPERIMENT], run_view_type=ViewType.ALL)
    assert set(everything["run_id"]) == set(again) | set(first)  # the first export: deleted, not kept active
    store = MlflowClient(tracking_uri=uri)
    for name, row in runs_by_model(active).items():  # the replacement holds each epoch once
        steps = [m.step for m in store.get_metric_history(row["run_id"], "history/loss")]
        assert sorted(steps) == fabricated.histories[name]["epoch"].tolist()


def test_without_mlflow_the_error_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    with pytest.raises(ImportError, match=r"^export-mlflow needs MLflow: pip install 'brain-tumor-zoo\[mlflow\]'$"):
        export_run(tmp_path)


def test_a_report_that_does_not_exist_is_refused_before_anything_is_logged(exported, tmp_path):
    fabricated, uri, _ = exported
    with pytest.raises(FileNotFoundError, match="report.html does not exist"):
        export_run(fabricated.run_dir, tracking_uri=uri, report_html=tmp_path / "report.html")


def test_records_flatten_nested_settings_and_rename_interval_bounds():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": "1,2", "d": None}
    row = {"accuracy": 0.8, "accuracy_lower": 0.7, "accuracy_upper": 0.9, "macro_auc": float("nan"), "n": 40}
    assert leaderboard_metrics(row, list(row), "eval/x/") == {
        "eval/x/accuracy": 0.8, "eval/x/accuracy_ci_low": 0.7, "eval/x/accuracy_ci_high": 0.9, "eval/x/n": 40.0}


def test_the_default_store_is_mlruns_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert mlflow_export.default_tracking_uri() == (Path(tmp_path) / "mlruns").as_uri()
    assert mlflow_export.is_local_folder("file:///x/mlruns") and mlflow_export.is_local_folder("mlruns")
    assert not mlflow_export.is_local_folder("sqlite:///mlflow.db")
    assert not mlflow_export.is_local_folder("http://localhost:5000")
