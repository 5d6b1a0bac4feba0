"""Training and inference throughput of zoo models, with and without the real data pipeline.

    python benchmarks/bench_train.py --img-size 64 --batch-size 32 --steps 20 \
        --models simple_cnn,custom_cnn,mobilenetv2
    KERAS_BACKEND=jax python benchmarks/bench_train.py --precision mixed_bfloat16 --img-size 224 \
        --batch-size 128 --steps 50 --data ../shared/data/brain-tumor-mri

For each model, in a fresh child process (so peak memory is that model's):
- tensors: ``model.fit`` on in-memory random float32 tensors, no augmentation; the first
  epoch includes compiling, the fastest of ``--repeats`` later epochs is timed; inference
  the same with ``predict``;
- pipeline: the trainer's own path (bt_core.training.train.ImageBatches from uint8 images, per-model
  preprocessing, class weights, and the augmentation mode(s) of ``--augment``), from the
  images of ``--data`` (train split) or random uint8 images, timed the same way.
Prints a Markdown table with the date, device and library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone

DEFAULT_MODELS = "simple_cnn,custom_cnn,resnet50,vgg16,densenet121,mobilenetv2"
AUGMENT_CHOICES = ("device", "numpy", "none")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated ({DEFAULT_MODELS})")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="batches per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs after the first; the fastest counts")
    parser.add_argument("--data", help="dataset folder for the pipeline runs (default: random uint8 images)")
    parser.add_argument("--augment", default="device,numpy,none", help="pipeline augmentation modes to time")
    parser.add_argument("--workers", type=int, default=1, help="threads preparing pipeline batches")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--json", help="also write the results here as JSON, rewritten after every model "
                                       "(so a run stopped midway keeps the models measured so far)")
    parser.add_argument("--child-timeout", type=float, help="seconds one model may take; it is then reported as failed")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one model, JSON out: used by the parent
    return parser.parse_args(argv)


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_device_mib() -> float | None:
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    stats = jax.local_devices()[0].memory_stats()  # None on CPU
    if not stats or "peak_bytes_in_use" not in stats:
        return None
    return stats["peak_bytes_in_use"] / 2**20


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _timed_both(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _best(function, repeats: int) -> float:
    """The fastest of ``repeats`` runs: other load on the machine only ever adds time."""
    return min(_timed(function) for _ in range(max(1, repeats)))


def _pipeline_images(args: argparse.Namespace, count: int):
    import numpy as np

    from bt_core.data.dataset import SplitArrays, load_dataset

    if args.data:
        train = load_dataset(args.data, image_size=args.img_size, seed=0).arrays["train"]
        repeat = -(-count // len(train.labels))  # enough rows for the requested steps
        take = np.resize(np.arange(len(train.labels)), repeat * len(train.labels))[:count]
        return SplitArrays(train.images[take], train.labels[take], train.ids[take]), len(set(train.labels))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, args.img_size, args.img_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, size=count)
    return SplitArrays(images, labels, np.arange(count).astype(str)), 4


def measure_model(name: str, args: argparse.Namespace) -> dict:
    """Every figure for one model, in this process."""
    import keras
    import numpy as np

    from bt_core.models import create_model, get_spec
    from bt_core.training.augment import build_augmenter
    from bt_core.training.batches import ImageBatches, balanced_class_weights
    from bt_core.training.train import (
        AUGMENT_DEVICE,
        AUGMENT_NUMPY,
        black_level,
        jit_compile_setting,
        training_model,
    )

    keras.mixed_precision.set_global_policy(args.precision)
    keras.utils.set_random_seed(0)
    spec = get_spec(name)
    count = args.steps * args.batch_size
    rng = np.random.default_rng(0)
    x = rng.random((count, args.img_size, args.img_size, 3), dtype=np.float32)
    y = rng.integers(0, 4, size=count)

    def compiled(model):
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      jit_compile=jit_compile_setting())
        return model

    model = compiled(create_model(name, 4, input_size=args.img_size))
    result = {"model": name, "params": int(model.count_params())}
    first = _timed(lambda: model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0))
    second = _best(lambda: model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0), args.repeats)
    result["tensors_train_ips"] = count / second
    result["first_epoch_s"] = first
    result["compile_s"] = max(first - second, 0.0)
    model.predict(x, batch_size=args.batch_size, verbose=0)
    result["infer_ips"] = count / _best(lambda: model.predict(x, batch_size=args.batch_size, verbose=0), args.repeats)

    arrays, num_classes = _pipeline_images(args, count)
    weights = balanced_class_weights(arrays.labels, num_classes)
    modes = [m for m in args.augment.split(",") if m]
    runs = {}
    for mode in modes:
        if mode not in AUGMENT_CHOICES:
            raise SystemExit(f"--augment: unknown mode {mode!r}; valid: {', '.join(AUGMENT_CHOICES)}")
        keras.utils.set_random_seed(0)
        model = create_model(name, num_classes, input_size=args.img_size)
        augmenter = None
        if mode == AUGMENT_DEVICE:
            augmenter = build_augmenter(1.0, fill_value=black_level(spec.preprocessing), seed=0)
        fitted = compiled(training_model(model, augmenter))
        batches = ImageBatches(arrays, spec.preprocessing, args.batch_size, shuffle=True, augment=mode == AUGMENT_NUMPY,
                               class_weights=weights, seed=0, workers=args.workers)
        result[f"pipeline_{mode}_first_epoch_s"] = _timed(lambda: fitted.fit(batches, epochs=1, verbose=0))
        runs[mode] = (fitted, batches)
    # Round-robin over the modes, so a burst of other load on the machine hits them alike.
    # CPU time per image is reported too: on a shared machine it barely depends on the others.
    best = {mode: float("inf") for mode in modes}
    best_cpu = dict(best)
    for _ in range(max(1, args.repeats)):
        for mode, (fitted, batches) in runs.items():
            wall, cpu = _timed_both(lambda: fitted.fit(batches, epochs=1, verbose=0))
            best[mode], best_cpu[mode] = min(best[mode], wall), min(best_cpu[mode], cpu)
    for mode, (fitted, batches) in runs.items():
        images = len(batches) * args.batch_size
        result[f"pipeline_{mode}_ips"] = images / best[mode]
        result[f"pipeline_{mode}_cpu_ms_per_image"] = 1000 * best_cpu[mode] / images
    result["peak_rss_mib"] = _peak_rss_mib()
    result["peak_device_mib"] = _peak_device_mib()
    return result


def environment() -> dict:
    import keras

    from bt_core.training.environment import device_description, library_versions

    return {"backend": keras.backend.backend(), "device": device_description(), "versions": library_versions()}


def _child_command(name: str, argv: list[str]) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), *argv, "--child", name]


def _format(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown(results: list[dict], env: dict, args: argparse.Namespace, command: str) -> str:
    modes = [m for m in args.augment.split(",") if m]
    header = ["model", "params", "train img/s (tensors)", "first epoch s (tensors)", "infer img/s"]
    header += [f"train img/s (pipeline, {m} aug)" for m in modes]
    header += [f"CPU ms/img (pipeline, {m} aug)" for m in modes]
    header += ["peak RSS MiB", "peak device MiB"]
    lines = [
        f"Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; backend {env['backend']}; "
        f"device {env['device']}; precision {args.precision}; {args.img_size} px, batch {args.batch_size}, "
        f"{args.steps} steps per timed epoch, best of {args.repeats}; "
        f"pipeline data: {args.data or 'random uint8 images'}; "
        f"pipeline workers {args.workers}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        f"Command: `{command}`",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | failed: {r['error']} |")
            continue
        row = [r["model"], f"{r['params'] / 1e6:.2f} M", _format(r["tensors_train_ips"]),
               _format(r["first_epoch_s"], 1), _format(r["infer_ips"])]
        row += [_format(r.get(f"pipeline_{m}_ips")) for m in modes]
        row += [_format(r.get(f"pipeline_{m}_cpu_ms_per_image"), 2) for m in modes]
        row += [_format(r["peak_rss_mib"]), _format(r["peak_device_mib"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def measure_in_child(name: str, argv: list[str], timeout: float | None) -> dict:
    """One model's figures from a fresh process, or ``{"model", "error"}``."""
    try:
        child = subprocess.run(_child_command(name, argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"model": name, "error": f"stopped after {timeout:g} s (--child-timeout)"}
    if child.returncode != 0:
        return {"model": name, "error": child.stderr.strip().splitlines()[-1] if child.stderr else "?"}
    return json.loads(child.stdout.strip().splitlines()[-1])


def write_json_results(path: str, results: list[dict], env: dict, args: argparse.Namespace, command: str) -> None:
    """The results as JSON, replaced atomically (a reader never sees half a file)."""
    settings = {k: v for k, v in vars(args).items() if k not in ("child", "json")}
    data = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "settings": settings, **env, "results": results}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        print(json.dumps(measure_model(args.child, args)))
        return 0
    backend = os.environ.get("KERAS_BACKEND", "")
    prefix = f"KERAS_BACKEND={backend} " if backend else ""
    command = prefix + "python benchmarks/bench_train.py " + " ".join(argv)
    results = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        results.append(measure_in_child(name, argv, args.child_timeout))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        if args.json:
            # Not environment() here: under JAX it would claim the GPU's memory while children run.
            write_json_results(args.json, results, {"environment": "pending"}, args, command)
    env = environment()
    if args.json:
        write_json_results(args.json, results, env, args, command)
    print(markdown(results, env, args, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
