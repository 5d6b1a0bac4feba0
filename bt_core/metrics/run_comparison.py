"""From a loaded run to comparable arrays and one leaderboard table of every usable model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bt_core.artifacts import Run, probability_columns
from bt_core.data.classes import negative_class_index
from bt_core.metrics import one_class, operating_point
from bt_core.metrics.bootstrap import BOOTSTRAP_METRICS, bootstrap_counts, paired_bootstrap, percentile_interval
from bt_core.metrics.scores import MODEL_SCORE_KEYS, model_scores

INTERVAL_COLUMNS = [f"{metric}_{bound}" for metric in BOOTSTRAP_METRICS for bound in ("lower", "upper")]
# Sensitivity at 95% specificity and the reverse (tumor vs no tumor), each with its interval.
FIXED_POINT_COLUMNS = [
    name for metric in operating_point.FIXED_POINT_METRICS for name in (metric, f"{metric}_lower", f"{metric}_upper")
]
# (column, where it comes from): the manifest's model entry or the model's metrics.json.
TRAINING_COLUMNS = [
    ("params_trainable", "manifest"),
    ("params_total", "manifest"),
    ("train_seconds", "manifest"),
    ("inference_seconds", "manifest"),
    ("epochs_run", "manifest"),
    ("train_accuracy", "metrics"),
    ("train_minus_test_accuracy", "metrics"),
]
LEADERBOARD_COLUMNS = [
    "model", *MODEL_SCORE_KEYS, *INTERVAL_COLUMNS, *FIXED_POINT_COLUMNS, *(name for name, _ in TRAINING_COLUMNS)
]


@dataclass
class ModelData:
    """One model's test predictions as arrays, rows in the same image order for every model."""

    name: str
    y_true: np.ndarray  # int class indices, manifest class order
    proba: np.ndarray  # (N, C) float64
    correct: np.ndarray  # bool: argmax class == true class
    ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))  # test image ids


def _model_arrays(name: str, predictions: pd.DataFrame, class_names: list[str]) -> ModelData:
    # validate_predictions (in load_run) already refused labels outside class_names.
    y_true = pd.Index(class_names).get_indexer(predictions["label"].to_numpy()).astype(np.int64)
    proba = predictions[probability_columns(class_names)].to_numpy(dtype=np.float64)
    ids = np.asarray(predictions["id"].to_numpy(), dtype=str)
    return ModelData(name=name, y_true=y_true, proba=proba, correct=proba.argmax(axis=1) == y_true, ids=ids)


def _align(model: ModelData, reference: ModelData) -> ModelData | str:
    """``model`` reordered to the reference's test ids, or why it cannot be compared with it."""
    if np.array_equal(model.ids, reference.ids):
        aligned = model
    else:
        missing = np.setdiff1d(reference.ids, model.ids)
        extra = np.setdiff1d(model.ids, reference.ids)
        if len(missing) or len(extra) or len(model.ids) != len(reference.ids):
            return (
                f"test images differ from {reference.name}'s: {len(missing)} of its ids missing, "
                f"{len(extra)} other ids"
            )
        position = {image_id: i for i, image_id in enumerate(model.ids)}
        order = np.array([position[image_id] for image_id in reference.ids])
        aligned = ModelData(
            name=model.name,
            y_true=model.y_true[order],
            proba=model.proba[order],
            correct=model.correct[order],
            ids=model.ids[order],
        )
    disagreeing = int((aligned.y_true != reference.y_true).sum())
    if disagreeing:
        return f"labels of {disagreeing} test images differ from {reference.name}'s"
    return aligned


def run_model_data(run: Run) -> tuple[dict[str, ModelData], dict[str, str]]:
    """The usable models' predictions as arrays on one shared test set, plus ``excluded``.

    The first usable model (manifest order) fixes the test ids; a model with the same ids in
    another order is reordered, one with other ids or other labels is excluded. ``excluded``
    maps each model left out to why, unusable ones (failed, unreadable) included.
    """
    class_names = run.class_names
    data: dict[str, ModelData] = {}
    excluded: dict[str, str] = {}
    reference: ModelData | None = None
    for name, artifacts in run.models.items():
        if not artifacts.usable:
            excluded[name] = artifacts.error or "no predictions"
            continue
        model = _model_arrays(name, artifacts.predictions, class_names)
        if len(model.ids) == 0:
            excluded[name] = "predictions.csv has no rows"
            continue
        if len(np.unique(model.ids)) != len(model.ids):
            excluded[name] = "predictions.csv repeats test ids"
            continue
        if reference is None:
            reference = model
            data[name] = model
            continue
        aligned = _align(model, reference)
        if isinstance(aligned, str):
            excluded[name] = aligned
        else:
            data[name] = aligned
    return data, excluded


def _number(value: Any) -> float:
    """A JSON value as float; NaN when missing, null or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _training_facts(run: Run, name: str, test_accuracy: float | None) -> dict[str, float]:
    artifacts, entry = run.models[name], run.entry(name)
    facts = {
        column: _number(getattr(entry, column) if source == "manifest" else artifacts.metrics.get(column))
        for column, source in TRAINING_COLUMNS
    }
    if math.isnan(facts["train_minus_test_accuracy"]) and not math.isnan(facts["train_accuracy"]):
        # Older metrics.json may have the train accuracy without the gap.
        facts["train_minus_test_accuracy"] = facts["train_accuracy"] - (test_accuracy or math.nan)
    return facts


def _fixed_point_scores(
    data: dict[str, ModelData], class_names: list[str], counts: np.ndarray | None
) -> dict[str, dict[str, float]]:
    """Per model, sensitivity at 95% specificity and the reverse with the percentile interval
    over ``counts`` (the leaderboard's resamples); NaN without a no-tumor class, without
    ``counts`` (one class: not measurable) or when the images lack tumors or healthy scans."""
    scores = {name: dict.fromkeys(FIXED_POINT_COLUMNS, math.nan) for name in data}
    if counts is None or negative_class_index(class_names) is None:
        return scores
    binary = {name: operating_point.tumor_scores(model.y_true, model.proba, class_names)
              for name, model in data.items()}
    binary = {name: pair for name, pair in binary.items() if pair[0].any() and not pair[0].all()}
    if not binary:
        return scores
    n_images = counts.shape[1]
    full = operating_point.fixed_point_metrics_by_model(binary, np.ones((1, n_images), dtype=np.int64))
    resampled = operating_point.fixed_point_metrics_by_model(binary, counts)
    for name in binary:
        for metric in operating_point.FIXED_POINT_METRICS:
            lower, upper, _valid = percentile_interval(resampled[name][metric])
            scores[name].update({metric: float(full[name][metric][0]), f"{metric}_lower": lower,
                                 f"{metric}_upper": upper})
    return scores


def _bootstrap_bounds(
    y_true: np.ndarray, data: dict[str, ModelData], counts: np.ndarray
) -> dict[str, dict[str, float]]:
    intervals = paired_bootstrap(y_true, {name: model.proba for name, model in data.items()}, counts=counts)
    bounds: dict[str, dict[str, float]] = {name: {} for name in data}
    for row in intervals.itertuples(index=False):
        bounds[row.model][f"{row.metric}_lower"] = row.lower
        bounds[row.model][f"{row.metric}_upper"] = row.upper
    return bounds


def _one_class_bounds(data: dict[str, ModelData]) -> dict[str, dict[str, float]]:
    """Test images of one class: accuracy is a proportion (the share called that class), so
    its interval is Wilson's; a percentile bootstrap of 6 of 6 right would be 100-100 %."""
    bounds: dict[str, dict[str, float]] = {}
    for name, model in data.items():
        low, high = one_class.wilson_interval(int(model.correct.sum()), len(model.correct))
        bounds[name] = {"accuracy_lower": low, "accuracy_upper": high}
        for metric in one_class.BOOTSTRAP_NEEDING_TWO_CLASSES:
            bounds[name][f"{metric}_lower"] = bounds[name][f"{metric}_upper"] = math.nan
    return bounds


# The leaderboard's bootstrap, one setting for every reader of it (dashboard, report, cards, MLflow),
# so their intervals agree.
LEADERBOARD_RESAMPLES, LEADERBOARD_SEED = 1000, 0


def leaderboard(run: Run, n_resamples: int = LEADERBOARD_RESAMPLES, seed: int = LEADERBOARD_SEED) -> pd.DataFrame:
    """One row per usable model (manifest order): model, every model_scores key, paired
    bootstrap intervals (<metric>_lower / _upper for accuracy, macro_f1, macro_auc),
    sensitivity at 95% specificity and specificity at 95% sensitivity (tumor vs no tumor,
    bt_core.metrics.operating_point) with their intervals on the same resamples, and the
    training facts (params_trainable, params_total, train_seconds, inference_seconds,
    epochs_run, train_accuracy, train_minus_test_accuracy; NaN when missing).

    Undefined scores are NaN. ``frame.attrs["excluded"]`` maps models left out to why.
    Test images of one class: the accuracy interval is the 95% Wilson interval and the
    macro F1 / AUC ones are NaN (bt_core.metrics.one_class), and so are the fixed-point scores.
    """
    data, excluded = run_model_data(run)
    if not data:
        empty = pd.DataFrame({column: pd.Series(dtype=object if column == "model" else float) for column in LEADERBOARD_COLUMNS})
        empty.attrs["excluded"] = excluded
        return empty
    class_names = run.class_names
    y_true = next(iter(data.values())).y_true
    counts = None
    if one_class.present_class(y_true) is None:
        counts = bootstrap_counts(len(y_true), n_resamples, seed)
        bounds = _bootstrap_bounds(y_true, data, counts)
    else:
        bounds = _one_class_bounds(data)
    fixed_point = _fixed_point_scores(data, class_names, counts)
    rows = []
    for name, model in data.items():
        scores = model_scores(model.y_true, model.proba, class_names)
        rows.append({"model": name, **scores, **bounds[name], **fixed_point[name],
                     **_training_facts(run, name, scores["accuracy"])})
    frame = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    numeric = LEADERBOARD_COLUMNS[1:]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    frame["n"] = frame["n"].astype(np.int64)
    frame.attrs["excluded"] = excluded
    return frame
