"""Does a model of the zoo collapse when trained from scratch? Train every model with every
seed on every data set, one run folder per (data, seed, model), and tabulate test accuracy,
the lowest validation accuracy after epoch 2 and the last training accuracy (issue 13).

    .venv/bin/python benchmarks/seed_grid.py --out /tmp/seed-grid \
        --models resnet50,densenet121,mobilenetv2 --seeds 0-4 \
        --data demo --data br35h=../shared/data/figshare-br35h \
        --data btmri=../shared/data/brain-tumor-mri          # hours on 2 CPU cores
    .venv/bin/python benchmarks/seed_grid.py --out /tmp/seed-grid --table-only

Each run is `train_all.py --models M --seed S --epochs 8 --img-size 64 --no-explain`, with
`--max-per-class 250` for a data folder (the seed also draws the split, as train_all does).
A finished run is never redone, so the command can be stopped and started again; runs go
seed by seed, so a grid cut short still covers every data set and model for its first seeds.
`--table-only` reads whatever runs exist. The table goes to stdout and `<out>/seed_grid.json`.

A run is labelled (chance = 1 / number of classes):
  "collapsed"      the last validation accuracy is within COLLAPSE_MARGIN of chance while the
                   last training accuracy is LEARNED_MARGIN above it (the issue's cnn_bn: 0.25
                   validation, 0.74 training);
  "did not learn"  no validation accuracy after the first epoch is more than COLLAPSE_MARGIN
                   above chance, or the last training accuracy is within COLLAPSE_MARGIN of
                   it (custom_cnn on the demo before its warm-up epoch: training accuracy
                   0.28 and losses at ln 4 after 8 epochs, while near-uniform outputs gave
                   validation accuracies up to 0.48);
  "learned"        otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.reader import load_run
from bt_core.runs.study_spec import parse_seeds as parse_seed_list

COLLAPSE_MARGIN = 0.10
LEARNED_MARGIN = 0.25
FIRST_JUDGED_EPOCH = 3  # the first two epochs are warm-up for a model from scratch
SETTINGS = ("--epochs", "8", "--img-size", "64", "--no-explain", "-q")
MAX_PER_CLASS = "250"


def parse_seeds(text: str) -> list[int]:
    """'0-4' or '0,2,5'."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-", 1))
        return list(range(first, last + 1))
    return list(parse_seed_list(text))


def parse_data(text: str) -> tuple[str, str | None]:
    """'demo' -> ('demo', None); 'NAME=PATH' -> (NAME, PATH); 'PATH' -> (folder name, PATH)."""
    if text == "demo":
        return "demo", None
    if "=" in text:
        name, path = text.split("=", 1)
        return name, path
    return Path(text).name, text


def run_id(data_name: str, seed: int, model: str) -> str:
    return f"{data_name}-s{seed}-{model}"


def label(history: pd.DataFrame, num_classes: int) -> str:
    """'collapsed', 'did not learn' or 'learned' (module docstring)."""
    chance = 1.0 / num_classes
    last = history.iloc[-1]
    if last["val_accuracy"] <= chance + COLLAPSE_MARGIN and last["accuracy"] >= chance + LEARNED_MARGIN:
        return "collapsed"
    judged = history["val_accuracy"][history["epoch"] >= 2]
    validation_stayed_near_chance = judged.empty or judged.max() <= chance + COLLAPSE_MARGIN
    training_stayed_near_chance = last["accuracy"] <= chance + COLLAPSE_MARGIN
    if validation_stayed_near_chance or training_stayed_near_chance:
        return "did not learn"
    return "learned"


def row_of(run_dir: Path, data_name: str, seed: int, model: str) -> dict | None:
    """One table row, or None while the run has no usable result for ``model``."""
    if not run_dir.is_dir():
        return None
    try:
        run = load_run(run_dir)
    except ArtifactError as error:  # e.g. a manifest cut short: train (resume) it again
        print(f"{run_dir.name}: unreadable ({error})", flush=True)
        return None
    artifacts = run.models.get(model)
    if artifacts is None or not artifacts.usable or artifacts.history is None:
        return None
    history = artifacts.history
    judged = history["val_accuracy"][history["epoch"] >= FIRST_JUDGED_EPOCH]
    return {"model": model, "data": data_name, "seed": seed,
            "test_accuracy": float(artifacts.metrics["accuracy"]),
            "lowest_val_after_epoch_2": float(judged.min()) if not judged.empty else float("nan"),
            "best_val": float(history["val_accuracy"].max()),
            "last_train_accuracy": float(history["accuracy"].iloc[-1]),
            "epochs": int(history["epoch"].max()),
            "train_seconds": artifacts.info.get("train_seconds"),
            "label": label(history, len(run.class_names))}


def train(out: Path, data_name: str, path: str | None, seed: int, model: str, demo_data: Path) -> int:
    source = ["--demo", "--demo-data", str(demo_data)] if path is None else ["--data", path, "--max-per-class", MAX_PER_CLASS]
    command = [sys.executable, "train_all.py", *source, "--models", model, "--seed", str(seed), *SETTINGS,
               "--out", str(out), "--run-id", run_id(data_name, seed, model)]
    if (out / run_id(data_name, seed, model)).exists():
        command.append("--resume")
    print(" ".join(command), flush=True)
    return subprocess.run(command, check=False).returncode


def markdown(table: pd.DataFrame, seeds: list[int]) -> str:
    """Rows model x data, a column per seed: 'test (lowest validation after epoch 2)'."""
    lines = ["| model | data | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]
    for (model, data), group in table.groupby(["model", "data"], sort=False):
        by_seed = group.set_index("seed")
        cells = []
        for seed in seeds:
            if seed not in by_seed.index:
                cells.append("not run")
                continue
            row = by_seed.loc[seed]
            mark = "" if row["label"] == "learned" else f" **{row['label']}**"
            cells.append(f"{row['test_accuracy']:.3f} ({row['lowest_val_after_epoch_2']:.2f}){mark}")
        lines.append(f"| {model} | {data} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", default="resnet50,densenet121,mobilenetv2")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--data", action="append", help="demo, NAME=PATH or PATH (repeat)")
    parser.add_argument("--demo-data", type=Path, help="where the demo data is made (default OUT/demo-data)")
    parser.add_argument("--table-only", action="store_true", help="tabulate the runs that exist; train nothing")
    args = parser.parse_args(argv)
    models, seeds = args.models.split(","), parse_seeds(args.seeds)
    datasets = [parse_data(text) for text in (args.data or ["demo"])]
    demo_data = args.demo_data or args.out / "demo-data"
    rows, failed = [], []
    for seed in seeds:
        for data_name, path in datasets:
            for model in models:
                run_dir = args.out / run_id(data_name, seed, model)
                row = row_of(run_dir, data_name, seed, model)
                if row is None and not args.table_only:
                    if train(args.out, data_name, path, seed, model, demo_data) != 0:
                        failed.append(run_dir.name)
                    row = row_of(run_dir, data_name, seed, model)
                if row is not None:
                    rows.append(row)
    if not rows:
        print("no finished runs yet")
        return 1
    table = pd.DataFrame(rows)
    print(markdown(table, seeds))
    for model, group in table.groupby("model", sort=False):
        print(f"{model}: {len(group)} runs, labels {group['label'].value_counts().to_dict()}, test "
              f"{group['test_accuracy'].min():.3f}-{group['test_accuracy'].max():.3f}, lowest validation "
              f"after epoch 2 {group['lowest_val_after_epoch_2'].min():.2f}, last training accuracy "
              f"{group['last_train_accuracy'].min():.2f}-{group['last_train_accuracy'].max():.2f}")
    (args.out / "seed_grid.json").write_text(json.dumps({"rows": rows, "failed": failed}, indent=1), encoding="utf-8")
    if failed:
        print(f"failed runs: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
