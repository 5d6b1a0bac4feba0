"""The Ray scheduler of a study (``--scheduler ray``): each cell is one Ray task.

A task whose worker dies (a killed process, a lost node) is retried by Ray up to
``max_retries`` times, and the retry resumes the cell's run folder, since ``run_cell`` resumes
by design. A Python exception is not retried: ``run_cell`` already returns it as a failed cell
with its reason. Outcomes reach ``on_outcome`` in the driver as each task finishes, so only the
driver writes study.json. On a cluster the study folder (and the data) must be on a file system
every node sees at the same path, and the package must be installed on every node
(docs/studies.md, "On a Ray cluster").
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

# [resources] keys and their defaults; num_cpus_total only sizes a local cluster started here.
TASK_DEFAULTS = {"num_cpus": 1, "num_gpus": 0, "max_retries": 3}
RESOURCE_KEYS = (*TASK_DEFAULTS, "num_cpus_total")
# Passed to every task so that each cell trains under the driver's Keras backend, whatever the
# environment its node's `ray start` had.
BACKEND_ENV = "KERAS_BACKEND"
# Tests only: each attempt writes its worker's pid to <folder>/<cell_id>.pid, so a test can kill it.
PID_DIR_ENV = "BT_STUDY_RAY_PID_DIR"
# runs/.attempts/<cell_id>/<n>: one marker per attempt (list_runs skips dot folders).
ATTEMPTS_FOLDER = ".attempts"
INSTALL_HINT = "pip install 'brain-tumor-zoo[ray]'"

CellFunction = Callable[[str, str], Any]


def attempts_dir(study_dir: str | Path, cell_id: str) -> Path:
    """The folder of a cell's attempt markers (one file per attempt started on a worker)."""
    return Path(study_dir) / "runs" / ATTEMPTS_FOLDER / cell_id


def count_attempts(study_dir: str | Path, cell_id: str) -> int:
    """How many attempts of the cell a Ray worker has started, over every scheduling of the study."""
    folder = attempts_dir(study_dir, cell_id)
    if not folder.is_dir():
        return 0
    return sum(1 for path in folder.iterdir() if path.name.isdigit())


def task_options(resources: dict[str, Any]) -> dict[str, Any]:
    """The ``ray.remote`` options of every cell's task from the study's [resources]; ValueError
    naming the key when one is unknown or out of range."""
    unknown = sorted(set(resources) - set(RESOURCE_KEYS))
    if unknown:
        raise ValueError(f"unknown [resources] key {unknown[0]!r}; valid: {', '.join(RESOURCE_KEYS)}")
    settings = {**TASK_DEFAULTS, **{key: value for key, value in resources.items() if key in TASK_DEFAULTS}}
    for key in ("num_cpus", "num_gpus"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"[resources] {key} must be a number >= 0, got {value!r}")
    total = resources.get("num_cpus_total")
    for key, value, least in (("max_retries", settings["max_retries"], 0), ("num_cpus_total", total, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ValueError(f"[resources] {key} must be a whole number >= {least}, got {value!r}")
    # retry_exceptions=False: only system failures (a dead worker or node) are retried.
    return {**settings, "retry_exceptions": False}


def run_on_ray(study_dir: str | Path, cell_ids: list[str], resources: dict[str, Any],
               on_outcome: Callable[[Any], None], address: str | None = None, *,
               cell_function: CellFunction | None = None) -> None:
    """Run each cell as a Ray task and hand every outcome to ``on_outcome`` as it finishes.

    Connects to the cluster at ``address``, or starts a local one (``num_cpus_total`` CPUs,
    default all) unless Ray is already initialised in this process. A cell whose task still
    fails after its retries becomes a failed outcome with a one-line reason; the others go on.
    ``cell_function`` (default ``bt_core.runs.study.run_cell``) lets tests schedule stand-ins.
    """
    options = task_options(resources)
    ray = _import_ray()
    from bt_core.runs.study import CellOutcome

    # Workers do not share the driver's working directory: give them an absolute path.
    study_dir = str(Path(study_dir).resolve())
    backend = os.environ.get(BACKEND_ENV)
    if backend:
        options["runtime_env"] = {"env_vars": {BACKEND_ENV: backend}}
    connected_here = not ray.is_initialized()
    if connected_here:
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=resources.get("num_cpus_total") or None)
    try:
        _check_schedulable(ray, options)
        _run_tasks(ray, CellOutcome, study_dir, cell_ids, options, on_outcome, cell_function)
    finally:
        # A local cluster started here stops; from a cluster at an address only this driver
        # disconnects (the cluster runs on). A caller's own Ray session is left alone.
        if connected_here:
            ray.shutdown()


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(f"--scheduler ray needs Ray: {INSTALL_HINT}") from exc
    return ray


def _check_schedulable(ray, options: dict[str, Any]) -> None:
    """ValueError when no live node can ever run a cell's task (Ray would wait forever)."""
    needed = {"CPU": options["num_cpus"], "GPU": options["num_gpus"]}
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    if any(all(have.get(name, 0) >= amount for name, amount in needed.items()) for have in nodes):
        return
    described = ", ".join(f"{have.get('CPU', 0):g} CPUs / {have.get('GPU', 0):g} GPUs" for have in nodes) or "none"
    raise ValueError(f"no node of the Ray cluster has num_cpus={options['num_cpus']:g} and "
                     f"num_gpus={options['num_gpus']:g} for one cell (its nodes: {described})")


def _run_tasks(ray, outcome_type, study_dir: str, cell_ids: list[str], options: dict[str, Any],
               on_outcome: Callable[[Any], None], cell_function: CellFunction | None) -> None:
    task = ray.remote(_attempt_cell)
    pid_dir = os.environ.get(PID_DIR_ENV) or None
    earlier = {cell_id: count_attempts(study_dir, cell_id) for cell_id in cell_ids}
    pending = {}
    for cell_id in cell_ids:
        ref = task.options(name=f"cell {cell_id}", **options).remote(study_dir, cell_id, pid_dir, cell_function)
        pending[ref] = (cell_id, time.perf_counter())
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        cell_id, submitted = pending.pop(ref)
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as exc:
            reason = _failure_reason(ray, exc, options["max_retries"])
            outcome = outcome_type(cell_id, "failed", reason, time.perf_counter() - submitted)
        # At least 1: a task can fail before its worker writes a marker (a bad runtime env).
        attempts = max(1, count_attempts(study_dir, cell_id) - earlier[cell_id])
        on_outcome(replace(outcome, attempts=attempts))


def _failure_reason(ray, exc: Exception, max_retries: int) -> str:
    """One line: the Python error a task raised, or how its worker died after every retry."""
    cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
    if cause is not None:
        return _one_line(f"{type(cause).__name__}: {cause}")
    text = f"{type(exc).__name__}: {exc}"
    died = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.LocalRayletDiedError)
    if isinstance(exc, died):
        tries = "once" if max_retries == 0 else f"on all {max_retries + 1} attempts (max_retries={max_retries})"
        text = f"the Ray worker died {tries}: {text}"
    return _one_line(text)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else "unknown error"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _attempt_cell(study_dir: str, cell_id: str, pid_dir: str | None, cell_function: CellFunction | None):
    """The body of a cell's task, on a worker: mark the attempt, then run the cell."""
    _mark_attempt(study_dir, cell_id)
    if pid_dir:
        pid_file = Path(pid_dir) / f"{cell_id}.pid"
        partial = pid_file.with_name(pid_file.name + ".partial")
        partial.write_text(str(os.getpid()), encoding="utf-8")
        partial.replace(pid_file)  # a test never reads half a pid
    if cell_function is None:
        from bt_core.runs.study import run_cell as cell_function
    return cell_function(study_dir, cell_id)


def _mark_attempt(study_dir: str, cell_id: str) -> int:
    """Create the next marker runs/.attempts/<cell_id>/<n> (exclusively: never two with one n)."""
    folder = attempts_dir(study_dir, cell_id)
    folder.mkdir(parents=True, exist_ok=True)
    record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                         "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    number = count_attempts(study_dir, cell_id) + 1
    while True:
        try:
            descriptor = os.open(folder / str(number), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            number += 1
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as marker:
            marker.write(record + "\n")
        return number
