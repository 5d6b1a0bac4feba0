"""Logging instead of print: the bt_core loggers, --quiet / --verbose, and no TensorFlow start-up lines."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bt_core import cli
from bt_core.cli import logs
from bt_core.training.progress import ZooProgress
from imagefolders import make_pool

ROOT = Path(__file__).resolve().parents[1]
EPOCH_LINE = re.compile(r"^\[1/1\] simple_cnn scratch epoch \d/\d  loss \d\.\d{4}  accuracy \d\.\d{4}  "
                        r"val_loss \d\.\d{4}  val_accuracy \d\.\d{4}  \d+\.\ds( \(\d+\.\d steps/s\))?  "
                        r"model left (about \d:\d\d:\d\d \(estimate\)|unknown)$", re.M)
NOISE = ("oneDNN", "TF_ENABLE_ONEDNN_OPTS", "cuda", "absl::InitializeLog", "cpu_feature_guard")


@pytest.fixture(autouse=True)
def restore_logging():
    """Leave the bt_core logger as a plain command line sets it, whatever a test did."""
    yield
    logs.configure_logging()


@pytest.mark.parametrize("quiet, verbose, level", [(False, False, logging.INFO), (True, False, logging.WARNING),
                                                   (False, True, logging.DEBUG)])
def test_quiet_and_verbose_set_the_level_and_a_second_call_replaces_the_handler(quiet, verbose, level):
    logs.configure_logging()
    logger = logs.configure_logging(quiet=quiet, verbose=verbose)
    assert logger.name == "bt_core" and logger.level == level
    assert sum(isinstance(h, logs._CurrentStderr) for h in logger.handlers) == 1
    with pytest.raises(ValueError, match="--quiet and --verbose exclude each other"):
        logs.log_level(quiet=True, verbose=True)


def test_messages_go_to_the_stderr_of_the_moment_as_plain_lines(capsys):
    logs.configure_logging()
    logging.getLogger("bt_core.runs.zoo").info("run folder: x")
    logging.getLogger("bt_core.runs.zoo").debug("not shown")
    assert capsys.readouterr().err == "run folder: x\n"
    logs.configure_logging(quiet=True)
    logging.getLogger("bt_core.runs.zoo").info("dropped")
    logging.getLogger("bt_core.runs.zoo").warning("kept")
    assert capsys.readouterr().err == "kept\n"


def test_progress_keeps_its_one_line_per_epoch_and_warns_of_a_failed_model(caplog):
    progress = ZooProgress(["simple_cnn", "cnn_bn"], epochs_per_phase=2)
    with caplog.at_level(logging.INFO, logger="bt_core"):
        progress.start_model(0, "simple_cnn", phases=1)
        progress.epoch({"seconds": 1.25, "phase": "scratch", "phase_names": ["scratch"], "phase_epoch": 1,
                        "phase_epochs": 2, "logs": {"loss": 1.0, "accuracy": 0.5, "val_loss": 0.75,
                                                    "val_accuracy": 0.625}})
        progress.finish_model("simple_cnn", "FAILED", "ValueError: x")
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0] == ("bt_core.training.progress", logging.INFO,
                        "[1/2] simple_cnn: training (1 phase(s), up to 2 epochs each)")
    assert lines[1][2] == ("[1/2] simple_cnn scratch epoch 1/2  loss 1.0000  accuracy 0.5000  val_loss 0.7500  "
                           "val_accuracy 0.6250  1.2s  model left about 0:00:01 (estimate)  zoo left about 0:00:01 "
                           "+ 1 model not started (unknown)")
    assert lines[2][1] == logging.WARNING and lines[2][2].startswith("[1/2] simple_cnn: FAILED in 0:00:0")


def test_the_filter_drops_tensorflow_start_up_lines_only(capfd):
    with logs.startup_noise_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on. ... `TF_ENABLE_ONEDNN_OPTS=0`.\n")
        os.write(2, b"E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory\n")
        os.write(2, b"a real error\n")
    os.write(2, b"after oneDNN\n")  # outside: untouched
    assert capfd.readouterr().err == "a real error\nafter oneDNN\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_pool(tmp_path_factory.mktemp("data"), per_class=6, size=32)


def tiny_run(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--models", "simple_cnn", "--epochs", "2", "--img-size", "32", "--out", str(out),
            "--run-id", "r", "--no-explain", *extra]


@pytest.mark.slow
def test_a_run_shows_its_epochs_and_none_of_tensorflows_start_up_lines(data, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_BACKEND")}
    done = subprocess.run([sys.executable, str(ROOT / "train_all.py"), *tiny_run(data, tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(tmp_path / "r")
    assert len(EPOCH_LINE.findall(done.stderr)) == 2, done.stderr
    assert "[1/1] simple_cnn scratch: compiling / first epoch (" in done.stderr
    assert "\r" not in done.stderr  # a pipe, not a terminal: no bar redraws
    assert [line for line in done.stderr.splitlines() if any(n.lower() in line.lower() for n in NOISE)] == []


@pytest.mark.slow
def test_quiet_drops_the_progress_lines_and_keeps_the_run_folder(data, tmp_path, capsys, caplog):
    assert cli.main(tiny_run(data, tmp_path, "--quiet")) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(tmp_path / "r") and printed.err == ""
    assert [r.getMessage() for r in caplog.records if r.name.startswith("bt_core")] == []
    assert cli.main(["--resume", str(tmp_path / "r"), "--no-explain"]) == 0  # not quiet: it says what it kept
    assert "resuming" in capsys.readouterr().err
