"""``--list-models``: every registered model with its family, input size, parameter count,
preprocessing and description, one row at a time on stdout.

The parameter count is ``model.count_params()`` of the model built with random weights
(``weights=None``) at the input size it would train at: the custom CNNs flatten their last
feature map, so their count grows with the input size. Listing all ten takes 16.5 s wall
(16 s CPU, about 5 s of it importing TensorFlow, ResNet152 the slowest at 2.8 s) on a 2-core
machine at load 1.6, and several times that on a busy one; nothing is cached, so each row is
printed as soon as its model is counted, and ``--models a,b`` lists (and builds) only those.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

_log = logging.getLogger(__name__)

DEFAULT_CLASSES = 4  # the Kaggle brain-tumor MRI classes; the head adds 1 weight row per class
COLUMNS = ("model", "family", "input", "params", "preprocessing", "description")
WIDTHS = (16, 9, 6, 12, 14)  # every column but the last (the description, not cut)


@dataclass(frozen=True)
class ModelRow:
    name: str
    family: str
    input_size: int
    params: int
    preprocessing: str
    description: str

    def cells(self) -> tuple[str, ...]:
        return (self.name, self.family, str(self.input_size), f"{self.params:,}", self.preprocessing,
                self.description)


def format_row(cells: tuple[str, ...]) -> str:
    padded = [cell.ljust(width) for cell, width in zip(cells, WIDTHS)]
    return " ".join([*padded, cells[-1]]).rstrip()


def check_names(names: tuple[str, ...]) -> None:
    from bt_core.models import list_models

    unknown = [name for name in names if name not in list_models()]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(list_models())}")


def model_rows(input_size: int | None = None, names: tuple[str, ...] = (),
               num_classes: int = DEFAULT_CLASSES) -> Iterator[ModelRow]:
    """One row per registered model (``names``: only those, in that order), each built (and
    dropped) in turn; ``input_size`` None: each model's registered size. ValueError naming an
    unknown model."""
    import keras

    from bt_core.models import create_model, get_spec, list_models

    check_names(names)
    for name in names or list_models():
        spec = get_spec(name)
        size = spec.input_size if input_size is None else int(input_size)
        params = int(create_model(name, num_classes, weights=None, input_size=size).count_params())
        keras.backend.clear_session()  # the next model starts from an empty graph and memory
        yield ModelRow(name, spec.family, size, params, spec.preprocessing, spec.description)


def print_models(input_size: int | None = None, names: tuple[str, ...] = ()) -> None:
    """The table on stdout, a row as each model is counted."""
    check_names(names)  # before the header: an unknown name prints no table
    rows = model_rows(input_size, names)
    _log.info("counting parameters: building each model with random weights (%d classes; --models a,b "
              "lists only those) ...", DEFAULT_CLASSES)
    print(format_row(COLUMNS), flush=True)
    for row in rows:
        print(format_row(row.cells()), flush=True)
