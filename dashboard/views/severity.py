"""What the Shortcuts page and the report lead with: each model's shortcut severity (the share
of its decisions that follow the source rather than the anatomy) and the counterfactual
probes that drive it, as stored by the analysis pass (bt_core.shortcuts.counterfactual).
The verdict rule is :func:`bt_core.shortcuts.flags.severity_verdict`; nothing here re-decides it."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from bt_core.artifacts import ShortcutSummary
from bt_core.shortcuts import flags
from bt_dashboard.views.common import as_number
from bt_dashboard.views.shortcuts import mapping, models, percent

MODEL, ACCURACY, SEVERITY, LOW, HIGH = "Model", "Test accuracy", "Severity", "Low (95%)", "High (95%)"
VERDICT, DRIVER, SWAP, STYLE, OLD_SCORE = ("Verdict", "Driving probe", "Outside swap only", "Style only",
                                           "Parts score (old)")
SEVERITY_COLUMNS = [MODEL, ACCURACY, SEVERITY, LOW, HIGH, VERDICT, DRIVER, SWAP, STYLE, OLD_SCORE]

PROBE_LABELS = {
    "source_swap": "Source swap",
    "source_swap_control": "Source swap, control (same class)",
    "style_match": "Style of the no-tumor class",
    "style_match_control": "Style, control (own class)",
    "border_black": "Border blacked out",
    "border_inpaint": "Border inpainted",
    "style_border_black": "No-tumor style + border blacked out",
    "style_border_black_control": "Own style + border blacked out (control)",
    "style_border_inpaint": "No-tumor style + border inpainted",
    "style_border_inpaint_control": "Own style + border inpainted (control)",
}
MEASURE_LABELS = {"flip_to_donor": "to donor class", "changed": "changed"}
PROBE_COLUMNS = ["Probe", "Class", "Donor", "Images", "Measure", "Value", "Low (95%)", "High (95%)",
                 "Chance", "Control", "Excess"]


def severity_record(record: Any) -> Mapping[str, Any] | None:
    value = mapping(record).get("severity")
    return value if isinstance(value, Mapping) else None


def verdict(record: Mapping[str, Any]) -> str:
    return flags.severity_verdict(severity_record(record))


def severity_table(summary: ShortcutSummary, accuracies: Mapping[str, Any]) -> pd.DataFrame:
    """One row per measured model, most severe first; numbers are floats (NaN: not measured)."""
    rows = []
    for name, record in models(summary).items():
        severity = mapping(severity_record(record))
        rows.append({
            MODEL: name,
            ACCURACY: as_number(accuracies.get(name)),
            SEVERITY: as_number(severity.get("severity")),
            LOW: as_number(severity.get("ci_low")),
            HIGH: as_number(severity.get("ci_high")),
            VERDICT: verdict(record),
            DRIVER: str(severity.get("driving_pair") or ""),
            SWAP: as_number(mapping(mapping(record).get("swap_severity")).get("severity")),
            STYLE: as_number(mapping(mapping(record).get("style_severity")).get("severity")),
            OLD_SCORE: as_number(mapping(record).get("score")),
        })
    table = pd.DataFrame(rows, columns=SEVERITY_COLUMNS)
    numeric = [ACCURACY, SEVERITY, LOW, HIGH, SWAP, STYLE, OLD_SCORE]
    table[numeric] = table[numeric].astype("float64")
    return table.sort_values(SEVERITY, ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def style_severity_table(table: pd.DataFrame) -> Styler:
    colours = {flags.UNSAFE: "background-color: #f8d7da", flags.UNCERTAIN: "background-color: #fff3cd"}
    return (table.style.format("{:.1%}", subset=[ACCURACY, SEVERITY, LOW, HIGH, SWAP, STYLE], na_rep="not measured")
            .format("{:.2f}", subset=[OLD_SCORE], na_rep="n/a")
            .map(lambda value: colours.get(value, ""), subset=[VERDICT]))


def severity_headline(summary: ShortcutSummary) -> str:
    verdicts = [verdict(record) for record in models(summary).values()]
    measured = [v for v in verdicts if v != flags.NOT_MEASURED]
    if not measured:
        return "No model of this run has a severity yet: measure the run again (the command below)."
    unsafe = verdicts.count(flags.UNSAFE)
    uncertain = verdicts.count(flags.UNCERTAIN)
    text = (f"{unsafe} of {len(measured)} measured models {'is' if unsafe == 1 else 'are'} unsafe: "
            f"more than {flags.SEVERITY_UNSAFE:.0%} of their decisions follow the source rather than the anatomy")
    return text + (f"; {uncertain} more {'is' if uncertain == 1 else 'are'} uncertain." if uncertain else ".")


def severity_sentence(name: str, record: Mapping[str, Any]) -> str:
    """One model's severity in words, with the swap that drives it and that swap's control."""
    severity = mapping(severity_record(record))
    value = as_number(severity.get("severity"))
    if not np.isfinite(value):
        return f"**{name}**: no severity measured."
    interval = f"[{percent(as_number(severity.get('ci_low')))}, {percent(as_number(severity.get('ci_high')))}]"
    text = (f"**{name}** ({verdict(record)}): about {percent(value)} {interval} of its decisions follow the "
            "source rather than the anatomy")
    pair = str(severity.get("driving_pair") or "")
    if not pair:
        return text + "; no swap of the outside of the head moves its decisions beyond the same-class control."
    recipient, _, donor = pair.partition(" -> ")
    flip = percent(as_number(severity.get(f"flip_to_donor.{recipient}")))
    control = percent(as_number(severity.get(f"control.{recipient}")))
    change = (f"the outside of a {donor} image" if severity.get(f"probe.{recipient}") != "style_match"
              else f"the intensity style of the {donor} class")
    return (text + f". Most of it: {flip} of its {recipient} images are called {donor} once they get {change} "
            f"(the same change within {recipient} moves {control}).")


def probe_rows(record: Mapping[str, Any]) -> pd.DataFrame:
    """The stored counterfactual table as shown: labelled probes, the measured rows only."""
    stored = mapping(record).get("counterfactual")
    frame = pd.DataFrame(list(stored) if isinstance(stored, list) else [])
    if frame.empty or "probe" not in frame:
        return pd.DataFrame(columns=PROBE_COLUMNS)
    frame = frame[pd.to_numeric(frame.get("n"), errors="coerce").fillna(0) > 0]
    table = pd.DataFrame({
        "Probe": frame["probe"].map(lambda p: PROBE_LABELS.get(p, p)),
        "Class": frame["recipient_class"].astype(str),
        "Donor": frame["donor_class"].fillna("").astype(str),
        "Images": pd.to_numeric(frame["n"], errors="coerce").astype("Int64"),
        "Measure": frame["measure"].map(lambda m: MEASURE_LABELS.get(m, m)),
        **{label: pd.to_numeric(frame[key], errors="coerce").astype("float64") for label, key in (
            ("Value", "value"), ("Low (95%)", "ci_low"), ("High (95%)", "ci_high"),
            ("Chance", "chance"), ("Control", "control"), ("Excess", "excess"))},
    })
    return table.reset_index(drop=True)


def style_probe_rows(table: pd.DataFrame) -> Styler:
    shares = ["Value", "Low (95%)", "High (95%)", "Chance", "Control", "Excess"]
    def shade(value: float) -> str:  # no matplotlib: a plain red scale on the excess
        return f"background-color: rgba(220, 53, 69, {min(1.0, value) * 0.6:.2f})" if np.isfinite(value) and value > 0 else ""
    return table.style.format("{:.0%}", subset=shares, na_rep="—").map(shade, subset=["Excess"])


def severity_caption() -> str:
    return (f"Severity: the expected share of a model's decisions that follow the source rather than the anatomy. "
            "Each test image keeps its anatomy and gets either the outside (background and border band) of an image "
            "of another class, or the intensity style of the no-tumor class inside its head; the severity weights, per "
            "class, the largest share of decisions that then go to the donor's class, beyond the same change within "
            "the class (the control). "
            f"Unsafe: its lower 95% bound above {flags.SEVERITY_UNSAFE:.0%}; uncertain: the point above, the bound not. "
            "Outside swap only / style only: the two sides of it. The parts score is the earlier mean of where the "
            "maps look.")
