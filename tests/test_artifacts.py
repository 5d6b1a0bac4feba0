"""The artifact contract: round trip, atomic writes, broken pieces, format versions."""

import json

import numpy as np
import pandas as pd
import pytest

from bt_core import artifacts as art

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def write_run(run_dir, models=("a", "b")):
    writer = art.RunWriter(run_dir, {"run_id": run_dir.name, "created": "2026-11-22T10:00:00+00:00",
                                     "class_names": CLASSES, "dataset": {"name": "tiny"},
                                     "models": {m: {"status": art.STATUS_PENDING} for m in models}})
    split = pd.DataFrame({"path": ["x/1.png", "x/2.png", "y/3.png"], "split": ["train", "val", "test"],
                          "label": ["glioma", "notumor", "pituitary"]})
    writer.write_split(split)
    images = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
    writer.write_test_images(images, ["y/3.png", "y/4.png"])
    proba = np.array([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]])
    for name in models:
        writer.write_predictions(name, art.predictions_frame(["y/3.png", "y/4.png"], ["pituitary", "glioma"], proba, CLASSES))
        writer.write_metrics(name, {"accuracy": 1.0, "macro_auc": float("nan")})
        writer.write_history(name, pd.DataFrame([[1, "scratch", 1.0, 0.5, 1.1, 0.4, 1e-3]], columns=art.HISTORY_COLUMNS))
        writer.set_model_status(name, art.STATUS_DONE, params_trainable=10)
    return writer, split, images, proba


def test_round_trip_gives_back_what_was_written(tmp_path):
    run_dir = tmp_path / "run1"
    writer, split, images, proba = write_run(run_dir)
    run = art.load_run(run_dir)
    assert run.class_names == CLASSES
    assert run.manifest["format_version"] == art.FORMAT_VERSION
    pd.testing.assert_frame_equal(run.split, split)
    assert set(run.models) == {"a", "b"} and all(m.usable for m in run.models.values())
    model = run.models["a"]
    assert model.predictions["pred"].tolist() == ["pituitary", "glioma"]
    np.testing.assert_allclose(model.predictions[art.probability_columns(CLASSES)].to_numpy(), proba)
    assert model.metrics == {"accuracy": 1.0, "macro_auc": None}  # NaN stored as JSON null
    assert model.history["val_loss"].tolist() == [1.1]
    assert model.info["params_trainable"] == 10
    loaded_images, ids = art.load_test_images(run_dir)
    np.testing.assert_array_equal(loaded_images, images)
    assert ids.tolist() == ["y/3.png", "y/4.png"]
    assert not list(run_dir.rglob("*.tmp*"))  # no temporary files left behind


def test_a_broken_model_is_disabled_with_its_reason_not_the_run(tmp_path):
    run_dir = tmp_path / "run1"
    write_run(run_dir, models=("good", "corrupt", "gone"))
    (art.model_dir(run_dir, "corrupt") / art.PREDICTIONS).write_text("id,label\n1,glioma\n")
    (art.model_dir(run_dir, "gone") / art.METRICS).unlink()
    manifest = json.loads((run_dir / art.MANIFEST).read_text())
    manifest["models"]["crashed"] = {"status": "failed", "error": "MemoryError: out of memory"}
    manifest["models"]["interrupted"] = {"status": "running"}
    (run_dir / art.MANIFEST).write_text(json.dumps(manifest))
    run = art.load_run(run_dir)
    assert [m.name for m in run.usable_models()] == ["good"]
    assert "lack columns" in run.models["corrupt"].error
    assert "metrics.json" in run.models["gone"].error
    assert run.models["crashed"].error == "MemoryError: out of memory"
    assert run.models["interrupted"].error == "training running"


def test_newer_major_format_is_refused_with_a_clear_message(tmp_path):
    run_dir = tmp_path / "future"
    write_run(run_dir)
    manifest = json.loads((run_dir / art.MANIFEST).read_text())
    manifest["format_version"] = "2.0"
    (run_dir / art.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(art.ArtifactError, match="newer than this code reads"):
        art.load_run(run_dir)
    manifest["format_version"] = "1.7"  # a newer minor version only adds fields
    (run_dir / art.MANIFEST).write_text(json.dumps(manifest))
    assert art.load_run(run_dir).class_names == CLASSES


def test_list_runs_newest_first_and_reports_broken_runs(tmp_path):
    write_run(tmp_path / "old")
    writer, *_ = write_run(tmp_path / "new")
    manifest = art.read_manifest(writer.run_dir)
    art.write_json(art.manifest_path(writer.run_dir), {**manifest, "created": "2026-11-23T10:00:00+00:00"})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / art.MANIFEST).write_text("{not json")
    (tmp_path / "not_a_run").mkdir()
    runs = art.list_runs(tmp_path)
    assert [r.run_id for r in runs if r.error is None] == ["new", "old"]
    broken = [r for r in runs if r.error]
    assert [r.run_id for r in broken] == ["broken"] and "not valid JSON" in broken[0].error
    assert art.list_runs(tmp_path / "absent") == []


def test_failed_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "m.json"
    art.write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        art.write_json(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_writer_rejects_malformed_inputs(tmp_path):
    writer = art.RunWriter(tmp_path / "r", {"class_names": CLASSES})
    with pytest.raises(ValueError, match="uint8"):
        writer.write_test_images(np.zeros((2, 8, 8, 3), np.float32), ["a", "b"])
    with pytest.raises(ValueError, match="ids"):
        writer.write_test_images(np.zeros((2, 8, 8, 3), np.uint8), ["a"])
    with pytest.raises(ValueError, match="columns"):
        writer.write_split(pd.DataFrame({"path": ["a"]}))
    bad = pd.DataFrame({"id": ["a"], "label": ["unknown"], "pred": ["glioma"],
                        **{c: [0.25] for c in art.probability_columns(CLASSES)}})
    with pytest.raises(art.ArtifactError, match="not in the manifest"):
        writer.write_predictions("m", bad)


def test_missing_manifest_is_not_a_run(tmp_path):
    with pytest.raises(art.ArtifactError, match="not a run folder"):
        art.load_run(tmp_path)


def test_writer_keeps_sessions_and_timing_current_on_disk(tmp_path):
    writer = art.RunWriter(tmp_path / "r", {"class_names": CLASSES, "timing": {"started": "t0", "seconds": 0.0},
                                            "sessions": [{"started": "s0", "trained": ["a"]}, {"started": "s1"}]})
    writer.add_trained("b", 1.5)
    stored = art.read_manifest(writer.run_dir)
    assert stored["sessions"][1]["trained"] == ["b"] and stored["sessions"][0]["trained"] == ["a"]
    assert stored["timing"] == {"started": "t0", "seconds": 1.5} == writer.timing
    writer.finish_session("t1", 2.0)
    stored = art.read_manifest(writer.run_dir)
    assert stored["sessions"][1]["finished"] == "t1" and "finished" not in stored["sessions"][0]
    assert stored["timing"] == {"started": "t0", "seconds": 2.0, "finished": "t1"}
    assert writer.class_names == CLASSES
    without = art.RunWriter(tmp_path / "e", {"class_names": CLASSES})
    with pytest.raises(ValueError, match="records no training session"):
        without.add_trained("a", 1.0)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_get_the_umask_mode_of_a_plain_open(tmp_path, umask, mode):
    import os
    import stat

    from bt_core.artifacts.files import write_csv, write_json

    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_csv(tmp_path / "a.csv", pd.DataFrame({"x": [1]}))
        (tmp_path / "plain.txt").write_text("x")  # what a plain open gives, for comparison
    finally:
        os.umask(old)
    for name in ("a.json", "a.csv", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert os.umask(old) == old  # the writes left the process umask as it was
