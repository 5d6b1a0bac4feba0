"""The analysis pass: explanation maps and shortcut measures of a run, in one pass.

The pass holds the test images, their head masks and boxes once, and each model once: per
model it computes every method's maps of the class the model PREDICTED (``predictions.csv``)
with :func:`bt_core.explain.explain_spec`, shrunk to ``map_size`` pixels and stored as float16.
Each stored map is read once against the image's regions (its attention table,
:func:`bt_core.shortcuts.attention.attention_table`): the outside-head, border and in-box
shares stored beside the maps are that table's columns, and the measures of the model
(:mod:`bt_core.shortcuts.measures`), taken while it is still loaded, read the same table.
Once per run it writes the head masks it used (``test_heads.npz``) and the dataset audit.
Everything goes through :mod:`bt_core.artifacts` (docs/artifacts.md); ``shortcuts/summary.json``
is written last.

    python train_all.py --explain RUN_DIR [--methods gradcam,layercam] [--models a,b] [--map-size N]
    analyze_run(run_dir)                         # the same from Python (TensorFlow backend)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from bt_core import artifacts, regions
from bt_core.artifacts.schema import DEFAULT_SHORTCUT_METHOD
from bt_core.runs.model_card import refresh_model_cards
from bt_core.artifacts.maps import write_class_mean_maps
from bt_core.shortcuts import attention, flags, measures
from bt_core.shortcuts.mean_maps import class_mean_maps

DEFAULT_METHODS = ("gradcam", "faster_scorecam")
DEFAULT_MEASURE_METHOD = DEFAULT_SHORTCUT_METHOD
# Stored maps are at most this many pixels a side: 8 KB per image as float16, and a CAM
# has far less detail than that (ResNet50's is 7 x 7 at 224 px).
DEFAULT_MAP_SIZE = 64
# Images per explain call: bounds the full-size float32 maps held at once.
CHUNK = 64
# The one image op that moves the image frame: dataset boxes do not fit its images.
FRAME_MOVING_OP = "crop_head"
# An evaluation's own split is all test: its audit also reads the training run's train and
# val images (ids prefixed with this), so a test image copied from training shows as a leak.
TRAINING_RUN_PREFIX = "training run: "

Say = Callable[[str], Any]


def default_map_size(image_size: int) -> int:
    return min(DEFAULT_MAP_SIZE, int(image_size))


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


def compute_maps(
    model: Any, spec: Any, images: np.ndarray, method: str, class_index: np.ndarray, size: int
) -> np.ndarray:
    """float16 ``(N, size, size)`` maps as stored: :func:`bt_core.explain.explain_spec` at the
    spec's layer and preprocessing in bounded chunks, shrunk (area filter) and clipped."""
    from bt_core.explain import explain_spec

    classes = np.broadcast_to(np.asarray(class_index, dtype=np.int64), (len(images),))
    parts = [
        regions.resize_maps(
            explain_spec(model, spec, images[start : start + CHUNK], method, class_index=classes[start : start + CHUNK]),
            size, clip=True,
        )
        for start in range(0, len(images), CHUNK)
    ]
    maps = np.concatenate(parts) if parts else np.zeros((0, size, size), dtype=np.float32)
    return maps.astype(np.float16)


@dataclass(frozen=True)
class TestSet:
    """What every model of the pass is read against, loaded once per run."""

    images: np.ndarray  # uint8 (N, S, S, 3)
    ids: np.ndarray  # (N,) test ids
    labels: np.ndarray  # int64 (N,) class indices
    heads: np.ndarray  # bool (N, S, S): usable head masks
    heads_not_found: int
    boxes: np.ndarray | None  # (N, 4) with NaN rows, or None


class MethodMaps(NamedTuple):
    """One method's stored maps of one model, and their attention table (computed once)."""

    maps: np.ndarray  # float16 (N, h, w)
    class_index: np.ndarray  # int64 (N,): the class each map explains
    table: pd.DataFrame  # attention.attention_table of the maps against the test set


def stored_shares(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The shares stored beside the maps (:data:`bt_core.artifacts.MAP_SHARES`): the
    attention table's columns of the same names, so both are the same numbers."""
    return {name: table[name].to_numpy(dtype=np.float64) for name in artifacts.MAP_SHARES}


def run_boxes(run: artifacts.Run, ids: np.ndarray) -> np.ndarray | None:
    """The run's stored test boxes. A run without them (format < 1.2) whose dataset folder
    is here unchanged (the fingerprint it recorded) and whose image ops leave the frame alone
    gets them from the dataset's boxes.csv, stored once as its test_boxes.csv so every later
    reader uses that; rows boxes.csv rejects join the run's skipped files, as in training."""
    stored = run.test_boxes(ids)
    if stored is not None or FRAME_MOVING_OP in run.image_ops or not run.dataset.root:
        return stored
    from bt_core.data.boxes import BOXES_FILE, read_boxes
    from bt_core.data.dataset import fingerprint
    from bt_core.data.layouts import discover

    root = Path(run.dataset.root)
    if not (root / BOXES_FILE).is_file():
        return None
    if fingerprint(root, run.split["path"].astype(str).tolist()) != run.dataset.fingerprint:
        return None  # the folder changed since the run: its boxes may not be of these images
    # The whole folder's labels (not only the split's): a box of an image that failed to
    # decode is of a known image, not "no such image". A folder that no longer reads as a
    # dataset falls back to the split's labels.
    try:
        items = discover(root).items
    except (OSError, ValueError):
        items = run.split
    boxes, rejected = read_boxes(root, labels=dict(zip(items["path"].astype(str), items["label"].astype(str))))
    if not boxes.index.isin(np.asarray(ids, dtype=str)).any():
        return None
    artifacts.write_test_boxes(run.directory, boxes, ids)
    artifacts.record_skipped(run.directory, [{"path": s.path, "reason": s.reason} for s in rejected])
    return run.test_boxes(ids)


def load_test_set(run: artifacts.Run) -> TestSet:
    """The test images, labels, boxes and head masks; the masks are stored as test_heads.npz."""
    images, ids = artifacts.load_test_images(run.directory)
    ids = np.asarray(ids, dtype=str)
    labels = pd.Index(run.class_names).get_indexer(
        run.split.set_index("path").loc[ids, "label"].astype(str)
    ).astype(np.int64)
    heads, not_found = regions.usable_head_masks(images)
    artifacts.write_test_heads(run.directory, heads, ids)
    return TestSet(images, ids, labels, heads, not_found, run_boxes(run, ids))


def _check_choice(run: artifacts.Run, methods: Sequence[str], models: Sequence[str] | None) -> list[str]:
    from bt_core.explain import list_methods

    unknown_methods = [m for m in methods if m not in list_methods()]
    if unknown_methods:
        raise ValueError(f"unknown method(s) {unknown_methods}; known: {', '.join(list_methods())}")
    names = list(run.models) if models is None else list(models)
    unknown_models = [name for name in names if name not in run.models]
    if unknown_models:
        raise ValueError(f"model(s) {unknown_models} not in this run; it has {', '.join(run.models)}")
    return names


def verdict_line(record: dict[str, Any]) -> str:
    """The terminal's words for a model's flags: the verdict the pages show, with its flags."""
    verdict = flags.flag_verdict(record)
    names = ", ".join(dict.fromkeys(str(flag["name"]) for flag in verdict.flags))
    return f"{verdict.text}" + (f" ({names})" if names else "")


class _Analysis:
    """One analysis pass over a run: the test set and baselines once, then each model."""

    def __init__(self, run: artifacts.Run, test: TestSet, size: int, say: Say, errors: tuple, seed: int):
        self.run, self.test, self.size, self.say, self.errors, self.seed = run, test, size, say, errors, seed
        self.written: dict[str, dict[str, Path]] = {}
        self.skipped: dict[str, str] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, pd.DataFrame] = {}
        self.measure_skipped: dict[str, str] = {}
        self._baselines: pd.DataFrame | None = None

    def attention_table(self, maps: np.ndarray) -> pd.DataFrame:
        """The maps read against the test images' usable heads, border band and boxes."""
        test = self.test
        return attention.attention_table(maps, test.images, test.labels, self.run.class_names, test.boxes,
                                         head_masks=test.heads)

    def stored_maps(self, name: str, skip: Sequence[str]) -> dict[str, MethodMaps]:
        """The model's maps files other than ``skip`` that cover the test images in order;
        a file without shares (before 1.3) gains them."""
        run_dir, found = self.run.directory, {}
        for method in artifacts.list_maps(run_dir, name):
            if method in skip:
                continue
            try:
                maps, ids, classes = artifacts.load_maps(run_dir, name, method)
                if list(ids) != self.test.ids.tolist():
                    continue  # maps of other test images: recomputing them replaces the file
                table = self.attention_table(maps)
                if artifacts.load_map_shares(run_dir, name, method) is None:
                    artifacts.add_map_shares(run_dir, name, method, stored_shares(table))
            except artifacts.ArtifactError:
                continue
            found[method] = MethodMaps(maps, classes, table)
        return found

    @property
    def baselines(self) -> pd.DataFrame:
        if self._baselines is None:
            test = self.test
            self._baselines = attention.baseline_summary(test.images, test.labels, self.run.class_names,
                                                         test.boxes, head_masks=test.heads)
        return self._baselines

    def write_maps(self, name: str, model: Any, spec: Any, classes: np.ndarray,
                   methods: Sequence[str]) -> dict[str, MethodMaps]:
        """Compute, store and return the maps of each method; a failing method is noted."""
        computed, problems = {}, []
        for method in methods:
            started = time.perf_counter()
            try:
                maps = compute_maps(model, spec, self.test.images, method, classes, self.size)
            # Memory or a layer the method cannot use: note it, try the next method.
            except self.errors as exc:
                problems.append(f"{method}: {type(exc).__name__}: {exc}")
                self.say(f"{name}: {method} failed ({problems[-1]})")
                continue
            table = self.attention_table(maps)
            path = artifacts.write_maps(self.run.directory, name, method, maps, self.test.ids, classes,
                                        layer=spec.last_conv_layer, shares=stored_shares(table))
            self.written.setdefault(name, {})[method] = path
            computed[method] = MethodMaps(maps, classes, table)
            self.say(f"{name}: {method} of {len(maps)} images in {time.perf_counter() - started:.1f} s -> {path}")
        if problems:
            self.skipped[name] = "; ".join(problems)
        return computed

    def measure(self, name: str, model: Any, spec: Any, maps_by_method: dict[str, MethodMaps], method: str) -> None:
        """Every shortcut measure of one model from its stored maps of ``method``."""
        if method not in maps_by_method:
            reason = (f"no {method} maps of the test images; run python train_all.py --explain "
                      f"{self.run.directory} --methods {method}")
            self.measure_skipped[name] = reason
            self.skipped.setdefault(name, f"shortcut measures: {reason}")
            self.say(f"{name}: shortcut measures skipped ({reason})")
            return
        started, test, class_names = time.perf_counter(), self.test, self.run.class_names
        measured = maps_by_method[method]
        record, table = measures.measure_model(
            measures.predictor(model, spec), test.images, test.ids, test.labels, np.asarray(measured.class_index),
            np.asarray(measured.maps, dtype=np.float32), class_names, test.boxes, test.heads, self.baselines,
            self.seed, table=measured.table,
        )
        record["attention_by_method"] = {
            other: record["attention"] if other == method else measures.attention_record(found.table)
            for other, found in sorted(maps_by_method.items())
        }
        record["seconds"] = round(time.perf_counter() - started, 2)
        self.records[name], self.tables[name] = record, table
        severity = record["severity"]
        self.say(f"{name}: severity {severity['severity']:.3f} [{severity['ci_low']:.3f}, {severity['ci_high']:.3f}] "
                 f"({flags.severity_verdict(severity)}; {severity['driving_pair'] or 'no swap moves it'}), "
                 f"parts score {record['score']:.3f}, {verdict_line(record)} ({record['seconds']:.1f} s)")

    def model(self, name: str, methods: Sequence[str], measure_method: str | None) -> None:
        """Load one model once: its maps, then (``measure_method`` not None) its measures."""
        from bt_core.explain import clear_cache

        model_artifacts = self.run.models[name]
        if not model_artifacts.usable:
            self.skipped[name] = model_artifacts.error or "no predictions"
            self.say(f"{name}: skipped ({self.skipped[name]})")
            return
        try:
            classes = predicted_class_indices(model_artifacts.predictions, self.test.ids, self.run.class_names)
            spec = self.run.entry(name).spec
            model = artifacts.load_model(self.run.directory, name)
        except (ValueError, artifacts.ArtifactError) as exc:
            self.skipped[name] = str(exc)
            self.say(f"{name}: skipped ({exc})")
            return
        maps_by_method = self.write_maps(name, model, spec, classes, methods)
        if measure_method is not None:
            maps_by_method.update(self.stored_maps(name, skip=list(maps_by_method)))
            self.measure(name, model, spec, maps_by_method, measure_method)
        for method, found in maps_by_method.items():  # the Shortcuts page's per-class mean maps
            means = class_mean_maps(found.maps, self.test.labels, self.test.heads, self.run.class_names)
            write_class_mean_maps(self.run.directory, name, method, means.classes, means.counts, means.maps,
                                  means.heads)
        clear_cache(model)  # the clone and traced views of a big model are not needed again
        del model


def audit_images(run: artifacts.Run) -> tuple[pd.DataFrame, str | None]:
    """``path`` (id), ``file``, ``split``, ``label`` of every image the audit hashes, or why not."""
    root = Path(run.dataset.root)
    if not run.dataset.root or not root.is_dir():
        return pd.DataFrame(), f"dataset folder {root} is not on this machine"
    table = run.split.assign(file=[root / p for p in run.split["path"]])
    if not run.is_evaluation:
        return table, None
    try:
        parent = run.parent_run()
        parent_split = artifacts.read_split(parent.directory)
    except artifacts.ArtifactError as exc:
        return table, f"the training run of {run.directory} cannot be read: {exc}"
    parent_root = Path(parent.dataset.root)
    if not parent.dataset.root or not parent_root.is_dir():
        return table, f"the training run's dataset folder {parent_root} is not on this machine"
    seen = parent_split[parent_split["split"].isin(["train", "val"])]
    table = pd.concat([
        seen.assign(file=[parent_root / p for p in seen["path"]], path=TRAINING_RUN_PREFIX + seen["path"].astype(str)),
        table,
    ], ignore_index=True)
    return table, None


def audit_run(run: artifacts.Run, test: TestSet, say: Say) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """The source probe on the test images, and duplicates over the run's splits (when its
    dataset folder is here) with metrics on the de-duplicated test set."""
    record: dict[str, Any] = {}
    probe = measures.source_probe_record(test.images, test.labels, test.heads)
    if probe is not None:
        record["source_probe"] = probe
    images_table, problem = audit_images(run)
    if problem:
        record["duplicates"] = {"skipped": problem}
        return record, None
    predictions = {model.name: model.predictions for model in run.usable_models()}
    record["duplicates"], pairs = measures.duplicates_record(images_table, test.ids, predictions,
                                                             run.class_names, say)
    return record, pairs


def analyze_run(
    run_dir: Path | str,
    methods: Sequence[str] = DEFAULT_METHODS,
    models: Sequence[str] | None = None,
    map_size: int | None = None,
    measure_method: str | None = DEFAULT_MEASURE_METHOD,
    progress: Say | None = logging.getLogger(__name__).info,
    seed: int = 0,
) -> dict[str, Any]:
    """Maps of ``methods`` and the shortcut measures of ``models`` (default: every model of
    the run), one model load each; writes test_heads.npz, the maps and ``shortcuts/``.

    ``map_size``: side of the stored maps (default ``min(64, image size)``);
    ``measure_method``: the maps the measures read (computed now or stored earlier; None:
    maps only, no ``shortcuts/``); ``progress``: called with one line per step (None: silent).
    Returns ``{"maps": {model: {method: path}}, "skipped": {model: reason}, "map_size": int,
    "shortcuts": the summary written or None, "seconds": float}``. A model that is not
    usable is skipped with its reason, a method that fails as ``"<method>: <error>"``.
    Raises ArtifactError for a run that cannot be read, ValueError for an unknown method or
    model name or a bad map size.
    """
    import tensorflow as tf

    say = progress or (lambda _line: None)
    started = time.perf_counter()
    run = artifacts.load_run(Path(run_dir))
    names = _check_choice(run, methods, models)
    size = default_map_size(run.image_size) if map_size is None else int(map_size)
    if size < 1:
        raise ValueError(f"map_size must be a positive number of pixels, got {map_size}")
    test = load_test_set(run)
    errors = (ValueError, TypeError, RuntimeError, MemoryError, tf.errors.OpError)
    analysis = _Analysis(run, test, size, say, errors, seed)
    for name in names:
        analysis.model(name, methods, measure_method)
    summary = None
    if measure_method is not None:
        summary = _write_summary(analysis, measure_method, say, started)
    refresh_model_cards(run_dir, say=say)  # an evaluation's: its training run's cards
    return {"maps": analysis.written, "skipped": analysis.skipped, "map_size": size, "shortcuts": summary,
            "seconds": round(time.perf_counter() - started, 2)}


def _write_summary(analysis: _Analysis, method: str, say: Say, started: float) -> dict[str, Any]:
    """The run's audit, then shortcuts/ with summary.json last; returns the summary as written."""
    audit_record, pairs = audit_run(analysis.run, analysis.test, say)
    boxes = analysis.test.boxes
    summary = artifacts.ShortcutSummary(
        method=method,
        models=analysis.records,
        skipped=analysis.measure_skipped,
        audit=audit_record,
        baselines={f"{b}/{g}": row.to_dict() for (b, g), row in analysis.baselines.iterrows()},
        thresholds=flags.thresholds(),
        has_boxes=boxes is not None and bool(np.isfinite(boxes).all(axis=1).any()),
        heads_not_found=analysis.test.heads_not_found,
        seconds=round(time.perf_counter() - started, 2),
    )
    artifacts.write_shortcuts(analysis.run.directory, summary, analysis.tables, pairs)
    return summary.to_json()
