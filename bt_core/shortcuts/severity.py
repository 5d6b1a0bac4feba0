"""One severity with a meaning from the counterfactual table: the expected share of a model's
decisions that follow the source rather than the anatomy (:func:`source_following_share`).
The verdict on it (unsafe / uncertain) is :func:`bt_core.shortcuts.flags.severity_verdict`."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bt_core.shortcuts.counterfactual import COLUMNS, SWAP_PROBES


def source_following_share(
    table: pd.DataFrame,
    class_counts: Mapping[str, int] | pd.Series,
    probes: Sequence[str] = SWAP_PROBES,
) -> dict[str, float | str]:
    """Expected share of the model's decisions that follow the source rather than the anatomy.

    For each class r: ``part_r = max over donors d of excess(r -> d)``, where ``excess =
    max(0, flip_to_donor(r -> d) - control_changed(r))``: the share of r's images whose
    decision goes to the donor's class when only the outside of the head changes, beyond how
    often any change of outside moves it. ``severity = sum_r w_r part_r`` with ``w_r`` the
    class's share of ``class_counts`` (its test-set count). A class without a measured row
    (no pair, n = 0, no control) counts 0 and is left out of ``covered_share``: the severity is
    then a lower bound. ``probes``: the probes whose ``flip_to_donor`` rows count
    (``("source_swap", "style_match")`` to count style as source too).

    Interval: each part's is the Wilson 95 % interval of its driving pair's flip rate minus
    the control's point value, clipped at 0; the severity's sums the parts' bounds weighted
    (wider than a joint interval; ignores the control's own noise and that the driving pair
    is the largest of several).

    Returns a flat, JSON-ready dict: ``severity``, ``ci_low``, ``ci_high``, ``covered_share``,
    ``driving_pair`` (``"recipient -> donor"``, ``""`` when nothing follows the source),
    ``probes``, ``interval``, and per class ``part.<class>``, ``weight.<class>``,
    ``pair.<class>``, ``probe.<class>`` (the probe of that pair), ``flip_to_donor.<class>``,
    ``control.<class>``, ``ci_low.<class>``, ``ci_high.<class>``.
    """
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"table lacks the counterfactual columns {missing}")
    counts = {str(name): float(count) for name, count in dict(class_counts).items()}
    total = sum(counts.values())
    if total <= 0 or any(count < 0 for count in counts.values()):
        raise ValueError(f"class_counts must be non-negative with a positive sum, got {counts}")
    rows = table[table["probe"].isin(list(probes)) & (table["measure"] == "flip_to_donor")]
    unknown = sorted(set(rows["recipient_class"].astype(str)) - set(counts))
    if unknown:
        raise ValueError(f"class_counts has no count for the table's classes {unknown}")
    result: dict[str, float | str] = {}
    severity = low = high = covered = 0.0
    driver, driver_share = "", 0.0
    for name, count in counts.items():
        weight = count / total
        measured = rows[(rows["recipient_class"].astype(str) == name) & np.isfinite(rows["excess"].astype(float))]
        part = part_low = part_high = flip = control = math.nan
        pair = probe = ""
        if len(measured):
            best = measured.loc[measured["excess"].astype(float).idxmax()]
            part, flip, control = float(best["excess"]), float(best["flip_to_donor"]), float(best["control"])
            part_low = max(0.0, float(best["ci_low"]) - control)
            part_high = max(0.0, float(best["ci_high"]) - control)
            pair, probe = f"{name} -> {best['donor_class']}", str(best["probe"])
            severity, covered = severity + weight * part, covered + weight
            low, high = low + weight * part_low, high + weight * part_high
            if weight * part > driver_share:
                driver, driver_share = pair, weight * part
        result.update({
            f"part.{name}": part, f"weight.{name}": weight, f"pair.{name}": pair, f"probe.{name}": probe,
            f"flip_to_donor.{name}": flip, f"control.{name}": control,
            f"ci_low.{name}": part_low, f"ci_high.{name}": part_high,
        })
    return {
        "severity": severity, "ci_low": low, "ci_high": high, "covered_share": covered,
        "driving_pair": driver, "probes": ",".join(probes),
        "interval": "Wilson 95% of the driving pair's flip rate minus its control, weighted sum of the parts' bounds",
        **result,
    }
