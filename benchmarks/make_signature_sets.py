"""Demo datasets for validating a shortcut measure: train on one source mix, test on another.

    .venv/bin/python benchmarks/make_signature_sets.py data/signature_sets
    .venv/bin/python benchmarks/make_signature_sets.py OUT --rates 0,0.5,0.9,1 --per-class 80

Writes, under OUT, for each kind of source signature (``border_texture``, ``intensity_shift``;
bt_core.data.demo and docs/demo-data.md):

- ``train_<kind>/r<rate>/``: the signature on ``round(rate * per_class)`` notumor images and on
  no tumor image, one dataset per rate, all with the training seed (so the rates differ only
  in the signature);
- ``shifted_<kind>/``: the signature swapped to the tumor classes (``--shifted-rate`` of each
  tumor class), notumor clean, with the test seed;

and ``clean/``: no signature at all, the test seed. None of them carries the text mark. A model
trained on ``train_<kind>/r0.90`` that learned "signature means notumor" calls the signed tumors
of ``shifted_<kind>`` notumor. Prints one line per dataset written.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bt_core.data.demo import DEMO_CLASSES, METADATA_FILE, SIGNATURE_COLUMN, generate_demo_dataset

KINDS = ("border_texture", "intensity_shift")
DEFAULT_RATES = (0.0, 0.5, 0.9, 1.0)
SIGNED_CLASS = "notumor"


@dataclass(frozen=True)
class SignatureSet:
    """One dataset written: its folder, signature, seed and signed images per class."""

    folder: Path
    kind: str | None
    seed: int
    signed: dict[str, int]
    seconds: float


def _signed_counts(root: Path) -> dict[str, int]:
    metadata = pd.read_csv(root / METADATA_FILE)
    if SIGNATURE_COLUMN not in metadata:
        return {label: 0 for label in DEMO_CLASSES}
    return {label: int(n) for label, n in metadata.groupby("label")[SIGNATURE_COLUMN].sum().items()}


def _write(folder: Path, kind: str | None, seed: int, per_class: int, image_size: int, **signature) -> SignatureSet:
    started = time.perf_counter()
    root = generate_demo_dataset(
        folder, per_class=per_class, image_size=image_size, seed=seed,
        shortcut_rate=0.0, other_rate=0.0, signature=kind, **signature,
    )
    return SignatureSet(folder, kind, seed, _signed_counts(root), time.perf_counter() - started)


def make_signature_sets(
    out: str | Path,
    rates: tuple[float, ...] = DEFAULT_RATES,
    per_class: int = 80,
    image_size: int = 64,
    train_seed: int = 0,
    test_seed: int = 1,
    shifted_rate: float = 1.0,
    kinds: tuple[str, ...] = KINDS,
) -> list[SignatureSet]:
    """Write the training sets, the shifted test sets and the clean test set under ``out``."""
    if train_seed == test_seed:
        raise ValueError(f"train_seed and test_seed must differ (both {train_seed}): the test images must be new")
    out = Path(out)
    written = []
    for kind in kinds:
        for rate in rates:
            written.append(_write(
                out / f"train_{kind}" / f"r{rate:.2f}", kind, train_seed, per_class, image_size,
                signature_class=SIGNED_CLASS, signature_rate=rate, signature_other_rate=0.0,
            ))
        written.append(_write(
            out / f"shifted_{kind}", kind, test_seed, per_class, image_size,
            signature_class=SIGNED_CLASS, signature_rate=0.0, signature_other_rate=shifted_rate,
        ))
    written.append(_write(out / "clean", None, test_seed, per_class, image_size))
    return written


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write the datasets into")
    parser.add_argument("--rates", type=_floats, default=DEFAULT_RATES, help="signed share of notumor in training (0,0.5,0.9,1)")
    parser.add_argument("--per-class", type=int, default=80)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--test-seed", type=int, default=1)
    parser.add_argument("--shifted-rate", type=float, default=1.0, help="signed share of each tumor class in the shifted set")
    parser.add_argument("--kinds", type=lambda t: tuple(t.split(",")), default=KINDS, help=",".join(KINDS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = make_signature_sets(
        args.out, args.rates, args.per_class, args.image_size, args.train_seed, args.test_seed,
        args.shifted_rate, args.kinds,
    )
    for item in written:
        signed = " ".join(f"{label}={n}" for label, n in item.signed.items())
        print(f"{item.folder}  signature={item.kind or 'none'}  seed={item.seed}  signed: {signed}  ({item.seconds:.1f} s)")
    print(f"{len(written)} datasets of {4 * args.per_class} images, {args.image_size} px, "
          f"in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
