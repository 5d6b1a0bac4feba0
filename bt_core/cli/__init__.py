"""The command lines: ``train_all.py`` (:mod:`bt_core.cli.train_all`, one flat table of flags)
and the installed ``bt-zoo`` (:mod:`bt_core.cli.zoo`, one sub-command per job), sharing their
options (``options``), what they do (``actions``) and their logging set-up (``logs``)."""

from bt_core.cli.actions import (
    DEMO_DEFAULTS,
    EXIT_DISK_FULL,
    EXIT_INTERRUPTED,
    EXIT_MODEL_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Stage,
    build_config,
)
from bt_core.cli.options import DEMO_DATA_DIR, FIND_RUN
from bt_core.cli.train_all import main, parse_args

__all__ = ["DEMO_DATA_DIR", "DEMO_DEFAULTS", "EXIT_DISK_FULL", "EXIT_INTERRUPTED", "EXIT_MODEL_FAILED", "EXIT_OK",
           "EXIT_USAGE", "FIND_RUN", "Stage", "build_config", "main", "parse_args"]
