"""Train every model of a run config on one dataset and write the run folder; or continue an
interrupted run (``resume``), keeping its finished models and its stored split."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bt_core.artifacts import (
    FORMAT_VERSION,
    MANIFEST,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_RUNNING,
    ArtifactError,
    RunWriter,
    load_test_images,
    predictions_frame,
    read_manifest,
    read_split,
    remove_temporary_files,
)
from bt_core.training.config import RunConfig, seed_everything
from bt_core.data.dataset import LoadedDataset, load_dataset
from bt_core.training.environment import backend_name, device_description, library_versions
from bt_core.metrics.classification import classification_summary, metrics_from_predictions
from bt_core.models import create_model, get_spec, list_models, set_batchnorm_momentum
from bt_core.training.progress import ZooProgress
from bt_core.runs.resume import finished_models
from bt_core.training.train import Distribution, predict_proba, setup_distribution, train_model


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


def train_one(
    writer: RunWriter,
    name: str,
    config: RunConfig,
    dataset: LoadedDataset,
    progress: ZooProgress,
    distribution: Distribution,
) -> None:
    """Train, score and save one model; its manifest entry says done only once all files exist."""
    spec = get_spec(name)
    class_names = dataset.class_names
    seed_everything(config.seed)  # per model, so a model's result does not depend on its position
    weights = weights_for(spec, config.weights)
    devices = distribution.devices
    with distribution.scope():  # MirroredStrategy: variables and optimizer made inside
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
            augment=config.augment_mode,
            seed=config.seed,
            progress=progress.epoch,
            workers=config.workers,
            devices=devices,
        )
    test = dataset.arrays["test"]
    started = time.perf_counter()
    proba = predict_proba(model, spec, test, devices=devices)
    inference_seconds = time.perf_counter() - started
    predictions = predictions_frame(test.ids, [class_names[i] for i in test.labels], proba, class_names)
    metrics = metrics_from_predictions(predictions, class_names)
    train = dataset.arrays["train"]
    metrics["train_accuracy"] = classification_summary(
        train.labels, predict_proba(model, spec, train, devices=devices), class_names
    )["accuracy"]
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
        batch_size=result.batch_size,
        augment=config.augment_mode,
        recipe=asdict(spec.recipe),
    )
    progress.finish_model(name, "done", f"test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}")


def _load(config: RunConfig, split=None) -> LoadedDataset:
    return load_dataset(
        config.data,
        image_size=config.img_size,
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        max_per_class=config.max_per_class,
        ops=config.preprocess,
        split=split,
    )


def _load_for_resume(config: RunConfig, run_dir: Path, manifest: dict) -> LoadedDataset:
    """The dataset of a run being resumed, on its stored split; refuses a changed dataset."""
    try:
        split = read_split(run_dir)
    except ArtifactError as exc:
        raise ValueError(f"cannot resume {run_dir}: {exc}") from exc
    try:
        dataset = _load(config, split)
    except ValueError as exc:
        raise ValueError(f"cannot resume {run_dir}: the dataset no longer matches its split: {exc}") from exc
    stored = manifest.get("dataset", {}).get("fingerprint")
    if dataset.fingerprint != stored or len(dataset.split) != len(split):
        raise ValueError(
            f"cannot resume {run_dir}: the dataset in {config.data} changed since the run started "
            f"(fingerprint {str(stored)[:12]}... then, {dataset.fingerprint[:12]}... now); start a new run"
        )
    if dataset.class_names != list(manifest["class_names"]):
        raise ValueError(
            f"cannot resume {run_dir}: classes {dataset.class_names} differ from the run's {manifest['class_names']}"
        )
    return dataset


def _refuse_existing(run_dir: Path) -> None:
    if (run_dir / MANIFEST).exists():
        raise ValueError(f"{run_dir} already holds a run; add --resume to continue it, or choose another --run-id")


def _test_images_readable(run_dir: Path, count: int) -> bool:
    try:
        images, ids = load_test_images(run_dir)
    except ArtifactError:
        return False
    return len(images) == len(ids) == count


def _write_test_boxes(writer: RunWriter, dataset: Any, config: RunConfig, ids: Any) -> None:
    # A head crop moves the image frame, so the dataset's boxes no longer fit the stored images.
    if len(dataset.boxes) and "crop_head" not in config.preprocess:
        writer.write_test_boxes(dataset.boxes, ids)


def run_zoo(config: RunConfig, say: Callable[[str], None] | None = None, resume: Path | None = None) -> Path:
    """Train ``config.models`` on ``config.data``; returns the run folder.

    ``resume``: an interrupted run folder started with ``config``. Its finished models are
    kept as they are; unfinished ones are cleared and trained again on its stored split.
    """
    check_model_names(config.models)
    if resume is None and config.run_id:  # fail before the (possibly long) decoding
        _refuse_existing(Path(config.out) / config.run_id)
    started_wall, started = _now(), time.perf_counter()
    _set_precision(config.precision)
    distribution = setup_distribution(config.data_parallel)
    seed_everything(config.seed)
    stored = None
    if resume is not None:
        resume = Path(resume)
        stored = read_manifest(resume)
        dataset = _load_for_resume(config, resume, stored)
    else:
        dataset = _load(config)
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
    session = {
        "started": started_wall,
        "backend": backend_name(),
        "device": device_description(),
        "distribution": distribution.record(),
        "data_seconds": round(load_seconds, 2),
        "trained": [],
    }
    test = dataset.arrays["test"]
    if stored is None:
        run_id = config.run_id or f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{dataset.name}"
        run_dir = Path(config.out) / run_id
        _refuse_existing(run_dir)
        writer = RunWriter(
            run_dir,
            {
                "run_id": run_id,
                "created": started_wall,
                "config": config.to_dict(),
                "class_names": dataset.class_names,
                "image_size": config.img_size,
                "preprocess": list(config.preprocess),
                "dataset": dataset_record(dataset),
                "backend": session["backend"],
                "device": session["device"],
                "distribution": distribution.record(),
                "versions": library_versions(),
                "timing": {"started": started_wall, "data_seconds": round(load_seconds, 2), "seconds": 0.0},
                "sessions": [session],
                "models": {name: {"status": STATUS_PENDING} for name in config.models},
            },
        )
        writer.write_split(dataset.split)
        writer.write_test_images(test.images, test.ids)
        _write_test_boxes(writer, dataset, config, test.ids)
        to_train = list(config.models)
    else:
        run_dir = resume
        removed = remove_temporary_files(run_dir)
        manifest = {**stored, "format_version": FORMAT_VERSION}
        manifest.setdefault("preprocess", list(config.preprocess))
        manifest.setdefault("timing", {}).setdefault("seconds", 0.0)
        manifest["sessions"] = [*manifest.get("sessions", []), session]
        entries = manifest.get("models", {})
        manifest["models"] = {name: entries.get(name, {"status": STATUS_PENDING}) for name in config.models}
        writer = RunWriter(run_dir, manifest)
        verdicts = finished_models(run_dir, writer.manifest)
        to_train = [name for name in config.models if verdicts.get(name) is not None]
        for name in to_train:
            writer.reset_model(name)
        if not _test_images_readable(run_dir, len(test.ids)):
            writer.write_test_images(test.images, test.ids)
        kept = [name for name in config.models if name not in to_train]
        progress.done.update(kept)
        log(f"resuming {run_dir}: keeping {', '.join(kept) or 'no model'}; training {', '.join(to_train) or 'nothing'}"
            + (f"; removed {len(removed)} temporary file(s)" if removed else ""))
    seconds_before = float(writer.manifest["timing"].get("seconds") or 0.0)
    log(f"run folder: {run_dir}")
    for index, name in enumerate(config.models):
        if name not in to_train:
            progress.skip_model(index, name, "already done")
            continue
        spec = get_spec(name)
        phases = 2 if weights_for(spec, config.weights) is not None else 1
        progress.start_model(index, name, phases)
        writer.set_model_status(name, STATUS_RUNNING, started=_now())
        try:
            train_one(writer, name, config, dataset, progress, distribution)
        except Exception as exc:  # one model failing must not lose the others
            writer.set_model_status(name, STATUS_FAILED, error=f"{type(exc).__name__}: {exc}", finished=_now())
            progress.finish_model(name, "FAILED", f"{type(exc).__name__}: {exc}")
        session["trained"].append(name)
        # Kept current after every model, so a killed run still accounts for its finished work.
        writer.manifest["timing"]["seconds"] = round(seconds_before + time.perf_counter() - started, 2)
        writer.save_manifest()
    session["finished"] = _now()
    writer.manifest["timing"].update(
        finished=session["finished"], seconds=round(seconds_before + time.perf_counter() - started, 2)
    )
    writer.save_manifest()
    log(f"done in {time.perf_counter() - started:.1f}s: {run_dir}")
    return run_dir
