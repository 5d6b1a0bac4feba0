"""Cached reads of the artifacts folder.

Every cache key holds the mtime of the manifests involved: training rewrites a run's
manifest after each change of state, so a new or re-trained run is read again while an
unchanged one comes from the cache. (Trained models will be loaded lazily, with
``st.cache_resource``, only on the pages that explain them.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from bt_core import artifacts
from bt_core.artifacts import Run, RunSummary


def _manifest_mtime(run_dir: Path) -> int:
    """Modification time (ns) of a run's manifest; 0 when it is missing."""
    try:
        return (Path(run_dir) / artifacts.MANIFEST).stat().st_mtime_ns
    except OSError:
        return 0


def _runs_fingerprint(artifacts_dir: Path) -> tuple[tuple[str, int], ...]:
    """(folder, manifest mtime) for each sub-folder: changes whenever a run appears or changes."""
    root = Path(artifacts_dir)
    if not root.is_dir():
        return ()
    return tuple(
        sorted((path.name, _manifest_mtime(path)) for path in root.iterdir() if path.is_dir())
    )


@st.cache_data(show_spinner=False)
def _list_runs_cached(artifacts_dir: str, fingerprint: tuple[tuple[str, int], ...]) -> list[RunSummary]:
    del fingerprint  # part of the cache key only
    return artifacts.list_runs(Path(artifacts_dir))


def list_runs(artifacts_dir: Path | str) -> list[RunSummary]:
    """The runs of ``artifacts_dir``, newest first (see :func:`bt_core.artifacts.list_runs`)."""
    directory = Path(artifacts_dir)
    return _list_runs_cached(str(directory), _runs_fingerprint(directory))


@st.cache_data(show_spinner="Reading run…")
def _load_run_cached(run_dir: str, manifest_mtime: int) -> Run:
    del manifest_mtime  # part of the cache key only
    return artifacts.load_run(Path(run_dir))


def load_run_tables(run_dir: Path | str) -> Run:
    """Manifest, split and per-model tables of a run; raises ArtifactError if it cannot open."""
    directory = Path(run_dir)
    return _load_run_cached(str(directory), _manifest_mtime(directory))


@st.cache_data(show_spinner=False)
def _load_manifest_cached(run_dir: str, manifest_mtime: int) -> dict[str, Any]:
    del manifest_mtime  # part of the cache key only
    return artifacts.read_manifest(Path(run_dir))


def load_manifest(run_dir: Path | str) -> dict[str, Any]:
    """A run's manifest alone (opens even when the run's tables are broken)."""
    directory = Path(run_dir)
    return _load_manifest_cached(str(directory), _manifest_mtime(directory))
