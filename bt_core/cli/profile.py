"""``bt-zoo profile RUN_DIR [--data PATH]`` and ``train_all.py --profile RUN_DIR [--data PATH]``:
(re)write a run's data profile (``data/``, the Data page) from its dataset folder, e.g. for a
run trained before profiles existed. Exit status 2: no such run, or the folder is missing or
no longer the run's dataset (its fingerprint changed)."""

from __future__ import annotations

import logging
from pathlib import Path

from bt_core.cli.actions import EXIT_OK, Stage, status_or_raise
from bt_core.cli.logs import import_tensorflow_quietly
from bt_core.cli.options import RUN_DIR_HELP

_log = logging.getLogger(__name__)

DATA_HELP = "the run's dataset folder (default: the one its manifest names)"


def add_profile_parser(commands) -> None:
    sub = commands.add_parser("profile", help="write (again) the data profile of a run for its Data page",
                              description="Profile a finished run's dataset (class counts, image sizes, "
                                          "intensities, random images, augmentation preview, duplicate groups) "
                                          "into the run's data/ folder, from the dataset folder it was trained on.")
    sub.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    sub.add_argument("--data", metavar="PATH", help=DATA_HELP)


def profile(run_dir: str, data: str | None) -> int:
    """Run :func:`bt_core.runs.data_profile.profile_run`; the exit status."""
    import_tensorflow_quietly()  # the augmentation preview runs the run's own Keras augmentation
    from bt_core.runs.data_profile import profile_run

    try:
        profile_run(Path(run_dir), None if data is None else Path(data), say=_log.info)
    except Exception as exc:  # sorted by status_or_raise; anything else is a bug and keeps its traceback
        return status_or_raise(exc, Stage("profile", Path(run_dir)))
    return EXIT_OK
