"""Measure every model of a run for shortcut learning and store the result in the run.

For each usable model: where its maps put their energy (against two baselines), probes
that hide the head, the background or the tumor, deletion / insertion faithfulness of the
main map, strategy clusters of the maps per predicted class, and the score and flags of
:mod:`bt_core.shortcuts.flags`, for all test images and per class. Once per run: the
dataset audit (duplicates across splits, the de-duplicated test metrics, a source probe).

    python train_all.py --explain RUN_DIR        # maps, then these measures
    measure_run(run_dir)                         # the same from Python (TensorFlow backend)

Needs the run's precomputed maps of ``method`` (``bt_core.explain.precompute``); a model
without them is skipped with that reason. Written through :mod:`bt_core.artifacts`
(``shortcuts/``, see docs/artifacts.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from bt_core import artifacts
from bt_core.metrics.classification import metrics_from_predictions
from bt_core.shortcuts import attention, audit, clusters, flags, probes
from bt_core.regions import border_band
from bt_core.regions import head_masks as compute_head_masks

DEFAULT_METHOD = "gradcam"
# Deletion / insertion needs 2 x (steps + 1) forward passes per image: a fixed, class
# stratified sample keeps it to minutes on a CPU.
FAITHFULNESS_IMAGES = 96
FAITHFULNESS_STEPS = 10
# Class-level parts and flags need this many test images of the class.
MIN_CLASS_IMAGES = 10
# Clusters need enough maps per class for a kNN graph to mean something.
MIN_CLUSTER_MAPS = 12
EXAMPLES_PER_CLUSTER = 6


def _predictor(model: Any, preprocessing: str) -> Callable[[np.ndarray], np.ndarray]:
    from bt_core.data.preprocess import preprocess_batch

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(preprocess_batch(images, preprocessing), verbose=0, batch_size=64))

    return predict


def _sample(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """At most ``limit`` positions, the same share of every class, sorted."""
    if len(labels) <= limit:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picked = []
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        take = max(1, int(round(limit * len(members) / len(labels))))
        picked.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


def _records(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Rows by their index as text (artifacts.write_json turns NaN into null)."""
    return {str(key): row for key, row in frame.to_dict("index").items()}


def class_parts(
    summary: pd.DataFrame,
    probe_rows: dict[str, pd.DataFrame],
    baselines: pd.DataFrame,
    class_names: Sequence[str],
    border_area: float,
) -> dict[str, dict[str, dict]]:
    """:func:`flags.shortcut_parts` for "all" and for each class (its images only), from
    :func:`attention.summarize_attention`'s table."""
    result = {}
    for group in ["all", *class_names]:
        if group not in summary.index or (flags.GAUSSIAN, group) not in baselines.index:
            continue
        if group != "all" and summary.loc[group, "n_images"] < MIN_CLASS_IMAGES:
            continue  # a flag on a handful of images would be noise
        result[group] = flags.shortcut_parts(
            summary.loc[group],
            probe_rows.get(group),
            {flags.GAUSSIAN: baselines.loc[(flags.GAUSSIAN, group)]},
            len(class_names),
            border_area=border_area,
            # Uniform noise spreads evenly: its outside-head share is the area outside the head.
            outside_area=float(baselines.loc[("random", group), "outside_head"])
            if ("random", group) in baselines.index else None,
        )
    return result


def _flag_list(parts_by_group: dict[str, dict[str, dict]]) -> list[dict[str, str]]:
    """Flags of "all", then of each class where "all" did not already raise them."""
    seen: dict[str, dict[str, Any]] = {}
    for group, parts in parts_by_group.items():
        for name, sentence in flags.shortcut_flags(parts):
            if name in seen:
                if group != "all":
                    seen[name]["classes"].append(group)
                continue
            seen[name] = {"name": name, "sentence": sentence, "overall": group == "all",
                          "classes": [] if group == "all" else [group]}
    return list(seen.values())


def _cluster_record(result: clusters.ClusterResult, ids: np.ndarray, candidates: list) -> dict[str, Any]:
    chosen = {c.label for c in candidates}
    return {
        "k": int(result.k),
        "n_neighbors": int(result.n_neighbors),
        "notes": list(result.notes),
        "clusters": [
            {
                "label": int(c.label),
                "size": int(c.size),
                "share": float(c.share),
                "tightness": float(c.tightness),
                "off_head": None if c.off_head is None else float(c.off_head),
                "examples": [str(ids[i]) for i in c.members[:EXAMPLES_PER_CLUSTER]],
                "mean_map": np.round(_shrink(c.mean_map), 4).tolist(),
                "clever_hans_candidate": c.label in chosen,
            }
            for c in result.clusters
        ],
    }


def _shrink(image: np.ndarray, size: int = clusters.DEFAULT_MAP_SIZE) -> np.ndarray:
    import cv2

    image = np.asarray(image, dtype=np.float32)
    if image.shape == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def measure_model(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    ids: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    maps: np.ndarray,
    class_names: Sequence[str],
    boxes: np.ndarray | None,
    heads: np.ndarray,
    baselines: pd.DataFrame,
    seed: int = 0,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Every measure of one model: ``(summary record, per-image table)``."""
    table = attention.attention_table(maps, images, labels, class_names, boxes, head_masks=heads)
    probabilities = probes.probe_probabilities(predict, images, heads, boxes)
    probe_rows = {"all": probes.probe_summary(probabilities, labels, class_names)}
    for index, name in enumerate(class_names):
        if (labels == index).any():
            probe_rows[name] = probes.probe_summary(probabilities, labels, class_names, labels == index)
    border_area = float(border_band(images.shape[1:3], attention.DEFAULT_BORDER_WIDTH).mean())
    summary = attention.summarize_attention(table)
    parts = class_parts(summary, probe_rows, baselines, class_names, border_area)
    background_pred = probabilities["background_only"][1].argmax(axis=1)
    for index, name in enumerate(class_names):
        if name not in parts:
            continue
        # Within one class, accuracy against "chance" means nothing: use recall vs false alarms.
        parts[name].pop("background_accuracy", None)
        own, others = labels == index, labels != index
        recall = float(np.mean(background_pred[own] == index)) if own.any() else float("nan")
        false_rate = float(np.mean(background_pred[others] == index)) if others.any() else float("nan")
        parts[name]["background_class"] = flags.background_class_part(recall, false_rate)

    sample = _sample(labels, FAITHFULNESS_IMAGES, seed)
    curves = probes.deletion_insertion(predict, images[sample], maps[sample], predicted[sample],
                                       steps=FAITHFULNESS_STEPS)
    per_image = table.drop(columns=["label_index"]).assign(
        id=ids, pred=[class_names[i] for i in predicted],
        background_pred=[class_names[i] for i in background_pred], deletion_auc=np.nan, insertion_auc=np.nan, cluster=-1
    )
    per_image.loc[sample, "deletion_auc"] = curves["deletion_auc"]
    per_image.loc[sample, "insertion_auc"] = curves["insertion_auc"]

    cluster_records = {}
    for index, name in enumerate(class_names):
        members = np.flatnonzero(predicted == index)
        if len(members) < MIN_CLUSTER_MAPS:
            continue
        result = clusters.strategy_clusters(maps[members], heads[members], seed=seed)
        # Empty maps (no positive evidence anywhere) have no off-head share: no candidate.
        has_shares = any(c.off_head is not None for c in result.clusters)
        candidates = clusters.clever_hans_candidates(result) if has_shares else []
        per_image.loc[members, "cluster"] = result.labels
        cluster_records[name] = _cluster_record(result, ids[members], candidates)

    record = {
        "score": flags.shortcut_score(parts["all"]),
        "flags": _flag_list(parts),
        "parts": parts,
        "attention": _records(summary),
        "probes": {group: _records(frame) for group, frame in probe_rows.items()},
        "faithfulness": {
            "images": int(len(sample)),
            "steps": FAITHFULNESS_STEPS,
            "deletion_auc": float(np.mean(curves["deletion_auc"])),
            "insertion_auc": float(np.mean(curves["insertion_auc"])),
            "deletion_curve": np.round(curves["deletion"].mean(axis=0), 4).tolist(),
            "insertion_curve": np.round(curves["insertion"].mean(axis=0), 4).tolist(),
        },
        "clusters": cluster_records,
    }
    columns = ["id", "label", "pred", "background_pred", "has_box", *attention.MEASURES, "deletion_auc", "insertion_auc", "cluster"]
    return record, per_image[columns]


# An evaluation's own split is all test: its audit also reads the training run's train and
# val images (ids prefixed with this), so a test image copied from training shows as a leak.
TRAINING_RUN_PREFIX = "training run: "


def _audit_images(run: artifacts.Run) -> tuple[pd.DataFrame, str | None]:
    """``path`` (id), ``file``, ``split``, ``label`` of every image the audit hashes, or why not."""
    root = Path(str(run.manifest.get("dataset", {}).get("root", "")))
    if not root.is_dir():
        return pd.DataFrame(), f"dataset folder {root} is not on this machine"
    table = run.split.assign(file=[root / p for p in run.split["path"]])
    evaluation = run.manifest.get("evaluation")
    if evaluation:
        parent = run.directory.parent.parent
        try:
            parent_manifest = artifacts.read_manifest(parent)
            parent_split = artifacts.read_split(parent)
        except artifacts.ArtifactError as exc:
            return table, f"the training run {parent} cannot be read: {exc}"
        parent_root = Path(str(parent_manifest.get("dataset", {}).get("root", "")))
        if not parent_root.is_dir():
            return table, f"the training run's dataset folder {parent_root} is not on this machine"
        seen = parent_split[parent_split["split"].isin(["train", "val"])]
        table = pd.concat([
            seen.assign(file=[parent_root / p for p in seen["path"]],
                        path=TRAINING_RUN_PREFIX + seen["path"].astype(str)),
            table,
        ], ignore_index=True)
    return table, None


def audit_run(run: artifacts.Run, images: np.ndarray, ids: np.ndarray, labels: np.ndarray,
              heads: np.ndarray, say: Callable[[str], Any]) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Duplicates over the run's splits (when its dataset folder is here), metrics on the
    de-duplicated test set, and the source probe on the test images."""
    record: dict[str, Any] = {}
    class_names = run.class_names
    if len(np.unique(labels)) >= 2 and np.bincount(labels).min() >= 2:
        folds = int(min(5, np.bincount(labels)[np.bincount(labels) > 0].min()))
        border = audit.source_probe(images, labels, folds=folds)
        background = audit.source_probe(images, labels, masks=~heads, folds=folds)
        record["source_probe"] = {
            region: {"balanced_accuracy": probe.balanced_accuracy, "std": probe.std, "chance": probe.chance,
                     "folds": probe.folds, "n_images": probe.n_images, "region_share": probe.region_share}
            for region, probe in (("border", border), ("background", background))
        }
    images_table, problem = _audit_images(run)
    if problem:
        record["duplicates"] = {"skipped": problem}
        return record, None
    started = time.perf_counter()
    hashes = audit.hash_images(images_table["file"].tolist(), workers=4)
    report = audit.find_duplicates(hashes, images_table["split"].tolist(), images_table["label"].tolist(),
                                   images_table["path"].tolist())
    say(f"audit: hashed {len(images_table)} images in {time.perf_counter() - started:.1f} s; "
        f"{len(report.pairs)} duplicate pair(s)")
    keep = audit.deduplicated_test_mask(report.pairs, ids.tolist())
    dedup = {}
    for model in run.usable_models() if keep.any() else []:  # nothing left: no metrics
        frame = model.predictions.set_index("id").loc[ids[keep]].reset_index()
        scores = metrics_from_predictions(frame, class_names)
        dedup[model.name] = {key: scores.get(key) for key in ("accuracy", "macro_f1", "macro_auc")}
    summary = report.summary
    record["duplicates"] = {
        "pairs": int(len(report.pairs)),
        "exact_pairs": int((report.pairs["kind"] == "exact").sum()) if len(report.pairs) else 0,
        "near_pairs": int((report.pairs["kind"] == "near").sum()) if len(report.pairs) else 0,
        "label_conflicts": int(len(report.conflicts)),
        "unreadable": int(report.unreadable),
        "max_distance": int(report.max_distance),
        "min_similarity": report.min_similarity,
        "by_split_pair": summary.groupby(["split_pair", "kind"])["pairs"].sum().reset_index().to_dict("records")
        if len(summary) else [],
        "summary": summary.to_dict("records"),
        "test_images": int(len(ids)),
        "test_kept": int(keep.sum()),
        "deduplicated_metrics": dedup,
    }
    return record, report.pairs


def test_boxes(run: artifacts.Run, ids: np.ndarray) -> np.ndarray | None:
    """The run's stored test boxes; for a run without them (format < 1.2), the dataset's
    boxes.csv when its folder is here and no head crop moved the image frame."""
    stored = artifacts.load_test_boxes(run.directory, ids)
    if stored is not None or "crop_head" in (run.manifest.get("preprocess") or []):
        return stored
    from bt_core.data.boxes import read_boxes

    root = Path(str(run.manifest.get("dataset", {}).get("root", "")))
    if not (root / "boxes.csv").is_file():
        return None
    boxes, _rejected = read_boxes(root)
    found = boxes.reindex(np.asarray(ids, dtype=str))
    return found.to_numpy(dtype=np.float64) if found.notna().all(axis=1).any() else None


# A head mask smaller than this share of the image is taken as "no head found".
MIN_HEAD_SHARE = 0.02


def usable_head_masks(images: np.ndarray) -> tuple[np.ndarray, int]:
    """Head masks, with every image where none was found taken as all head: nothing is then
    "outside the head" and its background-only copy is black, so a failed mask can never
    raise a flag. Returns the masks and how many images had no head found."""
    heads = compute_head_masks(images)
    missing = heads.reshape(len(heads), -1).mean(axis=1) < MIN_HEAD_SHARE
    heads[missing] = True
    return heads, int(missing.sum())


def other_method_attention(
    run_dir: Path, name: str, main_method: str, images: np.ndarray, ids: np.ndarray, labels: np.ndarray,
    class_names: Sequence[str], boxes: np.ndarray | None, heads: np.ndarray,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The attention summary of every other precomputed method of a model (maps of the
    predicted class, like the main one), so methods can be compared; a method whose
    maps cannot be read is left out."""
    result = {}
    for method in artifacts.list_maps(run_dir, name):
        if method == main_method:
            continue
        try:
            maps, map_ids, _predicted = artifacts.load_maps(run_dir, name, method)
        except artifacts.ArtifactError:
            continue
        if list(map(str, map_ids)) != list(map(str, ids)):
            continue
        table = attention.attention_table(np.asarray(maps, dtype=np.float32), images, labels, class_names,
                                          boxes, head_masks=heads)
        result[method] = _records(attention.summarize_attention(table))
    return result


def measure_run(
    run_dir: Path | str,
    method: str = DEFAULT_METHOD,
    models: Sequence[str] | None = None,
    progress: Callable[[str], Any] | None = print,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure ``models`` (default: every usable one) of a run and write ``shortcuts/``.

    Returns the summary written (see docs/artifacts.md): ``models`` {name: record},
    ``skipped`` {name: reason}, ``audit``, ``baselines``, ``thresholds``, ``seconds``.
    """
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run = artifacts.load_run(run_dir)
    class_names = run.class_names
    images, ids = artifacts.load_test_images(run_dir)
    boxes = test_boxes(run, ids)
    labels = pd.Index(class_names).get_indexer(
        run.split.set_index("path").loc[ids.astype(str), "label"].astype(str)
    ).astype(np.int64)
    heads, heads_not_found = usable_head_masks(images)
    baselines = attention.baseline_summary(images, labels, class_names, boxes, head_masks=heads)
    names = [m.name for m in run.usable_models()] if models is None else list(models)
    records, skipped, tables = {}, {}, {}
    for name in names:
        model_artifacts = run.models.get(name)
        if model_artifacts is None or not model_artifacts.usable:
            skipped[name] = "not a usable model of this run"
            continue
        try:
            maps, map_ids, predicted = artifacts.load_maps(run_dir, name, method)
        except artifacts.ArtifactError as exc:
            skipped[name] = f"no {method} maps ({exc}); run python train_all.py --explain {run_dir}"
            say(f"{name}: skipped ({skipped[name]})")
            continue
        if list(map(str, map_ids)) != list(map(str, ids)):
            skipped[name] = f"{method} maps do not cover the test images in order; recompute them"
            continue
        model_started = time.perf_counter()
        entry = run.manifest["models"][name]
        model = artifacts.load_model(run_dir, name)
        record, table = measure_model(
            _predictor(model, entry["preprocessing"]), images, ids, labels, np.asarray(predicted),
            np.asarray(maps, dtype=np.float32), class_names, boxes, heads, baselines, seed,
        )
        record["attention_by_method"] = {
            method: record["attention"],
            **other_method_attention(run_dir, name, method, images, ids, labels, class_names, boxes, heads),
        }
        record["seconds"] = round(time.perf_counter() - model_started, 2)
        records[name], tables[name] = record, table
        say(f"{name}: shortcut score {record['score']:.3f}, flags: "
            f"{', '.join(f['name'] for f in record['flags']) or 'none'} ({record['seconds']:.1f} s)")
        del model
    audit_record, pairs = audit_run(run, images, ids, labels, heads, say)
    summary = {
        "method": method,
        "models": records,
        "skipped": skipped,
        "audit": audit_record,
        "baselines": {f"{b}/{g}": row.to_dict() for (b, g), row in baselines.iterrows()},
        "thresholds": flags.thresholds(),
        "has_boxes": boxes is not None and bool(np.isfinite(boxes).all(axis=1).any()),
        "heads_not_found": heads_not_found,
        "seconds": round(time.perf_counter() - started, 2),
    }
    artifacts.write_shortcuts(run_dir, summary, tables, pairs)
    return summary
