"""What one model of a run becomes in MLflow: its params, metrics, per-epoch history and tags,
read from the run's stored files (no MLflow here, so it is tested without it).

Every number is one the run stores or the leaderboard computes from the stored predictions
(:func:`bt_core.metrics.leaderboard`, as the dashboard's Models page shows it); nothing is
re-derived another way. docs/tracking.md lists every key and where it comes from.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd

from bt_core.artifacts import HISTORY_COLUMNS, Run, ShortcutSummary, load_shortcuts
from bt_core.artifacts.errors import ArtifactError
from bt_core.metrics import MODEL_SCORE_KEYS
from bt_core.metrics.run_comparison import FIXED_POINT_COLUMNS
from bt_core.shortcuts.flags import flag_verdict, severity_verdict

TAG_PREFIX = "bt_zoo."
RUN_ID_TAG, MODEL_TAG = f"{TAG_PREFIX}run_id", f"{TAG_PREFIX}model"
GIT_COMMIT_TAG = "mlflow.source.git.commit"  # MLflow's own tag: its UI links the commit
# Where a manifest may record the code's commit (none does yet: the tag is left out then).
GIT_COMMIT_KEYS = ("git_commit", "commit", "git")
# The leaderboard names interval bounds <metric>_lower / _upper; MLflow gets <metric>_ci_low / _ci_high.
INTERVAL_SUFFIXES = {"_lower": "_ci_low", "_upper": "_ci_high"}
# Config settings that are not parameters of one model: the run's list of models, and where
# and how fast it ran (workers changes speed only).
NOT_PARAMS = ("models", "out", "run_id", "workers", "img_size")
HISTORY_METRICS = [column for column in HISTORY_COLUMNS if column not in ("epoch", "phase")]
DEDUP_METRICS = ("accuracy", "macro_f1", "macro_auc")


@dataclass
class ModelRecord:
    """One MLflow run: ``history`` maps a metric key to its (epoch, value) steps."""

    model: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (MLflow gets no NaN, None or text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of ``a.b`` keys; lists and tuples joined by commas."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(item) for item in value)
        else:
            flat[name] = value
    return flat


def leaderboard_metrics(row: Mapping[str, Any], keys: list[str], prefix: str = "") -> dict[str, float]:
    """A leaderboard row's finite numbers under ``prefix``; interval bounds renamed to _ci_low / _ci_high."""
    metrics: dict[str, float] = {}
    for key in keys:
        value = finite(row.get(key))
        if value is None:
            continue
        name = key
        for suffix, renamed in INTERVAL_SUFFIXES.items():
            if key.endswith(suffix):
                name = key[: -len(suffix)] + renamed
        metrics[f"{prefix}{name}"] = value
    return metrics


def score_columns(table: pd.DataFrame) -> list[str]:
    """The scores and their interval bounds of a leaderboard (not the training facts)."""
    return [column for column in table.columns
            if column in MODEL_SCORE_KEYS or column in FIXED_POINT_COLUMNS
            or column.endswith(tuple(INTERVAL_SUFFIXES))]


def _params(run: Run, name: str) -> dict[str, str]:
    manifest, entry = run.typed_manifest, run.entry(name)
    config = {key: value for key, value in manifest.config.items() if key not in NOT_PARAMS}
    params: dict[str, Any] = dict(flatten(config))
    params.update({
        "image_size": run.image_size,
        "image_ops": ",".join(run.image_ops) or "none",
        "preprocessing": entry.preprocessing,
        "family": entry.family,
        "input_size": entry.input_size,
        "weights": entry.weights,  # as trained: custom CNNs start from scratch whatever --weights says
        "augment_mode": run.augment_mode,
        "phases": ",".join(entry.phases or ()),
    })
    if entry.batch_size is not None:  # as trained (data-parallel rounds it up)
        params["batch_size"] = entry.batch_size
    dataset = run.dataset
    params.update({"dataset.name": dataset.name, "dataset.fingerprint": dataset.fingerprint,
                   "dataset.layout": dataset.layout})
    for split, counts in dataset.counts.items():
        if isinstance(counts, Mapping):
            params[f"dataset.n_{split}"] = sum(value for value in counts.values() if isinstance(value, int))
    params.update(flatten(entry.recipe or {}, "recipe."))
    return {key: str(value) for key, value in params.items()}


def _history(run: Run, name: str) -> dict[str, list[tuple[int, float]]]:
    history = run.models[name].history
    if history is None:
        return {}
    steps: dict[str, list[tuple[int, float]]] = {}
    for column in HISTORY_METRICS:
        if column not in history.columns:
            continue
        points = [(int(epoch), finite(value)) for epoch, value in zip(history["epoch"], history[column])]
        steps[f"history/{column}"] = [(epoch, value) for epoch, value in points if value is not None]
    return steps


def git_commit(run: Run) -> str | None:
    manifest = run.typed_manifest
    for source in (manifest.versions, manifest.other, manifest.config):
        for key in GIT_COMMIT_KEYS:
            if isinstance(source.get(key), str) and source[key]:
                return source[key]
    return None


def _tags(run: Run, name: str) -> dict[str, str]:
    manifest = run.typed_manifest
    tags = {
        RUN_ID_TAG: run.run_id,
        MODEL_TAG: name,
        f"{TAG_PREFIX}family": manifest.models[name].family or "",
        f"{TAG_PREFIX}backend": manifest.backend,
        f"{TAG_PREFIX}device": manifest.device,
        f"{TAG_PREFIX}format_version": manifest.format_version,
        f"{TAG_PREFIX}run_dir": str(run.directory.resolve()),
    }
    commit = git_commit(run)
    if commit:
        tags[GIT_COMMIT_TAG] = commit
    return tags


def readable_shortcut_summary(run: Run, caller: str) -> ShortcutSummary | None:
    """The run's stored shortcut summary, or None when it has none or it cannot be read (then
    logged as ``caller``'s warning: one run's broken file costs its shortcut measures only)."""
    try:
        stored = load_shortcuts(run.directory)
    except ArtifactError as exc:
        logging.getLogger(__name__).warning("%s: the shortcut measures of %s are left out: %s",
                                            caller, run.run_id, exc)
        return None
    return ShortcutSummary.from_json(stored) if stored is not None else None


def shortcut_fields(summary: ShortcutSummary | None, name: str) -> tuple[dict[str, str], dict[str, float]]:
    """(tags, metrics) of a model's stored shortcut measures: the parts score and the flags
    that fired, the severity and its verdict (:func:`bt_core.shortcuts.flags.severity_verdict`,
    the rule the Shortcuts page shows). Not measured: the tag says so, no metric."""
    if summary is None:
        return {f"{TAG_PREFIX}shortcuts": "not measured (run the analysis pass: bt-zoo explain RUN_DIR)"}, {}
    if name in summary.skipped:
        return {f"{TAG_PREFIX}shortcuts": f"skipped: {summary.skipped[name]}"}, {}
    record = summary.models.get(name)
    if not isinstance(record, Mapping):
        return {f"{TAG_PREFIX}shortcuts": "not measured"}, {}
    verdict = flag_verdict(record)
    severity = record.get("severity") if isinstance(record.get("severity"), Mapping) else None
    tags = {
        f"{TAG_PREFIX}shortcuts": f"measured on {summary.method} maps",
        # The flags that count (groups on too few images dropped), as the Shortcuts page counts them.
        f"{TAG_PREFIX}shortcut_flags": ",".join(str(flag.get("name")) for flag in verdict.flags) or "none",
        f"{TAG_PREFIX}shortcut_flag_verdict": verdict.text,
        f"{TAG_PREFIX}shortcut_verdict": severity_verdict(severity),
    }
    metrics = {"shortcut/score": finite(record.get("score"))}
    if severity is not None:
        metrics.update({f"shortcut/severity{suffix}": finite(severity.get(key))
                        for key, suffix in (("severity", ""), ("ci_low", "_ci_low"), ("ci_high", "_ci_high"))})
    for key in ("score", "severity"):
        value = metrics.get(f"shortcut/{key}")
        if value is not None:
            tags[f"{TAG_PREFIX}shortcut_{key}"] = f"{value:.4f}"
    return tags, {key: value for key, value in metrics.items() if value is not None}


def deduplicated_metrics(summary: ShortcutSummary | None, name: str) -> dict[str, float]:
    """The audit's metrics on the test images left once duplicates are dropped: ``dedup/...``."""
    audit = summary.audit if summary is not None else {}
    duplicates = audit.get("duplicates") if isinstance(audit.get("duplicates"), Mapping) else {}
    stored = (duplicates.get("deduplicated_metrics") or {}).get(name)
    if not isinstance(stored, Mapping):
        return {}
    metrics = {f"dedup/{key}": finite(stored.get(key)) for key in DEDUP_METRICS}
    metrics["dedup/n_test"] = finite(duplicates.get("test_kept"))
    return {key: value for key, value in metrics.items() if value is not None}


def model_record(run: Run, name: str, leaderboard_row: Mapping[str, Any], leaderboard_columns: list[str],
                 summary: ShortcutSummary | None,
                 evaluations: Mapping[str, tuple[Mapping[str, Any], list[str]]]) -> ModelRecord:
    """Everything one model's MLflow run gets, apart from its files. ``evaluations``: name ->
    (this model's row of that evaluation's leaderboard, its score columns)."""
    metrics = leaderboard_metrics(leaderboard_row, [c for c in leaderboard_columns if c != "model"])
    shortcut_tags, shortcut_metrics = shortcut_fields(summary, name)
    metrics.update(shortcut_metrics)
    metrics.update(deduplicated_metrics(summary, name))
    for evaluation, (row, columns) in evaluations.items():
        metrics.update(leaderboard_metrics(row, columns, f"eval/{evaluation}/"))
    best_epoch = finite(run.entry(name).best_epoch)
    if best_epoch is not None:
        metrics["best_epoch"] = best_epoch
    return ModelRecord(name, _params(run, name), metrics, _history(run, name), {**_tags(run, name), **shortcut_tags})
