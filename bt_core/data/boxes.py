"""Tumor boxes from an optional ``ROOT/boxes.csv``.

Format: ``image,label,x_min,y_min,x_max,y_max``; ``image`` is the path relative to the
root (forward slashes); ``label`` (optional) its class; coordinates are normalized to [0, 1],
x right, y down. No-tumor images have no row. The boxes refer to the image files;
:func:`fit_boxes_to_frames` carries them into the frame of the decoded images (a head crop).

Bad rows are skipped and listed, never fatal (issue 11): a line with too many or too few
fields or broken CSV quoting, a non-numeric or out-of-range coordinate, min not below max, a
second box for the same image, and, when the dataset's images are given, a row naming an
image the dataset does not have, a ``label`` that disagrees with the image's class folder,
and a box on a no-tumor image. Only a file that cannot be a table of boxes is refused, with its path: unreadable, not
UTF-8, empty (not even a header) or lacking a required column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from bt_core.data.classes import negative_class
from bt_core.data.image_ops import IDENTITY, map_boxes
from bt_core.data.layouts import SkippedFile

BOXES_FILE = "boxes.csv"
BOX_COLUMNS = ["x_min", "y_min", "x_max", "y_max"]
REQUIRED_COLUMNS = ["image", *BOX_COLUMNS]
LABEL_COLUMN = "label"


def _read_table(path: Path) -> tuple[pd.DataFrame, list[SkippedFile]]:
    """The rows of boxes.csv as stripped strings, and its malformed lines."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a spreadsheet export is fine
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8 CSV") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    reader = csv.reader(io.StringIO(text), strict=True)
    header: list[str] | None = None
    rows, malformed = [], []
    while True:
        first_line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # bad quoting; an unclosed quote runs to the end of the file
            lines = f"line {first_line}" if reader.line_num == first_line else f"lines {first_line}-{reader.line_num}"
            malformed.append(SkippedFile(BOXES_FILE, f"{BOXES_FILE} {lines}: not valid CSV ({exc})"))
            continue
        if not any(f.strip() for f in fields):
            continue  # a blank line
        if header is None:
            header = [f.strip() for f in fields]
        elif len(fields) != len(header):
            reason = f"{BOXES_FILE} line {reader.line_num}: {len(fields)} fields, expected {len(header)}"
            malformed.append(SkippedFile(BOXES_FILE, reason))
        else:
            rows.append([f.strip() for f in fields])
    if header is None:
        raise ValueError(f"{path} is empty; expected the header {','.join(['image', LABEL_COLUMN, *BOX_COLUMNS])}")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}; expected image,label,x_min,y_min,x_max,y_max")
    table = pd.DataFrame(rows, columns=header, dtype=str)
    return table.loc[:, ~table.columns.duplicated()], malformed


def _row_problems(table: pd.DataFrame, labels: Mapping[str, str] | None) -> list[str | None]:
    """Why each row is rejected (None: a usable box), the first reason that applies."""
    coords = table[BOX_COLUMNS].apply(pd.to_numeric, errors="coerce")
    finite = np.isfinite(coords.to_numpy(dtype=float)).all(axis=1)
    in_range = ((coords >= 0) & (coords <= 1)).all(axis=1).to_numpy()
    ordered = ((coords["x_min"] < coords["x_max"]) & (coords["y_min"] < coords["y_max"])).to_numpy()
    stated = table[LABEL_COLUMN] if LABEL_COLUMN in table.columns else pd.Series("", index=table.index)
    no_tumor = negative_class(sorted(set(labels.values()))) if labels is not None else None
    problems: list[str | None] = []
    boxed: set[str] = set()
    for image, label, ok_finite, ok_range, ok_order in zip(table["image"], stated, finite, in_range, ordered):
        folder = labels.get(image) if labels is not None else None
        if labels is not None and folder is None:
            problem = "boxes.csv: no such image in the dataset"
        elif folder is not None and label and label.casefold() != folder.casefold():
            problem = f"boxes.csv: label '{label}' but the image is in class folder '{folder}'"
        elif folder is not None and folder == no_tumor:
            problem = f"boxes.csv: box for an image of the no-tumor class '{folder}'"
        elif not ok_finite:
            problem = "boxes.csv: non-numeric coordinate"
        elif not ok_range:
            problem = "boxes.csv: coordinate outside [0, 1]"
        elif not ok_order:
            problem = "boxes.csv: min not below max"
        elif image in boxed:
            problem = "boxes.csv: second box for the same image ignored"
        else:
            problem = None
            boxed.add(image)
        problems.append(problem)
    return problems


def read_boxes(root: str | Path, labels: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, list[SkippedFile]]:
    """Valid boxes indexed by image path, and the rows rejected with reasons.

    ``labels``: every image of the dataset (path relative to the root -> class folder, as
    ``DatasetIndex.items`` has them); with it, rows naming other images, disagreeing with the
    image's class or boxing a no-tumor image are rejected too. Returns an empty frame when the
    dataset has no boxes.csv; raises ValueError naming the file when it is not a boxes table.
    """
    path = Path(root) / BOXES_FILE
    empty = pd.DataFrame(columns=BOX_COLUMNS, index=pd.Index([], name="image"), dtype=float)
    if not path.is_file():
        return empty, []
    table, rejected = _read_table(path)
    if table.empty:
        return empty, rejected
    table["image"] = table["image"].str.replace("\\", "/", regex=False).str.removeprefix("./")
    problems = _row_problems(table, labels)
    rejected += [SkippedFile(image, p) for image, p in zip(table["image"], problems) if p is not None]
    valid = np.array([p is None for p in problems], dtype=bool)
    boxes = table.loc[valid, BOX_COLUMNS].apply(pd.to_numeric).astype(float)
    boxes.index = pd.Index(table.loc[valid, "image"], name="image")
    return boxes, rejected


def fit_boxes_to_frames(boxes: pd.DataFrame, frames: pd.DataFrame) -> tuple[pd.DataFrame, list[SkippedFile]]:
    """Each box (indexed by image path) in its image's frame (``frames``: rows of
    ``Frame.as_array`` by path; identity where absent), clipped to [0, 1]; a box left with
    no area (it lay wholly outside the crop) is dropped and reported."""
    if boxes.empty:
        return boxes, []
    present = frames.reindex(boxes.index).to_numpy(dtype=np.float64)
    identity = IDENTITY.as_array().astype(np.float64)
    present = np.where(np.isnan(present), identity, present)
    mapped = np.clip(map_boxes(boxes[BOX_COLUMNS].to_numpy(dtype=np.float64), present), 0.0, 1.0)
    has_area = (mapped[:, 0] < mapped[:, 2]) & (mapped[:, 1] < mapped[:, 3])
    fitted = pd.DataFrame(mapped[has_area], columns=BOX_COLUMNS, index=boxes.index[has_area])
    dropped = [SkippedFile(path, "boxes.csv: box lies outside the head crop") for path in boxes.index[~has_area]]
    return fitted, dropped
