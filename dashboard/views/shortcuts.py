"""What the Shortcuts page's verdict shows (no Streamlit): the names of the measures, how
the run's shortcut summary (``shortcuts/summary.json``, see
:func:`bt_core.runs.analyze.analyze_run`, read as a :class:`bt_core.artifacts.ShortcutSummary`)
is read, and the verdict table and lines.

A model's verdict is :func:`bt_core.shortcuts.flags.flag_verdict` of its stored flags (raised
by :func:`bt_core.shortcuts.flags.shortcut_flags` against the documented thresholds, stored in
the summary's ``thresholds``): flagged on all images, flagged in classes only (never counted
as flagged), not flagged, or too few images to judge. Nothing here re-decides a flag. Every reader tolerates a
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
from bt_core.shortcuts import flags as flag_rules
from bt_core.shortcuts.flags import ALL_PARTS, FLAG_SENTENCES, FlagVerdict
from bt_core.shortcuts.wording import (  # the flags' words, shared with the model cards
    BACKGROUND_ACCURACY, BORDER, IN_BOX, OCCLUDED_TUMOR, OUTSIDE_HEAD, PART_LABELS, flag_label, flag_reason,
    mapping, part_value, percent, too_few_line, verdict_label,
)
from bt_dashboard.views.common import as_number, readable_time


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
# What the page's grid shows until "All columns" is on (the CSV has every column): what fits
# a laptop's 818 px column. The flags are in words above the grid and tint its rows; chance
# is written in the background-only accuracy's cell.
HEADLINE_VERDICT_COLUMNS = [MODEL, ACCURACY, SCORE, FLAGGED, OUTSIDE_HEAD, BORDER, BACKGROUND_ACCURACY,
                            OCCLUDED_TUMOR, IN_BOX]
# The grid's header of a long column (its full name is the header's help).
VERDICT_LABELS = {ACCURACY: "Accuracy", SCORE: "Score", BACKGROUND_ACCURACY: "No-head acc.",
                  OCCLUDED_TUMOR: "Tumor hidden", IN_BOX: "In box"}


# Shown as percentages.
SHARE_COLUMNS = [ACCURACY, OUTSIDE_HEAD, BORDER, BACKGROUND_ACCURACY, CHANCE, OCCLUDED_TUMOR, IN_BOX, POINTING]
YES, NO = "yes", "no"
# The verdict column's words for a model flagged on all images (wording.verdict_label).
ON_ALL_IMAGES = flag_rules.ALL_IMAGES.removeprefix("flagged ")
# Short, to fit the grid's model column; the caption names them in full.
BASELINE_LABELS = {
    "centered_gaussian": "baseline: Gaussian",
    "random": "baseline: random",
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
CLASS_FLAGGED_CSS = "background-color: #fff3cd"


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


def verdict_of(record: Mapping[str, Any]) -> FlagVerdict:
    return flag_rules.flag_verdict(record)


def is_flagged(record: Mapping[str, Any]) -> bool:
    """Flagged on all test images: the only verdict counted as flagged."""
    return verdict_of(record).level == flag_rules.ALL_IMAGES


def flagged_models(summary: ShortcutSummary) -> list[str]:
    return [name for name, record in models(summary).items() if is_flagged(record)]


def models_at(summary: ShortcutSummary, level: str) -> list[str]:
    """The measured models whose verdict is ``level`` (a level of bt_core.shortcuts.flags)."""
    return [name for name, record in models(summary).items() if verdict_of(record).level == level]


def attention_value(record: Mapping[str, Any], measure: str, group: str = "all") -> float:
    return as_number(mapping(mapping(record.get("attention")).get(group)).get(measure))


def suspect_model(summary: ShortcutSummary) -> str | None:
    """The model to look at first: the flagged one with the highest score (else any highest)."""
    records = models(summary)
    if not records:
        return None

    def key(name: str) -> tuple[bool, bool, float]:
        score = as_number(records[name].get("score"))
        level = verdict_of(records[name]).level
        return level == flag_rules.ALL_IMAGES, level == flag_rules.CLASSES_ONLY, score if np.isfinite(score) else -1.0

    return max(records, key=key)


def stored_metrics(run: Run) -> dict[str, Mapping[str, Any]]:
    """Each usable model's metrics.json, in manifest order."""
    return {name: model.metrics for name, model in run.models.items() if model.usable}


def measured_caption(summary: ShortcutSummary, labels: Mapping[str, str]) -> str:
    """When and from which maps the measures were made, and whether with tumor boxes."""
    method = measured_method(summary)
    boxes = "with tumor boxes" if summary.has_boxes else "without tumor boxes (box measures blank)"
    return f"Measured {readable_time(summary.created)} from {labels.get(method, method)} maps, {boxes}."


# --------------------------------------------------------------------------- verdict


def verdict_table(summary: ShortcutSummary, accuracies: Mapping[str, Any], baselines: bool = True) -> pd.DataFrame:
    """One row per measured model (summary order), then, with ``baselines``, one row per map
    baseline (centred Gaussian, random) holding only the map measures.

    Columns :data:`VERDICT_COLUMNS`; numbers are floats (NaN when not measured).
    """
    rows = []
    for name, record in models(summary).items():
        faithfulness = mapping(record.get("faithfulness"))
        verdict = verdict_of(record)
        rows.append({
            MODEL: name,
            ACCURACY: as_number(accuracies.get(name)),
            SCORE: as_number(record.get("score")),
            FLAGGED: verdict_label(verdict),
            FLAGS: "; ".join(flag_label(flag) for flag in verdict.flags),
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


def _facts(accuracy: float, score: float) -> str:
    facts = [f"{accuracy:.1%} accurate" if np.isfinite(accuracy) else None,
             f"score {score:.2f}" if np.isfinite(score) else None]
    return ", ".join(fact for fact in facts if fact)


def verdict_lines(summary: ShortcutSummary, accuracies: Mapping[str, Any]) -> list[str]:
    """Markdown lines by severity: "**simple_cnn**: 96.7% accurate, but …" for each model
    flagged on all images (the right-for-the-wrong-reasons ones), then each model flagged in
    classes only, then one line for the others and one for those with too few images."""
    records = models(summary)
    verdicts = {name: verdict_of(record) for name, record in records.items()}
    lines = []
    for name, verdict in verdicts.items():
        if verdict.level != flag_rules.ALL_IMAGES:
            continue
        accuracy = as_number(accuracies.get(name))
        accurate = f"{accuracy:.1%} accurate" if np.isfinite(accuracy) else "accuracy unknown"
        reasons = "; ".join(flag_reason(flag, records[name]) for flag in verdict.flags)
        lines.append(f"**{name}**: {accurate}, but {reasons}.")
    for name, verdict in verdicts.items():
        if verdict.level != flag_rules.CLASSES_ONLY:
            continue
        facts = _facts(as_number(accuracies.get(name)), verdict.score)
        scores = ", ".join(f"{group} {verdict.class_scores[group]:.2f}" for group in verdict.classes
                           if np.isfinite(verdict.class_scores.get(group, np.nan)))
        reasons = "; ".join(flag_reason(flag, records[name]) for flag in verdict.flags)
        lines.append(f"**{name}** ({facts}{'; ' + 'score within ' + scores if scores else ''}): {verdict.text}, "
                     f"not on all images: {reasons}.")
    clean = [name for name, verdict in verdicts.items() if verdict.level == flag_rules.NOT_FLAGGED]
    if clean:
        described = []
        for name in clean:
            facts = _facts(as_number(accuracies.get(name)), verdicts[name].score)
            described.append(f"**{name}**" + (f" ({facts})" if facts else ""))
        lines.append("Not flagged by any threshold: " + ", ".join(described) + ".")
    unmeasured = [name for name, verdict in verdicts.items() if verdict.level == flag_rules.FLAGS_NOT_MEASURED]
    if unmeasured:
        lines.append("No parts stored: " + ", ".join(f"**{name}**" for name in unmeasured) + ".")
    unjudged = [name for name, verdict in verdicts.items() if verdict.level == flag_rules.TOO_FEW]
    if unjudged:
        lines.append(f"Too few test images to judge (at least {flag_rules.MIN_GROUP_IMAGES} per part): "
                     + ", ".join(f"**{name}**" for name in unjudged) + ".")
    return lines


def _names(names: list[str]) -> str:
    return ", ".join(names)


def verdict_headline(summary: ShortcutSummary) -> str:
    """The verdict by severity: models flagged on all images, then those flagged within
    classes only (never counted as flagged), then those with too few images."""
    records = models(summary)
    total = len(records)
    if not total:
        return "No model of this run was measured."
    verdicts = {name: verdict_of(record) for name, record in records.items()}
    flagged = [name for name, v in verdicts.items() if v.level == flag_rules.ALL_IMAGES]
    in_classes = [f"{name}: {', '.join(v.classes)}" for name, v in verdicts.items() if v.level == flag_rules.CLASSES_ONLY]
    too_few = [name for name, v in verdicts.items() if v.level == flag_rules.TOO_FEW]
    if flagged:
        text = (f"Right for the wrong reasons? {len(flagged)} of {total} measured models "
                f"{'is' if len(flagged) == 1 else 'are'} flagged on all test images ({_names(flagged)})")
    else:
        text = f"None of the {total} measured models is flagged on all test images"
    if in_classes:
        more = " more" if flagged else ""
        several = any(len(v.classes) > 1 for v in verdicts.values() if v.level == flag_rules.CLASSES_ONLY)
        within = "within some classes" if several else "within one class"
        text += (f"; {len(in_classes)}{more} {'is' if len(in_classes) == 1 else 'are'} flagged {within} "
                 f"only ({'; '.join(in_classes)})")
    if too_few:
        text += f"; {len(too_few)} cannot be judged ({_names(too_few)}: {flag_rules.TOO_FEW_IMAGES})"
    return text + "."


def thresholds_text(summary: ShortcutSummary) -> str:
    """Every stored threshold, as ``NAME = value``."""
    return " · ".join(f"`{name}` = {value:g}" if isinstance(value, (int, float)) else f"`{name}` = {value}"
                      for name, value in summary.thresholds.items())


def verdict_caption(summary: ShortcutSummary) -> str:
    """What the verdict table holds and the stored thresholds it was decided by."""
    return ("One row per measured model (all test images), then the map baselines: what a centred Gaussian "
            "and a random map get on the same images; compare the map columns against them. Click a column "
            "header to sort. A part fires only when it is strictly beyond its documented threshold on at least "
            f"{flag_rules.MIN_GROUP_IMAGES} images (bt_core.shortcuts.flags); a model counts as flagged only "
            "when a part fires on all its test images, not within one class alone. "
            f"Thresholds: {thresholds_text(summary) or 'not stored'}.")


def too_few_caption(summary: ShortcutSummary) -> str | None:
    """One line per model with parts left unjudged for too few images, or None."""
    lines = [f"**{name}**: {line}" for name, record in models(summary).items()
             if (line := too_few_line(flag_rules.too_few_parts(record), flag_rules.MIN_GROUP_IMAGES))]
    return "\n".join(f"- {line}" for line in lines) or None


def parts_explained() -> list[str]:
    """One Markdown line per part (its flag's sentence) and per other measure."""
    lines = [f"**{PART_LABELS[name]}**: {FLAG_SENTENCES[name]}" for name in ALL_PARTS]
    lines += [f"**{label}**: {sentence}" for label, sentence in MEASURE_SENTENCES.items()]
    return lines


def skipped_line(summary: ShortcutSummary) -> str:
    return "; ".join(f"**{name}** ({reason})" for name, reason in summary.skipped.items())


def verdict_styles(table: pd.DataFrame) -> pd.DataFrame:
    """CSS per cell: the name, verdict and flags of a model flagged on all images are tinted
    red, of one flagged within classes only amber."""
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    on_all = table[FLAGGED] == ON_ALL_IMAGES
    in_classes = table[FLAGGED].astype(str).str.endswith(" only")
    tinted = [column for column in (MODEL, FLAGGED, FLAGS) if column in table.columns]
    styles.loc[on_all, tinted] = FLAGGED_CSS
    styles.loc[in_classes, tinted] = CLASS_FLAGGED_CSS
    return styles


def shown_verdict_columns(all_columns: bool) -> list[str]:
    """The verdict columns the grid shows: every one, or the headline ones."""
    return list(VERDICT_COLUMNS) if all_columns else list(HEADLINE_VERDICT_COLUMNS)


def verdict_column_help(column: str) -> str | None:
    """A verdict header's hover text: its full name where the header is short."""
    return column if column in VERDICT_LABELS else None


def style_verdict(table: pd.DataFrame, chance: pd.DataFrame | None = None) -> Styler:
    """The verdict table as shown: shares as percentages, scores to two decimals, flagged models
    tinted. With ``chance`` (a verdict table with the chance column, e.g. ``table`` itself), the
    background-only accuracy reads "60.0% (chance 25.0%)" while it stays a number."""
    formats = {column: "{:.1%}" for column in SHARE_COLUMNS if column in table.columns}
    formats.update({column: "{:.2f}" for column in (SCORE, DELETION_AUC, INSERTION_AUC) if column in table.columns})
    styled = table.style.format(formats, na_rep="—").apply(verdict_styles, axis=None)
    if chance is None or BACKGROUND_ACCURACY not in table.columns:
        return styled
    for index, value in table[BACKGROUND_ACCURACY].items():
        reference = chance.at[index, CHANCE]
        if pd.notna(value) and pd.notna(reference):
            styled = styled.format(f"{{:.1%}} (chance {reference:.0%})",
                                   subset=pd.IndexSlice[[index], [BACKGROUND_ACCURACY]])
    return styled
