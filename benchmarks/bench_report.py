"""Time the one-file HTML report and measure its size on fabricated runs; prints a Markdown table.

    .venv/bin/python benchmarks/bench_report.py [--repeats 3] [--keep DIR]

Two runs, written with tests/fabricate.py's RunWriter-based fabricator, each with everything
the report shows: shortcut measures of every model (summary, per-image tables, duplicate
pairs), stored Grad-CAM maps with their outside-head shares (so the gallery is full), a
one-class external evaluation and every model's card (bt_core.runs.model_card).

- "demo": the shape of ``make demo``'s run: 3 models, 180 test images of 64 px, 64 px maps.
- "10 models": 10 models, 1,300 test images of 64 px, 64 px maps.

Build time is ``build_report(load_run(...))`` as the sidebar's download button calls it
(1,000 bootstrap resamples), median of ``--repeats``; size is the UTF-8 document.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# Model -> (skill, temperature), as in tests/fabricate.py's ZOO_MODELS.
MODELS = {
    "simple_cnn": (1.2, 0.7), "custom_cnn": (2.0, 1.0), "cnn_bn": (2.8, 0.8), "efficientnet_b0": (3.6, 1.0),
    "resnet18": (2.4, 1.4), "densenet121": (3.2, 0.9), "vgg16": (2.2, 1.2), "inception_v3": (3.0, 0.85),
    "xception": (3.3, 1.1), "convnext_tiny": (3.8, 0.75),
}
RUNS = {"demo": (3, 180), "10 models": (10, 1300)}
IMAGE_SIDE = MAP_SIDE = 64


def load_fabricate() -> ModuleType:
    """tests/fabricate.py (tests/ is no package)."""
    if "fabricate" in sys.modules:
        return sys.modules["fabricate"]
    spec = importlib.util.spec_from_file_location("fabricate", TESTS / "fabricate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fabricate"] = module
    spec.loader.exec_module(module)
    return module


def blob_maps(rng: np.random.Generator, n: int, side: int) -> np.ndarray:
    """Smooth maps in [0, 1]: one Gaussian blob each, somewhere in the image."""
    grid_y, grid_x = np.mgrid[0:side, 0:side] / side
    centres = rng.uniform(0.1, 0.9, size=(n, 2))
    widths = rng.uniform(0.08, 0.25, size=n)
    maps = np.exp(-((grid_x[None] - centres[:, 0, None, None]) ** 2 + (grid_y[None] - centres[:, 1, None, None]) ** 2)
                  / (2 * widths[:, None, None] ** 2))
    return (maps / maps.max(axis=(1, 2), keepdims=True)).astype(np.float32)


def add_measures(fabricate: ModuleType, fabricated, names: list[str], seed: int) -> None:
    """Shortcut measures of every model (the first flagged), and 64 px Grad-CAM maps with shares."""
    from bt_core import artifacts as art

    fabricate.write_shortcut_measures(fabricated, names[0], names[1])
    summary = art.load_shortcuts(fabricated.run_dir)
    labels = list(fabricated.predictions[names[0]]["label"])
    per_image = {}
    for number, name in enumerate(names):
        if name not in summary["models"]:
            summary["models"][name] = fabricate.shortcut_record(0.2 + 0.03 * number, 0.1, 0.3, fabricated.test_ids,
                                                                labels, source_flip=0.05 * number)
        per_image[name] = fabricate.shortcut_images_table(fabricated.predictions[name], seed + number)
    summary["audit"]["duplicates"]["deduplicated_metrics"] = {
        name: {"accuracy": 0.5, "macro_f1": 0.5, "macro_auc": 0.7} for name in names}
    art.write_shortcuts(fabricated.run_dir, summary, per_image, art.load_duplicates(fabricated.run_dir))
    rng = np.random.default_rng(seed)
    for name in names:
        n = len(fabricated.test_ids)
        predicted = fabricated.predictions[name]["pred"].map(fabricate.CLASS_NAMES.index).to_numpy()
        shares = {"outside_head": per_image[name]["outside_head"].to_numpy(),
                  "border": per_image[name]["border"].to_numpy(), "in_box": np.full(n, np.nan)}
        art.write_maps(fabricated.run_dir, name, "gradcam", blob_maps(rng, n, MAP_SIDE), fabricated.test_ids,
                       predicted, shares=shares)


def add_one_class_evaluation(run_dir: Path, names: list[str], n_images: int = 60) -> None:
    """evaluations/hospital: tumor images only, as the pipeline stores a one-class evaluation."""
    from bt_core import artifacts as art
    from bt_core.metrics import metrics_from_predictions

    classes, ids = ["notumor", "tumor"], [f"tumor/img_{i:03d}.png" for i in range(n_images)]
    writer = art.RunWriter(art.evaluation_dir(run_dir, "hospital"), {
        "run_id": f"{run_dir.name}/evaluations/hospital", "class_names": classes, "image_size": IMAGE_SIDE,
        "evaluation": {"of_run": run_dir.name, "name": "hospital", "mode": "tumor", "data": "/data/hospital",
                       "not_trained": [], "negative_class": "notumor"},
        "dataset": {"name": "hospital", "counts": {"test": {"tumor": n_images}}}})
    writer.write_split(pd.DataFrame({"path": ids, "split": "test", "label": "tumor"}))
    rng = np.random.default_rng(5)
    writer.write_test_images(rng.integers(0, 256, (n_images, IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8), ids)
    for name in names:
        p_tumor = rng.uniform(0.2, 1.0, n_images)
        predictions = art.predictions_frame(ids, ["tumor"] * n_images, np.c_[1 - p_tumor, p_tumor], classes)
        writer.write_predictions(name, predictions)
        writer.write_metrics(name, metrics_from_predictions(predictions, classes))
        writer.set_model_status(name, art.STATUS_DONE, family="custom", input_size=IMAGE_SIDE, preprocessing="rescale")


def fabricate_full_run(root: Path, label: str, n_models: int, n_test: int, seed: int = 3) -> Path:
    from bt_core.runs.model_card import write_model_cards

    fabricate = load_fabricate()
    names = list(MODELS)[:n_models]
    per_class = n_test // len(fabricate.CLASS_NAMES)
    fabricated = fabricate.fabricate_run(
        root, re.sub(r"\W+", "-", label), good_models={name: MODELS[name][0] for name in names}, seed=seed,
        split_sizes={"train": 4 * per_class, "val": per_class // 2, "test": per_class},
        temperatures={name: MODELS[name][1] for name in names}, image_side=IMAGE_SIDE, train_gap=0.05)
    add_measures(fabricate, fabricated, names, seed)
    add_one_class_evaluation(fabricated.run_dir, names)
    write_model_cards(fabricated.run_dir)
    return fabricated.run_dir


def measure(run_dir: Path, repeats: int) -> dict[str, object]:
    from bt_core.artifacts import load_run
    from bt_dashboard.report import build_report

    seconds, report = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        report = build_report(load_run(run_dir))
        seconds.append(time.perf_counter() - started)
    images = re.findall(r'<img src="(data:image/png;base64,[^"]+)"', report)
    return {
        "seconds": statistics.median(seconds),
        "mb": len(report.encode("utf-8")) / 1e6,
        "gallery_mb": sum(len(uri) for uri in images) / 1e6,
        "images": len(images),
        "figures": report.count("Plotly.newPlot("),
        "sections": re.findall(r"<h2>([^<]+)</h2>", report),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="builds per run; the median is shown")
    parser.add_argument("--keep", type=Path, default=None, help="write the runs and reports here (default: a temp dir)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    print("| run | models | test images | build (s) | size (MB) | of it gallery (MB) | overlays | figures |")
    print("|---|---|---|---|---|---|---|---|")
    sections = []
    for label, (n_models, n_test) in RUNS.items():
        run_dir = fabricate_full_run(root, label, n_models, n_test)
        result = measure(run_dir, args.repeats)
        sections = result["sections"]
        print(f"| {label} | {n_models} | {n_test} | {result['seconds']:.2f} | {result['mb']:.2f} | "
              f"{result['gallery_mb']:.2f} | {result['images']} | {result['figures']} |")
    print(f"\nSections ({len(sections)}): " + ", ".join(sections))


if __name__ == "__main__":
    main()
