"""test_heads.npz (1.3): the usable head masks of the test images, as the analysis pass
measured with them, so a page draws the same head the shortcut measures used."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.tables import ARCHIVE_ERRORS
from bt_core.artifacts.files import atomic_write
from bt_core.artifacts.layout import heads_path


def write_test_heads(run_dir: Path, heads: np.ndarray, ids: list[str] | np.ndarray) -> Path:
    """Store bool ``(N, S, S)`` head masks of the test images ``ids`` (bit-packed, atomic)."""
    heads = np.asarray(heads)
    ids = np.asarray(ids, dtype=str)
    if heads.dtype != np.bool_ or heads.ndim != 3:
        raise ValueError(f"head masks must be bool (N, S, S), got {heads.dtype} {heads.shape}")
    if len(ids) != len(heads):
        raise ValueError(f"{len(ids)} ids for {len(heads)} head masks")
    packed = np.packbits(heads.reshape(len(heads), -1), axis=1)
    path = heads_path(run_dir)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, heads=packed, shape=np.asarray(heads.shape, dtype=np.int64), ids=ids)

    atomic_write(path, save)
    return path


def load_test_heads(run_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(heads bool (N, S, S), ids (N,))``, or None when the run has no test_heads.npz.
    ArtifactError naming the file when it cannot be read or is inconsistent."""
    path = heads_path(run_dir)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            packed, shape, ids = data["heads"], data["shape"], data["ids"].astype(str)
        shape = tuple(int(v) for v in shape)
        if len(shape) != 3 or packed.shape != (shape[0], -(-shape[1] * shape[2] // 8)) or len(ids) != shape[0]:
            raise ValueError(f"packed {packed.shape}, shape {shape}, {len(ids)} ids disagree")
        heads = np.unpackbits(packed, axis=1, count=shape[1] * shape[2]).astype(bool).reshape(shape)
    except ARCHIVE_ERRORS as exc:
        raise ArtifactError(f"{path} cannot be read: {type(exc).__name__}: {exc}") from exc
    return heads, ids
