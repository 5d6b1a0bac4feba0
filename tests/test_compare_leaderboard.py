"""The leaderboard of a run folder: written through RunWriter, read back with load_run."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from bt_core import artifacts as art
from bt_core.metrics import (
    LEADERBOARD_COLUMNS,
    MODEL_SCORE_KEYS,
    leaderboard,
    model_scores,
    paired_bootstrap,
    run_model_data,
)
from bt_core.metrics import operating_point
from bt_core.metrics.bootstrap import bootstrap_counts
from bt_core.metrics.run_comparison import FIXED_POINT_COLUMNS

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
REQUIRED_COLUMNS = [
    "model", *MODEL_SCORE_KEYS,
    "accuracy_lower", "accuracy_upper", "macro_f1_lower", "macro_f1_upper", "macro_auc_lower", "macro_auc_upper",
    "params_trainable", "train_seconds", "epochs_run", "train_accuracy", "train_minus_test_accuracy",
]


def fake_proba(rng, label_index, skill, n_classes=4):
    logits = rng.normal(size=(len(label_index), n_classes))
    logits[np.arange(len(label_index)), label_index] += skill
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def write_run(run_dir, models, class_names=CLASSES):
    """models: {name: dict(ids, labels, proba, info={}, metrics={})}: a done model each."""
    writer = art.RunWriter(run_dir, {"run_id": run_dir.name, "created": "2026-11-22T10:00:00+00:00",
                                     "class_names": class_names, "dataset": {"name": "tiny"}})
    # The run's test images are the first model's ids (test_images.npz is absent: split.csv's test rows).
    first = next(iter(models.values()), {"ids": ["a.png"], "labels": [class_names[0]]})
    writer.write_split(pd.DataFrame({"path": first["ids"], "split": "test", "label": first["labels"]}))
    for name, spec in models.items():
        frame = art.predictions_frame(spec["ids"], spec["labels"], spec["proba"], class_names)
        writer.write_predictions(name, frame)
        writer.write_metrics(name, spec.get("metrics", {}))
        writer.set_model_status(name, art.STATUS_DONE, **spec.get("info", {}))
    return art.load_run(run_dir)


def test_leaderboard_of_a_fabricated_run(fabricated_run):
    run = art.load_run(fabricated_run.run_dir)
    board = leaderboard(run, n_resamples=300)
    assert list(board["model"]) == fabricated_run.good_models  # manifest order, usable only
    assert set(REQUIRED_COLUMNS) <= set(board.columns)
    assert list(board.columns) == LEADERBOARD_COLUMNS
    board = board.set_index("model")
    for name in fabricated_run.good_models:
        expected = fabricated_run.metrics[name]  # computed with sklearn by the fabricator
        row = board.loc[name]
        for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_auc", "weighted_f1", "log_loss"):
            assert row[key] == pytest.approx(expected[key], rel=1e-9), (name, key)
        assert row["n"] == expected["n_test"]
        for metric in ("accuracy", "macro_f1", "macro_auc"):
            assert row[f"{metric}_lower"] <= row[metric] <= row[f"{metric}_upper"]
        entry = fabricated_run.manifest["models"][name]
        for column in ("params_trainable", "train_seconds", "epochs_run"):
            assert row[column] == entry[column]
        train_accuracy = fabricated_run.metrics[name].get("train_accuracy")
        if train_accuracy is None:
            assert math.isnan(row["train_accuracy"]) and math.isnan(row["train_minus_test_accuracy"])
        else:
            assert row["train_accuracy"] == pytest.approx(train_accuracy)
    # The models are ordered by skill, and so is their accuracy.
    assert board["macro_auc"].is_monotonic_increasing
    excluded = board.attrs["excluded"]
    assert excluded[fabricated_run.failed_model] == fabricated_run.failed_error
    assert "ParserError" in excluded[fabricated_run.corrupt_model]


def test_intervals_are_the_paired_bootstrap_of_the_run(fabricated_run):
    run = art.load_run(fabricated_run.run_dir)
    board = leaderboard(run, n_resamples=200, seed=3).set_index("model")
    data, _ = run_model_data(run)
    y_true = next(iter(data.values())).y_true
    intervals = paired_bootstrap(y_true, {n: d.proba for n, d in data.items()}, n_resamples=200, seed=3)
    for row in intervals.itertuples():
        assert board.loc[row.model, f"{row.metric}_lower"] == row.lower
        assert board.loc[row.model, f"{row.metric}_upper"] == row.upper
        assert board.loc[row.model, row.metric] == pytest.approx(row.estimate, abs=1e-12)
    assert leaderboard(run, n_resamples=200, seed=3).equals(leaderboard(run, n_resamples=200, seed=3))


def test_model_data_aligns_reordered_ids_and_excludes_other_test_sets(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"img_{i:03d}" for i in range(40)]
    label_index = np.arange(40) % 4
    labels = [CLASSES[i] for i in label_index]
    reference = fake_proba(rng, label_index, 2.0)
    shuffled = rng.permutation(40)
    other_labels = list(labels)
    other_labels[0] = CLASSES[1]
    run = write_run(tmp_path / "run", {
        "first": {"ids": ids, "labels": labels, "proba": reference,
                  "info": {"params_trainable": 1000, "train_seconds": 3.5, "epochs_run": 4},
                  "metrics": {"train_accuracy": 0.99, "train_minus_test_accuracy": 0.2}},
        "shuffled": {"ids": [ids[i] for i in shuffled], "labels": [labels[i] for i in shuffled],
                     "proba": reference[shuffled], "metrics": {"train_accuracy": 0.9}},
        "other_images": {"ids": [f"x_{i}" for i in range(40)], "labels": labels, "proba": reference},
        "fewer_images": {"ids": ids[:30], "labels": labels[:30], "proba": reference[:30]},
        "other_labels": {"ids": ids, "labels": other_labels, "proba": reference},
    })
    data, excluded = run_model_data(run)
    assert list(data) == ["first", "shuffled"]
    assert set(excluded) == {"other_images", "fewer_images", "other_labels"}
    assert "has 40 rows whose id is not a test image of the run" in excluded["other_images"]
    assert "covers 30 of 40 test images; missing e.g. 'img_030'" in excluded["fewer_images"]
    assert "labels 1 test image unlike split.csv, e.g. 'img_000': 'meningioma', split.csv 'glioma'" in excluded["other_labels"]
    first, aligned = data["first"], data["shuffled"]
    np.testing.assert_array_equal(first.y_true, label_index)
    np.testing.assert_array_equal(aligned.ids, ids)
    np.testing.assert_allclose(aligned.proba, first.proba)
    np.testing.assert_array_equal(first.correct, reference.argmax(axis=1) == label_index)

    board = leaderboard(run, n_resamples=100).set_index("model")
    assert list(board.index) == ["first", "shuffled"]
    assert board.loc["first", "params_trainable"] == 1000 and board.loc["first", "epochs_run"] == 4
    assert board.loc["first", "train_minus_test_accuracy"] == 0.2  # metrics.json's own value
    assert math.isnan(board.loc["shuffled", "params_trainable"])  # not in its manifest entry
    # metrics.json without the gap: train accuracy minus the test accuracy scored here.
    assert board.loc["shuffled", "train_minus_test_accuracy"] == pytest.approx(0.9 - board.loc["shuffled", "accuracy"])
    compared = board.drop(columns=["params_trainable", "params_total", "train_seconds", "inference_seconds",
                                   "epochs_run", "train_accuracy", "train_minus_test_accuracy"])
    pd.testing.assert_series_equal(compared.loc["first"], compared.loc["shuffled"], check_names=False)
    assert board.loc["first", "accuracy"] == pytest.approx(skm.accuracy_score(label_index, reference.argmax(axis=1)))


def test_a_run_without_notumor_has_no_tumor_scores(tmp_path):
    names = ["cat", "dog", "fox"]
    rng = np.random.default_rng(1)
    label_index = np.arange(30) % 3
    run = write_run(tmp_path / "run", {
        "m": {"ids": [str(i) for i in range(30)], "labels": [names[i] for i in label_index],
              "proba": fake_proba(rng, label_index, 1.5, n_classes=3)},
    }, class_names=names)
    board = leaderboard(run, n_resamples=50)
    assert board[["tumor_sensitivity", "tumor_specificity", "tumor_auc"]].isna().all().all()
    assert board[FIXED_POINT_COLUMNS].isna().all().all()
    assert board["tumor_auc"].dtype == float
    expected = model_scores(label_index, fake_proba(np.random.default_rng(1), label_index, 1.5, 3), names)
    assert board.loc[0, "macro_auc"] == pytest.approx(expected["macro_auc"])


def test_a_run_without_usable_models_gives_an_empty_board(tmp_path):
    run_dir = tmp_path / "run"
    writer = art.RunWriter(run_dir, {"run_id": "run", "class_names": CLASSES})
    writer.write_split(pd.DataFrame({"path": ["a.png"], "split": ["test"], "label": ["glioma"]}))
    writer.set_model_status("broken", art.STATUS_FAILED, error="MemoryError: out of memory")
    board = leaderboard(art.load_run(run_dir))
    assert board.empty and list(board.columns) == LEADERBOARD_COLUMNS
    assert board.attrs["excluded"] == {"broken": "MemoryError: out of memory"}


def test_ten_models_of_1300_images(tmp_path):
    rng = np.random.default_rng(2)
    label_index = np.arange(1300) % 4
    labels = [CLASSES[i] for i in label_index]
    ids = [f"img_{i:04d}" for i in range(1300)]
    run = write_run(tmp_path / "run", {
        f"model_{k}": {"ids": ids, "labels": labels, "proba": fake_proba(rng, label_index, 0.5 + 0.3 * k),
                       "info": {"params_trainable": 10 * k, "train_seconds": 1.0, "epochs_run": 5}}
        for k in range(10)
    })
    board = leaderboard(run, n_resamples=1000)
    assert len(board) == 10 and (board["n"] == 1300).all()  # speed: benchmarks/bench_compare.py


def tumor_run(tmp_path, label_index, models):
    labels = [CLASSES[i] for i in label_index]
    ids = [f"img_{i:03d}" for i in range(len(labels))]
    return write_run(tmp_path / "run", {name: {"ids": ids, "labels": labels, "proba": proba}
                                        for name, proba in models.items()})


def test_sensitivity_at_95_specificity_and_the_reverse_with_intervals_on_the_same_resamples(tmp_path):
    rng = np.random.default_rng(5)
    label_index = np.arange(120) % 4
    models = {"weak": fake_proba(rng, label_index, 0.8), "strong": fake_proba(rng, label_index, 2.5)}
    board = leaderboard(tumor_run(tmp_path, label_index, models), n_resamples=200, seed=3).set_index("model")
    counts = bootstrap_counts(120, 200, 3)  # the resamples of the accuracy, F1 and AUC intervals
    is_tumor = label_index != CLASSES.index("notumor")
    for name, proba in models.items():
        p_tumor = 1.0 - proba[:, CLASSES.index("notumor")]
        fpr, tpr, _ = skm.roc_curve(is_tumor, p_tumor)
        row = board.loc[name]
        assert row["sensitivity_at_95_specificity"] == pytest.approx(tpr[1 - fpr >= 0.95].max())
        assert row["specificity_at_95_sensitivity"] == pytest.approx((1 - fpr[tpr >= 0.95]).max())
        resampled = operating_point.fixed_point_metrics(is_tumor, p_tumor, counts)
        for metric in operating_point.FIXED_POINT_METRICS:
            assert row[f"{metric}_lower"] <= row[metric] <= row[f"{metric}_upper"], (name, metric)
            assert [row[f"{metric}_lower"], row[f"{metric}_upper"]] == pytest.approx(
                np.quantile(resampled[metric], [0.025, 0.975]))
    assert board.loc["strong", "sensitivity_at_95_specificity"] > board.loc["weak", "sensitivity_at_95_specificity"]


def test_fixed_point_scores_are_not_measurable_on_tumor_images_alone(tmp_path):
    label_index = np.zeros(20, dtype=int)  # glioma only
    board = leaderboard(tumor_run(tmp_path, label_index, {"m": fake_proba(np.random.default_rng(0), label_index, 2)}))
    assert board[FIXED_POINT_COLUMNS].isna().all().all()
    assert not math.isnan(board.loc[0, "accuracy_lower"])  # the Wilson interval is still there
