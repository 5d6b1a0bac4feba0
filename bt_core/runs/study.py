"""Running a study (docs/studies.md): each cell one ordinary run folder under the study's
``runs/``, trained, analysed and evaluated by :func:`run_cell` (resuming what a killed
attempt left), scheduled one after another here (:func:`run_sequentially`) or on Ray
(``bt_core.runs.study_ray``), with every outcome recorded in study.json by the driver
(:func:`run_study`) as it arrives."""

from __future__ import annotations

import importlib
import logging
import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable

from bt_core.artifacts import STATUS_FAILED, evaluation_dir, load_manifest, manifest_path, shortcut_summary_path
from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.study import (
    CELL_DONE,
    CELL_FAILED,
    CellRecord,
    StudyManifest,
    cell_run_dir,
    is_study_folder,
    load_study,
    STUDY_RUNS_DIR,
    write_study_manifest,
    write_study_spec,
)
from bt_core.runs.study_spec import Cell, StudySpec

SCHEDULERS = ("sequential", "ray")
RAY_EXTRA = "pip install 'brain-tumor-zoo[ray]'"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellOutcome:
    cell_id: str
    status: str  # "done" | "failed"
    reason: str | None
    seconds: float
    attempts: int = 1  # attempts started on workers (the Ray scheduler counts retries after a worker died)


OutcomeHook = Callable[[CellOutcome], None]
Scheduler = Callable[[str, list, dict, OutcomeHook], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _tensorflow_backend() -> bool:
    import keras

    return keras.backend.backend() == "tensorflow"


def _is_finished(run_dir: Path) -> bool:
    from bt_core.runs.resume import finished_models

    verdicts = finished_models(run_dir, load_manifest(run_dir))
    return bool(verdicts) and all(problem is None for problem in verdicts.values())


def train_cell(spec: StudySpec, cell: Cell, study_dir: Path) -> Path:
    """The cell's run folder, trained: left alone when finished, resumed when a killed
    attempt left it unfinished, else trained from the start."""
    from bt_core.runs.resume import check_same_experiment
    from bt_core.runs.zoo import run_zoo

    config = spec.cell_config(cell, study_dir)
    run_dir = cell_run_dir(study_dir, cell.cell_id)
    if manifest_path(run_dir).is_file():
        if _is_finished(run_dir):
            _log.info("%s: already trained", cell.cell_id)
            return run_dir
        check_same_experiment(run_dir, config)
        _log.info("%s: resuming its unfinished run", cell.cell_id)
        return run_zoo(config, resume=run_dir)
    if run_dir.exists():  # killed before the run's manifest was written: nothing in it to keep
        shutil.rmtree(run_dir)
    return run_zoo(config)


def _failed_models(run_dir: Path) -> str | None:
    failed = [f"{name}: {entry.error}" for name, entry in load_manifest(run_dir).models.items()
              if entry.status == STATUS_FAILED]
    return "; ".join(failed) or None


def _analyze(run_dir: Path) -> None:
    from bt_core.runs.analyze import analyze_run

    result = analyze_run(run_dir, progress=_log.info)
    for name, reason in result["skipped"].items():
        _log.warning("warning: no maps for %s in %s: %s", name, run_dir, reason)


def _evaluated(run_dir: Path, name: str) -> bool:
    try:
        load_manifest(evaluation_dir(run_dir, name))
    except ArtifactError:
        return False
    return True


def finish_cell(spec: StudySpec, run_dir: Path) -> str | None:
    """The analysis and the evaluations a trained cell still lacks; the failed evaluations' reasons."""
    from bt_core.runs.evaluate import evaluate_run, scoring_failures

    explain = spec.explain and _tensorflow_backend()
    if spec.explain and not explain:
        _log.warning("warning: no analysis of %s: it needs TensorFlow (python train_all.py --explain %s)",
                     run_dir, run_dir)
    if explain and not shortcut_summary_path(run_dir).is_file():
        _analyze(run_dir)
    problems = []
    for name, data, max_per_class in spec.evaluations:
        target = evaluation_dir(run_dir, name)
        evaluated = _evaluated(run_dir, name)
        if not evaluated or scoring_failures(load_manifest(target)):  # a failed scoring is tried again
            evaluate_run(run_dir, data, name, say=_log.info, max_per_class=max_per_class, replace=evaluated)
        problems += [f"evaluation {name}: {model}: {error}"
                     for model, error in scoring_failures(load_manifest(target)).items()]
        if explain and not shortcut_summary_path(target).is_file():
            _analyze(target)
    return "; ".join(problems) or None


def run_cell(study_dir: str, cell_id: str) -> CellOutcome:
    """Train, analyse and evaluate one cell of the study in ``study_dir`` (its spec read from
    study.json), doing only what is not yet done; never writes study.json and never raises
    (but for Ctrl-C): an error is a failed outcome with a one-line reason."""
    started = time.perf_counter()

    def outcome(status: str, reason: str | None = None) -> CellOutcome:
        return CellOutcome(cell_id, status, reason, round(time.perf_counter() - started, 2))

    try:
        study_dir_path = Path(study_dir)
        spec = StudySpec.from_dict(load_study(study_dir_path).spec)
        run_dir = train_cell(spec, spec.cell(cell_id), study_dir_path)
        failed = _failed_models(run_dir)
        if failed:
            return outcome(CELL_FAILED, failed)
        problems = finish_cell(spec, run_dir)
        return outcome(CELL_FAILED, problems) if problems else outcome(CELL_DONE)
    except Exception as exc:  # one cell failing must not stop the study; the reason goes to study.json
        _log.debug("cell %s failed", cell_id, exc_info=True)
        return outcome(CELL_FAILED, one_line(exc))


def run_sequentially(study_dir: str, cell_ids: list[str], resources: dict, on_outcome: OutcomeHook) -> None:
    """The default scheduler: the cells one after another in this process (``resources`` unused)."""
    del resources
    for cell_id in cell_ids:
        on_outcome(run_cell(study_dir, cell_id))


def scheduler_for(name: str, ray_address: str | None = None) -> Scheduler:
    """The scheduler called ``name``; ValueError for an unknown one or Ray not installed."""
    if name == "sequential":
        return run_sequentially
    if name != "ray":
        raise ValueError(f"unknown scheduler {name!r}; valid: {', '.join(SCHEDULERS)}")
    try:
        importlib.import_module("ray")  # only to say what to install when it is missing
    except ImportError:
        raise ValueError(f"--scheduler ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    from bt_core.runs.study_ray import run_on_ray

    return partial(run_on_ray, address=ray_address)


def new_manifest(spec: StudySpec, scheduler: str) -> StudyManifest:
    """Every cell pending; ``run``: the cell's run folder relative to the study folder."""
    cells = tuple(CellRecord(c.cell_id, c.model, c.variant, c.seed, f"{STUDY_RUNS_DIR}/{c.cell_id}")
                  for c in spec.cells())
    return StudyManifest(study_id=spec.study_id, created=_now(), spec=spec.to_dict(), scheduler=scheduler,
                         cells=cells)


def _open_study(spec: StudySpec, study_dir: Path, scheduler: str, resume: bool, say: Callable) -> StudyManifest:
    """The manifest of a new study (folder, study.toml and study.json written) or of the
    existing one it continues (same spec, apart from the resources)."""
    if is_study_folder(study_dir):
        if not resume:
            raise ValueError(f"study {spec.study_id} exists; add --resume to continue it ({study_dir})")
        manifest = load_study(study_dir)
        differing = spec.differences(StudySpec.from_dict(manifest.spec))
        if differing:
            raise ValueError(f"cannot continue study {spec.study_id}: it was started with another spec "
                             f"(differs in {', '.join(differing)}); choose another study id")
        say(f"continuing study {spec.study_id}: {manifest.count(CELL_DONE)} of {len(manifest.cells)} cells done")
        return replace(manifest, spec=spec.to_dict(), scheduler=scheduler)
    if manifest_path(study_dir).is_file():
        raise ValueError(f"{study_dir} holds a run, not a study; choose another study id")
    study_dir.mkdir(parents=True, exist_ok=True)
    write_study_spec(study_dir, spec.to_toml_document())
    return new_manifest(spec, scheduler)


def find_study(spec: StudySpec, out: Path) -> Path:
    """The newest study in ``out`` started with ``spec`` apart from its id (``--resume`` added
    to the flags that started it); ValueError when there is none."""
    from bt_core.artifacts.study import list_studies

    for summary in list_studies(Path(out)):
        if summary.error:
            continue
        try:
            stored = StudySpec.from_dict(load_study(summary.directory).spec)
        except (ArtifactError, KeyError, TypeError, ValueError):
            continue
        if not spec.differences(replace(stored, study_id=spec.study_id)):
            return summary.directory
    raise ValueError(f"cannot resume: no study in {out} was started with these settings; "
                     "give its folder (--resume OUT/STUDY_ID) or its --study-id")


def refresh_tables(study_dir: Path) -> None:
    """The study's tables (bt_core.runs.study_summary); a failure there never loses the study."""
    from bt_core.runs.study_summary import write_study_tables

    try:
        write_study_tables(study_dir)
    except Exception as exc:  # the cells are kept; the tables come back on the next --resume
        _log.warning("warning: the study tables of %s could not be written: %s", study_dir, one_line(exc))


def run_study(spec: StudySpec, out: Path, scheduler: str = "sequential", ray_address: str | None = None,
              resume: bool = False, say: Callable[[str], None] = print) -> Path:
    """Create (or, with ``resume``, continue) the study folder ``out/<study_id>``, run every
    cell not yet done on ``scheduler``, record each outcome in study.json as it arrives and
    write the tables; returns the study folder."""
    schedule = scheduler_for(scheduler, ray_address)  # before any folder: Ray may be missing
    study_dir = Path(out) / spec.study_id
    state = {"manifest": _open_study(spec, study_dir, scheduler, resume, say), "tables_fresh": False}
    write_study_manifest(study_dir, state["manifest"])
    pending = [c.cell_id for c in state["manifest"].cells if c.status != CELL_DONE]
    say(f"study {spec.study_id}: {len(pending)} of {len(state['manifest'].cells)} cells to run ({scheduler})")

    def on_outcome(outcome: CellOutcome) -> None:
        record = state["manifest"].cell(outcome.cell_id)
        record = replace(record, status=outcome.status, reason=outcome.reason, attempts=record.attempts + outcome.attempts,
                         seconds=outcome.seconds, finished=_now())
        state["manifest"] = state["manifest"].with_cell(record)
        write_study_manifest(study_dir, state["manifest"])
        say(f"cell {outcome.cell_id}: {outcome.status} in {outcome.seconds:.1f}s"
            + (f": {outcome.reason}" if outcome.reason else ""))
        state["tables_fresh"] = outcome.status == CELL_DONE
        if state["tables_fresh"]:  # the dashboard shows a study while it runs
            refresh_tables(study_dir)

    if pending:
        schedule(str(study_dir), pending, dict(spec.resources), on_outcome)
    if not state["tables_fresh"]:
        refresh_tables(study_dir)
    manifest = state["manifest"]
    say(f"study {spec.study_id}: {manifest.count(CELL_DONE)} done, {manifest.count(CELL_FAILED)} failed ({study_dir})")
    return study_dir
