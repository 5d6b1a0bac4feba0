"""Predict new images with every finished model of a run: class probabilities as a table and
a CSV, and one explanation overlay (PNG) per image and model, written to a folder outside the
run (the run folder is never written here).

Each image is decoded as the run's own images were (``bt_core.data.images.read_image``: the
run's image ops, then resized to the model's input size) and fed with the model's own
preprocessing (its stored ``ModelSpec``). An image that does not decode is skipped and named,
the others are still predicted; a model that cannot be used (not trained, a missing or damaged
model.keras, an error while predicting) is skipped with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from bt_core.artifacts import ArtifactError, Run, load_model, load_run
from bt_core.artifacts.files import atomic_write
from bt_core.data.images import UnreadableImageError, read_image
from bt_core.data.preprocess import preprocess_batch

PREDICTIONS_CSV = "predictions.csv"
OUT_SUFFIX = "_predictions"
DEFAULT_METHOD = "gradcam"
DISPLAY_SIDE = 256  # overlays are drawn at least this large, so a 64 px model's map can be read
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Predictions:
    """What :func:`predict_images` did: ``table`` has one row per image and model (image,
    model, predicted, confidence, p_<class>..., overlay); ``skipped_images`` and
    ``skipped_models`` map a path or a model name to the reason."""

    out_dir: Path
    csv_path: Path
    table: pd.DataFrame
    overlays: list[Path] = field(default_factory=list)
    skipped_images: dict[str, str] = field(default_factory=dict)
    skipped_models: dict[str, str] = field(default_factory=dict)


def default_out_dir(run_dir: Path, folder: Path | None = None) -> Path:
    """``<run_id>_predictions`` in ``folder`` (default: the current folder)."""
    return (folder or Path.cwd()) / f"{Path(run_dir).resolve().name}{OUT_SUFFIX}"


def probability_columns(class_names: Sequence[str]) -> list[str]:
    return [f"p_{name}" for name in class_names]


def overlay_name(index: int, image: str, model: str, method: str) -> str:
    """``01-<image stem>-<model>-<method>.png``: the position keeps two images of the same
    name in different folders apart."""
    stem = _UNSAFE.sub("_", Path(image).stem) or "image"
    return f"{index + 1:02d}-{stem}-{model}-{method}.png"


def usable_models(run: Run, names: Sequence[str] = ()) -> tuple[dict[str, object], dict[str, str]]:
    """({name: stored ModelSpec} of the models that can predict, {name: why not} of the
    others); ValueError for a name the run lacks."""
    unknown = [name for name in names if name not in run.models]
    if unknown:
        raise ValueError(f"run {run.run_id} has no model(s) {unknown}; it has {', '.join(run.models)}")
    specs, skipped = {}, {}
    for name in names or list(run.models):
        stored = run.models[name]
        problem = stored.error or stored.live_problem
        if problem:
            skipped[name] = problem
            continue
        try:
            spec = run.entry(name).spec
        except ArtifactError as exc:
            skipped[name] = str(exc)
            continue
        if spec is None:
            skipped[name] = "not trained"
            continue
        specs[name] = spec
    return specs, skipped


def decode_images(paths: Sequence[str], sizes: set[int], ops: tuple[str, ...]
                  ) -> tuple[dict[int, np.ndarray], list[str], dict[str, str]]:
    """({size: uint8 (N, size, size, 3)}, the paths that decoded, {path: why not} of the others)."""
    decoded: dict[int, list[np.ndarray]] = {size: [] for size in sizes}
    kept, skipped = [], {}
    for path in paths:
        try:
            images = {size: read_image(path, size, ops) for size in sorted(sizes)}
        except UnreadableImageError as exc:
            skipped[path] = str(exc)
            continue
        kept.append(path)
        for size, image in images.items():
            decoded[size].append(image)
    return ({size: np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
             for size, images in decoded.items()}, kept, skipped)


def model_probabilities(model, spec, images: np.ndarray) -> np.ndarray:
    """Class probabilities (float64, rows sum to 1); ValueError for an output that is not one."""
    from bt_core.models.inference import predict_in_batches

    output = predict_in_batches(model, preprocess_batch(images, spec.preprocessing)).astype(np.float64)
    if output.ndim != 2 or len(output) != len(images) or not np.isfinite(output).all() or (output < 0).any():
        raise ValueError(f"its output is not class probabilities (shape {output.shape})")
    return output / output.sum(axis=1, keepdims=True)


def write_overlay(path: Path, image: np.ndarray, cam: np.ndarray) -> Path:
    from bt_core.explain.overlay import overlay

    side = max(DISPLAY_SIDE, image.shape[0])
    shown = cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(overlay(shown, cam), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"OpenCV could not encode {path.name}")
    atomic_write(path, lambda tmp: tmp.write_bytes(encoded.tobytes()))
    return path


def predict_images(
    run_dir: Path | str,
    image_paths: Sequence[str | Path],
    out_dir: Path | str | None = None,
    method: str = DEFAULT_METHOD,
    models: Sequence[str] = (),
    say: Callable[[str], None] | None = None,
) -> Predictions:
    """Every usable model's probabilities for each image and its ``method`` map's overlay.

    ``out_dir``: where predictions.csv and the PNGs go (default :func:`default_out_dir`).
    Raises ArtifactError for a run that cannot be read, ValueError for an unknown method or
    model; a bad image or a broken model is skipped and reported in the result.
    """
    from bt_core.explain import clear_cache, explain_spec, get_method

    get_method(method)  # an unknown method fails before anything is loaded
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    target = Path(out_dir) if out_dir is not None else default_out_dir(run_dir)
    specs, skipped_models = usable_models(run, tuple(models))
    paths = [str(p) for p in image_paths]
    batches, kept, skipped_images = decode_images(paths, {spec.input_size for spec in specs.values()},
                                                  run.image_ops)
    if not specs:  # nothing to decode for: every image is still checked once, at the run's size
        _, kept, skipped_images = decode_images(paths, {run.image_size}, run.image_ops)
    columns = probability_columns(run.class_names)
    rows, overlays = [], []
    target.mkdir(parents=True, exist_ok=True)
    for name, spec in specs.items():
        images = batches[spec.input_size]
        if not len(images):
            continue
        try:
            model = load_model(run_dir, name)
            proba = model_probabilities(model, spec, images)
            predicted = proba.argmax(axis=1)
            maps = explain_spec(model, spec, images, method, class_index=predicted)
        except Exception as exc:  # Keras and TensorFlow raise many types: one model's failure
            skipped_models[name] = f"{type(exc).__name__}: {exc}"
            continue
        finally:
            clear_cache()
        # Numbered by place in the command line: a path given twice gets two overlays.
        places = [place for place, given in enumerate(paths) if given not in skipped_images]
        for place, path, image, cam, p in zip(places, kept, images, maps, proba):
            overlay_path = write_overlay(target / overlay_name(place, path, name, method), image, cam)
            overlays.append(overlay_path)
            rows.append({"image": path, "model": name, "predicted": run.class_names[int(p.argmax())],
                         "confidence": float(p.max()), **dict(zip(columns, p.tolist())),
                         "overlay": overlay_path.name})
        if say is not None:
            say(f"{name}: {len(images)} image(s) predicted, {method} overlays in {target}")
    table = pd.DataFrame(rows, columns=["image", "model", "predicted", "confidence", *columns, "overlay"])
    csv_path = target / PREDICTIONS_CSV
    atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6f"))
    return Predictions(target, csv_path, table, overlays, skipped_images, skipped_models)
