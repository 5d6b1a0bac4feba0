"""Fabricated runs for tests: real artifact files written through RunWriter, no training.

A fabricated run has good models (history, predictions, metrics computed with sklearn from
those predictions, so every number is consistent), one model whose training failed, and
one model whose predictions.csv is corrupt. ``fabricate_unreadable_run`` writes a run of
a future artifact format that this code must refuse to open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from bt_core.artifacts import (
    MANIFEST,
    PREDICTIONS,
    STATUS_DONE,
    STATUS_FAILED,
    RunWriter,
    model_dir,
    predictions_frame,
    write_json,
)

CLASS_NAMES = ["glioma", "meningioma", "notumor", "pituitary"]
# Images per class in each split.
SPLIT_SIZES = {"train": 30, "val": 8, "test": 12}
# Model -> how far its true-class logit is pushed up: larger means more accurate.
GOOD_MODELS = {"small_cnn": 0.8, "mobilenet_v2": 1.8, "efficientnet_b0": 3.0}
FAILED_MODEL = "resnet50"
FAILED_ERROR = "ResourceExhaustedError: OOM when allocating tensor with shape [32,2048,7,7]"
CORRUPT_MODEL = "vit_tiny"
# Appended to the first rows of a real predictions.csv: more fields than the header, so
# pandas raises ParserError, as on a file garbled by an interrupted copy.
GARBLED_ROW = "test_9999,glioma,glioma,0.1,0.2,0.3,0.4,0.5,0.6\n"
SKIPPED = [
    {"path": "Training/glioma/broken_001.jpg", "reason": "cannot decode image"},
    {"path": "Testing/notumor/tiny.png", "reason": "image smaller than 32 px"},
]


@dataclass
class FabricatedRun:
    run_dir: Path
    manifest: dict[str, Any]
    counts: dict[str, dict[str, int]]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)
    failed_model: str = FAILED_MODEL
    failed_error: str = FAILED_ERROR
    corrupt_model: str = CORRUPT_MODEL

    @property
    def model_names(self) -> list[str]:
        return list(self.manifest["models"])

    @property
    def good_models(self) -> list[str]:
        return list(self.metrics)


def compute_metrics(predictions: pd.DataFrame, class_names: list[str]) -> dict[str, Any]:
    """The metrics.json of a model, computed with sklearn from its predictions table."""
    labels, preds = predictions["label"], predictions["pred"]
    probs = predictions[[f"p_{name}" for name in class_names]].to_numpy()
    macro = {"labels": class_names, "average": "macro", "zero_division": 0}
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_precision": float(precision_score(labels, preds, **macro)),
        "macro_recall": float(recall_score(labels, preds, **macro)),
        "macro_f1": float(f1_score(labels, preds, **macro)),
        "macro_auc": float(
            roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=class_names)
        ),
        "weighted_f1": float(
            f1_score(labels, preds, labels=class_names, average="weighted", zero_division=0)
        ),
        "log_loss": float(log_loss(labels, probs, labels=class_names)),
        "n_test": int(len(predictions)),
    }


def _split_table() -> pd.DataFrame:
    rows = [
        {"path": f"{split}/{name}/img_{index:03d}.jpg", "split": split, "label": name}
        for split, size in SPLIT_SIZES.items()
        for name in CLASS_NAMES
        for index in range(size)
    ]
    return pd.DataFrame(rows)


def _counts(split: pd.DataFrame) -> dict[str, dict[str, int]]:
    return {
        name: {label: int((group["label"] == label).sum()) for label in CLASS_NAMES}
        for name, group in split.groupby("split")
    }


def _probabilities(rng: np.random.Generator, label_index: np.ndarray, skill: float) -> np.ndarray:
    logits = rng.normal(size=(len(label_index), len(CLASS_NAMES)))
    logits[np.arange(len(label_index)), label_index] += skill
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _history(epochs: int) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    return pd.DataFrame(
        {
            "epoch": epoch,
            "phase": "head",
            "loss": 1.4 / epoch,
            "accuracy": 0.4 + 0.1 * epoch,
            "val_loss": 1.5 / epoch,
            "val_accuracy": 0.35 + 0.1 * epoch,
            "lr": 1e-3,
        }
    )


def fabricate_run(
    artifacts_dir: Path,
    run_id: str = "20240501-120000_demo",
    *,
    created: str = "2024-05-01T12:00:00",
    dataset_name: str = "figshare-demo",
    good_models: dict[str, float] | None = None,
    seed: int = 0,
) -> FabricatedRun:
    """Write a complete run folder under ``artifacts_dir`` and return what went into it."""
    good_models = dict(GOOD_MODELS if good_models is None else good_models)
    rng = np.random.default_rng(seed)
    split = _split_table()
    counts = _counts(split)
    writer = RunWriter(
        Path(artifacts_dir) / run_id,
        {
            "run_id": run_id,
            "created": created,
            "config": {
                "models": [*good_models, FAILED_MODEL, CORRUPT_MODEL],
                "epochs": 3,
                "img_size": 64,
                "batch_size": 16,
                "seed": seed,
                "weights": None,
                "data": "data/figshare",
            },
            "class_names": CLASS_NAMES,
            "dataset": {
                "name": dataset_name,
                "root": "data/figshare",
                "layout": "class_folders",
                "fingerprint": "0123abcd",
                "counts": counts,
                "skipped": SKIPPED,
            },
            "versions": {"python": "3.11.9", "keras": "3.15.1", "tensorflow": "2.21.0"},
            "backend": "tensorflow",
            "device": "CPU",
            "timing": {"started": created, "finished": "2024-05-01T12:03:05", "seconds": 185.0},
        },
    )
    writer.write_split(split)
    fabricated = FabricatedRun(run_dir=writer.run_dir, manifest=writer.manifest, counts=counts)

    test = split[split["split"] == "test"].reset_index(drop=True)
    label_index = test["label"].map(CLASS_NAMES.index).to_numpy()
    ids = [f"test_{index:04d}" for index in range(len(test))]
    writer.write_test_images(rng.integers(0, 256, (len(test), 8, 8, 3), dtype=np.uint8), ids)

    for number, (name, skill) in enumerate({**good_models, CORRUPT_MODEL: 2.0}.items()):
        predictions = predictions_frame(
            ids, list(test["label"]), _probabilities(rng, label_index, skill), CLASS_NAMES
        )
        metrics = compute_metrics(predictions, CLASS_NAMES)
        writer.write_history(name, _history(3))
        writer.write_predictions(name, predictions)
        writer.write_metrics(name, metrics)
        writer.set_model_status(
            name,
            STATUS_DONE,
            params_trainable=10_000 * (number + 1) ** 2,
            params_total=12_000 * (number + 1) ** 2,
            train_seconds=12.5 * (number + 1),
            epochs_run=3,
            input_size=[64, 64, 3],
            preprocessing="rescale_0_1",
            family="cnn",
        )
        if name != CORRUPT_MODEL:
            fabricated.metrics[name] = metrics
            fabricated.predictions[name] = predictions
    corrupt_path = model_dir(writer.run_dir, CORRUPT_MODEL) / PREDICTIONS
    first_rows = corrupt_path.read_text(encoding="utf-8").splitlines(keepends=True)[:6]
    corrupt_path.write_text("".join(first_rows) + GARBLED_ROW, encoding="utf-8")
    writer.set_model_status(
        FAILED_MODEL, STATUS_FAILED, error=FAILED_ERROR, family="resnet", input_size=[224, 224, 3]
    )
    fabricated.manifest = writer.manifest
    return fabricated


def fabricate_unreadable_run(
    artifacts_dir: Path, run_id: str = "20990101-000000_future", format_version: str = "99.0"
) -> Path:
    """A run folder whose manifest has an artifact format newer than this code reads."""
    run_dir = Path(artifacts_dir) / run_id
    write_json(
        run_dir / MANIFEST,
        {
            "format_version": format_version,
            "run_id": run_id,
            "created": "2099-01-01T00:00:00",
            "class_names": CLASS_NAMES,
            "models": {},
        },
    )
    return run_dir
