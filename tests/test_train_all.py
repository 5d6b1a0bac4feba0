"""train_all.py end to end: the documented artifacts, under TensorFlow and under JAX."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import train_all
from bt_core import artifacts as art
from bt_core.metrics import metrics_from_predictions
from bt_core.models import get_spec
from bt_core.preprocess import preprocess_batch
from imagefolders import CLASSES, make_kaggle, make_pool

ROOT = Path(__file__).resolve().parents[1]


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def check_run(run_dir: Path, models: list[str], backend: str) -> art.Run:
    run = art.load_run(run_dir)
    manifest = run.manifest
    assert manifest["format_version"] == art.FORMAT_VERSION
    assert manifest["backend"] == backend
    assert run.class_names == list(CLASSES)
    for key in ("config", "dataset", "versions", "device", "timing", "created"):
        assert manifest[key], key
    assert manifest["dataset"]["fingerprint"] and manifest["timing"]["seconds"] > 0
    assert set(run.split["split"]) == {"train", "val", "test"}
    images, ids = art.load_test_images(run_dir)
    test_ids = run.split.loc[run.split["split"] == "test", "path"].tolist()
    assert ids.tolist() == test_ids
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
    for name in models:
        model = run.models[name]
        assert model.usable, model.error
        assert model.info["status"] == art.STATUS_DONE
        assert model.info["params_trainable"] > 0 and model.info["epochs_run"] >= 1
        assert model.predictions["id"].tolist() == test_ids  # every model scored on the same images
        assert model.metrics["accuracy"] == pytest.approx(
            metrics_from_predictions(model.predictions, run.class_names)["accuracy"]
        )
        assert list(model.history.columns) == art.HISTORY_COLUMNS
        assert len(model.history) == model.info["epochs_run"]
        assert model.model_path.is_file()
    return run


def test_cli_trains_a_kaggle_folder_under_tensorflow(tmp_path):
    data = make_kaggle(tmp_path / "data", train_per_class=24, test_per_class=6, size=40)
    (data / "Training" / "glioma" / "corrupt.jpg").write_bytes(b"garbage")
    out = tmp_path / "artifacts"
    code = train_all.main(
        ["--data", str(data), "--models", "simple_cnn,cnn_bn", "--epochs", "2", "--img-size", "32",
         "--out", str(out), "--seed", "42", "--batch-size", "16"]
    )
    assert code == 0
    run = check_run(only_run(out), ["simple_cnn", "cnn_bn"], "tensorflow")
    assert run.manifest["dataset"]["layout"] == "kaggle"
    assert run.manifest["dataset"]["skipped"] == [
        {"path": "Training/glioma/corrupt.jpg", "reason": "not a decodable image (corrupt or unsupported format)"}
    ]
    assert run.manifest["config"]["models"] == ["simple_cnn", "cnn_bn"]
    assert run.manifest["dataset"]["counts"]["test"] == {c: 6 for c in CLASSES}


def test_cli_rejects_unknown_models_and_bad_folders(tmp_path, capsys):
    data = make_pool(tmp_path / "data", per_class=6, size=32)
    assert train_all.main(["--data", str(data), "--models", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown model(s) ['nope']" in capsys.readouterr().err
    assert train_all.main(["--data", str(tmp_path / "missing"), "--models", "simple_cnn"]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_list_models_needs_no_data(capsys):
    assert train_all.main(["--list-models"]) == 0
    assert "resnet50" in capsys.readouterr().out.split()


@pytest.mark.slow
def test_jax_backend_trains_and_tensorflow_reads_its_model(tmp_path):
    """Training under JAX (as on GPU machines); the dashboard's TensorFlow loads the result."""
    data = make_pool(tmp_path / "data", per_class=30, size=32)
    out = tmp_path / "artifacts"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "train_all.py"), "--data", str(data), "--models", "simple_cnn",
         "--epochs", "6", "--img-size", "32", "--out", str(out), "--batch-size", "16"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = check_run(only_run(out), ["simple_cnn"], "jax")
    assert run.models["simple_cnn"].metrics["accuracy"] >= 0.9
    model = art.load_model(run.directory, "simple_cnn")  # under TensorFlow, in this process
    images, _ = art.load_test_images(run.directory)
    proba = model.predict(preprocess_batch(images, get_spec("simple_cnn").preprocessing), verbose=0)
    stored = run.models["simple_cnn"].predictions[art.probability_columns(run.class_names)].to_numpy()
    np.testing.assert_allclose(proba, stored, atol=1e-4)


def test_model_round_trip_reproduces_stored_predictions_under_tensorflow(tmp_path):
    data = make_pool(tmp_path / "data", per_class=12, size=32)
    out = tmp_path / "artifacts"
    assert train_all.main(["--data", str(data), "--models", "custom_cnn", "--epochs", "1", "--img-size", "32",
                           "--out", str(out), "--run-id", "fixed"]) == 0
    run = check_run(out / "fixed", ["custom_cnn"], "tensorflow")
    model = art.load_model(run.directory, "custom_cnn")
    images, _ = art.load_test_images(run.directory)
    proba = model.predict(preprocess_batch(images, "rescale"), verbose=0)
    stored = run.models["custom_cnn"].predictions[art.probability_columns(run.class_names)].to_numpy()
    np.testing.assert_allclose(proba, stored, atol=1e-5)
    manifest = json.loads((run.directory / art.MANIFEST).read_text())
    assert manifest["models"]["custom_cnn"]["last_conv_layer"] == get_spec("custom_cnn").last_conv_layer


def test_a_failing_model_is_recorded_and_the_others_still_saved(tmp_path, monkeypatch, capsys):
    """Offline ImageNet weights fail one backbone with a message saying how to proceed."""
    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    data = make_pool(tmp_path / "data", per_class=10, size=32)
    out = tmp_path / "artifacts"
    code = train_all.main(["--data", str(data), "--models", "mobilenetv2,simple_cnn", "--epochs", "1",
                           "--img-size", "32", "--out", str(out), "--weights", "imagenet"])
    assert code == 1
    run = art.load_run(only_run(out))
    failed = run.models["mobilenetv2"]
    assert failed.status == art.STATUS_FAILED and "--weights" in failed.error
    assert run.models["simple_cnn"].usable
    assert "mobilenetv2 failed" in capsys.readouterr().err
