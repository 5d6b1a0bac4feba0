"""Continuing an interrupted run: finding it, checking it is the same experiment, and
telling finished models (kept as they are) from unfinished ones (trained again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from bt_core.artifacts import (
    STATUS_DONE,
    ArtifactError,
    Manifest,
    list_runs,
    load_manifest,
    manifest_path,
    model_files_problem,
)
from bt_core.training.config import RunConfig


def config_from_manifest(manifest: Manifest | Mapping[str, Any], strict: bool = True) -> RunConfig:
    """The RunConfig a manifest records (1.0: ``augment_mode`` from ``Manifest.augment_mode``;
    retired settings dropped); TypeError / ValueError when it cannot be one.

    ``strict``: refuse settings this code does not know (a run of a newer minor format), as
    resuming or merging must; ``strict=False`` leaves them out, for showing the settings.
    """
    if not isinstance(manifest, Manifest):
        manifest = Manifest.from_json(manifest)
    data = dict(manifest.config)
    data.setdefault("augment_mode", manifest.augment_mode)
    return RunConfig.from_dict(data, drop_unknown=not strict)


def stored_config(run_dir: Path) -> RunConfig:
    """The config a run was started with, as its manifest records it."""
    manifest = load_manifest(run_dir)
    try:
        return config_from_manifest(manifest)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{run_dir}: the stored config cannot be used: {exc}") from exc


def check_same_experiment(run_dir: Path, config: RunConfig) -> None:
    """ValueError naming the settings in which ``config`` differs from the run's own."""
    stored = stored_config(run_dir)
    differing = config.differences(stored)
    if differing:
        mine, theirs = config.to_dict(), stored.to_dict()
        details = "; ".join(f"{key}: run has {theirs[key]!r}, command has {mine[key]!r}" for key in differing)
        raise ValueError(f"cannot resume {run_dir}: it was started with other settings ({details})")


def find_run_to_resume(config: RunConfig) -> Path:
    """The run a training command with ``--resume`` continues: ``config.out / config.run_id``
    when a run id is given, else the newest run in ``config.out`` whose stored config equals
    ``config`` apart from run_id and out."""
    out = Path(config.out)
    if config.run_id:
        run_dir = out / config.run_id
        if not manifest_path(run_dir).is_file():
            raise ValueError(f"cannot resume: there is no run {config.run_id!r} in {out}")
        check_same_experiment(run_dir, config)
        return run_dir
    for summary in list_runs(out):
        if summary.error:
            continue
        try:
            if not config.differences(stored_config(summary.directory)):
                return summary.directory
        except (ValueError, ArtifactError):
            continue
    raise ValueError(
        f"cannot resume: no run in {out} was started with these settings; "
        "give the run folder (--resume RUN_DIR) or drop --resume to start a new run"
    )


def finished_models(run_dir: Path, manifest: Manifest | Mapping[str, Any]) -> dict[str, str | None]:
    """For each model of the manifest: None when it is finished (status done, all four files
    present and readable), else why it must be trained again."""
    if not isinstance(manifest, Manifest):
        manifest = Manifest.from_json(manifest)
    class_names = list(manifest.class_names)
    verdicts: dict[str, str | None] = {}
    for name, entry in manifest.models.items():
        if entry.status != STATUS_DONE:
            verdicts[name] = f"status {entry.status}"
        else:
            verdicts[name] = model_files_problem(run_dir, name, class_names)
    return verdicts
