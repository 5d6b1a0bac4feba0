"""Train a zoo of brain-tumor MRI classifiers and write one run folder for the dashboard.

    python train_all.py --demo --out artifacts
    python train_all.py --data PATH --models simple_cnn,resnet50 --epochs 30 --img-size 224 --seed 42

The Keras backend comes from KERAS_BACKEND (tensorflow by default; jax on GPU machines).
Exit status: 0 when every model trained, 1 when one or more failed (the others are still
saved, and the run folder records why), 2 for bad arguments or an unusable dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEMO_DATA_DIR = "data/demo"
DEMO_DEFAULTS = {"epochs": 10, "img_size": 64}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="dataset folder: ROOT/Training|Testing/<class>/* or ROOT/<class>/*")
    source.add_argument("--demo", action="store_true", help="generate the synthetic demo dataset and train the demo zoo")
    parser.add_argument("--demo-data", default=DEMO_DATA_DIR, help=f"where --demo writes its dataset ({DEMO_DATA_DIR})")
    parser.add_argument("--models", help="comma-separated model names (see --list-models)")
    parser.add_argument("--epochs", type=int, help="maximum epochs per phase (early stopping may stop sooner)")
    parser.add_argument("--img-size", type=int, help="square input size in pixels")
    parser.add_argument("--batch-size", type=int, help="batch size for every model (default: each model's recipe)")
    parser.add_argument("--out", default="artifacts", help="folder that receives the run folder (artifacts)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--weights", default="none", help="none (from scratch), imagenet, or a local weights file")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15, help="pool layout only")
    parser.add_argument("--max-per-class", type=int, help="use at most N images per class and source split")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--no-augment", action="store_true", help="train without on-the-fly augmentation")
    parser.add_argument("--run-id", help="name of the run folder (default: time stamp and dataset name)")
    parser.add_argument("--list-models", action="store_true", help="print the model names and exit")
    if argv is not None and "--list-models" in argv:
        argv = [*argv, "--demo"]  # listing needs no data source
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace):
    from bt_core.config import DEFAULT_MODELS, DEMO_MODELS, RunConfig

    demo = bool(args.demo)
    defaults = DEMO_DEFAULTS if demo else {"epochs": 30, "img_size": 224}
    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else None
    data = args.data
    if demo:
        from bt_core.data.demo import generate_demo_dataset

        data = str(generate_demo_dataset(args.demo_data))
    weights = None if str(args.weights).lower() == "none" else args.weights
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise SystemExit(f"--weights: no such file: {weights}")
    return RunConfig(
        data=data,
        models=models or (DEMO_MODELS if demo else DEFAULT_MODELS),
        epochs=args.epochs or defaults["epochs"],
        img_size=args.img_size or defaults["img_size"],
        batch_size=args.batch_size,
        seed=args.seed,
        out=args.out,
        weights=weights,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        max_per_class=args.max_per_class,
        precision=args.precision,
        augment=not args.no_augment,
        run_id=args.run_id,
        demo=demo,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from bt_core.models import list_models

    if args.list_models:
        print("\n".join(list_models()))
        return 0
    from bt_core.zoo import run_zoo

    try:
        config = build_config(args)
        run_dir = run_zoo(config)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from bt_core.artifacts import STATUS_FAILED, read_manifest

    failed = {name: entry.get("error", "") for name, entry in read_manifest(run_dir)["models"].items()
              if entry.get("status") == STATUS_FAILED}
    for name, error in failed.items():
        print(f"error: {name} failed: {error}", file=sys.stderr)
    print(run_dir)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
