"""The Study page's views on hand-made study tables: known answers, no Streamlit."""

import math

import numpy as np
import pandas as pd
import pytest

from bt_core.artifacts.study import CellRecord, StudySummary
from bt_dashboard.views import study as view
from bt_dashboard.views.common import MISSING

HIERARCHICAL = "hierarchical bootstrap: seeds, then test images within each seed (2000 resamples, percentile 95%)"
SEEDS_ONLY = "t interval over 3 seeds (one value per run; 95%)"


def cells_frame() -> pd.DataFrame:
    """Two models x two variants x three seeds of accuracy; one external sensitivity."""
    rows = []
    for model, base in (("cnn_bn", 0.80), ("simple_cnn", 0.60)):
        for variant, shift in (("none", 0.0), ("crop_head", 0.05)):
            for seed in (0, 1, 2):
                rows.append({"cell_id": f"{model}__{variant}__s{seed}", "model": model, "variant": variant,
                             "seed": seed, "metric": "accuracy", "value": base + shift + 0.01 * seed})
                rows.append({"cell_id": f"{model}__{variant}__s{seed}", "model": model, "variant": variant,
                             "seed": seed, "metric": "eval/br35h/sensitivity", "value": 0.5 + shift})
    return pd.DataFrame(rows)


def groups_from(cells: pd.DataFrame) -> pd.DataFrame:
    """groups.csv of ``cells`` as the contract defines it (sample sd)."""
    grouped = cells.groupby(["model", "variant", "metric"], sort=False)["value"]
    return grouped.agg(n_seeds="count", mean="mean", sd=lambda values: values.std(ddof=1),
                       min="min", max="max").reset_index()


def effects_frame() -> pd.DataFrame:
    rows = [
        ("simple_cnn", "crop_head", "accuracy", 0.05, 0.01, 0.09, True, HIERARCHICAL),
        ("simple_cnn", "crop_head", "eval/br35h/sensitivity", 0.05, -0.02, 0.12, True, HIERARCHICAL),
        ("simple_cnn", "crop_head", "eval/br35h/accuracy", 0.04, -0.02, 0.10, True, HIERARCHICAL),
        ("simple_cnn", "crop_head", "shortcut_score", -0.08, -0.09, -0.07, False, SEEDS_ONLY),
        ("cnn_bn", "crop_head", "accuracy", 0.02, -0.03, 0.07, True, HIERARCHICAL),
        ("cnn_bn", "crop_head", "macro_f1", 0.02, -0.03, 0.07, True, HIERARCHICAL),
    ]
    return pd.DataFrame([{"model": m, "variant": v, "baseline": "none", "metric": metric, "n_seeds": 3,
                          "difference": d, "lower": lo, "upper": up, "paired_images": paired, "method": method}
                         for m, v, metric, d, lo, up, paired, method in rows])


def test_mean_and_sd_read_as_the_brief_writes_them():
    assert view.mean_sd_text(0.9123, 0.0131, 3) == "0.912 ± 0.013 (3 seeds)"
    assert view.mean_sd_text(0.9123, math.nan, 1) == "0.912 (1 seed)"
    assert view.mean_sd_text(math.nan, 0.01, 3) == MISSING
    assert view.flip_text({"flip_rate": 0.0833, "n_pairs": 3, "n_images": 40}) == "0.083 (3 seed pairs, 40 images)"
    assert view.flip_text({"flip_rate": math.nan}) == MISSING


def test_metric_names_read_in_words_and_order_test_external_shortcut():
    assert view.metric_label("dedup_accuracy") == "De-duplicated accuracy"
    assert view.metric_label("eval/br35h/tumor_auc") == "br35h: tumor AUC"
    assert view.metric_label("eval/br35h/sensitivity") == "br35h: sensitivity"
    metrics = ["shortcut_score", "eval/br35h/accuracy", "macro_auc", "accuracy", "eval/br35h/sensitivity", "brier"]
    assert view.ordered_metrics(metrics) == ["accuracy", "macro_auc", "eval/br35h/accuracy",
                                             "eval/br35h/sensitivity", "shortcut_score", "brier"]
    groups = view.metric_groups(metrics)
    assert groups == {"Test split": ["accuracy", "macro_auc"],
                      "External: br35h": ["eval/br35h/accuracy", "eval/br35h/sensitivity"],
                      "Shortcuts": ["shortcut_score"]}
    assert view.headline_metrics(["eval/x/accuracy", "eval/x/brier", "eval/x/sensitivity"]) == [
        "eval/x/accuracy", "eval/x/sensitivity"]


def test_summary_table_has_one_row_per_model_and_variant_in_the_specs_order():
    cells = cells_frame()
    groups = groups_from(cells)
    flips = pd.DataFrame([{"model": "simple_cnn", "variant": "none", "n_seeds": 3, "n_pairs": 3, "n_images": 40,
                           "flip_rate": 0.1}])
    table = view.summary_table(groups, ["accuracy", "macro_f1"], flips,
                               models=["simple_cnn", "cnn_bn"], variants=["none", "crop_head"])
    assert list(zip(table[view.MODEL], table[view.VARIANT])) == [
        ("simple_cnn", "none"), ("simple_cnn", "crop_head"), ("cnn_bn", "none"), ("cnn_bn", "crop_head")]
    values = np.array([0.60, 0.61, 0.62])
    assert table.loc[0, "Accuracy"] == f"{values.mean():.3f} ± {values.std(ddof=1):.3f} (3 seeds)" == \
        "0.610 ± 0.010 (3 seeds)"
    assert table.loc[0, "Macro F1"] == MISSING  # not in the tables: blank, not zero
    assert table.loc[0, view.FLIP_RATE] == "0.100 (3 seed pairs, 40 images)"
    assert table.loc[1, view.FLIP_RATE] == MISSING


def test_seed_figure_draws_every_seed_as_a_dot_and_the_mean_as_a_tick():
    cells = cells_frame()
    groups = groups_from(cells)
    figure = view.seed_figure(cells, groups, "accuracy", models=["simple_cnn", "cnn_bn"],
                              variants=["none", "crop_head"])
    assert figure.layout.scattermode == "group"
    assert list(figure.layout.xaxis.categoryarray) == ["simple_cnn", "cnn_bn"]
    dots = {trace.name: trace for trace in figure.data if trace.showlegend is not False}
    ticks = {trace.name: trace for trace in figure.data if trace.showlegend is False}
    assert list(dots) == ["none", "crop_head"]
    assert len(dots["none"].y) == 6  # two models x three seeds
    expected = cells[(cells["metric"] == "accuracy") & (cells["variant"] == "crop_head")]["value"]
    assert sorted(dots["crop_head"].y) == pytest.approx(sorted(expected))
    mean = groups[(groups["metric"] == "accuracy") & (groups["variant"] == "none")].set_index("model")["mean"]
    tick = ticks["none mean"]
    assert dict(zip(tick.x, tick.y)) == pytest.approx(mean.to_dict())
    assert tick.marker.symbol == "line-ew" and tick.offsetgroup == dots["none"].offsetgroup


def test_effects_keep_the_briefs_metrics_and_name_baseline_and_method():
    effects = effects_frame()
    assert view.effect_metrics(effects) == ["accuracy", "eval/br35h/sensitivity", "shortcut_score"]
    caption = view.effects_caption(effects)
    assert caption.startswith("Baseline: **none**. Difference = variant − baseline, seed-matched; interval: ")
    assert f"{HIERARCHICAL} (Accuracy, br35h: sensitivity, br35h: accuracy, Macro F1)" in caption
    assert f"{SEEDS_ONLY} (Shortcut score)" in caption
    one_method = effects[effects["method"] == HIERARCHICAL]
    assert view.effects_caption(one_method).endswith(f"seed-matched; interval: {HIERARCHICAL}.")

    table = view.effects_table(effects, view.effect_metrics(effects), models=["simple_cnn", "cnn_bn"])
    assert list(zip(table[view.MODEL], table[view.METRIC])) == [
        ("simple_cnn", "Accuracy"), ("simple_cnn", "br35h: sensitivity"), ("simple_cnn", "Shortcut score"),
        ("cnn_bn", "Accuracy")]
    assert table.loc[0, "95% interval"] == "[+0.010, +0.090]"
    assert table.loc[2, "Same images"] == "no" and table.loc[0, "Same images"] == "yes"
    assert table.loc[2, "Method"] == SEEDS_ONLY and table.loc[0, "Baseline"] == "none"


def test_forest_figure_draws_each_difference_with_its_interval_and_a_zero_line():
    effects = effects_frame()
    figure = view.forest_figure(effects, "accuracy", models=["simple_cnn", "cnn_bn"])
    (trace,) = figure.data
    assert list(trace.y) == ["simple_cnn · crop_head", "cnn_bn · crop_head"]
    assert list(trace.x) == pytest.approx([0.05, 0.02])
    assert list(trace.error_x.array) == pytest.approx([0.04, 0.05])  # upper - difference
    assert list(trace.error_x.arrayminus) == pytest.approx([0.04, 0.05])  # difference - lower
    assert [shape.x0 for shape in figure.layout.shapes] == [0]
    assert list(figure.layout.yaxis.categoryarray) == ["cnn_bn · crop_head", "simple_cnn · crop_head"]  # first on top


def cell(cell_id, status, reason=None):
    model, variant, seed = cell_id.split("__")
    return CellRecord(cell_id, model, variant, int(seed[1:]), f"runs/{cell_id}", status, reason)


def test_status_table_lists_failed_cells_first_with_their_reason():
    cells = [cell("a__none__s0", "done"), cell("a__none__s1", "pending"),
             cell("a__none__s2", "failed", "OOM when allocating")]
    table = view.status_table(cells)
    assert list(table["Status"]) == ["failed", "pending", "done"]
    assert table.loc[0, "Reason"] == "OOM when allocating" and table.loc[0, "Cell"] == "a__none__s2"
    assert view.status_line(cells) == "3 cells: 1 done, 1 failed, 1 pending"
    assert view.cell_run_label(cells[0]) == "a · none · seed 0"


def test_study_labels_count_done_cells_and_name_a_broken_study():
    assert view.study_label(StudySummary("mitigations", "/x", "", cells=12, done=9, failed=1)) == \
        "mitigations · 9/12 cells done, 1 failed"
    assert view.study_label(StudySummary("old", "/y", "", error="study has format 2.0")) == \
        "⚠ old — cannot open: study has format 2.0"
