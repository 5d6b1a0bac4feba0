"""``export-mlflow``: one MLflow run per finished model of a run folder, in a local MLflow store
(no server) or any tracking URI.

Exporting a run again replaces its MLflow runs: every MLflow run tagged with the same
``bt_zoo.run_id`` and ``bt_zoo.model`` is deleted (MLflow's soft delete: ``mlflow gc`` removes it
for good) and a new one is written, so an experiment holds one MLflow run per model of a run,
with the numbers of the latest export. MLflow is imported only here, inside the functions, so
bt_core imports without it. What is logged: :mod:`bt_core.tracking.mlflow_records` and
docs/tracking.md.

MLflow 3 keeps the ``file:`` store (the default ``mlruns/`` folder) in maintenance mode and
refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``; the export sets that for its own calls when
the tracking URI is a local folder, since a folder is what needs no server and no database
(``mlflow-skinny`` is enough). Reading the store back (``mlflow ui``, ``mlflow.search_runs``)
needs the same variable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

from bt_core.artifacts import (
    ArtifactError,
    HISTORY,
    METRICS,
    PREDICTIONS,
    Run,
    ShortcutSummary,
    evaluation_dir,
    list_evaluations,
    load_run,
)
from bt_core.artifacts.layout import model_card_path, tensorboard_dir
from bt_core.metrics import leaderboard, run_comparison
from bt_core.tracking.mlflow_records import (
    MODEL_TAG,
    RUN_ID_TAG,
    ModelRecord,
    model_record,
    readable_shortcut_summary,
    score_columns,
)

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'brain-tumor-zoo[mlflow]'"
DEFAULT_STORE = "mlruns"
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
# MLflow's limits on one log_batch call.
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000


def import_mlflow() -> Any:
    """The mlflow module; ImportError with the install command when it is missing."""
    try:
        import mlflow
    except ImportError as exc:
        raise ImportError(f"export-mlflow needs MLflow: {INSTALL_HINT}") from exc
    return mlflow


def default_tracking_uri() -> str:
    """A local file store, ``mlruns/`` in the current folder."""
    return Path(DEFAULT_STORE).resolve().as_uri()


def is_local_folder(uri: str) -> bool:
    """True for a ``file:`` URI or a plain path: MLflow's file store."""
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")  # C:\\... on Windows


@contextlib.contextmanager
def file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3's opt-in for the file store, for the export's calls only (a value the user set wins)."""
    if not is_local_folder(uri) or ALLOW_FILE_STORE in os.environ:
        yield
        return
    os.environ[ALLOW_FILE_STORE] = "true"
    try:
        yield
    finally:
        os.environ.pop(ALLOW_FILE_STORE, None)


def _millis(iso_time: str | None) -> int | None:
    try:
        return int(datetime.fromisoformat(str(iso_time)).timestamp() * 1000)
    except ValueError:
        return None


def _shortcut_summary(run: Run) -> ShortcutSummary | None:
    return readable_shortcut_summary(run, "export-mlflow")


def _evaluation_rows(run: Run, n_resamples: int, seed: int) -> dict[str, tuple[dict[str, dict], list[str]]]:
    """Evaluation name -> (model -> its leaderboard row on that data, the score columns)."""
    evaluations = {}
    for name in list_evaluations(run.directory):
        try:
            table = leaderboard(load_run(evaluation_dir(run.directory, name)), n_resamples=n_resamples, seed=seed)
        except ArtifactError as exc:
            logger.warning("export-mlflow: evaluation %s is left out: %s", name, exc)
            continue
        evaluations[name] = ({row["model"]: row for row in table.to_dict("records")}, score_columns(table))
    return evaluations


def model_records(run: Run, n_resamples: int = run_comparison.LEADERBOARD_RESAMPLES,
                  seed: int = run_comparison.LEADERBOARD_SEED) -> tuple[list[ModelRecord], dict[str, str]]:
    """The records of every model the leaderboard scores (the dashboard's ``n_resamples`` and
    ``seed``), and the models left out with why (failed, broken, other test images)."""
    table = leaderboard(run, n_resamples=n_resamples, seed=seed)
    summary = _shortcut_summary(run)
    evaluations = _evaluation_rows(run, n_resamples, seed)
    columns = list(table.columns)
    records = []
    for row in table.to_dict("records"):
        name = row["model"]
        rows = {evaluation: (by_model[name], score_cols) for evaluation, (by_model, score_cols) in evaluations.items()
                if name in by_model}
        records.append(model_record(run, name, row, columns, summary, rows))
    return records, dict(table.attrs.get("excluded", {}))


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name)
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def _replace_earlier(client: Any, experiment_id: str, run_id: str, model: str) -> int:
    """Delete the MLflow runs an earlier export of this model wrote; how many there were."""
    query = f"tags.`{RUN_ID_TAG}` = '{run_id}' and tags.`{MODEL_TAG}` = '{model}'"
    earlier = client.search_runs([experiment_id], filter_string=query, max_results=1000)
    for found in earlier:
        client.delete_run(found.info.run_id)
    return len(earlier)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _log_values(client: Any, mlflow_run_id: str, record: ModelRecord) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    params = [Param(key, value) for key, value in record.params.items()]
    metrics = [Metric(key, value, now, 0) for key, value in record.metrics.items()]
    metrics += [Metric(key, value, now, epoch) for key, steps in record.history.items() for epoch, value in steps]
    for chunk in _chunks(params, PARAMS_PER_BATCH):
        client.log_batch(mlflow_run_id, params=chunk)
    for chunk in _chunks(metrics, METRICS_PER_BATCH):
        client.log_batch(mlflow_run_id, metrics=chunk)


def _log_files(client: Any, mlflow_run_id: str, run: Run, model: str, report_html: Path | None) -> None:
    directory = run.models[model].directory
    for file_name in (PREDICTIONS, METRICS, HISTORY):
        if (directory / file_name).is_file():
            client.log_artifact(mlflow_run_id, str(directory / file_name))
    card = model_card_path(run.directory, model)
    if card.is_file():
        client.log_artifact(mlflow_run_id, str(card))
    if report_html is not None:
        client.log_artifact(mlflow_run_id, str(report_html), "report")
    logs = tensorboard_dir(run.directory, model)
    if logs.is_dir():
        client.log_artifacts(mlflow_run_id, str(logs), "tensorboard")


def _export_model(client: Any, experiment_id: str, run: Run, record: ModelRecord, report_html: Path | None) -> str:
    replaced = _replace_earlier(client, experiment_id, run.run_id, record.model)
    entry = run.entry(record.model)
    tags = dict(record.tags)
    card = model_card_path(run.directory, record.model)
    if card.is_file():  # MLflow shows it as the run's description
        tags["mlflow.note.content"] = card.read_text(encoding="utf-8")[:8000]
    created = client.create_run(experiment_id, start_time=_millis(entry.started), tags=tags,
                                run_name=f"{run.run_id}/{record.model}")
    mlflow_run_id = created.info.run_id
    try:
        _log_values(client, mlflow_run_id, record)
        _log_files(client, mlflow_run_id, run, record.model, report_html)
    except BaseException:
        client.set_terminated(mlflow_run_id, "FAILED")
        raise
    client.set_terminated(mlflow_run_id, "FINISHED", end_time=_millis(entry.finished))
    if replaced:
        logger.info("export-mlflow: %s replaces %d earlier MLflow run(s) of %s", mlflow_run_id, replaced, record.model)
    return mlflow_run_id


def export_run(run_dir: Path | str, *, tracking_uri: str | None = None, experiment: str | None = None,
               report_html: Path | str | None = None, n_resamples: int = run_comparison.LEADERBOARD_RESAMPLES,
               seed: int = run_comparison.LEADERBOARD_SEED) -> list[str]:
    """Log one MLflow run per model of ``run_dir`` that the leaderboard scores, under
    ``experiment`` (default: the dataset's name); returns their MLflow run ids in manifest
    order. A failed or broken model is left out with a warning naming it and why.
    ``tracking_uri``: default a local ``mlruns/`` file store; ``report_html``: the run's HTML
    report, attached to every model's MLflow run. ImportError without MLflow; ArtifactError
    when the run folder cannot be opened."""
    import_mlflow()
    from mlflow.tracking import MlflowClient

    run = load_run(Path(run_dir))
    report = Path(report_html) if report_html is not None else None
    if report is not None and not report.is_file():
        raise FileNotFoundError(f"the report {report} does not exist")
    records, excluded = model_records(run, n_resamples, seed)
    for model, reason in excluded.items():
        logger.warning("export-mlflow: model %s is not exported: %s", model, reason)
    uri = tracking_uri or default_tracking_uri()
    with file_store_allowed(uri):
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, experiment or run.dataset.name or run.run_id)
        return [_export_model(client, experiment_id, run, record, report) for record in records]
