"""train_all.py end to end: the documented artifacts, under TensorFlow and under JAX."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bt_core import cli
from bt_core.cli import zoo
from bt_core import artifacts as art
from bt_core.metrics import metrics_from_predictions
from bt_core.models import create_model, get_spec
from bt_core.data.preprocess import preprocess_batch
from imagefolders import CLASSES, make_kaggle, make_pool

ROOT = Path(__file__).resolve().parents[1]


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def check_run(run_dir: Path, models: list[str], backend: str) -> art.Run:
    run = art.load_run(run_dir)
    manifest = run.manifest
    assert manifest["format_version"] == art.FORMAT_VERSION
    assert manifest["backend"] == backend
    assert run.class_names == list(CLASSES)
    for key in ("config", "dataset", "versions", "device", "timing", "created"):
        assert manifest[key], key
    assert manifest["dataset"]["fingerprint"] and manifest["timing"]["seconds"] > 0
    assert set(run.split["split"]) == {"train", "val", "test"}
    images, ids = art.load_test_images(run_dir)
    test_ids = run.split.loc[run.split["split"] == "test", "path"].tolist()
    assert ids.tolist() == test_ids
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
    for name in models:
        model = run.models[name]
        assert model.usable, model.error
        assert model.info["status"] == art.STATUS_DONE
        assert model.info["params_trainable"] > 0 and model.info["epochs_run"] >= 1
        assert model.predictions["id"].tolist() == test_ids  # every model scored on the same images
        assert model.metrics["accuracy"] == pytest.approx(
            metrics_from_predictions(model.predictions, run.class_names)["accuracy"]
        )
        assert list(model.history.columns) == art.HISTORY_COLUMNS
        assert len(model.history) == model.info["epochs_run"]
        assert model.model_path.is_file()
    return run


def test_cli_trains_a_kaggle_folder_under_tensorflow(tmp_path):
    data = make_kaggle(tmp_path / "data", train_per_class=24, test_per_class=6, size=40)
    (data / "Training" / "glioma" / "corrupt.jpg").write_bytes(b"garbage")
    out = tmp_path / "artifacts"
    code = cli.main(
        ["--data", str(data), "--models", "simple_cnn,cnn_bn", "--epochs", "2", "--img-size", "32",
         "--out", str(out), "--seed", "42", "--batch-size", "16", "--preprocess", "crop_head,clahe",
         "--augment", "numpy"]
    )
    assert code == 0
    run = check_run(only_run(out), ["simple_cnn", "cnn_bn"], "tensorflow")
    assert run.manifest["preprocess"] == ["crop_head", "clahe"] == run.manifest["config"]["preprocess"]
    assert run.manifest["config"]["augment_mode"] == "numpy" and run.manifest["models"]["cnn_bn"]["augment"] == "numpy"
    # test_images.npz holds the images after the ops, exactly as an upload would be prepared.
    from bt_core.data.images import decode_image_bytes

    images, ids = art.load_test_images(run.directory)
    np.testing.assert_array_equal(images[0], decode_image_bytes((data / ids[0]).read_bytes(), 32, ["crop_head", "clahe"]))
    assert run.manifest["dataset"]["layout"] == "kaggle"
    assert run.manifest["dataset"]["skipped"] == [
        {"path": "Training/glioma/corrupt.jpg", "reason": "not a decodable image (corrupt or unsupported format)"}
    ]
    assert run.manifest["config"]["models"] == ["simple_cnn", "cnn_bn"]
    assert run.manifest["dataset"]["counts"]["test"] == {c: 6 for c in CLASSES}


def test_cli_rejects_unknown_models_and_bad_folders(tmp_path, capsys):
    data = make_pool(tmp_path / "data", per_class=6, size=32)
    assert cli.main(["--data", str(data), "--models", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown model(s) ['nope']" in capsys.readouterr().err
    assert cli.main(["--data", str(tmp_path / "missing"), "--models", "simple_cnn"]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def listed(out: str) -> dict[str, list[str]]:
    """--list-models' rows by model: family, input, params, preprocessing, then the description."""
    header, *rows = out.splitlines()
    assert header.split() == ["model", "family", "input", "params", "preprocessing", "description"]
    return {row.split()[0]: row.split(maxsplit=5)[1:] for row in rows}


def test_list_models_needs_no_data_and_counts_the_parameters_as_built(capsys):
    assert cli.main(["--list-models", "--models", "simple_cnn,cnn_bn", "--img-size", "32"]) == 0
    rows = listed(capsys.readouterr().out)
    assert list(rows) == ["simple_cnn", "cnn_bn"]
    for name in rows:
        family, size, params, preprocessing, description = rows[name]
        spec = get_spec(name)
        assert (family, size, preprocessing, description) == (spec.family, "32", spec.preprocessing, spec.description)
        assert int(params.replace(",", "")) == create_model(name, 4, input_size=32).count_params()
    # At its own input size (224) simple_cnn's flatten head holds far more weights.
    assert zoo.main(["train", "--list-models", "--models", "simple_cnn"]) == 0
    assert listed(capsys.readouterr().out)["simple_cnn"][1:3] == ["224", "12,938,948"]
    assert cli.main(["--list-models", "--models", "nope"]) == 2
    assert "unknown model(s) ['nope']" in capsys.readouterr().err


@pytest.mark.slow
def test_jax_backend_trains_and_tensorflow_reads_its_model(tmp_path):
    """Training under JAX (as on GPU machines); the dashboard's TensorFlow loads the result."""
    data = make_pool(tmp_path / "data", per_class=30, size=32)
    out = tmp_path / "artifacts"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "train_all.py"), "--data", str(data), "--models", "simple_cnn",
         "--epochs", "6", "--img-size", "32", "--out", str(out), "--batch-size", "16"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = check_run(only_run(out), ["simple_cnn"], "jax")
    assert run.models["simple_cnn"].metrics["accuracy"] >= 0.9
    model = art.load_model(run.directory, "simple_cnn")  # under TensorFlow, in this process
    images, _ = art.load_test_images(run.directory)
    proba = model.predict(preprocess_batch(images, get_spec("simple_cnn").preprocessing), verbose=0)
    stored = run.models["simple_cnn"].predictions[art.probability_columns(run.class_names)].to_numpy()
    np.testing.assert_allclose(proba, stored, atol=1e-4)


def test_model_round_trip_reproduces_stored_predictions_under_tensorflow(tmp_path):
    data = make_pool(tmp_path / "data", per_class=12, size=32)
    out = tmp_path / "artifacts"
    assert cli.main(["--data", str(data), "--models", "custom_cnn", "--epochs", "1", "--img-size", "32",
                           "--out", str(out), "--run-id", "fixed"]) == 0
    run = check_run(out / "fixed", ["custom_cnn"], "tensorflow")
    model = art.load_model(run.directory, "custom_cnn")
    images, _ = art.load_test_images(run.directory)
    proba = model.predict(preprocess_batch(images, "rescale"), verbose=0)
    stored = run.models["custom_cnn"].predictions[art.probability_columns(run.class_names)].to_numpy()
    np.testing.assert_allclose(proba, stored, atol=1e-5)
    manifest = json.loads((run.directory / art.MANIFEST).read_text())
    assert manifest["models"]["custom_cnn"]["last_conv_layer"] == get_spec("custom_cnn").last_conv_layer


def test_training_under_tensorflow_ends_with_maps_and_explain_recomputes_them(tmp_path, capsys):
    import pandas as pd

    data = make_pool(tmp_path / "data", per_class=12, size=32)
    boxed = sorted(p.relative_to(data).as_posix() for p in (data / "glioma").iterdir())
    pd.DataFrame({"image": boxed, "label": "glioma", "x_min": 0.1, "y_min": 0.2, "x_max": 0.5, "y_max": 0.6}).to_csv(
        data / "boxes.csv", index=False)
    out = tmp_path / "artifacts"
    assert cli.main(["--data", str(data), "--models", "simple_cnn", "--epochs", "1", "--img-size", "32",
                           "--out", str(out), "--run-id", "r"]) == 0
    run_dir = out / "r"
    _images, ids = art.load_test_images(run_dir)
    boxes = art.load_test_boxes(run_dir, ids)  # every glioma test image has its box, the others NaN
    is_glioma = np.array([i.startswith("glioma/") for i in ids])
    assert is_glioma.any() and boxes.shape == (len(ids), 4)
    np.testing.assert_allclose(boxes[is_glioma], [[0.1, 0.2, 0.5, 0.6]] * int(is_glioma.sum()))
    assert np.isnan(boxes[~is_glioma]).all()
    assert art.list_maps(run_dir, "simple_cnn") == ["faster_scorecam", "gradcam"]
    maps, map_ids, _classes = art.load_maps(run_dir, "simple_cnn", "gradcam")
    assert maps.shape == (len(ids), 32, 32) and map_ids.tolist() == ids.tolist()

    # --explain alone: other methods into the same run, no training.
    capsys.readouterr()
    assert cli.main(["--explain", str(run_dir), "--methods", "layercam"]) == 0
    assert "layercam" in art.list_maps(run_dir, "simple_cnn")
    assert capsys.readouterr().out.strip() == str(run_dir)
    assert cli.main(["--explain", str(tmp_path / "nothing")]) == 2
    with pytest.raises(SystemExit):
        cli.parse_args(["--explain", str(run_dir), "--data", str(data)])


def test_no_explain_skips_the_maps(tmp_path):
    data = make_pool(tmp_path / "data", per_class=8, size=32)
    out = tmp_path / "artifacts"
    assert cli.main(["--data", str(data), "--models", "simple_cnn", "--epochs", "1", "--img-size", "32",
                           "--out", str(out), "--run-id", "r", "--no-explain"]) == 0
    assert art.list_maps(out / "r", "simple_cnn") == []


def test_a_failing_model_is_recorded_and_the_others_still_saved(tmp_path, monkeypatch, capsys):
    """Offline ImageNet weights fail one backbone with a message saying how to proceed."""
    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    data = make_pool(tmp_path / "data", per_class=10, size=32)
    out = tmp_path / "artifacts"
    code = cli.main(["--data", str(data), "--models", "mobilenetv2,simple_cnn", "--epochs", "1",
                           "--img-size", "32", "--out", str(out), "--weights", "imagenet"])
    assert code == 1
    run = art.load_run(only_run(out))
    failed = run.models["mobilenetv2"]
    assert failed.status == art.STATUS_FAILED and "--weights" in failed.error
    assert run.models["simple_cnn"].usable
    assert "mobilenetv2 failed" in capsys.readouterr().err


def test_cli_rejects_unknown_preprocessing_and_needs_a_source(tmp_path, capsys):
    data = make_pool(tmp_path / "data", per_class=6, size=32)
    assert cli.main(["--data", str(data), "--preprocess", "clahe,nope", "--out", str(tmp_path / "o")]) == 2
    assert "valid: clahe, sharpen, histeq, crop_head" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(["--models", "simple_cnn"])
    assert ("one of --data, --demo, --resume RUN_DIR, --merge, --explain RUN_DIR or --evaluate RUN_DIR is required"
            in capsys.readouterr().err)


# --------------------------------------------------------------------------- data parallel


@pytest.mark.slow
def test_data_parallel_under_jax_over_two_virtual_devices(tmp_path):
    data = make_pool(tmp_path / "data", per_class=12, size=32)
    out = tmp_path / "artifacts"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "train_all.py"), "--data", str(data), "--models", "simple_cnn", "--epochs", "1",
         "--img-size", "32", "--out", str(out), "--batch-size", "15", "--data-parallel"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = check_run(only_run(out), ["simple_cnn"], "jax")
    assert run.manifest["distribution"] == {"strategy": "jax DataParallel", "devices": 2,
                                            "device_names": ["cpu:0", "cpu:1"]}
    assert run.manifest["config"]["data_parallel"] is True
    assert run.models["simple_cnn"].info["batch_size"] == 16  # rounded up to split evenly


def test_data_parallel_under_tensorflow_uses_a_mirrored_strategy(tmp_path):
    data = make_pool(tmp_path / "data", per_class=10, size=32)
    out = tmp_path / "artifacts"
    assert cli.main(["--data", str(data), "--models", "simple_cnn", "--epochs", "1", "--img-size", "32",
                           "--out", str(out), "--data-parallel"]) == 0
    run = check_run(only_run(out), ["simple_cnn"], "tensorflow")
    assert run.manifest["distribution"]["strategy"] == "tf MirroredStrategy"
    assert run.manifest["distribution"]["devices"] >= 1


# --------------------------------------------------------------------------- merging shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two shards of one experiment: the same command with different --models."""
    base = tmp_path_factory.mktemp("shards")
    data = make_pool(base / "data", per_class=12, size=32)
    out = base / "artifacts"
    common = ["--data", str(data), "--epochs", "1", "--img-size", "32", "--out", str(out), "--batch-size", "16"]
    assert cli.main([*common, "--models", "simple_cnn", "--run-id", "shard-a"]) == 0
    assert cli.main([*common, "--models", "custom_cnn", "--run-id", "shard-b"]) == 0
    return out / "shard-a", out / "shard-b"


def merge(runs, out, run_id="merged") -> int:
    return cli.main(["--merge", *map(str, runs), "--out", str(out), "--run-id", run_id])


def test_merge_writes_one_run_with_every_model(shards, tmp_path, capsys):
    shard_a, shard_b = shards
    maps = art.model_dir(shard_b, "custom_cnn") / "maps" / "gradcam.npz"  # precomputed maps travel too
    maps.parent.mkdir(exist_ok=True)
    maps.write_bytes(b"maps")
    out = tmp_path / "merged-out"
    assert merge([shard_a, shard_b], out) == 0
    assert (art.model_dir(out / "merged", "custom_cnn") / "maps" / "gradcam.npz").read_bytes() == b"maps"
    merged = out / "merged"
    assert capsys.readouterr().out.strip() == str(merged)
    run = check_run(merged, ["simple_cnn", "custom_cnn"], "tensorflow")
    manifest = run.manifest
    assert manifest["config"]["models"] == ["simple_cnn", "custom_cnn"] and manifest["run_id"] == "merged"
    a, b = art.read_manifest(shard_a), art.read_manifest(shard_b)
    assert manifest["timing"]["seconds"] == pytest.approx(a["timing"]["seconds"] + b["timing"]["seconds"], abs=0.02)
    assert manifest["timing"]["started"] == min(a["timing"]["started"], b["timing"]["started"])
    assert manifest["timing"]["finished"] == max(a["timing"]["finished"], b["timing"]["finished"])
    assert [r["run_id"] for r in manifest["merged"]["runs"]] == ["shard-a", "shard-b"]
    assert manifest["models"]["custom_cnn"]["from_run"] == "shard-b"
    assert (merged / art.SPLIT).read_bytes() == (shard_a / art.SPLIT).read_bytes()
    for name, shard in (("simple_cnn", shard_a), ("custom_cnn", shard_b)):
        for file_name in art.MODEL_FILES:
            merged_file, shard_file = art.model_dir(merged, name) / file_name, art.model_dir(shard, name) / file_name
            assert merged_file.read_bytes() == shard_file.read_bytes()
            assert merged_file.stat().st_ino == shard_file.stat().st_ino  # hard-linked on one file system
    model = art.load_model(merged, "custom_cnn")
    images, _ = art.load_test_images(merged)
    stored = run.models["custom_cnn"].predictions[art.probability_columns(run.class_names)].to_numpy()
    np.testing.assert_allclose(model.predict(preprocess_batch(images, "rescale"), verbose=0), stored, atol=1e-5)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left


def tampered_copy(shard: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / f"copy-{shard.name}"
    shutil.copytree(shard, copy)
    manifest = art.read_manifest(copy)
    edit(manifest, copy)
    art.write_json(copy / art.MANIFEST, manifest)
    return copy


def _set(path: list, value):
    def edit(manifest, folder):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _shuffle_split(manifest, folder):
    split = art.read_split(folder)
    split.loc[0, "split"], split.loc[len(split) - 1, "split"] = split.loc[len(split) - 1, "split"], split.loc[0, "split"]
    split.to_csv(folder / art.SPLIT, index=False)


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set(["class_names"], ["a", "b", "c", "d"]), "different class names"),
        (_set(["image_size"], 64), "different image size"),
        (_set(["dataset", "fingerprint"], "0" * 64), "different dataset fingerprint"),
        (_shuffle_split, "split.csv files differ"),
        (_set(["config", "epochs"], 5), "different setting epochs"),
        (_set(["models", "custom_cnn", "status"], art.STATUS_RUNNING), "custom_cnn of"),
        (_set(["models", "custom_cnn", "status"], art.STATUS_PENDING), "finish that run first"),
    ],
    ids=["classes", "image-size", "fingerprint", "split", "settings", "running", "pending"],
)
def test_merge_refuses_shards_that_do_not_belong_together(shards, tmp_path, capsys, edit, message):
    shard_a, shard_b = shards
    bad = tampered_copy(shard_b, tmp_path, edit)
    out = tmp_path / "out"
    assert merge([shard_a, bad], out) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())  # nothing half-merged


def test_merge_refuses_a_model_finished_twice_but_a_finished_copy_beats_a_failed_one(shards, tmp_path, capsys):
    shard_a, shard_b = shards
    twin = tampered_copy(shard_a, tmp_path, lambda manifest, folder: None)
    assert merge([shard_a, twin], tmp_path / "out") == 2
    assert "simple_cnn is finished in both" in capsys.readouterr().err

    def fail(manifest, folder):
        manifest["models"]["simple_cnn"] = {"status": art.STATUS_FAILED, "error": "RuntimeError: out of memory"}
        shutil.rmtree(art.model_dir(folder, "simple_cnn"))

    failed = tampered_copy(shard_a, tmp_path / "f", fail)
    assert merge([failed, shard_b, shard_a], tmp_path / "out", "retried") == 0
    run = art.load_run(tmp_path / "out" / "retried")
    assert run.models["simple_cnn"].usable and run.models["simple_cnn"].info["from_run"] == "shard-a"
    assert merge([shard_a, shard_b], tmp_path / "out", "retried") == 2  # never over an existing run
    assert "already exists" in capsys.readouterr().err


def test_a_merged_run_keeps_the_test_boxes_and_head_masks_of_its_shards(shards, tmp_path):
    shard_a = tampered_copy(shards[0], tmp_path, lambda manifest, folder: None)
    images, ids = art.load_test_images(shard_a)
    boxes = pd.DataFrame({"x_min": [0.1], "y_min": [0.2], "x_max": [0.5], "y_max": [0.6]},
                         index=pd.Index([ids[1]], name="image"))
    assert art.write_test_boxes(shard_a, boxes, ids) == 1
    heads = np.zeros(images.shape[:3], bool)  # one mask per test image, at its size
    heads[:, 2:6, 2:6] = True
    art.write_test_heads(shard_a, heads, ids)
    assert merge([shard_a, shards[1]], tmp_path / "out") == 0
    merged = art.load_run(tmp_path / "out" / "merged")
    assert merged.typed_manifest.dataset == art.load_manifest(shard_a).dataset
    for file_name in (art.TEST_BOXES, art.TEST_HEADS):
        assert (merged.directory / file_name).read_bytes() == (shard_a / file_name).read_bytes(), file_name
    stored = merged.test_boxes()
    np.testing.assert_allclose(stored[1], [0.1, 0.2, 0.5, 0.6])
    assert np.isnan(np.delete(stored, 1, axis=0)).all()
    np.testing.assert_array_equal(merged.test_heads(), heads)
