"""The dashboard as a user sees it, run headless with Streamlit's AppTest."""

import os
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import MANIFEST, read_json, write_json
from dashboard import components as c
from dashboard import loaders
from dashboard.settings import ARTIFACTS_ENV
from fabricate import CLASS_NAMES, SKIPPED, fabricate_run, fabricate_unreadable_run

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
RUN_PAGE = "app_pages/run_details.py"
MODELS_PAGE = "app_pages/models.py"


@pytest.fixture
def open_app(monkeypatch):
    """Run the app on an artifacts folder given through BT_ARTIFACTS."""

    def open_app(artifacts: Path) -> AppTest:
        # pytest's own arguments must not reach the app's --artifacts parser.
        monkeypatch.setattr("sys.argv", [str(APP)])
        monkeypatch.setenv(ARTIFACTS_ENV, str(artifacts))
        # First run imports pandas and plotly: allow more than the 3 s default.
        app = AppTest.from_file(APP, default_timeout=30).run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    return open_app


def displayed_table(element) -> "pa.Table":
    """The cell texts a styled st.dataframe shows (formatted by the Styler)."""
    return pa.ipc.open_stream(element.proto.arrow_data.styler.display_values).read_all()


def test_no_pages_folder_next_to_the_entry_script():
    # A "pages" folder beside app.py puts Streamlit in legacy multipage mode, which runs
    # a page without app.py (no run picker); page files belong in app_pages/.
    assert not (APP.parent / "pages").exists()


def test_models_page_shows_every_model_with_its_metrics(open_app, fabricated_run):
    app = open_app(fabricated_run.run_dir.parent)
    assert app.title[0].value == "Models"
    assert "figshare-demo" in app.markdown[0].value

    table = app.dataframe[0].value
    assert list(table[c.MODEL]) == fabricated_run.model_names
    rows = table.set_index(c.MODEL)
    for name, metrics in fabricated_run.metrics.items():
        assert rows.loc[name, c.ACCURACY] == pytest.approx(metrics["accuracy"])
        assert rows.loc[name, c.MACRO_AUC] == pytest.approx(metrics["macro_auc"])
    assert rows.loc[fabricated_run.failed_model, c.PROBLEM] == fabricated_run.failed_error
    assert rows.loc[fabricated_run.corrupt_model, c.PROBLEM].startswith("ParserError")

    # Shown as percentages; broken models are blank, not zero.
    shown = displayed_table(app.dataframe[0]).to_pandas().set_index(c.MODEL)
    accuracy = fabricated_run.metrics["efficientnet_b0"]["accuracy"]
    assert shown.loc["efficientnet_b0", c.ACCURACY] == f"{accuracy:.1%}"
    assert shown.loc[fabricated_run.failed_model, c.ACCURACY] == c.MISSING

    warning = app.warning[0].value
    assert fabricated_run.failed_model in warning and fabricated_run.failed_error in warning
    assert fabricated_run.corrupt_model in warning and "ParserError" in warning
    assert len(app.get("plotly_chart")) == 1


def test_no_runs_says_so_and_shows_the_command_that_makes_one(open_app, artifacts_dir):
    app = open_app(artifacts_dir)
    assert "No runs" in app.info[0].value
    command = app.code[0].value
    assert "make demo" in command
    assert f"python train_all.py --demo --out {artifacts_dir}" in command
    assert not app.dataframe and not app.sidebar.selectbox

    app.switch_page(RUN_PAGE).run()
    assert not app.exception
    assert "No runs" in app.info[0].value and "make demo" in app.code[0].value


def test_missing_artifacts_folder_reads_as_no_runs(open_app, tmp_path):
    app = open_app(tmp_path / "does-not-exist")
    assert "No runs" in app.info[0].value


def test_unreadable_run_shows_an_error_naming_its_version(open_app, artifacts_dir):
    fabricate_unreadable_run(artifacts_dir, format_version="99.0")
    app = open_app(artifacts_dir)
    assert "99.0" in app.error[0].value
    assert not app.dataframe

    app.switch_page(RUN_PAGE).run()
    assert not app.exception
    assert "99.0" in app.error[0].value


def test_unreadable_run_is_labelled_in_the_picker_and_errors_when_picked(open_app, fabricated_run):
    artifacts = fabricated_run.run_dir.parent
    unreadable = fabricate_unreadable_run(artifacts, format_version="99.0")
    app = open_app(artifacts)

    picker = app.sidebar.selectbox[0]
    assert picker.value == str(fabricated_run.run_dir)  # an unreadable run sorts last
    assert "cannot open" in picker.options[1] and "99.0" in picker.options[1]
    assert not app.error

    picker.select(str(unreadable)).run()
    assert not app.exception
    assert "99.0" in app.error[0].value and not app.dataframe

    # Back to the good run: both pages open.
    app.sidebar.selectbox[0].select(str(fabricated_run.run_dir)).run()
    assert not app.exception and not app.error
    assert list(app.dataframe[0].value[c.MODEL]) == fabricated_run.model_names
    app.switch_page(RUN_PAGE).run()
    assert not app.exception and not app.error
    assert app.title[0].value == "Run"


def test_run_page_shows_counts_skipped_files_and_timing(open_app, fabricated_run):
    app = open_app(fabricated_run.run_dir.parent)
    app.switch_page(RUN_PAGE).run()
    assert not app.exception
    assert app.title[0].value == "Run"

    tables = [element.value for element in app.dataframe]
    counts = next(table for table in tables if "Class" in table.columns).set_index("Class")
    for split, per_class in fabricated_run.counts.items():
        for name in CLASS_NAMES:
            assert counts.loc[name, split] == per_class[name], (split, name)
    assert counts.loc["total", "total"] == sum(sum(per.values()) for per in fabricated_run.counts.values())

    skipped = next(table for table in tables if list(table.columns) == ["path", "reason"])
    assert skipped.to_dict("records") == SKIPPED
    assert [metric.value for metric in app.metric][-1] == "3 min 5 s"


def test_picker_switches_between_runs(open_app, artifacts_dir):
    older = fabricate_run(artifacts_dir, "20240101-000000_old", created="2024-01-01T00:00:00",
                          good_models={"only_cnn": 1.0})
    newer = fabricate_run(artifacts_dir, "20240601-000000_new", created="2024-06-01T00:00:00")
    app = open_app(artifacts_dir)
    assert app.sidebar.selectbox[0].value == str(newer.run_dir)
    assert list(app.dataframe[0].value[c.MODEL]) == newer.model_names

    app.sidebar.selectbox[0].select(str(older.run_dir)).run()
    assert not app.exception
    assert list(app.dataframe[0].value[c.MODEL]) == older.model_names
    assert app.session_state["run_dir"] == str(older.run_dir)


def test_command_line_artifacts_beat_the_environment(monkeypatch, fabricated_run, tmp_path):
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "empty"))
    monkeypatch.setattr("sys.argv", [str(APP), "--artifacts", str(fabricated_run.run_dir.parent)])
    app = AppTest.from_file(APP, default_timeout=30).run()
    assert not app.exception and not app.info
    assert list(app.dataframe[0].value[c.MODEL]) == fabricated_run.model_names


def test_a_rewritten_manifest_is_read_again_and_an_unchanged_one_is_cached(fabricated_run):
    run_dir = fabricated_run.run_dir
    manifest_path = run_dir / MANIFEST
    assert loaders.load_run_tables(run_dir).manifest["dataset"]["name"] == "figshare-demo"
    assert [run.dataset for run in loaders.list_runs(run_dir.parent)] == ["figshare-demo"]

    manifest = read_json(manifest_path)
    manifest["dataset"]["name"] = "retrained"
    before = manifest_path.stat()
    write_json(manifest_path, manifest)
    # Same mtime as before: the cached tables are still served.
    os.utime(manifest_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert loaders.load_run_tables(run_dir).manifest["dataset"]["name"] == "figshare-demo"
    # A newer mtime (training rewrote the manifest): read again.
    os.utime(manifest_path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert loaders.load_run_tables(run_dir).manifest["dataset"]["name"] == "retrained"
    assert loaders.load_manifest(run_dir)["dataset"]["name"] == "retrained"
    assert [run.dataset for run in loaders.list_runs(run_dir.parent)] == ["retrained"]
