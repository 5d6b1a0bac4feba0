"""The dashboard's server settings (.streamlit/config.toml and `make dashboard`): a laptop tool
listens on localhost, hides tracebacks from viewers, caps uploads and keeps XSRF on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".streamlit" / "config.toml"
# What an MRI slice needs (PNG / JPEG: a few MB); Streamlit's default is 200 MB.
MAX_UPLOAD_MB = 20
HIDDEN_TRACEBACKS = ("type", "none")  # Streamlit 1.67's values that keep tracebacks off the browser

_READ_OPTIONS = """
import json, sys
from streamlit import config
config.get_config_options(force_reparse=True)
keys = sys.argv[1:]
print(json.dumps({key: config.get_option(key) for key in keys}))
"""
KEYS = ("server.address", "server.maxUploadSize", "server.enableXsrfProtection", "client.showErrorDetails",
        "server.enableCORS")


def _streamlit_reads(config_text: str, folder: Path) -> tuple[dict, str]:
    """The options Streamlit's own loader takes from ``config_text`` as ``.streamlit/config.toml``
    in ``folder`` (no global config: HOME is the folder too), and what it printed on stderr."""
    (folder / ".streamlit").mkdir(parents=True, exist_ok=True)
    (folder / ".streamlit" / "config.toml").write_text(config_text, encoding="utf-8")
    env = {**os.environ, "HOME": str(folder)}
    env = {k: v for k, v in env.items() if not k.startswith("STREAMLIT_")}
    done = subprocess.run([sys.executable, "-c", _READ_OPTIONS, *KEYS], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_settings_file_binds_localhost_hides_tracebacks_caps_uploads_and_keeps_xsrf():
    settings = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    assert settings["server"]["address"] == "localhost"
    assert settings["server"]["maxUploadSize"] == MAX_UPLOAD_MB
    assert settings["server"]["enableXsrfProtection"] is True
    assert settings["client"]["showErrorDetails"] in HIDDEN_TRACEBACKS
    assert settings["server"].get("enableCORS", True) is True  # XSRF needs CORS protection left on


def test_streamlit_itself_reads_the_settings_file_with_every_key_valid(tmp_path):
    options, stderr = _streamlit_reads(CONFIG.read_text(encoding="utf-8"), tmp_path)
    assert options == {"server.address": "localhost", "server.maxUploadSize": MAX_UPLOAD_MB,
                       "server.enableXsrfProtection": True,
                       "client.showErrorDetails": tomllib.loads(CONFIG.read_text())["client"]["showErrorDetails"],
                       "server.enableCORS": True}
    assert "not a valid config option" not in stderr, stderr
    from streamlit.config import ShowErrorDetailsConfigOptions

    assert options["client.showErrorDetails"] in {o.value for o in ShowErrorDetailsConfigOptions}


def test_the_loader_check_catches_a_misspelt_key_and_a_default_left_open(tmp_path):
    """The check above can fail: a misspelt key is reported, and without the settings
    Streamlit's defaults are the open ones the file overrides."""
    options, stderr = _streamlit_reads('[server]\nadress = "localhost"\n', tmp_path)
    assert "not a valid config option" in stderr
    assert options["server.address"] in (None, "")
    assert options["server.maxUploadSize"] == 200 and options["client.showErrorDetails"] == "full"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
@pytest.mark.parametrize("extra, address", [((), "localhost"), (("ADDRESS=0.0.0.0",), "0.0.0.0")])
def test_make_dashboard_binds_localhost_unless_told_to_expose_it(extra, address):
    done = subprocess.run(["make", "-n", "dashboard", *extra], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    command = next(line for line in done.stdout.splitlines() if "streamlit run" in line)
    assert f"--server.address {address} " in command
