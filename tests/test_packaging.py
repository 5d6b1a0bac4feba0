"""pyproject.toml and constraints.txt: what `pip install .` ships, declares and pins, and that the
installed copy runs (bt-zoo, the dashboard) outside the repository."""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
IMPORT_NAMES = {"bt_core": "bt_core", "dashboard": "bt_dashboard"}  # folder -> installed package
EXTRAS = {"jax", "tensorboard", "mlflow", "ray", "dev"}


def pins(path: Path = ROOT / "constraints.txt") -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            found[canonicalize_name(name)] = version
    return found


def declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + [r for group in extras.values() for r in group]]


def test_every_package_folder_is_listed_under_its_installed_name():
    folders = {path.parent for folder in IMPORT_NAMES for path in (ROOT / folder).rglob("__init__.py")}
    folders.add(ROOT / "dashboard" / "app_pages")  # page scripts: no __init__, shipped all the same
    expected = {".".join([IMPORT_NAMES[f.relative_to(ROOT).parts[0]], *f.relative_to(ROOT).parts[1:]])
                for f in folders}
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == expected


def test_lower_bounds_are_the_pinned_versions_and_every_extra_is_declared():
    pinned = pins()
    assert set(PYPROJECT["project"]["optional-dependencies"]) == EXTRAS
    for requirement in declared():
        bounds = [s.version for s in requirement.specifier if s.operator in (">=", "==")]
        assert bounds == [pinned[canonicalize_name(requirement.name)]], requirement


def test_this_environment_has_the_pinned_versions():
    """make test installs with -c constraints.txt: what it tests is what the file says."""
    differing = {}
    for name, version in pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra this environment does not install (ray)
        if installed != version:
            differing[name] = (installed, version)
    assert differing == {}


def test_every_install_path_goes_through_the_constraints():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = [line for line in makefile.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    for name in ("requirements.txt", "requirements-dev.txt"):
        assert "-c constraints.txt" in (ROOT / name).read_text(encoding="utf-8").splitlines()
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _copy_sources(target: Path) -> Path:
    """What a wheel is built from, away from the repository (the build writes build/ there)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("bt_core", "dashboard", ".streamlit"):
        shutil.copytree(ROOT / name, target / name, symlinks=True, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = _copy_sources(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: no download; the venv's setuptools reads the same pyproject.
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return next(out.glob("brain_tumor_zoo-*.whl"))


@pytest.mark.slow
def test_the_wheel_ships_the_app_its_pages_the_settings_and_the_command(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    pages = re.findall(r'st\.Page\("(app_pages/\w+\.py)"', (ROOT / "dashboard" / "app.py").read_text())
    assert len(pages) >= 9 and {f"bt_dashboard/{page}" for page in pages} <= names
    assert {f"bt_dashboard/app_pages/{p.name}" for p in (ROOT / "dashboard" / "app_pages").glob("*.py")} <= names
    assert "bt_dashboard/app.py" in names and not any(n.startswith(("dashboard/", "tests/")) for n in names)
    archive = zipfile.ZipFile(wheel)
    settings = archive.read("bt_core/cli/streamlit_config.toml")
    assert settings == (ROOT / ".streamlit" / "config.toml").read_bytes()  # the file, not a link
    info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "bt-zoo = bt_core.cli.zoo:main" in archive.read(info).decode()
    wheel_metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {f"Provides-Extra: {extra}" for extra in EXTRAS} <= set(wheel_metadata.splitlines())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _health(port: int) -> str:
    with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as response:
        return response.read().decode()


@pytest.mark.slow
def test_the_installed_copy_reports_its_version_and_serves_the_dashboard_outside_the_repo(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}  # before the repository's editable install
    where = subprocess.run([sys.executable, "-c", "import bt_dashboard, bt_core; print(bt_dashboard.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(site / "bt_dashboard" / "__init__.py"), where.stderr
    version = subprocess.run([sys.executable, "-m", "bt_core.cli", "--version"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"bt-zoo {PYPROJECT['project']['version']}", version.stderr
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "bt_core.cli", "-v", "dashboard", "--artifacts", str(tmp_path),
                               "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, answer = time.monotonic() + 60, ""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = _health(port)
                break
            except OSError:
                time.sleep(0.2)
        assert answer == "ok", server.stdout.read().decode() if server.poll() is not None else "no answer"
        server.terminate()  # bt-zoo alone: it must stop its Streamlit, not leave it serving the port
        output = server.communicate(timeout=30)[0].decode()
        with pytest.raises(OSError):
            _health(port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # whatever of the group this test started is left
    assert f"streamlit run {site / 'bt_dashboard' / 'app.py'} " in output  # --verbose names the command
