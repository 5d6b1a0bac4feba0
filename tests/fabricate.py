"""Fabricated runs for tests: real artifact files written through RunWriter, no training.

A fabricated run has good models (history, predictions, metrics computed with sklearn from
those predictions, so every number is consistent), one model whose training failed, and
one model whose predictions.csv is corrupt. ``fabricate_zoo_run`` writes a larger run of
that kind for the comparison views: five good models with realistic, differently
calibrated probabilities, one of them fine-tuned in two phases, and class-patterned test
images. ``write_shortcut_measures`` adds shortcut measures to a fabricated run (a summary
whose parts and flags come from bt_core.shortcuts.flags, per-image tables, duplicate pairs
and one model's precomputed maps), written through bt_core.artifacts.write_shortcuts.
``fabricate_unreadable_run`` writes a run of a future artifact format that this code must
refuse to open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from bt_core.artifacts import (
    MANIFEST,
    PREDICTIONS,
    STATUS_DONE,
    STATUS_FAILED,
    RunWriter,
    model_dir,
    predictions_frame,
    write_json,
    write_maps,
    write_shortcuts,
)
from bt_core.shortcuts import counterfactual, flags, severity

CLASS_NAMES = ["glioma", "meningioma", "notumor", "pituitary"]
# Images per class in each split.
SPLIT_SIZES = {"train": 30, "val": 8, "test": 12}
# Model -> how far its true-class logit is pushed up: larger means more accurate.
GOOD_MODELS = {"small_cnn": 0.8, "mobilenet_v2": 1.8, "efficientnet_b0": 3.0}
FAILED_MODEL = "resnet50"
FAILED_ERROR = "ResourceExhaustedError: OOM when allocating tensor with shape [32,2048,7,7]"
CORRUPT_MODEL = "vit_tiny"
# Appended to the first rows of a real predictions.csv: more fields than the header, so
# pandas raises ParserError, as on a file garbled by an interrupted copy.
GARBLED_ROW = "test_9999,glioma,glioma,0.1,0.2,0.3,0.4,0.5,0.6\n"
# The zoo run: model -> (skill, temperature). A temperature below 1 sharpens the
# probabilities (an over-confident model), above 1 flattens them.
ZOO_MODELS = {
    "simple_cnn": (1.2, 0.7),
    "custom_cnn": (2.0, 1.0),
    "mobilenet_v2": (2.8, 0.8),
    "efficientnet_b0": (3.6, 1.0),
    "resnet18": (2.4, 1.4),
}
FINE_TUNED_MODEL = "efficientnet_b0"
FINE_TUNE_PHASES = {"head": 3, "fine_tune": 4}
ZOO_SPLIT_SIZES = {"train": 30, "val": 10, "test": 40}
ZOO_IMAGE_SIDE = 32
# The zoo run's shortcut measures (fabricate_zoo_run(shortcuts=True)).
ZOO_SHORTCUT_FLAGGED, ZOO_SHORTCUT_CLEAN, ZOO_SHORTCUT_SKIPPED = "simple_cnn", "custom_cnn", "efficientnet_b0"
# Train accuracy above test accuracy by this much (metrics.json's train_minus_test_accuracy).
ZOO_TRAIN_GAP = 0.05
SKIPPED = [
    {"path": "Training/glioma/broken_001.jpg", "reason": "cannot decode image"},
    {"path": "Testing/notumor/tiny.png", "reason": "image smaller than 32 px"},
]
# Shortcut measures (write_shortcut_measures): the map baselines of every group, the
# methods of attention_by_method (the first is the summary's method, the one scored) and,
# per method, how far its outside-head and border shares are scaled from the scored one's.
SHORTCUT_GAUSSIAN = {"outside_head": 0.2, "border": 0.12, "in_box": None, "pointing_hit": None,
                     "rank_accuracy": None}
SHORTCUT_RANDOM = {"outside_head": 0.55, "border": 0.34, "in_box": None, "pointing_hit": None,
                   "rank_accuracy": None}
SHORTCUT_METHODS = {"gradcam": 1.0, "faster_scorecam": 0.5}
# Side of the flagged model's precomputed maps.
SHORTCUT_MAP_SIDE = 4


@dataclass
class FabricatedRun:
    run_dir: Path
    manifest: dict[str, Any]
    counts: dict[str, dict[str, int]]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)
    failed_model: str = FAILED_MODEL
    failed_error: str = FAILED_ERROR
    corrupt_model: str = CORRUPT_MODEL
    histories: dict[str, pd.DataFrame] = field(default_factory=dict)
    test_ids: list[str] = field(default_factory=list)
    test_images: np.ndarray | None = None

    @property
    def model_names(self) -> list[str]:
        return list(self.manifest["models"])

    @property
    def good_models(self) -> list[str]:
        return list(self.metrics)


def compute_metrics(predictions: pd.DataFrame, class_names: list[str]) -> dict[str, Any]:
    """The metrics.json of a model, computed with sklearn from its predictions table."""
    labels, preds = predictions["label"], predictions["pred"]
    probs = predictions[[f"p_{name}" for name in class_names]].to_numpy()
    macro = {"labels": class_names, "average": "macro", "zero_division": 0}
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_precision": float(precision_score(labels, preds, **macro)),
        "macro_recall": float(recall_score(labels, preds, **macro)),
        "macro_f1": float(f1_score(labels, preds, **macro)),
        "macro_auc": float(
            roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=class_names)
        ),
        "weighted_f1": float(
            f1_score(labels, preds, labels=class_names, average="weighted", zero_division=0)
        ),
        "log_loss": float(log_loss(labels, probs, labels=class_names)),
        "confusion_matrix": confusion_matrix(labels, preds, labels=class_names).tolist(),
        "n_test": int(len(predictions)),
    }


def _split_table(split_sizes: Mapping[str, int] = SPLIT_SIZES) -> pd.DataFrame:
    rows = [
        {"path": f"{split}/{name}/img_{index:03d}.jpg", "split": split, "label": name}
        for split, size in split_sizes.items()
        for name in CLASS_NAMES
        for index in range(size)
    ]
    return pd.DataFrame(rows)


def _counts(split: pd.DataFrame) -> dict[str, dict[str, int]]:
    return {
        name: {label: int((group["label"] == label).sum()) for label in CLASS_NAMES}
        for name, group in split.groupby("split")
    }


def _probabilities(rng: np.random.Generator, label_index: np.ndarray, skill: float) -> np.ndarray:
    logits = rng.normal(size=(len(label_index), len(CLASS_NAMES)))
    logits[np.arange(len(label_index)), label_index] += skill
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _realistic_probabilities(
    rng: np.random.Generator, label_index: np.ndarray, skill: float, temperature: float
) -> np.ndarray:
    """Softmax of noisy logits where glioma and meningioma are confused more than the rest
    and "notumor" is easiest, as on real MRI data; ``temperature`` sets the confidence."""
    n, n_classes = len(label_index), len(CLASS_NAMES)
    logits = rng.normal(scale=1.0, size=(n, n_classes))
    rows = np.arange(n)
    logits[rows, label_index] += skill * rng.uniform(0.4, 1.6, size=n)
    glioma, meningioma, notumor = (CLASS_NAMES.index(name) for name in ("glioma", "meningioma", "notumor"))
    partner = np.where(label_index == glioma, meningioma, np.where(label_index == meningioma, glioma, -1))
    has_partner = partner >= 0
    logits[rows[has_partner], partner[has_partner]] += 0.5 * skill
    logits[label_index == notumor, notumor] += 0.5
    logits /= temperature
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _pattern_images(rng: np.random.Generator, label_index: np.ndarray, side: int) -> np.ndarray:
    """Dark, noisy squares with a bright disc whose place and size depend on the class."""
    grid_y, grid_x = np.mgrid[0:side, 0:side] / side
    images = rng.normal(30, 12, size=(len(label_index), side, side, 3))
    for number, label in enumerate(label_index):
        centre_x, centre_y = 0.3 + 0.4 * (label % 2), 0.3 + 0.4 * (label // 2)
        radius = 0.12 + 0.04 * label
        disc = (grid_x - centre_x) ** 2 + (grid_y - centre_y) ** 2 < radius**2
        images[number][disc] += 170
    return np.clip(images, 0, 255).astype(np.uint8)


def _two_phase_history(phases: Mapping[str, int]) -> pd.DataFrame:
    """Head training at lr 1e-3, then fine-tuning at a decaying lr from 1e-5."""
    frames, epoch = [], 1
    for number, (phase, epochs) in enumerate(phases.items()):
        step = np.arange(epochs)
        start = 1e-3 if number == 0 else 1e-5
        progress = epoch + step
        frames.append(
            pd.DataFrame(
                {
                    "epoch": progress,
                    "phase": phase,
                    "loss": 1.2 / (1 + 0.4 * progress),
                    "accuracy": 0.55 + 0.05 * progress,
                    "val_loss": 1.3 / (1 + 0.35 * progress),
                    "val_accuracy": 0.5 + 0.045 * progress,
                    "lr": start * 0.5**step,
                }
            )
        )
        epoch += epochs
    return pd.concat(frames, ignore_index=True)


def _history(epochs: int) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    return pd.DataFrame(
        {
            "epoch": epoch,
            "phase": "head",
            "loss": 1.4 / epoch,
            "accuracy": 0.4 + 0.1 * epoch,
            "val_loss": 1.5 / epoch,
            "val_accuracy": 0.35 + 0.1 * epoch,
            "lr": 1e-3,
        }
    )


def fabricate_run(
    artifacts_dir: Path,
    run_id: str = "20240501-120000_demo",
    *,
    created: str = "2024-05-01T12:00:00",
    dataset_name: str = "figshare-demo",
    good_models: dict[str, float] | None = None,
    seed: int = 0,
    split_sizes: Mapping[str, int] = SPLIT_SIZES,
    temperatures: Mapping[str, float] | None = None,
    fine_tuned: str | None = None,
    image_side: int = 8,
    train_gap: float | None = None,
) -> FabricatedRun:
    """Write a complete run folder under ``artifacts_dir`` and return what went into it.

    ``temperatures`` switches the good models to realistic probabilities (see
    :func:`_realistic_probabilities`); ``fine_tuned`` names a model trained in two phases;
    ``train_gap`` adds train accuracy (test accuracy + gap) to every metrics.json.
    """
    good_models = dict(GOOD_MODELS if good_models is None else good_models)
    rng = np.random.default_rng(seed)
    split = _split_table(split_sizes)
    counts = _counts(split)
    writer = RunWriter(
        Path(artifacts_dir) / run_id,
        {
            "run_id": run_id,
            "created": created,
            "config": {
                "models": [*good_models, FAILED_MODEL, CORRUPT_MODEL],
                "epochs": 3,
                "img_size": 64,
                "batch_size": 16,
                "seed": seed,
                "weights": None,
                "data": "data/figshare",
            },
            "class_names": CLASS_NAMES,
            "dataset": {
                "name": dataset_name,
                "root": "data/figshare",
                "layout": "class_folders",
                "fingerprint": "0123abcd",
                "counts": counts,
                "skipped": SKIPPED,
            },
            "versions": {"python": "3.11.9", "keras": "3.15.1", "tensorflow": "2.21.0"},
            "backend": "tensorflow",
            "device": "CPU",
            "timing": {"started": created, "finished": "2024-05-01T12:03:05", "seconds": 185.0},
        },
    )
    writer.write_split(split)
    fabricated = FabricatedRun(run_dir=writer.run_dir, manifest=writer.manifest, counts=counts)

    test = split[split["split"] == "test"].reset_index(drop=True)
    label_index = test["label"].map(CLASS_NAMES.index).to_numpy()
    ids = [f"test_{index:04d}" for index in range(len(test))]
    if temperatures is None:
        images = rng.integers(0, 256, (len(test), image_side, image_side, 3), dtype=np.uint8)
    else:
        images = _pattern_images(rng, label_index, image_side)
    writer.write_test_images(images, ids)
    fabricated.test_ids, fabricated.test_images = ids, images

    for number, (name, skill) in enumerate({**good_models, CORRUPT_MODEL: 2.0}.items()):
        if temperatures is None:
            probabilities = _probabilities(rng, label_index, skill)
        else:
            probabilities = _realistic_probabilities(rng, label_index, skill, temperatures.get(name, 1.0))
        predictions = predictions_frame(ids, list(test["label"]), probabilities, CLASS_NAMES)
        metrics = compute_metrics(predictions, CLASS_NAMES)
        if train_gap is not None:
            metrics["train_accuracy"] = min(1.0, metrics["accuracy"] + train_gap)
            metrics["train_minus_test_accuracy"] = metrics["train_accuracy"] - metrics["accuracy"]
        history = _two_phase_history(FINE_TUNE_PHASES) if name == fine_tuned else _history(3)
        phases = list(dict.fromkeys(history["phase"]))
        writer.write_history(name, history)
        writer.write_predictions(name, predictions)
        writer.write_metrics(name, metrics)
        writer.set_model_status(
            name,
            STATUS_DONE,
            params_trainable=10_000 * (number + 1) ** 2,
            params_total=12_000 * (number + 1) ** 2,
            train_seconds=12.5 * (number + 1),
            epochs_run=len(history),
            best_epoch=int(history.loc[history["val_loss"].idxmin(), "epoch"]),
            phases=phases,
            input_size=64,
            preprocessing="rescale",
            family="custom",
        )
        if name != CORRUPT_MODEL:
            fabricated.metrics[name] = metrics
            fabricated.predictions[name] = predictions
            fabricated.histories[name] = history
    corrupt_path = model_dir(writer.run_dir, CORRUPT_MODEL) / PREDICTIONS
    first_rows = corrupt_path.read_text(encoding="utf-8").splitlines(keepends=True)[:6]
    corrupt_path.write_text("".join(first_rows) + GARBLED_ROW, encoding="utf-8")
    writer.set_model_status(
        FAILED_MODEL, STATUS_FAILED, error=FAILED_ERROR, family="resnet", input_size=[224, 224, 3]
    )
    fabricated.manifest = writer.manifest
    return fabricated


def fabricate_zoo_run(
    artifacts_dir: Path, run_id: str = "20240701-120000_zoo", *, seed: int = 7, shortcuts: bool = False
) -> FabricatedRun:
    """A run for the comparison views: the five ZOO_MODELS (FINE_TUNED_MODEL in two
    phases), a failed and a corrupt model, 160 test images with class patterns. With
    ``shortcuts``, also shortcut measures (:func:`write_shortcut_measures`) of
    ZOO_SHORTCUT_FLAGGED and ZOO_SHORTCUT_CLEAN, ZOO_SHORTCUT_SKIPPED listed as skipped."""
    fabricated = fabricate_run(
        artifacts_dir,
        run_id,
        created="2024-07-01T12:00:00",
        dataset_name="figshare-zoo",
        good_models={name: skill for name, (skill, _temperature) in ZOO_MODELS.items()},
        seed=seed,
        split_sizes=ZOO_SPLIT_SIZES,
        temperatures={name: temperature for name, (_skill, temperature) in ZOO_MODELS.items()},
        fine_tuned=FINE_TUNED_MODEL,
        image_side=ZOO_IMAGE_SIDE,
        train_gap=ZOO_TRAIN_GAP,
    )
    if shortcuts:
        write_shortcut_measures(fabricated, ZOO_SHORTCUT_FLAGGED, ZOO_SHORTCUT_CLEAN, ZOO_SHORTCUT_SKIPPED)
    return fabricated


def _attention(n_images: int, outside_head: float, border: float) -> dict[str, Any]:
    return {"n_images": n_images, "n_with_box": 0, "outside_head": outside_head, "border": border,
            "in_box": np.nan, "pointing_hit": np.nan, "rank_accuracy": np.nan}


def counterfactual_rows(source_flip: float, per_class: int = 20) -> list[dict[str, Any]]:
    """A stored counterfactual table: every tumor class flips to notumor on ``source_flip`` of
    its source swaps (and notumor to glioma on as many), no control moves."""
    rows = []
    for recipient in CLASS_NAMES:
        donor = "glioma" if recipient == "notumor" else "notumor"
        flipped = int(round(source_flip * per_class))
        low, high = counterfactual.wilson_interval(flipped, per_class)
        base = {column: np.nan for column in counterfactual.COLUMNS}
        rows.append({**base, "probe": "source_swap", "recipient_class": recipient, "donor_class": donor,
                     "n": per_class, "excluded": 0, "n_not_donor": per_class, "flipped_to_donor": flipped,
                     "flip_to_donor": flipped / per_class, "measure": "flip_to_donor", "value": flipped / per_class,
                     "ci_low": low, "ci_high": high, "chance": 0.25, "control": 0.0,
                     "excess": flipped / per_class, "note": ""})
        low, high = counterfactual.wilson_interval(0, per_class)
        rows.append({**base, "probe": "source_swap_control", "recipient_class": recipient, "donor_class": recipient,
                     "n": per_class, "excluded": 0, "n_changed": 0, "changed": 0.0, "measure": "changed",
                     "value": 0.0, "ci_low": low, "ci_high": high, "chance": 0.75, "note": ""})
    return rows


def shortcut_record(
    outside_head: float, border: float, background_accuracy: float, test_ids: list[str], labels: list[str],
    source_flip: float = 0.0,
) -> dict[str, Any]:
    """One model's record of a shortcut summary: its parts, score and flags computed by
    bt_core.shortcuts.flags from these map shares and probe accuracies, attention for "all"
    and every class, for each of SHORTCUT_METHODS, probes, faithfulness and two clusters."""
    n = len(test_ids)
    counts = pd.Series(labels).value_counts()

    def attention(scale: float) -> dict[str, dict[str, Any]]:
        groups = {"all": _attention(n, outside_head * scale, border * scale)}
        for number, name in enumerate(CLASS_NAMES):
            shift = 0.04 * (number - 1.5)
            groups[name] = _attention(int(counts.get(name, 0)), min(max(outside_head * scale + shift, 0.0), 1.0),
                                      min(max(border * scale - shift, 0.0), 1.0))
        return groups

    by_method = {method: attention(scale) for method, scale in SHORTCUT_METHODS.items()}
    attention_all = by_method[next(iter(SHORTCUT_METHODS))]["all"]
    probes = pd.DataFrame(
        {"n": [n, n, n], "accuracy": [0.9, 0.7, background_accuracy], "mean_confidence": [0.9, 0.8, 0.5],
         "mean_true_prob": [0.85, 0.6, 0.4], "tumor_predicted": [0.75, 0.6, 0.3], "chance": [0.25] * 3},
        index=pd.Index(["original", "head_only", "background_only"], name="condition"),
    )
    parts = flags.shortcut_parts(attention_all, probes, {flags.GAUSSIAN: SHORTCUT_GAUSSIAN}, len(CLASS_NAMES),
                                 border_area=0.36)
    table = counterfactual_rows(source_flip)
    mean_map = np.outer(np.hanning(16), np.hanning(16)).round(4).tolist()
    return {
        "score": flags.shortcut_score(parts),
        "flags": [{"name": name, "sentence": sentence, "overall": True, "classes": []}
                  for name, sentence in flags.shortcut_flags(parts)],
        "parts": {"all": parts},
        "attention": by_method[next(iter(SHORTCUT_METHODS))],
        "attention_by_method": by_method,
        "probes": {"all": {condition: row.to_dict() for condition, row in probes.iterrows()}},
        "faithfulness": {"images": 12, "steps": 4, "deletion_auc": 0.4, "insertion_auc": 0.7,
                         "deletion_curve": [0.9, 0.6, 0.4, 0.2, 0.1], "insertion_curve": [0.2, 0.5, 0.7, 0.8, 0.9]},
        "clusters": {"glioma": {"k": 2, "n_neighbors": 4, "notes": [], "clusters": [
            {"label": 0, "size": 9, "share": 0.75, "tightness": 0.3, "off_head": 0.9, "examples": test_ids[:3],
             "mean_map": mean_map, "clever_hans_candidate": True},
            {"label": 1, "size": 3, "share": 0.25, "tightness": 0.05, "off_head": 0.1, "examples": test_ids[3:5],
             "mean_map": mean_map, "clever_hans_candidate": False},
        ]}},
        "counterfactual": table,
        "severity": severity.source_following_share(pd.DataFrame(table), counts.to_dict()),
        "seconds": 1.0,
    }


def shortcut_images_table(predictions: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A model's per-image shortcut measures (shortcuts/models/<model>.csv)."""
    rng = np.random.default_rng(seed)
    n = len(predictions)
    return pd.DataFrame({
        "id": predictions["id"], "label": predictions["label"], "pred": predictions["pred"],
        "background_pred": rng.choice(CLASS_NAMES, n), "has_box": False,
        "outside_head": rng.uniform(0, 1, n), "border": rng.uniform(0, 1, n), "in_box": np.nan,
        "pointing_hit": np.nan, "rank_accuracy": np.nan,
        "deletion_auc": rng.uniform(0, 1, n), "insertion_auc": rng.uniform(0, 1, n), "cluster": -1,
    })


def write_shortcut_measures(
    fabricated: FabricatedRun, flagged: str, clean: str, skipped: str | None = None
) -> dict[str, Any]:
    """Shortcut measures of two of the run's models, written through write_shortcuts:
    ``flagged`` looks outside the head and at the border and stays accurate without the head
    (three flags fire), ``clean`` raises none; ``skipped`` is listed as not measured. The
    flagged model also gets precomputed Grad-CAM maps, so its worst images have overlays.
    Returns the summary (without the ``created`` that write_shortcuts adds)."""
    ids = fabricated.test_ids
    labels = list(fabricated.predictions[flagged]["label"])
    records = {
        # outside head, border, background accuracy fire; 80% of its source swaps flip
        flagged: shortcut_record(0.6, 0.45, 0.6, ids, labels, source_flip=0.8),
        clean: shortcut_record(0.25, 0.1, 0.3, ids, labels),
    }
    pairs = pd.DataFrame({
        "id_a": ["train/glioma/img_000.jpg", ids[0]], "id_b": [ids[1], ids[2]],
        "split_a": ["train", "test"], "split_b": ["test", "test"], "label_a": ["glioma", "glioma"],
        "label_b": ["glioma", "notumor"], "distance": [2, 4], "similarity": [0.99, 0.95],
        "kind": ["near", "near"], "group": [0, 1],
    })
    counts = pd.Series(labels).value_counts()
    baselines = {}
    for group in ["all", *CLASS_NAMES]:
        n = len(ids) if group == "all" else int(counts.get(group, 0))
        baselines[f"{flags.GAUSSIAN}/{group}"] = {"n_images": n, "n_with_box": 0, **SHORTCUT_GAUSSIAN}
        baselines[f"random/{group}"] = {"n_images": n, "n_with_box": 0, **SHORTCUT_RANDOM}
    summary = {
        "method": next(iter(SHORTCUT_METHODS)),
        "models": records,
        "skipped": {skipped: "no gradcam maps"} if skipped else {},
        "audit": {
            "source_probe": {
                "border": {"balanced_accuracy": 0.6, "std": 0.05, "chance": 0.25, "folds": 5,
                           "n_images": len(ids), "region_share": 0.36},
                "background": {"balanced_accuracy": 0.3, "std": 0.05, "chance": 0.25, "folds": 5,
                               "n_images": len(ids), "region_share": 0.5},
            },
            "duplicates": {
                "pairs": 2, "exact_pairs": 0, "near_pairs": 2, "label_conflicts": 1, "unreadable": 0,
                "max_distance": 4, "min_similarity": 0.92,
                "by_split_pair": [{"split_pair": "train-test", "kind": "near", "pairs": 1},
                                  {"split_pair": "test-test", "kind": "near", "pairs": 1}],
                "summary": [], "test_images": len(ids), "test_kept": len(ids) - 2,
                "deduplicated_metrics": {name: {"accuracy": 0.5, "macro_f1": 0.5, "macro_auc": 0.7}
                                         for name in records},
            },
        },
        "baselines": baselines,
        "thresholds": flags.thresholds(),
        "has_boxes": False,
        "seconds": 2.0,
    }
    per_image = {name: shortcut_images_table(fabricated.predictions[name], seed)
                 for seed, name in enumerate(records)}
    write_shortcuts(fabricated.run_dir, summary, per_image, pairs)
    predicted = fabricated.predictions[flagged]["pred"].map(CLASS_NAMES.index).to_numpy()
    maps = np.random.default_rng(0).uniform(0, 1, (len(ids), SHORTCUT_MAP_SIDE, SHORTCUT_MAP_SIDE))
    write_maps(fabricated.run_dir, flagged, summary["method"], maps, ids, predicted)
    return summary


def fabricate_unreadable_run(
    artifacts_dir: Path, run_id: str = "20990101-000000_future", format_version: str = "99.0"
) -> Path:
    """A run folder whose manifest has an artifact format newer than this code reads."""
    run_dir = Path(artifacts_dir) / run_id
    write_json(
        run_dir / MANIFEST,
        {
            "format_version": format_version,
            "run_id": run_id,
            "created": "2099-01-01T00:00:00",
            "class_names": CLASS_NAMES,
            "models": {},
        },
    )
    return run_dir


# --------------------------------------------------------------------------- the data profile
# A data profile (data/) for a fabricated run: bt_core.runs.data_profile on a tiny image folder
# (imagefolders.make_pool) with planted facts the Data page must show: one image copied into
# another class (an exact duplicate with two labels) and one colour image of another size.
PROFILE_PER_CLASS = 10
PROFILE_SIDE = 32
PROFILE_COLOUR_SIDE = 40
PROFILE_COPY = ("glioma/img_000.png", "meningioma/copy_of_glioma.png")
PROFILE_COLOUR = "pituitary/colour.png"


def fabricate_profile_folder(data_root: Path) -> Path:
    """The tiny image folder a fabricated data profile is built from (see PROFILE_*)."""
    import shutil

    import cv2

    from imagefolders import make_pool

    root = make_pool(Path(data_root), per_class=PROFILE_PER_CLASS, size=PROFILE_SIDE)
    shutil.copyfile(root / PROFILE_COPY[0], root / PROFILE_COPY[1])
    colour = np.zeros((PROFILE_COLOUR_SIDE, PROFILE_COLOUR_SIDE, 3), np.uint8)
    colour[8:32, 8:32] = (40, 200, 90)
    cv2.imwrite(str(root / PROFILE_COLOUR), colour)
    return root


def fabricate_data_profile(run_dir: Path, data_root: Path, *, augment_mode: str = "none", seed: int = 0) -> dict[str, Any]:
    """Write a data profile into ``run_dir`` built from :func:`fabricate_profile_folder` at
    ``data_root`` (split and decoded at PROFILE_SIDE px); returns the stored record."""
    from bt_core.artifacts import write_data_profile
    from bt_core.data.dataset import load_dataset
    from bt_core.runs.data_profile import build_data_profile

    dataset = load_dataset(fabricate_profile_folder(data_root), image_size=PROFILE_SIDE, seed=seed)
    record, thumbnails = build_data_profile(dataset, augment_mode=augment_mode, strengths={1.0: ["simple_cnn"]},
                                            seed=seed)
    write_data_profile(run_dir, record, thumbnails)
    return record


def write_class_means(fabricated: FabricatedRun, model: str, method: str = "gradcam",
                      side: int = SHORTCUT_MAP_SIDE, seed: int = 0) -> dict[str, np.ndarray]:
    """The per-class mean maps the analysis pass stores (bt_core.shortcuts.mean_maps through
    bt_core.artifacts.maps), of random maps and disc-shaped heads of the run's test images;
    returns the ``maps``, ``labels`` (class indices) and ``heads`` they were made from."""
    from bt_core.artifacts.maps import write_class_mean_maps
    from bt_core.shortcuts.mean_maps import class_mean_maps

    rng = np.random.default_rng(seed)
    ids = fabricated.test_ids
    labels = fabricated.predictions[model].set_index("id").loc[ids, "label"].map(CLASS_NAMES.index).to_numpy()
    maps = rng.uniform(0, 1, (len(ids), side, side)).astype(np.float32)
    yy, xx = np.mgrid[:side, :side]
    radius = rng.uniform(0.3, 0.5, len(ids)) * side
    heads = (yy - (side - 1) / 2) ** 2 + (xx - (side - 1) / 2) ** 2 <= radius[:, None, None] ** 2
    means = class_mean_maps(maps, labels, heads, CLASS_NAMES)
    write_class_mean_maps(fabricated.run_dir, model, method, means.classes, means.counts, means.maps, means.heads)
    return {"maps": maps, "labels": labels, "heads": heads}
