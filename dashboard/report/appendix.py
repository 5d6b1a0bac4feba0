"""The report's closing sections: the external evaluations (each model's stored metrics on
``evaluations/<name>``, one-class ones with what they cannot measure) and the stored model
cards (``MODEL_CARD.md``, Markdown rendered with markdown-it-py: raw HTML escaped, links and
images left as text so the file fetches nothing)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from markdown_it import MarkdownIt

from bt_core.artifacts import ArtifactError, Run, evaluation_dir, evaluation_problems, list_evaluations, load_run
from bt_core.artifacts.reader import load_model_card
from bt_core.metrics.one_class import NOT_MEASURABLE
from bt_core.metrics.run_comparison import run_model_data
from bt_core.metrics.scores import model_scores
from bt_dashboard.report.html_parts import paragraph, section, table_html
from bt_dashboard.views import common
from bt_dashboard.views.run_details import CARDS_COMMAND, evaluation_text

EVALUATIONS_TITLE, CARDS_TITLE = "External evaluations", "Model cards"
EVALUATE_COMMAND = "python train_all.py --evaluate {run_dir} --data PATH"
# metrics.json key -> column, shown as a percentage (AUCs as a number).
EVALUATION_METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro F1", "macro_auc": "Macro AUC",
                      "tumor_sensitivity": "Tumor sensitivity", "tumor_specificity": "Tumor specificity"}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def metric_text(key: str, value: Any, not_measurable: set[str]) -> str:
    if key in not_measurable:
        return NOT_MEASURABLE
    number = _number(value)
    if not math.isfinite(number):
        return common.MISSING
    return f"{number:.3f}" if key.endswith("auc") else f"{number:.1%}"


def evaluation_table(evaluation: Run) -> pd.DataFrame:
    """One row per model of the evaluation: its stored scores as text ("not measurable" where
    a folder of one class cannot score them) and a note (a one-class rate with its Wilson
    interval, or why the model has no scores)."""
    rows = []
    # metrics.json holds no tumor-vs-no-tumor scores: they come from the predictions, as the
    # leaderboard's do.
    data, _excluded = run_model_data(evaluation)
    class_names = list(evaluation.class_names)
    for name, model in evaluation.models.items():
        row: dict[str, Any] = {common.MODEL: name}
        if not model.usable:
            rows.append({**row, **dict.fromkeys(["Images", *EVALUATION_METRICS.values()], common.MISSING),
                         "Note": model.error or "not scored"})
            continue
        metrics = dict(model.metrics)
        if name in data:
            scored = model_scores(data[name].y_true, data[name].proba, class_names)
            metrics.update({key: scored.get(key) for key in ("tumor_sensitivity", "tumor_specificity")
                            if metrics.get(key) is None})
        blank = metrics.get("not_measurable") if isinstance(metrics.get("not_measurable"), Mapping) else {}
        not_measurable = {str(key) for key in blank.get("metrics") or []}
        row["Images"] = str(metrics.get("n_test", len(model.predictions)))
        for key, column in EVALUATION_METRICS.items():
            row[column] = metric_text(key, metrics.get(key), not_measurable)
        record = metrics.get("one_class")
        if isinstance(record, Mapping):
            row["Note"] = (f"{record.get('measure')} ({record.get('class')}) {_number(record.get('value')):.1%}, "
                           f"Wilson 95% {_number(record.get('ci_low')):.1%}–{_number(record.get('ci_high')):.1%}; "
                           f"{blank.get('reason', 'one class only')}")
        else:
            row["Note"] = ""
        rows.append(row)
    return pd.DataFrame(rows, columns=[common.MODEL, "Images", *EVALUATION_METRICS.values(), "Note"])


def evaluations_section(run: Run) -> str:
    if run.is_evaluation:
        return section(EVALUATIONS_TITLE, paragraph("This report is of an external evaluation: "
                                                    + evaluation_text(run.evaluation)))
    names, problems = list_evaluations(run.directory), evaluation_problems(run.directory)
    if not names and not problems:
        return section(EVALUATIONS_TITLE, paragraph(
            f"No external evaluation yet: score the models on another folder with "
            f"{EVALUATE_COMMAND.format(run_dir=run.directory)}."))
    parts = []
    for name in names:
        try:
            evaluation = load_run(evaluation_dir(run.directory, name))
        except ArtifactError as exc:
            problems.setdefault(name, str(exc))
            continue
        if name in problems:
            continue
        parts += [f"<h3>{html.escape(name)}</h3>", paragraph(evaluation_text(evaluation.evaluation))
                  if evaluation.evaluation is not None else ""]
        if evaluation.same_data_as(run):  # scores of the training data itself read as external otherwise
            parts.append(paragraph(f"Not external: {name} is the same dataset the models were trained on "
                                   "(identical fingerprint), so these scores say nothing about other data."))
        parts.append(table_html(evaluation_table(evaluation)))
    parts += [paragraph(f"Evaluation {name} cannot be opened: {problem}") for name, problem in sorted(problems.items())]
    return section(EVALUATIONS_TITLE, *parts)


def markdown_renderer() -> MarkdownIt:
    """CommonMark with tables; raw HTML is escaped and links, images and autolinks stay text."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable(["link", "image", "autolink"])


def render_card(renderer: MarkdownIt, text: str) -> str:
    """A card's Markdown as HTML, its headings two levels down so they sit under the section's."""
    tokens = renderer.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 2, 6)}"
    return renderer.renderer.render(tokens, renderer.options, {})


def cards_section(run: Run) -> str:
    done = [name for name, model in run.models.items() if model.entry.is_done]
    if run.is_evaluation:
        return section(CARDS_TITLE, paragraph("An evaluation has no cards of its own: its training run's cards "
                                              "list it."))
    if not done:
        return section(CARDS_TITLE, paragraph("No model of this run finished training, so none has a card."))
    renderer, parts = markdown_renderer(), []
    for name in done:
        try:
            text = load_model_card(run.directory, name)
        except ArtifactError as exc:
            parts.append(paragraph(f"{name}: the model card cannot be read: {exc}"))
            continue
        if text is None:
            parts.append(paragraph(f"{name}: no model card stored; write it with "
                                   f"{CARDS_COMMAND.format(run_dir=run.directory)}."))
            continue
        parts.append(f"<details open><summary>{html.escape(name)}</summary>"
                     f"<div class='card'>{render_card(renderer, text)}</div></details>")
    return section(CARDS_TITLE, *parts)
