"""--resume: a run killed mid-training continues where it stopped, on the same split and data."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bt_core import cli
from bt_core import artifacts as art
from imagefolders import make_pool

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["simple_cnn", "cnn_bn", "custom_cnn"]


def model_mtimes(run_dir: Path, name: str) -> dict[str, int]:
    return {f: (art.model_dir(run_dir, name) / f).stat().st_mtime_ns for f in art.MODEL_FILES}


def temporary_files(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if p.is_file() and art.is_temporary_file(p)]


def wait_for_status(manifest_path: Path, model: str, status: str, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be interrupted"
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):  # not written yet
            manifest = {}
        if manifest.get("models", {}).get(model, {}).get("status") == status:
            return manifest
        time.sleep(0.02)
    raise AssertionError(f"{model} never became {status}")


@pytest.mark.slow
def test_a_killed_run_resumes_keeping_its_finished_model(tmp_path, capsys):
    data = make_pool(tmp_path / "data", per_class=24, size=32)
    out = tmp_path / "artifacts"
    command = ["--data", str(data), "--models", ",".join(MODELS), "--epochs", "2", "--img-size", "32",
               "--out", str(out), "--run-id", "killed", "--batch-size", "16"]
    run_dir = out / "killed"
    process = subprocess.Popen([sys.executable, str(ROOT / "train_all.py"), *command], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        interrupted = wait_for_status(run_dir / art.MANIFEST, MODELS[1], art.STATUS_RUNNING, process, timeout=240)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert interrupted["models"][MODELS[0]]["status"] == art.STATUS_DONE
    manifest = art.read_manifest(run_dir)  # still valid JSON after the kill
    assert manifest["models"][MODELS[1]]["status"] == art.STATUS_RUNNING
    first_entry = manifest["models"][MODELS[0]]
    first_files = model_mtimes(run_dir, MODELS[0])
    split_before = (run_dir / art.SPLIT).read_bytes()
    # What a kill during a write leaves behind (the rename never happened):
    (run_dir / ".manifest.json.k1ll3d.tmp").write_text("{")
    art.model_dir(run_dir, MODELS[1]).mkdir(parents=True, exist_ok=True)
    (art.model_dir(run_dir, MODELS[1]) / ".model.keras.tmp.keras").write_bytes(b"partial")
    (art.model_dir(run_dir, MODELS[1]) / "history.csv").write_text("epoch\n")  # a half-trained model's file

    code = cli.main([*command, "--resume"])  # the same command, continued
    assert code == 0, capsys.readouterr().err
    assert "keeping simple_cnn; training cnn_bn, custom_cnn" in capsys.readouterr().err

    manifest = json.loads((run_dir / art.MANIFEST).read_text())
    assert manifest["format_version"] == art.FORMAT_VERSION
    assert manifest["models"][MODELS[0]] == first_entry
    assert model_mtimes(run_dir, MODELS[0]) == first_files  # not rewritten
    assert (run_dir / art.SPLIT).read_bytes() == split_before
    run = art.load_run(run_dir)
    for name in MODELS:
        assert run.models[name].usable, run.models[name].error
        assert art.model_files_problem(run_dir, name, run.class_names) is None
    assert [s["trained"] for s in manifest["sessions"]] == [[MODELS[0]], MODELS[1:]]
    assert manifest["timing"]["seconds"] > 0 and manifest["timing"]["finished"]
    assert temporary_files(run_dir) == []
    images, ids = art.load_test_images(run_dir)
    assert ids.tolist() == run.split.loc[run.split["split"] == "test", "path"].tolist()


@pytest.fixture
def finished_run(tmp_path):
    data = make_pool(tmp_path / "data", per_class=12, size=32)
    out = tmp_path / "artifacts"
    command = ["--data", str(data), "--models", "simple_cnn", "--epochs", "1", "--img-size", "32",
               "--out", str(out), "--batch-size", "16"]
    assert cli.main(command) == 0
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return data, out, command, run_dir


def test_resuming_a_finished_run_trains_nothing_and_a_broken_model_again(finished_run, capsys):
    data, out, command, run_dir = finished_run
    before = model_mtimes(run_dir, "simple_cnn")
    assert cli.main(["--resume", str(run_dir)]) == 0  # the folder alone: its stored settings
    assert "training nothing" in capsys.readouterr().err
    assert model_mtimes(run_dir, "simple_cnn") == before
    assert len(art.read_manifest(run_dir)["sessions"]) == 2

    (art.model_dir(run_dir, "simple_cnn") / art.METRICS).unlink()  # done, but a file is missing
    assert cli.main([*command, "--resume"]) == 0  # found by its settings (no --run-id)
    assert "training simple_cnn" in capsys.readouterr().err
    assert art.load_run(run_dir).models["simple_cnn"].usable
    assert model_mtimes(run_dir, "simple_cnn")[art.MODEL_FILE] != before[art.MODEL_FILE]


def test_resume_refuses_other_settings_a_missing_run_and_a_changed_dataset(finished_run, capsys):
    data, out, command, run_dir = finished_run
    assert cli.main([*command, "--run-id", run_dir.name, "--epochs", "2", "--resume"]) == 2
    assert "started with other settings (epochs: run has 1, command has 2)" in capsys.readouterr().err
    assert cli.main([*command, "--seed", "7", "--resume"]) == 2
    assert "no run in" in capsys.readouterr().err
    assert cli.main([*command, "--run-id", "nope", "--resume"]) == 2
    assert "there is no run 'nope'" in capsys.readouterr().err
    assert cli.main([*command, "--run-id", run_dir.name]) == 2  # no silent overwrite
    assert "add --resume" in capsys.readouterr().err

    split = art.read_split(run_dir)
    changed = data / split["path"].iloc[0]
    cv2.imwrite(str(changed), np.full((32, 32), 255, np.uint8))
    before = (run_dir / art.MANIFEST).read_bytes()
    assert cli.main(["--resume", str(run_dir)]) == 2
    assert "changed since the run started" in capsys.readouterr().err
    assert (run_dir / art.MANIFEST).read_bytes() == before  # refused before touching anything
    changed.unlink()
    assert cli.main(["--resume", str(run_dir)]) == 2
    assert "no longer" in capsys.readouterr().err


def test_resume_picks_the_newest_run_with_the_same_settings(finished_run, capsys):
    import shutil

    data, out, command, run_dir = finished_run
    other = out / "other-seed"
    shutil.copytree(run_dir, other)
    manifest = art.read_manifest(other)
    manifest["config"]["seed"] = 99
    manifest["created"] = "2999-01-01T00:00:00+00:00"  # newest, but other settings
    art.write_json(other / art.MANIFEST, manifest)
    assert cli.main([*command, "--resume"]) == 0
    assert str(run_dir) in capsys.readouterr().out
    assert len(art.read_manifest(run_dir)["sessions"]) == 2
    assert len(art.read_manifest(other)["sessions"]) == 1
