"""Precompute explanation maps of a run's test images, so the dashboard shows them at once.

For every usable model of a run and every test image, each method's map of the class the
model PREDICTED (``predictions.csv``) is computed with :func:`bt_core.explain.explain_spec`,
shrunk to ``map_size`` pixels and stored as float16 in the run
(``models/<model>/maps/<method>.npz``, see :func:`bt_core.artifacts.write_maps`).

    python -m bt_core.explain.precompute artifacts/RUN_ID
    python -m bt_core.explain.precompute artifacts/RUN_ID --methods gradcam --models simple_cnn

Exit status: 0 when every chosen model got its maps, 1 when one or more were skipped (not
trained, unreadable model), 2 for a run that cannot be opened or bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import pandas as pd

from bt_core import artifacts

DEFAULT_METHODS = ("gradcam", "faster_scorecam")
# Stored maps are at most this many pixels a side: 8 KB per image as float16, and a CAM
# has far less detail than that (ResNet50's is 7 x 7 at 224 px).
DEFAULT_MAP_SIZE = 64
# Images per explain call: bounds the full-size float32 maps held at once.
CHUNK = 64


def default_map_size(image_size: int) -> int:
    return min(DEFAULT_MAP_SIZE, int(image_size))


def downsample_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """``(N, H, W)`` maps in ``[0, 1]`` as float32 ``(N, size, size)`` (area filter, clipped)."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.shape[1:] == (size, size):
        return maps
    if not len(maps):
        return np.zeros((0, size, size), dtype=np.float32)
    resized = [cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA) for m in maps]
    return np.clip(np.stack(resized), 0.0, 1.0)


def predicted_class_indices(
    predictions: pd.DataFrame, ids: Sequence[str], class_names: Sequence[str]
) -> np.ndarray:
    """The predicted class index of every test id (``predictions.csv`` ``pred``), in ``ids`` order.

    Raises ``ValueError`` when the table does not cover every test image.
    """
    table = predictions.assign(id=predictions["id"].astype(str)).drop_duplicates("id").set_index("id")
    positions = table.index.get_indexer(np.asarray(ids, dtype=str))
    if (positions < 0).any():
        raise ValueError(
            f"predictions.csv lacks {int((positions < 0).sum())} of the {len(ids)} test images"
        )
    return pd.Index(list(class_names)).get_indexer(table["pred"].to_numpy()[positions]).astype(np.int64)


def explain_entry(
    model: Any, entry: dict[str, Any], images: np.ndarray, method: str, class_index: Any
) -> np.ndarray:
    """:func:`bt_core.explain.explain_spec` for a manifest model entry, in bounded chunks.

    An entry without ``last_conv_layer`` (older runs) explains the default layer.
    """
    from bt_core.explain import explain_spec

    spec = {"last_conv_layer": entry.get("last_conv_layer"), "preprocessing": entry["preprocessing"]}
    classes = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (len(images),))
    parts = [
        explain_spec(model, spec, images[start : start + CHUNK], method, class_index=classes[start : start + CHUNK])
        for start in range(0, len(images), CHUNK)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, *images.shape[1:3]), dtype=np.float32)


def precompute_run_maps(
    run_dir: Path | str,
    methods: Sequence[str] = DEFAULT_METHODS,
    map_size: int | None = None,
    models: Sequence[str] | None = None,
    progress: Callable[[str], Any] | None = print,
) -> dict[str, Any]:
    """Compute and store the maps of ``methods`` for every usable model of a run.

    ``models``: names to do (default: every model in the manifest); ``map_size``: side of
    the stored maps (default ``min(64, image size)``); ``progress``: called with one line
    per model and method (None: silent).

    Returns ``{"maps": {model: {method: path}}, "skipped": {model: reason},
    "map_size": int, "seconds": float}``. A model that is not usable (failed, unreadable
    tables or model file) is skipped with its reason; a method that fails for a model is
    skipped as ``"<method>: <error>"`` and the next one is tried.
    Raises ArtifactError for a run (or test image archive) that cannot be read and
    ValueError for an unknown method or model name.
    """
    import tensorflow as tf

    from bt_core.explain import clear_cache, list_methods

    say = progress or (lambda _line: None)
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run = artifacts.load_run(run_dir)
    unknown_methods = [m for m in methods if m not in list_methods()]
    if unknown_methods:
        raise ValueError(f"unknown method(s) {unknown_methods}; known: {', '.join(list_methods())}")
    names = list(run.models) if models is None else list(models)
    unknown_models = [name for name in names if name not in run.models]
    if unknown_models:
        raise ValueError(f"model(s) {unknown_models} not in this run; it has {', '.join(run.models)}")
    images, ids = artifacts.load_test_images(run_dir)
    size = default_map_size(images.shape[1]) if map_size is None else int(map_size)
    if size < 1:
        raise ValueError(f"map_size must be a positive number of pixels, got {map_size}")

    written: dict[str, dict[str, Path]] = {}
    skipped: dict[str, str] = {}
    for name in names:
        model_artifacts = run.models[name]
        if not model_artifacts.usable:
            skipped[name] = model_artifacts.error or "no predictions"
            say(f"{name}: skipped ({skipped[name]})")
            continue
        try:
            classes = predicted_class_indices(model_artifacts.predictions, ids, run.class_names)
            model = artifacts.load_model(run_dir, name)
        except (ValueError, artifacts.ArtifactError) as exc:
            skipped[name] = str(exc)
            say(f"{name}: skipped ({exc})")
            continue
        entry = run.manifest["models"][name]
        problems = []
        for method in methods:
            method_started = time.perf_counter()
            try:
                maps = downsample_maps(explain_entry(model, entry, images, method, classes), size)
            # Memory or a layer the method cannot use: note it, try the next method.
            except (ValueError, TypeError, RuntimeError, MemoryError, tf.errors.OpError) as exc:
                problems.append(f"{method}: {type(exc).__name__}: {exc}")
                say(f"{name}: {method} failed ({problems[-1]})")
                continue
            path = artifacts.write_maps(
                run_dir, name, method, maps, ids, classes, layer=entry.get("last_conv_layer")
            )
            written.setdefault(name, {})[method] = path
            say(
                f"{name}: {method} of {len(images)} images in "
                f"{time.perf_counter() - method_started:.1f} s -> {path}"
            )
        if problems:
            skipped[name] = "; ".join(problems)
        clear_cache(model)  # the clone and traced views of a big model are not needed again
        del model
    return {
        "maps": written,
        "skipped": skipped,
        "map_size": size,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _names(values: Sequence[str] | None) -> list[str] | None:
    """``--methods a,b c`` as ``[a, b, c]``."""
    if not values:
        return None
    return [part for value in values for part in value.split(",") if part]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bt_core.explain.precompute",
        description="Precompute the explanation maps of a run's test images for the dashboard.",
    )
    parser.add_argument("run_dir", type=Path, help="the run folder, e.g. artifacts/RUN_ID")
    parser.add_argument(
        "--methods", nargs="+", default=None,
        help=f"methods, comma- or space-separated (default: {' '.join(DEFAULT_METHODS)})",
    )
    parser.add_argument("--models", nargs="+", default=None, help="models to do (default: all)")
    parser.add_argument(
        "--map-size", type=int, default=None,
        help=f"side of the stored maps in pixels (default: min({DEFAULT_MAP_SIZE}, image size))",
    )
    args = parser.parse_args(argv)
    try:
        result = precompute_run_maps(
            args.run_dir,
            methods=_names(args.methods) or DEFAULT_METHODS,
            map_size=args.map_size,
            models=_names(args.models),
        )
    except (ValueError, artifacts.ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, reason in result["skipped"].items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    count = sum(len(by_method) for by_method in result["maps"].values())
    print(f"{count} map file(s) of {result['map_size']} px in {result['seconds']:.1f} s")
    return 1 if result["skipped"] else 0


if __name__ == "__main__":
    # Explanations need TensorFlow (tf-keras-vis), whatever backend trained the models.
    os.environ["KERAS_BACKEND"] = "tensorflow"
    sys.exit(main())
