"""The Study and Compare runs pages (and the study picker), run headless with AppTest on a
fabricated study (tests/fabricate_study.py, its tables written by bt_core.runs.study_summary)
beside a plain run, and on plain run folders without studies."""

from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import load_run, write_json
from bt_core.artifacts.study_tables import read_study_table
from bt_core.metrics.run_comparison import leaderboard
from bt_core.runs.study_summary import write_study_tables
from bt_dashboard.settings import ARTIFACTS_ENV
from bt_dashboard.study_picker import NO_STUDY
from bt_dashboard.views import run_pair, study as study_view
from bt_dashboard.views.common import ACCURACY, MODEL

from fabricate import fabricate_run
from fabricate_study import cell_id_of, fabricate_study

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
STUDY_PAGE = "app_pages/study.py"
COMPARE_PAGE = "app_pages/compare_runs.py"
MODELS_PAGE = "app_pages/models.py"
FAILED_CELL = "cnn_bn__crop_head__s1"
RESAMPLES = 200  # enough for the page: the test checks what is shown, not the interval


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    """An artifacts folder holding a plain run and a study of 2 models x 2 variants x 2 seeds
    (one cell failed) with its tables."""
    artifacts = tmp_path_factory.mktemp("study_artifacts")
    run = fabricate_run(artifacts)
    study = fabricate_study(artifacts, seeds=(0, 1), test_per_class=6, evaluation_images=16, failed=[FAILED_CELL])
    write_study_tables(study.study_dir, n_resamples=RESAMPLES)
    return artifacts, run, study


@pytest.fixture
def open_at(monkeypatch):
    """The app on ``artifacts``, switched to ``page``."""

    def open_at(artifacts: Path, page: str | None = None) -> AppTest:
        monkeypatch.setattr("sys.argv", [str(APP)])
        monkeypatch.setenv(ARTIFACTS_ENV, str(artifacts))
        app = AppTest.from_file(APP, default_timeout=60).run()
        if page is not None:
            app.switch_page(page).run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    return open_at


def sidebar_box(app: AppTest, label: str):
    return next(box for box in app.sidebar.selectbox if box.label == label)


def test_study_page_shows_the_picked_studys_tables_figures_and_cells(open_at, study_folder):
    artifacts, _run, study = study_folder
    app = open_at(artifacts, STUDY_PAGE)
    assert sidebar_box(app, "Study").value == str(study.study_dir)  # the newest study is picked first
    assert app.title[0].value == "Study"
    assert not app.error and not app.warning
    assert len(app.get("plotly_chart")) == 2  # the seeds' strip and the forest plot

    # The table reads groups.csv: one row per model x variant, "mean ± sd (n seeds)".
    groups = read_study_table(study.study_dir, "groups").set_index(["model", "variant", "metric"])
    table = app.dataframe[0].value.set_index([study_view.MODEL, study_view.VARIANT])
    assert list(table.index) == [(m, v) for m in study.models for v in study.variants]
    stored = groups.loc[("cnn_bn", "crop_head", "accuracy")]
    assert stored["n_seeds"] == 1  # the failed cell is not counted: one seed, no sd
    assert table.loc[("cnn_bn", "crop_head"), "Accuracy"] == f"{stored['mean']:.3f} (1 seed)"
    stored = groups.loc[("simple_cnn", "crop_head", "accuracy")]
    assert table.loc[("simple_cnn", "crop_head"), "Accuracy"] == (
        f"{stored['mean']:.3f} ± {stored['sd']:.3f} (2 seeds)")
    # ... which are the cells' own accuracies over seeds.
    predictions = [study.cell("simple_cnn", "crop_head", seed).predictions for seed in (0, 1)]
    values = [float((p["label"] == p["pred"]).mean()) for p in predictions]
    assert stored["mean"] == pytest.approx(np.mean(values)) and stored["sd"] == pytest.approx(np.std(values, ddof=1))

    caption = next(md.value for md in app.markdown if md.value.startswith("Baseline:"))
    assert caption.startswith("Baseline: **none**. Difference = variant − baseline, seed-matched; interval: ")
    assert "hierarchical bootstrap" in caption
    assert app.selectbox(key="study_effect_metric").options == [
        "Accuracy", "De-duplicated accuracy", "br35h: sensitivity", "br35h: shortcut score", "Shortcut score",
        "Shortcut severity"]
    cells = app.expander[0]
    assert cells.label == "Cell status (8 cells: 7 done, 1 failed)"
    status = cells.dataframe[0].value
    assert status.loc[0, "Cell"] == FAILED_CELL and status.loc[0, "Reason"] == "RuntimeError: fabricated failure"

    app.selectbox(key="study_metric").select("shortcut_score").run()
    assert not app.exception
    assert "Shortcut score: every seed" in app.get("plotly_chart")[0].proto.spec


def test_the_run_picker_offers_the_studys_cells_as_normal_runs(open_at, study_folder):
    artifacts, run, study = study_folder
    app = open_at(artifacts)
    picker = sidebar_box(app, "Run")
    assert picker.value == str(run.run_dir)  # the folder's own run first: the newest run as before
    assert "simple_cnn · crop_head · seed 1" in picker.options
    assert "cnn_bn · crop_head · seed 0" in picker.options
    assert "cnn_bn · crop_head · seed 1" not in picker.options  # the failed cell: no run folder
    cell = study.cell("simple_cnn", "crop_head", 1)
    picker.select(str(cell.run_dir)).run()
    assert not app.exception and app.title[0].value == "Models"
    assert list(app.dataframe[0].value[MODEL]) == ["simple_cnn"]

    # A link to a cell (what Compare runs' Inspect links are) opens it: ?run=<cell id>.
    linked = AppTest.from_file(APP, default_timeout=60)
    linked.query_params["run"] = cell.cell_id
    linked.run()
    assert not linked.exception and not linked.warning
    assert sidebar_box(linked, "Run").value == str(cell.run_dir)

    sidebar_box(app, "Study").select(NO_STUDY).run()  # no study: its cells leave the picker
    assert not app.exception
    assert not any("seed" in option for option in sidebar_box(app, "Run").options)
    app.switch_page(STUDY_PAGE).run()
    assert app.info[0].value == "Pick a study in the sidebar (**Study**) to see it here."


def test_a_study_without_finished_cells_and_a_broken_study(open_at, tmp_path):
    waiting = fabricate_study(tmp_path, "waiting", models=("simple_cnn",), seeds=(0,),
                              pending=[cell_id_of("simple_cnn", v, 0) for v in ("none", "crop_head")])
    broken = tmp_path / "broken"
    broken.mkdir()
    write_json(broken / "study.json", {"kind": "study", "study_format_version": "9.0", "study_id": "broken"})
    app = open_at(tmp_path, STUDY_PAGE)
    picker = sidebar_box(app, "Study")
    assert picker.value == str(waiting.study_dir)
    assert "⚠ broken — cannot open:" in picker.options[2] and "9.0" in picker.options[2]
    assert app.info[0].value == study_view.NO_CELL_DONE
    assert app.expander[0].label == "Cell status (2 cells: 2 pending)"
    assert not app.get("plotly_chart")

    picker.select(str(broken)).run()
    assert not app.exception
    assert "cannot be opened" in app.error[0].value and "9.0" in app.error[0].value

    # Done cells whose tables were never written: no warning (normal), the command that writes them.
    untabled = fabricate_study(tmp_path, "untabled", models=("simple_cnn",), variants=("none",), seeds=(0,),
                               evaluation=None)
    app.run()  # the picker lists the new study
    sidebar_box(app, "Study").select(str(untabled.study_dir)).run()
    assert not app.exception
    assert not app.warning
    assert app.info[0].value == study_view.no_results_message(1, str(untabled.study_dir))
    assert f"python train_all.py --resume {untabled.study_dir}" in app.info[0].value
    assert app.info[0].value.startswith("1 cell is done, but the study's tables hold no result yet")


def test_without_studies_the_pages_say_what_they_need(open_at, fabricated_run):
    app = open_at(fabricated_run.run_dir.parent, STUDY_PAGE)
    assert [box.label for box in app.sidebar.selectbox] == ["Run"]  # no study picker
    assert app.info[0].value.startswith("No study in ")
    assert "--study study.toml" in app.code[0].value
    app.switch_page(COMPARE_PAGE).run()
    assert not app.exception
    assert app.info[0].value.startswith("This page needs two test sets") and app.info[0].value.endswith("has 1.")


def test_compare_runs_shows_deltas_confusion_difference_and_disagreements(open_at, tmp_path):
    newer = fabricate_run(tmp_path, "20240601-000000_b", created="2024-06-01T00:00:00", seed=3)
    older = fabricate_run(tmp_path, "20240501-000000_a", created="2024-05-01T00:00:00", seed=1)
    app = open_at(tmp_path, COMPARE_PAGE)
    # A: the run the sidebar shows (the newest), B: the other.
    assert app.selectbox(key="compare_a").value == str(newer.run_dir)
    assert app.selectbox(key="compare_b").value == str(older.run_dir)
    assert not app.error
    assert len(app.get("plotly_chart")) == 2  # the deltas and the confusion difference

    board_a, board_b = leaderboard(load_run(newer.run_dir)), leaderboard(load_run(older.run_dir))
    deltas = app.dataframe[0].value.set_index([MODEL, run_pair.SCORE])
    for name in newer.good_models:
        expected = board_b.set_index("model").at[name, "accuracy"] - board_a.set_index("model").at[name, "accuracy"]
        assert deltas.loc[(name, ACCURACY), run_pair.DELTA] == pytest.approx(expected)

    model = app.selectbox(key="compare_model").value
    assert model == newer.good_models[0]
    a = newer.predictions[model].set_index("id")
    b = older.predictions[model].set_index("id")
    differ = a.index[a["pred"] != b.loc[a.index, "pred"]]
    shown = app.dataframe[1].value
    assert sorted(shown["id"]) == sorted(differ)
    first = shown.iloc[0]
    assert first["A predicts"] == a.at[first["id"], "pred"] and first["B predicts"] == b.at[first["id"], "pred"]
    assert any(md.value.startswith(f"{len(differ)} of the {len(a)} images both scored") for md in app.markdown)

    links = {link.proto.label: parse_qs(link.proto.query_string) for link in app.get("page_link")
             if link.proto.page.endswith("inspect")}
    assert links["Inspect on A"] == {"run": [newer.run_dir.name], "models": [model], "image": [first["id"]]}
    assert links["Inspect on B"]["run"] == [older.run_dir.name]


def test_compare_a_cell_with_its_evaluation_says_what_cannot_be_compared(open_at, study_folder):
    artifacts, _run, study = study_folder
    app = open_at(artifacts, COMPARE_PAGE)
    cell = study.cell("simple_cnn", "none", 0)
    app.selectbox(key="compare_a").select(str(cell.run_dir)).run()
    app.selectbox(key="compare_b").select(str(cell.run_dir / "evaluations" / study.evaluation)).run()
    assert not app.exception and not app.error
    infos = [info.value for info in app.info]
    assert any(text.startswith("No confusion difference: the two test sets have different classes") for text in infos)
    assert "The two test sets share no image id: there is nothing to compare image by image." in infos
    assert len(app.get("plotly_chart")) == 1  # the deltas only
