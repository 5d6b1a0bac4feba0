"""bt_core.runs.analyze on a tiny real run: maps, stored shares and heads, one model load each.

The run is written through RunWriter with real (randomly initialised) Keras models saved as
model.keras, their real predictions on 32 px test images, and one failed model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from bt_core import artifacts, cli, regions
from bt_core.artifacts import RunWriter, load_map_shares, load_maps, maps_path, predictions_frame
from bt_core.data.preprocess import preprocess_batch
from bt_core.explain import explain
from bt_core.models import create_model, get_spec
from bt_core.runs.analyze import DEFAULT_MEASURE_METHOD, analyze_run, audit_images
from bt_core.shortcuts import attention, measures
from bt_core.shortcuts.attention import BASELINES, DEFAULT_BORDER_WIDTH, attention_table
from imagefolders import CLASSES, class_image

SIZE = 32
PER_CLASS = 2
MODELS = ("simple_cnn", "cnn_bn")
FAILED = "resnet50"
METHODS = ("gradcam", "faster_scorecam")
# float16 keeps 11 significant bits: 2**-11 relative, under 5e-4 absolute in [0, 1].
FLOAT16_TOLERANCE = 1e-3


def write_tiny_run(run_dir: Path, dataset_root: Path | None = None) -> dict:
    """A run folder with real models; returns what the tests compare against."""
    rng = np.random.default_rng(0)
    labels = [name for name in CLASSES for _ in range(PER_CLASS)]
    gray = [class_image(CLASSES.index(name), SIZE, rng) for name in labels]
    images = np.repeat(np.stack(gray)[..., np.newaxis], 3, axis=-1)
    ids = [f"{name}/img_{index:03d}.png" for index, name in enumerate(labels)]
    root = dataset_root or run_dir / "no-data"
    writer = RunWriter(
        run_dir,
        {"run_id": run_dir.name, "created": "2026-01-01T00:00:00", "class_names": list(CLASSES),
         "image_size": SIZE, "dataset": {"name": "tiny", "root": str(root)}},
    )
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


def _counting(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that records each call's first argument."""
    calls, original = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args[0] if args else None)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def _measured_tables(monkeypatch) -> list:
    """Record the attention table each measure_model call reads."""
    tables, original = [], measures.measure_model

    def recorded(*args, **kwargs):
        tables.append(kwargs["table"])
        return original(*args, **kwargs)

    monkeypatch.setattr(measures, "measure_model", recorded)
    return tables


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """(run_dir, written test data, analyze_run result, progress lines, call counts)."""
    run_dir = tmp_path_factory.mktemp("analyze") / "20260101-000000-tiny"
    written = write_tiny_run(run_dir)
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        counts = {"load_model": _counting(patch, artifacts, "load_model"),
                  "usable_head_masks": _counting(patch, regions, "usable_head_masks"),
                  "outside_head_share": _counting(patch, attention, "outside_head_share"),
                  "measured_tables": _measured_tables(patch)}
        result = analyze_run(run_dir, progress=lines.append)
    return run_dir, written, result, lines, counts


def test_each_model_is_loaded_once_and_the_heads_found_once(tiny_run):
    _run_dir, _written, result, _lines, counts = tiny_run
    assert sorted(map(str, counts["load_model"])) == [str(tiny_run[0])] * len(MODELS)
    assert len(counts["usable_head_masks"]) == 1
    assert set(result["shortcuts"]["models"]) == set(MODELS)  # measured with those same loads


def test_maps_exist_for_every_model_and_method_with_the_stored_format(tiny_run):
    run_dir, written, result, lines, _counts = tiny_run
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
    run_dir, written = tiny_run[:2]
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


def test_stored_heads_and_shares_are_what_the_measures_used(tiny_run):
    run_dir, written = tiny_run[:2]
    run = artifacts.load_run(run_dir)
    heads = run.test_heads()
    expected_heads, _missing = regions.usable_head_masks(written["images"])
    np.testing.assert_array_equal(heads, expected_heads)
    band = regions.border_band((SIZE, SIZE), DEFAULT_BORDER_WIDTH)
    for name in MODELS:
        for method in METHODS:
            maps = load_maps(run_dir, name, method)[0]
            shares = load_map_shares(run_dir, name, method)
            assert list(shares.index) == written["ids"]
            np.testing.assert_allclose(shares["outside_head"], 1 - regions.map_share(maps, heads), rtol=1e-12)
            np.testing.assert_allclose(shares["border"], regions.map_share(maps, band), rtol=1e-12)
            assert shares["in_box"].isna().all()  # this run has no boxes


def test_the_measured_attention_table_is_the_stored_shares(tiny_run):
    """One attention table per stored map: the shares beside the maps are its very numbers."""
    run_dir, written, _result, _lines, counts = tiny_run
    tables = counts["measured_tables"]
    assert len(tables) == len(MODELS)
    labels = [CLASSES.index(path.split("/")[0]) for path in written["ids"]]
    heads = artifacts.load_run(run_dir).test_heads()
    for name, table in zip(MODELS, tables):
        shares = load_map_shares(run_dir, name, DEFAULT_MEASURE_METHOD)
        maps = load_maps(run_dir, name, DEFAULT_MEASURE_METHOD)[0]
        again = attention_table(maps, written["images"], labels, CLASSES, None, head_masks=heads)
        per_image = artifacts.load_shortcut_images(run_dir, name).set_index("id").loc[shares.index]
        for share in artifacts.MAP_SHARES:
            np.testing.assert_array_equal(shares[share].to_numpy(), table[share].to_numpy())
            np.testing.assert_array_equal(shares[share].to_numpy(), again[share].to_numpy())
            np.testing.assert_allclose(shares[share], per_image[share], rtol=1e-12)  # through CSV text


def test_each_map_is_read_against_the_regions_once(tiny_run):
    """The outside-head share of a map is computed once (in its attention table, 8 maps in
    one chunk): once per model and method, plus once per baseline, not again for storage."""
    calls = tiny_run[4]["outside_head_share"]
    assert len(calls) == len(MODELS) * len(METHODS) + len(BASELINES)
    assert all(len(maps) == len(tiny_run[1]["ids"]) for maps in calls)


def test_a_summary_that_names_no_method_measured_the_default():
    assert DEFAULT_MEASURE_METHOD == "gradcam"
    assert artifacts.ShortcutSummary.from_json({"models": {}}).method == DEFAULT_MEASURE_METHOD


def test_a_failed_model_is_skipped_with_its_reason(tiny_run):
    run_dir, _written, result, lines, _counts = tiny_run
    assert FAILED not in result["maps"]
    assert "OOM" in result["skipped"][FAILED]
    assert not artifacts.maps_dir(run_dir, FAILED).exists()
    assert any(line.startswith(f"{FAILED}: skipped") for line in lines)
    assert FAILED not in result["shortcuts"]["models"]


def test_map_size_and_model_choice(tiny_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run[0], run_dir)
    shutil.rmtree(artifacts.maps_dir(run_dir, "cnn_bn"))
    result = analyze_run(run_dir, methods=["gradcam"], map_size=16, models=["cnn_bn"], progress=None)
    assert list(result["maps"]) == ["cnn_bn"] and not result["skipped"]
    assert artifacts.list_maps(run_dir, "cnn_bn") == ["gradcam"]
    assert list(artifacts.load_shortcuts(run_dir)["models"]) == ["cnn_bn"]
    maps, _ids, class_index = load_maps(run_dir, "cnn_bn", "gradcam")
    assert maps.shape == (len(tiny_run[1]["ids"]), 16, 16)
    spec = get_spec("cnn_bn")
    direct = explain(
        artifacts.load_model(run_dir, "cnn_bn"), tiny_run[1]["images"], "gradcam", class_index=class_index,
        layer=spec.last_conv_layer, preprocessing=spec.preprocessing,
    )
    np.testing.assert_allclose(maps.astype(np.float32), regions.resize_maps(direct, 16, clip=True),
                               atol=FLOAT16_TOLERANCE)


def test_unknown_method_model_or_map_size_is_refused(tiny_run):
    run_dir = tiny_run[0]
    with pytest.raises(ValueError, match="unknown method"):
        analyze_run(run_dir, methods=["gradcam", "occlusion"], progress=None)
    with pytest.raises(ValueError, match="not in this run"):
        analyze_run(run_dir, models=["vgg99"], progress=None)
    with pytest.raises(ValueError, match="map_size must be a positive"):
        analyze_run(run_dir, map_size=0, progress=None)


def test_command_line_exit_status(tiny_run, tmp_path, capsys):
    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run[0], run_dir)
    args = ["--explain", str(run_dir), "--methods", "gradcam"]
    assert cli.main([*args, "--models", "simple_cnn", "--map-size", "8"]) == 0
    assert load_maps(run_dir, "simple_cnn", "gradcam")[0].shape[1:] == (8, 8)
    assert capsys.readouterr().out.strip() == str(run_dir)
    assert cli.main([*args, "--models", f"simple_cnn,{FAILED}"]) == 1
    assert f"error: no maps for {FAILED}" in capsys.readouterr().err
    assert cli.main(["--explain", str(run_dir), "--methods", "occlusion"]) == 2
    assert cli.main([*args, "--map-size", "0"]) == 2
    assert cli.main(["--explain", str(tmp_path / "not-a-run")]) == 2
    with pytest.raises(SystemExit):
        cli.parse_args(["--demo", "--map-size", "8"])  # --map-size belongs to --explain


def test_maps_only_writes_no_shortcuts(tiny_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(tiny_run[0], run_dir)
    shutil.rmtree(artifacts.shortcuts_dir(run_dir))
    result = analyze_run(run_dir, methods=["gradcam"], models=["simple_cnn"], measure_method=None, progress=None)
    assert result["shortcuts"] is None and artifacts.load_shortcuts(run_dir) is None
    assert load_map_shares(run_dir, "simple_cnn", "gradcam") is not None


# --------------------------------------------------------------------------- boxes of older runs


def _as_older_run(run_dir: Path, dataset: Path, image_ops: list[str]) -> None:
    """The run as format 1.1 wrote it: no test_boxes.csv, its dataset folder elsewhere (and
    unchanged since: the fingerprint it recorded is the folder's)."""
    from bt_core.data.dataset import fingerprint

    manifest = json.loads(artifacts.manifest_path(run_dir).read_text())
    manifest.update(format_version="1.1", preprocess=image_ops)
    manifest["dataset"]["root"] = str(dataset)
    manifest["dataset"]["fingerprint"] = fingerprint(dataset, artifacts.read_split(run_dir)["path"].tolist())
    artifacts.write_json(artifacts.manifest_path(run_dir), manifest)
    (run_dir / artifacts.TEST_BOXES).unlink(missing_ok=True)


@pytest.mark.parametrize("image_ops", [[], ["crop_head"]], ids=["frame-kept", "crop_head"])
def test_an_older_run_gains_the_dataset_boxes_once(tiny_run, tmp_path, image_ops):
    run_dir, dataset = tmp_path / "copy", tmp_path / "dataset"
    shutil.copytree(tiny_run[0], run_dir)
    dataset.mkdir()
    boxed = tiny_run[1]["ids"][0]
    (dataset / "boxes.csv").write_text(f"image,label,x_min,y_min,x_max,y_max\n{boxed},glioma,0.25,0.25,0.75,0.5\n")
    _as_older_run(run_dir, dataset, image_ops)
    analyze_run(run_dir, methods=["gradcam"], models=["simple_cnn"], measure_method=None, progress=None)
    shutil.rmtree(dataset)  # from now on the run alone answers
    boxes = artifacts.load_run(run_dir).test_boxes()
    if image_ops:  # a head crop moved the frame: the dataset's boxes do not fit, none stored
        assert boxes is None
        return
    np.testing.assert_allclose(boxes[0], [0.25, 0.25, 0.75, 0.5])
    assert np.isnan(boxes[1:]).all()
    in_box = load_map_shares(run_dir, "simple_cnn", "gradcam")["in_box"]
    maps = load_maps(run_dir, "simple_cnn", "gradcam")[0]
    expected = regions.map_share(maps[:1], regions.box_masks(boxes[:1], (SIZE, SIZE)))[0]
    assert in_box.iloc[0] == pytest.approx(expected, rel=1e-12) and in_box.iloc[1:].isna().all()


# --------------------------------------------------------------------------- the audit of an evaluation


def _minimal_run(run_dir: Path, split: pd.DataFrame, root: Path, evaluation: dict | None = None) -> None:
    manifest = {"run_id": run_dir.name, "class_names": list(CLASSES), "image_size": SIZE,
                "dataset": {"name": root.name, "root": str(root)}}
    if evaluation:
        manifest["evaluation"] = evaluation
    RunWriter(run_dir, manifest).write_split(split)
    root.mkdir(exist_ok=True)


def test_an_evaluations_audit_finds_its_training_run(tmp_path):
    run_dir = tmp_path / "artifacts" / "run"
    _minimal_run(run_dir, pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "split": ["train", "val", "test"],
                                        "label": "glioma"}), tmp_path / "train-data")
    evaluation_dir = artifacts.evaluation_dir(run_dir, "ext")
    _minimal_run(evaluation_dir, pd.DataFrame({"path": ["x.png"], "split": ["test"], "label": "glioma"}),
                 tmp_path / "ext-data", {"of_run": "run", "name": "ext", "mode": "classes", "data": "ext-data"})
    table, problem = audit_images(artifacts.load_run(evaluation_dir))
    assert problem is None
    assert table["path"].tolist() == ["training run: a.png", "training run: b.png", "x.png"]
    assert table["file"].tolist() == [tmp_path / "train-data" / "a.png", tmp_path / "train-data" / "b.png",
                                      tmp_path / "ext-data" / "x.png"]
    # Moved away from its training run, the evaluation's audit says so instead of guessing.
    moved = tmp_path / "elsewhere" / "evaluations" / "ext"
    shutil.copytree(evaluation_dir, moved)
    _table, problem = audit_images(artifacts.load_run(moved))
    assert problem is not None and "training run" in problem
