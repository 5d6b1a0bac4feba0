"""--tensorboard: Keras TensorBoard logs per model and phase, holding history.csv's numbers, and
continued without a step twice when an interrupted model resumes; a phase trained afresh drops
stale logs."""

import importlib.util

import keras
import numpy as np
import pandas as pd
import pytest

from bt_core.artifacts import HISTORY_COLUMNS
from bt_core.artifacts.layout import tensorboard_dir
from bt_core.data.dataset import load_dataset
from bt_core.models import create_model, get_spec
from bt_core.tracking import tensorboard_logs
from bt_core.tracking.tensorboard_logs import read_scalars
from bt_core.training import train
from bt_core.training.backup import Recovery
from bt_core.training.config import RunConfig
from bt_core.training.train import StopOnNaNLoss, train_model
from imagefolders import make_pool

MODEL = "simple_cnn"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return load_dataset(make_pool(tmp_path_factory.mktemp("pool"), per_class=8, size=32), image_size=32, seed=1)


def fit(dataset, logs, epochs=2, **kwargs):
    keras.utils.set_random_seed(1)
    model = create_model(MODEL, 4, input_size=32)
    return train_model(model, get_spec(MODEL), dataset.arrays["train"], dataset.arrays["val"], epochs=epochs,
                       num_classes=4, batch_size=16, seed=1, tensorboard_dir=logs, **kwargs)


def two_phases(spec, weights):
    return [(train.PHASE_HEAD, 1e-3, True), (train.PHASE_FINE_TUNE, 3e-4, True)]


def write_stale_loss(folder, step, value):
    import tensorflow as tf

    with tf.summary.create_file_writer(str(folder)).as_default():
        tf.summary.scalar("epoch_loss", value, step=step)


def test_each_phase_logs_history_csvs_loss_and_val_accuracy_at_its_epoch_number(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(train, "_phases", two_phases)
    logs = tensorboard_dir(tmp_path, MODEL)
    write_stale_loss(logs / train.PHASE_HEAD / "train", 1, 99.0)  # an earlier session, trained again from the start
    assert read_scalars(logs / train.PHASE_HEAD / "train", "epoch_loss") == [(1, 99.0)]
    result = fit(dataset, logs)
    history = result.history
    assert sorted(p.name for p in logs.iterdir()) == [train.PHASE_FINE_TUNE, train.PHASE_HEAD]
    for phase in (train.PHASE_HEAD, train.PHASE_FINE_TUNE):
        rows = history[history["phase"] == phase]
        assert list((logs / phase / "train").glob("events.out.tfevents.*"))
        loss = read_scalars(logs / phase / "train", "epoch_loss")
        assert [step for step, _ in loss] == rows["epoch"].tolist()  # head 1, 2; fine-tuning 3, 4
        np.testing.assert_allclose([value for _, value in loss], rows["loss"], rtol=1e-6)
        val_accuracy = read_scalars(logs / phase / "validation", "epoch_accuracy")
        np.testing.assert_allclose([value for _, value in val_accuracy], rows["val_accuracy"], rtol=1e-6)
        rates = read_scalars(logs / phase / "train", "epoch_learning_rate")
        np.testing.assert_allclose([value for _, value in rates], rows["lr"], rtol=1e-6)


def test_a_resumed_model_appends_its_remaining_epochs_without_a_step_twice(dataset, tmp_path, monkeypatch):
    logs = tensorboard_dir(tmp_path, MODEL)
    backup = tmp_path / "backup"
    written: list[pd.DataFrame] = []
    real = StopOnNaNLoss.on_batch_end

    def ctrl_c_in_epoch_3(self, batch, logs=None):
        real(self, batch, logs)
        if self.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(StopOnNaNLoss, "on_batch_end", ctrl_c_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        fit(dataset, logs, epochs=4, recovery=Recovery(backup, pd.DataFrame(columns=HISTORY_COLUMNS), written.append))
    train_logs = logs / train.PHASE_SCRATCH / "train"
    assert [step for step, _ in read_scalars(train_logs, "epoch_loss")] == [1, 2]  # what the backup holds

    monkeypatch.setattr(StopOnNaNLoss, "on_batch_end", real)
    result = fit(dataset, logs, epochs=4, recovery=Recovery(backup, written[-1], written.append))
    assert result.restored_epochs == 2
    loss = read_scalars(train_logs, "epoch_loss")
    assert [step for step, _ in loss] == [1, 2, 3, 4]
    assert len(list(train_logs.glob("events.out.tfevents.*"))) == 2  # the resumed session's file beside the first
    np.testing.assert_allclose([value for _, value in loss], result.history["loss"], rtol=1e-6)


def test_without_tensorflow_the_option_is_refused_before_training(dataset, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(tensorboard_logs.importlib.util, "find_spec",
                        lambda name, *args: None if name == "tensorflow" else real(name, *args))
    backend = keras.backend.backend()
    with pytest.raises(ValueError, match=rf"^--tensorboard needs tensorflow .*under the {backend} backend"):
        fit(dataset, tmp_path / "logs")
    assert not (tmp_path / "logs").exists()


def test_the_option_is_stored_kept_on_resume_and_absent_in_older_configs():
    config = RunConfig(data="data", tensorboard=True)
    assert RunConfig.from_dict(config.to_dict()) == config
    older = {key: value for key, value in config.to_dict().items() if key != "tensorboard"}
    assert RunConfig.from_dict(older).tensorboard is False
    assert config.differences(RunConfig(data="data")) == []  # logs only: the same experiment
