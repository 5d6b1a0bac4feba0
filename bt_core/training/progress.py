"""What the command line shows while a zoo trains: one line per epoch with an estimate of the
time left, and inside each epoch a progress bar (a terminal) or a line every ~30 s (a log file).

Lines are INFO records of the ``bt_core.training.progress`` logger (the command line shows INFO
on stderr; ``--quiet`` drops them, and the bar with them), a failed model's a WARNING. The bar is
drawn on stderr only when it is a terminal, redrawn in place with a carriage return; written to a
file or a pipe (CI, ``| tee``) there are no redraws, only lines.

Estimates are measured, never bounds: a model's time left comes from its own steps per second in
the current phase (the first batch of a phase, which compiles, is not counted) and the
validation time of its last epoch, and assumes every remaining epoch runs (early stopping may
end sooner; a later phase may run faster or slower). Models not started yet have no
measurement, so the zoo's time left names how many are still to come instead of guessing.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import keras

_log = logging.getLogger(__name__)

FAILED = "FAILED"  # the status zoo.py reports a model that raised with
LOG_EVERY_S = 30.0  # not a terminal: one in-epoch line at most this often
REDRAW_EVERY_S = 0.1  # a terminal: the bar is redrawn at most this often
BAR_WIDTH = 16
CLEAR_LINE = "\r\x1b[K"
UNKNOWN = "unknown"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def about(seconds: float | None) -> str:
    """An estimate in words: ``about 0:01:05`` or ``unknown``."""
    return UNKNOWN if seconds is None else f"about {format_duration(seconds)}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass
class PhaseTiming:
    """The measured speed of the phase that is training: train steps and the seconds they
    took (the compiling first batch left out), the last epoch's validation seconds."""

    steps_per_epoch: int | None = None
    timed_steps: int = 0
    timed_seconds: float = 0.0
    validation_seconds: float | None = None

    def steps_per_second(self) -> float | None:
        if self.timed_steps == 0 or self.timed_seconds <= 0:
            return None
        return self.timed_steps / self.timed_seconds

    def epoch_seconds(self) -> float | None:
        """One whole epoch (train steps and validation) at the measured speed."""
        rate = self.steps_per_second()
        if rate is None or self.steps_per_epoch is None:
            return None
        return self.steps_per_epoch / rate + (self.validation_seconds or 0.0)


class ZooProgress:
    """Which model, which epoch, how far inside the epoch, and estimates of the time left.

    Call it (or :meth:`epoch`) with the train module's per-epoch event; :meth:`batch_callback`
    is the Keras callback that reports each batch. ``clock`` (seconds) and ``stream`` (where the
    bar goes, default the stderr of the moment) are for tests; ``interactive``: draw a bar
    (default: when the stream is a terminal). Models in ``done`` (finished by an earlier session
    of a resumed run) are not counted.
    """

    def __init__(self, model_names: list[str], epochs_per_phase: int, *,
                 clock: Callable[[], float] = time.perf_counter, stream: TextIO | None = None,
                 interactive: bool | None = None):
        self.model_names = list(model_names)
        self.epochs_per_phase = epochs_per_phase
        self.clock = clock
        self._stream = stream
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.current = ""
        self.current_index = 0
        self.phases_total = 1
        self.phase_number = 1
        self.model_started = 0.0
        self.epoch_seconds: list[float] = []
        self.done: set[str] = set()
        self.timing = PhaseTiming()
        self.epoch_number = 0  # 1-based epoch of the phase being trained
        self.compiled = False  # the phase's first batch (which compiles) has run
        self.steps_done = 0
        self.last_batch_at = 0.0
        self.validation_started: float | None = None
        self.last_line_at = 0.0
        self.last_draw_at = -REDRAW_EVERY_S
        self.bar_shown = False
        self._batch_lock = threading.Lock()  # under JAX Keras may report batches from worker threads

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def __call__(self, event: dict) -> None:
        self.epoch(event)

    # ------------------------------------------------------------------ lines

    def say(self, text: str, level: int = logging.INFO) -> None:
        self.clear_bar()
        _log.log(level, text)

    def prefix(self) -> str:
        return f"[{self.current_index + 1}/{len(self.model_names)}] {self.current}"

    def start_model(self, index: int, name: str, phases: int) -> None:
        self.current, self.current_index, self.phases_total = name, index, phases
        self.epoch_seconds = []
        self.model_started = self.clock()
        self.say(f"{self.prefix()}: training ({phases} phase(s), up to {self.epochs_per_phase} epochs each)")

    def skip_model(self, index: int, name: str, reason: str) -> None:
        self.done.add(name)
        self.say(f"[{index + 1}/{len(self.model_names)}] {name}: skipped ({reason})")

    def finish_model(self, name: str, status: str, detail: str = "") -> None:
        seconds = self.clock() - self.model_started
        self.done.add(name)
        self.say(f"[{self.current_index + 1}/{len(self.model_names)}] {name}: {status} in "
                 f"{format_duration(seconds)}{'  ' + detail if detail else ''}",
                 logging.WARNING if status == FAILED else logging.INFO)

    # ------------------------------------------------------------------ estimates

    def models_not_started(self) -> int:
        return sum(1 for name in self.model_names[self.current_index + 1:] if name not in self.done)

    def fallback_epoch_seconds(self) -> float | None:
        """Without batch timings (a hook fed only epoch events): the mean epoch, the first
        (compiling) one left out once there are others."""
        seconds = self.epoch_seconds[1:] or self.epoch_seconds
        return sum(seconds) / len(seconds) if seconds else None

    def model_seconds_left(self, phase_epoch: int, in_epoch_left: float = 0.0) -> float | None:
        """This model's time left after ``phase_epoch`` whole epochs of the current phase (and
        ``in_epoch_left`` seconds of the epoch under way); None before anything is measured."""
        per_epoch = self.timing.epoch_seconds() or self.fallback_epoch_seconds()
        if per_epoch is None:
            return None
        later_phases = self.phases_total - self.phase_number
        epochs_left = (self.epochs_per_phase - phase_epoch) + later_phases * self.epochs_per_phase
        return in_epoch_left + per_epoch * max(0, epochs_left)

    def estimate_words(self, model_left: float | None) -> str:
        """``model left about 0:00:12 (estimate)  zoo left about 0:00:12 + 2 models not started
        (unknown)``; the zoo part is left out when no model is waiting."""
        model = f"model left {about(model_left)}{' (estimate)' if model_left is not None else ''}"
        waiting = self.models_not_started()
        if waiting == 0:
            return model
        return f"{model}  zoo left {about(model_left)} + {plural(waiting, 'model')} not started (unknown)"

    # ------------------------------------------------------------------ events from training

    def phase_started(self, phase: str, phase_names: list[str], steps: int | None) -> None:
        self.phase_number = phase_names.index(phase) + 1 if phase in phase_names else 1
        self.timing = PhaseTiming(steps_per_epoch=steps)
        self.epoch_number, self.compiled = 0, False
        batches = f"{steps} batches an epoch" if steps else "batches an epoch unknown"
        self.say(f"{self.prefix()} {phase}: compiling / first epoch ({batches}) ...")

    def epoch_started(self, epoch_number: int) -> None:
        self.epoch_number = epoch_number
        self.steps_done = 0
        self.validation_started = None
        self.last_batch_at = self.last_line_at = self.clock()

    def batch_done(self, phase: str, steps_done: int) -> None:
        with self._batch_lock:
            now = self.clock()
            if steps_done <= self.steps_done:  # reported late, out of order: already counted
                return
            if self.compiled:  # the first batch of a phase includes compiling: not timed
                self.timing.timed_steps += steps_done - self.steps_done
                self.timing.timed_seconds += now - self.last_batch_at
            self.compiled = True
            self.steps_done, self.last_batch_at = steps_done, now
            self.show_in_epoch(phase, now)

    def validation_began(self) -> None:
        self.validation_started = self.clock()

    def epoch(self, event: dict) -> None:
        """Receives the train module's per-epoch event."""
        now = self.clock()
        if self.validation_started is not None:
            self.timing.validation_seconds = now - self.validation_started
            self.validation_started = None
        self.epoch_seconds.append(event["seconds"])
        phase_names = event.get("phase_names") or []
        if event["phase"] in phase_names:
            self.phase_number = phase_names.index(event["phase"]) + 1
        logs = event["logs"]
        model_left = self.model_seconds_left(event["phase_epoch"])
        scores = "  ".join(
            f"{key} {logs[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in logs
        )
        rate = self.timing.steps_per_second()
        speed = f" ({rate:.1f} steps/s)" if rate is not None else ""
        self.say(f"{self.prefix()} {event['phase']} epoch {event['phase_epoch']}/{event['phase_epochs']}  {scores}  "
                 f"{event['seconds']:.1f}s{speed}  {self.estimate_words(model_left)}")

    # ------------------------------------------------------------------ inside an epoch

    def epoch_seconds_left(self) -> float | None:
        rate = self.timing.steps_per_second()
        steps = self.timing.steps_per_epoch
        if rate is None or steps is None:
            return None
        return max(0, steps - self.steps_done) / rate + (self.timing.validation_seconds or 0.0)

    def in_epoch_text(self, phase: str, bar: bool) -> str:
        steps = self.timing.steps_per_epoch
        rate = self.timing.steps_per_second()
        epoch = f"{self.epoch_number}/{self.epochs_per_phase}"
        left = self.epoch_seconds_left()
        speed = f"{rate:.1f} steps/s" if rate is not None else "compiling / first batches"
        if bar:  # compact: it must fit a terminal line
            filled = min(BAR_WIDTH, round(BAR_WIDTH * self.steps_done / steps)) if steps else 0
            share = f"{self.steps_done}/{steps}" if steps else f"{self.steps_done}"
            return (f"{self.prefix()} {phase} {epoch} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share}  "
                    f"{speed}  epoch left {about(left)}")
        head = f"{self.prefix()} {phase} epoch {epoch}"
        share = (f"{self.steps_done}/{steps} batches ({self.steps_done / steps:.0%})" if steps
                 else f"{self.steps_done} batches")
        return f"{head}: {share}, {speed}, epoch left {about(left)}{' (estimate)' if left is not None else ''}"

    def show_in_epoch(self, phase: str, now: float) -> None:
        if not _log.isEnabledFor(logging.INFO):
            return
        if self.interactive:
            if now - self.last_draw_at >= REDRAW_EVERY_S:
                self.draw_bar(self.in_epoch_text(phase, bar=True))
                self.last_draw_at = now
        elif now - self.last_line_at >= LOG_EVERY_S:
            self.last_line_at = now
            _log.info(self.in_epoch_text(phase, bar=False))

    def draw_bar(self, text: str) -> None:
        width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
        self.stream.write(CLEAR_LINE + text[:width])
        self.stream.flush()
        self.bar_shown = True

    def clear_bar(self) -> None:
        if self.bar_shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self.bar_shown = False

    def batch_callback(self, phase: str, phase_names: list[str]) -> keras.callbacks.Callback:
        """The Keras callback reporting this phase's batches to this display."""
        return BatchProgress(self, phase, phase_names)


class BatchProgress(keras.callbacks.Callback):
    """Reports a phase's start, each epoch's start, each train batch and the start of each
    validation to a :class:`ZooProgress`."""

    # Safe off the training thread (ZooProgress locks its batch count), so under JAX Keras keeps
    # dispatching batch callbacks asynchronously instead of waiting for every step's result.
    async_safe = True

    def __init__(self, progress: ZooProgress, phase: str, phase_names: list[str]):
        super().__init__()
        self.progress = progress
        self.phase = phase
        self.phase_names = list(phase_names)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.progress.phase_started(self.phase, self.phase_names, (self.params or {}).get("steps"))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.progress.epoch_started(epoch + 1)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.progress.batch_done(self.phase, batch + 1)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.progress.validation_began()
