"""Shared fixtures: fabricated artifact folders (see tests/fabricate.py) and the app."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bt_core.artifacts import Run, load_run
from bt_core.metrics.run_comparison import ModelData, run_model_data
from bt_dashboard.settings import ARTIFACTS_ENV

from fabricate import FabricatedRun, fabricate_run, fabricate_zoo_run


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    """An empty artifacts folder."""
    path = tmp_path / "artifacts"
    path.mkdir()
    return path


@pytest.fixture
def fabricated_run(artifacts_dir: Path) -> FabricatedRun:
    """One complete run in ``artifacts_dir``: three good models, one failed, one corrupt."""
    return fabricate_run(artifacts_dir)


# The zoo run of the comparison views: one per test module (a module that defines its own
# ``zoo`` or ``run`` fixture uses that one instead).


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> FabricatedRun:
    """The fabricated five-model zoo run (fabricate_zoo_run), one per test module."""
    return fabricate_zoo_run(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def run(zoo: FabricatedRun) -> Run:
    """The zoo run's tables, as the dashboard reads them."""
    return load_run(zoo.run_dir)


@pytest.fixture(scope="module")
def model_data(run: Run) -> dict[str, ModelData]:
    """The zoo run's comparable models."""
    data, _excluded = run_model_data(run)
    return data


APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@pytest.fixture
def open_app(monkeypatch):
    """Run the app (AppTest) on an artifacts folder given through BT_ARTIFACTS."""

    def open_app(artifacts: Path) -> AppTest:
        # pytest's own arguments must not reach the app's --artifacts parser.
        monkeypatch.setattr("sys.argv", [str(APP)])
        monkeypatch.setenv(ARTIFACTS_ENV, str(artifacts))
        # First run imports pandas and plotly: allow more than the 3 s default (a first run took
        # over 60 s on 2 cores loaded by a study and a second suite; 3.5 s idle).
        app = AppTest.from_file(APP, default_timeout=120).run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    return open_app
