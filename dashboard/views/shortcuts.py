"""What the Shortcuts page's verdict shows (no Streamlit): the names of the measures, how
the run's shortcut summary (``shortcuts/summary.json``, see
:func:`bt_core.runs.analyze.analyze_run`, read as a :class:`bt_core.artifacts.ShortcutSummary`)
is read, and the verdict table and lines.

A model is flagged exactly when the summary lists a flag for it; the flags were raised by
:func:`bt_core.shortcuts.flags.shortcut_flags` against the documented thresholds (stored in
the summary's ``thresholds``). Nothing here re-decides them. Every reader tolerates a
missing or malformed entry: a missing number is NaN (a blank cell), never a crash. One
model's tabs are in :mod:`bt_dashboard.views.shortcut_model`, the dataset audit in
:mod:`bt_dashboard.views.shortcut_audit`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.artifacts import Run, ShortcutSummary
from bt_core.shortcuts.flags import ALL_PARTS, FLAG_SENTENCES
from bt_core.shortcuts.wording import (  # the flags' words, shared with the model cards
    BACKGROUND_ACCURACY, BORDER, IN_BOX, OCCLUDED_TUMOR, OUTSIDE_HEAD, PART_LABELS, flag_label, flag_reason,
    mapping, part_value, percent,
)
from bt_dashboard.views.common import as_number


# --------------------------------------------------------------------------- names
MODEL = "Model"
ACCURACY = "Test accuracy"
SCORE = "Shortcut score"
FLAGGED = "Flagged"
FLAGS = "Flags"
CHANCE = "Chance"
POINTING = "Pointing game"
DELETION_AUC = "Deletion AUC"
INSERTION_AUC = "Insertion AUC"
PART_COLUMNS = [OUTSIDE_HEAD, BORDER, BACKGROUND_ACCURACY, CHANCE, OCCLUDED_TUMOR, IN_BOX, POINTING,
                DELETION_AUC, INSERTION_AUC]
VERDICT_COLUMNS = [MODEL, ACCURACY, SCORE, FLAGGED, FLAGS, *PART_COLUMNS]


# Shown as percentages.
SHARE_COLUMNS = [ACCURACY, OUTSIDE_HEAD, BORDER, BACKGROUND_ACCURACY, CHANCE, OCCLUDED_TUMOR, IN_BOX, POINTING]
YES, NO = "yes", "no"
BASELINE_LABELS = {
    "centered_gaussian": "baseline: centred Gaussian map",
    "random": "baseline: random map",
}



# One sentence for each measure that raises no flag of its own.
MEASURE_SENTENCES = {
    SCORE: "Mean of the measured parts, each rescaled to 0 (no worse than its reference: the centred "
           "Gaussian map, chance, or no tumor calls) to 1 (the worst possible); a summary, not a flag.",
    POINTING: "Share of tumor images whose map peaks inside the tumor box.",
    DELETION_AUC: "Mean confidence while the most important pixels are removed first; low means the map "
                  "found what the model needs.",
    INSERTION_AUC: "Mean confidence while the most important pixels are put back first into a blank "
                   "image; high means the map found what the model needs.",
}
MEASURE_COMMAND = "python train_all.py --explain {run_dir}"
# The method of a summary that does not name one: the analysis pass's default.
DEFAULT_METHOD = "gradcam"
FLAGGED_CSS = "background-color: #fde2e1"


def measure_command(run_dir: Path | str) -> str:
    """The command that measures (again) a run's shortcuts."""
    return MEASURE_COMMAND.format(run_dir=shlex.quote(str(run_dir)))


# --------------------------------------------------------------------------- reading


def read_summary(data: Mapping[str, Any]) -> ShortcutSummary:
    """The summary as stored (:func:`bt_core.artifacts.load_shortcuts`), typed; ArtifactError
    for what is not a summary."""
    return ShortcutSummary.from_json(data)


def measured_method(summary: ShortcutSummary) -> str:
    """The explanation method whose maps the score and flags were measured on."""
    return summary.method or DEFAULT_METHOD


def models(summary: ShortcutSummary) -> dict[str, Mapping[str, Any]]:
    """The measured models' records, in summary order."""
    return {str(name): mapping(record) for name, record in summary.models.items()}


def flag_list(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    flags = record.get("flags")
    return [mapping(flag) for flag in flags if isinstance(flag, Mapping)] if isinstance(flags, list) else []


def is_flagged(record: Mapping[str, Any]) -> bool:
    return bool(flag_list(record))


def flagged_models(summary: ShortcutSummary) -> list[str]:
    return [name for name, record in models(summary).items() if is_flagged(record)]


def attention_value(record: Mapping[str, Any], measure: str, group: str = "all") -> float:
    return as_number(mapping(mapping(record.get("attention")).get(group)).get(measure))


def suspect_model(summary: ShortcutSummary) -> str | None:
    """The model to look at first: the flagged one with the highest score (else any highest)."""
    records = models(summary)
    if not records:
        return None

    def key(name: str) -> tuple[bool, float]:
        score = as_number(records[name].get("score"))
        return is_flagged(records[name]), score if np.isfinite(score) else -1.0

    return max(records, key=key)


def stored_metrics(run: Run) -> dict[str, Mapping[str, Any]]:
    """Each usable model's metrics.json, in manifest order."""
    return {name: model.metrics for name, model in run.models.items() if model.usable}


def measured_caption(summary: ShortcutSummary, labels: Mapping[str, str]) -> str:
    """When and from which maps the measures were made, and whether with tumor boxes."""
    method = measured_method(summary)
    boxes = "with tumor boxes" if summary.has_boxes else "without tumor boxes (box measures blank)"
    return f"Measured {summary.created} from {labels.get(method, method)} maps, {boxes}."


# --------------------------------------------------------------------------- verdict


def verdict_table(summary: ShortcutSummary, accuracies: Mapping[str, Any], baselines: bool = True) -> pd.DataFrame:
    """One row per measured model (summary order), then, with ``baselines``, one row per map
    baseline (centred Gaussian, random) holding only the map measures.

    Columns :data:`VERDICT_COLUMNS`; numbers are floats (NaN when not measured).
    """
    rows = []
    for name, record in models(summary).items():
        faithfulness = mapping(record.get("faithfulness"))
        rows.append({
            MODEL: name,
            ACCURACY: as_number(accuracies.get(name)),
            SCORE: as_number(record.get("score")),
            FLAGGED: YES if is_flagged(record) else NO,
            FLAGS: "; ".join(flag_label(flag) for flag in flag_list(record)),
            OUTSIDE_HEAD: _first_finite(part_value(record, "outside_head"), attention_value(record, "outside_head")),
            BORDER: _first_finite(part_value(record, "border"), attention_value(record, "border")),
            BACKGROUND_ACCURACY: part_value(record, "background_accuracy"),
            CHANCE: part_value(record, "background_accuracy", key="reference"),
            OCCLUDED_TUMOR: part_value(record, "occluded_tumor"),
            IN_BOX: _first_finite(part_value(record, "in_box"), attention_value(record, "in_box")),
            POINTING: attention_value(record, "pointing_hit"),
            DELETION_AUC: as_number(faithfulness.get("deletion_auc")),
            INSERTION_AUC: as_number(faithfulness.get("insertion_auc")),
        })
    if baselines:
        rows += baseline_rows(summary)
    table = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    numeric = [ACCURACY, SCORE, *PART_COLUMNS]
    table[numeric] = table[numeric].astype("float64")
    return table


def baseline_rows(summary: ShortcutSummary, group: str = "all") -> list[dict[str, Any]]:
    """Rows of the verdict table for the map baselines of ``group`` that the summary holds."""
    rows = []
    for key, label in BASELINE_LABELS.items():
        row = summary.baselines.get(f"{key}/{group}")
        if not isinstance(row, Mapping):
            continue
        rows.append({
            MODEL: label, FLAGGED: "", FLAGS: "",
            OUTSIDE_HEAD: as_number(row.get("outside_head")),
            BORDER: as_number(row.get("border")),
            IN_BOX: as_number(row.get("in_box")),
            POINTING: as_number(row.get("pointing_hit")),
        })
    return rows


def _first_finite(*values: float) -> float:
    return next((value for value in values if np.isfinite(value)), float("nan"))


def verdict_lines(summary: ShortcutSummary, accuracies: Mapping[str, Any]) -> list[str]:
    """Markdown lines, flagged models first: "**simple_cnn**: 96.7% accurate, but …" for each
    flagged model (the right-for-the-wrong-reasons ones), then one line for the others."""
    records = models(summary)
    lines = []
    for name, record in records.items():
        if not is_flagged(record):
            continue
        accuracy = as_number(accuracies.get(name))
        accurate = f"{accuracy:.1%} accurate" if np.isfinite(accuracy) else "accuracy unknown"
        reasons = "; ".join(flag_reason(flag, record) for flag in flag_list(record))
        lines.append(f"**{name}**: {accurate}, but {reasons}.")
    clean = [name for name, record in records.items() if not is_flagged(record)]
    if clean:
        described = []
        for name in clean:
            accuracy, score = as_number(accuracies.get(name)), as_number(records[name].get("score"))
            facts = [f"{accuracy:.1%} accurate" if np.isfinite(accuracy) else None,
                     f"score {score:.2f}" if np.isfinite(score) else None]
            facts = [fact for fact in facts if fact]
            described.append(f"**{name}**" + (f" ({', '.join(facts)})" if facts else ""))
        lines.append("Not flagged by any threshold: " + ", ".join(described) + ".")
    return lines


def verdict_headline(summary: ShortcutSummary) -> str:
    flagged, total = len(flagged_models(summary)), len(models(summary))
    if not total:
        return "No model of this run was measured."
    if not flagged:
        return f"None of the {total} measured models is flagged by the documented thresholds."
    return (f"Right for the wrong reasons? {flagged} of {total} measured models "
            f"{'is' if flagged == 1 else 'are'} flagged by the documented thresholds.")


def thresholds_text(summary: ShortcutSummary) -> str:
    """Every stored threshold, as ``NAME = value``."""
    return " · ".join(f"`{name}` = {value:g}" if isinstance(value, (int, float)) else f"`{name}` = {value}"
                      for name, value in summary.thresholds.items())


def verdict_caption(summary: ShortcutSummary) -> str:
    """What the verdict table holds and the stored thresholds it was decided by."""
    return ("One row per measured model (all test images), then the map baselines: what a centred Gaussian "
            "and a random map get on the same images; compare the map columns against them. Click a column "
            "header to sort. A model is flagged only when a part is strictly beyond its documented threshold "
            f"(bt_core.shortcuts.flags). Thresholds: {thresholds_text(summary) or 'not stored'}.")


def parts_explained() -> list[str]:
    """One Markdown line per part (its flag's sentence) and per other measure."""
    lines = [f"**{PART_LABELS[name]}**: {FLAG_SENTENCES[name]}" for name in ALL_PARTS]
    lines += [f"**{label}**: {sentence}" for label, sentence in MEASURE_SENTENCES.items()]
    return lines


def skipped_line(summary: ShortcutSummary) -> str:
    return "; ".join(f"**{name}** ({reason})" for name, reason in summary.skipped.items())


def verdict_styles(table: pd.DataFrame) -> pd.DataFrame:
    """CSS per cell: a flagged model's name, flag and flags cells are tinted."""
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    styles.loc[table[FLAGGED] == YES, [MODEL, FLAGGED, FLAGS]] = FLAGGED_CSS
    return styles


def style_verdict(table: pd.DataFrame) -> Styler:
    """The verdict table as shown: shares as percentages, scores to two decimals, flagged models tinted."""
    formats = {column: "{:.1%}" for column in SHARE_COLUMNS}
    formats.update({SCORE: "{:.2f}", DELETION_AUC: "{:.2f}", INSERTION_AUC: "{:.2f}"})
    return table.style.format(formats, na_rep="—").apply(verdict_styles, axis=None)
