"""Speed and memory of the Inspect page's two map paths, on this machine; prints Markdown.

    .venv/bin/python benchmarks/bench_inspect.py [--models resnet50,vgg16,...] [--size 224]

(a) Precomputed: one image's maps for every model, from opening the maps files to the
    overlays built (bt_dashboard.views.inspect: map, colour, stored head and box, shares), with
    synthetic CAM-like maps files of ``--n-images`` test images at the stored 64 px.
(b) Live: each model (random weights, saved as model.keras and loaded back, as the
    dashboard does, Grad-CAM views traced by ``warm_up`` as part of the load) explains
    one image with every method (``--methods``, default all registered): the first call
    (what it traces) and warm (median of ``--repeats``; a method slower than
    ``--budget`` seconds per cell is timed fewer times). Targets: every method for all
    the models within 3 s warm, Score-CAM within 3 s per model.
(c) Resident memory (VmRSS) of this process with TensorFlow and all models loaded, and
    after explaining (the explain cache keeps a linear clone of every model).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_MODELS = "resnet50,vgg16,densenet121,mobilenetv2,simple_cnn,custom_cnn"
CLASS_NAMES = ["glioma", "meningioma", "notumor", "pituitary"]


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def median_seconds(call, repeats: int) -> float:
    return statistics.median(timed(call)[0] for _ in range(repeats))


def head_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """An MRI-like test image: a bright noisy ellipse on black."""
    import cv2

    gray = np.zeros((size, size), np.uint8)
    cv2.ellipse(gray, (size // 2, size // 2), (size // 3, size // 2 - 8), 0, 0, 360, 140, -1)
    gray = np.clip(gray + rng.normal(0, 10, gray.shape) * (gray > 0), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., np.newaxis], 3, axis=-1)


def cam_like_maps(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Smooth maps in [0, 1] like real CAMs (a 7 x 7 grid upsampled), not white noise."""
    import cv2

    maps = np.stack([cv2.resize(rng.random((7, 7), dtype=np.float32), (size, size)) for _ in range(n)])
    low, high = maps.min(axis=(1, 2), keepdims=True), maps.max(axis=(1, 2), keepdims=True)
    return (maps - low) / (high - low)


def bench_precomputed(names: list[str], size: int, n_images: int, repeats: int) -> dict[str, float]:
    """(a): seconds from the maps files to the overlays of one image for every model, as the
    page does it (files memory-mapped, then cached), and with every file read whole."""
    from bt_core.artifacts import load_maps, maps_path, write_maps
    from bt_core.regions import head_mask
    from bt_core.runs.analyze import default_map_size
    from bt_dashboard.views import inspect as it
    from bt_dashboard.views import inspect_pictures as pictures

    rng = np.random.default_rng(0)
    map_size = default_map_size(size)
    ids = np.array([f"glioma/img_{i:05d}.png" for i in range(n_images)])
    image = head_image(size, rng)
    image_id, box = ids[n_images // 2], (0.3, 0.3, 0.5, 0.5)
    with tempfile.TemporaryDirectory() as run_dir:
        for name in names:
            maps = cam_like_maps(rng, n_images, map_size)
            write_maps(run_dir, name, "gradcam", maps, ids, np.zeros(n_images, np.int64))

        # The stored head mask of the image, as the analysis pass stores it (test_heads.npz).
        outlines = pictures.StoredOutlines(box, head_mask(image), True, True)

        def overlays(stored) -> list[np.ndarray]:
            picture = pictures.make_picture(image, outlines, True)
            result = []
            for name in names:
                cam = it.precomputed_map(stored[name], image_id, 0)
                result.append(pictures.compose_overlay(picture.image, cam, "jet", 0.45, picture.box, picture.head))
                pictures.live_shares(cam, picture.stored, size)  # the cost of a map with no stored shares
            return result

        def from_files(mmap: bool):
            return lambda: overlays({name: load_maps(run_dir, name, "gradcam", mmap=mmap) for name in names})

        from_files(False)()  # warm the page cache and OpenCV
        mapped = median_seconds(from_files(True), repeats)
        whole = median_seconds(from_files(False), repeats)
        in_memory = {name: load_maps(run_dir, name, "gradcam", mmap=True) for name in names}
        cached = median_seconds(lambda: overlays(in_memory), repeats)
        file_mb = sum(maps_path(run_dir, name, "gradcam").stat().st_size for name in names) / 2**20
    return {"mmap": mapped, "whole": whole, "cached": cached, "file_mb": file_mb, "map_size": map_size}


def save_models(run_dir: str, names: list[str], size: int) -> None:
    """Build and save the models (run in a child process, so the measured one never holds them)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from bt_core.artifacts import STATUS_DONE, RunWriter
    from bt_core.models import create_model

    writer = RunWriter(Path(run_dir), {"class_names": CLASS_NAMES, "image_size": size})
    for name in names:
        writer.save_model(name, create_model(name, len(CLASS_NAMES), input_size=size))
        writer.set_model_status(name, STATUS_DONE)


def budgeted_median(call, repeats: int, budget: float) -> float:
    """Median seconds of up to ``repeats`` calls, stopping once ``budget`` seconds are spent."""
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget):
        times.append(timed(call)[0])
    return statistics.median(times)


def first_and_warm(call, repeats: int, budget: float) -> tuple[float, float]:
    """Seconds of the first call and the warm median; a first call over ``budget`` is the
    only one (its warm time is at most that: nothing is traced twice)."""
    first, _ = timed(call)
    return first, first if first > budget else budgeted_median(call, repeats, budget)


def bench_live(
    names: list[str], size: int, repeats: int, methods: list[str], budget: float
) -> tuple[list[dict], dict[str, float]]:
    """(b) and (c): per model load, tracing and each method's first and warm seconds, and memory."""
    import multiprocessing

    memory = {"start": rss_mb()}
    image = head_image(size, np.random.default_rng(1))[np.newaxis]
    rows, models = [], {}
    with tempfile.TemporaryDirectory() as run_dir:
        child = multiprocessing.get_context("spawn").Process(target=save_models, args=(run_dir, names, size))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"saving the models failed (exit status {child.exitcode})")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras  # noqa: F401  (imported here so its memory is counted on its own line)

        from bt_core.artifacts import load_model
        from bt_core.explain import explain_spec, warm_up
        from bt_core.models import get_spec

        memory["tensorflow"] = rss_mb()
        for name in names:
            seconds, models[name] = timed(lambda: load_model(Path(run_dir), name))
            rows.append({"model": name, "params": models[name].count_params() / 1e6, "load": seconds})
        memory["loaded"] = rss_mb()
        for row in rows:
            model, spec = models[row["model"]], get_spec(row["model"])

            def explain(method: str):
                return lambda: explain_spec(model, spec, image, method, class_index=0)

            # As the dashboard loads a model (bt_dashboard.loaders): load, then trace Grad-CAM.
            row["prepare"], _ = timed(lambda: warm_up(model, spec))
            for method in methods:
                row[f"{method}_first"], row[method] = first_and_warm(explain(method), repeats, budget)
                print(f"  {row['model']} {method}: first {row[method + '_first']:.2f} s, "
                      f"warm {row[method]:.3f} s", flush=True)
        memory["explained"] = rss_mb()
    memory["peak"] = peak_rss_mb()
    return rows, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated registry names")
    parser.add_argument("--size", type=int, default=224, help="input size in pixels")
    parser.add_argument("--n-images", type=int, default=1311, help="test images in each synthetic maps file")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per cell (median)")
    parser.add_argument("--methods", default=None, help="comma-separated methods (default: all registered)")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds of calls per model and method before fewer repeats are taken "
                             "(a first call over it is the only one)")
    args = parser.parse_args()
    names = args.models.split(",")
    if args.methods is None:
        from bt_core.explain import list_methods

        methods = list_methods()
    else:
        methods = args.methods.split(",")

    precomputed = bench_precomputed(names, args.size, args.n_images, args.repeats)
    rows, memory = bench_live(names, args.size, args.repeats, methods, args.budget)

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{len(names)} models, one {args.size} px image, {os.cpu_count()} CPU cores (load average {load}); "
          f"median of {args.repeats}.\n")
    print("| path | seconds | target |")
    print("|---|---:|---|")
    files = (f"{len(names)} maps files ({args.n_images} images at {precomputed['map_size']} px, "
             f"{precomputed['file_mb']:.0f} MB in all)")
    print(f"| (a) precomputed, as the page does it: open {files} memory-mapped + build {len(names)} overlays "
          f"| {precomputed['mmap']:.3f} | ≤ 0.2 s |")
    print(f"| (a) precomputed, the same {files} read whole + build the overlays | {precomputed['whole']:.3f} | |")
    print(f"| (a) precomputed, maps already cached (the next image, a rerun) "
          f"| {precomputed['cached']:.3f} | ≤ 0.2 s |")
    print(f"| loading all {len(names)} models as the dashboard does: model.keras files "
          f"| {sum(row['load'] for row in rows):.2f} | |")
    print(f"| ... then tracing their Grad-CAM views (part of the dashboard's load) "
          f"| {sum(row['prepare'] for row in rows):.2f} | |")
    print()
    print(f"| live method, one image | all {len(names)} models, first call (s) | all {len(names)} models, warm (s) "
          "| slowest model, warm (s) | target (warm) |")
    print("|---|---:|---:|---:|---|")
    for method in methods:
        first = sum(row[f"{method}_first"] for row in rows)
        warm = [row[method] for row in rows]
        slowest = max(range(len(rows)), key=warm.__getitem__)
        target = "≤ 3 s per model" if method == "scorecam" else f"≤ 3 s for all {len(names)}"
        print(f"| {method} | {first:.2f} | {sum(warm):.2f} | {warm[slowest]:.2f} ({rows[slowest]['model']}) "
              f"| {target} |")
    print()
    print("| model | params (M) | load (s) | Grad-CAM tracing at load (s) | "
          + " | ".join(f"{method} first / warm (s)" for method in methods) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(methods))
    for row in rows:
        cells = " | ".join(f"{row[method + '_first']:.2f} / {row[method]:.3f}" for method in methods)
        print(f"| {row['model']} | {row['params']:.1f} | {row['load']:.2f} | {row['prepare']:.2f} | {cells} |")
    print()
    print("| resident memory (VmRSS) | MiB |")
    print("|---|---:|")
    print(f"| Python + NumPy/OpenCV (before Keras) | {memory['start']:.0f} |")
    print(f"| + TensorFlow / Keras imported | {memory['tensorflow']:.0f} |")
    print(f"| + {len(names)} models loaded | {memory['loaded']:.0f} |")
    print(f"| + explained (linear clones and traced views cached) | {memory['explained']:.0f} |")
    print(f"| peak (ru_maxrss) | {memory['peak']:.0f} |")


if __name__ == "__main__":
    main()
