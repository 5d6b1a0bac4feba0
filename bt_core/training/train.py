"""Fit one model spec: augmentation, callbacks, phases; score it; spread it over devices.
The batches (host augmentation, class weights, padding) are in :mod:`bt_core.training.batches`.

Augmentation runs on the device by default: a training-only wrapper
``keras.Sequential([RandomAffine, model])`` is compiled and fitted, so the warp happens inside
the compiled train step, while ``model`` itself (what is saved, explained and served) never
contains the augmentation layer. ``augment="numpy"`` keeps the older host-side augmentation.

With a :class:`~bt_core.training.backup.Recovery` the history is written after every epoch and
the training state is backed up, so an interrupted model continues from its last finished epoch
(what is and is not restored: :mod:`bt_core.training.backup`). A loss that becomes NaN or
infinite stops the model with :class:`LossBecameNaN`, naming the epoch.

Backend-agnostic Keras 3: the only TensorFlow import sits on a TensorFlow-only path.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager

import keras
import numpy as np
import pandas as pd

from bt_core.artifacts import HISTORY_COLUMNS
from bt_core.artifacts.files import naming_a_full_disk
from bt_core.training.augment import build_augmenter
from bt_core.training.backup import (
    FinishedPhase,
    Recovery,
    Restored,
    finish_phase,
    load_weights,
    phase_backup_callbacks,
    phase_end_path,
    restore,
)
from bt_core.training.batches import ImageBatches, balanced_class_weights
from bt_core.training.callbacks import (
    HistoryRecorder,
    LinearWarmup,
    LossBecameNaN,  # noqa: F401  (raised by StopOnNaNLoss; callers import it from here)
    ProgressCallback,
    ProgressHook,
    RecomputeBatchNorm,
    StopOnNaNLoss,
    recomputes_batchnorm,
    clean_training_images,
)
from bt_core.training.config import AUGMENT_MODES
from bt_core.tracking.tensorboard_logs import check_tensorboard_available, tensorboard_callback
from bt_core.data.dataset import SplitArrays
from bt_core.models import ModelSpec, set_backbone_trainable
from bt_core.data.preprocess import preprocess_batch

# device: RandomAffine inside the compiled train step; numpy: flip, shift, brightness /
# contrast on the host, per batch; none.
AUGMENT_DEVICE, AUGMENT_NUMPY, AUGMENT_NONE = AUGMENT_MODES

PHASE_SCRATCH = "scratch"
PHASE_HEAD = "head"  # pretrained base frozen
PHASE_FINE_TUNE = "fine_tune"  # everything trainable
MIN_LEARNING_RATE = 1e-7  # the floor of the plateau reductions


@dataclass
class TrainResult:
    history: pd.DataFrame
    seconds: float
    epochs_run: int
    best_epoch: int
    phases: list[str]
    batch_size: int = 0  # as trained (data-parallel rounds it up to a multiple of the devices)
    restored_epochs: int = 0  # epochs an earlier, interrupted session had finished


def jit_compile_setting() -> bool | str:
    """XLA under TensorFlow on a CPU compiles slowly and runs slower (measured: MobileNetV2
    2.5 s vs 5.3 s an epoch), so it is switched off there; elsewhere Keras decides."""
    if keras.backend.backend() != "tensorflow":
        return "auto"
    import tensorflow as tf

    return "auto" if tf.config.list_physical_devices("GPU") else False


def _phases(spec: ModelSpec, weights: str | None) -> list[tuple[str, float, bool]]:
    """(phase, learning rate, backbone trainable) in order.

    A pretrained backbone first trains its head with the base frozen, then fine-tunes all;
    from scratch there is nothing to protect, so one phase trains everything.
    """
    recipe = spec.recipe
    if spec.family == "backbone" and weights is not None:
        return [
            (PHASE_HEAD, recipe.head_learning_rate, False),
            (PHASE_FINE_TUNE, recipe.fine_tune_learning_rate, True),
        ]
    return [(PHASE_SCRATCH, recipe.learning_rate, True)]


def check_augment_mode(augment: str | bool) -> str:
    """The augmentation mode; ``True`` / ``False`` (the older flag) mean device / none."""
    if isinstance(augment, bool):
        return AUGMENT_DEVICE if augment else AUGMENT_NONE
    if augment not in AUGMENT_MODES:
        raise ValueError(f"unknown augmentation {augment!r}; valid: {', '.join(AUGMENT_MODES)}")
    return augment


def black_level(preprocessing: str) -> list[float]:
    """What a black pixel becomes after ``preprocessing``, per channel: the augmenter's fill."""
    return [float(v) for v in preprocess_batch(np.zeros((1, 1, 1, 3), np.uint8), preprocessing)[0, 0, 0]]


def training_model(model: keras.Model, augmenter: keras.layers.Layer | None) -> keras.Model:
    """``model`` with ``augmenter`` in front, sharing its layers and weights; the model
    itself when there is nothing to put in front."""
    if augmenter is None:
        return model
    return keras.Sequential([keras.Input(model.input_shape[1:]), augmenter, model], name=f"{model.name}_training")


def loss_for(spec: ModelSpec) -> keras.losses.Loss:
    """Cross-entropy on integer labels, or on one-hot labels when the recipe smooths them."""
    if spec.recipe.label_smoothing > 0:
        return keras.losses.CategoricalCrossentropy(label_smoothing=spec.recipe.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def _plateau_callbacks(spec: ModelSpec) -> tuple[keras.callbacks.EarlyStopping, keras.callbacks.ReduceLROnPlateau]:
    """Early stopping (best weights restored) and learning-rate reduction, both on the val loss."""
    recipe = spec.recipe
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=recipe.patience, restore_best_weights=True
    )
    reduce_lr = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=recipe.reduce_lr_factor, patience=recipe.reduce_lr_patience, min_lr=MIN_LEARNING_RATE
    )
    return early_stopping, reduce_lr


def _phase_callbacks(
    spec: ModelSpec, phase: str, learning_rate: float, first_epoch: int, rows: list[dict],
    progress: ProgressHook | None, epochs: int, phase_names: list[str],
    recovery: Recovery | None = None, restored: Restored | None = None,
) -> tuple[keras.callbacks.EarlyStopping, list[keras.callbacks.Callback]]:
    """One phase's callbacks, in the order they run: warm-up (when the recipe has one), early
    stopping (returned too: it knows the phase's best epoch), learning-rate reduction, the NaN
    guard, history, with ``recovery`` the backup (``restored``: the state this phase continues
    from), and progress. The history row is written before the backup, so a backup never
    covers an epoch the history lacks."""
    recipe = spec.recipe
    early_stopping, reduce_lr = _plateau_callbacks(spec)
    callbacks: list[keras.callbacks.Callback] = []
    if recipe.warmup_epochs > 0:
        callbacks.append(LinearWarmup(learning_rate, recipe.warmup_epochs))
    callbacks += [
        early_stopping,
        reduce_lr,
        StopOnNaNLoss(first_epoch),
        HistoryRecorder(phase, first_epoch, rows, recovery.write_history if recovery is not None else None),
    ]
    if recovery is not None:
        callbacks += phase_backup_callbacks(recovery.folder, phase, early_stopping, reduce_lr, restored)
    if progress is not None:
        hook = progress
        callbacks.append(ProgressCallback(lambda e: hook({**e, "phase_names": phase_names}), phase, epochs, first_epoch))
        if hasattr(progress, "batch_callback"):  # a ZooProgress: the bar inside each epoch
            callbacks.append(progress.batch_callback(phase, phase_names))
    return early_stopping, callbacks


def _training_batches(
    spec: ModelSpec, train: SplitArrays, val: SplitArrays, num_classes: int, batch_size: int,
    host_augment: bool, seed: int, workers: int, devices: int,
) -> tuple[ImageBatches, ImageBatches]:
    """Shuffled, class-weighted training batches and in-order validation batches."""
    one_hot = num_classes if spec.recipe.label_smoothing > 0 else None
    train_batches = ImageBatches(
        train, spec.preprocessing, batch_size, shuffle=True, augment=host_augment,
        class_weights=balanced_class_weights(train.labels, num_classes), seed=seed, one_hot=one_hot,
        workers=workers, drop_remainder=devices > 1, pad_to_multiple=devices,
    )
    val_batches = ImageBatches(
        val, spec.preprocessing, batch_size, one_hot=one_hot, workers=workers, pad_to_multiple=devices
    )
    return train_batches, val_batches


def _load_finished_phases(
    model: keras.Model, recovery: Recovery | None, restored: Restored
) -> tuple[int, float, list[np.ndarray] | None]:
    """Put the weights of the phases an earlier session finished back (the model ends where the
    last one ended); their best (epoch, val loss, weights)."""
    best_epoch, best_loss, best_weights = 0, math.inf, None
    for record in restored.finished:
        phase_weights = load_weights(phase_end_path(recovery.folder, record.phase))
        model.set_weights(phase_weights)
        if record.best_loss < best_loss:
            best_epoch, best_loss, best_weights = record.best_epoch, record.best_loss, phase_weights
    return best_epoch, best_loss, best_weights


def train_model(
    model: keras.Model,
    spec: ModelSpec,
    train: SplitArrays,
    val: SplitArrays,
    epochs: int,
    num_classes: int,
    batch_size: int | None = None,
    weights: str | None = None,
    augment: str | bool = AUGMENT_DEVICE,
    seed: int = 42,
    progress: ProgressHook | None = None,
    workers: int = 1,
    devices: int = 1,
    recovery: Recovery | None = None,
    tensorboard_dir: Path | None = None,
) -> TrainResult:
    """Fit ``model`` (built from ``spec``) in place; best weights (lowest val loss) are restored.

    ``augment``: ``"device"`` (RandomAffine in a training-only wrapper, scaled by the recipe's
    ``augment_strength``), ``"numpy"`` (host-side, per batch) or ``"none"``. ``workers``:
    threads preparing batches. ``devices``: data-parallel replicas (batches split evenly).
    ``recovery``: write the history after every epoch and back the training up there,
    continuing from what an interrupted session left (:mod:`bt_core.training.backup`).
    ``tensorboard_dir``: write Keras TensorBoard logs there, one folder per phase
    (:mod:`bt_core.tracking.tensorboard_logs`).
    """
    recipe = spec.recipe
    mode = check_augment_mode(augment)
    if tensorboard_dir is not None:
        check_tensorboard_available()  # before any epoch, not after the first phase
    # Every batch splits evenly over the replicas, so padding is only ever needed at the end.
    batch_size = math.ceil((batch_size or recipe.batch_size) / devices) * devices
    host_augment = mode == AUGMENT_NUMPY and recipe.augment_strength > 0
    train_batches, val_batches = _training_batches(
        spec, train, val, num_classes, batch_size, host_augment, seed, workers, devices
    )
    augmenter = (build_augmenter(recipe.augment_strength, fill_value=black_level(spec.preprocessing), seed=seed)
                 if mode == AUGMENT_DEVICE else None)
    fitted = training_model(model, augmenter)
    phases = _phases(spec, weights)
    phase_names = [p[0] for p in phases]
    restored = restore(recovery, phase_names, epochs, *_plateau_callbacks(spec)) if recovery else Restored()
    for note in restored.notes:
        recovery.say(f"{spec.name}: {note}")
    rows: list[dict] = [dict(row) for row in restored.rows]
    for _ in rows:  # the shuffles and host augmentation an uninterrupted run would be at
        train_batches.on_epoch_end()
    started = time.perf_counter()
    best_epoch, best_loss, best_weights = _load_finished_phases(model, recovery, restored)
    finished = list(restored.finished)
    for index, (phase, learning_rate, backbone_trainable) in enumerate(phases):
        if index < len(restored.finished):
            continue
        if spec.family == "backbone":
            set_backbone_trainable(model, backbone_trainable)
        fitted.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss_for(spec),
                       metrics=["accuracy"], jit_compile=jit_compile_setting())
        resumed = restored if index == len(restored.finished) and restored.epochs_done else None
        done = resumed.epochs_done if resumed else 0
        first_epoch = len(rows) - done
        early_stopping, callbacks = _phase_callbacks(
            spec, phase, learning_rate, first_epoch, rows, progress, epochs, phase_names, recovery, resumed
        )
        if recomputes_batchnorm(model, spec, devices, from_scratch=phase == PHASE_SCRATCH):
            clean = clean_training_images(spec, train, recipe.recompute_batchnorm_images, seed)
            callbacks.insert(0, RecomputeBatchNorm(model, clean))
        if tensorboard_dir is not None:  # after the backup: a logged epoch is never trained again
            callbacks.append(tensorboard_callback(tensorboard_dir, phase, first_epoch, resumed=resumed is not None))
        if resumed:
            recovery.say(f"{spec.name}: continuing phase {phase} after epoch {len(rows)} "
                         f"(restored from {recovery.folder})")
        # Keras keeps a restored start epoch on the model; each phase starts from its own backup.
        fitted._initial_epoch = None
        # A phase early stopping had already ended runs no further epoch.
        phase_epochs = done if resumed and resumed.plateau.stopped else epochs
        with naming_a_full_disk(recovery.folder) if recovery else contextlib.nullcontext():
            fitted.fit(train_batches, validation_data=val_batches, epochs=phase_epochs, callbacks=callbacks, verbose=0)
        phase_weights = model.get_weights()
        if early_stopping.best is not None and early_stopping.best < best_loss:
            best_loss = float(early_stopping.best)
            best_epoch = first_epoch + early_stopping.best_epoch + 1
            best_weights = phase_weights
        if recovery is not None:
            loss = float(early_stopping.best) if early_stopping.best is not None else math.inf
            record = FinishedPhase(phase, len(rows) - first_epoch, loss, first_epoch + early_stopping.best_epoch + 1)
            finish_phase(recovery.folder, record, phase_weights, finished)
            finished.append(record)
    # A fine-tuning phase that never beat the head phase must not leave its weights behind.
    if best_weights is not None:
        model.set_weights(best_weights)
    return TrainResult(
        history=pd.DataFrame(rows, columns=HISTORY_COLUMNS),
        seconds=time.perf_counter() - started,
        epochs_run=len(rows),
        best_epoch=best_epoch,
        phases=phase_names,
        batch_size=batch_size,
        restored_epochs=len(restored.rows),
    )


def predict_proba(
    model: keras.Model, spec: ModelSpec, arrays: SplitArrays, batch_size: int = 64, devices: int = 1
) -> np.ndarray:
    """Class probabilities (float64, rows sum to 1) for every image of ``arrays``."""
    batches = ImageBatches(arrays, spec.preprocessing, batch_size, pad_to_multiple=devices)
    proba = np.asarray(model.predict(batches, verbose=0), dtype=np.float64)
    if devices > 1:  # drop the padding rows, which sit at the end of each padded batch
        layout = _padded_layout(len(arrays.labels), batch_size, devices)
        keep = np.concatenate([np.arange(len(rows)) + start for start, rows in layout])
        proba = proba[keep]
    return proba / proba.sum(axis=1, keepdims=True)


def _padded_layout(count: int, batch_size: int, multiple: int) -> list[tuple[int, range]]:
    """(offset in the padded output, real rows) of each evaluation batch."""
    layout, offset = [], 0
    for start in range(0, count, batch_size):
        rows = range(start, min(start + batch_size, count))
        layout.append((offset, rows))
        offset += math.ceil(len(rows) / multiple) * multiple
    return layout


@dataclass
class Distribution:
    """How training is spread over devices; ``scope()`` must wrap model building and compiling."""

    strategy_name: str = "single device"
    devices: int = 1
    device_names: list[str] = field(default_factory=list)
    strategy: Any = None  # tf.distribute.MirroredStrategy under TensorFlow

    def scope(self) -> ContextManager:
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def record(self) -> dict:
        return {"strategy": self.strategy_name, "devices": self.devices, "device_names": self.device_names}


def setup_distribution(data_parallel: bool) -> Distribution:
    """Data parallelism over every local device: keras.distribution.DataParallel under JAX
    (global, set before any model is built), tf.distribute.MirroredStrategy under TensorFlow."""
    if not data_parallel:
        return Distribution()
    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return Distribution("jax DataParallel", len(devices), list(devices))
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        names = list(strategy.extended.worker_devices)
        return Distribution("tf MirroredStrategy", strategy.num_replicas_in_sync, names, strategy)
    raise ValueError(f"--data-parallel supports the jax and tensorflow backends, not {backend}")
