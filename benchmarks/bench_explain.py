"""Time explanations of one image per model on this machine; prints a Markdown table.

    .venv/bin/python benchmarks/bench_explain.py [--models resnet50,vgg16] [--size 224]

Models are randomly initialised (timing does not depend on the weights). "first call"
includes the one-off work cached per model (linear clone, tracing); the other columns
are the median of ``--repeats`` calls after a warm-up call. "eager" is plain tf-keras-vis
(``compiled=False``); the other columns use the default compiled path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

DEFAULT_MODELS = "resnet50,vgg16,densenet121,mobilenetv2,simple_cnn,custom_cnn"


def _seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _first_call_seconds(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated registry names")
    parser.add_argument("--size", type=int, default=224, help="input size in pixels")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per cell (median)")
    parser.add_argument("--max-n", type=int, default=10, help="channels for Faster Score-CAM")
    args = parser.parse_args()

    import keras

    from bt_core.explain import explain_spec
    from bt_core.models import create_model, get_spec

    image = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3), dtype=np.uint8)
    rows = []
    for name in args.models.split(","):
        spec = get_spec(name)
        model = create_model(name, 4, input_size=args.size)

        def run(method: str, **options):
            return lambda: explain_spec(model, spec, image, method, class_index=0, **options)

        first = _first_call_seconds(run("gradcam"))
        gradcam = _seconds(run("gradcam"), args.repeats)
        eager = _seconds(run("gradcam", compiled=False), args.repeats)
        faster = _seconds(run("faster_scorecam", max_N=args.max_n), args.repeats)
        rows.append((name, model.count_params() / 1e6, spec.last_conv_layer, first, gradcam, eager, faster))
        keras.backend.clear_session()

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"One {args.size} px image, {os.cpu_count()} CPU cores (load average {load}); "
        f"median of {args.repeats} after a warm-up.\n"
    )
    print(
        "| model | params (M) | layer | Grad-CAM first call (s) | Grad-CAM (s) "
        f"| Grad-CAM eager tf-keras-vis (s) | Faster Score-CAM, max_N={args.max_n} (s) |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, params, layer, first, gradcam, eager, faster in rows:
        print(
            f"| {name} | {params:.1f} | `{layer}` | {first:.2f} | {gradcam:.3f} "
            f"| {eager:.3f} | {faster:.3f} |"
        )


if __name__ == "__main__":
    main()
