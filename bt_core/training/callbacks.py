"""The Keras callbacks of a training phase: NaN stop, history rows, batch-norm statistics
measured again before validation, per-epoch progress and the learning-rate warm-up."""

from __future__ import annotations

import time
from typing import Callable

import keras
import numpy as np
import pandas as pd

from bt_core.artifacts import HISTORY_COLUMNS
from bt_core.data.dataset import SplitArrays
from bt_core.data.preprocess import preprocess_batch
from bt_core.models import ModelSpec, batchnorm_layers, recompute_batchnorm_statistics


class LossBecameNaN(RuntimeError):
    """Training diverged: the loss became NaN or infinite (the message names the epoch)."""


class StopOnNaNLoss(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN (checked every batch), raising :class:`LossBecameNaN` with the
    epoch, so the model is recorded as failed and never saved as done."""

    # It only raises, so Keras may dispatch it off the training thread (JAX) without a sync
    # per batch; the error then surfaces a few batches later, in the same epoch.
    async_safe = True

    def __init__(self, first_epoch: int):
        super().__init__(raise_error=True)
        self.first_epoch = first_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError as exc:
            kind = "NaN" if np.isnan((logs or {}).get("loss", np.nan)) else "infinite"
            raise LossBecameNaN(f"loss became {kind} at epoch {self.first_epoch + self.epoch + 1}") from exc


class HistoryRecorder(keras.callbacks.Callback):
    """One row per epoch across phases, with the learning rate actually used; ``write`` (if
    given) receives the whole table after every epoch, so a crash keeps the finished epochs
    and the dashboard can follow a model while it trains."""

    def __init__(self, phase: str, first_epoch: int, rows: list[dict],
                 write: Callable[[pd.DataFrame], None] | None = None):
        super().__init__()
        self.phase = phase
        self.first_epoch = first_epoch
        self.rows = rows
        self.write = write

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row = {"epoch": self.first_epoch + epoch + 1, "phase": self.phase}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            row[key] = float(logs[key]) if key in logs else float("nan")
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rows.append(row)
        if self.write is not None:
            self.write(pd.DataFrame(self.rows, columns=HISTORY_COLUMNS))


class RecomputeBatchNorm(keras.callbacks.Callback):
    """Before every validation, measures ``model``'s batch-norm statistics again on clean
    training images (:func:`bt_core.models.recompute_batchnorm_statistics`), so validation,
    early stopping and the kept best weights see the statistics inference will use. It runs
    at the start of validation, where the JAX trainer has synced its state into the
    variables and reads them back afterwards."""

    def __init__(self, model: keras.Model, images: np.ndarray, batch_size: int = 128):
        super().__init__()
        self.target = model
        self.batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]

    def on_test_begin(self, logs: dict | None = None) -> None:
        recompute_batchnorm_statistics(self.target, self.batches)


def recomputes_batchnorm(model: keras.Model, spec: ModelSpec, devices: int, from_scratch: bool) -> bool:
    """Whether this phase measures batch-norm statistics again: the recipe asks for it, the
    model trains from scratch (a pretrained backbone's head and fine-tune phases keep its
    ImageNet statistics, updated by Keras' moving averages), some batch-norm layer trains, and
    one device holds the variables (replicated variables are left to the moving averages)."""
    wanted = spec.recipe.recompute_batchnorm_images > 0 and devices == 1 and from_scratch
    return wanted and bool(batchnorm_layers(model, trainable_only=True))


def clean_training_images(spec: ModelSpec, train: SplitArrays, count: int, seed: int) -> np.ndarray:
    """``count`` training images (a seeded draw of every class), preprocessed, un-augmented."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(train.labels))[:count])
    return preprocess_batch(train.images[rows], spec.preprocessing)


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


class LinearWarmup(keras.callbacks.Callback):
    """Learning rate ``lr * (e + 1) / (epochs + 1)`` in epochs e < ``epochs``, then ``lr``."""

    def __init__(self, learning_rate: float, epochs: int):
        super().__init__()
        self.learning_rate = learning_rate
        self.epochs = epochs

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch < self.epochs:
            self.model.optimizer.learning_rate = self.learning_rate * (epoch + 1) / (self.epochs + 1)
        elif epoch == self.epochs:
            self.model.optimizer.learning_rate = self.learning_rate
