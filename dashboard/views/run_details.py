"""What the Run page shows (no Streamlit): the manifest's dataset counts, skipped files,
settings, versions, model states and timing, as tables and lines, from the typed
:class:`bt_core.artifacts.Manifest`; and each finished model's stored card.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bt_core.artifacts import ArtifactError, DatasetRecord, Evaluation, Manifest
from bt_core.artifacts.reader import load_model_card
from bt_core.data.classes import NO_TUMOR
from bt_dashboard.views import common


def split_counts_table(manifest: Manifest) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with a total column and a total row."""
    per_split = {split: common.class_counts(manifest.dataset.counts, split) for split in common.SPLITS}
    classes = [str(name) for name in manifest.class_names]
    for counts in per_split.values():  # a class counted but not named still shows
        classes += [name for name in counts if name not in classes]
    table = pd.DataFrame(
        {split: [per_split[split].get(name, 0) for name in classes] for split in common.SPLITS},
        index=pd.Index(classes, name="Class"),
        dtype="int64",
    )
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    return table.reset_index()


def skipped_files_table(dataset: DatasetRecord) -> pd.DataFrame:
    """The files the data loader skipped and why."""
    rows = [
        {"path": str(item.get("path", "")), "reason": str(item.get("reason", ""))}
        for item in dataset.skipped
        if isinstance(item, Mapping)
    ]
    return pd.DataFrame(rows, columns=["path", "reason"])


def key_value_table(mapping: Mapping[str, Any] | None) -> pd.DataFrame:
    """A flat two-column table (Setting, Value) of a mapping; values as text so types mix."""

    def text(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return ", ".join(str(item) for item in value)
        return "" if value is None else str(value)

    rows = [{"Setting": str(key), "Value": text(value)} for key, value in (mapping or {}).items()]
    return pd.DataFrame(rows, columns=["Setting", "Value"])


def model_status_table(manifest: Manifest) -> pd.DataFrame:
    """Per model: status, family, input size, epochs, time and error, as the manifest says."""
    rows = [
        {
            common.MODEL: name,
            common.STATUS: entry.status,
            "Family": entry.family or "",
            "Input size": "" if entry.input_size is None else str(entry.input_size),
            common.EPOCHS_RUN: common.as_number(entry.epochs_run),
            common.TRAIN_SECONDS: common.as_number(entry.train_seconds),
            "Error": entry.error or "",
        }
        for name, entry in manifest.models.items()
    ]
    return pd.DataFrame(
        rows,
        columns=[common.MODEL, common.STATUS, "Family", "Input size", common.EPOCHS_RUN, common.TRAIN_SECONDS, "Error"],
    )


def timing_summary(manifest: Manifest) -> dict[str, str]:
    """Started, finished (as "2026-12-01 08:55 UTC") and duration (h:mm:ss) of the run."""
    timing = manifest.timing or {}
    return {
        "Started": common.readable_time(timing.get("started")),
        "Finished": common.readable_time(timing.get("finished")),
        "Duration": common.clock_duration(timing.get("seconds")),
    }


def timing_line(manifest: Manifest) -> str:
    """The timing as one Markdown line: it wraps on a narrow screen instead of being cut."""
    return " · ".join(f"**{name}** {value}" for name, value in timing_summary(manifest).items())


def run_caption(manifest: Manifest, run_dir: Path | str) -> str:
    """The page's caption: the run id, when it was created and its artifact format."""
    return (
        f"`{manifest.run_id or run_dir}` · created {common.readable_time(manifest.created)} · "
        f"artifact format {manifest.format_version}"
    )


def evaluation_text(evaluation: Evaluation) -> str:
    """What an external evaluation scored: whose models, on which data, how."""
    how = (
        f"tumor detection: P(tumor) = 1 − P({evaluation.negative_class or NO_TUMOR}) of each model"
        if evaluation.mode == "tumor"
        else "on the run's classes"
    )
    return (
        f"**{evaluation.name}**: the models of run `{evaluation.of_run}` scored on `{evaluation.data}`, {how}. "
        "Every image of that folder is a test image; the models are the run's, unchanged."
    )


def dataset_line(dataset: DatasetRecord) -> str:
    """The dataset's name, layout, root and fingerprint as one Markdown line."""
    return (
        f"**{dataset.name or 'unknown'}** · layout `{dataset.layout or 'unknown'}` · "
        f"root `{dataset.root}` · fingerprint `{dataset.fingerprint or ''}`"
    )


def environment(manifest: Manifest) -> dict[str, Any]:
    """The library versions, backend and device the run trained with."""
    return {**(manifest.versions or {}), "backend": manifest.backend, "device": manifest.device}


# The command that writes the cards of a run made before cards existed (bt_core.runs.model_card).
CARDS_COMMAND = "python train_all.py --cards {run_dir}"


def model_cards(run_dir: Path, manifest: Manifest) -> dict[str, str]:
    """Per finished model: its stored MODEL_CARD.md, or one line saying why it has none and
    the command that writes it. An evaluation has no cards of its own (its training run's
    cards list it)."""
    if manifest.is_evaluation:
        return {}
    cards = {}
    for name, entry in manifest.models.items():
        if not entry.is_done:
            continue
        try:
            text = load_model_card(run_dir, name)
        except ArtifactError as exc:
            text = f"The model card cannot be read: {exc}"
        cards[name] = text if text is not None else (
            f"No model card yet (a run written before cards existed, or a model whose results cannot be "
            f"read): run `{CARDS_COMMAND.format(run_dir=run_dir)}`."
        )
    return cards
