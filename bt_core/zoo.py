"""Train every model of a run config on one dataset and write the run folder."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from bt_core.artifacts import (
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_RUNNING,
    RunWriter,
    predictions_frame,
)
from bt_core.config import RunConfig, seed_everything
from bt_core.data.dataset import LoadedDataset, load_dataset
from bt_core.environment import backend_name, device_description, library_versions
from bt_core.metrics import classification_summary, metrics_from_predictions
from bt_core.models import create_model, get_spec, list_models, set_batchnorm_momentum
from bt_core.progress import ZooProgress
from bt_core.train import predict_proba, train_model


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_model_names(names: tuple[str, ...]) -> None:
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(list_models())}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"model(s) named twice: {duplicates}")


def dataset_record(dataset: LoadedDataset) -> dict:
    return {
        "name": dataset.name,
        "root": str(dataset.index.root),
        "layout": dataset.index.layout,
        "fingerprint": dataset.fingerprint,
        "counts": dataset.counts(),
        "has_boxes": bool(len(dataset.boxes)),
        "boxes": int(len(dataset.boxes)),
        "skipped": [{"path": s.path, "reason": s.reason} for s in dataset.skipped],
    }


def _set_precision(policy: str) -> None:
    import keras

    keras.mixed_precision.set_global_policy(policy)


def weights_for(spec, weights: str | None) -> str | None:
    """Pretrained weights apply to backbones; custom CNNs always start from scratch."""
    return weights if spec.family == "backbone" else None


def train_one(writer: RunWriter, name: str, config: RunConfig, dataset: LoadedDataset, progress: ZooProgress) -> None:
    """Train, score and save one model; its manifest entry says done only once all files exist."""
    spec = get_spec(name)
    class_names = dataset.class_names
    seed_everything(config.seed)  # per model, so a model's result does not depend on its position
    weights = weights_for(spec, config.weights)
    model = create_model(name, len(class_names), weights=weights, input_size=config.img_size)
    if weights is None:
        set_batchnorm_momentum(model, spec.recipe.scratch_batchnorm_momentum)
    result = train_model(
        model,
        spec,
        dataset.arrays["train"],
        dataset.arrays["val"],
        epochs=config.epochs,
        num_classes=len(class_names),
        batch_size=config.batch_size,
        weights=weights,
        augment=config.augment,
        seed=config.seed,
        progress=progress.epoch,
    )
    test = dataset.arrays["test"]
    started = time.perf_counter()
    proba = predict_proba(model, spec, test)
    inference_seconds = time.perf_counter() - started
    predictions = predictions_frame(test.ids, [class_names[i] for i in test.labels], proba, class_names)
    metrics = metrics_from_predictions(predictions, class_names)
    train = dataset.arrays["train"]
    metrics["train_accuracy"] = classification_summary(train.labels, predict_proba(model, spec, train), class_names)[
        "accuracy"
    ]
    metrics["train_minus_test_accuracy"] = metrics["train_accuracy"] - metrics["accuracy"]
    writer.save_model(name, model)
    writer.write_history(name, result.history)
    writer.write_predictions(name, predictions)
    writer.write_metrics(name, metrics)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    writer.set_model_status(
        name,
        STATUS_DONE,
        finished=_now(),
        family=spec.family,
        weights=weights,
        input_size=config.img_size,
        preprocessing=spec.preprocessing,
        last_conv_layer=spec.last_conv_layer,
        params_total=int(model.count_params()),
        params_trainable=trainable,
        train_seconds=round(result.seconds, 2),
        inference_seconds=round(inference_seconds, 3),
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        phases=result.phases,
        batch_size=config.batch_size or spec.recipe.batch_size,
    )
    progress.finish_model(name, "done", f"test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}")


def run_zoo(config: RunConfig, say: Callable[[str], None] | None = None) -> Path:
    """Train ``config.models`` on ``config.data``; returns the run folder."""
    check_model_names(config.models)
    started_wall, started = _now(), time.perf_counter()
    _set_precision(config.precision)
    seed_everything(config.seed)
    dataset = load_dataset(
        config.data,
        image_size=config.img_size,
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        max_per_class=config.max_per_class,
    )
    load_seconds = time.perf_counter() - started
    progress = ZooProgress(list(config.models), config.epochs)
    log = say or progress.say
    counts = dataset.counts()
    log(
        f"dataset {dataset.name} ({dataset.index.layout}): "
        + ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())
        + f"; {len(dataset.skipped)} skipped; loaded in {load_seconds:.1f}s"
    )
    for skipped in dataset.skipped[:10]:
        log(f"  skipped {skipped.path}: {skipped.reason}")
    run_id = config.run_id or f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{dataset.name}"
    run_dir = Path(config.out) / run_id
    writer = RunWriter(
        run_dir,
        {
            "run_id": run_id,
            "created": started_wall,
            "config": config.to_dict(),
            "class_names": dataset.class_names,
            "image_size": config.img_size,
            "dataset": dataset_record(dataset),
            "backend": backend_name(),
            "device": device_description(),
            "versions": library_versions(),
            "timing": {"started": started_wall, "data_seconds": round(load_seconds, 2)},
            "models": {name: {"status": STATUS_PENDING} for name in config.models},
        },
    )
    writer.write_split(dataset.split)
    test = dataset.arrays["test"]
    writer.write_test_images(test.images, test.ids)
    log(f"run folder: {run_dir}")
    for index, name in enumerate(config.models):
        spec = get_spec(name)
        phases = 2 if weights_for(spec, config.weights) is not None else 1
        progress.start_model(index, name, phases)
        writer.set_model_status(name, STATUS_RUNNING, started=_now())
        try:
            train_one(writer, name, config, dataset, progress)
        except Exception as exc:  # one model failing must not lose the others
            writer.set_model_status(name, STATUS_FAILED, error=f"{type(exc).__name__}: {exc}", finished=_now())
            progress.finish_model(name, "FAILED", f"{type(exc).__name__}: {exc}")
    writer.manifest["timing"].update(finished=_now(), seconds=round(time.perf_counter() - started, 2))
    writer.save_manifest()
    log(f"done in {time.perf_counter() - started:.1f}s: {run_dir}")
    return run_dir
