"""Cached loaders of studies (bt_core.artifacts.study): read only from their stored files,
study.json and the tables bt_core.runs.study_summary wrote; no statistic is computed here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bt_core import artifacts
from bt_core.artifacts import RunSummary, study, study_tables
from bt_dashboard.loaders import cached_by_mtime, sub_folder_runs


def _study_manifests(artifacts_dir: Path | str) -> list[Path]:
    root = Path(artifacts_dir)
    return sorted(root.glob(f"*/{study.STUDY_MANIFEST}")) if root.is_dir() else []


@cached_by_mtime(_study_manifests, show_spinner=False)
def list_studies(artifacts_dir: Path | str) -> list[study.StudySummary]:
    """The studies of ``artifacts_dir`` (see :func:`bt_core.artifacts.study.list_studies`)."""
    return study.list_studies(Path(artifacts_dir))


@cached_by_mtime(lambda study_dir: [study.study_manifest_path(Path(study_dir))], show_spinner=False)
def load_study(study_dir: Path | str) -> study.StudyManifest:
    """A study's manifest; raises ArtifactError when it cannot be opened."""
    return study.load_study(Path(study_dir))


# Keyed by study.json too: a missing table is "none yet" or a problem depending on its cells.
@cached_by_mtime(lambda study_dir, name: [study_tables.study_table_path(Path(study_dir), name),
                                          study.study_manifest_path(Path(study_dir))], show_spinner=False)
def load_study_table(study_dir: Path | str, name: str) -> pd.DataFrame:
    """One of a study's tables, typed (empty before its first cell is done); ArtifactError
    when it cannot be read (see :func:`bt_core.artifacts.study_tables.read_study_table`)."""
    return study_tables.read_study_table(Path(study_dir), name)


@cached_by_mtime(lambda study_dir: sub_folder_runs(study.study_runs_dir(Path(study_dir))), show_spinner=False)
def list_study_runs(study_dir: Path | str) -> list[RunSummary]:
    """The cell runs of a study that have a run folder (see :func:`list_runs`)."""
    return artifacts.list_runs(study.study_runs_dir(Path(study_dir)))
