"""``bt-zoo report`` (the one-file HTML report of a run), ``bt-zoo cards`` (every model's
MODEL_CARD.md written again from the run's files) and ``bt-zoo export-mlflow`` (the run as
MLflow runs, one per model, the report among their artifacts)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

from bt_core.cli.actions import EXIT_OK, EXIT_USAGE, Stage, status_or_raise
from bt_core.cli.options import RUN_DIR_HELP

HTTP_RETRIES, HTTP_TIMEOUT_S = 1, 10
MLFLOW_MISSING = "export-mlflow needs MLflow: pip install 'brain-tumor-zoo[mlflow]'"
REPORT_SUFFIX = "_report.html"

_log = logging.getLogger(__name__)


def add_report_parser(commands) -> None:
    sub = commands.add_parser("report", help="write a run's one-file HTML report",
                              description="Write the run's HTML report (one file that opens offline) and print "
                                          "its path.")
    sub.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    sub.add_argument("--out", metavar="FILE.html", help=f"where to write it (default: ./<run_id>{REPORT_SUFFIX})")


def add_cards_parser(commands) -> None:
    sub = commands.add_parser("cards", help="write every finished model's MODEL_CARD.md from the run's files",
                              description="Write (again) models/<model>/MODEL_CARD.md of every finished model "
                                          "of a run, e.g. of a run made before model cards existed, and print "
                                          "the paths.")
    sub.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)


def add_export_mlflow_parser(commands) -> None:
    sub = commands.add_parser("export-mlflow", help="log a run to MLflow, one MLflow run per model",
                              description="Log every model of a run as one MLflow run (params, metrics, "
                                          "history, artifacts, the HTML report) and print the MLflow run ids.")
    sub.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    sub.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: a file store ./mlruns)")
    sub.add_argument("--experiment", metavar="NAME", help="MLflow experiment name (default: the dataset's name)")


def default_tracking_uri() -> str:
    return Path("mlruns").resolve().as_uri()


def write_report(run_dir: Path, target: Path) -> Path:
    """Build the run's report and write it to ``target`` atomically; ArtifactError for a run
    that cannot be read."""
    from bt_core.artifacts import load_run
    from bt_core.artifacts.files import atomic_write
    from bt_dashboard.report import build_report

    html = build_report(load_run(run_dir))
    atomic_write(target, lambda tmp: tmp.write_text(html, encoding="utf-8"))
    return target


def _report_target(run_dir: Path, out: str | None, folder: Path | None = None) -> Path:
    """``out``, else ``<run_id>_report.html`` in ``folder`` (default: the current folder)."""
    from bt_core.artifacts import load_manifest

    if out:
        return Path(out)
    return (folder or Path.cwd()) / f"{load_manifest(run_dir).run_id}{REPORT_SUFFIX}"


def report(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    try:
        print(write_report(run_dir, _report_target(run_dir, args.out)))
    except Exception as exc:  # sorted by status_or_raise
        return status_or_raise(exc, Stage("report"))
    return EXIT_OK


def cards(run_dir: Path) -> int:
    """Write the run's model cards; print each path."""
    from bt_core.runs.model_card import write_model_cards

    try:
        written = write_model_cards(run_dir)
    except Exception as exc:  # sorted by status_or_raise
        return status_or_raise(exc, Stage("cards"))
    for path in written:
        print(path)
    return EXIT_OK


def export_mlflow(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("mlflow") is None:  # before the report is built for nothing
        _log.error(MLFLOW_MISSING)
        return EXIT_USAGE
    from bt_core.tracking.mlflow_export import export_run

    from mlflow.exceptions import MlflowException

    run_dir = Path(args.run_dir)
    tracking_uri = args.tracking_uri or default_tracking_uri()
    # A server that does not answer fails in seconds, not after MLflow's default minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(HTTP_RETRIES))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(HTTP_TIMEOUT_S))
    try:
        with tempfile.TemporaryDirectory(prefix="bt-zoo-report-") as folder:
            report_html = write_report(run_dir, _report_target(run_dir, None, Path(folder)))
            run_ids = export_run(run_dir, tracking_uri=tracking_uri, experiment=args.experiment,
                                 report_html=report_html)
    except MlflowException as exc:  # the store or server refused: its first line says why
        _log.error("error: cannot log to %s: %s", tracking_uri, str(exc).strip().splitlines()[0])
        return EXIT_USAGE
    except Exception as exc:  # sorted by status_or_raise
        return status_or_raise(exc, Stage("export-mlflow"))
    for run_id in run_ids:
        print(run_id)
    return EXIT_OK
