"""bt_dashboard.settings: where the dashboard looks for runs."""

from pathlib import Path
import pytest

from bt_dashboard.settings import ARTIFACTS_ENV, artifacts_dir


def test_command_line_beats_environment_and_default():
    argv = ["--artifacts", "/runs/from-cli"]
    assert artifacts_dir(argv, {ARTIFACTS_ENV: "/runs/from-env"}) == Path("/runs/from-cli")


def test_environment_beats_default():
    assert artifacts_dir([], {ARTIFACTS_ENV: "/runs/from-env"}) == Path("/runs/from-env")


def test_default_is_artifacts_relative_to_the_current_directory():
    assert artifacts_dir([], {}) == Path("artifacts")
    assert not artifacts_dir([], {}).is_absolute()


def test_empty_environment_variable_is_ignored():
    assert artifacts_dir([], {ARTIFACTS_ENV: ""}) == Path("artifacts")


@pytest.mark.parametrize(
    "argv",
    [
        ["--server.port", "8599", "--artifacts", "/runs/x"],
        ["-q", "tests/test_x.py", "--artifacts=/runs/x", "--other", "1"],
    ],
)
def test_foreign_arguments_are_ignored(argv):
    assert artifacts_dir(argv, {}) == Path("/runs/x")


def test_abbreviated_flag_is_not_taken_for_artifacts():
    assert artifacts_dir(["--art", "/runs/x"], {}) == Path("artifacts")


def test_defaults_read_sys_argv_and_os_environ(monkeypatch):
    monkeypatch.setattr("sys.argv", ["dashboard/app.py"])
    monkeypatch.setenv(ARTIFACTS_ENV, "/runs/env")
    assert artifacts_dir() == Path("/runs/env")
    monkeypatch.setattr("sys.argv", ["dashboard/app.py", "--artifacts", "/runs/cli"])
    assert artifacts_dir() == Path("/runs/cli")
