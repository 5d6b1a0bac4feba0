"""bt_core.runs.study_summary and bt_core.artifacts.study_tables on a fabricated study
(tests/fabricate_study.py): every table against direct computations from the cells' files."""

import itertools
import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, recall_score

from bt_core.artifacts import ArtifactError
from bt_core.artifacts.study_tables import (
    CELLS,
    EFFECTS,
    FLIPS,
    GROUPS,
    STUDY_TABLES,
    TABLE_COLUMNS,
    read_study_table,
    study_table_path,
    write_study_table,
)
from bt_core.metrics.study_stats import hierarchical_method
from bt_core.runs.study_summary import write_study_tables
from fabricate_study import fabricate_study, write_study_manifest

BROKEN = "cnn_bn__crop_head__s1"  # done in study.json, but its manifest is garbled
FAILED = "cnn_bn__none__s2"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    study = fabricate_study(tmp_path_factory.mktemp("study"), failed=[FAILED])
    (study.cells[BROKEN].run_dir / "manifest.json").write_text("{not json", encoding="utf-8")
    return study


@pytest.fixture(scope="module")
def tables(study):
    caplog_records = []
    handler = logging.Handler()
    handler.emit = caplog_records.append
    logger = logging.getLogger("bt_core.runs.study_summary")
    logger.addHandler(handler)
    try:
        write_study_tables(study.study_dir)
    finally:
        logger.removeHandler(handler)
    frames = {name: read_study_table(study.study_dir, name) for name in STUDY_TABLES}
    frames["log"] = [record.getMessage() for record in caplog_records]
    return frames


def usable(study):
    return [cell for cell in study.done_cells if cell.cell_id != BROKEN]


def value(cells, cell_id, metric):
    row = cells[(cells["cell_id"] == cell_id) & (cells["metric"] == metric)]
    assert len(row) == 1, (cell_id, metric)
    return float(row["value"].iloc[0])


def test_cells_hold_each_runs_scores_as_sklearn_computes_them(study, tables):
    cells = tables[CELLS]
    assert list(cells.columns) == TABLE_COLUMNS[CELLS]
    assert set(cells["cell_id"]) == {cell.cell_id for cell in usable(study)}
    for cell in usable(study):
        predictions = cell.predictions
        assert value(cells, cell.cell_id, "accuracy") == pytest.approx(
            accuracy_score(predictions["label"], predictions["pred"]))
        kept = predictions.set_index("id").loc[cell.kept_ids]
        assert value(cells, cell.cell_id, "dedup_accuracy") == pytest.approx(accuracy_score(kept["label"], kept["pred"]))
        assert value(cells, cell.cell_id, "shortcut_score") == pytest.approx(cell.shortcut_score)
        assert value(cells, cell.cell_id, "shortcut_severity") == pytest.approx(cell.shortcut_severity)
        assert value(cells, cell.cell_id, "eval/br35h/shortcut_score") == pytest.approx(cell.evaluation_shortcut_score)
        external = cell.evaluation_predictions
        assert value(cells, cell.cell_id, "eval/br35h/sensitivity") == pytest.approx(
            recall_score(external["label"] == "tumor", external["pred"] == "tumor"))
        assert value(cells, cell.cell_id, "eval/br35h/accuracy") == pytest.approx(
            accuracy_score(external["label"], external["pred"]))
    first = usable(study)[0]
    assert cells.loc[cells["cell_id"] == first.cell_id, ["model", "variant", "seed"]].drop_duplicates().values.tolist() \
        == [[first.model, first.variant, first.seed]]
    assert {"macro_f1", "macro_auc"} <= set(cells["metric"])


def test_a_broken_cell_and_a_failed_one_are_left_out_with_a_log_line(study, tables):
    assert BROKEN not in set(tables[CELLS]["cell_id"]) and FAILED not in set(tables[CELLS]["cell_id"])
    assert any(BROKEN in line and "left out" in line for line in tables["log"])


def test_groups_are_numpys_mean_and_sample_sd_over_seeds(study, tables):
    cells, groups = tables[CELLS], tables[GROUPS]
    assert list(groups.columns) == TABLE_COLUMNS[GROUPS]
    for (model, variant, metric), group in cells.groupby(["model", "variant", "metric"]):
        row = groups[(groups["model"] == model) & (groups["variant"] == variant) & (groups["metric"] == metric)]
        values = group["value"].to_numpy()
        assert int(row["n_seeds"].iloc[0]) == len(values)
        assert float(row["mean"].iloc[0]) == pytest.approx(np.mean(values))
        assert float(row["sd"].iloc[0]) == pytest.approx(np.std(values, ddof=1))
        assert (float(row["min"].iloc[0]), float(row["max"].iloc[0])) == (pytest.approx(values.min()),
                                                                          pytest.approx(values.max()))
    accuracy = groups[(groups["model"] == "cnn_bn") & (groups["variant"] == "none") & (groups["metric"] == "accuracy")]
    assert int(accuracy["n_seeds"].iloc[0]) == 2  # seed 2 failed


def effect(effects, model, variant, metric):
    row = effects[(effects["model"] == model) & (effects["variant"] == variant) & (effects["metric"] == metric)]
    assert len(row) == 1, (model, variant, metric)
    return row.iloc[0]


def test_effects_are_seed_matched_differences_against_the_baseline(study, tables):
    cells, effects = tables[CELLS], tables[EFFECTS]
    assert list(effects.columns) == TABLE_COLUMNS[EFFECTS]
    assert set(effects["variant"]) == {"crop_head"} and set(effects["baseline"]) == {"none"}
    assert set(effects["metric"]) == {"accuracy", "dedup_accuracy", "shortcut_score", "shortcut_severity",
                                      "eval/br35h/sensitivity", "eval/br35h/accuracy", "eval/br35h/shortcut_score",
                                      "eval/br35h/shortcut_severity"}
    for model, metric in itertools.product(study.models, ["accuracy", "dedup_accuracy", "shortcut_score",
                                                          "eval/br35h/sensitivity", "eval/br35h/shortcut_score"]):
        done = {cell.cell_id for cell in usable(study)}
        seeds = [seed for seed in study.seeds
                 if all(study.cell(model, variant, seed).cell_id in done for variant in study.variants)]
        differences = [value(cells, study.cell(model, "crop_head", seed).cell_id, metric)
                       - value(cells, study.cell(model, "none", seed).cell_id, metric) for seed in seeds]
        row = effect(effects, model, "crop_head", metric)
        assert int(row["n_seeds"]) == len(seeds)
        assert float(row["difference"]) == pytest.approx(np.mean(differences))
        if len(seeds) > 1 or not metric.endswith("shortcut_score"):  # one seed's shortcut score: no interval
            assert float(row["lower"]) <= float(row["difference"]) <= float(row["upper"])
    # cnn_bn: seed 2 failed in the baseline, seed 1 broke in the variant: only seed 0 is matched.
    assert int(effect(effects, "cnn_bn", "crop_head", "accuracy")["n_seeds"]) == 1
    assert np.isnan(effect(effects, "cnn_bn", "crop_head", "shortcut_score")["lower"])
    accuracy = effect(effects, "simple_cnn", "crop_head", "accuracy")
    assert bool(accuracy["paired_images"]) and accuracy["method"] == hierarchical_method(2000, 0.95, True)
    shortcut = effect(effects, "simple_cnn", "crop_head", "shortcut_score")
    assert not bool(shortcut["paired_images"]) and shortcut["method"].startswith("t interval over")


def test_flips_equal_a_hand_count_of_changed_predictions(study, tables):
    flips = tables[FLIPS]
    assert list(flips.columns) == TABLE_COLUMNS[FLIPS]
    for model, variant in itertools.product(study.models, study.variants):
        group = [cell for cell in usable(study) if (cell.model, cell.variant) == (model, variant)]
        shares = []
        for a, b in itertools.combinations(group, 2):
            changed = sum(pred_a != pred_b for pred_a, pred_b in zip(a.predictions["pred"], b.predictions["pred"]))
            shares.append(changed / len(a.predictions))
        row = flips[(flips["model"] == model) & (flips["variant"] == variant)].iloc[0]
        assert (int(row["n_seeds"]), int(row["n_pairs"]), int(row["n_images"])) == (len(group), len(shares), 48)
        assert float(row["flip_rate"]) == pytest.approx(np.mean(shares))


def test_other_test_images_are_not_paired_and_a_study_without_done_cells_has_empty_tables(tmp_path):
    unpaired = fabricate_study(tmp_path, "grouped", models=["simple_cnn"], variants=["none", "grouped"], seeds=[0, 1],
                               test_per_class=5, evaluation=None, unpaired_variants=["grouped"])
    write_study_tables(unpaired.study_dir)
    effects = read_study_table(unpaired.study_dir, EFFECTS)
    accuracy = effect(effects, "simple_cnn", "grouped", "accuracy")
    assert not bool(accuracy["paired_images"]) and "drawn on their own" in accuracy["method"]
    assert not any(metric.startswith("eval/") for metric in effects["metric"])

    empty = fabricate_study(tmp_path, "waiting", models=["simple_cnn"], variants=["none"], seeds=[0],
                            pending=["simple_cnn__none__s0"])
    for name in STUDY_TABLES:  # not written yet: empty, with the columns
        assert read_study_table(empty.study_dir, name).empty
    write_study_tables(empty.study_dir)
    assert all(read_study_table(empty.study_dir, name).columns.tolist() == TABLE_COLUMNS[name]
               for name in STUDY_TABLES)


def test_tables_refuse_other_columns_and_name_missing_files_and_columns(study, tmp_path):
    frame = pd.DataFrame({column: [] for column in TABLE_COLUMNS[FLIPS]}).assign(extra=[])
    with pytest.raises(ValueError, match=r"study table flips: columns differ .*unknown extra"):
        write_study_table(study.study_dir, FLIPS, frame)
    with pytest.raises(ValueError, match="missing flip_rate"):
        write_study_table(study.study_dir, FLIPS, frame.drop(columns=["extra", "flip_rate"]))
    with pytest.raises(ValueError, match="unknown study table 'nope'"):
        study_table_path(study.study_dir, "nope")

    copy = fabricate_study(tmp_path, "copy", models=["simple_cnn"], variants=["none"], seeds=[0], test_per_class=3,
                           evaluation=None)
    with pytest.raises(ArtifactError, match=r"cells.csv is missing; write the study tables again"):
        read_study_table(copy.study_dir, CELLS)
    path = study_table_path(copy.study_dir, GROUPS)
    path.parent.mkdir(parents=True)
    path.write_text("model,variant,metric\nsimple_cnn,none,accuracy\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match="groups.csv lacks the columns n_seeds, mean, sd, min, max"):
        read_study_table(copy.study_dir, GROUPS)
    copy.cells["simple_cnn__none__s0"].status = "pending"
    write_study_manifest(copy)
    assert read_study_table(copy.study_dir, CELLS).empty  # nothing done: an absent table is normal
