"""Fit one model spec: batches with on-the-fly augmentation, class weights, callbacks, phases.

Backend-agnostic Keras 3: nothing here imports TensorFlow or JAX.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from bt_core.artifacts import HISTORY_COLUMNS
from bt_core.data.dataset import SplitArrays
from bt_core.models import ModelSpec, set_backbone_trainable
from bt_core.preprocess import preprocess_batch

PHASE_SCRATCH = "scratch"
PHASE_HEAD = "head"  # pretrained base frozen
PHASE_FINE_TUNE = "fine_tune"  # everything trainable


def augment_batch(images: np.ndarray, rng: np.random.Generator, max_shift: float = 0.05) -> np.ndarray:
    """Random horizontal flip, shift up to ``max_shift`` of the size (zero fill), and a
    mild brightness / contrast change. uint8 in, uint8 out."""
    out = images.copy()
    n, height, width = images.shape[:3]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    limit_y, limit_x = int(round(height * max_shift)), int(round(width * max_shift))
    for i in range(n):
        dy = int(rng.integers(-limit_y, limit_y + 1)) if limit_y else 0
        dx = int(rng.integers(-limit_x, limit_x + 1)) if limit_x else 0
        if dy or dx:
            shifted = np.zeros_like(out[i])
            src = out[i, max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
            shifted[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
            out[i] = shifted
    gain = rng.uniform(0.9, 1.1, size=(n, 1, 1, 1))
    bias = rng.uniform(-10, 10, size=(n, 1, 1, 1))
    return np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


class ImageBatches(keras.utils.PyDataset):
    """Batches of preprocessed images from an in-memory uint8 array.

    Training batches are reshuffled every epoch, augmented and carry balanced class weights
    as sample weights; evaluation batches are in order and untouched.
    """

    def __init__(
        self,
        arrays: SplitArrays,
        preprocessing: str,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        class_weights: np.ndarray | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.arrays = arrays
        self.preprocessing = preprocessing
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.class_weights = class_weights
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(arrays.labels))
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        images = self.arrays.images[rows]
        if self.augment:
            images = augment_batch(images, self.rng)
        x = preprocess_batch(images, self.preprocessing)
        y = self.arrays.labels[rows]
        if self.class_weights is not None:
            return x, y, self.class_weights[y].astype(np.float32)
        return x, y

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.rng.shuffle(self.order)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's 'balanced' weights; a class absent from training gets weight 1."""
    weights = np.ones(num_classes, dtype=np.float64)
    present = np.unique(labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights


@dataclass
class TrainResult:
    history: pd.DataFrame
    seconds: float
    epochs_run: int
    best_epoch: int
    phases: list[str]


class HistoryRecorder(keras.callbacks.Callback):
    """One row per epoch across phases, with the learning rate actually used."""

    def __init__(self, phase: str, first_epoch: int, rows: list[dict]):
        super().__init__()
        self.phase = phase
        self.first_epoch = first_epoch
        self.rows = rows

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row = {"epoch": self.first_epoch + epoch + 1, "phase": self.phase}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            row[key] = float(logs[key]) if key in logs else float("nan")
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rows.append(row)


ProgressHook = Callable[[dict], None]


class ProgressCallback(keras.callbacks.Callback):
    """Reports each finished epoch to ``hook`` with its timing."""

    def __init__(self, hook: ProgressHook, phase: str, max_epochs: int, first_epoch: int):
        super().__init__()
        self.hook = hook
        self.phase = phase
        self.max_epochs = max_epochs
        self.first_epoch = first_epoch
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.hook(
            {
                "phase": self.phase,
                "epoch": self.first_epoch + epoch + 1,
                "phase_epoch": epoch + 1,
                "phase_epochs": self.max_epochs,
                "seconds": time.perf_counter() - self.started,
                "logs": dict(logs or {}),
            }
        )


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


def train_model(
    model: keras.Model,
    spec: ModelSpec,
    train: SplitArrays,
    val: SplitArrays,
    epochs: int,
    num_classes: int,
    batch_size: int | None = None,
    weights: str | None = None,
    augment: bool = True,
    seed: int = 42,
    progress: ProgressHook | None = None,
) -> TrainResult:
    """Fit ``model`` (built from ``spec``) in place; best weights (lowest val loss) are restored."""
    recipe = spec.recipe
    batch_size = batch_size or recipe.batch_size
    class_weights = balanced_class_weights(train.labels, num_classes)
    train_batches = ImageBatches(
        train, spec.preprocessing, batch_size, shuffle=True, augment=augment, class_weights=class_weights, seed=seed
    )
    val_batches = ImageBatches(val, spec.preprocessing, batch_size)
    rows: list[dict] = []
    phases = _phases(spec, weights)
    phase_names = [p[0] for p in phases]
    started = time.perf_counter()
    best_epoch, best_loss, best_weights = 0, math.inf, None
    for phase, learning_rate, backbone_trainable in phases:
        if spec.family == "backbone":
            set_backbone_trainable(model, backbone_trainable)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit_compile_setting(),
        )
        first_epoch = len(rows)
        early_stopping = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=recipe.patience, restore_best_weights=True
        )
        callbacks = [
            early_stopping,
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=recipe.reduce_lr_factor, patience=recipe.reduce_lr_patience, min_lr=1e-7
            ),
            HistoryRecorder(phase, first_epoch, rows),
        ]
        if progress is not None:
            hook = progress
            callbacks.append(ProgressCallback(lambda e: hook({**e, "phase_names": phase_names}), phase, epochs, first_epoch))
        model.fit(train_batches, validation_data=val_batches, epochs=epochs, callbacks=callbacks, verbose=0)
        if early_stopping.best < best_loss:
            best_loss = float(early_stopping.best)
            best_epoch = first_epoch + early_stopping.best_epoch + 1
            best_weights = model.get_weights()
    # A fine-tuning phase that never beat the head phase must not leave its weights behind.
    if best_weights is not None:
        model.set_weights(best_weights)
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return TrainResult(
        history=history,
        seconds=time.perf_counter() - started,
        epochs_run=len(rows),
        best_epoch=best_epoch,
        phases=phase_names,
    )


def predict_proba(model: keras.Model, spec: ModelSpec, arrays: SplitArrays, batch_size: int = 64) -> np.ndarray:
    """Class probabilities (float64, rows sum to 1) for every image of ``arrays``."""
    batches = ImageBatches(arrays, spec.preprocessing, batch_size)
    proba = np.asarray(model.predict(batches, verbose=0), dtype=np.float64)
    return proba / proba.sum(axis=1, keepdims=True)
