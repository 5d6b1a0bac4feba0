"""Atomic file writes (temporary name, then rename), JSON and CSV, links and temporary files;
a full disk named as such (:class:`NoSpaceLeft`)."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

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


# A full disk, or a full quota: the same remedy (free space, then resume).
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class NoSpaceLeft(OSError):
    """A write failed because the disk (or the user's quota) is full; ``path`` is the file
    that could not be written, which is left as it was (never half-written)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        super().__init__(errno.ENOSPC, f"no space left on device while writing {self.path}", str(self.path))

    def __str__(self) -> str:
        return str(self.strerror)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from (Keras and h5py wrap OS errors),
    is a full disk or quota."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@contextlib.contextmanager
def naming_a_full_disk(path: Path) -> Iterator[None]:
    """Re-raise a full-disk error from the block as :class:`NoSpaceLeft` naming ``path``."""
    try:
        yield
    except NoSpaceLeft:
        raise
    except Exception as exc:  # Keras and h5py raise their own types around the OSError
        if is_disk_full(exc):
            raise NoSpaceLeft(path) from exc
        raise


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(tmp_path)`` then rename onto ``path`` (atomic on POSIX).

    The file gets the mode a plain ``open`` would give it (0666 less the umask: 0644 under
    umask 022), not mkstemp's private 0600, so a dashboard run as another user can read it.
    A full disk raises :class:`NoSpaceLeft` naming ``path``; the temporary file is removed and
    ``path`` keeps its previous content (or stays absent)."""
    path = Path(path)
    with naming_a_full_disk(path):
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
