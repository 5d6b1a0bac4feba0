"""The typed run contract: manifests of every 1.x format, the model spec that travels with a run,
links that fall back to copies, and the retired config setting."""

import json
import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bt_core import artifacts as art
from bt_core import cli
from bt_core.models import ModelSpec, create_model, get_spec, list_models
from bt_core.models import registry
from bt_core.runs.resume import config_from_manifest, stored_config
from bt_core.training.config import RunConfig

CLASSES = ["glioma", "notumor"]
SIZE = 32
IDS = ["test/glioma/a.png", "test/notumor/b.png", "test/glioma/c.png"]


def _write_tables(writer: art.RunWriter, models=("simple_cnn",)) -> None:
    """A split, three test images and one finished model's tables."""
    split = pd.DataFrame({"path": IDS, "split": "test", "label": ["glioma", "notumor", "glioma"]})
    writer.write_split(split)
    writer.write_test_images(np.zeros((3, SIZE, SIZE, 3), np.uint8), IDS)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    for name in models:
        writer.write_predictions(name, art.predictions_frame(IDS, split["label"], proba, CLASSES))
        writer.write_metrics(name, {"accuracy": 2 / 3})
        writer.write_history(name, pd.DataFrame([[1, "scratch", 1.0, 0.5, 1.1, 0.4, 1e-3]],
                                                columns=art.HISTORY_COLUMNS))


def fabricate_v10_run(run_dir):
    """A run as format 1.0 wrote it: no preprocess, sessions, distribution; a config with the
    retired ``extra`` and no ``augment_mode``; an entry without recipe, augment, last_conv_layer."""
    writer = art.RunWriter(run_dir, {
        "format_version": "1.0", "run_id": run_dir.name, "created": "2024-01-01T00:00:00+00:00",
        "config": {"data": "data/old", "models": ["simple_cnn"], "epochs": 2, "img_size": SIZE, "seed": 1,
                   "augment": True, "extra": {"note": "old"}},
        "class_names": CLASSES, "image_size": SIZE,
        "dataset": {"name": "old", "root": "data/old", "layout": "pool", "fingerprint": "abc",
                    "counts": {"test": {"glioma": 2, "notumor": 1}}, "skipped": []},
        "backend": "tensorflow", "device": "CPU", "versions": {"python": "3.11"},
        "timing": {"started": "2024-01-01T00:00:00+00:00", "seconds": 10.0},
        "models": {"simple_cnn": {"status": "running"}},
    })
    _write_tables(writer)
    writer.set_model_status("simple_cnn", art.STATUS_DONE, family="custom", input_size=SIZE,
                            preprocessing="rescale", params_total=10, epochs_run=1, best_epoch=1)
    return run_dir


def fabricate_v12_run(run_dir, image_ops=("crop_head",)):
    """A run as format 1.2 writes it (built through Manifest), with test boxes of two images."""
    spec = replace(get_spec("simple_cnn"), input_size=SIZE)
    config = RunConfig(data="data/new", models=("simple_cnn", "cnn_bn"), img_size=SIZE, preprocess=image_ops)
    manifest = art.Manifest(
        run_id=run_dir.name, class_names=tuple(CLASSES), image_size=SIZE, created="2026-01-01T00:00:00+00:00",
        config=config.to_dict(), image_ops=config.preprocess,
        dataset=art.DatasetRecord(name="new", root="data/new", layout="kaggle", fingerprint="def", has_boxes=True,
                                  boxes=2),
        backend="tensorflow", device="CPU", distribution={"strategy": "single device", "devices": 1},
        timing={"seconds": 1.0}, sessions=({"started": "2026-01-01T00:00:00+00:00", "trained": ["simple_cnn"]},),
        models={"simple_cnn": art.ModelEntry("simple_cnn"), "cnn_bn": art.ModelEntry("cnn_bn")},
    )
    writer = art.RunWriter(run_dir, manifest)
    _write_tables(writer)
    writer.set_model_status("simple_cnn", art.STATUS_DONE, weights=None, **art.ModelEntry.spec_fields(spec),
                            augment="device")
    writer.set_model_status("cnn_bn", art.STATUS_FAILED, error="MemoryError: out of memory")
    boxes = pd.DataFrame({"x_min": [0.1, 0.5], "y_min": [0.2, 0.5], "x_max": [0.3, 0.9], "y_max": [0.4, 1.0]},
                         index=pd.Index([IDS[2], IDS[0]], name="path"))
    writer.write_test_boxes(boxes, IDS)
    return run_dir


def test_a_format_1_0_run_reads_with_the_later_fields_defaulted(tmp_path):
    run = art.load_run(fabricate_v10_run(tmp_path / "old"))
    assert run.image_size == SIZE and run.image_ops == ()
    assert run.augment_mode == "numpy"  # 1.0 augmented on the host
    config = config_from_manifest(run.typed_manifest)
    assert config.augment_mode == "numpy" and not hasattr(config, "extra")
    assert stored_config(run.directory) == config
    assert run.typed_manifest.sessions == () and run.typed_manifest.distribution is None
    spec = run.models["simple_cnn"].entry.spec
    assert spec.last_conv_layer is None  # not recorded: explain picks its default layer
    assert spec.recipe == get_spec("simple_cnn").recipe and spec.builder is get_spec("simple_cnn").builder
    assert (spec.input_size, spec.preprocessing, spec.family) == (SIZE, "rescale", "custom")
    assert run.test_boxes() is None and run.parent_run() is None and not run.is_evaluation
    assert run.dataset.name == "old" and run.dataset.has_boxes is False and run.dataset.skipped == ()


def test_a_format_1_2_run_answers_what_pages_ask(tmp_path):
    run = art.load_run(fabricate_v12_run(tmp_path / "new"))
    assert run.image_size == SIZE and run.image_ops == ("crop_head",)
    assert config_from_manifest(run.typed_manifest) == RunConfig(data="data/new", models=("simple_cnn", "cnn_bn"), img_size=SIZE,
                                   preprocess=("crop_head",))
    boxes = run.test_boxes()
    np.testing.assert_allclose(boxes[0], [0.5, 0.5, 0.9, 1.0])
    assert np.isnan(boxes[1]).all()
    np.testing.assert_allclose(boxes[2], [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(run.test_boxes([IDS[2]]), [[0.1, 0.2, 0.3, 0.4]])
    assert run.entry("simple_cnn").spec == replace(get_spec("simple_cnn"), input_size=SIZE)
    assert run.entry("cnn_bn").spec is None and run.entry("cnn_bn").error == "MemoryError: out of memory"
    assert run.models["simple_cnn"].entry == run.entry("simple_cnn")
    with pytest.raises(art.ArtifactError, match="no model 'vgg16'"):
        run.entry("vgg16")
    assert run.class_names == CLASSES and run.dataset.fingerprint == "def"


def test_an_evaluation_finds_its_training_run_through_the_layout(tmp_path):
    parent = fabricate_v12_run(tmp_path / "run")
    folder = art.evaluation_dir(parent, "ext")
    manifest = replace(art.load_manifest(parent), run_id="run/evaluations/ext",
                       evaluation=art.Evaluation(of_run="run", name="ext", mode="classes", data="/data/ext"))
    _write_tables(art.RunWriter(folder, manifest))
    evaluation = art.load_run(folder)
    assert evaluation.is_evaluation and evaluation.evaluation.of_run == "run"
    assert evaluation.parent_run().directory == parent and evaluation.parent_run().run_id == "run"
    assert art.training_run_dir(folder) == parent and art.training_run_dir(parent) is None
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    with pytest.raises(art.ArtifactError, match="no training run holds it"):
        art.load_run(moved).parent_run()


def test_manifest_json_round_trips_and_keeps_fields_of_a_newer_minor_version(tmp_path):
    run_dir = fabricate_v12_run(tmp_path / "new")
    stored = json.loads(art.manifest_path(run_dir).read_text())
    assert art.Manifest.from_json(stored).to_json() == stored
    stored["format_version"] = "1.9"
    stored["future_block"] = {"a": 1}
    stored["models"]["simple_cnn"]["future_field"] = 3
    stored["dataset"]["future_count"] = 4
    again = art.Manifest.from_json(stored).to_json()
    assert again == stored and list(again)[-1] == "future_block"


def test_the_one_image_size_and_augmentation_come_from_older_places_when_needed():
    base = {"format_version": "1.0", "class_names": CLASSES}
    assert art.Manifest.from_json({**base, "config": {"img_size": 96}}).image_size == 96
    entry_only = {**base, "models": {"m": {"status": "done", "input_size": [64, 64, 3]}}}
    assert art.Manifest.from_json(entry_only).image_size == 64
    assert art.Manifest.from_json(base).image_size is None
    assert art.Manifest.from_json({**base, "config": {"augment": False}}).augment_mode == "none"
    assert art.Manifest.from_json({**base, "config": {"augment_mode": "device"}}).augment_mode == "device"
    assert art.Manifest.from_json({**base, "config": {"preprocess": ["clahe"]}}).image_ops == ("clahe",)


def test_a_newer_minor_run_with_an_unknown_setting_opens_but_is_not_resumed(tmp_path, capsys):
    run_dir = fabricate_v12_run(tmp_path / "r_current")
    stored = json.loads(art.manifest_path(run_dir).read_text())
    stored["format_version"] = art.FORMAT_VERSION  # a setting this version does not know
    stored["config"]["turbo"] = True
    art.write_json(art.manifest_path(run_dir), stored)
    run = art.load_run(run_dir)
    assert run.typed_manifest.config["turbo"] is True and run.manifest["config"]["turbo"] is True
    shown = config_from_manifest(run.typed_manifest, strict=False)  # to show its settings
    assert shown == RunConfig(data="data/new", models=("simple_cnn", "cnn_bn"), img_size=SIZE,
                              preprocess=("crop_head",))
    assert RunConfig.unknown_settings(dict(run.typed_manifest.config)) == ["turbo"]
    assert cli.main(["--resume", str(run_dir), "--no-explain"]) == 2
    error = capsys.readouterr().err
    assert f"{run_dir}: the stored config cannot be used" in error
    assert "does not know: ['turbo'] (written by a newer version)" in error
    assert art.load_manifest(run_dir).models["cnn_bn"].status == art.STATUS_FAILED  # nothing retrained


@pytest.mark.parametrize("broken", [
    {"image_size": "abc"},
    {"models": ["simple_cnn"]},
    {"evaluation": ["run"]},
    {"models": {"simple_cnn": {"status": "done", "input_size": "big"}}},
    {"dataset": ["d"]},
])
def test_a_malformed_manifest_is_an_artifact_error_and_list_runs_lists_it_beside_the_others(tmp_path, broken):
    fabricate_v12_run(tmp_path / "good")
    bad = fabricate_v12_run(tmp_path / "bad")
    stored = json.loads(art.manifest_path(bad).read_text())
    art.write_json(art.manifest_path(bad), {**stored, **broken})
    with pytest.raises(art.ArtifactError, match="is malformed"):
        art.load_manifest(bad)
    runs = {summary.run_id: summary for summary in art.list_runs(tmp_path)}
    assert set(runs) == {"good", "bad"} and runs["good"].error is None and runs["good"].model_count == 2
    assert "is malformed" in runs["bad"].error and runs["bad"].model_count == 0


def test_manifests_of_a_newer_major_version_or_without_classes_are_refused():
    with pytest.raises(art.ArtifactError, match=r"run has artifact format 2\.0, newer than this code reads"):
        art.Manifest.from_json({"format_version": "2.0", "class_names": CLASSES})
    with pytest.raises(art.ArtifactError, match="names no classes"):
        art.Manifest.from_json({"format_version": "1.2", "class_names": []})
    with pytest.raises(art.ArtifactError, match="not a version number"):
        art.Manifest.from_json({"format_version": "new", "class_names": CLASSES})


@pytest.mark.parametrize("name", list_models())
def test_every_registered_spec_round_trips_through_json(name):
    spec = get_spec(name)
    stored = json.loads(json.dumps(spec.to_json()))  # what a manifest holds
    assert ModelSpec.from_json(stored) == spec and ModelSpec.from_json(stored).builder is spec.builder


def test_stored_spec_values_win_and_an_unregistered_spec_cannot_build(monkeypatch):
    stored = {**get_spec("vgg16").to_json(), "input_size": 64, "last_conv_layer": "block4_conv3",
              "recipe": {"learning_rate": 0.5, "field_of_a_newer_format": 1}}
    spec = ModelSpec.from_json(stored)
    assert (spec.input_size, spec.last_conv_layer, spec.recipe.learning_rate) == (64, "block4_conv3", 0.5)
    assert spec.recipe.batch_size == get_spec("vgg16").recipe.batch_size
    ghost = ModelSpec.from_json({**stored, "name": "ghost"})
    assert ghost.builder is None and ghost.preprocessing == get_spec("vgg16").preprocessing
    monkeypatch.setitem(registry._REGISTRY, "ghost", ghost)
    with pytest.raises(ValueError, match="has no builder"):
        create_model("ghost", 2)
    with pytest.raises(ValueError, match="lacks family"):
        ModelSpec.from_json({"name": "ghost2", "input_size": 64, "preprocessing": "rescale"})


def test_an_entry_whose_stored_spec_is_unusable_says_so():
    entry = art.ModelEntry.from_json("ghost", {"status": "done", "input_size": 64, "preprocessing": "rescale"})
    with pytest.raises(art.ArtifactError, match="stored spec of model ghost"):
        entry.spec


def test_link_or_copy_copies_when_links_fail(tmp_path, monkeypatch):
    source = tmp_path / "a" / "model.keras"
    source.parent.mkdir()
    source.write_bytes(b"\x00weights\xff" * 100)

    def no_links(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "b" / "model.keras"
    art.link_or_copy(source, target)
    assert target.read_bytes() == source.read_bytes() and not os.path.samefile(source, target)


def test_link_or_copy_links_where_it_can(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n")
    art.link_or_copy(source, tmp_path / "sub" / "b.csv")
    assert os.path.samefile(source, tmp_path / "sub" / "b.csv")


def test_the_retired_extra_setting_is_dropped_and_unknown_ones_refused():
    assert RunConfig.from_dict({"data": "d", "extra": {"a": 1}}) == RunConfig(data="d")
    assert "extra" not in RunConfig(data="d").to_dict()
    with pytest.raises(ValueError, match=r"settings this code does not know: \['turbo'\]"):
        RunConfig.from_dict({"data": "d", "turbo": True})


def test_shortcut_summary_reads_its_top_level_keys_and_refuses_other_json(tmp_path):
    summary = {"method": "gradcam", "has_boxes": True, "heads_not_found": 2, "thresholds": {"border": 0.3},
               "baselines": {}, "skipped": {"m2": "no maps"}, "audit": {"skipped": "no data"},
               "models": {"m": {"score": 0.5}}, "seconds": 1.5}
    art.write_shortcuts(tmp_path, art.ShortcutSummary.from_json(summary), {}, None)
    typed = art.ShortcutSummary.from_json(art.load_shortcuts(tmp_path))
    assert (typed.method, typed.has_boxes, typed.heads_not_found, typed.skipped) == ("gradcam", True, 2,
                                                                                    {"m2": "no maps"})
    assert typed.created and art.load_shortcuts(tmp_path) == {"created": typed.created, **summary}
    assert art.load_shortcuts(tmp_path / "none") is None
    art.write_json(art.shortcut_summary_path(tmp_path), {"models": []})
    with pytest.raises(art.ArtifactError, match="is not a shortcut summary"):
        art.load_shortcuts(tmp_path)
    assert art.shortcut_images_path(tmp_path, "m") == tmp_path / "shortcuts" / "models" / "m.csv"
