"""Merge the shards of one zoo (runs of the same experiment with different ``--models``)
into one run folder, so the dashboard compares every model at once.

    python train_all.py --merge artifacts/shard-a artifacts/shard-b --out artifacts --run-id zoo

The shards must agree on everything that makes their scores comparable: class names, image
size, dataset fingerprint, an identical split.csv and the training settings (SHARED_SETTINGS).
They may differ in models, run id, output folder, dataset path (another machine), precision
and data parallelism. Model files are hard-linked where the file system allows, else copied;
the merged folder is assembled under a hidden name and renamed into place when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from bt_core.artifacts import (
    BACKUP_DIR,
    SPLIT,
    STATUS_DONE,
    STATUS_FAILED,
    TEST_BOXES,
    TEST_HEADS,
    TEST_IMAGES,
    ArtifactError,
    Manifest,
    ModelEntry,
    is_temporary_file,
    link_or_copy,
    load_manifest,
    manifest_path,
    merge_staging_dir,
    model_dir,
    model_files_problem,
    read_split,
    write_json,
)
from bt_core.runs.model_card import refresh_model_cards
from bt_core.runs.resume import config_from_manifest

# Config settings every shard must share; the others (models, run_id, out, data, demo,
# precision, data_parallel, workers) may differ.
SHARED_SETTINGS = (
    "epochs",
    "img_size",
    "batch_size",
    "seed",
    "weights",
    "val_fraction",
    "test_fraction",
    "max_per_class",
    "preprocess",
    "augment",
    "augment_mode",
    "split",
    "data_seed",
)

# The run-level files a merged run takes from its first shard, and those it takes when there.
RUN_FILES = (SPLIT, TEST_IMAGES)
OPTIONAL_RUN_FILES = (TEST_BOXES, TEST_HEADS)


class _Shard:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        try:
            self.manifest = load_manifest(self.directory)
            self.split = read_split(self.directory)
            self.config = config_from_manifest(self.manifest)
        except (ArtifactError, TypeError, ValueError) as exc:
            raise ValueError(f"cannot merge {self.directory}: {exc}") from exc
        self.name = self.manifest.run_id or self.directory.name


def _check_compatible(first: _Shard, other: _Shard) -> None:
    def refuse(what: str, mine, theirs) -> None:
        raise ValueError(
            f"cannot merge {other.directory} with {first.directory}: different {what} ({theirs!r} vs {mine!r})"
        )

    if first.manifest.class_names != other.manifest.class_names:
        refuse("class names", list(first.manifest.class_names), list(other.manifest.class_names))
    if first.manifest.image_size != other.manifest.image_size:
        refuse("image size", first.manifest.image_size, other.manifest.image_size)
    mine, theirs = (s.manifest.dataset.fingerprint for s in (first, other))
    if not mine or mine != theirs:
        refuse("dataset fingerprint", mine, theirs)
    if not first.split.equals(other.split):
        raise ValueError(f"cannot merge {other.directory} with {first.directory}: their {SPLIT} files differ")
    a, b = first.config.to_dict(), other.config.to_dict()
    for key in SHARED_SETTINGS:
        if a[key] != b[key]:
            refuse(f"setting {key}", a[key], b[key])


def _pick_models(shards: list[_Shard]) -> dict[str, tuple[_Shard, ModelEntry]]:
    """Each model from the one shard that finished it (or, if none did, the first that failed)."""
    picked: dict[str, tuple[_Shard, ModelEntry]] = {}
    for shard in shards:
        class_names = list(shard.manifest.class_names)
        for name, entry in shard.manifest.models.items():
            status = entry.status
            if status not in (STATUS_DONE, STATUS_FAILED):
                raise ValueError(
                    f"cannot merge: model {name} of {shard.directory} is {status}; "
                    "finish that run first (train_all.py --resume RUN_DIR)"
                )
            if status == STATUS_DONE:
                problem = model_files_problem(shard.directory, name, class_names)
                if problem:
                    raise ValueError(f"cannot merge: model {name} of {shard.directory} is marked done but {problem}")
            if name in picked:
                earlier, earlier_entry = picked[name]
                if status == STATUS_DONE and earlier_entry.is_done:
                    raise ValueError(
                        f"cannot merge: model {name} is finished in both {earlier.directory} and {shard.directory}; "
                        "merge each model from one run only"
                    )
                if status != STATUS_DONE:
                    continue  # a finished copy beats a failed one
            picked[name] = (shard, entry)
    return picked


def _joined(values: list) -> str:
    distinct = list(dict.fromkeys(str(v) for v in values))
    return distinct[0] if len(distinct) == 1 else " + ".join(distinct)


def check_run_id(run_id: str) -> str:
    """``run_id`` when it is a safe folder name inside ``--out`` (the rule of evaluation names:
    letters, digits, ``-``, ``_``, ``.``, starting with a letter or digit); ValueError otherwise,
    so ``../../escape`` or an absolute path never writes outside ``--out``."""
    from bt_core.runs.evaluate import check_evaluation_name

    try:
        return check_evaluation_name(run_id)
    except ValueError:
        raise ValueError(
            f"--run-id {run_id!r} is not a safe folder name inside --out: use letters, digits, '-', '_' "
            "and '.', starting with a letter or digit (at most 100 characters)"
        ) from None


def merge_runs(
    run_dirs: list[str | Path], out: str | Path, run_id: str | None = None,
    say: Callable[[str], None] = logging.getLogger(__name__).info,
) -> Path:
    """Write one run folder ``out/run_id`` holding every model of ``run_dirs``; returns it."""
    if run_id is not None:
        check_run_id(run_id)
    if len(run_dirs) < 2:
        raise ValueError("--merge needs at least two run folders")
    resolved = [Path(d).resolve() for d in run_dirs]
    if len(set(resolved)) != len(resolved):
        raise ValueError("--merge names the same run folder twice")
    shards = [_Shard(Path(d)) for d in run_dirs]
    first = shards[0]
    for other in shards[1:]:
        _check_compatible(first, other)
    picked = _pick_models(shards)
    dataset_name = first.manifest.dataset.name or "run"
    run_id = run_id or f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{dataset_name}-merged"
    target = Path(out) / run_id
    if target.exists():
        raise ValueError(f"{target} already exists; choose another --run-id")
    staging = merge_staging_dir(Path(out), run_id)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        # The shards' are identical (same split, same images), so the first one's serve.
        for file_name in (*RUN_FILES, *(f for f in OPTIONAL_RUN_FILES if (first.directory / f).is_file())):
            link_or_copy(first.directory / file_name, staging / file_name)
        models = {}
        for name, (shard, entry) in picked.items():
            source = model_dir(shard.directory, name)
            if source.is_dir():  # the whole tree: precomputed maps (maps/) come along
                for path in sorted(source.rglob("*")):
                    relative = path.relative_to(source)
                    # backup/: a failed model's training state, of no use in the merged run
                    if path.is_file() and not is_temporary_file(path) and relative.parts[0] != BACKUP_DIR:
                        link_or_copy(path, model_dir(staging, name) / relative)
            models[name] = replace(entry, from_run=shard.name)
        write_json(manifest_path(staging), _merged_manifest(shards, models, run_id, out).to_json())
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    refresh_model_cards(target, say=say)  # replaces the shards' linked cards
    done = sum(1 for entry in models.values() if entry.is_done)
    say(f"merged {len(shards)} runs into {target}: {done} finished model(s), {len(models) - done} failed")
    return target


def _merged_manifest(shards: list[_Shard], models: dict[str, ModelEntry], run_id: str, out: str | Path) -> Manifest:
    first = shards[0].manifest
    manifests = [s.manifest for s in shards]
    timings = [m.timing for m in manifests]
    starts = [t["started"] for t in timings if t.get("started")]
    ends = [t["finished"] for t in timings if t.get("finished")]
    config = {**shards[0].config.to_dict(), "models": list(models), "run_id": run_id, "out": str(out)}
    return Manifest(
        run_id=run_id,
        created=min(m.created for m in manifests),
        config=config,
        class_names=first.class_names,
        image_size=first.image_size,
        image_ops=shards[0].config.preprocess,
        dataset=first.dataset,
        backend=_joined([m.backend for m in manifests]),
        device=_joined([m.device for m in manifests]),
        versions=first.versions,
        timing={
            "started": min(starts) if starts else None,
            "finished": max(ends) if ends else None,
            # Compute spent in all shards together; started..finished spans them.
            "seconds": round(sum(float(t.get("seconds") or 0.0) for t in timings), 2),
            "data_seconds": round(sum(float(t.get("data_seconds") or 0.0) for t in timings), 2),
        },
        sessions=tuple({**session, "run_id": shard.name} for shard in shards for session in shard.manifest.sessions),
        merged={
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "runs": [
                {
                    "run_id": shard.name,
                    "directory": str(shard.directory),
                    "models": list(shard.manifest.models),
                    "backend": shard.manifest.backend,
                    "device": shard.manifest.device,
                    "versions": dict(shard.manifest.versions),
                    "timing": dict(shard.manifest.timing),
                    "config": shard.config.to_dict(),
                }
                for shard in shards
            ],
        },
        models=models,
    )
