"""Shared fixtures: fabricated artifact folders (see tests/fabricate.py)."""

from pathlib import Path

import pytest

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
