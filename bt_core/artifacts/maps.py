"""Precomputed explanation maps: models/<model>/maps/<method>.npz, stored uncompressed so one
image's map can be read without reading the others (a memory map). Since 1.3 the file also
holds each map's shares of the head, the border band and the tumor box, as the analysis
pass measured them (``share_<name>`` arrays)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.tables import ARCHIVE_ERRORS
from bt_core.artifacts.files import atomic_write, is_temporary_file
from bt_core.artifacts.layout import (
    MAP_SHARE_PREFIX, MAP_SHARES, MAPS_SUFFIX, class_mean_maps_path, maps_dir, maps_path,
)


def list_maps(run_dir: Path, model_name: str) -> list[str]:
    """The methods a model has precomputed maps of, sorted (temporary files left out)."""
    directory = maps_dir(run_dir, model_name)
    if not directory.is_dir():
        return []
    return sorted(
        path.name[: -len(MAPS_SUFFIX)]
        for path in directory.iterdir()
        if path.is_file() and path.name.endswith(MAPS_SUFFIX) and not is_temporary_file(path)
    )


def _maps_problem(
    maps: np.ndarray, ids: np.ndarray, class_index: np.ndarray, check_values: bool = True
) -> str | None:
    """What is wrong with a set of maps, or None. ``check_values=False`` reads no map value
    (for a memory map, where that would read the whole file)."""
    if maps.ndim != 3 or maps.dtype != np.float16:
        return f"maps must be float16 (N, h, w), got {maps.dtype} {maps.shape}"
    if ids.ndim != 1 or class_index.ndim != 1 or not len(ids) == len(class_index) == len(maps):
        return f"{len(maps)} maps, {len(ids)} ids and {len(class_index)} class indices"
    if not np.issubdtype(class_index.dtype, np.integer):
        return f"class_index must be integers, got {class_index.dtype}"
    if check_values and maps.size and not (np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1):
        return "maps must be finite and in [0, 1]"
    return None


def _share_arrays(shares: Mapping[str, np.ndarray] | None, n: int) -> dict[str, np.ndarray]:
    """``share_<name>`` float64 ``(n,)`` arrays of :data:`MAP_SHARES`, or ValueError."""
    if shares is None:
        return {}
    if set(shares) != set(MAP_SHARES):
        raise ValueError(f"shares must be exactly {list(MAP_SHARES)}, got {sorted(shares)}")
    arrays = {}
    for name in MAP_SHARES:
        values = np.asarray(shares[name], dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"share {name} must be ({n},), got {values.shape}")
        arrays[f"{MAP_SHARE_PREFIX}{name}"] = values
    return arrays


def write_maps(
    run_dir: Path,
    model_name: str,
    method: str,
    maps: np.ndarray,
    ids: list[str] | np.ndarray,
    class_index: np.ndarray,
    layer: str | None = None,
    shares: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Store one model's maps of ``method`` for the test images (atomic); returns the path.

    ``maps``: ``(N, h, w)`` in ``[0, 1]``, stored as float16; ``ids``: the test ids in
    ``test_images.npz`` order; ``class_index``: the class each map explains; ``shares``
    (1.3, optional): ``{name: (N,)}`` for every name of :data:`MAP_SHARES`, each stored
    map's share of that region (NaN where undefined).
    """
    maps = np.clip(np.asarray(maps, dtype=np.float32), 0.0, 1.0).astype(np.float16)
    ids = np.asarray(ids, dtype=str)
    class_index = np.asarray(class_index, dtype=np.int64)
    path = maps_path(run_dir, model_name, method)
    problem = _maps_problem(maps, ids, class_index)
    if problem:
        raise ValueError(f"maps for {model_name} / {method}: {problem}")
    share_arrays = _share_arrays(shares, len(maps))

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(
                handle, maps=maps, ids=ids, class_index=class_index,
                method=np.array(method), layer=np.array(layer or ""), **share_arrays,
            )

    atomic_write(path, save)
    return path


def _stored_npy_memmap(path: Path, member: str) -> np.ndarray | None:
    """A read-only memory map of an uncompressed ``.npy`` member of an ``.npz`` archive,
    or None when the member is compressed or of a header version this does not map."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local_header = handle.read(30)
        if len(local_header) != 30 or local_header[:4] != b"PK\x03\x04":
            raise ValueError(f"bad local header of {member}")
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"{member} holds Python objects")
    if offset + int(np.prod(shape)) * dtype.itemsize > path.stat().st_size:
        raise ValueError(f"{member} is truncated")
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran_order else "C")


def load_maps(
    run_dir: Path, model_name: str, method: str, *, mmap: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(maps float16 (N, h, w), ids (N,), class_index int64 (N,))`` of one model and method.

    ``mmap=True``: the maps are a read-only memory map of the file, so showing one image
    reads only its map (their value range is then not checked: clip what you show).
    Raises ArtifactError naming the file when it is missing, unreadable or inconsistent.
    """
    path = maps_path(run_dir, model_name, method)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            ids, class_index = data["ids"], data["class_index"]
            mapped = _stored_npy_memmap(path, "maps.npy") if mmap else None
            maps = data["maps"] if mapped is None else mapped
    except ARCHIVE_ERRORS as exc:
        raise ArtifactError(f"{path} cannot be read: {type(exc).__name__}: {exc}") from exc
    problem = _maps_problem(maps, ids, class_index, check_values=mapped is None)
    if problem:
        raise ArtifactError(f"{path}: {problem}")
    return maps, ids.astype(str), class_index.astype(np.int64)


def _read_archive(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The ``keys`` of a maps file (all of them, or None when one is absent); ArtifactError
    when the file is missing or unreadable."""
    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not set(keys) <= set(data.files):
                return None
            return {key: data[key] for key in keys}
    except ARCHIVE_ERRORS as exc:
        raise ArtifactError(f"{path} cannot be read: {type(exc).__name__}: {exc}") from exc


def load_map_shares(run_dir: Path, model_name: str, method: str) -> pd.DataFrame | None:
    """The stored maps' shares (1.3): a frame indexed by test id with one column per name of
    :data:`MAP_SHARES`; None when the file predates them. ArtifactError when the file is
    missing, unreadable or its shares do not match its ids."""
    path = maps_path(run_dir, model_name, method)
    share_keys = tuple(f"{MAP_SHARE_PREFIX}{name}" for name in MAP_SHARES)
    stored = _read_archive(path, ("ids", *share_keys))
    if stored is None:
        return None
    ids = stored["ids"].astype(str)
    if any(stored[key].shape != ids.shape for key in share_keys):
        raise ArtifactError(f"{path}: the shares do not have one value per id")
    return pd.DataFrame({name: stored[key].astype(np.float64) for name, key in zip(MAP_SHARES, share_keys)},
                        index=pd.Index(ids, name="id"))


def add_map_shares(run_dir: Path, model_name: str, method: str, shares: Mapping[str, np.ndarray]) -> Path:
    """Rewrite a stored maps file (maps, ids, classes and layer unchanged) with ``shares``
    (as in :func:`write_maps`); for files written before 1.3."""
    path = maps_path(run_dir, model_name, method)
    stored = _read_archive(path, ("maps", "ids", "class_index", "layer"))
    if stored is None:
        raise ArtifactError(f"{path} lacks maps, ids, class_index or layer")
    return write_maps(run_dir, model_name, method, stored["maps"], stored["ids"], stored["class_index"],
                      layer=str(stored["layer"]) or None, shares=shares)


CLASS_MEAN_KEYS = ("classes", "counts", "maps", "heads", "method")


def write_class_mean_maps(run_dir: Path, model_name: str, method: str, classes: list[str] | tuple[str, ...],
                          counts: np.ndarray, maps: np.ndarray, heads: np.ndarray) -> Path:
    """Store one model's mean map and mean head mask per class of ``method`` (atomic,
    compressed: a few small arrays); returns the path. ``maps``, ``heads``: ``(C, h, w)`` in
    [0, 1]; ``counts``: the images of each class."""
    classes = np.asarray(classes, dtype=str)
    counts = np.asarray(counts, dtype=np.int64)
    maps, heads = (np.clip(np.asarray(a, dtype=np.float32), 0.0, 1.0) for a in (maps, heads))
    if maps.ndim != 3 or maps.shape != heads.shape or not len(classes) == len(counts) == len(maps):
        raise ValueError(f"class mean maps of {model_name} / {method}: {len(classes)} classes, {len(counts)} "
                         f"counts, maps {maps.shape}, heads {heads.shape}")
    path = class_mean_maps_path(run_dir, model_name, method)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, classes=classes, counts=counts, maps=maps, heads=heads,
                                method=np.array(method))

    atomic_write(path, save)
    return path


def load_class_mean_maps(run_dir: Path, model_name: str, method: str) -> dict[str, object] | None:
    """``{"classes": tuple, "counts": int64 (C,), "maps": float32 (C, h, w), "heads": float32
    (C, h, w), "method": str}`` of one model, or None when the run has none (analyzed before
    they were stored). ArtifactError naming the file when it is unreadable or inconsistent."""
    path = class_mean_maps_path(run_dir, model_name, method)
    if not path.is_file():
        return None
    stored = _read_archive(path, CLASS_MEAN_KEYS)
    if stored is None:
        raise ArtifactError(f"{path} lacks one of {list(CLASS_MEAN_KEYS)}")
    maps, heads = stored["maps"].astype(np.float32), stored["heads"].astype(np.float32)
    classes, counts = tuple(str(c) for c in stored["classes"]), stored["counts"].astype(np.int64)
    if maps.ndim != 3 or maps.shape != heads.shape or not len(classes) == len(counts) == len(maps):
        raise ArtifactError(f"{path}: {len(classes)} classes, {len(counts)} counts, maps {maps.shape}, "
                            f"heads {heads.shape}")
    if maps.size and not (np.isfinite(maps).all() and np.isfinite(heads).all()):
        raise ArtifactError(f"{path}: maps and heads must be finite")
    return {"classes": classes, "counts": counts, "maps": maps, "heads": heads, "method": str(stored["method"])}
