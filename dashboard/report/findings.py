"""The report's finding: shortcut severity, the Shortcuts page's verdict and table, and the
dataset audit (duplicates, de-duplicated metrics, source probe), all read from the stored
``shortcuts/summary.json`` through the Shortcuts page's views; nothing is measured again."""

from __future__ import annotations

from dataclasses import dataclass

from bt_core.artifacts import ArtifactError, Run, ShortcutSummary, load_shortcuts
from bt_dashboard.report.html_parts import bullets, paragraph, section, table_html
from bt_dashboard.views import severity, shortcut_audit
from bt_dashboard.views import shortcuts as view

SEVERITY_TITLE, SHORTCUTS_TITLE, AUDIT_TITLE = "Shortcut severity", "Shortcuts", "Dataset audit"


@dataclass(frozen=True)
class StoredShortcuts:
    """The run's shortcut summary, or why there is none (``problem``: unreadable; both None:
    not measured yet)."""

    summary: ShortcutSummary | None
    problem: str | None = None


def read_stored_shortcuts(run: Run) -> StoredShortcuts:
    try:
        stored = load_shortcuts(run.directory)
        return StoredShortcuts(None if stored is None else view.read_summary(stored))
    except ArtifactError as exc:
        return StoredShortcuts(None, str(exc))


def not_measured_line(run: Run, stored: StoredShortcuts) -> str:
    """Why a shortcut section is empty, with the command that fills it."""
    if stored.problem:
        return f"The shortcut measures cannot be read: {stored.problem}"
    return f"Not measured: run {view.measure_command(run.directory)} to add the shortcut measures."


def accuracies(run: Run) -> dict[str, object]:
    return {name: metrics.get("accuracy") for name, metrics in view.stored_metrics(run).items()}


def severity_section(run: Run, stored: StoredShortcuts) -> str:
    """The finding first: each model's shortcut severity and the swap that drives it."""
    if stored.summary is None:
        return section(SEVERITY_TITLE, paragraph(not_measured_line(run, stored)))
    summary = stored.summary
    table = severity.severity_table(summary, accuracies(run))
    records = view.models(summary)
    return section(
        SEVERITY_TITLE,
        paragraph(severity.severity_headline(summary)),
        table_html(table, percent_columns=(severity.ACCURACY, severity.SEVERITY, severity.LOW, severity.HIGH,
                                           severity.SWAP, severity.STYLE)),
        bullets([severity.severity_sentence(name, records[name]) for name in table[severity.MODEL]]),
        paragraph(severity.severity_caption()),
    )


def shortcuts_section(run: Run, stored: StoredShortcuts) -> str:
    """The Shortcuts page's verdict: headline, one line per model, the per-model table with the
    map baselines, and how to read it."""
    if stored.summary is None:
        return section(SHORTCUTS_TITLE, paragraph(not_measured_line(run, stored)))
    summary = stored.summary
    scores = accuracies(run)
    parts = [
        paragraph(view.verdict_headline(summary)),
        bullets(view.verdict_lines(summary, scores)),
        table_html(view.verdict_table(summary, scores), percent_columns=tuple(view.SHARE_COLUMNS)),
        paragraph(view.verdict_caption(summary)),
        bullets(view.parts_explained()),
    ]
    too_few = view.too_few_caption(summary)  # parts left unjudged: "too few images to judge"
    if too_few:
        parts.append(bullets([line.removeprefix("- ") for line in too_few.splitlines()]))
    skipped = view.skipped_line(summary)
    if skipped:
        parts.append(paragraph(skipped))
    return section(SHORTCUTS_TITLE, *parts)


def audit_section(run: Run, stored: StoredShortcuts) -> str:
    """Duplicates (counts, pairs per split pair), metrics on the de-duplicated test set and
    the source probe, as the Shortcuts page's audit shows them."""
    if stored.summary is None:
        return section(AUDIT_TITLE, paragraph(not_measured_line(run, stored)))
    audit = stored.summary.audit
    if audit.get("skipped"):
        return section(AUDIT_TITLE, paragraph(f"The dataset audit was skipped: {audit['skipped']}"))
    parts = ["<h3>Duplicates</h3>"]
    duplicates = view.mapping(audit.get("duplicates"))
    if duplicates:
        parts.append(paragraph(shortcut_audit.duplicates_line(duplicates)))
        by_split = shortcut_audit.duplicates_by_split(duplicates)
        if not by_split.empty:
            parts.append(table_html(by_split))
        metrics = shortcut_audit.dedup_metrics_table(duplicates, view.stored_metrics(run))
        parts += ["<h3>Metrics on the de-duplicated test set</h3>",
                  table_html(metrics, formats={column: "{:+.1%}" if column.startswith("Δ") else "{:.1%}"
                                               for column in metrics.columns[1:]}),
                  paragraph(shortcut_audit.DEDUP_CAPTION)]
    else:
        parts.append(paragraph("The audit holds no duplicate search."))
    parts.append("<h3>Source probe</h3>")
    probe = shortcut_audit.source_probe_table(audit)
    if probe.empty:
        parts.append(paragraph("The audit holds no source probe."))
    else:
        sentences = [shortcut_audit.source_probe_sentence(str(region), view.mapping(values))
                     for region, values in view.mapping(audit.get("source_probe")).items()]
        parts += [bullets(sentences),
                  table_html(probe, percent_columns=("Balanced accuracy", "Std over folds", view.CHANCE,
                                                     "Region share of image"),
                             formats={"Folds": "{:.0f}", "Images": "{:,.0f}"})]  # counts, not scores
    return section(AUDIT_TITLE, *parts)
