"""bt-zoo dashboard: Streamlit on the installed app with the settings of .streamlit/config.toml."""

import sys
import tomllib
from pathlib import Path

import bt_dashboard
from bt_core.cli import serve

ROOT = Path(__file__).resolve().parents[1]
REPO_SETTINGS = ROOT / ".streamlit" / "config.toml"


def test_the_shipped_settings_are_the_repository_settings():
    assert serve.SETTINGS_FILE.read_bytes() == REPO_SETTINGS.read_bytes()
    assert serve.read_settings() == tomllib.loads(REPO_SETTINGS.read_text(encoding="utf-8"))


def test_every_setting_becomes_one_flag_and_port_and_address_replace_the_files():
    settings = {"server": {"headless": True, "address": "localhost", "maxUploadSize": 20},
                "client": {"toolbarMode": "viewer"}}
    assert serve.streamlit_flags(settings) == ["--server.headless=true", "--server.address=localhost",
                                               "--server.maxUploadSize=20", "--client.toolbarMode=viewer"]
    flags = serve.streamlit_flags(settings, port=8600, address="0.0.0.0")
    assert "--server.address=0.0.0.0" in flags and "--server.port=8600" in flags
    assert "--server.address=localhost" not in flags
    assert settings["server"]["address"] == "localhost"  # the settings read are left alone


def test_the_command_runs_the_installed_app_with_every_repository_setting(tmp_path):
    command = serve.dashboard_command(str(tmp_path / "runs"), port=8600)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(Path(bt_dashboard.__file__).parent / "app.py")]
    assert Path(command[4]).is_file()
    assert command[-3:] == ["--", "--artifacts", str((tmp_path / "runs").resolve())]
    flags = set(command[5:-3])
    for section, values in tomllib.loads(REPO_SETTINGS.read_text(encoding="utf-8")).items():
        for key, value in values.items():
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            assert f"--{section}.{key}={shown}" in flags
    assert {"--server.headless=true", "--server.address=localhost", "--server.maxUploadSize=20",
            "--server.enableXsrfProtection=true", "--client.toolbarMode=viewer",
            "--browser.gatherUsageStats=false", "--server.port=8600"} <= flags
    assert "--" not in serve.dashboard_command()  # no --artifacts: the app's own default
