"""Training faults: a kill, Ctrl-C or a full disk in the middle of a run leaves a run folder that
--resume continues (the model that was training from its last finished epoch); a diverging
model fails alone; bad sizes, an unknown model, an unwritable --out and a newer run are refused."""

import errno
import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pandas as pd
import pytest

from bt_core import artifacts as art
from bt_core import cli
from bt_core.artifacts import files as artifact_files
from bt_core.artifacts import writer as artifact_writer
from bt_core.artifacts.layout import backup_dir
from bt_core.models import create_model, get_spec, list_models
from bt_core.training import backup, train
from bt_core.training.backup import Recovery
from bt_core.training.train import LossBecameNaN, StopOnNaNLoss, train_model
from imagefolders import make_pool

ROOT = Path(__file__).resolve().parents[1]
MODEL = "simple_cnn"  # the fastest model of the registry


@pytest.fixture
def data(tmp_path) -> Path:
    return make_pool(tmp_path / "data", per_class=10, size=32)


def command(data: Path, out: Path, epochs: int = 2, models: str = MODEL) -> list[str]:
    return ["--data", str(data), "--models", models, "--epochs", str(epochs), "--img-size", "32",
            "--batch-size", "16", "--out", str(out), "--run-id", "r", "--no-explain"]


def history(run_dir: Path, name: str = MODEL) -> pd.DataFrame:
    return pd.read_csv(art.model_dir(run_dir, name) / art.HISTORY)


def temporary_files(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if p.is_file() and art.is_temporary_file(p)]


def epochs_trained(stderr: str) -> list[str]:
    """The epochs a session trained, as its progress lines count them ("3/4": epoch 3 of 4)."""
    return re.findall(r" epoch (\d+/\d+) ", stderr)


def assert_finished(run_dir: Path, epochs: int, name: str = MODEL) -> None:
    """The model is done, its four files readable, its history holds epochs 1..epochs once each,
    and nothing of the interrupted sessions is left."""
    run = art.load_run(run_dir)
    assert run.models[name].usable, run.models[name].error
    assert art.model_files_problem(run_dir, name, run.class_names) is None
    assert history(run_dir, name)["epoch"].tolist() == list(range(1, epochs + 1))
    assert run.models[name].info["epochs_run"] == epochs
    assert not backup_dir(run_dir, name).exists()
    assert temporary_files(run_dir) == []


# --- 1. mid-model resume after SIGKILL -------------------------------------------------------

# Runs train_all.py with one test-side change: after BackupAndRestore has saved epoch 2 it
# writes a marker and waits to be killed (so the kill always falls after a finished epoch 2).
KILLED_AFTER_EPOCH_2 = """
import runpy, sys, time
from pathlib import Path
import keras

marker, argv = Path(sys.argv[1]), sys.argv[2:]
original = keras.callbacks.BackupAndRestore.on_epoch_end

def on_epoch_end(self, epoch, logs=None):
    original(self, epoch, logs)
    if epoch == 1:
        marker.write_text("epoch 2 backed up")
        time.sleep(600)

keras.callbacks.BackupAndRestore.on_epoch_end = on_epoch_end
sys.argv = ["train_all.py", *argv]
runpy.run_path("train_all.py", run_name="__main__")
"""


def wait_for(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_model_killed_after_epoch_2_resumes_and_ends_with_exactly_4_epochs(data, tmp_path, capsys):
    out, marker = tmp_path / "artifacts", tmp_path / "killed-now"
    argv = command(data, out, epochs=4)
    process = subprocess.Popen([sys.executable, "-c", KILLED_AFTER_EPOCH_2, str(marker), *argv], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(marker, process, timeout=240)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    run_dir = out / "r"
    assert art.read_manifest(run_dir)["models"][MODEL]["status"] == art.STATUS_RUNNING
    before = history(run_dir)
    assert before["epoch"].tolist() == [1, 2]  # written after every epoch, not only at the end
    assert (backup_dir(run_dir, MODEL) / "scratch").is_dir()

    assert cli.main(["--resume", str(run_dir), "--no-explain"]) == 0
    err = capsys.readouterr().err
    assert "simple_cnn: continuing phase scratch after epoch 2" in err
    assert epochs_trained(err) == ["3/4", "4/4"]
    assert_finished(run_dir, epochs=4)
    pd.testing.assert_frame_equal(history(run_dir).iloc[:2], before)  # the first two epochs kept
    manifest = art.read_manifest(run_dir)
    assert [s["trained"] for s in manifest["sessions"]] == [[], [MODEL]]
    assert "finished" not in manifest["sessions"][0] and manifest["sessions"][1]["finished"]
    assert 1 <= manifest["models"][MODEL]["best_epoch"] <= 4


# --- 2. a full disk ---------------------------------------------------------------------------


def fill_disk_at(monkeypatch, file_name: str) -> None:
    """Every atomic write of ``file_name`` writes a few bytes, then finds the disk full."""
    real = artifact_files.atomic_write

    def atomic_write(path, write):
        if Path(path).name != file_name:
            return real(path, write)

        def partial(tmp):
            Path(tmp).write_bytes(b"PK\x03\x04 half a file")
            raise OSError(errno.ENOSPC, "No space left on device")

        return real(path, partial)

    for module in (artifact_files, artifact_writer, backup):
        monkeypatch.setattr(module, "atomic_write", atomic_write)


@pytest.mark.parametrize("file_name", [art.TEST_IMAGES, art.SPLIT])
def test_disk_full_before_training_exits_3_and_the_resume_completes_the_run(data, tmp_path, monkeypatch,
                                                                            capsys, file_name):
    out = tmp_path / "artifacts"
    run_dir = out / "r"
    fill_disk_at(monkeypatch, file_name)
    assert cli.main(command(data, out, epochs=1)) == 3
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: no space left on device while writing {run_dir / file_name}: free space and resume with "
        f"`python train_all.py --resume {run_dir}`")
    assert not (run_dir / file_name).exists() and temporary_files(run_dir) == []
    assert art.read_manifest(run_dir)["models"][MODEL]["status"] == art.STATUS_PENDING

    monkeypatch.undo()
    assert cli.main(["--resume", str(run_dir), "--no-explain"]) == 0
    assert_finished(run_dir, epochs=1)
    images, ids = art.load_test_images(run_dir)
    split = art.read_split(run_dir)
    assert ids.tolist() == split.loc[split["split"] == "test", "path"].tolist() and len(images) == len(ids)


def test_disk_full_at_the_first_manifest_says_to_run_the_command_again(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "artifacts"
    fill_disk_at(monkeypatch, art.MANIFEST)
    assert cli.main(command(data, out, epochs=1)) == 3
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: no space left on device while writing {out / 'r' / art.MANIFEST}: "
        "free space and run the command again")
    assert list((out / "r").iterdir()) == []
    monkeypatch.undo()
    assert cli.main(command(data, out, epochs=1)) == 0  # the same --run-id: the empty folder is no run


def test_disk_full_while_saving_a_trained_model_keeps_its_epochs_for_the_resume(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "artifacts"
    run_dir = out / "r"

    def save(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(keras.Model, "save", save)
    assert cli.main(command(data, out, epochs=2)) == 3
    err = capsys.readouterr().err
    assert f"error: no space left on device while writing {art.model_dir(run_dir, MODEL) / art.MODEL_FILE}" in err
    assert len(epochs_trained(err)) == 2
    folder = art.model_dir(run_dir, MODEL)
    assert not (folder / art.MODEL_FILE).exists() and temporary_files(run_dir) == []
    assert art.read_manifest(run_dir)["models"][MODEL]["status"] == art.STATUS_RUNNING  # not failed
    trained = history(run_dir)

    monkeypatch.undo()
    assert cli.main(["--resume", str(run_dir), "--no-explain"]) == 0
    assert epochs_trained(capsys.readouterr().err) == []  # both epochs came back from the backup
    assert_finished(run_dir, epochs=2)
    pd.testing.assert_frame_equal(history(run_dir), trained)


def test_a_full_disk_is_reported_with_the_file_and_the_old_content_kept(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    art.write_json(path, {"accuracy": 0.5})
    fill_disk_at(monkeypatch, path.name)
    with pytest.raises(artifact_files.NoSpaceLeft, match=f"^no space left on device while writing {path}$"):
        art.write_json(path, {"accuracy": 0.9})
    assert art.read_json(path) == {"accuracy": 0.5} and temporary_files(tmp_path) == []


# --- 3. Ctrl-C, a diverging model ---------------------------------------------------------------


def test_ctrl_c_during_training_exits_130_and_the_resume_continues_the_model(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "artifacts"
    run_dir = out / "r"
    real = StopOnNaNLoss.on_batch_end

    def ctrl_c_in_epoch_2(self, batch, logs=None):
        real(self, batch, logs)
        if self.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(StopOnNaNLoss, "on_batch_end", ctrl_c_in_epoch_2)
    assert cli.main(command(data, out, epochs=3)) == 130
    last_line = capsys.readouterr().err.splitlines()[-1]
    assert last_line == f"interrupted; resume with `python train_all.py --resume {run_dir}`"
    assert art.read_manifest(run_dir)["models"][MODEL]["status"] == art.STATUS_RUNNING
    assert history(run_dir)["epoch"].tolist() == [1] and temporary_files(run_dir) == []

    monkeypatch.undo()
    assert cli.main([*command(data, out, epochs=3), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "continuing phase scratch after epoch 1" in err and len(epochs_trained(err)) == 2
    assert_finished(run_dir, epochs=3)


def test_a_model_whose_loss_becomes_nan_fails_with_its_epoch_and_the_others_train(data, tmp_path, monkeypatch, capsys):
    # simple_cnn's weights turn NaN as its second epoch begins (weights, not a variable inside
    # the loss or the batches: JAX traces the one as a constant and prefetches the other).
    training = {}
    real_loss, real_epoch_begin = train.loss_for, StopOnNaNLoss.on_epoch_begin

    def loss_for(spec):
        training["model"] = spec.name
        return real_loss(spec)

    def diverge_in_epoch_2(self, epoch, logs=None):
        real_epoch_begin(self, epoch, logs)
        if epoch == 1 and training["model"] == MODEL:
            self.model.set_weights([weights * np.nan for weights in self.model.get_weights()])

    monkeypatch.setattr(train, "loss_for", loss_for)
    monkeypatch.setattr(StopOnNaNLoss, "on_epoch_begin", diverge_in_epoch_2)
    out = tmp_path / "artifacts"
    assert cli.main(command(data, out, epochs=2, models=f"{MODEL},cnn_bn")) == 1
    assert "error: simple_cnn failed: LossBecameNaN: loss became NaN at epoch 2" in capsys.readouterr().err
    run = art.load_run(out / "r")
    assert run.models[MODEL].status == art.STATUS_FAILED
    assert run.models[MODEL].error == "LossBecameNaN: loss became NaN at epoch 2"
    assert history(out / "r")["epoch"].tolist() == [1]  # epoch 1 had been backed up ...
    assert not backup_dir(out / "r", MODEL).exists()  # ... and is dropped: a resume starts it over
    assert run.models["cnn_bn"].usable


def test_the_nan_guard_names_the_epoch_over_all_phases():
    guard = StopOnNaNLoss(first_epoch=3)  # a second phase after three epochs
    guard.on_epoch_begin(1)
    guard.on_batch_end(0, {"loss": 0.7})
    with pytest.raises(LossBecameNaN, match="^loss became NaN at epoch 5$"):
        guard.on_batch_end(1, {"loss": float("nan")})
    with pytest.raises(LossBecameNaN, match="^loss became infinite at epoch 5$"):
        guard.on_batch_end(2, {"loss": float("inf")})


# --- 4. bad arguments, an unwritable --out, a newer run -----------------------------------------


@pytest.mark.parametrize("flag, value, message", [
    ("--epochs", "0", "epochs must be at least 1, got 0"),
    ("--epochs", "-3", "epochs must be at least 1, got -3"),
    ("--img-size", "0", "img-size must be at least 32 px, got 0"),
    ("--batch-size", "0", "batch-size must be at least 1, got 0"),
    ("--max-per-class", "0", "max-per-class must be at least 1, got 0"),
])
def test_zero_or_negative_sizes_exit_2_naming_the_setting(data, tmp_path, capsys, flag, value, message):
    out = tmp_path / "o"
    argv = ["--data", str(data), "--models", MODEL, "--out", str(out), flag, value]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not out.exists()


def test_an_unknown_model_exits_2_listing_the_known_ones(data, tmp_path, capsys):
    assert cli.main(["--data", str(data), "--models", f"{MODEL},resnet5O", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"error: unknown model(s) ['resnet5O']; known: {', '.join(list_models())}"


def test_an_out_folder_that_cannot_be_written_exits_2_before_any_decoding(tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    missing_data = tmp_path / "no-such-dataset"  # never reached: --out is checked first
    argv = ["--data", str(missing_data), "--models", MODEL, "--epochs", "1"]
    assert cli.main([*argv, "--out", str(blocked / "runs")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --out {blocked / 'runs'}: cannot write a run folder there (Not a directory)")

    denied = tmp_path / "read-only"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):  # the tests may run as root, whom chmod does not stop
        if self == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert cli.main([*argv, "--out", str(denied)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --out {denied}: cannot write a run folder there (Permission denied)")
    monkeypatch.undo()
    assert cli.main([*argv, "--out", str(tmp_path / "new" / "runs")]) == 2  # writable: the dataset is refused
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # the check leaves no folder behind


MAJOR, MINOR = (int(part) for part in art.FORMAT_VERSION.split("."))
NEWER_MAJOR, NEWER_MINOR = f"{MAJOR + 1}.0", f"{MAJOR}.{MINOR + 1}"


@pytest.mark.parametrize("version, message", [
    (NEWER_MAJOR, f"run has artifact format {NEWER_MAJOR}, newer than this code reads ({art.FORMAT_VERSION}); "
                  "update the project (git pull) to open it"),
    (NEWER_MINOR, f"run has artifact format {NEWER_MINOR}, newer than this code writes ({art.FORMAT_VERSION}); "
                  "update the project (git pull) to continue it"),
])
def test_resume_refuses_a_run_of_a_newer_format_and_leaves_it_untouched(tmp_path, capsys, version, message):
    run_dir = tmp_path / "artifacts" / "newer"
    run_dir.mkdir(parents=True)
    manifest = {"format_version": version, "run_id": "newer", "class_names": ["a", "b"],
                "config": {"data": str(tmp_path / "data"), "models": [MODEL], "out": str(tmp_path / "artifacts")},
                "models": {MODEL: {"status": "running"}}}
    (run_dir / art.MANIFEST).write_text(json.dumps(manifest))
    before = (run_dir / art.MANIFEST).read_bytes()
    assert cli.main(["--resume", str(run_dir)]) == 2
    assert message in capsys.readouterr().err
    assert (run_dir / art.MANIFEST).read_bytes() == before and sorted(run_dir.iterdir()) == [run_dir / art.MANIFEST]


# --- 5. the backup itself: phases, torn files, Keras' plateau rules ------------------------------


def test_replayed_plateau_state_matches_keras_callbacks_epoch_by_epoch():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    # 0.79995 beats 0.8 for early stopping (min_delta 0), not for the plateau callback (1e-4).
    val_losses = [1.0, 0.8, 0.79995, 0.9, 0.7, math.nan, 0.75, 0.71, 0.72, 0.73, 0.74]
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-7)
    template = (keras.callbacks.EarlyStopping(monitor="val_loss", patience=4),
                keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-7))
    for callback in (stopping, reduce_lr):
        callback.set_model(model)
        callback.on_train_begin()
    rates, reductions = [], 0
    for epoch, value in enumerate(val_losses):
        before = float(model.optimizer.learning_rate)
        stopping.on_epoch_end(epoch, {"val_loss": value})
        reduce_lr.on_epoch_end(epoch, {"val_loss": value})
        rates.append(float(model.optimizer.learning_rate))
        reductions += rates[-1] < before
        state = backup.replay_plateau(val_losses[: epoch + 1], rates, *template)
        assert (state.best_index, state.wait) == (stopping.best_epoch, stopping.wait)
        assert state.stopped == model.stop_training
        assert state.best == stopping.best and (state.lr_best, state.lr_wait) == (reduce_lr.best, reduce_lr.wait)
        if model.stop_training:
            break
    assert model.stop_training and epoch == 8 and stopping.best_epoch == 4 and reductions == 3


def two_phases(spec, weights):
    """simple_cnn trained in two phases, as a pretrained backbone is (head, then fine-tuning)."""
    return [(train.PHASE_HEAD, 1e-3, True), (train.PHASE_FINE_TUNE, 3e-4, True)]


def test_a_second_phase_interrupted_continues_without_training_the_first_again(tmp_path, monkeypatch):
    from bt_core.data.dataset import load_dataset

    monkeypatch.setattr(train, "_phases", two_phases)
    dataset = load_dataset(make_pool(tmp_path / "data", per_class=8, size=32), image_size=32, seed=1)
    folder = tmp_path / "models" / MODEL / "backup"
    written: list[pd.DataFrame] = []
    events: list[tuple[str, int]] = []

    def fit(history: pd.DataFrame):
        keras.utils.set_random_seed(1)
        model = create_model(MODEL, 4, input_size=32)
        recovery = Recovery(folder, history, written.append)
        return model, train_model(model, get_spec(MODEL), dataset.arrays["train"], dataset.arrays["val"], epochs=2,
                                  num_classes=4, batch_size=16, seed=1, recovery=recovery,
                                  progress=lambda e: events.append((e["phase"], e["epoch"])))

    real = StopOnNaNLoss.on_batch_end

    def ctrl_c_in_fine_tuning_epoch_2(self, batch, logs=None):
        real(self, batch, logs)
        if self.first_epoch > 0 and self.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(StopOnNaNLoss, "on_batch_end", ctrl_c_in_fine_tuning_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fit(pd.DataFrame(columns=art.HISTORY_COLUMNS))
    head_epochs = sum(1 for phase, _ in events if phase == train.PHASE_HEAD)
    assert events[-1] == (train.PHASE_FINE_TUNE, head_epochs + 1)  # one fine-tuning epoch finished
    assert json.loads((folder / backup.PHASES_FILE).read_text())["phases"][0]["phase"] == train.PHASE_HEAD
    interrupted = written[-1]

    monkeypatch.setattr(StopOnNaNLoss, "on_batch_end", real)
    events.clear()
    model, result = fit(interrupted)
    assert {phase for phase, _ in events} == {train.PHASE_FINE_TUNE}  # the head phase is not trained again
    assert events[0][1] == head_epochs + 2 and result.restored_epochs == head_epochs + 1
    assert result.history["epoch"].tolist() == list(range(1, result.epochs_run + 1))
    assert result.history["phase"].tolist()[:head_epochs] == [train.PHASE_HEAD] * head_epochs
    pd.testing.assert_frame_equal(result.history.iloc[: head_epochs + 1], interrupted, check_dtype=False)
    assert result.best_epoch == 1 + int(np.nanargmin(result.history["val_loss"].to_numpy()))


def test_a_kill_after_the_last_epoch_trains_no_more_and_keeps_the_best_weights(tmp_path, monkeypatch):
    from bt_core.data.dataset import load_dataset

    dataset = load_dataset(make_pool(tmp_path / "data", per_class=8, size=32), image_size=32, seed=1)
    folder = tmp_path / "backup"
    written: list[pd.DataFrame] = []

    def fit(model, history: pd.DataFrame, events: list):
        return train_model(model, get_spec(MODEL), dataset.arrays["train"], dataset.arrays["val"], epochs=3,
                           num_classes=4, batch_size=16, seed=1, recovery=Recovery(folder, history, written.append),
                           progress=events.append)

    def killed(*args):
        raise KeyboardInterrupt  # after every epoch was backed up, before the phase was recorded

    monkeypatch.setattr(train, "finish_phase", killed)
    interrupted = create_model(MODEL, 4, input_size=32)
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, pd.DataFrame(), [])
    best_weights = interrupted.get_weights()  # early stopping had put the best epoch's weights back
    monkeypatch.undo()
    events: list = []
    resumed = create_model(MODEL, 4, input_size=32)
    result = fit(resumed, written[-1], events)
    assert events == [] and result.restored_epochs == 3 and result.epochs_run == 3
    assert result.best_epoch == 1 + int(np.argmin(written[-1]["val_loss"].to_numpy()))
    for resumed_weights, weights in zip(resumed.get_weights(), best_weights, strict=True):
        np.testing.assert_array_equal(resumed_weights, weights)


def keras_backup(folder: Path, epoch: int, weights_after: bool = False) -> None:
    """A BackupAndRestore folder with ``epoch`` saved; ``weights_after``: torn, the weights
    rewritten after the epoch count (a kill in the middle of a save)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not weights_after:
        with h5py.File(folder / backup.KERAS_WEIGHTS, "w") as handle:
            handle["vars"] = np.zeros(2)
    time.sleep(0.02)
    (folder / backup.KERAS_METADATA).write_text(json.dumps({"epoch": epoch, "batch": 0}))
    if weights_after:
        time.sleep(0.02)
        (folder / backup.KERAS_WEIGHTS).write_bytes(b"\x89HDF half")


def rows(count: int, phase: str = "scratch") -> pd.DataFrame:
    return pd.DataFrame([[e, phase, 1.0, 0.5, 1.0 - e / 10, 0.5, 1e-3] for e in range(1, count + 1)],
                        columns=art.HISTORY_COLUMNS)


def restored(folder: Path, history: pd.DataFrame, epochs: int = 4) -> backup.Restored:
    recovery = Recovery(folder, history, lambda table: None)
    return backup.restore(recovery, ["scratch"], epochs, *train._plateau_callbacks(get_spec(MODEL)))


def test_history_written_before_the_backup_is_trimmed_to_the_backed_up_epochs(tmp_path):
    keras_backup(tmp_path / "scratch", epoch=2)
    state = restored(tmp_path, rows(3))  # killed after epoch 3's row, before its backup
    assert [row["epoch"] for row in state.rows] == [1, 2] and state.epochs_done == 2 and state.notes == ()
    assert state.plateau.best_index == 1 and state.best_file is None  # the best is the latest


@pytest.mark.parametrize("make, history_rows, note", [
    (lambda f: keras_backup(f, epoch=2, weights_after=True), 2, "was cut off while its weights were written"),
    (lambda f: (f.mkdir(), (f / backup.KERAS_METADATA).write_text('{"ep')), 2, "is incomplete (JSONDecodeError)"),
    (lambda f: keras_backup(f, epoch=3), 2, "history.csv holds 2 epoch(s) of phase scratch, its backup 3"),
    (lambda f: keras_backup(f, epoch=9), 9, "counts 9 epochs, outside 1..4"),
])
def test_a_torn_or_inconsistent_backup_restarts_its_phase_with_a_note(tmp_path, make, history_rows, note):
    make(tmp_path / "scratch")
    state = restored(tmp_path, rows(history_rows))
    assert state.rows == () and state.epochs_done == 0 and state.plateau is None
    assert len(state.notes) == 1 and note in state.notes[0] and state.notes[0].endswith("phase scratch starts over")
    assert not (tmp_path / "scratch").exists()  # so BackupAndRestore cannot restore it either


def test_a_best_epoch_before_the_latest_needs_its_weights_file(tmp_path):
    history = rows(3)
    history.loc[2, "val_loss"] = 5.0  # epoch 3 worse than epoch 2: the best is epoch 2, not the latest
    keras_backup(tmp_path / "scratch", epoch=3)
    assert "the best weights of phase scratch (epoch 2) are missing" in restored(tmp_path, history).notes[0]
    keras_backup(tmp_path / "scratch", epoch=3)
    backup.save_weights(tmp_path / backup.best_weights_name("scratch", 2), [np.ones(3)])
    (tmp_path / backup.best_weights_name("scratch", 1)).write_bytes(b"stale")
    state = restored(tmp_path, history)
    assert state.notes == () and state.best_file == tmp_path / backup.best_weights_name("scratch", 2)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [backup.best_weights_name("scratch", 2)]


def test_a_history_that_does_not_fit_the_finished_phases_starts_the_model_over(tmp_path):
    folder = tmp_path / "backup"
    backup.finish_phase(folder, backup.FinishedPhase("scratch", 3, 0.7, 3), [np.ones(2)], ())
    assert restored(folder, rows(3)).finished[0].epochs == 3  # whole: nothing to train
    state = restored(folder, rows(2))
    assert state.finished == () and state.rows == ()
    assert state.notes == ("history.csv does not hold the 3 epoch(s) of finished phase scratch: the model starts over",)
    assert not folder.exists()
