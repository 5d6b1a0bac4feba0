"""Model weights as float16 split files: what a GPU run can send back within its size limits.

A model's weights (``model.get_weights()`` order) are cast to float16 and written
little-endian, one array after the other, into parts ``<model>.w16.partNN`` of at most
``part_bytes`` each. The index entry of a model (JSON, no pickle) holds the array shapes,
the parts with their sizes and SHA-256, and how many values float16 could not hold.
:mod:`gpu_pack` writes them on the device, :mod:`gpu_unpack` reads them back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

FLOAT16 = np.dtype("<f2")
# A little under 16 MiB, the device's limit per returned file.
PART_BYTES = 16 * 2**20 - 64 * 2**10


def float16_bytes(params: int) -> int:
    return 2 * int(params)


def part_count(params: int, part_bytes: int = PART_BYTES) -> int:
    return -(-float16_bytes(params) // part_bytes)


def part_name(model: str, index: int) -> str:
    return f"{model}.w16.part{index:02d}"


def write_parts(model: str, weights: list[np.ndarray], folder: Path, part_bytes: int = PART_BYTES) -> dict:
    """Write ``weights`` as float16 parts into ``folder``; returns the model's index entry."""
    arrays = [np.asarray(w) for w in weights]
    finite_max = float(np.finfo(np.float16).max)
    overflow = int(sum(np.count_nonzero(np.abs(a.astype(np.float64)) > finite_max) for a in arrays))
    with np.errstate(over="ignore"):  # counted above; such values come back as inf
        blob = b"".join(a.astype(FLOAT16).tobytes() for a in arrays)
    parts = []
    for index, start in enumerate(range(0, len(blob), part_bytes)):
        chunk = blob[start:start + part_bytes]
        name = part_name(model, index)
        (Path(folder) / name).write_bytes(chunk)
        parts.append({"name": name, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    return {
        "params": int(sum(a.size for a in arrays)),
        "shapes": [list(a.shape) for a in arrays],
        "dtype": "float16",
        "overflow": overflow,  # values beyond float16's range (they come back as inf)
        "parts": parts,
    }


def read_parts(entry: dict, folder: Path) -> list[np.ndarray]:
    """The float32 arrays of one index entry; raises ValueError on a missing or damaged part."""
    chunks = []
    for part in entry["parts"]:
        path = Path(folder) / part["name"]
        if not path.is_file():
            raise ValueError(f"weight part {path} is missing")
        chunk = path.read_bytes()
        if len(chunk) != part["bytes"] or hashlib.sha256(chunk).hexdigest() != part["sha256"]:
            raise ValueError(f"weight part {path} is damaged (size or SHA-256 differs from the index)")
        chunks.append(chunk)
    values = np.frombuffer(b"".join(chunks), dtype=FLOAT16)
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape in entry["shapes"]]
    if sum(sizes) != len(values):
        raise ValueError(f"weight parts hold {len(values)} values, the index's shapes {sum(sizes)}")
    arrays, offset = [], 0
    for shape, size in zip(entry["shapes"], sizes):
        arrays.append(values[offset:offset + size].astype(np.float32).reshape(shape))
        offset += size
    return arrays


def choose_models(params: dict[str, int], order: list[str], byte_budget: int, file_budget: int,
                  part_bytes: int = PART_BYTES) -> list[str]:
    """The models whose weights fit, taken in ``order`` (first fit: a model that does not fit
    is passed over and smaller ones after it may still come)."""
    chosen = []
    for name in order:
        if name not in params:
            continue
        size, files = float16_bytes(params[name]), part_count(params[name], part_bytes)
        if size <= byte_budget and files <= file_budget:
            chosen.append(name)
            byte_budget -= size
            file_budget -= files
    return chosen
