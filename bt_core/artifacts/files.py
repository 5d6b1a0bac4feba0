"""Atomic file writes (temporary name, then rename), JSON and CSV, links and temporary files."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd


def _umask() -> int:
    """The process umask: from /proc (Linux; no change to the process, so safe beside other
    threads), else by setting it and putting it back (there is no plain getter)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(tmp_path)`` then rename onto ``path`` (atomic on POSIX).

    The file gets the mode a plain ``open`` would give it (0666 less the umask: 0644 under
    umask 022), not mkstemp's private 0600, so a dashboard run as another user can read it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (no copy, and a later rename-replace of either never
    reaches the other); copy where links are not possible."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, target)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean_json(value: Any) -> Any:
    """Replace NaN / inf (not valid JSON) by None, recursively."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    text = json.dumps(_clean_json(data), indent=2, default=_json_default, allow_nan=False)
    atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(Path(path), lambda tmp: frame.to_csv(tmp, index=False))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def is_temporary_file(path: Path) -> bool:
    """A file left by a write that never finished: ``.<name>.<random>.tmp``, ``.<name>.tmp.keras``."""
    name = Path(path).name
    return name.startswith(".") and (name.endswith(".tmp") or name.endswith(".tmp.keras"))


def remove_temporary_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files a killed writer left anywhere in the run folder; returns them."""
    removed = []
    for path in sorted(Path(run_dir).rglob(".*")):
        if path.is_file() and is_temporary_file(path):
            path.unlink()
            removed.append(path)
    return removed
