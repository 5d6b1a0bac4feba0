"""The run contract as frozen dataclasses: what manifest.json holds, read and written in one place.

``from_json`` reads every format of the current major version (1.0 runs lack ``preprocess``,
``sessions``, ``distribution`` and the entries' ``recipe`` / ``augment`` / ``last_conv_layer``)
and keeps keys it does not know in ``other``, so rewriting a manifest of a newer minor version
loses nothing. ``to_json`` writes the keys of docs/artifacts.md. Facts stored twice on disk
for older readers (image size, augmentation) have one property here that every reader uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from bt_core.artifacts.errors import ArtifactError

if TYPE_CHECKING:  # imported lazily: it pulls in Keras
    from bt_core.models.registry import ModelSpec

FORMAT_VERSION = "1.7"

# Per-model status values in the manifest.
STATUS_PENDING = "pending"
STATUS_RUNNING = "running"
STATUS_DONE = "done"
STATUS_FAILED = "failed"
# The map the shortcut measures read unless told otherwise; a summary that names none measured it.
DEFAULT_SHORTCUT_METHOD = "gradcam"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def check_format_version(version: Any) -> None:
    """ArtifactError for a version that is not a number or of a newer major version."""
    supported_major = int(FORMAT_VERSION.split(".")[0])
    try:
        major = int(str(version).split(".")[0])
    except ValueError as exc:
        raise ArtifactError(f"format_version {version!r} is not a version number") from exc
    if major > supported_major:
        raise ArtifactError(
            f"run has artifact format {version}, newer than this code reads ({FORMAT_VERSION}); "
            "update the project (git pull) to open it"
        )


def _version_numbers(version: Any) -> tuple[int, int]:
    major, _, minor = str(version).partition(".")
    return int(major), int(minor or 0)


def check_writable_format(version: Any) -> None:
    """ArtifactError for a run this code may read but must not add to (resume, merge): any
    newer version, minor ones included, whose files and fields it would leave half-updated."""
    check_format_version(version)
    try:
        newer = _version_numbers(version) > _version_numbers(FORMAT_VERSION)
    except ValueError as exc:
        raise ArtifactError(f"format_version {version!r} is not a version number") from exc
    if newer:
        raise ArtifactError(
            f"run has artifact format {version}, newer than this code writes ({FORMAT_VERSION}); "
            "update the project (git pull) to continue it"
        )


def _known_and_other(cls: type, data: Mapping[str, Any], renamed: Mapping[str, str] = _EMPTY):
    """Split stored keys into the dataclass's fields (``renamed``: stored key -> field) and the rest."""
    names = {f.name for f in fields(cls)} - {"other"}
    known, other = {}, {}
    for key, value in data.items():
        name = renamed.get(key, key)
        if name in names:
            known[name] = value
        else:
            other[key] = value
    return known, other


def _as_size(value: Any) -> int | None:
    """A square size stored as an int or as a shape such as ``[224, 224, 3]``."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return None if value is None else int(value)


@dataclass(frozen=True)
class DatasetRecord:
    """The dataset a run was trained or evaluated on (manifest ``dataset``)."""

    name: str = ""
    root: str = ""
    layout: str = ""
    fingerprint: str | None = None
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    has_boxes: bool = False
    boxes: int = 0
    skipped: tuple[Mapping[str, str], ...] = ()
    other: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_loaded(cls, dataset: Any, splits: tuple[str, ...] | None = None) -> DatasetRecord:
        """The record of a ``bt_core.data.dataset.LoadedDataset``; ``splits`` limits the counts."""
        counts = dataset.counts()
        if splits is not None:
            counts = {split: counts[split] for split in splits}
        return cls(
            name=dataset.name,
            root=str(dataset.index.root),
            layout=dataset.index.layout,
            fingerprint=dataset.fingerprint,
            counts=counts,
            has_boxes=bool(len(dataset.boxes)),
            boxes=int(len(dataset.boxes)),
            skipped=tuple({"path": s.path, "reason": s.reason} for s in dataset.skipped),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> DatasetRecord:
        known, other = _known_and_other(cls, data or {})
        known["skipped"] = tuple(known.get("skipped") or ())
        known["counts"] = dict(known.get("counts") or {})
        return cls(**{k: v for k, v in known.items() if v is not None or k == "fingerprint"}, other=other)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "root": self.root, "layout": self.layout, "fingerprint": self.fingerprint,
            "counts": dict(self.counts), "has_boxes": self.has_boxes, "boxes": self.boxes,
            "skipped": [dict(s) for s in self.skipped], **self.other,
        }


@dataclass(frozen=True)
class Evaluation:
    """The ``evaluation`` block of an external evaluation's manifest."""

    of_run: str
    name: str
    mode: str
    data: str
    not_trained: tuple[str, ...] = ()
    negative_class: str | None = None
    # 1.7: at most this many images per class were scored (seeded with the run's seed); None: all.
    max_per_class: int | None = None
    other: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evaluation:
        known, other = _known_and_other(cls, data)
        known["not_trained"] = tuple(known.get("not_trained") or ())
        try:
            return cls(**known, other=other)
        except TypeError as exc:
            raise ArtifactError(f"the evaluation block is incomplete: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"of_run": self.of_run, "name": self.name, "mode": self.mode, "data": self.data}
        if self.negative_class is not None:
            data["negative_class"] = self.negative_class
        if self.max_per_class is not None:
            data["max_per_class"] = self.max_per_class
        return {**data, "not_trained": list(self.not_trained), **self.other}


@dataclass(frozen=True)
class ModelEntry:
    """One model's entry in ``models``; fields a status does not have are None.

    The fields of its :class:`~bt_core.models.registry.ModelSpec` (family, input_size,
    preprocessing, last_conv_layer, recipe) are stored flat, as in every format since 1.0.
    """

    name: str
    status: str = STATUS_PENDING
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    family: str | None = None
    weights: str | None = None
    input_size: int | None = None
    preprocessing: str | None = None
    last_conv_layer: str | None = None
    params_total: int | None = None
    params_trainable: int | None = None
    train_seconds: float | None = None
    inference_seconds: float | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    phases: tuple[str, ...] | None = None
    batch_size: int | None = None
    augment: str | None = None  # 1.1; readers use Manifest.augment_mode, the one answer
    recipe: Mapping[str, Any] | None = None  # 1.1
    from_run: str | None = None  # merged runs
    evaluated: str | None = None  # evaluations
    collapsed_from: tuple[str, ...] | None = None  # evaluations in tumor mode
    other: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def spec_fields(spec: ModelSpec) -> dict[str, Any]:
        """The entry fields that store ``spec`` (its name is the entry's key; its description
        stays in the registry)."""
        stored = spec.to_json()
        return {key: stored[key] for key in ("family", "input_size", "preprocessing", "last_conv_layer", "recipe")}

    @classmethod
    def from_json(cls, name: str, data: Any) -> ModelEntry:
        if not isinstance(data, Mapping):
            return cls(name=name, error=f"the manifest entry of {name} is not an object")
        known, other = _known_and_other(cls, data)
        known.pop("name", None)
        known["status"] = str(known.get("status") or STATUS_PENDING)
        known["input_size"] = _as_size(known.get("input_size"))
        for key in ("phases", "collapsed_from"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        return cls(name=name, **known, other=other)

    def to_json(self) -> dict[str, Any]:
        data = {"status": self.status}
        for item in fields(self):
            if item.name in ("name", "status", "other"):
                continue
            value = getattr(self, item.name)
            if value is not None or (item.name == "weights" and self.status == STATUS_DONE):
                data[item.name] = list(value) if isinstance(value, tuple) else value
        return {**data, **self.other}

    @property
    def is_done(self) -> bool:
        return self.status == STATUS_DONE

    @property
    def spec(self) -> ModelSpec | None:
        """The model's spec as the run stored it (None unless done); ArtifactError when the
        stored fields cannot make one."""
        if not self.is_done:
            return None
        import bt_core.models  # noqa: F401  registers the built-in models, whose builders a spec gets
        from bt_core.models.registry import ModelSpec

        stored = {key: getattr(self, key) for key in ("family", "input_size", "preprocessing", "last_conv_layer")}
        try:
            return ModelSpec.from_json({"name": self.name, **stored, "recipe": self.recipe})
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"the stored spec of model {self.name} cannot be used: {exc}") from exc


@dataclass(frozen=True)
class Manifest:
    """manifest.json of a run or of an evaluation (docs/artifacts.md)."""

    run_id: str
    class_names: tuple[str, ...]
    image_size: int | None = None  # one answer for the stored image_size, config img_size, entry input_size
    created: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)  # as stored; bt_core.runs.resume.config_from_manifest
    image_ops: tuple[str, ...] = ()  # stored as "preprocess" (1.1); () for 1.0
    dataset: DatasetRecord = field(default_factory=DatasetRecord)
    backend: str = ""
    device: str = ""
    distribution: Mapping[str, Any] | None = None  # 1.1
    versions: Mapping[str, Any] = field(default_factory=dict)
    timing: Mapping[str, Any] = field(default_factory=dict)
    sessions: tuple[Mapping[str, Any], ...] = ()  # 1.1
    merged: Mapping[str, Any] | None = None  # 1.1, merged runs
    evaluation: Evaluation | None = None  # 1.2, evaluations
    models: Mapping[str, ModelEntry] = field(default_factory=dict)
    format_version: str = FORMAT_VERSION
    other: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, where: Any = "the manifest") -> Manifest:
        """Read any format of this major version; ArtifactError for a newer major one, a
        manifest that names no classes or one whose values have the wrong types (a size that
        is no number, ``models`` that is no object, ...)."""
        if not isinstance(data, Mapping):
            raise ArtifactError(f"{where} does not hold a JSON object")
        check_format_version(data.get("format_version"))
        if not data.get("class_names"):
            raise ArtifactError(f"{where} names no classes")
        try:
            return cls._from_checked_json(data)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{where} is malformed: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def _from_checked_json(cls, data: Mapping[str, Any]) -> Manifest:
        known, other = _known_and_other(cls, data, renamed={"preprocess": "image_ops"})
        config = dict(known.get("config") or {})
        entries = {name: ModelEntry.from_json(name, entry) for name, entry in (known.get("models") or {}).items()}
        sizes = [known.get("image_size"), config.get("img_size"), *(e.input_size for e in entries.values())]
        evaluation = known.get("evaluation")
        return cls(
            run_id=str(known.get("run_id") or ""),
            class_names=tuple(str(name) for name in known["class_names"]),
            image_size=next((_as_size(size) for size in sizes if size is not None), None),
            created=str(known.get("created") or ""),
            config=config,
            image_ops=tuple(str(op) for op in (known.get("image_ops") or config.get("preprocess") or ())),
            dataset=DatasetRecord.from_json(known.get("dataset")),
            backend=str(known.get("backend") or ""),
            device=str(known.get("device") or ""),
            distribution=known.get("distribution"),
            versions=dict(known.get("versions") or {}),
            timing=dict(known.get("timing") or {}),
            sessions=tuple(known.get("sessions") or ()),
            merged=known.get("merged"),
            evaluation=Evaluation.from_json(evaluation) if evaluation else None,
            models=entries,
            format_version=str(known.get("format_version")),
            other=other,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format_version": self.format_version, "run_id": self.run_id, "created": self.created}
        if self.evaluation is not None:
            data["evaluation"] = self.evaluation.to_json()
        data.update(
            config=dict(self.config), class_names=list(self.class_names), image_size=self.image_size,
            preprocess=list(self.image_ops), dataset=self.dataset.to_json(), backend=self.backend,
            device=self.device,
        )
        if self.distribution is not None:
            data["distribution"] = dict(self.distribution)
        data.update(versions=dict(self.versions), timing=dict(self.timing))
        if self.sessions:
            data["sessions"] = [dict(session) for session in self.sessions]
        if self.merged is not None:
            data["merged"] = dict(self.merged)
        data["models"] = {name: entry.to_json() for name, entry in self.models.items()}
        return {**data, **self.other}

    @property
    def is_evaluation(self) -> bool:
        return self.evaluation is not None

    @property
    def augment_mode(self) -> str:
        """Where augmentation ran: the config's ``augment_mode``; a 1.0 run always augmented
        in numpy on the host, unless augmentation was off."""
        mode = self.config.get("augment_mode")
        if mode:
            return str(mode)
        return "numpy" if self.config.get("augment", True) else "none"


@dataclass(frozen=True)
class ShortcutSummary:
    """shortcuts/summary.json: the top-level keys typed, each model's record as stored."""

    models: Mapping[str, Mapping[str, Any]]
    created: str = ""
    method: str = DEFAULT_SHORTCUT_METHOD
    has_boxes: bool = False
    heads_not_found: int | None = None
    seconds: float | None = None
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    baselines: Mapping[str, Any] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)
    audit: Mapping[str, Any] = field(default_factory=dict)
    other: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, where: Any = "the summary") -> ShortcutSummary:
        if not isinstance(data, Mapping) or not isinstance(data.get("models"), Mapping):
            raise ArtifactError(f"{where} is not a shortcut summary")
        known, other = _known_and_other(cls, data)
        for key in ("thresholds", "baselines", "skipped", "audit"):
            # A damaged block reads as empty: the pages show what the rest of the summary holds.
            value = known.get(key)
            known[key] = dict(value) if isinstance(value, Mapping) else {}
        known["created"] = str(known.get("created") or "")
        known["method"] = str(known.get("method") or DEFAULT_SHORTCUT_METHOD)
        known["has_boxes"] = bool(known.get("has_boxes", False))
        return cls(**known, other=other)

    def to_json(self) -> dict[str, Any]:
        data = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "other"}
        data = {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in data.items()
                if value is not None}
        if not data["created"]:
            del data["created"]  # write_shortcuts stamps it
        return {**data, **self.other}
