"""Where the dashboard looks for runs.

Precedence: ``streamlit run dashboard/app.py -- --artifacts DIR``, then the environment
variable ``BT_ARTIFACTS``, then ``artifacts`` relative to the current directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ARTIFACTS_ENV = "BT_ARTIFACTS"
DEFAULT_ARTIFACTS = "artifacts"


def _argument_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: under pytest or Streamlit, a foreign "--a..." flag must not
    # be taken for --artifacts.
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--artifacts", default=None)
    return parser


def artifacts_dir(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The artifacts folder; ``argv`` defaults to ``sys.argv[1:]``, ``environ`` to ``os.environ``."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    # parse_known_args: the arguments of whoever runs us (pytest, streamlit) are ignored.
    known, _unknown = _argument_parser().parse_known_args(list(argv))
    chosen = known.artifacts or environ.get(ARTIFACTS_ENV) or DEFAULT_ARTIFACTS
    return Path(chosen).expanduser()
