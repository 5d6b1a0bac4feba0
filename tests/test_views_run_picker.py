"""bt_dashboard.views.run_picker: the run picker's labels and first-run command (no Streamlit)."""

from pathlib import Path
import pytest

from bt_core.artifacts import RunSummary, load_run
from bt_dashboard.views import run_picker as view


@pytest.fixture
def run(fabricated_run):
    return load_run(fabricated_run.run_dir)


def test_run_label_names_run_dataset_and_model_count():
    summary = RunSummary("20240501-run", Path("/a/20240501-run"), "2024-05-01", "figshare", 3)
    assert view.run_label(summary) == "20240501-run · figshare · 3 models"
    single = RunSummary("r", Path("/a/r"), "", "", 1)
    assert view.run_label(single) == "r · unknown dataset · 1 model"


def test_run_label_of_a_broken_run_carries_the_error():
    summary = RunSummary("r", Path("/a/r"), "", "", 0, error="run has artifact format 99.0")
    label = view.run_label(summary)
    assert label.startswith("⚠ r") and "run has artifact format 99.0" in label


def test_demo_command_names_make_demo_and_the_quoted_folder():
    command = view.demo_command(Path("/tmp/my runs"))
    assert command.splitlines()[0] == "make demo"
    assert "python train_all.py --demo --out '/tmp/my runs'" in command
