"""Score every model of a finished run on another dataset folder: an external evaluation.

An evaluation is a run-like folder ``RUN_DIR/evaluations/<NAME>/`` with the layout of a run
(manifest.json, split.csv, test_images.npz, optional test_boxes.csv and, per model,
model.keras, history.csv, predictions.csv, metrics.json), so every reader of
:mod:`bt_core.artifacts` and every dashboard page opens it as if it were a run. Its
manifest adds an ``evaluation`` block (``of_run``, ``name``, ``mode``, ``data``, ...).

The folder's classes are either the run's classes (``mode="classes"``) or exactly
``tumor`` / ``notumor`` (``mode="tumor"``: tumor detection), or one of these alone (a new
hospital's tumor scans: ``tumor/`` only; see :func:`one_class_mode`); then metrics.json
scores what one class allows and marks the rest not measurable (:mod:`bt_core.metrics.one_class`).
In tumor mode each model's class probabilities are collapsed to P(notumor) and
P(tumor) = 1 - P(notumor), and the evaluation's model.keras is the run's model followed by a
fixed layer that does the same collapse, so the dashboard's live predictions and explanations
agree with predictions.csv. In classes mode model.keras is a hard link to the run's file (a
copy where links are not possible). A one-class tumor-mode evaluation keeps both classes,
``["notumor", "tumor"]``, so predictions.csv has both probability columns; only its labels
hold one class.

The evaluation is assembled in a hidden folder ``.<NAME>.evaluating`` beside it and renamed
into place when complete, so a killed evaluation never shows as one.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
import time
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bt_core.artifacts import (
    EVALUATIONS_DIR,
    HISTORY,
    MODEL_FILE,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_RUNNING,
    DatasetRecord,
    Evaluation,
    Manifest,
    ModelEntry,
    RunWriter,
    evaluation_dir,
    evaluation_staging_dir,
    link_or_copy,
    load_manifest,
    load_model,
    model_dir,
    predictions_frame,
)
from bt_core.data.classes import NO_TUMOR, negative_class, require_negative_class_index
from bt_core.runs.model_card import refresh_model_cards

MODE_CLASSES = "classes"
MODE_TUMOR = "tumor"
TUMOR_CLASSES = [NO_TUMOR, "tumor"]
TUMOR_HEAD_LAYER = "tumor_vs_notumor"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_evaluation_name(name: str) -> str:
    """``name`` when it is a safe folder name (letters, digits, ``-``, ``_``, ``.``; not
    starting with ``.``, ``-`` or ``_``); ValueError otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 100:
        raise ValueError(
            f"evaluation name {name!r} is not a safe folder name: use letters, digits, '-', '_' "
            "and '.', starting with a letter or digit (at most 100 characters)"
        )
    return name


def evaluation_mode(run_classes: list[str], data_classes: list[str], data: Any = "the folder") -> str:
    """``"classes"`` when the folder has the run's classes, ``"tumor"`` when it has exactly
    tumor / notumor and the run has a no-tumor class (any spelling that
    :mod:`bt_core.data.classes` knows); a folder of one class: :func:`one_class_mode`.
    ValueError naming both lists otherwise."""
    run_classes, data_classes = list(run_classes), sorted(data_classes)
    if len(data_classes) == 1:
        return one_class_mode(run_classes, data_classes[0], data)
    if data_classes == sorted(run_classes):
        return MODE_CLASSES
    if data_classes == TUMOR_CLASSES:
        require_negative_class_index(
            run_classes, why=f"score {data}, which holds {TUMOR_CLASSES}, as tumor detection"
        )
        return MODE_TUMOR
    raise ValueError(
        f"the class folders of {data} are {data_classes}; they must be the run's classes "
        f"{run_classes}, or exactly {TUMOR_CLASSES} (scored as tumor detection), or one of "
        "those classes alone"
    )


def one_class_mode(run_classes: list[str], class_name: str, data: Any = "the folder") -> str:
    """The mode of a folder that holds one class: ``tumor`` or ``notumor`` alone is tumor
    detection (the run needs a no-tumor class), even where the run has a class of that name
    (its score is the same share); another of the run's classes alone is classes mode;
    any other name is refused (ValueError), since nothing says what its images show."""
    if class_name in TUMOR_CLASSES:
        require_negative_class_index(
            run_classes, why=f"score {data}, which holds {class_name} images only, as tumor detection"
        )
        return MODE_TUMOR
    if class_name in run_classes:
        return MODE_CLASSES
    raise ValueError(
        f"the only class folder of {data} is {class_name!r}, which is neither one of the run's classes "
        f"{list(run_classes)} nor tumor / notumor: name the folder after the class its images show "
        f"(tumor or notumor for tumor detection)"
    )


def collapse_to_tumor(probabilities: np.ndarray, negative_index: int) -> np.ndarray:
    """``(N, C)`` class probabilities as ``(N, 2)`` ``[P(notumor), 1 - P(notumor)]``."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    no_tumor = probabilities[:, negative_index]
    return np.stack([no_tumor, 1.0 - no_tumor], axis=1)


def tumor_model(model: Any, negative_index: int) -> Any:
    """The model followed by a fixed linear layer that sums its softmax output into
    ``[P(notumor), P(other classes)]``: a plain Keras model (no custom objects)."""
    import keras

    classes = int(model.outputs[0].shape[-1])
    kernel = np.zeros((classes, 2), dtype=np.float32)
    kernel[:, 1] = 1.0
    kernel[negative_index] = [1.0, 0.0]
    head = keras.layers.Dense(2, use_bias=False, trainable=False, dtype="float32", name=TUMOR_HEAD_LAYER)
    output = head(model.outputs[0])
    head.set_weights([kernel])
    return keras.Model(model.inputs[0], output, name=f"{model.name}_tumor")



@dataclass(frozen=True)
class _Plan:
    """What one evaluation scores, checked before any image is decoded."""

    run_dir: Path
    parent: Manifest
    data_root: Path
    name: str
    mode: str
    done: tuple[str, ...]  # the run's finished models, the ones scored
    negative: str | None  # tumor mode: the run's no-tumor class, as it spells it

    @property
    def run_id(self) -> str:
        return self.parent.run_id or self.run_dir.name

    @property
    def run_classes(self) -> list[str]:
        return list(self.parent.class_names)

    @property
    def class_names(self) -> list[str]:
        return self.run_classes if self.mode == MODE_CLASSES else list(TUMOR_CLASSES)


def _plan(run_dir: Path, data: str | Path, name: str | None, replace: bool) -> _Plan:
    """The checks that need no decoding: a run (not an evaluation) with a finished model and
    an image size, a safe name not yet taken (unless ``replace``), classes that fit."""
    from bt_core.data.layouts import discover

    parent = load_manifest(run_dir)
    if parent.is_evaluation:
        raise ValueError(f"{run_dir} is an evaluation, not a run: evaluate the run it belongs to")
    run_id = parent.run_id or run_dir.name
    data_root = Path(data).expanduser().resolve()
    name = check_evaluation_name(name if name is not None else data_root.name)
    target = evaluation_dir(run_dir, name)
    if target.exists() and not replace:
        raise ValueError(f"{target} already holds an evaluation named {name!r}; add --replace to redo it")
    # One class is enough: a new hospital's tumor scans alone are a common external set.
    data_classes = list(discover(data_root, min_classes=1).class_names)
    mode = evaluation_mode(list(parent.class_names), data_classes, data_root)
    done = tuple(m for m, entry in parent.models.items() if entry.is_done)
    if not done:
        raise ValueError(f"run {run_id} has no finished model to evaluate")
    if parent.image_size is None:
        raise ValueError(f"run {run_id} records no image size")
    negative = negative_class(parent.class_names) if mode == MODE_TUMOR else None
    return _Plan(run_dir, parent, data_root, name, mode, done, negative)


def _evaluation_manifest(plan: _Plan, dataset: Any, started: str, load_seconds: float,
                         max_per_class: int | None = None) -> Manifest:
    """The evaluation's manifest before scoring: the run's settings and model entries
    (finished ones running, the others failed as not trained), the folder's dataset."""
    from bt_core.training.environment import backend_name, device_description, library_versions

    parent, run_id = plan.parent, plan.run_id
    return Manifest(
        run_id=f"{run_id}/{EVALUATIONS_DIR}/{plan.name}",
        created=started,
        evaluation=Evaluation(
            of_run=run_id, name=plan.name, mode=plan.mode, data=str(plan.data_root),
            not_trained=tuple(m for m in parent.models if m not in plan.done), negative_class=plan.negative,
            max_per_class=max_per_class,
        ),
        config=parent.config,
        class_names=tuple(plan.class_names),
        image_size=parent.image_size,
        image_ops=parent.image_ops,
        dataset=DatasetRecord.from_loaded(dataset, splits=("test",)),
        backend=backend_name(),
        device=device_description(),
        versions=library_versions(),
        timing={"started": started, "data_seconds": round(load_seconds, 2), "seconds": 0.0},
        models={
            m: (
                dataclasses.replace(entry, status=STATUS_RUNNING)
                if entry.is_done
                else ModelEntry(m, status=STATUS_FAILED, error=f"not trained in run {run_id}")
            )
            for m, entry in parent.models.items()
        },
    )


def _data_seed(config: dict[str, Any]) -> int:
    """The seed of the run's data selection (RunConfig.split_seed), for an evaluation's sample."""
    data_seed = config.get("data_seed")
    return int(config.get("seed", 42) if data_seed is None else data_seed)


def evaluate_run(
    run_dir: str | Path,
    data: str | Path,
    name: str | None = None,
    say: Callable[[str], Any] = logging.getLogger(__name__).info,
    replace: bool = False,
    max_per_class: int | None = None,
) -> Path:
    """Score every finished model of ``run_dir`` on the dataset folder ``data``; returns the
    evaluation folder ``run_dir/evaluations/<name>`` (``name``: default the folder's name).

    Raises ValueError (bad name, classes, data or an existing evaluation without
    ``replace``), FileNotFoundError (no data folder) or ArtifactError (not a readable run).
    A model that cannot be scored is recorded as failed; the others are still written.
    ``max_per_class``: score at most that many images of each class (and source folder),
    chosen with the run's seed, recorded in the evaluation's manifest; None: every image.
    """
    from bt_core.data.dataset import load_test_folder

    started_wall, started = _now(), time.perf_counter()
    run_dir = Path(run_dir)
    plan = _plan(run_dir, data, name, replace)
    dataset = load_test_folder(
        plan.data_root, plan.parent.image_size, ops=plan.parent.image_ops, min_classes=1,
        max_per_class=max_per_class, seed=_data_seed(plan.parent.config),
    )
    load_seconds = time.perf_counter() - started
    test = dataset.arrays["test"]
    say(
        f"evaluation {plan.name!r} of {plan.run_id} on {plan.data_root} ({dataset.index.layout}, {plan.mode} mode): "
        f"{len(test.ids)} images, {len(dataset.skipped)} skipped; loaded in {load_seconds:.1f}s"
    )
    for skipped in dataset.skipped[:10]:
        say(f"  skipped {skipped.path}: {skipped.reason}")

    staging = evaluation_staging_dir(run_dir, plan.name)
    if staging.exists():  # left by a killed evaluation
        shutil.rmtree(staging)
    writer = RunWriter(staging, _evaluation_manifest(plan, dataset, started_wall, load_seconds, max_per_class))
    writer.write_split(dataset.split)
    writer.write_test_images(test.images, test.ids)
    if len(dataset.boxes):  # already in the stored images' frame (load_dataset moved them)
        writer.write_test_boxes(dataset.boxes, test.ids)
    labels = [dataset.class_names[i] for i in test.labels]
    _score_models(writer, plan, test, labels, say)
    writer.update_timing(finished=_now(), seconds=round(time.perf_counter() - started, 2))
    target = evaluation_dir(run_dir, plan.name)
    _move_into_place(staging, target, replace)
    refresh_model_cards(run_dir, say=say)  # the cards list the evaluations
    say(f"evaluation written: {target}")
    return target


def _score_models(writer: RunWriter, plan: _Plan, test: Any, labels: list[str], say: Callable[[str], Any]) -> None:
    """Score each finished model; one failing is recorded as failed and the others go on."""
    for model_name in plan.done:
        try:
            metrics = _score_model(writer, plan, model_name, test, labels)
        except Exception as exc:  # one model failing must not lose the others
            writer.set_model_status(model_name, STATUS_FAILED, error=f"{type(exc).__name__}: {exc}")
            say(f"{model_name}: FAILED ({type(exc).__name__}: {exc})")
            continue
        say(f"{model_name}: {score_line(metrics)}")
        gc.collect()


def score_line(metrics: dict[str, Any]) -> str:
    """The scores of one model's metrics.json worth one progress line."""
    record = metrics.get("one_class")
    if record is None:
        return f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}"
    blank = metrics["not_measurable"]["metrics"]
    unmeasured = [name for name in ("sensitivity", "specificity") if f"tumor_{name}" in blank]
    return (
        f"{record['measure']} {record['value']:.4f} (95% Wilson interval {record['ci_low']:.4f}-"
        f"{record['ci_high']:.4f}: {record['successes']} of {record['n']} {record['class']} images called "
        f"{record['class']}); not measurable ({metrics['not_measurable']['reason']}): "
        f"{', '.join([*unmeasured, 'AUC', 'macro F1'])} and every other score that compares classes"
    )


def _score_model(writer: RunWriter, plan: _Plan, name: str, test: Any, labels: list[str]) -> dict[str, Any]:
    """Score one model into the evaluation; returns its metrics."""
    from bt_core.metrics import metrics_from_predictions, one_class
    from bt_core.training.train import predict_proba

    class_names, run_classes = writer.class_names, plan.run_classes
    source = model_dir(plan.run_dir, name)
    model = load_model(plan.run_dir, name)
    started = time.perf_counter()
    # The scoring path of training (bt_core.training.train.predict_proba): preprocess_batch with the
    # model's mode, in batches, rows normalised.
    proba = predict_proba(model, plan.parent.models[name].spec, test)
    seconds = time.perf_counter() - started
    target = writer.model_dir(name)
    if plan.negative is None:
        link_or_copy(source / MODEL_FILE, target / MODEL_FILE)
    else:
        negative_index = run_classes.index(plan.negative)
        proba = collapse_to_tumor(proba, negative_index)
        writer.save_model(name, tumor_model(model, negative_index))
    if (source / HISTORY).is_file():  # the Training page reads it from here
        link_or_copy(source / HISTORY, target / HISTORY)
    predictions = predictions_frame(list(test.ids), labels, proba, class_names)
    writer.write_predictions(name, predictions)
    metrics = metrics_from_predictions(predictions, class_names, where=one_class.FOLDER)
    writer.write_metrics(name, metrics)
    fields: dict[str, Any] = {"inference_seconds": round(seconds, 3), "evaluated": _now()}
    if plan.negative is not None:
        fields["collapsed_from"] = list(run_classes)
    writer.set_model_status(name, STATUS_DONE, **fields)
    del model
    return metrics


def _move_into_place(staging: Path, target: Path, replace: bool) -> None:
    if not target.exists():
        os.replace(staging, target)
        return
    if not replace:  # appeared while this one was being scored
        shutil.rmtree(staging)
        raise ValueError(f"{target} already holds an evaluation; add --replace to redo it")
    old = target.parent / f".{target.name}.replaced"
    if old.exists():
        shutil.rmtree(old)
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old)


def scoring_failures(manifest: Manifest | dict[str, Any]) -> dict[str, str]:
    """The models of an evaluation that the run had trained but that could not be scored."""
    if not isinstance(manifest, Manifest):
        manifest = Manifest.from_json(manifest)
    not_trained = set(manifest.evaluation.not_trained if manifest.evaluation else ())
    return {
        name: str(entry.error or "")
        for name, entry in manifest.models.items()
        if entry.status == STATUS_FAILED and name not in not_trained
    }

