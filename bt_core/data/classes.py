"""Class-name conventions: which class of a dataset is "no tumor".

Datasets spell it differently (``notumor`` in the Kaggle set, ``no_tumor`` elsewhere, ``No Tumor``
in some exports); every measure that collapses the classes to tumor / no tumor (tumor ROC,
tumor probes, tumor-mode evaluations) finds it here, so a spelling never silently blanks one
of them.
"""

from __future__ import annotations

from typing import Sequence

# The spelling the project uses for its own data (demo set, tumor-mode evaluations).
NO_TUMOR = "notumor"


def _normalized(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def negative_class_index(class_names: Sequence[str]) -> int | None:
    """Index of the no-tumor class ("notumor", "no_tumor", "No Tumor", ... all match), or None."""
    for index, name in enumerate(class_names):
        if _normalized(name) == _normalized(NO_TUMOR):
            return index
    return None


def negative_class(class_names: Sequence[str]) -> str | None:
    """The no-tumor class as the dataset spells it, or None when there is none."""
    index = negative_class_index(class_names)
    return None if index is None else str(list(class_names)[index])


def require_negative_class_index(class_names: Sequence[str], why: str = "collapse to tumor / no tumor") -> int:
    """:func:`negative_class_index`, or ValueError naming the classes there are."""
    index = negative_class_index(class_names)
    if index is None:
        raise ValueError(f"no no-tumor class ({NO_TUMOR} or a spelling of it) to {why}; classes are {list(class_names)}")
    return index
