"""The published results the Models page shows beside a run's (``published_results.toml``).

The data file ships inside this package; :func:`load_published_results` reads it (or another
file of the same form) into :class:`PublishedResult` rows and refuses a row without a source,
with a value outside [0, 1] or with a missing field, naming the row.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DATA_FILE = "published_results.toml"
TEXT_FIELDS = ("architecture", "model", "metric", "task", "dataset", "pretraining", "split", "duplicates", "source")


@dataclass(frozen=True)
class PublishedResult:
    """One published figure: ``architecture`` is a registry model name, ``value`` a share."""

    architecture: str
    model: str
    metric: str
    value: float
    task: str
    dataset: str
    pretraining: str
    split: str
    duplicates: str
    source: str
    url: str = ""
    verified: bool = False
    image_size: int | None = None


def _result(row: dict, number: int, where: str) -> PublishedResult:
    name = f"{where}: result {number}"
    missing = [key for key in (*TEXT_FIELDS, "value") if key not in row]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(missing)}")
    blank = [key for key in TEXT_FIELDS if not isinstance(row[key], str) or not row[key].strip()]
    if blank:
        raise ValueError(f"{name} has no {', '.join(blank)}")
    value = row["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name}: value must be a share in [0, 1], got {value!r}")
    size = row.get("image_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"{name}: image_size must be a positive whole number of pixels, got {size!r}")
    unknown = set(row) - {*TEXT_FIELDS, "value", "url", "verified", "image_size"}
    if unknown:
        raise ValueError(f"{name} has unknown fields {sorted(unknown)}")
    return PublishedResult(**{key: row[key] for key in TEXT_FIELDS}, value=float(value), url=str(row.get("url", "")),
                           verified=bool(row.get("verified", False)), image_size=size)


def published_results_path() -> Path:
    """The shipped data file (package data of ``bt_core.reference``)."""
    return Path(str(resources.files(__package__).joinpath(DATA_FILE)))


def load_published_results(path: Path | str | None = None) -> tuple[PublishedResult, ...]:
    """Every ``[[result]]`` of the data file (the shipped one unless ``path``), in file order."""
    path = published_results_path() if path is None else Path(path)
    text, where = path.read_text(encoding="utf-8"), path.name
    try:
        rows = tomllib.loads(text).get("result", [])
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where} is not valid TOML: {exc}") from None
    return tuple(_result(row, number, where) for number, row in enumerate(rows, start=1))
