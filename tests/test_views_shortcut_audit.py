"""bt_dashboard.views.shortcut_audit: the Shortcuts page's dataset audit (no Streamlit)."""

from __future__ import annotations

import math
import pytest

from bt_dashboard.views import shortcuts as shortcuts_view
from bt_dashboard.views import shortcut_audit as view


def test_source_probe_sentence_says_whether_the_region_gives_the_class_away():
    above = {"balanced_accuracy": 0.52, "std": 0.05, "chance": 0.25}
    assert "well above chance" in view.source_probe_sentence("border", above)
    noisy = {"balanced_accuracy": 0.40, "std": 0.1, "chance": 0.25}  # 15 points < 2 std
    assert "close to chance" in view.source_probe_sentence("background", noisy)
    assert "no result" in view.source_probe_sentence("border", {})
    table = view.source_probe_table({"source_probe": {"border": above}})
    assert table.loc[0, "Balanced accuracy"] == pytest.approx(0.52)


def test_duplicates_by_split_and_deduplicated_metrics():
    duplicates = {
        "pairs": 5, "exact_pairs": 1, "near_pairs": 4, "label_conflicts": 2, "unreadable": 0,
        "max_distance": 4, "min_similarity": 0.92, "test_images": 10, "test_kept": 8,
        "by_split_pair": [{"split_pair": "train-test", "kind": "near", "pairs": 3},
                          {"split_pair": "train-test", "kind": "exact", "pairs": 1},
                          {"split_pair": "test-test", "kind": "near", "pairs": 1}],
        "deduplicated_metrics": {"bad_cnn": {"accuracy": 0.9, "macro_f1": 0.88, "macro_auc": None}},
    }
    by_split = view.duplicates_by_split(duplicates).set_index("Split pair")
    assert by_split.loc["train-test"].to_dict() == {"exact": 1, "near": 3, "total": 4}
    assert by_split.loc["test-test", "total"] == 1
    metrics = view.dedup_metrics_table(duplicates, {"bad_cnn": {"accuracy": 0.95, "macro_f1": 0.9, "macro_auc": 0.99}})
    row = metrics.set_index(shortcuts_view.MODEL).loc["bad_cnn"]
    assert row["Accuracy"] == pytest.approx(0.95) and row["Accuracy (de-dup)"] == pytest.approx(0.9)
    assert row["Δ Accuracy"] == pytest.approx(-0.05) and math.isnan(row["Δ Macro AUC"])
    line = view.duplicates_line(duplicates)
    assert "**5** duplicate pairs (1 exact, 4 near" in line and "**8 of 10**" in line
    assert view.duplicates_by_split({}).empty
