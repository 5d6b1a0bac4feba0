"""A study's tables from its finished cells: ``write_study_tables(study_dir)`` reads study.json
and every done cell's run (through bt_core.artifacts), and writes cells.csv, groups.csv,
flips.csv and effects.csv (formats: bt_core.artifacts.study_tables, docs/artifacts.md).

A cell's scores are the ones its run's files give through the same flattening as the MLflow
export (bt_core.tracking.mlflow_records.model_record: the leaderboard, the audit's
de-duplicated metrics, the shortcut score, each evaluation's leaderboard under
``eval/<name>/``). Effects need per-image values besides: each test image's correctness (the
leaderboard's ``ModelData``), the de-duplicated test set (``deduplicated_test_mask`` of the
stored duplicate pairs: the audit's own rule) and, per external evaluation, correctness and
tumor detection on its tumor images. A cell that cannot be read is left out with a log line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bt_core.artifacts import (
    ArtifactError,
    Run,
    ShortcutSummary,
    evaluation_dir,
    list_evaluations,
    load_duplicates,
    load_run,
)
from bt_core.artifacts.study import CELL_DONE, CellRecord, StudyManifest, load_study
from bt_core.artifacts.study_tables import CELLS, EFFECTS, FLIPS, GROUPS, TABLE_COLUMNS, write_study_table
from bt_core.data.classes import negative_class_index
from bt_core.metrics import operating_point
from bt_core.metrics.run_comparison import ModelData, leaderboard, run_model_data
from bt_core.metrics.scores import MODEL_SCORE_KEYS
from bt_core.metrics.study_stats import (
    N_RESAMPLES,
    SeedEffect,
    flip_rate,
    hierarchical_paired_bootstrap,
    seed_t_interval,
    seed_summary,
)
from bt_core.shortcuts.audit import deduplicated_test_mask
from bt_core.tracking.mlflow_records import model_record, readable_shortcut_summary, score_columns, shortcut_fields

logger = logging.getLogger(__name__)

# The leaderboard scores a study keeps (no interval bounds, no training facts; `n` is a count).
SCORE_NAMES = tuple(key for key in MODEL_SCORE_KEYS if key != "n") + tuple(operating_point.FIXED_POINT_METRICS)
# The MLflow record's keys -> the study's metric names.
RENAMED = {"dedup/accuracy": "dedup_accuracy", "dedup/macro_f1": "dedup_macro_f1",
           "dedup/macro_auc": "dedup_macro_auc", "shortcut/score": "shortcut_score",
           "shortcut/severity": "shortcut_severity"}
# An evaluation's tumor-vs-no-tumor scores go by their plain names (eval/<name>/sensitivity).
EVALUATION_RENAMED = {"tumor_sensitivity": "sensitivity", "tumor_specificity": "specificity"}
EVALUATION_PREFIX = "eval/"
# Metrics with an effect: per-image ones get the hierarchical bootstrap, per-run ones the seeds-only one.
PER_IMAGE_EFFECTS = ("accuracy", "dedup_accuracy")
PER_EVALUATION_EFFECTS = ("sensitivity", "accuracy")
# The shortcut measures, of the test set and of each evaluation (eval/<name>/shortcut_score): one number a run.
PER_RUN_EFFECTS = ("shortcut_score", "shortcut_severity")


@dataclass
class CellData:
    """What the tables need of one finished cell."""

    record: CellRecord
    scores: dict[str, float] = field(default_factory=dict)  # metric -> value
    per_image: dict[str, pd.Series] = field(default_factory=dict)  # metric -> values indexed by image id
    predicted: pd.Series | None = None  # predicted class of each test image, indexed by id


def _model_data(run: Run, model: str) -> ModelData:
    data, excluded = run_model_data(run)
    if model not in data:
        raise ArtifactError(f"model {model} is not usable in {run.directory}: "
                            f"{excluded.get(model, 'not in the run')}")
    return data[model]


def _correct(model: ModelData) -> pd.Series:
    return pd.Series(model.correct.astype(np.float64), index=model.ids)


def _shortcut_summary(run: Run) -> ShortcutSummary | None:
    return readable_shortcut_summary(run, "study tables")


def _deduplicated(run: Run, model: ModelData) -> pd.Series | None:
    """Correctness on the test images the audit keeps (its stored pairs, its rule), or None
    without an audit."""
    try:
        pairs = load_duplicates(run.directory)
    except ArtifactError as exc:
        logger.warning("study tables: the duplicates of %s are left out: %s", run.run_id, exc)
        return None
    if pairs is None:
        return None
    keep = deduplicated_test_mask(pairs, model.ids.tolist())
    return _correct(model)[keep] if keep.any() else None


def _evaluations(run: Run, model: str) -> tuple[dict[str, tuple[Mapping[str, Any], list[str]]],
                                                 dict[str, pd.Series], dict[str, float]]:
    """(name -> (the model's leaderboard row there, its score columns), per-image values:
    ``eval/<name>/accuracy`` and, with a no-tumor class, ``eval/<name>/sensitivity`` on the
    tumor images, the shortcut measures there: ``eval/<name>/shortcut_score`` and
    ``.../shortcut_severity``). A broken evaluation is left out with a log line."""
    rows: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    per_image: dict[str, pd.Series] = {}
    shortcut_scores: dict[str, float] = {}
    for name in list_evaluations(run.directory):
        try:
            evaluation = load_run(evaluation_dir(run.directory, name))
            table = leaderboard(evaluation)
            data = _model_data(evaluation, model)
        except ArtifactError as exc:
            logger.warning("study tables: evaluation %s of %s is left out: %s", name, run.run_id, exc)
            continue
        by_model = {row["model"]: row for row in table.to_dict("records")}
        rows[name] = (by_model[model], score_columns(table))
        per_image[f"{EVALUATION_PREFIX}{name}/accuracy"] = _correct(data)
        for key, value in shortcut_fields(_shortcut_summary(evaluation), model)[1].items():
            if key in RENAMED:
                shortcut_scores[f"{EVALUATION_PREFIX}{name}/{RENAMED[key]}"] = float(value)
        negative = negative_class_index(evaluation.class_names)
        if negative is not None:
            tumor = data.y_true != negative
            if tumor.any():
                detected = data.proba.argmax(axis=1) != negative  # the leaderboard's tumor_sensitivity rule
                per_image[f"{EVALUATION_PREFIX}{name}/sensitivity"] = pd.Series(
                    detected[tumor].astype(np.float64), index=data.ids[tumor])
    return rows, per_image, shortcut_scores


def study_metric_name(key: str) -> str | None:
    """The study's name of an MLflow record key, or None for a key the study does not keep."""
    if key in RENAMED:
        return RENAMED[key]
    if key in SCORE_NAMES:
        return key
    if key.startswith(EVALUATION_PREFIX):
        name, _, score = key[len(EVALUATION_PREFIX):].rpartition("/")
        if name and score in SCORE_NAMES:
            return f"{EVALUATION_PREFIX}{name}/{EVALUATION_RENAMED.get(score, score)}"
    return None


def read_cell(study_dir: Path, record: CellRecord) -> CellData:
    """One done cell's scores, per-image values and test predictions; ArtifactError when its
    run (or its model there) cannot be read."""
    run = load_run(Path(study_dir) / record.run)
    model = _model_data(run, record.model)
    table = leaderboard(run)
    row = table.set_index("model").loc[record.model].to_dict() | {"model": record.model}
    evaluations, evaluation_images, evaluation_shortcuts = _evaluations(run, record.model)
    flat = model_record(run, record.model, row, list(table.columns), _shortcut_summary(run), evaluations).metrics
    scores = {}
    for key, value in flat.items():
        name = study_metric_name(key)
        if name is not None:
            scores[name] = float(value)
    scores.update(evaluation_shortcuts)
    per_image = {"accuracy": _correct(model), **evaluation_images}
    deduplicated = _deduplicated(run, model)
    if deduplicated is not None:
        per_image["dedup_accuracy"] = deduplicated
    predicted = pd.Series(np.asarray(run.class_names)[model.proba.argmax(axis=1)], index=model.ids)
    return CellData(record, scores, per_image, predicted)


def read_cells(study_dir: Path, manifest: StudyManifest) -> list[CellData]:
    cells = []
    for record in manifest.cells:
        if record.status != CELL_DONE:
            continue
        try:
            cells.append(read_cell(study_dir, record))
        except (ArtifactError, OSError, ValueError, KeyError) as exc:
            logger.warning("study tables: cell %s is left out: %s", record.cell_id, exc)
    return cells


def cells_table(cells: list[CellData]) -> pd.DataFrame:
    rows = [{"cell_id": cell.record.cell_id, "model": cell.record.model, "variant": cell.record.variant,
             "seed": cell.record.seed, "metric": metric, "value": value}
            for cell in cells for metric, value in cell.scores.items()]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS[CELLS])


def groups_table(cells: pd.DataFrame) -> pd.DataFrame:
    rows = [{"model": model, "variant": variant, "metric": metric, **seed_summary(group["value"])}
            for (model, variant, metric), group in cells.groupby(["model", "variant", "metric"], sort=False)]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS[GROUPS])


def _groups(cells: list[CellData]) -> dict[tuple[str, str], list[CellData]]:
    groups: dict[tuple[str, str], list[CellData]] = {}
    for cell in cells:
        groups.setdefault((cell.record.model, cell.record.variant), []).append(cell)
    return groups


def flips_table(cells: list[CellData]) -> pd.DataFrame:
    rows = []
    for (model, variant), group in _groups(cells).items():
        rate, n_pairs, n_images = flip_rate({cell.record.seed: cell.predicted for cell in group})
        rows.append({"model": model, "variant": variant, "n_seeds": len(group), "n_pairs": n_pairs,
                     "n_images": n_images, "flip_rate": rate})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS[FLIPS])


def _effect_metrics(cells: list[CellData]) -> list[str]:
    names = list(PER_IMAGE_EFFECTS) + list(PER_RUN_EFFECTS)
    evaluations = sorted({key[len(EVALUATION_PREFIX):].rpartition("/")[0] for cell in cells
                          for key in cell.per_image if key.startswith(EVALUATION_PREFIX)})
    names += [f"{EVALUATION_PREFIX}{name}/{score}" for name in evaluations
              for score in (*PER_EVALUATION_EFFECTS, *PER_RUN_EFFECTS)]
    return names


def _per_run(metric: str) -> bool:
    return metric.rpartition("/")[2] in PER_RUN_EFFECTS


def _effect(metric: str, baseline: list[CellData], variant: list[CellData], n_resamples: int,
            seed: int) -> SeedEffect:
    if _per_run(metric):
        def values(group: list[CellData]) -> dict[int, float]:
            return {cell.record.seed: cell.scores.get(metric, math.nan) for cell in group}
        return seed_t_interval(values(baseline), values(variant))

    def images(group: list[CellData]) -> dict[int, pd.Series]:
        return {cell.record.seed: cell.per_image[metric] for cell in group if metric in cell.per_image}
    return hierarchical_paired_bootstrap(images(baseline), images(variant), n_resamples=n_resamples, seed=seed)


def effects_table(cells: list[CellData], baseline: str, n_resamples: int = N_RESAMPLES,
                  seed: int = 0) -> pd.DataFrame:
    """Each variant against ``baseline`` for the same model, seed-matched; a metric without a
    matched seed gets no row."""
    groups, rows = _groups(cells), []
    metrics = _effect_metrics(cells)
    for (model, variant), group in groups.items():
        reference = groups.get((model, baseline))
        if variant == baseline or reference is None:
            continue
        for metric in metrics:
            effect = _effect(metric, reference, group, n_resamples, seed)
            if effect.n_seeds:
                rows.append({"model": model, "variant": variant, "baseline": baseline, "metric": metric,
                             **effect.as_row()})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS[EFFECTS])


def study_baseline(manifest: StudyManifest) -> str | None:
    """The spec's baseline, else its first variant (the contract's default)."""
    if manifest.baseline:
        return manifest.baseline
    variants = manifest.spec.get("variants") or []
    return str(variants[0]["name"]) if variants and isinstance(variants[0], Mapping) else None


def write_study_tables(study_dir: Path, n_resamples: int = N_RESAMPLES, seed: int = 0) -> None:
    """Read study.json and every done cell's run; write the four tables (cells, groups, flips,
    effects) under ``study_dir/tables``. ArtifactError only when study.json cannot be read."""
    study_dir = Path(study_dir)
    manifest = load_study(study_dir)
    cells = read_cells(study_dir, manifest)
    cell_rows = cells_table(cells)
    baseline = study_baseline(manifest)
    write_study_table(study_dir, CELLS, cell_rows)
    write_study_table(study_dir, GROUPS, groups_table(cell_rows))
    write_study_table(study_dir, FLIPS, flips_table(cells))
    write_study_table(study_dir, EFFECTS, effects_table(cells, baseline, n_resamples, seed) if baseline
                      else pd.DataFrame(columns=TABLE_COLUMNS[EFFECTS]))
    logger.info("study tables: %d of %d cells in %s", len(cells), len(manifest.cells), study_dir)
