"""The study folder (docs/artifacts.md, "Studies"): its paths, the study manifest
``study.json`` (versioned, written atomically by the study's driver only), the spec as
``study.toml``, and reading studies back (``list_studies``, ``load_study``).

    OUT/<study_id>/study.json  study.toml  runs/<cell_id>/  tables/
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.files import atomic_write, read_json, write_json

STUDY_MANIFEST = "study.json"
STUDY_SPEC = "study.toml"
STUDY_RUNS_DIR = "runs"
STUDY_TABLES_DIR = "tables"
STUDY_KIND = "study"
STUDY_FORMAT_VERSION = "1.0"
CELL_PENDING, CELL_DONE, CELL_FAILED = "pending", "done", "failed"
CELL_STATUSES = (CELL_PENDING, CELL_DONE, CELL_FAILED)


def study_manifest_path(study_dir: Path) -> Path:
    return Path(study_dir) / STUDY_MANIFEST


def study_spec_path(study_dir: Path) -> Path:
    return Path(study_dir) / STUDY_SPEC


def study_runs_dir(study_dir: Path) -> Path:
    return Path(study_dir) / STUDY_RUNS_DIR


def cell_run_dir(study_dir: Path, cell_id: str) -> Path:
    return study_runs_dir(study_dir) / cell_id


def study_tables_dir(study_dir: Path) -> Path:
    return Path(study_dir) / STUDY_TABLES_DIR


def check_study_format_version(version: Any) -> None:
    """ArtifactError for a version that is not a number or of a newer major version."""
    supported = int(STUDY_FORMAT_VERSION.split(".")[0])
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise ArtifactError(f"study_format_version {version!r} is not a version number") from None
    if major > supported:
        raise ArtifactError(f"study has format {version}, newer than this code reads ({STUDY_FORMAT_VERSION}); "
                            "update the project (git pull) to open it")


@dataclass(frozen=True)
class CellRecord:
    """One cell of study.json: where its run is (relative to the study folder) and how it went."""

    cell_id: str
    model: str
    variant: str
    seed: int
    run: str
    status: str = CELL_PENDING
    reason: str | None = None
    attempts: int = 0
    seconds: float | None = None
    finished: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, "model": self.model, "variant": self.variant, "seed": self.seed,
                "run": self.run, "status": self.status, "reason": self.reason, "attempts": self.attempts,
                "seconds": self.seconds, "finished": self.finished}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRecord:
        status = data.get("status", CELL_PENDING)
        if status not in CELL_STATUSES:
            raise ArtifactError(f"cell {data.get('cell_id')!r}: unknown status {status!r}")
        seconds = data.get("seconds")
        return cls(cell_id=str(data["cell_id"]), model=str(data["model"]), variant=str(data["variant"]),
                   seed=int(data["seed"]), run=str(data["run"]), status=status, reason=data.get("reason"),
                   attempts=int(data.get("attempts", 0)),
                   seconds=None if seconds is None else float(seconds), finished=data.get("finished"))


@dataclass(frozen=True)
class StudyManifest:
    """study.json: the normalised spec (``StudySpec.to_dict``), the scheduler and every cell."""

    study_id: str
    created: str
    spec: dict = field(default_factory=dict)
    scheduler: str = "sequential"
    cells: tuple[CellRecord, ...] = ()
    study_format_version: str = STUDY_FORMAT_VERSION

    @property
    def baseline(self) -> str | None:
        return self.spec.get("baseline")

    def cell(self, cell_id: str) -> CellRecord:
        for record in self.cells:
            if record.cell_id == cell_id:
                return record
        raise KeyError(cell_id)

    def with_cell(self, record: CellRecord) -> StudyManifest:
        """This manifest with ``record`` in place of the cell of the same id."""
        return replace(self, cells=tuple(record if c.cell_id == record.cell_id else c for c in self.cells))

    def count(self, status: str) -> int:
        return sum(1 for c in self.cells if c.status == status)

    def to_json(self) -> dict[str, Any]:
        return {"kind": STUDY_KIND, "study_format_version": self.study_format_version, "study_id": self.study_id,
                "created": self.created, "spec": self.spec, "scheduler": self.scheduler,
                "cells": [c.to_json() for c in self.cells]}

    @classmethod
    def from_json(cls, data: Any) -> StudyManifest:
        if not isinstance(data, dict) or data.get("kind") != STUDY_KIND:
            raise ArtifactError("not a study manifest (no \"kind\": \"study\")")
        check_study_format_version(data.get("study_format_version"))
        try:
            return cls(study_id=str(data["study_id"]), created=str(data.get("created", "")),
                       spec=dict(data.get("spec") or {}), scheduler=str(data.get("scheduler", "sequential")),
                       cells=tuple(CellRecord.from_json(c) for c in data.get("cells", [])),
                       study_format_version=str(data["study_format_version"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"malformed study manifest: {type(exc).__name__}: {exc}") from None


def write_study_manifest(study_dir: Path, manifest: StudyManifest) -> None:
    write_json(study_manifest_path(study_dir), manifest.to_json())


def load_study(study_dir: Path) -> StudyManifest:
    """The study manifest of ``study_dir``; ArtifactError naming the folder when it is missing,
    unreadable or of a newer major format."""
    path = study_manifest_path(study_dir)
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise ArtifactError(f"{study_dir} is not a study folder (no {STUDY_MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable ({exc})") from None
    try:
        return StudyManifest.from_json(data)
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None


def is_study_folder(path: Path) -> bool:
    return study_manifest_path(path).is_file()


@dataclass(frozen=True)
class StudySummary:
    """A line of the study picker: a broken study carries its error and no counts."""

    study_id: str
    directory: Path
    created: str
    cells: int = 0
    done: int = 0
    failed: int = 0
    error: str | None = None


def list_studies(artifacts_dir: Path) -> list[StudySummary]:
    """Every folder of ``artifacts_dir`` holding a study.json, newest first; never raises
    (a broken study is listed with its error)."""
    root = Path(artifacts_dir)
    if not root.is_dir():
        return []
    studies = []
    for path in root.iterdir():
        if path.name.startswith(".") or not is_study_folder(path):
            continue
        try:
            manifest = load_study(path)
        except ArtifactError as exc:
            studies.append(StudySummary(path.name, path, "", error=str(exc)))
            continue
        studies.append(StudySummary(manifest.study_id, path, manifest.created, len(manifest.cells),
                                    manifest.count(CELL_DONE), manifest.count(CELL_FAILED)))
    return sorted(studies, key=lambda s: (s.created, s.study_id), reverse=True)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string is a JSON string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write {value!r} to TOML")


def toml_text(document: dict[str, Any]) -> str:
    """The TOML of a document of tables (dicts) and arrays of tables (lists of dicts) holding
    plain values: the shape of a study declaration, and no more."""
    lines: list[str] = []
    for name, table in document.items():
        for entry, header in ([(table, f"[{name}]")] if isinstance(table, dict)
                              else [(t, f"[[{name}]]") for t in table]):
            lines += ([""] if lines else []) + [header]
            lines += [f"{key} = {_toml_value(value)}" for key, value in entry.items() if value is not None]
    return "\n".join(lines) + "\n"


def write_study_spec(study_dir: Path, document: dict[str, Any]) -> None:
    """study.toml: the spec as a TOML declaration (``StudySpec.to_toml_document``)."""
    text = toml_text(document)
    atomic_write(study_spec_path(study_dir), lambda tmp: tmp.write_text(text, encoding="utf-8"))
