"""bt_core.explain.precompute and the maps files of bt_core.artifacts, on a tiny real run.

The run is written through RunWriter with real (randomly initialised) Keras models saved
as model.keras, their real predictions on 32 px test images, and one failed model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from bt_core import artifacts
from bt_core.artifacts import ArtifactError, RunWriter, load_maps, maps_path, predictions_frame, write_maps
from bt_core.explain import explain
from bt_core.explain.precompute import downsample_maps, main, precompute_run_maps
from bt_core.models import create_model, get_spec
from bt_core.data.preprocess import preprocess_batch
from imagefolders import CLASSES, class_image

SIZE = 32
PER_CLASS = 2
MODELS = ("simple_cnn", "cnn_bn")
FAILED = "resnet50"
METHODS = ("gradcam", "faster_scorecam")
# float16 keeps 11 significant bits: 2**-11 relative, under 5e-4 absolute in [0, 1].
FLOAT16_TOLERANCE = 1e-3


def write_tiny_run(run_dir: Path) -> dict:
    """A run folder with real models; returns what the tests compare against."""
    rng = np.random.default_rng(0)
    labels = [name for name in CLASSES for _ in range(PER_CLASS)]
    gray = [class_image(CLASSES.index(name), SIZE, rng) for name in labels]
    images = np.repeat(np.stack(gray)[..., np.newaxis], 3, axis=-1)
    ids = [f"{name}/img_{index:03d}.png" for index, name in enumerate(labels)]
    writer = RunWriter(
        run_dir,
        {"run_id": run_dir.name, "created": "2026-01-01T00:00:00", "class_names": list(CLASSES),
         "image_size": SIZE, "dataset": {"name": "tiny", "root": str(run_dir / "no-data")}},
    )
    import pandas as pd

    writer.write_split(pd.DataFrame({"path": ids, "split": "test", "label": labels}))
    writer.write_test_images(images, ids)
    keras.utils.set_random_seed(0)
    for name in MODELS:
        spec = get_spec(name)
        model = create_model(name, len(CLASSES), input_size=SIZE)
        probabilities = model.predict(preprocess_batch(images, spec.preprocessing), verbose=0)
        writer.save_model(name, model)
        writer.write_predictions(name, predictions_frame(ids, labels, probabilities, list(CLASSES)))
        writer.write_metrics(name, {"accuracy": 0.0})
        writer.set_model_status(
            name, artifacts.STATUS_DONE, preprocessing=spec.preprocessing,
            last_conv_layer=spec.last_conv_layer, input_size=SIZE,
        )
    writer.set_model_status(FAILED, artifacts.STATUS_FAILED, error="ResourceExhaustedError: OOM")
    return {"images": images, "ids": ids}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(run_dir, written test data, precompute result) with the default methods."""
    run_dir = tmp_path_factory.mktemp("precompute") / "20260101-000000-tiny"
    written = write_tiny_run(run_dir)
    lines: list[str] = []
    result = precompute_run_maps(run_dir, progress=lines.append)
    return run_dir, written, result, lines


def test_maps_exist_for_every_model_and_method_with_the_stored_format(tiny_run):
    run_dir, written, result, lines = tiny_run
    assert set(result["maps"]) == set(MODELS)
    assert result["map_size"] == SIZE  # min(64, image size)
    run = artifacts.load_run(run_dir)
    for name in MODELS:
        assert artifacts.list_maps(run_dir, name) == sorted(METHODS)
        predicted = run.models[name].predictions["pred"].map(list(CLASSES).index).to_numpy()
        for method in METHODS:
            assert result["maps"][name][method] == maps_path(run_dir, name, method)
            maps, ids, class_index = load_maps(run_dir, name, method)
            assert maps.dtype == np.float16 and maps.shape == (len(written["ids"]), SIZE, SIZE)
            assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
            assert list(ids) == written["ids"]
            np.testing.assert_array_equal(class_index, predicted)  # the PREDICTED class
    assert any(line.startswith("simple_cnn: gradcam of 8 images") for line in lines)


def test_stored_maps_equal_a_direct_explain_call(tiny_run):
    run_dir, written, _result, _lines = tiny_run
    for name in MODELS:
        model = artifacts.load_model(run_dir, name)
        spec = get_spec(name)
        for method in METHODS:
            maps, _ids, class_index = load_maps(run_dir, name, method)
            direct = explain(
                model, written["images"], method, class_index=class_index,
                layer=spec.last_conv_layer, preprocessing=spec.preprocessing,
            )
            assert direct.max() > 0  # a real map, not an all-zero pair that trivially matches
            np.testing.assert_allclose(
                maps.astype(np.float32), direct, atol=FLOAT16_TOLERANCE, err_msg=f"{name} {method}"
            )


def test_a_failed_model_is_skipped_with_its_reason(tiny_run):
    run_dir, _written, result, lines = tiny_run
    assert FAILED not in result["maps"]
    assert "OOM" in result["skipped"][FAILED]
    assert not artifacts.maps_dir(run_dir, FAILED).exists()
    assert any(line.startswith(f"{FAILED}: skipped") for line in lines)


def test_map_size_and_model_choice(tiny_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run[0], run_dir)
    shutil.rmtree(artifacts.maps_dir(run_dir, "cnn_bn"))
    result = precompute_run_maps(run_dir, methods=["gradcam"], map_size=16, models=["cnn_bn"], progress=None)
    assert list(result["maps"]) == ["cnn_bn"] and not result["skipped"]
    assert artifacts.list_maps(run_dir, "cnn_bn") == ["gradcam"]
    maps, _ids, class_index = load_maps(run_dir, "cnn_bn", "gradcam")
    assert maps.shape == (len(tiny_run[1]["ids"]), 16, 16)
    spec = get_spec("cnn_bn")
    direct = explain(
        artifacts.load_model(run_dir, "cnn_bn"), tiny_run[1]["images"], "gradcam", class_index=class_index,
        layer=spec.last_conv_layer, preprocessing=spec.preprocessing,
    )
    np.testing.assert_allclose(maps.astype(np.float32), downsample_maps(direct, 16), atol=FLOAT16_TOLERANCE)


def test_unknown_method_or_model_is_refused(tiny_run):
    run_dir = tiny_run[0]
    with pytest.raises(ValueError, match="unknown method"):
        precompute_run_maps(run_dir, methods=["gradcam", "occlusion"], progress=None)
    with pytest.raises(ValueError, match="not in this run"):
        precompute_run_maps(run_dir, models=["vgg99"], progress=None)


def test_command_line_exit_status(tiny_run, tmp_path, capsys):
    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run[0], run_dir)
    assert main([str(run_dir), "--methods", "gradcam", "--models", "simple_cnn"]) == 0
    assert "1 map file(s) of 32 px" in capsys.readouterr().out
    assert main([str(run_dir), "--methods", "gradcam", "--models", "simple_cnn", FAILED]) == 1
    assert f"skipped {FAILED}" in capsys.readouterr().err
    assert main([str(run_dir), "--methods", "occlusion"]) == 2
    assert main([str(tmp_path / "not-a-run")]) == 2


# --------------------------------------------------------------------------- maps files


def _maps_file(run_dir: Path) -> Path:
    maps = np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    return write_maps(run_dir, "simple_cnn", "gradcam", maps, ["a.png", "b.png"], np.array([0, 3]), layer="last_conv")


def test_write_then_load_maps_round_trip(tmp_path):
    path = _maps_file(tmp_path)
    assert path == tmp_path / "models" / "simple_cnn" / "maps" / "gradcam.npz"
    maps, ids, class_index = load_maps(tmp_path, "simple_cnn", "gradcam")
    assert maps.dtype == np.float16 and maps.shape == (2, 4, 4)
    assert list(ids) == ["a.png", "b.png"] and list(class_index) == [0, 3]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    mapped, mapped_ids, mapped_classes = load_maps(tmp_path, "simple_cnn", "gradcam", mmap=True)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, maps)
    assert list(mapped_ids) == list(ids) and list(mapped_classes) == list(class_index)


def _savez(path: Path, **arrays) -> None:
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


TWO_IDS = np.array(["a.png", "b.png"])
DAMAGES = {
    "garbage": lambda path: path.write_bytes(b"not a zip archive"),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "missing-key": lambda path: _savez(path, maps=np.zeros((2, 4, 4), np.float16), ids=TWO_IDS),
    "out-of-range": lambda path: _savez(
        path, maps=np.full((2, 4, 4), 2.0, np.float16), ids=TWO_IDS, class_index=np.array([0, 1])
    ),
    "length-mismatch": lambda path: _savez(
        path, maps=np.zeros((3, 4, 4), np.float16), ids=TWO_IDS, class_index=np.array([0, 1])
    ),
}


# A memory map is not scanned for its values (that would read it all), so out-of-range
# values are refused only when the file is read whole.
BROKEN_CASES = [(damage, False) for damage in DAMAGES] + [(d, True) for d in DAMAGES if d != "out-of-range"]


@pytest.mark.parametrize(
    ("damage", "mmap"), BROKEN_CASES, ids=[f"{d}-{'mmap' if m else 'read'}" for d, m in BROKEN_CASES]
)
def test_a_broken_maps_file_raises_an_artifact_error_naming_it(tmp_path, damage, mmap):
    path = _maps_file(tmp_path)
    DAMAGES[damage](path)
    with pytest.raises(ArtifactError, match="gradcam.npz"):
        load_maps(tmp_path, "simple_cnn", "gradcam", mmap=mmap)


def test_missing_maps_file_and_bad_maps_to_write(tmp_path):
    with pytest.raises(ArtifactError, match="gradcam.npz is missing"):
        load_maps(tmp_path, "simple_cnn", "gradcam")
    assert artifacts.list_maps(tmp_path, "simple_cnn") == []
    with pytest.raises(ValueError, match="2 maps, 1 ids"):
        write_maps(tmp_path, "simple_cnn", "gradcam", np.zeros((2, 4, 4)), ["a"], np.array([0, 1]))
