"""``bt-zoo predict RUN_DIR IMAGE...`` and ``train_all.py --predict RUN_DIR IMAGE...``: every
finished model's class probabilities for each image as a table on stdout, and predictions.csv
with one overlay PNG per image and model in ``--out`` (default ``./<run_id>_predictions``).

Exit status: 0 every image predicted by every model, 1 an image or a model was skipped (the
others are still predicted and written), 2 an unreadable run, an unknown model or method."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from bt_core.cli.actions import EXIT_MODEL_FAILED, EXIT_OK, Stage, status_or_raise, names
from bt_core.cli.logs import import_tensorflow_quietly
from bt_core.cli.options import RUN_DIR_HELP

_log = logging.getLogger(__name__)

METHOD_HELP = ("explanation method of the overlays (default gradcam; also gradcam++, layercam, faster_scorecam, "
               "scorecam, smoothgrad)")
OUT_HELP = "folder for predictions.csv and the overlay PNGs (default: ./<run_id>_predictions)"


def add_predict_parser(commands) -> None:
    sub = commands.add_parser("predict", help="predict images with every finished model of a run, with overlays",
                              description="Print every finished model's class probabilities for each image, and "
                                          "write predictions.csv and one explanation overlay PNG per image and "
                                          "model. Exit status 1: an image or a model was skipped.")
    sub.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    sub.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    sub.add_argument("--out", metavar="DIR", help=OUT_HELP)
    sub.add_argument("--method", default="gradcam", help=METHOD_HELP)
    sub.add_argument("--models", help="the run's models to use, comma-separated (default: every finished one)")


def format_table(table: pd.DataFrame) -> str:
    """The stdout table: image, model, predicted class, confidence and each class's probability."""
    shown = table.drop(columns=["overlay"]).copy()
    shown["image"] = [Path(path).name for path in shown["image"]]
    return shown.to_string(index=False, float_format=lambda value: f"{value:.3f}")


def predict(run_dir: str, images: list[str], out: str | None, method: str, models: str | None) -> int:
    """Run :func:`bt_core.runs.predict.predict_images` and report it; the exit status."""
    os.environ["KERAS_BACKEND"] = "tensorflow"  # the maps need tf-keras-vis; keras is not yet imported
    import_tensorflow_quietly()
    from bt_core.runs.predict import predict_images

    try:
        result = predict_images(Path(run_dir), images, None if out is None else Path(out), method, names(models),
                                say=_log.info)
    except Exception as exc:  # sorted by status_or_raise; anything else is a bug and keeps its traceback
        return status_or_raise(exc, Stage("predict", Path(run_dir)))
    for path, reason in result.skipped_images.items():
        _log.warning("skipped image %s: %s", path, reason.removeprefix(f"{path}: "))
    for name, reason in result.skipped_models.items():
        _log.warning("skipped model %s: %s", name, reason)
    if len(result.table):
        print(format_table(result.table))
    _log.info("wrote %s and %d overlay PNG(s) to %s", result.csv_path.name, len(result.overlays), result.out_dir)
    return EXIT_MODEL_FAILED if result.skipped_images or result.skipped_models else EXIT_OK
