"""Keras TensorBoard logs of one model's training (``--tensorboard``), and reading them back.

Each phase writes under ``models/<model>/tensorboard/<phase>/`` (``train/`` and
``validation/``, Keras' own names), so a head phase and its fine-tuning never overwrite each
other's curves. The step of an epoch is its number in history.csv (1-based over all phases), so
the fine-tuning curve continues where the head phase ended and every logged value can be
checked against history.csv.

Resume: the writers are flushed after every epoch and the callback runs after the backup, so
every logged epoch is backed up and never trained again; a resumed phase appends a new events
file in the same folder from the next epoch on (no step twice). A phase that starts afresh
(first session, or its backup was unusable) clears its folder first, so no stale steps remain.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import keras

INSTALL_HINT = "pip install 'brain-tumor-zoo[tensorboard]'"


def check_tensorboard_available() -> None:
    """ValueError when Keras' TensorBoard callback cannot write here: it writes through
    TensorFlow's ``tf.summary`` (TensorFlow must be importable, whatever the backend) and the
    ``tensorboard`` package. Called before any training, so a run never fails mid-way for it."""
    backend = keras.backend.backend()
    missing = [name for name in ("tensorflow", "tensorboard") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(
            f"--tensorboard needs {' and '.join(missing)} (Keras' TensorBoard callback writes through "
            f"TensorFlow's tf.summary, also under the {backend} backend), which is not installed: "
            f"{INSTALL_HINT} (and tensorflow-cpu under the {backend} backend), or train without --tensorboard"
        )


def _keep_tensorflow_off_the_gpu() -> None:
    """Under another backend TensorFlow only writes event files: on a GPU machine it must not
    take device memory from JAX. Too late once TensorFlow has started (then it is left as is)."""
    if keras.backend.backend() == "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # TensorFlow already initialised its devices
        pass


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback with history.csv's epoch numbers as steps and a flush after
    every epoch (so a killed run keeps exactly the epochs its backup holds)."""

    def __init__(self, log_dir: Path, first_epoch: int):
        super().__init__(log_dir=str(log_dir), write_graph=False, write_steps_per_second=False)
        self.first_epoch = first_epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(self.first_epoch + epoch + 1, logs)
        for writer in self._writers.values():
            writer.flush()


def phase_log_dir(tensorboard_dir: Path, phase: str) -> Path:
    return Path(tensorboard_dir) / phase


def tensorboard_callback(tensorboard_dir: Path, phase: str, first_epoch: int, resumed: bool) -> EpochTensorBoard:
    """The callback of one phase; ``resumed``: the phase continues a backup (its logs are kept
    and appended to), else its folder starts empty."""
    check_tensorboard_available()
    _keep_tensorflow_off_the_gpu()
    folder = phase_log_dir(tensorboard_dir, phase)
    if not resumed and folder.exists():
        shutil.rmtree(folder)
    return EpochTensorBoard(folder, first_epoch)


def read_scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every ``tag`` event in the event files of ``log_dir`` (one folder, e.g.
    ``.../tensorboard/scratch/train``), oldest file first, as written: nothing is merged or
    purged, so a step logged twice shows twice. Keras' ``tf.summary.scalar`` stores values as
    tensors, older writers as simple values: both are read."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.util import tensor_util

    values = []
    for path in sorted(Path(log_dir).glob("events.out.tfevents.*")):
        for record in RawEventFileLoader(str(path)).Load():
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                if value.tag != tag:
                    continue
                number = tensor_util.make_ndarray(value.tensor) if value.HasField("tensor") else value.simple_value
                values.append((int(event.step), float(number)))
    return values
