"""benchmarks/seed_grid.py: its labels on known histories, its arguments, and the table it
reads from a run folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from fabricate import fabricate_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def seed_grid():
    # benchmarks/ is a folder of scripts, not a package: load the module from its file.
    spec = importlib.util.spec_from_file_location("seed_grid", ROOT / "benchmarks" / "seed_grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _history(train, val):
    return pd.DataFrame({"epoch": range(1, len(val) + 1), "accuracy": train, "val_accuracy": val})


def test_the_issues_collapse_is_labelled_collapsed(seed_grid):
    # cnn_bn of the issue: validation 0.25 while training reached 0.74.
    history = _history([0.3, 0.5, 0.6, 0.74], [0.25, 0.26, 0.25, 0.25])
    assert seed_grid.label(history, num_classes=4) == "collapsed"


def test_a_run_that_stays_near_chance_did_not_learn(seed_grid):
    # Training accuracy stays low too, so it is not a collapse; 0.34 is within the margin.
    history = _history([0.26, 0.27, 0.3, 0.32], [0.5, 0.30, 0.34, 0.33])
    assert seed_grid.label(history, num_classes=4) == "did not learn"


def test_validation_spikes_on_near_uniform_outputs_are_not_learning(seed_grid):
    # custom_cnn on the demo, seed 0, before its warm-up epoch (rounded): losses stayed at
    # ln 4 and training accuracy at 0.28, yet validation accuracy jumped to 0.48 once.
    history = _history([0.24, 0.24, 0.24, 0.26, 0.26, 0.27, 0.28, 0.28],
                       [0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.48, 0.40])
    assert seed_grid.label(history, num_classes=4) == "did not learn"


def test_a_slow_learner_is_not_a_collapse(seed_grid):
    # MobileNetV2 from scratch on the demo, seed 0 (rounded).
    history = _history([0.26, 0.30, 0.33, 0.36, 0.34, 0.40, 0.43, 0.52],
                       [0.27, 0.33, 0.34, 0.41, 0.41, 0.38, 0.43, 0.52])
    assert seed_grid.label(history, num_classes=4) == "learned"


def test_chance_follows_the_number_of_classes(seed_grid):
    history = _history([0.9, 0.9], [0.5, 0.55])
    assert seed_grid.label(history, num_classes=2) == "collapsed"  # chance 0.5
    assert seed_grid.label(history, num_classes=4) == "learned"  # chance 0.25


def test_arguments(seed_grid):
    assert seed_grid.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert seed_grid.parse_seeds("3,1") == [3, 1]
    assert seed_grid.parse_data("demo") == ("demo", None)
    assert seed_grid.parse_data("br35h=../shared/data/figshare-br35h") == ("br35h", "../shared/data/figshare-br35h")
    assert seed_grid.parse_data("../shared/data/brain-tumor-mri") == ("brain-tumor-mri", "../shared/data/brain-tumor-mri")


def test_the_table_reads_a_run_folder(seed_grid, tmp_path):
    fabricated = fabricate_run(tmp_path, run_id=seed_grid.run_id("demo", 3, "small_cnn"))
    run_dir = tmp_path / "demo-s3-small_cnn"
    row = seed_grid.row_of(run_dir, "demo", 3, "small_cnn")
    history = fabricated.histories["small_cnn"]
    assert row["model"] == "small_cnn" and row["seed"] == 3 and row["label"] == "learned"
    assert row["test_accuracy"] == pytest.approx(fabricated.metrics["small_cnn"]["accuracy"])
    assert row["last_train_accuracy"] == pytest.approx(history["accuracy"].iloc[-1])
    judged = history["val_accuracy"][history["epoch"] >= 3]
    assert row["lowest_val_after_epoch_2"] == pytest.approx(judged.min())
    # The run's failed model, a model it does not have and a missing run give no row.
    assert seed_grid.row_of(run_dir, "demo", 3, fabricated.failed_model) is None
    assert seed_grid.row_of(run_dir, "demo", 3, "vgg16") is None
    assert seed_grid.row_of(tmp_path / "missing", "demo", 3, "small_cnn") is None
    broken = tmp_path / "demo-s4-small_cnn"
    broken.mkdir()
    (broken / "manifest.json").write_text("{", encoding="utf-8")
    assert seed_grid.row_of(broken, "demo", 4, "small_cnn") is None
    text = seed_grid.markdown(pd.DataFrame([row]), [3, 4])
    assert f"| small_cnn | demo | {row['test_accuracy']:.3f} (" in text
    assert text.rstrip().endswith("| not run |")
