"""A one-line-per-epoch progress display across the whole zoo, with time left, logged to the
``bt_core.training.progress`` logger (the command line shows INFO on stderr; ``--quiet`` drops it)."""

from __future__ import annotations

import logging
import time

_log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


FAILED = "FAILED"  # the status zoo.py reports a model that raised with


class ZooProgress:
    """Logs which model, which epoch, and an upper-bound estimate of the time left.

    Estimates assume every remaining epoch runs (early stopping can only make it shorter);
    models not started yet are assumed to take as long as the finished ones on average.
    Models in ``done`` (finished by an earlier session of a resumed run) are not counted.
    Lines are INFO records, a failed model's a WARNING.
    """

    def __init__(self, model_names: list[str], epochs_per_phase: int):
        self.model_names = list(model_names)
        self.epochs_per_phase = epochs_per_phase
        self.finished_seconds: list[float] = []
        self.current = ""
        self.current_index = 0
        self.phases_total = 1
        self.model_started = 0.0
        self.epoch_seconds: list[float] = []
        self.done: set[str] = set()

    def say(self, text: str, level: int = logging.INFO) -> None:
        _log.log(level, text)

    def start_model(self, index: int, name: str, phases: int) -> None:
        self.current, self.current_index, self.phases_total = name, index, phases
        self.epoch_seconds = []
        self.model_started = time.perf_counter()
        self.say(f"[{index + 1}/{len(self.model_names)}] {name}: training ({phases} phase(s), "
                 f"up to {self.epochs_per_phase} epochs each)")

    def model_seconds_left(self, phase_epoch: int, phase_number: int) -> float:
        if not self.epoch_seconds:
            return 0.0
        per_epoch = sum(self.epoch_seconds) / len(self.epoch_seconds)
        epochs_left = (self.epochs_per_phase - phase_epoch) + (self.phases_total - phase_number) * self.epochs_per_phase
        return per_epoch * epochs_left

    def zoo_seconds_left(self, model_left: float) -> float:
        models_after = sum(1 for name in self.model_names[self.current_index + 1 :] if name not in self.done)
        if self.finished_seconds:
            per_model = sum(self.finished_seconds) / len(self.finished_seconds)
        else:
            per_model = time.perf_counter() - self.model_started + model_left
        return model_left + models_after * per_model

    def epoch(self, event: dict) -> None:
        """Receives the train module's per-epoch event."""
        self.epoch_seconds.append(event["seconds"])
        phase_names = event.get("phase_names") or []
        phase_number = phase_names.index(event["phase"]) + 1 if event["phase"] in phase_names else 1
        logs = event["logs"]
        model_left = self.model_seconds_left(event["phase_epoch"], phase_number)
        scores = "  ".join(
            f"{key} {logs[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in logs
        )
        self.say(
            f"[{self.current_index + 1}/{len(self.model_names)}] {self.current} {event['phase']} "
            f"epoch {event['phase_epoch']}/{event['phase_epochs']}  {scores}  {event['seconds']:.1f}s  "
            f"model left <= {format_duration(model_left)}  zoo left <= {format_duration(self.zoo_seconds_left(model_left))}"
        )

    def skip_model(self, index: int, name: str, reason: str) -> None:
        self.done.add(name)
        self.say(f"[{index + 1}/{len(self.model_names)}] {name}: skipped ({reason})")

    def finish_model(self, name: str, status: str, detail: str = "") -> None:
        seconds = time.perf_counter() - self.model_started
        self.finished_seconds.append(seconds)
        self.say(f"[{self.current_index + 1}/{len(self.model_names)}] {name}: {status} in "
                 f"{format_duration(seconds)}{'  ' + detail if detail else ''}",
                 logging.WARNING if status == FAILED else logging.INFO)
