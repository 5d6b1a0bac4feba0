"""A study's declaration (TOML and flags), its cells, the study manifest and the study options;
no training here (tests/test_study_run.py trains)."""

import json
import re
import sys
from pathlib import Path

import pytest

from bt_core import artifacts as art
from bt_core.artifacts.errors import ArtifactError
from bt_core.artifacts.study import (
    CellRecord,
    StudyManifest,
    list_studies,
    load_study,
    write_study_manifest,
    write_study_spec,
)
from bt_core.cli import train_all, zoo
from bt_core.runs.study import scheduler_for
from bt_core.runs.study_spec import (
    Cell,
    StudySpec,
    Variant,
    load_spec,
    spec_from_flags,
    variant_from_text,
)

FULL = """
[study]
id = "mitigations"
data = "../data/mri"
models = ["simple_cnn", "cnn_bn"]
seeds = [0, 1, 2]
baseline = "none"
explain = false

[settings]
epochs = 8
img_size = 64
max_per_class = 250

[[variants]]
name = "crop_head"
preprocess = ["crop_head"]

[[variants]]
name = "none"

[[variants]]
name = "plain.aug"
augment_mode = "none"
weights = "none"

[[evaluations]]
name = "br35h"
data = "../data/br35h"
max_per_class = 50

[resources]
num_cpus = 1
num_gpus = 0
max_retries = 3
"""


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    folder = tmp_path / "specs"
    for data in (folder / "d", tmp_path / "data" / "mri", tmp_path / "data" / "br35h"):  # the specs' data folders
        data.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def minimal(extra: str = "", study: str = "") -> str:
    return f'[study]\ndata = "d"\nmodels = ["simple_cnn"]\nseeds = [0]\n{study}\n{extra}'


def test_a_full_declaration_is_read(tmp_path):
    path = write(tmp_path, FULL)
    spec = load_spec(path)
    assert spec.study_id == "mitigations"
    assert spec.data == str((tmp_path / "data" / "mri").resolve())  # relative to the TOML's folder
    assert spec.models == ("simple_cnn", "cnn_bn") and spec.seeds == (0, 1, 2)
    assert [v.name for v in spec.variants] == ["crop_head", "none", "plain.aug"]
    assert spec.variants[0].overrides == {"preprocess": ("crop_head",)}
    assert spec.variants[2].overrides == {"augment_mode": "none", "weights": None}
    assert spec.baseline == "none" and spec.explain is False
    assert spec.settings == {"epochs": 8, "img_size": 64, "max_per_class": 250}
    assert spec.evaluations == (("br35h", str((tmp_path / "data" / "br35h").resolve()), 50),)
    assert spec.resources == {"num_cpus": 1, "num_gpus": 0, "max_retries": 3}


def test_defaults_id_from_the_file_variant_none_baseline_first(tmp_path):
    spec = load_spec(write(tmp_path, minimal(), "my-study.toml"))
    assert spec.study_id == "my-study"
    assert spec.variants == (Variant("none", {}),)
    assert spec.baseline == "none" and spec.explain is True and spec.evaluations == ()


def test_cells_in_a_stable_order_with_their_ids(tmp_path):
    spec = load_spec(write(tmp_path, FULL))
    cells = spec.cells()
    assert len(cells) == 3 * 2 * 3
    assert cells[0] == Cell("simple_cnn__crop_head__s0", "simple_cnn", "crop_head", 0)
    assert [c.cell_id for c in cells[:4]] == ["simple_cnn__crop_head__s0", "simple_cnn__crop_head__s1",
                                              "simple_cnn__crop_head__s2", "cnn_bn__crop_head__s0"]
    assert cells[-1].cell_id == "cnn_bn__plain.aug__s2"
    assert len({c.cell_id for c in cells}) == len(cells)


def test_cell_config_is_settings_then_variant_then_model_and_seed(tmp_path):
    spec = load_spec(write(tmp_path, FULL))
    cell = spec.cell("cnn_bn__plain.aug__s2")
    config = spec.cell_config(cell, tmp_path / "out" / "mitigations")
    assert config.models == ("cnn_bn",) and config.seed == 2
    assert config.out == str(tmp_path / "out" / "mitigations" / "runs") and config.run_id == cell.cell_id
    assert (config.epochs, config.img_size, config.max_per_class) == (8, 64, 250)
    assert config.augment_mode == "none" and config.augment is False and config.preprocess == ()
    assert spec.cell_config(spec.cell("simple_cnn__crop_head__s0"), tmp_path).preprocess == ("crop_head",)


@pytest.mark.parametrize("text, message", [
    (minimal("[extras]\na = 1"), r"study.toml \(top level\): unknown key\(s\) extras"),
    (minimal(study="colour = 1"), r"\[study\]: unknown key\(s\) colour"),
    (minimal().replace('"simple_cnn"', '"no_such_net"'), r"study.toml: models: unknown model\(s\) no_such_net"),
    (minimal("[settings]\nepoch = 3"), r"\[settings\]: unknown setting 'epoch'"),
    (minimal("[settings]\nseed = 3"), r"\[settings\]: 'seed' is set by the study"),
    (minimal("[settings]\nepochs = \"8\""), r"\[settings\]: epochs must be an integer, got '8'"),
    (minimal('[[variants]]\nname = "a"\n[[variants]]\nname = "a"'), r"duplicate variant name\(s\) a"),
    (minimal('[[variants]]\nname = "a b"'), r"\[\[variants\]\] #1: variant name 'a b' must be"),
    (minimal('[[variants]]\nname = "x"\nlr = 1'), r"\[\[variants\]\] #1 \(x\): unknown setting 'lr'"),
    (minimal('[[variants]]\nname = "x"\nepochs = 0'), r"variant 'x': epochs must be at least 1"),
    (minimal('[[variants]]\nname = "x"\npreprocess = ["blur"]'), r"variant 'x': unknown preprocessing op"),
    (minimal().replace("seeds = [0]", "seeds = []"), r"study.toml: seeds: name at least one seed"),
    (minimal(study='baseline = "crop"'), r"baseline 'crop' is not a variant; variants: none"),
    (minimal("[resources]\ngpus = 1"), r"study.toml: unknown \[resources\] key 'gpus'"),
    (minimal("[resources]\nnum_gpus = -1"), r"study.toml: \[resources\] num_gpus must be a number >= 0"),
    (minimal('[[evaluations]]\nname = "e"'), r"\[\[evaluations\]\] #1: name and data are required"),
    (minimal('[[evaluations]]\nname = "e"\ndata = "nowhere"'), r"evaluation 'e' data: no such folder .*nowhere"),
    (minimal('[[evaluations]]\nname = "../up"\ndata = "."'), r"evaluation name"),
    ('[study]\ndata = "missing"\nmodels = ["simple_cnn"]\nseeds = [0]', r"data: no such folder .*missing"),
    ('[study]\ndata = "d"\nmodels = ["cnn_bn", "cnn_bn"]\nseeds = [0]', r"models: name each model once, got cnn_bn, cnn_bn"),
    (minimal('[[evaluations]]\nname = "e"\ndata = "."\nmax_per_class = 0'),
     r"\[\[evaluations\]\] #1: max_per_class must be a whole number >= 1, got 0"),
    ('[study]\nmodels = ["simple_cnn"]\nseeds = [0]', r"\[study\]: data is required"),
    ("[settings]\nepochs = 1", r"a \[study\] table with data, models and seeds is required"),
    ("[study\n", r"not valid TOML"),
])
def test_every_mistake_is_one_message_naming_the_key_and_the_file(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_spec(write(tmp_path, text))


def test_a_missing_study_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no study file .*nowhere.toml"):
        load_spec(tmp_path / "nowhere.toml")


@pytest.mark.parametrize("text, name, overrides", [
    ("none", "none", {}),
    ("crop_head", "crop_head", {"preprocess": ("crop_head",)}),
    ("crop_head+clahe", "crop_head-clahe", {"preprocess": ("crop_head", "clahe")}),
    ("crop_head+clahe,img_size=128", "crop_head-clahe_img_size-128", {"preprocess": ("crop_head", "clahe"),
                                                                      "img_size": 128}),
    ("split=grouped", "split-grouped", {"split": "grouped"}),
    ("weights=imagenet", "weights-imagenet", {"weights": "imagenet"}),
    ("weights=none, augment_mode=none", "weights-none_augment_mode-none", {"weights": None, "augment_mode": "none"}),
    ("max_per_class=none", "max_per_class-none", {"max_per_class": None}),
    ("val_fraction=0.2", "val_fraction-0.2", {"val_fraction": 0.2}),
])
def test_the_variant_mini_language(text, name, overrides):
    assert variant_from_text(text) == Variant(name, overrides)


@pytest.mark.parametrize("text, message", [
    ("img_size=big", r"img_size='big' is not an integer"),
    ("colour=red", r"unknown setting 'colour'"),
    ("seed=3", r"'seed' is set by the study"),
    ("none,crop_head", r"'none' stands alone"),
    ("x" * 61, r"must be 1-60 characters"),
])
def test_bad_variant_text_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        variant_from_text(text)


def test_a_study_by_flags(tmp_path):
    spec = spec_from_flags(str(tmp_path), ["simple_cnn", "cnn_bn"], "0,1", "none;crop_head",
                           {"epochs": 2, "img_size": 32, "batch_size": None}, "by-flags", explain=False)
    assert spec.data == str(tmp_path.resolve()) and spec.seeds == (0, 1) and spec.baseline == "none"
    assert spec.settings == {"epochs": 2, "img_size": 32}  # None: not chosen
    assert [c.cell_id for c in spec.cells()][:3] == ["simple_cnn__none__s0", "simple_cnn__none__s1",
                                                     "cnn_bn__none__s0"]
    only_seeds = spec_from_flags(str(tmp_path), ["simple_cnn"], "3,4", None, {}, "s")
    assert only_seeds.variants == (Variant("none", {}),) and only_seeds.seeds == (3, 4)


@pytest.mark.parametrize("seeds, variants, message", [
    ("0,x", None, r"--seeds: '0,x' is not a comma-separated list of integers"),
    ("0,0", None, r"seeds: distinct integers"),
    ("0", "none;none", r"duplicate variant name\(s\) none"),
    ("0", "none;;crop_head", r"an empty variant"),
])
def test_bad_flags_are_refused(tmp_path, seeds, variants, message):
    with pytest.raises(ValueError, match=message):
        spec_from_flags(str(tmp_path), ["simple_cnn"], seeds, variants, {}, "s")


def test_spec_round_trips_through_json_and_toml(tmp_path):
    spec = load_spec(write(tmp_path, FULL))
    assert StudySpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    write_study_spec(tmp_path / "stored", spec.to_toml_document())
    assert load_spec(tmp_path / "stored" / art.study.STUDY_SPEC) == spec  # study.toml reads back the same


def test_differences_name_the_keys(tmp_path):
    spec = load_spec(write(tmp_path, FULL))
    other = StudySpec.from_dict({**spec.to_dict(), "settings": {"epochs": 9, "img_size": 64, "max_per_class": 250},
                                 "seeds": [0, 1], "resources": {"num_gpus": 1}})
    assert spec.differences(other) == ["seeds", "settings.epochs"]  # resources only schedule


def manifest(study_id: str, created: str, statuses=("done", "failed", "pending")) -> StudyManifest:
    cells = tuple(CellRecord(f"simple_cnn__none__s{i}", "simple_cnn", "none", i, f"runs/simple_cnn__none__s{i}",
                             status, "RuntimeError: boom" if status == "failed" else None, int(status != "pending"),
                             1.5 if status != "pending" else None, created if status != "pending" else None)
                  for i, status in enumerate(statuses))
    return StudyManifest(study_id, created, {"study_id": study_id, "baseline": "none"}, "sequential", cells)


def test_study_manifest_round_trip_and_contract_keys(tmp_path):
    written = manifest("a", "2026-01-02T00:00:00+00:00")
    write_study_manifest(tmp_path / "a", written)
    raw = json.loads((tmp_path / "a" / "study.json").read_text())
    assert raw["kind"] == "study" and raw["study_format_version"] == "1.0" and raw["scheduler"] == "sequential"
    assert set(raw["cells"][0]) == {"cell_id", "model", "variant", "seed", "run", "status", "reason", "attempts",
                                    "seconds", "finished"}
    loaded = load_study(tmp_path / "a")
    assert loaded == written and loaded.baseline == "none"
    assert (loaded.count("done"), loaded.count("failed"), loaded.count("pending")) == (1, 1, 1)


def test_a_newer_study_format_is_refused_an_older_minor_read(tmp_path):
    raw = manifest("a", "2026-01-02T00:00:00+00:00").to_json()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "study.json").write_text(json.dumps({**raw, "study_format_version": "2.0"}))
    with pytest.raises(ArtifactError, match=r"study has format 2.0, newer than this code reads \(1.0\); "
                                            r"update the project"):
        load_study(tmp_path / "a")
    (tmp_path / "a" / "study.json").write_text(json.dumps({**raw, "study_format_version": "1.9"}))
    assert load_study(tmp_path / "a").study_id == "a"


def test_list_studies_newest_first_broken_listed_never_raising(tmp_path):
    write_study_manifest(tmp_path / "old", manifest("old", "2026-01-01T00:00:00+00:00"))
    write_study_manifest(tmp_path / "new", manifest("new", "2026-03-01T00:00:00+00:00", ("done", "done")))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "study.json").write_text("{")
    (tmp_path / "a-run").mkdir()
    (tmp_path / "a-run" / "manifest.json").write_text("{}")  # a run, not a study: not listed
    studies = art.list_studies(tmp_path)
    assert [s.study_id for s in studies] == ["new", "old", "broken"]
    assert (studies[0].cells, studies[0].done, studies[0].failed, studies[0].error) == (2, 2, 0, None)
    assert studies[2].error and "unreadable" in studies[2].error
    assert list_studies(tmp_path / "absent") == []
    with pytest.raises(ArtifactError, match="is not a study folder"):
        load_study(tmp_path / "a-run")


def test_ray_scheduler_without_ray_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ValueError, match=r"pip install 'brain-tumor-zoo\[ray\]'"):
        scheduler_for("ray")
    with pytest.raises(ValueError, match="unknown scheduler 'slurm'"):
        scheduler_for("slurm")


@pytest.mark.parametrize("zoo_argv, train_all_argv", [
    (["study", "s.toml", "--resume", "--scheduler", "ray", "--ray-address", "auto"],
     ["--study", "s.toml", "--resume", "--scheduler", "ray", "--ray-address", "auto"]),
    (["study", "--data", "D", "--models", "a", "--seeds", "0,1", "--variants", "none;crop_head", "--epochs", "2",
      "--study-id", "x", "--no-explain"],
     ["--data", "D", "--models", "a", "--seeds", "0,1", "--variants", "none;crop_head", "--epochs", "2",
      "--study-id", "x", "--no-explain"]),
])
def test_bt_zoo_study_runs_train_all_with_the_same_settings(zoo_argv, train_all_argv):
    namespace = vars(zoo._train_all_namespace(zoo.build_parser().parse_args(zoo_argv)))
    namespace.pop("command")
    assert namespace == vars(train_all.parse_args(train_all_argv))


@pytest.mark.parametrize("argv, message", [
    (["--study", "s.toml", "--data", "d"], "--study STUDY_TOML declares the data"),
    (["--data", "d", "--scheduler", "ray"], "--scheduler and --ray-address belong to a study"),
    (["--seeds", "0,1", "--explain", "run"], "a study .* trains its own runs"),
])
def test_study_options_that_do_not_go_together(capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        train_all.parse_args(argv)
    assert stopped.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_damaged_stored_spec_is_one_message():
    with pytest.raises(ValueError, match=r"study.json spec: missing or malformed 'study_id'; the study folder is damaged"):
        StudySpec.from_dict({"data": "x"})
