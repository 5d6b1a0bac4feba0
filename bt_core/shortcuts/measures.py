"""Every shortcut measure of one model, and the dataset audit of one run, from arrays in memory.

The analysis pass (:func:`bt_core.runs.analyze.analyze_run`) holds the test images, their
head masks, the boxes, the model and its maps once and hands them here. For a model: where
its maps put their energy (against two baselines), probes that hide the head, the
background or the tumor, deletion / insertion faithfulness of the main map, strategy
clusters of the maps per predicted class, and the score and flags of
:mod:`bt_core.shortcuts.flags`, for all test images and per class. For a run: duplicates
across splits, the de-duplicated test metrics and a source probe. No file is read or written
here (the audit hashes the image files it is given).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from bt_core.metrics import metrics_from_predictions
from bt_core.regions import border_band, resize_maps
from bt_core.shortcuts import attention, audit, clusters, counterfactual, flags, probes, severity
from bt_core.shortcuts.source_probe import source_probe

# Deletion / insertion needs 2 x (steps + 1) forward passes per image: a fixed, class
# stratified sample keeps it to minutes on a CPU.
FAITHFULNESS_IMAGES = 96
FAITHFULNESS_STEPS = 10
# The probes whose flips to the donor's class count as following the source.
SEVERITY_PROBES = ("source_swap", "style_match")
# Class-level parts and flags need this many test images of the class (one rule: flags').
MIN_CLASS_IMAGES = flags.MIN_GROUP_IMAGES
# Clusters need enough maps per class for a kNN graph to mean something.
MIN_CLUSTER_MAPS = 12
EXAMPLES_PER_CLUSTER = 6
# Threads hashing the audit's image files.
HASH_WORKERS = 4

Predict = Callable[[np.ndarray], np.ndarray]


def predictor(model: Any, spec: Any) -> Predict:
    """Class probabilities of uint8 images: the model after its spec's preprocessing."""
    from bt_core.data.preprocess import preprocess_batch
    from bt_core.models.inference import predict_in_batches

    def predict(images: np.ndarray) -> np.ndarray:
        return predict_in_batches(model, preprocess_batch(images, spec.preprocessing))

    return predict


def stratified_sample(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
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


def records(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Rows by their index as text (artifacts.write_json turns NaN into null)."""
    return {str(key): row for key, row in frame.to_dict("index").items()}


def attention_record(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """:func:`attention.summarize_attention` of one method's attention table, as records."""
    return records(attention.summarize_attention(table))


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


def flag_list(parts_by_group: dict[str, dict[str, dict]]) -> list[dict[str, Any]]:
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
                "mean_map": np.round(resize_maps(c.mean_map, clusters.DEFAULT_MAP_SIZE), 4).tolist(),
                "clever_hans_candidate": c.label in chosen,
            }
            for c in result.clusters
        ],
    }


def _probe_parts(
    predict: Predict, images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
    boxes: np.ndarray | None, heads: np.ndarray, summary: pd.DataFrame, baselines: pd.DataFrame,
) -> tuple[dict[str, pd.DataFrame], dict[str, dict], np.ndarray, np.ndarray]:
    """The probe tables per group, the flag parts per group, the background-only predictions
    and the probabilities on the original images."""
    probabilities = probes.probe_probabilities(predict, images, heads, boxes)
    probe_rows = {"all": probes.probe_summary(probabilities, labels, class_names)}
    for index, name in enumerate(class_names):
        if (labels == index).any():
            probe_rows[name] = probes.probe_summary(probabilities, labels, class_names, labels == index)
    border_area = float(border_band(images.shape[1:3], attention.DEFAULT_BORDER_WIDTH).mean())
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
        parts[name]["background_class"] = flags.background_class_part(recall, false_rate, n=int(own.sum()))
    return probe_rows, parts, background_pred, probabilities["original"][1]


def counterfactual_record(
    predict: Predict, images: np.ndarray, labels: np.ndarray, heads: np.ndarray,
    class_names: Sequence[str], original_proba: np.ndarray, seed: int,
) -> dict[str, Any]:
    """The counterfactual probes of one model (:mod:`bt_core.shortcuts.counterfactual`) and
    the severities built from them: ``severity`` (the headline) from the source swaps and the
    style match together, each class counted by the probe that moves it most; its two sides
    ``swap_severity`` (the outside of the head) and ``style_severity`` (the head's intensity
    style) beside it. On brain-tumor-mri the source lives in the style (the Br35H no-tumor
    look), on a border-marked set outside the head: either alone misses one of them."""
    # Every ordered class pair: a mark can tie two tumor classes as well as tumor and no tumor.
    table = counterfactual.counterfactual_table(
        predict, images, labels, heads, class_names, all_pairs=True, seed=seed, original_proba=original_proba)
    counts = {name: int((labels == index).sum()) for index, name in enumerate(class_names)}
    return {
        "counterfactual": table.to_dict("records"),
        "severity": severity.source_following_share(table, counts, probes=SEVERITY_PROBES),
        "swap_severity": severity.source_following_share(table, counts, probes=("source_swap",)),
        "style_severity": severity.source_following_share(table, counts, probes=("style_match",)),
    }


def _strategy_clusters(maps: np.ndarray, off_head: np.ndarray, ids: np.ndarray, predicted: np.ndarray,
                       class_names: Sequence[str], seed: int) -> tuple[dict[str, Any], np.ndarray]:
    """Cluster records per predicted class with enough maps, and each image's cluster (-1: none);
    ``off_head``: each map's outside-head share (the attention table's)."""
    cluster_of = np.full(len(maps), -1, dtype=np.int64)
    cluster_records = {}
    for index, name in enumerate(class_names):
        members = np.flatnonzero(predicted == index)
        if len(members) < MIN_CLUSTER_MAPS:
            continue
        result = clusters.strategy_clusters(maps[members], seed=seed, off_head=off_head[members])
        # Empty maps (no positive evidence anywhere) have no off-head share: no candidate.
        has_shares = any(c.off_head is not None for c in result.clusters)
        candidates = clusters.clever_hans_candidates(result) if has_shares else []
        cluster_of[members] = result.labels
        cluster_records[name] = _cluster_record(result, ids[members], candidates)
    return cluster_records, cluster_of


def measure_model(
    predict: Predict,
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
    *,
    table: pd.DataFrame,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Every measure of one model: ``(summary record, per-image table)``. ``table``: the
    :func:`attention.attention_table` of ``maps`` (made once by the caller, which stores
    its shares beside the maps); ``heads``: the usable head masks."""
    summary = attention.summarize_attention(table)
    probe_rows, parts, background_pred, original_proba = _probe_parts(
        predict, images, labels, class_names, boxes, heads, summary, baselines)
    severities = counterfactual_record(predict, images, labels, heads, class_names, original_proba, seed)
    sample = stratified_sample(labels, FAITHFULNESS_IMAGES, seed)
    curves = probes.deletion_insertion(predict, images[sample], maps[sample], predicted[sample],
                                       steps=FAITHFULNESS_STEPS)
    cluster_records, cluster_of = _strategy_clusters(maps, table["outside_head"].to_numpy(dtype=np.float64), ids,
                                                     predicted, class_names, seed)
    per_image = table.drop(columns=["label_index"]).assign(
        id=ids, pred=[class_names[i] for i in predicted], background_pred=[class_names[i] for i in background_pred],
        deletion_auc=np.nan, insertion_auc=np.nan, cluster=cluster_of,
    )
    per_image.loc[sample, "deletion_auc"] = curves["deletion_auc"]
    per_image.loc[sample, "insertion_auc"] = curves["insertion_auc"]
    record = {
        "score": flags.shortcut_score(parts["all"]),
        "flags": flag_list(parts),
        "parts": parts,
        "attention": records(summary),
        "probes": {group: records(frame) for group, frame in probe_rows.items()},
        "faithfulness": {
            "images": int(len(sample)),
            "steps": FAITHFULNESS_STEPS,
            "deletion_auc": float(np.mean(curves["deletion_auc"])),
            "insertion_auc": float(np.mean(curves["insertion_auc"])),
            "deletion_curve": np.round(curves["deletion"].mean(axis=0), 4).tolist(),
            "insertion_curve": np.round(curves["insertion"].mean(axis=0), 4).tolist(),
        },
        "clusters": cluster_records,
        **severities,
    }
    columns = ["id", "label", "pred", "background_pred", "has_box", *attention.MEASURES,
               "deletion_auc", "insertion_auc", "cluster"]
    return record, per_image[columns]


# --------------------------------------------------------------------------- the run's audit


def source_probe_record(images: np.ndarray, labels: np.ndarray, heads: np.ndarray) -> dict[str, Any] | None:
    """How well the border and the background (outside the usable ``heads``) alone tell the
    classes of the test images apart; None with fewer than two classes present or a present
    class of one image (no cross-validation possible). Classes without test images do not count."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"labels must be (N,) with N = {len(images)} images, got shape {labels.shape}")
    counts = np.unique(labels, return_counts=True)[1]
    if len(counts) < 2 or counts.min() < 2:
        return None
    folds = int(min(5, counts.min()))
    border = source_probe(images, labels, folds=folds)
    background = source_probe(images, labels, masks=~np.asarray(heads, dtype=bool), folds=folds)
    return {
        region: {"balanced_accuracy": probe.balanced_accuracy, "std": probe.std, "chance": probe.chance,
                 "folds": probe.folds, "n_images": probe.n_images, "region_share": probe.region_share}
        for region, probe in (("border", border), ("background", background))
    }


def duplicates_record(
    images_table: pd.DataFrame, test_ids: np.ndarray, predictions: Mapping[str, pd.DataFrame],
    class_names: Sequence[str], say: Callable[[str], Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Duplicates among the image files of ``images_table`` (``file``, ``split``, ``label``,
    ``path`` = id) and each model's metrics on the test images left after de-duplication;
    returns the record and the duplicate pairs."""
    started = time.perf_counter()
    hashes = audit.hash_images(images_table["file"].tolist(), workers=HASH_WORKERS)
    report = audit.find_duplicates(hashes, images_table["split"].tolist(), images_table["label"].tolist(),
                                   images_table["path"].tolist())
    say(f"audit: hashed {len(images_table)} images in {time.perf_counter() - started:.1f} s; "
        f"{len(report.pairs)} duplicate pair(s)")
    keep = audit.deduplicated_test_mask(report.pairs, test_ids.tolist())
    dedup = {}
    for name, frame in (predictions.items() if keep.any() else ()):  # nothing left: no metrics
        scores = metrics_from_predictions(frame.set_index("id").loc[test_ids[keep]].reset_index(), class_names)
        dedup[name] = {key: scores.get(key) for key in ("accuracy", "macro_f1", "macro_auc")}
    summary, pairs = report.summary, report.pairs
    record = {
        "pairs": int(len(pairs)),
        "exact_pairs": int((pairs["kind"] == "exact").sum()) if len(pairs) else 0,
        "near_pairs": int((pairs["kind"] == "near").sum()) if len(pairs) else 0,
        "label_conflicts": int(len(report.conflicts)),
        "unreadable": int(report.unreadable),
        "max_distance": int(report.max_distance),
        "min_similarity": report.min_similarity,
        "by_split_pair": summary.groupby(["split_pair", "kind"])["pairs"].sum().reset_index().to_dict("records")
        if len(summary) else [],
        "summary": summary.to_dict("records"),
        "test_images": int(len(test_ids)),
        "test_kept": int(keep.sum()),
        "deduplicated_metrics": dedup,
    }
    return record, pairs
