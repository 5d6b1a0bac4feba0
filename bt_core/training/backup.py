"""Mid-model resume: one model's training state in its run folder, so that ``--resume``
continues an interrupted model from its last finished epoch instead of starting it over.

The backup folder (``models/<name>/backup/``, :func:`bt_core.artifacts.layout.backup_dir`) holds

    <phase>/               keras.callbacks.BackupAndRestore of the phase in progress (Keras' own
                           files: the weights with the optimizer state, and the epochs done)
    <phase>.best-<k>.npz   the phase's best weights so far (its epoch k), written once a later
                           epoch did not beat them (until then they are BackupAndRestore's latest)
    <phase>.end.npz        a finished phase's final weights (those of its best epoch)
    phases.json            the finished phases: epochs, best val loss, best epoch

and the model's ``history.csv`` beside it, rewritten after every epoch, holds the rows. The zoo
removes the folder once the model is done.

Restored on resume: the weights, the optimizer state (moments, step count, the learning rate as
reduced on plateaus) and the epoch count (BackupAndRestore); the history rows; early stopping's
best val loss, best epoch, patience count and best weights, and the plateau callback's best and
patience count, replayed from the stored val_loss with Keras' rules; warm-up, which follows the
epoch number; the host-side shuffling and augmentation, fast-forwarded one epoch per epoch done.
Not restored: the random streams of the device augmentation and of dropout (they start again
from the seed), and the epoch that was running when training stopped, which is trained again.
A backup that does not fit the history (a kill while it was written) is dropped with a note:
that phase, or the model, starts over.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np
import pandas as pd

from bt_core.artifacts import HISTORY_COLUMNS, read_json, write_json
from bt_core.artifacts.files import atomic_write

PHASES_FILE = "phases.json"
END_SUFFIX = ".end.npz"
# keras.callbacks.BackupAndRestore's file names (Keras 3), read only to check that a backup is
# whole before Keras restores it: a folder that fails the check is cleared, never half-used.
KERAS_WEIGHTS = "latest.weights.h5"
KERAS_METADATA = "training_metadata.json"


class BackupProblem(ValueError):
    """A backup that cannot be continued: torn by a kill, or not matching the history."""


def _quiet(text: str) -> None:
    del text


@dataclass(frozen=True)
class Recovery:
    """Where one model's training survives a crash (the zoo passes its run folder's paths)."""

    folder: Path  # models/<name>/backup/
    history: pd.DataFrame  # history.csv as an earlier session left it (empty: none)
    write_history: Callable[[pd.DataFrame], None]  # gets every row so far after each epoch
    say: Callable[[str], None] = _quiet


@dataclass(frozen=True)
class FinishedPhase:
    phase: str
    epochs: int
    best_loss: float
    best_epoch: int  # 1-based over all phases, as in history.csv

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "epochs": self.epochs, "best_loss": self.best_loss, "best_epoch": self.best_epoch}

    @classmethod
    def from_json(cls, data: Any) -> FinishedPhase:
        loss = data.get("best_loss")  # null: the phase never had a finite val loss
        return cls(str(data["phase"]), int(data["epochs"]), math.inf if loss is None else float(loss),
                   int(data["best_epoch"]))


@dataclass(frozen=True)
class PlateauState:
    """EarlyStopping's and ReduceLROnPlateau's counters after the first epochs of a phase."""

    best: float | None
    best_index: int  # 0-based epoch of the phase
    wait: int
    stopped: bool  # early stopping had ended the phase
    lr_best: float | None
    lr_wait: int
    lr_cooldown: int


@dataclass(frozen=True)
class Restored:
    """What a backup gives back before training starts."""

    rows: tuple[dict, ...] = ()  # the history rows it covers, in order
    finished: tuple[FinishedPhase, ...] = ()
    epochs_done: int = 0  # of the first unfinished phase
    plateau: PlateauState | None = None  # that phase's counters (None: it starts afresh)
    best_file: Path | None = None  # that phase's best weights, when not its latest ones
    notes: tuple[str, ...] = ()  # what could not be used, and so was dropped


def _improves(value: float, reference: float | None, min_delta: float) -> bool:
    """Keras' MonitorCallback._is_improvement for a minimised quantity."""
    return reference is None or bool(value + min_delta < reference)


def replay_plateau(
    val_losses: Sequence[float], learning_rates: Sequence[float],
    early_stopping: keras.callbacks.EarlyStopping, reduce_lr: keras.callbacks.ReduceLROnPlateau,
) -> PlateauState:
    """The state ``early_stopping`` and ``reduce_lr`` (both on val_loss, minimised; their
    settings are read from them) reach after a phase's epochs with these val losses, following
    their on_epoch_end; ``learning_rates`` (history.csv's lr, after any reduction) say whether a
    reduction was possible (the rate was above ``min_lr``)."""
    return PlateauState(*_replay_early_stopping(val_losses, early_stopping),
                        *_replay_reduce_lr(val_losses, learning_rates, reduce_lr))


def _replay_early_stopping(val_losses: Sequence[float], callback: keras.callbacks.EarlyStopping):
    """(best, best epoch, wait, stopped), as EarlyStopping.on_epoch_end counts them."""
    # Keras flips the sign of min_delta once it knows the direction: abs() reads either state.
    delta = abs(callback.min_delta)
    best, best_index, wait = None, 0, 0
    for epoch, value in enumerate(val_losses):
        if epoch < callback.start_from_epoch:
            continue
        if epoch == callback.start_from_epoch:  # best_weights still unset: this epoch's
            best_index = epoch
        wait += 1
        if _improves(value, best, delta):
            best, best_index = value, epoch
            if callback.baseline is None or _improves(value, callback.baseline, delta):
                wait = 0
        elif wait >= callback.patience and epoch > 0:
            return best, best_index, wait, True
    return best, best_index, wait, False


def _replay_reduce_lr(val_losses: Sequence[float], learning_rates: Sequence[float],
                      callback: keras.callbacks.ReduceLROnPlateau):
    """(best, wait, cooldown counter), as ReduceLROnPlateau.on_epoch_end counts them."""
    delta = abs(callback.min_delta)
    best, wait, cooldown = None, 0, 0
    for epoch, value in enumerate(val_losses):
        if cooldown > 0:
            cooldown -= 1
            wait = 0
        if _improves(value, best, delta):
            best, wait = value, 0
        elif cooldown <= 0:
            wait += 1
            rate_before = learning_rates[epoch - 1] if epoch > 0 else math.inf
            if wait >= callback.patience and rate_before > np.float32(callback.min_lr):  # reduced
                cooldown, wait = callback.cooldown, 0
    return best, wait, cooldown


def save_weights(path: Path, weights: Sequence[np.ndarray]) -> None:
    """``model.get_weights()`` as an uncompressed npz (atomic)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, *weights)

    atomic_write(path, write)


def load_weights(path: Path) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return [data[f"arr_{index}"] for index in range(len(data.files))]


def best_weights_name(phase: str, epoch: int) -> str:
    return f"{phase}.best-{epoch}.npz"


def phase_end_path(folder: Path, phase: str) -> Path:
    return Path(folder) / f"{phase}{END_SUFFIX}"


def _remove_best_files(folder: Path, phase: str, keep: Path | None = None) -> None:
    for path in folder.glob(f"{phase}.best-*.npz"):
        if path != keep:
            path.unlink()


def _clear_phase(folder: Path, phase: str) -> None:
    """Drop a phase's running backup: BackupAndRestore's folder and the best weights."""
    shutil.rmtree(folder / phase, ignore_errors=True)
    _remove_best_files(folder, phase)


def _history_rows(history: pd.DataFrame) -> list[dict]:
    if history.empty:
        return []
    missing = [column for column in HISTORY_COLUMNS if column not in history.columns]
    if missing:
        raise BackupProblem(f"history.csv lacks the columns {missing}")
    rows = []
    try:
        for record in history[HISTORY_COLUMNS].to_dict("records"):
            row = {key: float(value) for key, value in record.items() if key not in ("epoch", "phase")}
            rows.append({"epoch": int(record["epoch"]), "phase": str(record["phase"]), **row})
    except (TypeError, ValueError) as exc:  # a torn or edited file
        raise BackupProblem(f"history.csv holds a value that is not a number ({exc})") from exc
    if [row["epoch"] for row in rows] != list(range(1, len(rows) + 1)):
        raise BackupProblem("the epochs of history.csv are not 1, 2, 3, ...")
    return rows


def _finished_phases(folder: Path, phase_names: Sequence[str]) -> tuple[FinishedPhase, ...]:
    path = folder / PHASES_FILE
    if not path.is_file():
        return ()
    try:
        finished = tuple(FinishedPhase.from_json(item) for item in read_json(path)["phases"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupProblem(f"{path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if [record.phase for record in finished] != list(phase_names[: len(finished)]):
        raise BackupProblem(f"{path} lists phases {[r.phase for r in finished]}, not a start of {list(phase_names)}")
    for record in finished:
        if not phase_end_path(folder, record.phase).is_file():
            raise BackupProblem(f"the final weights of phase {record.phase} are missing")
    return finished


def _rows_of_finished(rows: list[dict], finished: Sequence[FinishedPhase]) -> list[dict]:
    kept: list[dict] = []
    for record in finished:
        phase_rows = rows[len(kept) : len(kept) + record.epochs]
        if len(phase_rows) != record.epochs or any(row["phase"] != record.phase for row in phase_rows):
            raise BackupProblem(
                f"history.csv does not hold the {record.epochs} epoch(s) of finished phase {record.phase}")
        kept += phase_rows
    return kept


def _keras_epochs(folder: Path, epochs: int) -> int:
    """Epochs BackupAndRestore has saved in ``folder`` (0: none). It writes the weights, then
    the epoch count: a count older than the weights means a kill between the two."""
    weights, metadata = folder / KERAS_WEIGHTS, folder / KERAS_METADATA
    if not weights.exists() and not metadata.exists():
        shutil.rmtree(folder, ignore_errors=True)
        return 0
    try:
        done = int(json.loads(metadata.read_text(encoding="utf-8"))["epoch"])
        torn = metadata.stat().st_mtime_ns < weights.stat().st_mtime_ns
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupProblem(f"the backup in {folder} is incomplete ({type(exc).__name__})") from exc
    if torn:
        raise BackupProblem(f"the backup in {folder} was cut off while its weights were written")
    if not 1 <= done <= epochs:
        raise BackupProblem(f"the backup in {folder} counts {done} epochs, outside 1..{epochs}")
    import h5py  # a Keras dependency

    try:
        with h5py.File(weights, "r"):
            pass
    except (OSError, ValueError) as exc:
        raise BackupProblem(f"{weights} cannot be opened ({exc})") from exc
    return done


def restore(
    recovery: Recovery, phase_names: Sequence[str], epochs: int,
    early_stopping: keras.callbacks.EarlyStopping, reduce_lr: keras.callbacks.ReduceLROnPlateau,
) -> Restored:
    """What ``recovery``'s backup and history give back for a model trained in ``phase_names``
    of up to ``epochs`` epochs each (``early_stopping`` and ``reduce_lr``: the settings of the
    callbacks the phases use). What does not fit is deleted, so Keras never restores it."""
    folder = Path(recovery.folder)
    if not folder.is_dir():
        return Restored()
    try:
        rows = _history_rows(recovery.history)
        finished = _finished_phases(folder, phase_names)
        kept = _rows_of_finished(rows, finished)
    except BackupProblem as problem:
        shutil.rmtree(folder)
        return Restored(notes=(f"{problem}: the model starts over",))
    for record in finished:  # a kill right after finish_phase recorded it
        _clear_phase(folder, record.phase)
    if len(finished) == len(phase_names):
        return Restored(tuple(kept), finished)
    phase = phase_names[len(finished)]
    try:
        done = _keras_epochs(folder / phase, epochs)
        phase_rows = rows[len(kept) : len(kept) + done]
        if len(phase_rows) < done or any(row["phase"] != phase for row in phase_rows):
            raise BackupProblem(f"history.csv holds {len(phase_rows)} epoch(s) of phase {phase}, its backup {done}")
        plateau, best_file = None, None
        if done:
            plateau = replay_plateau([row["val_loss"] for row in phase_rows], [row["lr"] for row in phase_rows],
                                     early_stopping, reduce_lr)
            if plateau.best_index < done - 1:
                best_file = folder / best_weights_name(phase, plateau.best_index + 1)
                if not best_file.is_file():
                    raise BackupProblem(
                        f"the best weights of phase {phase} (epoch {plateau.best_index + 1}) are missing")
    except BackupProblem as problem:
        _clear_phase(folder, phase)
        return Restored(tuple(kept), finished, notes=(f"{problem}: phase {phase} starts over",))
    _remove_best_files(folder, phase, keep=best_file)
    return Restored(tuple(kept + phase_rows), finished, done, plateau, best_file)


def finish_phase(folder: Path, record: FinishedPhase, weights: Sequence[np.ndarray],
                 finished_before: Sequence[FinishedPhase]) -> None:
    """Record a phase as finished with its final weights; its running backup goes."""
    folder = Path(folder)
    save_weights(phase_end_path(folder, record.phase), weights)  # before phases.json names it
    write_json(folder / PHASES_FILE, {"phases": [r.to_json() for r in (*finished_before, record)]})
    _clear_phase(folder, record.phase)


class PhaseBackup(keras.callbacks.Callback):
    """Keeps a phase's best weights on disk and, on resume, gives early stopping and the
    plateau callback back their counters and best weights (``plateau``, ``best_file``).

    It sits after both in the callback list (they reset themselves in on_train_begin) and
    before BackupAndRestore, so a best epoch's weights are on disk before BackupAndRestore
    overwrites them as the latest ones."""

    def __init__(self, folder: Path, phase: str, early_stopping: keras.callbacks.EarlyStopping,
                 reduce_lr: keras.callbacks.ReduceLROnPlateau, plateau: PlateauState | None = None,
                 best_file: Path | None = None):
        super().__init__()
        self.folder, self.phase = Path(folder), phase
        self.early_stopping, self.reduce_lr = early_stopping, reduce_lr
        self.plateau, self.best_file = plateau, best_file
        self.saved_index = plateau.best_index if plateau is not None and best_file is not None else None
        self.take_latest = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        state = self.plateau
        if state is None:
            return
        stopping, reduce_lr = self.early_stopping, self.reduce_lr
        stopping.best, stopping.best_epoch, stopping.wait = state.best, state.best_index, state.wait
        reduce_lr.best, reduce_lr.wait, reduce_lr.cooldown_counter = state.lr_best, state.lr_wait, state.lr_cooldown
        if self.best_file is not None:
            stopping.best_weights = load_weights(self.best_file)
        else:  # the best epoch is the last one done: the weights BackupAndRestore restores
            self.take_latest = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.take_latest:
            self.early_stopping.best_weights = self.model.get_weights()
            self.take_latest = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        stopping = self.early_stopping
        if stopping.best_weights is None or stopping.best_epoch >= epoch or stopping.best_epoch == self.saved_index:
            return
        path = self.folder / best_weights_name(self.phase, stopping.best_epoch + 1)
        save_weights(path, stopping.best_weights)
        _remove_best_files(self.folder, self.phase, keep=path)
        self.saved_index = stopping.best_epoch


def phase_backup_callbacks(folder: Path, phase: str, early_stopping: keras.callbacks.EarlyStopping,
                           reduce_lr: keras.callbacks.ReduceLROnPlateau,
                           restored: Restored | None = None) -> list[keras.callbacks.Callback]:
    """The phase's best-weights keeper and Keras' BackupAndRestore, in that order; ``restored``:
    the backup this phase continues (None: it starts afresh)."""
    plateau = restored.plateau if restored is not None else None
    best_file = restored.best_file if restored is not None else None
    keras_backup = keras.callbacks.BackupAndRestore(str(Path(folder) / phase), delete_checkpoint=False)
    # Its batch hook does nothing with save_freq="epoch"; marked safe so that it does not turn
    # off Keras' asynchronous callback dispatch (JAX), which would wait on every batch.
    keras_backup.async_safe = True
    return [PhaseBackup(folder, phase, early_stopping, reduce_lr, plateau, best_file), keras_backup]
