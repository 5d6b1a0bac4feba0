"""Train every model of a run config on one dataset and write the run folder; or continue an
interrupted run (``resume``), keeping its finished models and its stored split, and continuing
the model it was training from that model's last finished epoch (bt_core.training.backup)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bt_core.artifacts import (
    FORMAT_VERSION,
    SPLIT,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_RUNNING,
    ArtifactError,
    DatasetRecord,
    Manifest,
    ModelEntry,
    RunWriter,
    load_manifest,
    load_test_images,
    manifest_path,
    predictions_frame,
    read_split,
    remove_temporary_files,
)
from bt_core.artifacts.files import is_disk_full
from bt_core.artifacts.layout import tensorboard_dir
from bt_core.artifacts.schema import check_writable_format
from bt_core.training.backup import Recovery
from bt_core.training.config import RunConfig, seed_everything
from bt_core.data.dataset import LoadedDataset, load_dataset
from bt_core.training.environment import backend_name, device_description, library_versions
from bt_core.metrics import classification_summary, metrics_from_predictions
from bt_core.models import create_model, get_spec, list_models, set_batchnorm_momentum
from bt_core.training.progress import ZooProgress
from bt_core.runs.data_profile import write_run_data_profile
from bt_core.runs.merge import check_run_id
from bt_core.runs.model_card import refresh_model_cards
from bt_core.runs.resume import finished_models
from bt_core.training.train import Distribution, LossBecameNaN, predict_proba, setup_distribution, train_model

RunFolderHook = Callable[[Path], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_model_names(names: tuple[str, ...]) -> None:
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(list_models())}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"model(s) named twice: {duplicates}")


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
    """Train, score and save one model; its manifest entry says done only once all files exist.
    Its history is written after every epoch and its training backed up in its folder, so an
    interrupted model continues where it stopped; the backup goes once the model is done."""
    spec = get_spec(name)
    recovery = Recovery(writer.backup_dir(name), writer.history_so_far(name),
                        lambda history: writer.write_history(name, history), say=progress.say)
    seed_everything(config.seed)  # per model, so a model's result does not depend on its position
    weights = weights_for(spec, config.weights)
    with distribution.scope():  # MirroredStrategy: variables and optimizer made inside
        model = create_model(name, len(dataset.class_names), weights=weights, input_size=config.img_size)
        if weights is None:
            set_batchnorm_momentum(model, spec.recipe.scratch_batchnorm_momentum)
        result = train_model(
            model,
            spec,
            dataset.arrays["train"],
            dataset.arrays["val"],
            epochs=config.epochs,
            num_classes=len(dataset.class_names),
            batch_size=config.batch_size,
            weights=weights,
            augment=config.augment_mode,
            seed=config.seed,
            progress=progress,  # called per epoch; its batch_callback draws the bar
            workers=config.workers,
            devices=distribution.devices,
            tensorboard_dir=tensorboard_dir(writer.run_dir, name) if config.tensorboard else None,
            recovery=recovery,
        )
    predictions, metrics, inference_seconds = score_model(model, spec, dataset, distribution.devices)
    writer.save_model(name, model)
    writer.write_history(name, result.history)
    writer.write_predictions(name, predictions)
    writer.write_metrics(name, metrics)
    writer.set_model_status(
        name,
        STATUS_DONE,
        finished=_now(),
        weights=weights,
        **ModelEntry.spec_fields(replace(spec, input_size=config.img_size)),  # the spec as trained
        params_total=int(model.count_params()),
        params_trainable=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        train_seconds=round(result.seconds, 2),
        inference_seconds=round(inference_seconds, 3),
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        phases=result.phases,
        batch_size=result.batch_size,
        augment=config.augment_mode,
    )
    writer.remove_backup(name)
    refresh_model_cards(writer.run_dir, [name], say=progress.say)
    progress.finish_model(name, "done", f"test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}")


def score_model(model: Any, spec: Any, dataset: LoadedDataset, devices: int = 1) -> tuple[Any, dict[str, Any], float]:
    """The trained model's test predictions, its metrics (with the train accuracy and the
    train-minus-test gap) and the seconds the test predictions took."""
    class_names, test, train = dataset.class_names, dataset.arrays["test"], dataset.arrays["train"]
    started = time.perf_counter()
    proba = predict_proba(model, spec, test, devices=devices)
    inference_seconds = time.perf_counter() - started
    predictions = predictions_frame(test.ids, [class_names[i] for i in test.labels], proba, class_names)
    metrics = metrics_from_predictions(predictions, class_names)
    metrics["train_accuracy"] = classification_summary(
        train.labels, predict_proba(model, spec, train, devices=devices), class_names
    )["accuracy"]
    metrics["train_minus_test_accuracy"] = metrics["train_accuracy"] - metrics["accuracy"]
    return predictions, metrics, inference_seconds


def _load(config: RunConfig, split=None) -> LoadedDataset:
    return load_dataset(
        config.data,
        image_size=config.img_size,
        seed=config.split_seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        max_per_class=config.max_per_class,
        split_rule=config.split,
        ops=config.preprocess,
        split=split,
    )


def _load_for_resume(config: RunConfig, run_dir: Path, manifest: Manifest) -> LoadedDataset:
    """The dataset of a run being resumed, on its stored split; refuses a changed dataset. A run
    stopped before its split.csv was written (a full disk) and without a finished model gets
    the split again: seeded, so the one it would have written."""
    if not (run_dir / SPLIT).exists() and not any(entry.is_done for entry in manifest.models.values()):
        split = None
    else:
        try:
            split = read_split(run_dir)
        except ArtifactError as exc:
            raise ValueError(f"cannot resume {run_dir}: {exc}") from exc
    try:
        dataset = _load(config, split)
    except ValueError as exc:
        raise ValueError(f"cannot resume {run_dir}: the dataset no longer matches its split: {exc}") from exc
    stored = manifest.dataset.fingerprint
    if dataset.fingerprint != stored or (split is not None and len(dataset.split) != len(split)):
        raise ValueError(
            f"cannot resume {run_dir}: the dataset in {config.data} changed since the run started "
            f"(fingerprint {str(stored)[:12]}... then, {dataset.fingerprint[:12]}... now); start a new run"
        )
    if dataset.class_names != list(manifest.class_names):
        raise ValueError(
            f"cannot resume {run_dir}: classes {dataset.class_names} differ from the run's {list(manifest.class_names)}"
        )
    return dataset


def check_output_folder(out: Path) -> None:
    """ValueError, before any decoding, when no run folder can be written in ``out`` (no
    permission, a read-only file system, a file in the way). Leaves no folder behind."""
    out = Path(out)
    created = [path for path in (out, *out.parents) if not path.exists()]  # deepest first
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        if is_disk_full(exc):
            raise
        raise ValueError(f"--out {out}: cannot write a run folder there ({exc.strerror or exc})") from exc
    finally:
        for path in created:  # made again once the dataset has decoded
            with contextlib.suppress(OSError):
                path.rmdir()


def _refuse_existing(run_dir: Path) -> None:
    if manifest_path(run_dir).exists():
        raise ValueError(f"{run_dir} already holds a run; add --resume to continue it, or choose another --run-id")


def new_run_folder(out: Path, run_id: str | None, default: str) -> Path:
    """Create the folder of a new run in ``out`` and return it.

    ``run_id`` (the user's ``--run-id``) is checked to be a safe folder name and refused when it
    already holds a run. Without one the id is ``default`` (a time stamp and the dataset's name);
    the folder is claimed atomically (``os.mkdir``), so two runs started in the same second get
    ``default`` and ``default-2`` instead of sharing one folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        run_dir = out / check_run_id(run_id)
        _refuse_existing(run_dir)
        run_dir.mkdir(exist_ok=True)
        return run_dir
    for attempt in range(1, 1000):
        run_dir = out / (default if attempt == 1 else f"{default}-{attempt}")
        try:
            os.mkdir(run_dir)
        except FileExistsError:
            continue
        return run_dir
    raise ValueError(f"{out} already holds 999 runs named {default!r}...; choose a --run-id")


def _test_images_readable(run_dir: Path, count: int) -> bool:
    try:
        images, ids = load_test_images(run_dir)
    except ArtifactError:
        return False
    return len(images) == len(ids) == count


def _write_test_boxes(writer: RunWriter, dataset: Any, ids: Any) -> None:
    # load_dataset already moved the boxes into the stored images' frame (a head crop too).
    if len(dataset.boxes):
        writer.write_test_boxes(dataset.boxes, ids)


def _log_dataset(log: Callable[[str], None], dataset: LoadedDataset, load_seconds: float) -> None:
    counts = dataset.counts()
    log(
        f"dataset {dataset.name} ({dataset.index.layout}): "
        + ", ".join(f"{s} {sum(c.values())}" for s, c in counts.items())
        + f"; {len(dataset.skipped)} skipped; loaded in {load_seconds:.1f}s"
    )
    for skipped in dataset.skipped[:10]:
        log(f"  skipped {skipped.path}: {skipped.reason}")


def _session(started: str, distribution: Distribution, load_seconds: float) -> dict[str, Any]:
    """The manifest's record of this training session (``trained`` fills as models finish)."""
    return {
        "started": started,
        "backend": backend_name(),
        "device": device_description(),
        "distribution": distribution.record(),
        "data_seconds": round(load_seconds, 2),
        "trained": [],
    }


def _new_run(config: RunConfig, dataset: LoadedDataset, session: dict[str, Any],
             on_run_folder: RunFolderHook) -> RunWriter:
    """Write the folder of a new run: manifest (every model pending), split, test images, boxes."""
    started = session["started"]
    run_dir = new_run_folder(Path(config.out), config.run_id,
                             f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{dataset.name}")
    on_run_folder(run_dir)
    run_id = run_dir.name
    manifest = Manifest(
        run_id=run_id,
        created=started,
        config=config.to_dict(),
        class_names=tuple(dataset.class_names),
        image_size=config.img_size,
        image_ops=config.preprocess,
        dataset=DatasetRecord.from_loaded(dataset),
        backend=session["backend"],
        device=session["device"],
        distribution=session["distribution"],
        versions=library_versions(),
        timing={"started": started, "data_seconds": session["data_seconds"], "seconds": 0.0},
        sessions=(session,),
        models={name: ModelEntry(name) for name in config.models},
    )
    writer = RunWriter(run_dir, manifest)
    test = dataset.arrays["test"]
    writer.write_split(dataset.split)
    writer.write_test_images(test.images, test.ids)
    _write_test_boxes(writer, dataset, test.ids)
    return writer


def _resumed_run(
    config: RunConfig, run_dir: Path, stored: Manifest, dataset: LoadedDataset, session: dict[str, Any]
) -> tuple[RunWriter, list[str], list[Path]]:
    """Reopen an interrupted run with a new session: its unfinished models are reset; returns
    the writer, the models to train and the temporary files removed."""
    removed = remove_temporary_files(run_dir)
    manifest = replace(
        stored,
        format_version=FORMAT_VERSION,
        timing={"seconds": 0.0, **stored.timing},
        sessions=(*stored.sessions, session),
        models={name: stored.models.get(name, ModelEntry(name)) for name in config.models},
    )
    writer = RunWriter(run_dir, manifest)
    verdicts = finished_models(run_dir, manifest)
    to_train = [name for name in config.models if verdicts.get(name) is not None]
    for name in config.models:
        if name in to_train:
            writer.reset_model(name)  # keeps its backup: it continues from its last finished epoch
        else:
            writer.remove_backup(name)  # left by a kill after the model was done
    if not (run_dir / SPLIT).exists():  # stopped before it was written (see _load_for_resume)
        writer.write_split(dataset.split)
    test = dataset.arrays["test"]
    if not _test_images_readable(run_dir, len(test.ids)):
        writer.write_test_images(test.images, test.ids)
    return writer, to_train, removed


def _train_models(
    writer: RunWriter, config: RunConfig, dataset: LoadedDataset, to_train: list[str],
    progress: ZooProgress, distribution: Distribution, seconds_so_far: Callable[[], float],
) -> None:
    """Train ``to_train`` in the config's order; a model that fails is recorded and the others go on."""
    for index, name in enumerate(config.models):
        if name not in to_train:
            progress.skip_model(index, name, "already done")
            continue
        phases = 2 if weights_for(get_spec(name), config.weights) is not None else 1
        progress.start_model(index, name, phases)
        writer.set_model_status(name, STATUS_RUNNING, started=_now())
        try:
            train_one(writer, name, config, dataset, progress, distribution)
        except Exception as exc:  # one model failing must not lose the others
            if is_disk_full(exc):
                raise  # every later write fails too; the model stays running, for --resume
            writer.set_model_status(name, STATUS_FAILED, error=f"{type(exc).__name__}: {exc}", finished=_now())
            if isinstance(exc, LossBecameNaN):
                writer.remove_backup(name)  # its last state is on the edge of diverging: start over
            progress.finish_model(name, "FAILED", f"{type(exc).__name__}: {exc}")
        writer.add_trained(name, round(seconds_so_far(), 2))


def _ignore_folder(run_dir: Path) -> None:
    del run_dir


def run_zoo(config: RunConfig, say: Callable[[str], None] | None = None, resume: Path | None = None,
            on_run_folder: RunFolderHook = _ignore_folder) -> Path:
    """Train ``config.models`` on ``config.data``; returns the run folder.

    ``resume``: an interrupted run folder started with ``config``. Its finished models are
    kept as they are; unfinished ones are trained again on its stored split, the one that was
    training continuing from its last finished epoch. ``on_run_folder`` learns the run folder
    as soon as it exists (so a caller can name it when training stops: Ctrl-C, a full disk).
    """
    check_model_names(config.models)
    if config.tensorboard:  # refused before decoding, not model by model
        from bt_core.tracking.tensorboard_logs import check_tensorboard_available

        check_tensorboard_available()
    if resume is None:  # fail before the (possibly long) decoding
        check_output_folder(Path(config.out))
        if config.run_id is not None:
            _refuse_existing(Path(config.out) / check_run_id(config.run_id))
    started_wall, started = _now(), time.perf_counter()
    _set_precision(config.precision)
    distribution = setup_distribution(config.data_parallel)
    seed_everything(config.seed)
    stored = load_manifest(Path(resume)) if resume is not None else None
    if stored is not None:
        try:
            check_writable_format(stored.format_version)
        except ArtifactError as exc:
            raise ValueError(f"cannot resume {resume}: {exc}") from exc
        on_run_folder(Path(resume))
    dataset = _load(config) if stored is None else _load_for_resume(config, Path(resume), stored)
    load_seconds = time.perf_counter() - started
    progress = ZooProgress(list(config.models), config.epochs)
    log = say or progress.say
    _log_dataset(log, dataset, load_seconds)
    session = _session(started_wall, distribution, load_seconds)
    if stored is None:
        writer, to_train = _new_run(config, dataset, session, on_run_folder), list(config.models)
    else:
        writer, to_train, removed = _resumed_run(config, Path(resume), stored, dataset, session)
        kept = [name for name in config.models if name not in to_train]
        progress.done.update(kept)
        log(f"resuming {resume}: keeping {', '.join(kept) or 'no model'}; training {', '.join(to_train) or 'nothing'}"
            + (f"; removed {len(removed)} temporary file(s)" if removed else ""))
    run_dir = writer.run_dir
    write_run_data_profile(run_dir, dataset, config, say=log)  # after the split; kept when resuming
    seconds_before = float(writer.timing.get("seconds") or 0.0)

    def seconds_so_far() -> float:
        return seconds_before + time.perf_counter() - started

    log(f"run folder: {run_dir}")
    _train_models(writer, config, dataset, to_train, progress, distribution, seconds_so_far)
    writer.finish_session(_now(), round(seconds_so_far(), 2))
    log(f"done in {time.perf_counter() - started:.1f}s: {run_dir}")
    return run_dir
