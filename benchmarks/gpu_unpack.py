"""After a GPU run (benchmarks/gpu_run.sh), on the CPU: turn the files that came back into a run
folder the dashboard opens.

    python benchmarks/gpu_unpack.py RESULTS --data ../shared/data/brain-tumor-mri [--artifacts artifacts]

RESULTS holds run-small.tar.gz, gpu_run.json, bench.json, log.txt and <model>.w16.partNN.
The run folder ARTIFACTS/<run_id> gets:
- test_images.npz, decoded again from ``--data`` on the stored split.csv exactly as a run
  decodes them (the dataset's fingerprint must match the manifest's);
- models/<model>/model.keras for every model whose float16 weights came back: rebuilt with
  ``create_model`` under the run's precision, weights cast to float32, then checked against the
  GPU's predictions on ``--check`` test images (the manifest entry's ``gpu_weights_check``);
- for a finished model without weights: its predictions, metrics and history stay usable
  (the Models, ROC and Confusion pages need nothing else) and ``weights_missing`` says why
  there is no model.keras; a model the GPU run's time budget stopped becomes ``failed``;
- gpu/: the returned bench.json, gpu_run.json and log.txt, and the manifest's ``gpu_run``
  block (where the data lay on the device, the steps, which weights came back).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from gpu_weights import read_parts

TIME_BUDGET_ERROR = "RuntimeError: stopped by the GPU run's time budget before it finished"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="the folder the GPU run's files came back into")
    parser.add_argument("--data", help="the dataset folder on this machine (default: ../shared/data/<dataset name>)")
    parser.add_argument("--artifacts", default="artifacts", help="where the run folder goes (artifacts)")
    parser.add_argument("--check", type=int, default=256, help="test images to compare with the GPU's predictions")
    return parser.parse_args(argv)


def extract_run(results: Path, scratch: Path) -> Path:
    """The run folder inside run-small.tar.gz, extracted under ``scratch``."""
    with tarfile.open(results / "run-small.tar.gz") as archive:
        archive.extractall(scratch, filter="data")
    folders = [p for p in scratch.iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise ValueError(f"run-small.tar.gz should hold one run folder, holds {len(folders)}")
    return folders[0]


def decode_test_images(run_dir: Path, manifest: dict, data: Path):
    """The test split decoded as the run decoded it; refuses a dataset that is not the run's."""
    from bt_core.artifacts import read_split
    from bt_core.data.dataset import load_dataset

    dataset = load_dataset(data, image_size=int(manifest["image_size"]), ops=tuple(manifest.get("preprocess", [])),
                           split=read_split(run_dir))
    if dataset.fingerprint != manifest["dataset"]["fingerprint"]:
        raise ValueError(f"{data} is not the dataset the GPU run trained on (fingerprint "
                         f"{dataset.fingerprint[:12]}... here, {manifest['dataset']['fingerprint'][:12]}... there)")
    return dataset.arrays["test"]


def rebuild_model(name: str, entry: dict, manifest: dict, weights: dict, results: Path):
    """The trained model from its float16 parts, under the run's precision policy."""
    import keras

    from bt_core.models import create_model

    keras.mixed_precision.set_global_policy(manifest["config"].get("precision") or "float32")
    model = create_model(name, len(manifest["class_names"]), input_size=int(entry["input_size"]))
    model.set_weights(read_parts(weights, results))
    return model


def check_against_gpu(model, name: str, entry: dict, test, predictions: pd.DataFrame, class_names: list[str], count: int) -> dict:
    """How the rebuilt model's predictions compare with the GPU's on the first ``count`` test images."""
    from bt_core.artifacts import ModelEntry, probability_columns
    from bt_core.data.dataset import SplitArrays
    from bt_core.training.train import predict_proba

    count = min(count, len(test.ids))
    subset = SplitArrays(test.images[:count], test.labels[:count], test.ids[:count])
    proba = predict_proba(model, ModelEntry.from_json(name, entry).spec, subset)
    stored = predictions.set_index("id").loc[list(subset.ids)]
    gpu = stored[probability_columns(class_names)].to_numpy(dtype=float)
    return {"images": int(count), "same_class": float(np.mean(proba.argmax(1) == gpu.argmax(1))),
            "max_abs_probability_difference": float(np.abs(proba - gpu).max())}


def mark_models(manifest: dict, returned: set[str], record: dict) -> None:
    """Unfinished models failed (when the time budget stopped them); finished ones without weights noted."""
    stopped = any(step.get("name") == "train" and step.get("timed_out") for step in record.get("steps") or []
                  if isinstance(step, dict))
    left_out = record.get("weights_left_out") or {}
    for name, entry in manifest["models"].items():
        if entry.get("status") in ("pending", "running"):
            entry["status"] = "failed"
            entry["error"] = TIME_BUDGET_ERROR if stopped else "RuntimeError: the GPU run ended before it finished"
        elif entry.get("status") == "done" and name not in returned:
            entry["weights_missing"] = (f"no model.keras: {left_out.get(name, 'its weights did not come back')}; "
                                        "predictions, metrics and history are the GPU run's")


def unpack(results: Path, data: str | None, artifacts_dir: Path, check: int) -> Path:
    from bt_core.artifacts import RunWriter, read_manifest

    results, artifacts_dir = Path(results), Path(artifacts_dir)
    record = json.loads((results / "gpu_run.json").read_text()) if (results / "gpu_run.json").is_file() else {}
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=artifacts_dir, prefix=".gpu-unpacking-") as scratch:
        run_dir = extract_run(results, Path(scratch))
        target = artifacts_dir / run_dir.name
        if target.exists():
            raise ValueError(f"{target} already exists; remove it or unpack into another --artifacts")
        manifest = read_manifest(run_dir)
        data_dir = Path(data or Path("..") / "shared" / "data" / manifest["dataset"]["name"]).resolve()
        test = decode_test_images(run_dir, manifest, data_dir)
        weights = {name: entry for name, entry in (record.get("weights") or {}).items()
                   if manifest["models"].get(name, {}).get("status") == "done"}
        manifest["gpu_run"] = {"data_on_device": manifest["dataset"].get("root"), "steps": record.get("steps"),
                               "device": record.get("device"), "weights_returned": sorted(weights)}
        manifest["dataset"]["root"] = manifest["config"]["data"] = str(data_dir)
        mark_models(manifest, set(weights), record)
        writer = RunWriter(run_dir, manifest)
        writer.write_test_images(test.images, test.ids)
        for name, entry in weights.items():
            model = rebuild_model(name, manifest["models"][name], manifest, entry, results)
            writer.save_model(name, model)
            predictions = pd.read_csv(run_dir / "models" / name / "predictions.csv")
            writer.set_model_status(name, "done", gpu_weights_check=check_against_gpu(
                model, name, manifest["models"][name], test, predictions, manifest["class_names"], check))
            print(f"{name}: model.keras rebuilt; {writer.manifest['models'][name]['gpu_weights_check']}",
                  file=sys.stderr)
        (run_dir / "gpu").mkdir(exist_ok=True)
        for name in ("bench.json", "gpu_run.json", "log.txt"):
            if (results / name).is_file():
                shutil.copyfile(results / name, run_dir / "gpu" / name)
        run_dir.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(unpack(Path(args.results), args.data, Path(args.artifacts), args.check))
    except (ValueError, OSError, KeyError, tarfile.TarError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
