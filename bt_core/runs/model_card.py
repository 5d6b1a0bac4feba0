"""Model cards: ``models/<model>/MODEL_CARD.md``, built only from the run's own files.

A card says what the model is for (and that it is not for clinical use), what it was trained
on and how, its test metrics with the leaderboard's 95% intervals
(:func:`bt_core.metrics.run_comparison.leaderboard`), its metrics on the de-duplicated test
set and on external evaluations, its shortcut findings and its limitations. A section whose
files are absent says so and names the command that fills it.

:func:`write_model_cards` is the one hook: training calls it as each model finishes, and the
analysis pass, ``--evaluate`` and ``--merge`` call it at their end, so a card always reflects
the files present. Each card is replaced atomically.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bt_core.artifacts import ArtifactError, Run, ShortcutSummary, evaluation_dir, list_evaluations, load_run
from bt_core.artifacts import load_shortcuts
from bt_core.artifacts.files import atomic_write, is_disk_full
from bt_core.artifacts.layout import model_card_path
from bt_core.metrics import run_comparison
from bt_core.metrics.one_class import NOT_MEASURABLE
from bt_core.shortcuts import flags, wording

SECTIONS = (
    "Intended use",
    "Training data and split",
    "Preprocessing",
    "Recipe",
    "Test metrics with 95% intervals",
    "Metrics on the de-duplicated test set",
    "External evaluations",
    "Shortcut findings",
    "Limitations",
)
NOT_FOR_CLINICAL_USE = (
    "**Not for clinical use.** This model is a research artifact: it is not a medical device, it has not been "
    "validated on clinical data, and it must not be used to diagnose, screen, triage or treat anyone."
)
INTENDED_USE = (
    "Research and teaching: comparing classifier architectures on brain-tumor MRI slices and studying whether "
    "they learn shortcuts (the image's source, border or intensity style) instead of the anatomy."
)
# The trainer compiles every phase with Adam (bt_core.training.train); the run does not store it.
OPTIMIZER = "Adam"
MEASURE_COMMAND = "python train_all.py --explain {run_dir}"
EVALUATE_COMMAND = "python train_all.py --evaluate {run_dir} --data PATH"
# (leaderboard key, label, shown as a percentage): the card's metric rows.
METRIC_ROWS = (
    ("accuracy", "Accuracy", True),
    ("macro_f1", "Macro F1", True),
    ("macro_auc", "Macro AUC", False),
    ("tumor_sensitivity", "Tumor sensitivity", True),
    ("tumor_specificity", "Tumor specificity", True),
    ("tumor_auc", "Tumor AUC", False),
    ("log_loss", "Log loss", False),
    ("ece", "Expected calibration error", True),
    ("sensitivity_at_95_specificity", "Tumor sensitivity at 95% specificity", True),
    ("specificity_at_95_sensitivity", "Tumor specificity at 95% sensitivity", True),
)
# A history whose best validation accuracy stays within this of chance while training accuracy
# passes COLLAPSE_TRAIN_ACCURACY shows the batch-norm collapse of small data (Recipe docs).
COLLAPSE_MARGIN = 0.10
COLLAPSE_TRAIN_ACCURACY = 0.80
OVERFIT_GAP = 0.15
SMALL_TEST_SET = 100


@dataclass(frozen=True)
class RunFacts:
    """What every card of one run reads, loaded once: the leaderboard, the shortcut summary
    (or why there is none) and the external evaluations (or why each cannot be read)."""

    run: Run
    leaderboard: pd.DataFrame
    shortcuts: ShortcutSummary | None = None
    shortcuts_problem: str | None = None
    evaluations: Mapping[str, Run | str] = field(default_factory=dict)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _value(value: Any, percent: bool) -> str:
    number = _number(value)
    if not math.isfinite(number):
        return NOT_MEASURABLE
    return f"{number:.1%}" if percent else f"{number:.3f}"


def _interval(low: Any, high: Any, percent: bool) -> str:
    low, high = _number(low), _number(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "—"
    return f"{low:.1%} – {high:.1%}" if percent else f"{low:.3f} – {high:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]


def load_run_facts(run_dir: Path, n_resamples: int = run_comparison.LEADERBOARD_RESAMPLES,
                   seed: int = run_comparison.LEADERBOARD_SEED) -> RunFacts:
    """Read what the cards of ``run_dir`` need (an evaluation folder: its training run's)."""
    run = load_run(Path(run_dir))
    run = run.parent_run() or run
    leaderboard = run_comparison.leaderboard(run, n_resamples=n_resamples, seed=seed)
    shortcuts, problem = None, None
    try:
        stored = load_shortcuts(run.directory)
        shortcuts = ShortcutSummary.from_json(stored) if stored is not None else None
    except ArtifactError as exc:
        problem = str(exc)
    evaluations: dict[str, Run | str] = {}
    for name in list_evaluations(run.directory):
        try:
            evaluations[name] = load_run(evaluation_dir(run.directory, name))
        except ArtifactError as exc:
            evaluations[name] = str(exc)
    return RunFacts(run, leaderboard, shortcuts, problem, evaluations)


def _data_section(run: Run) -> list[str]:
    dataset = run.dataset
    lines = [f"Dataset **{dataset.name or 'unknown'}** (layout `{dataset.layout or 'unknown'}`, fingerprint "
             f"`{dataset.fingerprint or 'not recorded'}`), run `{run.run_id}`. Images per class and split:", ""]
    splits = [split for split in ("train", "val", "test") if split in dataset.counts]
    rows = [[name, *(int(dataset.counts[split].get(name, 0)) for split in splits)] for name in run.class_names]
    rows.append(["total", *(sum(int(v) for v in dataset.counts[split].values()) for split in splits)])
    lines += _table(["Class", *splits], rows)
    if dataset.skipped:
        lines += ["", f"{len(dataset.skipped)} file(s) were skipped while loading (listed in the manifest)."]
    return lines


def _preprocessing_section(run: Run, name: str) -> list[str]:
    entry = run.entry(name)
    ops = ", ".join(run.image_ops) or "none"
    return [
        f"- Image ops at full resolution, before the resize: {ops}",
        f"- Input size: {entry.input_size or run.image_size} x {entry.input_size or run.image_size} RGB",
        f"- Model scaling: `{entry.preprocessing or 'unknown'}` (bt_core.data.preprocess)",
    ]


def _recipe_section(run: Run, name: str) -> list[str]:
    entry, config = run.entry(name), run.typed_manifest.config
    recipe = dict(entry.recipe or {})
    phases = list(entry.phases or ())
    if len(phases) > 1:
        rates = f"head {recipe.get('head_learning_rate', '?')}, fine-tune {recipe.get('fine_tune_learning_rate', '?')}"
    else:
        rates = str(recipe.get("learning_rate", "not recorded"))
    rows = [
        ("Epochs run (all phases)", f"{entry.epochs_run} of at most {config.get('epochs', '?')} per phase; "
                                    f"best epoch {entry.best_epoch}"),
        ("Phases", ", ".join(phases) or "not recorded"),
        ("Optimizer", OPTIMIZER),
        ("Learning rate", rates),
        ("Batch size", entry.batch_size or config.get("batch_size") or recipe.get("batch_size", "not recorded")),
        ("Augmentation", f"{run.augment_mode} (strength {recipe.get('augment_strength', 1.0)})"),
        ("Weights", entry.weights or config.get("weights") or "none (trained from scratch)"),
        ("Seed", config.get("seed", "not recorded")),
        ("Precision", config.get("precision", "not recorded")),
        ("Backend / device", f"{run.typed_manifest.backend or '?'} on {run.typed_manifest.device or '?'}"),
        ("Parameters (trainable / total)", f"{entry.params_trainable} / {entry.params_total}"),
    ]
    extra = {key: value for key, value in recipe.items() if key in ("patience", "warmup_epochs", "label_smoothing")}
    rows += [(key.replace("_", " ").capitalize(), value) for key, value in extra.items()]
    return _table(["Setting", "Value"], rows)


def leaderboard_row(leaderboard: pd.DataFrame, name: str) -> Mapping[str, Any] | None:
    if leaderboard.empty or name not in set(leaderboard["model"]):
        return None
    return leaderboard.set_index("model").loc[name].to_dict()


def _metrics_section(facts: RunFacts, name: str) -> list[str]:
    row = leaderboard_row(facts.leaderboard, name)
    if row is None:
        reason = facts.leaderboard.attrs.get("excluded", {}).get(name, "no usable test predictions")
        return [f"Not measured: {reason}."]
    rows = [(label, _value(row.get(key), percent), _interval(row.get(f"{key}_lower"), row.get(f"{key}_upper"), percent))
            for key, label, percent in METRIC_ROWS if key in row]
    return [f"On the run's {int(row['n'])} test images; intervals: 95% paired bootstrap over test images "
            "(the leaderboard's; Wilson for a test set of one class).", "", *_table(["Metric", "Value", "95% interval"], rows)]


def _duplicates(facts: RunFacts) -> Mapping[str, Any]:
    audit = facts.shortcuts.audit if facts.shortcuts is not None else {}
    value = audit.get("duplicates")
    return value if isinstance(value, Mapping) else {}


def _not_measured_yet(facts: RunFacts) -> str:
    command = MEASURE_COMMAND.format(run_dir=facts.run.directory)
    if facts.shortcuts_problem:
        return f"Cannot be read ({facts.shortcuts_problem}); measure again: `{command}`."
    return f"Not measured yet: run `{command}`."


def _dedup_section(facts: RunFacts, name: str) -> list[str]:
    if facts.shortcuts is None:
        return [_not_measured_yet(facts)]
    duplicates = _duplicates(facts)
    skipped = facts.shortcuts.audit.get("skipped")
    if skipped:
        return [f"Not measured: the dataset audit was skipped ({skipped})."]
    values = duplicates.get("deduplicated_metrics", {}).get(name) if duplicates else None
    if not isinstance(values, Mapping):
        return ["Not measured for this model (the audit holds no de-duplicated metrics of it)."]
    original = facts.run.models[name].metrics
    rows = [(label, _value(original.get(key), percent), _value(values.get(key), percent))
            for key, label, percent in METRIC_ROWS[:3]]
    return [f"{duplicates.get('test_kept', '?')} of {duplicates.get('test_images', '?')} test images kept after "
            "dropping test images with a copy in train or val (copies within test keep one).", "",
            *_table(["Metric", "Whole test set", "De-duplicated"], rows)]


SAME_DATA = "not external: the same dataset as training (identical fingerprint)"


def _evaluation_row(name: str, evaluation: Run | str, model: str, run: Run) -> list[Any]:
    """(evaluation, mode, result) of one model on one external evaluation."""
    if isinstance(evaluation, str):
        return [name, "—", f"cannot be read: {evaluation}"]
    mode = evaluation.evaluation.mode if evaluation.evaluation is not None else "—"
    if evaluation.same_data_as(run):
        name = f"{name} ({SAME_DATA})"
    artifacts = evaluation.models.get(model)
    if artifacts is None or not artifacts.usable:
        return [name, mode, "not scored" if artifacts is None else (artifacts.error or "not scored")]
    metrics = artifacts.metrics
    n, record = metrics.get("n_test", len(artifacts.predictions)), metrics.get("one_class")
    if isinstance(record, Mapping):
        reason = (metrics.get("not_measurable") or {}).get("reason", "one class only")
        interval = _interval(record.get("ci_low"), record.get("ci_high"), True)
        return [name, mode, f"{n} images of one class ({record.get('class')}): {record.get('measure')} "
                            f"{_value(record.get('value'), True)} (Wilson 95% {interval}); "
                            f"AUC, F1 and precision {NOT_MEASURABLE}: {reason}"]
    return [name, mode, f"{n} images: accuracy {_value(metrics.get('accuracy'), True)}, "
                        f"macro F1 {_value(metrics.get('macro_f1'), True)}, "
                        f"macro AUC {_value(metrics.get('macro_auc'), False)}"]


def _evaluations_section(facts: RunFacts, name: str) -> list[str]:
    if not facts.evaluations:
        return [f"None yet: score the model on another dataset folder with "
                f"`{EVALUATE_COMMAND.format(run_dir=facts.run.directory)}`."]
    rows = [_evaluation_row(evaluation, run, name, facts.run) for evaluation, run in facts.evaluations.items()]
    return _table(["Evaluation", "Mode", "Result"], rows)


def severity_words(record: Mapping[str, Any]) -> str:
    """The model's severity verdict (flags.severity_verdict) in plain words."""
    severity = record.get("severity") if isinstance(record.get("severity"), Mapping) else None
    verdict = flags.severity_verdict(severity)
    if verdict == flags.NOT_MEASURED:
        return "Severity: not measured (the run was measured before the counterfactual probes; measure it again)."
    text = (f"Severity: **{verdict}**: about {_value(severity.get('severity'), True)} "
            f"(95% {_interval(severity.get('ci_low'), severity.get('ci_high'), True)}) of its decisions follow the "
            "image's source rather than the anatomy")
    if verdict == flags.UNSAFE:
        text += f" (the lower bound is above {flags.SEVERITY_UNSAFE:.0%})"
    elif verdict == flags.UNCERTAIN:
        text += f" (above {flags.SEVERITY_UNSAFE:.0%}, but the lower bound is not: more test images would decide)"
    recipient, _, donor = str(severity.get("driving_pair") or "").partition(" -> ")
    if not donor or verdict == flags.NO_EVIDENCE:  # no share to explain: a "driving" pair would mislead
        return text + "."
    return text + f"; most of it: {recipient} images called {donor} once they get the look of a {donor} image."


def _shortcuts_section(facts: RunFacts, name: str) -> list[str]:
    if facts.shortcuts is None:
        return [_not_measured_yet(facts)]
    record = facts.shortcuts.models.get(name)
    if not isinstance(record, Mapping):
        reason = facts.shortcuts.skipped.get(name, "the analysis pass did not measure it")
        return [f"Not measured: {reason}. Measure it: `{MEASURE_COMMAND.format(run_dir=facts.run.directory)}`."]
    lines = [f"- {severity_words(record)}"]
    verdict = flags.flag_verdict(record)  # the dashboard's verdict: all images, one class only, too few
    fired = list(verdict.flags)
    if fired:
        lines.append(f"- Flag verdict: **{verdict.text}**.")
    for flag in fired:  # the dashboard's words, with the model's own numbers and classes
        lines.append(f"- Flag **{wording.flag_label(flag)}**: {wording.flag_reason(flag, record)}. "
                     f"{flag.get('sentence') or ''}".rstrip())
    if not fired:
        lines.append(f"- No attention or probe flag fired ({facts.shortcuts.method} maps)."
                     if verdict.level != flags.TOO_FEW else f"- Flag verdict: {flags.TOO_FEW_IMAGES}.")
    too_few = wording.too_few_line(flags.too_few_parts(record), flags.MIN_GROUP_IMAGES)
    if too_few:
        lines.append(f"- {too_few}")
    score = _number(record.get("score"))
    if math.isfinite(score):
        lines.append(f"- Parts score (where the maps look, 0 best): {score:.2f}")
    return lines


def _history_notes(run: Run, name: str) -> list[str]:
    history = run.models[name].history
    if history is None or history.empty or "val_accuracy" not in history or "accuracy" not in history:
        return []
    chance = 1.0 / max(len(run.class_names), 1)
    best_val, best_train = history["val_accuracy"].max(), history["accuracy"].max()
    if best_train >= COLLAPSE_TRAIN_ACCURACY and best_val <= chance + COLLAPSE_MARGIN:
        return [f"Validation accuracy stayed near chance (best {best_val:.0%}, chance {chance:.0%}) while training "
                f"accuracy reached {best_train:.0%}: batch-norm statistics are unstable on small data; its test "
                "scores are not representative."]
    return []


def _finite_count(value: Any) -> int:
    number = _number(value)
    return int(number) if math.isfinite(number) else 0


def cross_split_pairs(duplicates: Mapping[str, Any]) -> int:
    """Duplicate pairs whose two images lie in different splits ("train-test", not "test-test")."""
    return sum(_finite_count(item.get("pairs")) for item in duplicates.get("by_split_pair") or []
               if isinstance(item, Mapping) and len(set(str(item.get("split_pair", "")).split("-"))) == 2)


def _limitations_section(facts: RunFacts, name: str) -> list[str]:
    run, notes = facts.run, []
    row = leaderboard_row(facts.leaderboard, name) or {}
    n_test = _finite_count(row.get("n"))
    if 0 < n_test < SMALL_TEST_SET:
        notes.append(f"Only {n_test} test images: the intervals above are wide.")
    duplicates = _duplicates(facts)
    if duplicates:
        pairs, leaks = _finite_count(duplicates.get("pairs")), cross_split_pairs(duplicates)
        if pairs:
            notes.append(f"The dataset holds {pairs} duplicate pair(s), {leaks} of them across splits: copies of "
                         "training images in the test set flatter the whole-test-set metrics.")
    elif facts.shortcuts is None:
        notes.append("Duplicates not audited yet: public brain-tumor MRI sets are known to hold exact and near "
                     "copies across their training and test folders.")
    gap = _number(row.get("train_minus_test_accuracy"))
    if math.isfinite(gap) and gap > OVERFIT_GAP:
        notes.append(f"Train accuracy exceeds test accuracy by {gap:.0%}: the model overfits its training data.")
    notes += _history_notes(run, name)
    for evaluation_name, evaluation in facts.evaluations.items():
        if isinstance(evaluation, Run) and name in evaluation.models:
            metrics = evaluation.models[name].metrics or {}
            if isinstance(metrics.get("one_class"), Mapping):
                notes.append(f"Evaluation `{evaluation_name}` holds one class only: it measures one rate; AUC, F1 "
                             f"and precision there are {NOT_MEASURABLE}.")
    if facts.shortcuts is not None and isinstance(facts.shortcuts.models.get(name), Mapping):
        verdict = flags.severity_verdict(facts.shortcuts.models[name].get("severity"))
        if verdict in (flags.UNSAFE, flags.UNCERTAIN):
            notes.append("Its decisions partly follow the image's source: expect lower scores on images from "
                         "another scanner or site.")
    notes.append("Trained and tested on 2-D slices of one dataset; no patient-level split is guaranteed unless the "
                 "dataset provides one.")
    return [f"- {note}" for note in notes]


def model_card_text(facts: RunFacts, name: str) -> str:
    """The Markdown card of model ``name`` of ``facts.run``."""
    run = facts.run
    entry = run.entry(name)
    header = [f"# Model card: {name}", "",
              f"{entry.family or 'unknown'} model of run `{run.run_id}` ({len(run.class_names)} classes: "
              f"{', '.join(run.class_names)}). Generated from the run's own files; rewritten whenever its files change."]
    bodies = (
        [INTENDED_USE, "", NOT_FOR_CLINICAL_USE],
        _data_section(run),
        _preprocessing_section(run, name),
        _recipe_section(run, name),
        _metrics_section(facts, name),
        _dedup_section(facts, name),
        _evaluations_section(facts, name),
        _shortcuts_section(facts, name),
        _limitations_section(facts, name),
    )
    lines = header
    for title, body in zip(SECTIONS, bodies):
        lines += ["", f"## {title}", "", *body]
    return "\n".join(lines) + "\n"


def write_model_cards(run_dir: Path | str, models: Sequence[str] | None = None, *,
                      n_resamples: int = run_comparison.LEADERBOARD_RESAMPLES,
                      seed: int = run_comparison.LEADERBOARD_SEED) -> list[Path]:
    """Write (atomically) the card of every finished model of ``run_dir`` with usable results,
    or of ``models`` only; an evaluation folder rewrites its training run's cards. Returns the
    paths written."""
    facts = load_run_facts(Path(run_dir), n_resamples=n_resamples, seed=seed)
    chosen = list(models) if models is not None else list(facts.run.models)
    written = []
    for name in chosen:
        artifacts = facts.run.models.get(name)
        if artifacts is None or not artifacts.usable:
            continue
        text = model_card_text(facts, name)
        path = model_card_path(facts.run.directory, name)
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
        written.append(path)
    return written


def refresh_model_cards(run_dir: Path | str, models: Sequence[str] | None = None,
                        say: Callable[[str], Any] | None = None) -> list[Path]:
    """:func:`write_model_cards` for the stages' hooks: a card that cannot be built is reported
    through ``say`` and never fails the stage that called it (a full disk still stops it)."""
    try:
        return write_model_cards(run_dir, models)
    except (ArtifactError, OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise
        if say is not None:
            say(f"model cards not written: {type(exc).__name__}: {exc}")
        return []
