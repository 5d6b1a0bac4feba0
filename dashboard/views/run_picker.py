"""What the sidebar run picker shows (no Streamlit): one label per run, and the commands
that make a first run.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from bt_core.artifacts import RunSummary


def run_label(summary: RunSummary) -> str:
    """One line of the run picker: run id, dataset and model count, or why it cannot open."""
    if summary.error:
        return f"⚠ {summary.run_id} — cannot open: {summary.error}"
    dataset = summary.dataset or "unknown dataset"
    models = "model" if summary.model_count == 1 else "models"
    return f"{summary.run_id} · {dataset} · {summary.model_count} {models}"


def demo_command(artifacts_dir: Path | str) -> str:
    """The commands that create a first run in ``artifacts_dir``."""
    return (
        "make demo\n"
        "# or, for another artifacts folder:\n"
        f"python train_all.py --demo --out {shlex.quote(str(artifacts_dir))}"
    )
