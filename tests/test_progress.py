"""The training display (bt_core.training.progress) on a fake clock: measured estimates worded
as estimates, a bar on a terminal, and no redraws in a log file."""

import io
import logging

import pytest

from bt_core.cli import logs
from bt_core.training.progress import LOG_EVERY_S, ZooProgress, about


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def plain_logging():
    logs.configure_logging()
    yield
    logs.configure_logging()


def epoch_event(phase_epoch: int, seconds: float, epochs: int = 3) -> dict:
    return {"phase": "scratch", "phase_names": ["scratch"], "phase_epoch": phase_epoch, "phase_epochs": epochs,
            "seconds": seconds, "logs": {"loss": 1.0, "accuracy": 0.5}}


def train_epoch(progress: ZooProgress, clock: FakeClock, epoch: int, steps: int, compile_s: float,
                step_s: float, validation_s: float, epochs: int = 3) -> None:
    """What Keras reports for one epoch: its start, each batch, validation, its end."""
    started = clock.now
    progress.epoch_started(epoch)
    for step in range(1, steps + 1):
        clock.advance(compile_s if step == 1 and epoch == 1 else step_s)
        progress.batch_done("scratch", step)
    progress.validation_began()
    clock.advance(validation_s)
    progress.epoch(epoch_event(epoch, clock.now - started, epochs))


def test_estimates_come_from_the_measured_steps_and_say_they_are_estimates(caplog):
    clock = FakeClock()
    progress = ZooProgress(["simple_cnn", "cnn_bn", "custom_cnn"], epochs_per_phase=3, clock=clock,
                           interactive=False)
    with caplog.at_level(logging.INFO, logger="bt_core"):
        progress.start_model(0, "simple_cnn", phases=1)
        progress.phase_started("scratch", ["scratch"], steps=10)
        # 10 batches: the first compiles for 60 s, the others take 0.5 s; validation 2 s.
        train_epoch(progress, clock, 1, steps=10, compile_s=60.0, step_s=0.5, validation_s=2.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[1] == "[1/3] simple_cnn scratch: compiling / first epoch (10 batches an epoch) ..."
    # 9 timed steps in 4.5 s: 2 steps/s; an epoch is 10 / 2 + 2 = 7 s; 2 epochs left: 14 s. The
    # compiling batch is not taken as the speed (the old estimate said <= 0:02:13 here).
    assert lines[-1] == ("[1/3] simple_cnn scratch epoch 1/3  loss 1.0000  accuracy 0.5000  66.5s (2.0 steps/s)  "
                         "model left about 0:00:14 (estimate)  zoo left about 0:00:14 + 2 models not started "
                         "(unknown)")
    assert "<=" not in "\n".join(lines)


def test_a_slower_second_epoch_changes_the_estimate_and_the_last_model_has_no_zoo_part(caplog):
    clock = FakeClock()
    progress = ZooProgress(["a", "b"], epochs_per_phase=3, clock=clock, interactive=False)
    progress.done.add("a")  # finished by an earlier session
    progress.start_model(1, "b", phases=1)
    progress.phase_started("scratch", ["scratch"], steps=4)
    train_epoch(progress, clock, 1, steps=4, compile_s=10.0, step_s=1.0, validation_s=1.0)
    with caplog.at_level(logging.INFO, logger="bt_core"):
        train_epoch(progress, clock, 2, steps=4, compile_s=0.0, step_s=3.0, validation_s=1.0)
    # 3 steps in 3 s, then 4 steps in 12 s: 7 / 15 steps/s; one epoch left: 4 * 15 / 7 + 1 = 9.6 s (this one took 13 s).
    assert caplog.records[-1].getMessage().endswith("13.0s (0.5 steps/s)  model left about 0:00:10 (estimate)")


def test_before_any_measurement_the_time_left_is_unknown_and_later_phases_count():
    clock = FakeClock()
    progress = ZooProgress(["resnet50"], epochs_per_phase=2, clock=clock, interactive=False)
    progress.start_model(0, "resnet50", phases=2)
    progress.phase_started("head", ["head", "fine_tune"], steps=5)
    assert progress.model_seconds_left(0) is None
    assert progress.estimate_words(None) == "model left unknown"
    progress.epoch_started(1)
    clock.advance(30.0)
    progress.batch_done("head", 1)  # compiling: still nothing measured
    assert progress.model_seconds_left(0) is None
    clock.advance(2.0)
    progress.batch_done("head", 2)
    # 0.5 steps/s, 5 steps an epoch: 10 s; 1 epoch of this phase + 2 of fine_tune after this one.
    assert progress.model_seconds_left(1) == pytest.approx(30.0)
    assert about(30.0) == "about 0:00:30" and about(None) == "unknown"


def test_an_event_without_batch_timings_falls_back_to_the_epochs_after_the_first():
    progress = ZooProgress(["a"], epochs_per_phase=4, interactive=False)
    progress.start_model(0, "a", phases=1)
    for epoch, seconds in [(1, 50.0), (2, 4.0), (3, 6.0)]:
        progress.epoch(epoch_event(epoch, seconds, epochs=4))
    assert progress.model_seconds_left(3) == pytest.approx(5.0)


def test_a_log_file_gets_a_line_every_30_seconds_and_no_redraws(capsys):
    clock = FakeClock()
    stream = io.StringIO()
    progress = ZooProgress(["a"], epochs_per_phase=1, clock=clock, stream=stream)
    assert progress.interactive is False  # a StringIO is no terminal
    progress.start_model(0, "a", phases=1)
    progress.phase_started("scratch", ["scratch"], steps=100)
    train_epoch(progress, clock, 1, steps=100, compile_s=5.0, step_s=1.0, validation_s=1.0, epochs=1)
    err = capsys.readouterr().err
    assert stream.getvalue() == "" and "\r" not in err
    in_epoch = [line for line in err.splitlines() if "batches (" in line]
    # 104 s of batches: a line at 30, 60 and 90 s, each a whole line.
    assert len(in_epoch) == 3 == int((5 + 99) // LOG_EVERY_S)
    assert in_epoch[0] == ("[1/1] a scratch epoch 1/1: 26/100 batches (26%), 1.0 steps/s, "
                           "epoch left about 0:01:14 (estimate)")


def test_a_terminal_gets_a_bar_redrawn_in_place_and_cleared_before_each_line(capsys):
    clock = FakeClock()
    terminal = Terminal()
    progress = ZooProgress(["a"], epochs_per_phase=1, clock=clock, stream=terminal)
    assert progress.interactive is True
    progress.start_model(0, "a", phases=1)
    progress.phase_started("scratch", ["scratch"], steps=4)
    train_epoch(progress, clock, 1, steps=4, compile_s=5.0, step_s=1.0, validation_s=1.0, epochs=1)
    drawn = terminal.getvalue()
    assert drawn.count("\r\x1b[K[1/1] a scratch 1/1 [") == 4  # one redraw per batch (>= 0.1 s apart)
    assert "[" + "#" * 16 + "] 4/4  1.0 steps/s  epoch left about 0:00:00" in drawn
    assert "[" + "#" * 4 + "." * 12 + "] 1/4  compiling / first batches  epoch left unknown" in drawn
    assert drawn.endswith("\r\x1b[K")  # cleared before the epoch's line was logged
    assert "batches (" not in capsys.readouterr().err  # the log lines carry no bar


def test_quiet_shows_no_bar_and_no_lines(capsys):
    logs.configure_logging(quiet=True)
    clock = FakeClock()
    terminal = Terminal()
    progress = ZooProgress(["a"], epochs_per_phase=1, clock=clock, stream=terminal)
    progress.start_model(0, "a", phases=1)
    progress.phase_started("scratch", ["scratch"], steps=3)
    train_epoch(progress, clock, 1, steps=3, compile_s=100.0, step_s=40.0, validation_s=1.0, epochs=1)
    assert terminal.getvalue() == "" and capsys.readouterr().err == ""


def test_a_batch_reported_late_from_another_thread_is_not_counted_twice():
    clock = FakeClock()
    progress = ZooProgress(["a"], epochs_per_phase=1, clock=clock, interactive=False)
    progress.start_model(0, "a", phases=1)
    progress.phase_started("scratch", ["scratch"], steps=10)
    progress.epoch_started(1)
    for step, at in [(1, 5.0), (2, 1.0), (4, 2.0), (3, 0.5)]:  # 3 arrives after 4 (async dispatch)
        clock.advance(at)
        progress.batch_done("scratch", step)
    assert (progress.steps_done, progress.timing.timed_steps, progress.timing.timed_seconds) == (4, 3, 3.0)
