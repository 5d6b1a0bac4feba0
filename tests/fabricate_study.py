"""A fabricated study for tests: study.json written by hand per the study contract and one
small run folder per cell, written through RunWriter (no training).

Every cell run holds its one model (predictions from tests/fabricate.py's probability maker,
metrics computed with scikit-learn from them), shortcut measures (``shortcut_record``: a score
that falls with the variant's index), the audit's duplicate pairs (the first two test images of
each class copy a training image, so they are dropped from the de-duplicated test set, and the
stored de-duplicated metrics are computed on the rest) and, unless ``evaluation`` is None, an
external evaluation in tumor mode (``evaluations/<evaluation>``: notumor / tumor images).

The cell's skill rises with the model's and the variant's index and varies with the seed, so
seeds disagree a little and a later variant is more accurate. Variants named in
``unpaired_variants`` score other test image ids (as a leak-free split would), so their effects
cannot pair images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from bt_core.artifacts import STATUS_DONE, RunWriter, evaluation_dir, predictions_frame, write_shortcuts
from fabricate import CLASS_NAMES, _history, compute_metrics, shortcut_record

STUDY_FORMAT_VERSION = "1.0"
STUDY_MODELS = ("simple_cnn", "cnn_bn")
STUDY_VARIANTS = ("none", "crop_head")
STUDY_SEEDS = (0, 1, 2)
STUDY_EVALUATION = "br35h"
# Known variant names -> their RunConfig overrides (any other name: no overrides).
VARIANT_OVERRIDES = {
    "none": {},
    "crop_head": {"preprocess": ["crop_head"]},
    "mask_border": {"preprocess": ["mask_border"]},
    "mask_background": {"preprocess": ["mask_background"]},
    "grouped": {"split": "grouped"},
}
EVALUATION_CLASSES = ["notumor", "tumor"]
# Test images per class that copy a training image (the audit's pairs drop them).
LEAKED_PER_CLASS = 2
IMAGE_SIDE = 4


@dataclass
class FabricatedCell:
    cell_id: str
    model: str
    variant: str
    seed: int
    status: str
    run_dir: Path
    predictions: pd.DataFrame | None = None  # the test set (id, label, pred, p_...)
    kept_ids: list[str] = field(default_factory=list)  # the de-duplicated test set
    shortcut_score: float | None = None
    shortcut_severity: float | None = None
    evaluation_shortcut_score: float | None = None  # the evaluation's own analysis
    evaluation_predictions: pd.DataFrame | None = None  # evaluations/<evaluation> (notumor / tumor)


@dataclass
class FabricatedStudy:
    study_dir: Path
    study_id: str
    manifest: dict[str, Any]  # study.json as written
    cells: dict[str, FabricatedCell]
    models: tuple[str, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    baseline: str
    evaluation: str | None

    @property
    def done_cells(self) -> list[FabricatedCell]:
        return [cell for cell in self.cells.values() if cell.status == "done"]

    def cell(self, model: str, variant: str, seed: int) -> FabricatedCell:
        return self.cells[cell_id_of(model, variant, seed)]


def cell_id_of(model: str, variant: str, seed: int) -> str:
    return f"{model}__{variant}__s{seed}"


def _split(test_per_class: int, prefix: str) -> pd.DataFrame:
    sizes = {"train": LEAKED_PER_CLASS, "val": 1, "test": test_per_class}
    rows = [{"path": f"{split}/{name}/{prefix}img_{index:04d}.jpg", "split": split, "label": name}
            for split, size in sizes.items() for name in CLASS_NAMES for index in range(size)]
    return pd.DataFrame(rows)


def _duplicate_pairs(split: pd.DataFrame) -> pd.DataFrame:
    """Each of the first LEAKED_PER_CLASS test images of a class is a near copy of a training image."""
    rows = []
    for name in CLASS_NAMES:
        train = split[(split["split"] == "train") & (split["label"] == name)]["path"].tolist()
        test = split[(split["split"] == "test") & (split["label"] == name)]["path"].tolist()
        for train_id, test_id in zip(train, test[:LEAKED_PER_CLASS]):
            rows.append({"id_a": train_id, "id_b": test_id, "split_a": "train", "split_b": "test",
                         "label_a": name, "label_b": name, "distance": 2, "similarity": 0.99, "kind": "near",
                         "group": len(rows)})
    return pd.DataFrame(rows)


def _cell_probabilities(model_number: int, label_index: np.ndarray, skill: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Softmax of logits whose noise is partly the image's own (shared by every seed and variant
    of a model, so seeds agree on most images) and partly the seed's."""
    n = len(label_index)
    shared = np.random.default_rng([model_number, 99]).normal(size=(n, len(CLASS_NAMES)))
    logits = 0.8 * shared + 0.6 * rng.normal(size=(n, len(CLASS_NAMES)))
    logits[np.arange(n), label_index] += skill
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _write_cell_run(cell: FabricatedCell, model_number: int, skill: float, score_shift: float,
                    test_per_class: int, prefix: str, evaluation: str | None, evaluation_images: int,
                    rng: np.random.Generator) -> None:
    split = _split(test_per_class, prefix)
    writer = RunWriter(cell.run_dir, {
        "run_id": cell.cell_id, "created": "2026-12-01T12:00:00",
        "config": {"models": [cell.model], "epochs": 3, "img_size": IMAGE_SIDE, "seed": cell.seed,
                   "data": "data/brain-tumor-mri", "run_id": cell.cell_id,
                   **VARIANT_OVERRIDES.get(cell.variant, {})},
        "class_names": CLASS_NAMES, "image_size": IMAGE_SIDE,
        "dataset": {"name": "brain-tumor-mri", "root": "data/brain-tumor-mri", "layout": "pool",
                    "fingerprint": "0123abcd",
                    "counts": {s: {n: int(((split["split"] == s) & (split["label"] == n)).sum()) for n in CLASS_NAMES}
                               for s in ("train", "val", "test")}},
        "backend": "tensorflow", "device": "CPU",
    })
    writer.write_split(split)
    test = split[split["split"] == "test"].reset_index(drop=True)
    ids = test["path"].tolist()
    writer.write_test_images(rng.integers(0, 256, (len(ids), IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8), ids)
    label_index = test["label"].map(CLASS_NAMES.index).to_numpy()
    probabilities = _cell_probabilities(model_number, label_index, skill, rng)
    predictions = predictions_frame(ids, test["label"].tolist(), probabilities, CLASS_NAMES)
    writer.write_history(cell.model, _history(3))
    writer.write_predictions(cell.model, predictions)
    writer.write_metrics(cell.model, compute_metrics(predictions, CLASS_NAMES))
    writer.set_model_status(cell.model, STATUS_DONE, params_trainable=10_000, params_total=12_000,
                            train_seconds=12.5, epochs_run=3, best_epoch=3, phases=["scratch"],
                            input_size=IMAGE_SIDE, preprocessing="rescale", family="custom")
    cell.predictions = predictions

    pairs = _duplicate_pairs(split)
    leaked = set(pairs["id_b"])
    cell.kept_ids = [image_id for image_id in ids if image_id not in leaked]
    kept = predictions.set_index("id").loc[cell.kept_ids].reset_index()
    dedup = {key: compute_metrics(kept, CLASS_NAMES)[key] for key in ("accuracy", "macro_f1", "macro_auc")}
    record = shortcut_record(max(0.6 - score_shift, 0.05), max(0.45 - score_shift, 0.02), 0.5, ids,
                             test["label"].tolist())
    cell.shortcut_score = float(record["score"])
    cell.shortcut_severity = float(record["severity"]["severity"])
    summary = {"method": "gradcam", "models": {cell.model: record}, "skipped": {}, "has_boxes": False,
               "audit": {"duplicates": {"pairs": len(pairs), "exact_pairs": 0, "near_pairs": len(pairs),
                                        "label_conflicts": 0, "unreadable": 0, "test_images": len(ids),
                                        "test_kept": len(cell.kept_ids),
                                        "deduplicated_metrics": {cell.model: dedup}}}}
    write_shortcuts(cell.run_dir, summary, {}, pairs)
    if evaluation is not None:
        cell.evaluation_predictions = _write_evaluation(cell, evaluation, evaluation_images, skill, rng)


def _write_evaluation(cell: FabricatedCell, name: str, n_images: int, skill: float,
                      rng: np.random.Generator) -> pd.DataFrame:
    from bt_core.metrics import metrics_from_predictions

    healthy = n_images // 4
    labels = ["notumor"] * healthy + ["tumor"] * (n_images - healthy)
    ids = [f"{label}/img_{index:04d}.png" for index, label in enumerate(labels)]
    writer = RunWriter(evaluation_dir(cell.run_dir, name), {
        "run_id": f"{cell.cell_id}/evaluations/{name}", "class_names": EVALUATION_CLASSES, "image_size": IMAGE_SIDE,
        "evaluation": {"of_run": cell.cell_id, "name": name, "mode": "tumor", "data": f"/data/{name}",
                       "not_trained": [], "negative_class": "notumor"},
        "dataset": {"name": name, "counts": {"test": {"notumor": healthy, "tumor": n_images - healthy}}},
    })
    writer.write_split(pd.DataFrame({"path": ids, "split": "test", "label": labels}))
    writer.write_test_images(rng.integers(0, 256, (n_images, IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8), ids)
    is_tumor = np.array([label == "tumor" for label in labels])
    logits = rng.normal(size=n_images) + np.where(is_tumor, 1.0, -1.0) * 0.5 * skill
    p_tumor = 1.0 / (1.0 + np.exp(-logits))
    predictions = predictions_frame(ids, labels, np.c_[1 - p_tumor, p_tumor], EVALUATION_CLASSES)
    writer.write_predictions(cell.model, predictions)
    writer.write_metrics(cell.model, metrics_from_predictions(predictions, EVALUATION_CLASSES))
    writer.set_model_status(cell.model, STATUS_DONE, family="custom", input_size=IMAGE_SIDE, preprocessing="rescale")
    # The evaluation's own analysis: a stronger shortcut on data from elsewhere.
    # (shortcut_record's probes need the four classes: cycled over the images, a fabrication only)
    record = shortcut_record(0.7 - 0.1 * skill, 0.5, 0.5, ids, [CLASS_NAMES[i % len(CLASS_NAMES)] for i in range(n_images)])
    cell.evaluation_shortcut_score = float(record["score"])
    write_shortcuts(evaluation_dir(cell.run_dir, name),
                    {"method": "gradcam", "models": {cell.model: record}, "skipped": {}, "has_boxes": False}, {}, None)
    return predictions


def _spec(study_id: str, models: Sequence[str], variants: Sequence[str], seeds: Sequence[int], baseline: str,
          evaluation: str | None) -> dict[str, Any]:
    return {
        "study_id": study_id, "data": "data/brain-tumor-mri", "models": list(models), "seeds": list(seeds),
        "variants": [{"name": name, "overrides": VARIANT_OVERRIDES.get(name, {})} for name in variants],
        "settings": {"epochs": 3, "img_size": IMAGE_SIDE}, "baseline": baseline,
        "evaluations": [{"name": evaluation, "data": f"data/{evaluation}"}] if evaluation else [],
        "explain": True, "resources": {"num_cpus": 1, "num_gpus": 0, "max_retries": 3},
    }


def write_study_manifest(study: FabricatedStudy) -> None:
    """(Re)write study.json from ``study.manifest`` and the cells' statuses."""
    for row in study.manifest["cells"]:
        row["status"] = study.cells[row["cell_id"]].status
        if row["status"] != "done":
            row["seconds"] = row["finished"] = None
        if row["status"] == "failed":
            row["reason"] = row["reason"] or "RuntimeError: fabricated failure"
    (study.study_dir / "study.json").write_text(json.dumps(study.manifest, indent=2), encoding="utf-8")


def fabricate_study(
    parent: Path,
    study_id: str = "mitigations",
    *,
    models: Sequence[str] = STUDY_MODELS,
    variants: Sequence[str] = STUDY_VARIANTS,
    seeds: Sequence[int] = STUDY_SEEDS,
    baseline: str | None = None,
    test_per_class: int = 12,
    evaluation: str | None = STUDY_EVALUATION,
    evaluation_images: int = 40,
    failed: Sequence[str] = (),
    pending: Sequence[str] = (),
    unpaired_variants: Sequence[str] = (),
) -> FabricatedStudy:
    """Write ``parent/<study_id>/`` (study.json, runs/<cell_id>/ per done cell) and return what
    went into it. ``failed`` / ``pending`` name cell ids recorded so (no run folder);
    ``test_per_class`` test images per class (4 classes) in each cell run."""
    study_dir = Path(parent) / study_id
    (study_dir / "runs").mkdir(parents=True, exist_ok=True)
    baseline = baseline or variants[0]
    cells: dict[str, FabricatedCell] = {}
    rows = []
    for model_number, model in enumerate(models):
        for variant_number, variant in enumerate(variants):
            for seed in seeds:
                cell_id = cell_id_of(model, variant, seed)
                status = "failed" if cell_id in failed else "pending" if cell_id in pending else "done"
                cell = FabricatedCell(cell_id, model, variant, int(seed), status, study_dir / "runs" / cell_id)
                cells[cell_id] = cell
                rows.append({"cell_id": cell_id, "model": model, "variant": variant, "seed": int(seed),
                             "run": f"runs/{cell_id}", "status": status, "reason": None,
                             "attempts": 1 if status != "pending" else 0, "seconds": 3.5,
                             "finished": "2026-12-01T12:05:00+00:00"})
                if status != "done":
                    continue
                rng = np.random.default_rng([model_number, variant_number, int(seed)])
                skill = 1.0 + 0.5 * model_number + 0.4 * variant_number + 0.15 * rng.standard_normal()
                prefix = f"{variant}_" if variant in unpaired_variants else ""
                _write_cell_run(cell, model_number, skill, 0.1 * variant_number + 0.01 * int(seed),
                                test_per_class, prefix, evaluation, evaluation_images, rng)
    manifest = {"kind": "study", "study_format_version": STUDY_FORMAT_VERSION, "study_id": study_id,
                "created": "2026-12-01T12:00:00+00:00",
                "spec": _spec(study_id, models, variants, seeds, baseline, evaluation),
                "scheduler": "sequential", "cells": rows}
    study = FabricatedStudy(study_dir, study_id, manifest, cells, tuple(models), tuple(variants),
                            tuple(int(seed) for seed in seeds), baseline, evaluation)
    write_study_manifest(study)
    return study
