"""``bt-zoo dashboard``: Streamlit on the installed dashboard app, with the project's server
settings wherever it is started.

The settings have one source, the repository's ``.streamlit/config.toml`` (what
``streamlit run dashboard/app.py`` reads there); ``streamlit_config.toml`` next to this file
is a link to it, shipped in the package, and every value is passed to Streamlit as a
``--section.key=value`` flag, so an installed copy run from any folder gets the same server.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

SETTINGS_FILE = Path(__file__).with_name("streamlit_config.toml")
DEFAULT_PORT = 8501

_log = logging.getLogger(__name__)


def add_dashboard_parser(commands) -> None:
    sub = commands.add_parser("dashboard", help="open the dashboard on a folder of runs",
                              description="Serve the Streamlit dashboard on the runs in --artifacts, with the "
                                          "project's server settings (localhost only unless --address says "
                                          "otherwise, 20 MB uploads, XSRF on, tracebacks hidden).")
    sub.add_argument("--artifacts", help="folder of run folders (default: $BT_ARTIFACTS, else ./artifacts)")
    sub.add_argument("--port", type=int, default=None, help=f"port to listen on (default {DEFAULT_PORT})")
    sub.add_argument("--address", default=None,
                     help="address to listen on (default: localhost, this machine only; 0.0.0.0 exposes it)")


def read_settings(path: Path = SETTINGS_FILE) -> dict[str, dict[str, Any]]:
    """The Streamlit settings, ``{section: {key: value}}``."""
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def streamlit_flags(settings: dict[str, dict[str, Any]], port: int | None = None,
                    address: str | None = None) -> list[str]:
    """``--section.key=value`` for every setting; ``port`` and ``address`` replace the file's."""
    server = {**settings.get("server", {})}
    if port is not None:
        server["port"] = port
    if address is not None:
        server["address"] = address
    merged = {**settings, "server": server}
    return [f"--{section}.{key}={_flag_value(value)}"
            for section, values in merged.items() for key, value in values.items()]


def app_path() -> Path:
    import bt_dashboard

    return Path(bt_dashboard.__file__).parent / "app.py"


def dashboard_command(artifacts: str | None = None, port: int | None = None,
                      address: str | None = None) -> list[str]:
    """The Streamlit command line ``bt-zoo dashboard`` runs."""
    command = [sys.executable, "-m", "streamlit", "run", str(app_path()),
               *streamlit_flags(read_settings(), port, address)]
    if artifacts is not None:
        command += ["--", "--artifacts", str(Path(artifacts).expanduser().resolve())]
    return command


def dashboard(args: argparse.Namespace) -> int:
    command = dashboard_command(args.artifacts, args.port, args.address)
    _log.debug("running %s", " ".join(command))
    process = subprocess.Popen(command)
    # `kill` of this command stops Streamlit too, instead of leaving it serving the port.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:  # Streamlit got the same Ctrl-C and shuts down
        return process.wait()
