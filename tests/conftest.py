"""Shared fixtures: fabricated artifact folders (see tests/fabricate.py)."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.settings import ARTIFACTS_ENV

from fabricate import FabricatedRun, fabricate_run


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


APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@pytest.fixture
def open_app(monkeypatch):
    """Run the app (AppTest) on an artifacts folder given through BT_ARTIFACTS."""

    def open_app(artifacts: Path) -> AppTest:
        # pytest's own arguments must not reach the app's --artifacts parser.
        monkeypatch.setattr("sys.argv", [str(APP)])
        monkeypatch.setenv(ARTIFACTS_ENV, str(artifacts))
        # First run imports pandas and plotly: allow more than the 3 s default.
        app = AppTest.from_file(APP, default_timeout=30).run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    return open_app
