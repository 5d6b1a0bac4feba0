"""What a study is: a grid of models x variants x seeds, each cell one ordinary run
(docs/studies.md). Declared in a small TOML file (:func:`load_spec`) or by flags
(:func:`spec_from_flags`); every mistake is one message naming the key (and the file)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from bt_core.training.config import RunConfig

# Letters, digits and _ . - only: a variant name is part of a run folder's name and of URLs.
VARIANT_NAME = re.compile(r"[A-Za-z0-9_.-]+")
VARIANT_NAME_MAX = 60
NO_VARIANT = "none"
# The study sets these per cell; a [settings] table or a variant may not.
CELL_SETTINGS = ("data", "models", "seed", "out", "run_id", "demo")
STUDY_KEYS = ("id", "data", "models", "seeds", "baseline", "explain")
TABLES = ("study", "settings", "variants", "evaluations", "resources")
EVALUATION_KEYS = ("name", "data", "max_per_class")
# RunConfig.data_seed of every cell unless [settings] or a variant sets it.
STUDY_DATA_SEED = 0


class ExternalEvaluation(NamedTuple):
    """A dataset folder every cell is scored on after training (bt_core.runs.evaluate)."""

    name: str
    data: str
    max_per_class: int | None = None  # at most this many images per class, seeded with the cell's seed

    def to_dict(self) -> dict[str, Any]:
        stored = {"name": self.name, "data": self.data}
        return stored if self.max_per_class is None else {**stored, "max_per_class": self.max_per_class}


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    cell_id: str
    model: str
    variant: str
    seed: int


def cell_id(model: str, variant: str, seed: int) -> str:
    return f"{model}__{variant}__s{seed}"


def setting_names() -> list[str]:
    """The RunConfig fields a study's settings and variants may set."""
    return [f.name for f in fields(RunConfig) if f.name not in CELL_SETTINGS]


def _field_type(name: str) -> str:
    return next(str(f.type) for f in fields(RunConfig) if f.name == name)


def _check_setting_name(name: str, where: str) -> None:
    if name in CELL_SETTINGS:
        raise ValueError(f"{where}: {name!r} is set by the study for each cell ([study] data, models, seeds), "
                         "not as a setting")
    if name not in setting_names():
        raise ValueError(f"{where}: unknown setting {name!r}; valid: {', '.join(setting_names())}")


def check_setting(name: str, value: Any, where: str) -> Any:
    """A TOML value of RunConfig field ``name``, normalised (lists -> tuples, "none" -> None
    where None is allowed); ValueError naming ``where`` for a value of the wrong type."""
    _check_setting_name(name, where)
    type_text = _field_type(name)
    optional = "None" in type_text
    base = type_text.replace("| None", "").strip()
    if optional and (value is None or (isinstance(value, str) and value.lower() == NO_VARIANT)):
        return None
    if base == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base == "bool" and isinstance(value, bool):
        return value
    if base == "str" and isinstance(value, str):
        return value
    if base.startswith("tuple") and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    expected = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
    raise ValueError(f"{where}: {name} must be {expected.get(base, 'a list of strings')}, got {value!r}")


def parse_setting_text(name: str, text: str, where: str) -> Any:
    """A ``key=value`` item of the variant mini-language, as the value RunConfig takes."""
    _check_setting_name(name, where)
    base = _field_type(name).replace("| None", "").strip()
    try:
        if base == "int":
            return check_setting(name, NO_VARIANT if text.lower() == NO_VARIANT else int(text), where)
        if base == "float":
            return check_setting(name, float(text), where)
        if base == "bool":
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if base.startswith("tuple"):
            return tuple(op for op in text.split("+") if op)
    except ValueError:
        raise ValueError(f"{where}: {name}={text!r} is not {'an integer' if base == 'int' else base}") from None
    return check_setting(name, text, where)


def check_variant_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name) or len(name) > VARIANT_NAME_MAX:
        raise ValueError(f"{where}: variant name {name!r} must be 1-{VARIANT_NAME_MAX} characters of letters, "
                         "digits and _ . -")
    return name


def variant_from_text(text: str, where: str = "--variants") -> Variant:
    """One variant of the mini-language: ``none``, or ``,``-separated items, each ``key=value``
    (a RunConfig setting) or image-op names joined by ``+`` (meaning ``preprocess``)."""
    text = text.strip()
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{where}: an empty variant (two ';' in a row?)")
    # "crop_head+clahe,img_size=128" -> "crop_head-clahe_img_size-128"
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", "_".join(items))
    if items == [NO_VARIANT]:
        return Variant(check_variant_name(name, where), {})
    overrides: dict[str, Any] = {}
    for item in items:
        if item == NO_VARIANT:
            raise ValueError(f"{where}: 'none' stands alone in a variant, not in {text!r}")
        key, equals, value = item.partition("=")
        if equals:
            overrides[key.strip()] = parse_setting_text(key.strip(), value.strip(), f"{where} {text!r}")
        else:
            overrides["preprocess"] = tuple(overrides.get("preprocess", ())) + tuple(op for op in item.split("+") if op)
    return Variant(check_variant_name(name, where), overrides)


def parse_seeds(text: str, where: str = "--seeds") -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a comma-separated list of integers") from None
    return seeds


@dataclass(frozen=True)
class StudySpec:
    study_id: str
    data: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    settings: dict = field(default_factory=dict)
    evaluations: tuple[tuple[str, str], ...] = ()
    baseline: str | None = None
    explain: bool = True
    resources: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.baseline is None and self.variants:
            object.__setattr__(self, "baseline", self.variants[0].name)

    def cells(self) -> list[Cell]:
        """Every cell, in a stable order: variant, then model, then seed."""
        return [Cell(cell_id(model, variant.name, seed), model, variant.name, seed)
                for variant in self.variants for model in self.models for seed in self.seeds]

    def cell(self, wanted: str) -> Cell:
        for one in self.cells():
            if one.cell_id == wanted:
                return one
        raise ValueError(f"study {self.study_id} has no cell {wanted!r}")

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def cell_config(self, cell: Cell, out: Path) -> RunConfig:
        """The cell's run: the shared settings, then its variant's overrides; one model, one
        seed, written to ``out / "runs" / cell_id`` (``out``: the study folder)."""
        from bt_core.artifacts.study import study_runs_dir

        # Every seed on the same images (sample and split) unless the study says otherwise:
        # seed-to-seed differences are then training noise, and flips compare the same test images.
        settings = {"data_seed": STUDY_DATA_SEED, **self.settings, **self.variant(cell.variant).overrides}
        return RunConfig(data=self.data, models=(cell.model,), seed=cell.seed, out=str(study_runs_dir(Path(out))),
                         run_id=cell.cell_id, **settings)

    def to_dict(self) -> dict[str, Any]:
        """The normalised spec as a JSON object (study.json's ``spec``)."""
        return {
            "study_id": self.study_id, "data": self.data, "models": list(self.models), "seeds": list(self.seeds),
            "variants": [{"name": v.name, "overrides": _plain(v.overrides)} for v in self.variants],
            "settings": _plain(self.settings), "evaluations": [e.to_dict() for e in self.evaluations],
            "baseline": self.baseline, "explain": self.explain, "resources": dict(self.resources),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySpec:
        where = "study.json spec"
        try:
            return cls._from_stored(data, where)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{where}: missing or malformed {exc}; the study folder is damaged") from None

    @classmethod
    def _from_stored(cls, data: dict[str, Any], where: str) -> StudySpec:
        return cls(
            study_id=data["study_id"], data=data["data"], models=tuple(data["models"]), seeds=tuple(data["seeds"]),
            variants=tuple(Variant(v["name"], _settings(v["overrides"], f"{where} variant {v['name']!r}"))
                           for v in data["variants"]),
            settings=_settings(data.get("settings", {}), f"{where} settings"),
            evaluations=tuple(ExternalEvaluation(e["name"], e["data"], e.get("max_per_class"))
                              for e in data.get("evaluations", [])),
            baseline=data.get("baseline"), explain=bool(data.get("explain", True)),
            resources=dict(data.get("resources", {})),
        )

    def to_toml_document(self) -> dict[str, Any]:
        """The spec in the TOML declaration's shape (study.toml; :func:`load_spec` reads it back)."""
        study = {"id": self.study_id, "data": self.data, "models": list(self.models), "seeds": list(self.seeds),
                 "baseline": self.baseline, "explain": self.explain}
        document: dict[str, Any] = {"study": study, "settings": _plain(self.settings, NO_VARIANT)}
        document["variants"] = [{"name": v.name, **_plain(v.overrides, NO_VARIANT)} for v in self.variants]
        if self.evaluations:
            document["evaluations"] = [e.to_dict() for e in self.evaluations]
        if self.resources:
            document["resources"] = dict(self.resources)
        return document

    def differences(self, other: StudySpec) -> list[str]:
        """The keys in which two specs differ (``settings.epochs``, ``variants``, ...); the
        resources only schedule, so they never make two studies different."""
        mine, theirs = self.to_dict(), other.to_dict()
        differing = []
        for key in mine:
            if key == "resources":
                continue
            if key == "settings":
                names = sorted(set(mine[key]) | set(theirs[key]))
                differing += [f"settings.{n}" for n in names if mine[key].get(n) != theirs[key].get(n)]
            elif mine[key] != theirs.get(key):
                differing.append(key)
        return differing


def _plain(settings: dict[str, Any], none: Any = None) -> dict[str, Any]:
    """JSON values (tuples as lists); ``none``: what None becomes (TOML has no null: "none")."""
    return {k: list(v) if isinstance(v, tuple) else none if v is None else v for k, v in settings.items()}


def _settings(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table of settings, got {table!r}")
    return {name: check_setting(name, value, f"{where}") for name, value in table.items()}


def _unknown_keys(table: dict[str, Any], known: Iterable[str], where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(known)}")


def check_spec(spec: StudySpec, where: str) -> StudySpec:
    """ValueError (naming ``where``) for a spec that cannot run: unknown models, no seeds,
    repeated or unknown variant names, a cell whose RunConfig is refused, or an unsafe id."""
    from bt_core.models.registry import list_models
    from bt_core.runs.merge import check_run_id

    try:
        check_run_id(spec.study_id)
    except ValueError:
        raise ValueError(f"{where}: study id {spec.study_id!r} is not a safe folder name (letters, digits, "
                         "'-', '_', '.', starting with a letter or digit)") from None
    if not spec.models:
        raise ValueError(f"{where}: models: name at least one model")
    if len(set(spec.models)) != len(spec.models):
        raise ValueError(f"{where}: models: name each model once, got {', '.join(spec.models)}")
    for label, folder in [("data", spec.data), *((f"evaluation {e.name!r} data", e.data) for e in spec.evaluations)]:
        if not Path(folder).is_dir():
            raise ValueError(f"{where}: {label}: no such folder {folder}")
    unknown = [m for m in spec.models if m not in list_models()]
    if unknown:
        raise ValueError(f"{where}: models: unknown model(s) {', '.join(unknown)}; valid: {', '.join(list_models())}")
    if not spec.seeds:
        raise ValueError(f"{where}: seeds: name at least one seed")
    if len(set(spec.seeds)) != len(spec.seeds) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                          for s in spec.seeds):
        raise ValueError(f"{where}: seeds: distinct integers, got {list(spec.seeds)}")
    if not spec.variants:
        raise ValueError(f"{where}: variants: name at least one variant")
    names = [v.name for v in spec.variants]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{where}: variants: duplicate variant name(s) {', '.join(repeated)}")
    if spec.baseline not in names:
        raise ValueError(f"{where}: baseline {spec.baseline!r} is not a variant; variants: {', '.join(names)}")
    from bt_core.runs.evaluate import check_evaluation_name

    evaluation_names = [check_evaluation_name(e.name) for e in spec.evaluations]
    if len(set(evaluation_names)) != len(evaluation_names):
        raise ValueError(f"{where}: evaluations: duplicate names in {evaluation_names}")
    for variant in spec.variants:
        first = Cell(cell_id(spec.models[0], variant.name, spec.seeds[0]), spec.models[0], variant.name, spec.seeds[0])
        try:
            check_run_id(first.cell_id)
        except ValueError:
            raise ValueError(f"{where}: variant {variant.name!r}: its cell id {first.cell_id!r} "
                             "is not a valid run folder name") from None
        try:
            spec.cell_config(first, Path("."))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: variant {variant.name!r}: {exc}") from None
    return spec


def _resources(table: Any, where: str) -> dict[str, Any]:
    """[resources], checked by the Ray scheduler's own rule (the sequential one ignores them)."""
    from bt_core.runs.study_ray import task_options

    if not isinstance(table, dict):
        raise ValueError(f"{where}: [resources] must be a table")
    try:
        task_options(table)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return dict(table)


def _resolve(path: Any, folder: Path, where: str) -> str:
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}: expected a folder path, got {path!r}")
    return str((folder / Path(path).expanduser()).resolve())


def load_spec(path: str | Path) -> StudySpec:
    """The study a TOML file declares (docs/studies.md); relative data paths are relative to
    the file's folder. ValueError naming the key and the file for any mistake."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no study file {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    folder, where = path.resolve().parent, str(path)
    _unknown_keys(document, TABLES, f"{where} (top level)")
    study = document.get("study")
    if not isinstance(study, dict):
        raise ValueError(f"{where}: a [study] table with data, models and seeds is required")
    _unknown_keys(study, STUDY_KEYS, f"{where} [study]")
    for key in ("data", "models", "seeds"):
        if key not in study:
            raise ValueError(f"{where} [study]: {key} is required")
    models, seeds = study["models"], study["seeds"]
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ValueError(f"{where} [study]: models must be a list of model names, got {models!r}")
    if not isinstance(seeds, list):
        raise ValueError(f"{where} [study]: seeds must be a list of integers, got {seeds!r}")
    variants = []
    for index, table in enumerate(document.get("variants", [{"name": NO_VARIANT}])):
        label = f"{where} [[variants]] #{index + 1}"
        if not isinstance(table, dict) or "name" not in table:
            raise ValueError(f"{label}: every variant needs a name")
        name = check_variant_name(table["name"], label)
        overrides = {k: v for k, v in table.items() if k != "name"}
        variants.append(Variant(name, _settings(overrides, f"{label} ({name})")))
    evaluations = []
    for index, table in enumerate(document.get("evaluations", [])):
        label = f"{where} [[evaluations]] #{index + 1}"
        _unknown_keys(table, EVALUATION_KEYS, label)
        if "name" not in table or "data" not in table:
            raise ValueError(f"{label}: name and data are required")
        cap = table.get("max_per_class")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"{label}: max_per_class must be a whole number >= 1, got {cap!r}")
        evaluations.append(ExternalEvaluation(str(table["name"]), _resolve(table["data"], folder, f"{label} data"), cap))
    explain = study.get("explain", True)
    if not isinstance(explain, bool):
        raise ValueError(f"{where} [study]: explain must be true or false, got {explain!r}")
    spec = StudySpec(
        study_id=str(study.get("id", path.stem)), data=_resolve(study["data"], folder, f"{where} [study] data"),
        models=tuple(models), seeds=tuple(seeds), variants=tuple(variants),
        settings=_settings(document.get("settings", {}), f"{where} [settings]"),
        evaluations=tuple(evaluations), baseline=study.get("baseline"), explain=explain,
        resources=_resources(document.get("resources", {}), where),
    )
    return check_spec(spec, where)


def spec_from_flags(data: str, models: Iterable[str], seeds_text: str | None, variants_text: str | None,
                    settings: dict[str, Any], study_id: str, explain: bool = True,
                    evaluations: Iterable[tuple[str, str]] = ()) -> StudySpec:
    """A study by flags: ``--seeds 0,1`` (default the one seed 42), ``--variants "none;crop_head"``
    (default the one variant ``none``), the shared ``settings`` as RunConfig values."""
    seeds = parse_seeds(seeds_text) if seeds_text else (42,)
    texts = (variants_text or NO_VARIANT).split(";")
    variants = tuple(variant_from_text(text) for text in texts)
    settings = {name: check_setting(name, value, "study settings")
                for name, value in settings.items() if value is not None}
    spec = StudySpec(study_id=study_id, data=str(Path(data).expanduser().resolve()), models=tuple(models),
                     seeds=seeds, variants=variants, settings=settings,
                     evaluations=tuple(ExternalEvaluation(n, str(Path(d).resolve())) for n, d in evaluations),
                     explain=explain)
    return check_spec(spec, "study flags")
