"""The Models page's published results beside this run's (no Streamlit).

Each row of :func:`bt_core.reference.published.load_published_results` meets the run's model
of the same registry name: its test accuracy (metrics.json), its accuracy on the test images
without a copy in training (the dataset audit's ``deduplicated_metrics``, when the run was
analyzed) and one line saying what differs (data, pretraining, split, duplicates, image size).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.artifacts import Run
from bt_core.reference.published import PublishedResult
from bt_dashboard.views import common

ARCHITECTURE = "Architecture"
PUBLISHED = "Published"
MEASURE = "Measured as"
THIS_RUN = "This run"
DEDUPLICATED = "De-duplicated"
AS_PUBLISHED = "Model as published"
TASK = "Task"
DIFFERS = "What differs"
SOURCE = "Source"
COLUMNS = [ARCHITECTURE, PUBLISHED, MEASURE, THIS_RUN, DEDUPLICATED, AS_PUBLISHED, TASK, DIFFERS, SOURCE]
NOT_IN_RUN = "not in this run"
NOT_AUDITED = "no audit"
# Folder names of the Kaggle Brain Tumor MRI dataset (Nickparvar): the same data as most rows.
PUBLISHED_DATASET_FOLDERS = {"brain-tumor-mri", "brain-tumor-mri-dataset"}
UNVERIFIED = " (not verified)"
BACKBONE_WEIGHTS = {None: "none", "": "none", "imagenet": "ImageNet"}


def deduplicated_accuracy(summary: Mapping[str, Any] | None) -> tuple[dict[str, float], dict[str, Any]]:
    """Per model, the accuracy on the test images the audit kept, and the audit's duplicates
    record (``{}`` when the run was not analyzed or the audit was skipped)."""
    duplicates = ((summary or {}).get("audit") or {}).get("duplicates") or {}
    if not isinstance(duplicates, Mapping):
        return {}, {}
    by_model = duplicates.get("deduplicated_metrics") or {}
    accuracy = {name: common.as_number((scores or {}).get("accuracy")) for name, scores in by_model.items()}
    return accuracy, dict(duplicates)


def run_pretraining(run: Run, model: str) -> str:
    """How the run's model started: ``none`` for the custom CNNs and backbones trained from
    scratch, ``ImageNet`` (or the weights file) for a pretrained backbone."""
    entry = run.models[model].entry
    if entry.family == "custom":
        return "none"
    weights = entry.weights if entry.weights is not None else run.typed_manifest.config.get("weights")
    return BACKBONE_WEIGHTS.get(weights, str(weights))


def run_split(run: Run) -> str:
    if run.dataset.layout == "kaggle":
        return "the dataset's Training / Testing folders"
    share = common.as_number(run.typed_manifest.config.get("test_fraction"))
    return f"a seeded stratified split ({share:.0%} test)" if share == share else "a seeded stratified split"


def run_duplicates(duplicates: Mapping[str, Any]) -> str:
    total, kept = duplicates.get("test_images"), duplicates.get("test_kept")
    if total is None or kept is None:
        return "not audited here (analyze the run)"
    return f"here {int(total) - int(kept)} of {int(total)} test images are copies (dropped in the de-duplicated figure)"


def _difference(part: str, there: str, here: str) -> str | None:
    return None if there.strip().lower() == here.strip().lower() else f"{part}: {there} there, {here} here"


def differences(result: PublishedResult, run: Run, model: str | None, duplicates: Mapping[str, Any]) -> str:
    """One line: what separates the published figure from this run's."""
    parts = []
    if run.typed_manifest.config.get("demo"):
        parts.append("data: synthetic demo images here, not the published dataset")
    elif run.dataset.name and run.dataset.name not in PUBLISHED_DATASET_FOLDERS:
        parts.append(f"data: {result.dataset} there, folder {run.dataset.name} here")
    if model is not None:
        parts.append(_difference("pretraining", result.pretraining, run_pretraining(run, model)))
    parts.append(_difference("split", result.split, run_split(run)))
    parts.append(f"duplicates: {result.duplicates} there; {run_duplicates(duplicates)}")
    there_size = "not stated" if result.image_size is None else f"{result.image_size} px"
    here_size = f"{run.typed_manifest.image_size} px" if run.typed_manifest.image_size else "unknown"
    parts.append(_difference("image size", there_size, here_size))
    if result.task.lower().startswith("binary") and len(run.class_names) != 2:
        parts.append(f"task: {result.task} there, {len(run.class_names)} classes here")
    return " · ".join(part for part in parts if part)


def source_text(result: PublishedResult) -> str:
    text = result.source + ("" if result.verified else UNVERIFIED)
    return f"{text} {result.url}".strip()


def published_table(run: Run, results: Sequence[PublishedResult], summary: Mapping[str, Any] | None) -> pd.DataFrame:
    """One row per published figure; architectures this run trained first, in file order."""
    dedup, duplicates = deduplicated_accuracy(summary)
    rows = []
    for result in results:
        model = run.models.get(result.architecture)
        usable = model is not None and model.usable
        accuracy = common.as_number(model.metrics.get("accuracy")) if usable else float("nan")
        if not usable:
            deduplicated: Any = NOT_IN_RUN
        elif result.architecture in dedup:
            deduplicated = f"{dedup[result.architecture]:.1%}"
        else:
            deduplicated = NOT_AUDITED
        rows.append({
            ARCHITECTURE: result.architecture,
            PUBLISHED: f"{result.value:.2%}",
            MEASURE: result.metric,
            THIS_RUN: f"{accuracy:.1%}" if usable else NOT_IN_RUN,
            DEDUPLICATED: deduplicated,
            AS_PUBLISHED: result.model,
            TASK: result.task,
            DIFFERS: differences(result, run, result.architecture if usable else None, duplicates),
            SOURCE: source_text(result),
            "_in_run": usable,
        })
    table = pd.DataFrame(rows, columns=[*COLUMNS, "_in_run"])
    table = table.sort_values("_in_run", ascending=False, kind="stable").drop(columns="_in_run")
    return table.reset_index(drop=True)


# The grid's columns; what differs and the source are one line each below it (too long for a cell).
GRID_COLUMNS = [ARCHITECTURE, PUBLISHED, MEASURE, THIS_RUN, DEDUPLICATED]


def difference_lines(table: pd.DataFrame) -> list[str]:
    """One Markdown line per row: the architecture as published, what differs and the source."""
    return [f"**{row[ARCHITECTURE]}** ({row[AS_PUBLISHED]}, {row[TASK]}), {row[PUBLISHED]} {row[MEASURE]}: "
            f"{row[DIFFERS]}. Source: {row[SOURCE]}" for _, row in table.iterrows()]


def style_published(table: pd.DataFrame) -> Styler:
    """The grid's columns of the table; rows of architectures this run has are marked."""
    table = table[[column for column in GRID_COLUMNS if column in table.columns]]
    def marks(row: pd.Series) -> list[str]:
        css = common.BEST_VALUE_CSS if row[THIS_RUN] != NOT_IN_RUN else ""
        return [css if column in (ARCHITECTURE, THIS_RUN) else "" for column in row.index]
    return table.style.apply(marks, axis=1)
