"""External evaluation: ``train_all.py --evaluate RUN_DIR --data PATH --name NAME`` scores a
finished run's models on another folder into RUN_DIR/evaluations/NAME, a run-like folder."""

import os
from pathlib import Path

import numpy as np
import pytest

from bt_core import cli
from bt_core import artifacts as art
from bt_core.data.images import read_image
from bt_core.runs.evaluate import check_evaluation_name, evaluate_run, evaluation_mode
from bt_core.metrics import metrics_from_predictions
from bt_core.data.preprocess import preprocess_batch
from imagefolders import CLASSES, make_kaggle, make_pool, write_images

SIZE = 32
MODEL = "simple_cnn"
APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny finished run (one trained model) plus a model whose training failed."""
    root = tmp_path_factory.mktemp("evaluate")
    data = make_pool(root / "train-data", per_class=8, size=SIZE)
    out = root / "artifacts"
    assert cli.main(
        ["--data", str(data), "--models", MODEL, "--epochs", "1", "--img-size", str(SIZE),
         "--batch-size", "16", "--out", str(out), "--run-id", "r", "--no-explain"]
    ) == 0
    run_dir = out / "r"
    manifest = art.read_manifest(run_dir)
    manifest["models"]["cnn_bn"] = {"status": art.STATUS_FAILED, "error": "RuntimeError: boom"}
    art.write_json(run_dir / art.MANIFEST, manifest)
    return run_dir


@pytest.fixture(scope="module")
def external(run_dir) -> Path:
    """The run evaluated on a kaggle-layout folder of the same classes, with a corrupt file
    and a boxes.csv."""
    data = make_kaggle(run_dir.parent.parent / "external", train_per_class=3, test_per_class=2, size=40)
    (data / "Testing" / "glioma" / "corrupt.jpg").write_bytes(b"not an image")
    (data / "boxes.csv").write_text("image,label,x_min,y_min,x_max,y_max\nTesting/glioma/img_000.jpg,glioma,0.3,0.1,0.7,0.4\n")
    assert cli.main(["--evaluate", str(run_dir), "--data", str(data), "--name", "ext", "--no-explain"]) == 0
    return data


def test_evaluation_is_a_run_folder_scored_like_the_run(run_dir, external):
    evaluation = art.evaluation_dir(run_dir, "ext")
    for name in (art.MANIFEST, art.SPLIT, art.TEST_IMAGES, art.TEST_BOXES):
        assert (evaluation / name).is_file(), name
    for name in art.MODEL_FILES:
        assert (art.model_dir(evaluation, MODEL) / name).is_file(), name
    # model.keras and history.csv are the run's own files, hard-linked.
    assert os.path.samefile(art.model_dir(evaluation, MODEL) / art.MODEL_FILE, art.model_dir(run_dir, MODEL) / art.MODEL_FILE)

    run = art.load_run(evaluation)
    parent = art.read_manifest(run_dir)
    manifest = run.manifest
    assert manifest["format_version"] == art.FORMAT_VERSION
    assert manifest["evaluation"] == {
        "of_run": "r", "name": "ext", "mode": "classes", "data": str(external.resolve()), "not_trained": ["cnn_bn"],
    }
    assert run.class_names == list(CLASSES) and manifest["image_size"] == SIZE
    assert manifest["config"] == parent["config"] and manifest["preprocess"] == []
    assert manifest["dataset"]["layout"] == "kaggle" and manifest["dataset"]["counts"] == {"test": dict.fromkeys(CLASSES, 5)}
    assert manifest["dataset"]["skipped"] == [
        {"path": "Testing/glioma/corrupt.jpg", "reason": "not a decodable image (corrupt or unsupported format)"}
    ]
    assert set(run.split["split"]) == {"test"} and len(run.split) == 20  # Training and Testing alike

    entry = manifest["models"][MODEL]
    assert entry["status"] == art.STATUS_DONE and entry["inference_seconds"] >= 0
    assert entry["preprocessing"] == parent["models"][MODEL]["preprocessing"]
    assert entry["best_epoch"] == parent["models"][MODEL]["best_epoch"]
    assert run.models["cnn_bn"].status == art.STATUS_FAILED and run.models["cnn_bn"].error == "not trained in run r"

    images, ids = art.load_test_images(evaluation)
    assert ids.tolist() == run.split["path"].tolist()
    np.testing.assert_array_equal(images[0], read_image(external / ids[0], SIZE))  # decoded as training does
    model = art.load_model(evaluation, MODEL)
    expected = model.predict(preprocess_batch(images, entry["preprocessing"]), verbose=0)
    scored = run.models[MODEL]
    assert scored.predictions["id"].tolist() == ids.tolist()
    np.testing.assert_allclose(scored.predictions[art.probability_columns(run.class_names)], expected, atol=1e-5)
    recomputed = metrics_from_predictions(scored.predictions, run.class_names)
    assert scored.metrics["confusion_matrix"] == recomputed["confusion_matrix"]
    for key in ("n_test", "accuracy", "macro_f1", "weighted_f1", "log_loss"):
        assert scored.metrics[key] == pytest.approx(recomputed[key]), key
    assert "train_accuracy" not in scored.metrics
    assert scored.history is not None and len(scored.history) == 1  # the Training page still works

    boxes = art.load_test_boxes(evaluation, ids)
    assert np.isfinite(boxes).all(axis=1).sum() == 1
    assert [summary.run_id for summary in art.list_runs(run_dir.parent)] == ["r"]  # not a run of its own
    assert art.list_evaluations(run_dir) == ["ext"]


def test_tumor_folder_is_scored_as_tumor_detection_with_maps(run_dir, external):
    data = run_dir.parent.parent / "tumor-data"
    write_images(data / "tumor", 0, 3, 36, seed=7)
    write_images(data / "notumor", 2, 3, 36, seed=8)
    assert cli.main(["--evaluate", str(run_dir), "--data", str(data), "--methods", "gradcam"]) == 0
    evaluation = art.evaluation_dir(run_dir, "tumor-data")  # named after the folder
    run = art.load_run(evaluation)
    assert run.class_names == ["notumor", "tumor"]
    assert run.manifest["evaluation"]["mode"] == "tumor"
    images, _ids = art.load_test_images(evaluation)
    entry = run.manifest["models"][MODEL]
    four = art.load_model(run_dir, MODEL).predict(preprocess_batch(images, entry["preprocessing"]), verbose=0)
    no_tumor = four[:, list(CLASSES).index("notumor")]
    predictions = run.models[MODEL].predictions
    np.testing.assert_allclose(predictions["p_notumor"], no_tumor, atol=1e-5)
    np.testing.assert_allclose(predictions["p_tumor"], 1 - no_tumor, atol=1e-5)
    assert set(predictions["label"]) == {"tumor", "notumor"}
    # The stored model outputs the two classes itself, so the dashboard's live views agree.
    two = art.load_model(evaluation, MODEL).predict(preprocess_batch(images, entry["preprocessing"]), verbose=0)
    np.testing.assert_allclose(two, predictions[["p_notumor", "p_tumor"]], atol=1e-5)
    assert art.list_maps(evaluation, MODEL) == ["gradcam"]
    assert art.list_evaluations(run_dir) == ["ext", "tumor-data"]


def test_wrong_classes_bad_names_and_existing_evaluations_are_refused(run_dir, external, tmp_path, capsys):
    data = make_pool(tmp_path / "other", per_class=2, size=SIZE, classes=("a", "b"))
    assert cli.main(["--evaluate", str(run_dir), "--data", str(data), "--no-explain"]) == 2
    error = capsys.readouterr().err
    assert "['a', 'b']" in error and str(list(CLASSES)) in error and "['notumor', 'tumor']" in error
    assert not art.evaluation_dir(run_dir, "other").exists()

    assert cli.main(["--evaluate", str(run_dir), "--data", str(external), "--name", "ext", "--no-explain"]) == 2
    assert "already holds an evaluation" in capsys.readouterr().err
    assert cli.main(["--evaluate", str(run_dir), "--data", str(external), "--name", "../x", "--no-explain"]) == 2
    assert "not a safe folder name" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(["--evaluate", str(run_dir)])
    assert "needs --data PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.parse_args(["--data", str(data), "--name", "x"])

    # --replace redoes it in place; an evaluation is not itself evaluated.
    before = art.read_manifest(art.evaluation_dir(run_dir, "ext"))["created"]
    path = evaluate_run(run_dir, external, "ext", say=lambda _line: None, replace=True)
    assert path == art.evaluation_dir(run_dir, "ext") and art.read_manifest(path)["created"] >= before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError, match="is an evaluation"):
        evaluate_run(path, external, "again", say=lambda _line: None)


def test_names_and_modes():
    assert check_evaluation_name("Figshare_2024.v1") == "Figshare_2024.v1"
    for bad in ("", ".hidden", "a/b", "..", "a b"):
        with pytest.raises(ValueError):
            check_evaluation_name(bad)
    assert evaluation_mode(["b", "a"], ["a", "b"]) == "classes"
    assert evaluation_mode(["glioma", "no_tumor"], ["tumor", "notumor"]) == "tumor"
    assert evaluation_mode(["glioma", "No Tumor"], ["notumor", "tumor"]) == "tumor"  # any spelling data.classes knows
    with pytest.raises(ValueError, match="no no-tumor class"):
        evaluation_mode(["glioma", "pituitary"], ["tumor", "notumor"])


def test_list_evaluations_skips_unreadable_and_hidden_folders(tmp_path):
    run = tmp_path / "run"
    assert art.list_evaluations(run) == []
    good = art.evaluation_dir(run, "good")
    art.write_json(good / art.MANIFEST, {"format_version": art.FORMAT_VERSION, "class_names": ["a", "b"]})
    art.write_json(art.evaluation_dir(run, ".staging") / art.MANIFEST, {"format_version": "1.2", "class_names": ["a"]})
    art.write_json(art.evaluation_dir(run, "future") / art.MANIFEST, {"format_version": "99.0", "class_names": ["a"]})
    art.evaluation_dir(run, "empty").mkdir()
    assert art.list_evaluations(run) == ["good"]


def test_dashboard_switches_every_page_to_an_evaluation(run_dir, external, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from bt_dashboard.settings import ARTIFACTS_ENV

    monkeypatch.setattr("sys.argv", [str(APP)])
    monkeypatch.setenv(ARTIFACTS_ENV, str(run_dir.parent))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception, [e.message for e in app.exception]
    picker = app.sidebar.selectbox[1]
    assert picker.label == "Test set" and picker.value == str(run_dir)
    assert "own test split" in picker.options[0] and "ext" in picker.options
    assert any("own test split" in caption.value for caption in app.sidebar.caption)

    picker.select(str(art.evaluation_dir(run_dir, "ext"))).run()
    assert not app.exception, [e.message for e in app.exception]
    assert app.session_state["run_dir"] == str(art.evaluation_dir(run_dir, "ext"))
    assert any("external evaluation **ext**" in caption.value for caption in app.sidebar.caption)
    assert app.title[0].value == "Models"
    assert MODEL in list(app.dataframe[0].value.iloc[:, 0])
    for page, title in (("app_pages/run_details.py", "Run"), ("app_pages/training.py", "Training")):
        app.switch_page(page).run()
        assert not app.exception, [e.message for e in app.exception]
        assert app.title[0].value == title
    app.switch_page("app_pages/run_details.py").run()
    assert any(header.value == "External evaluation" for header in app.subheader)


def test_a_run_that_spells_it_no_tumor_is_scored_as_tumor_detection(tmp_path):
    from dataclasses import replace

    from bt_core.models import create_model, get_spec
    from bt_core.training.config import RunConfig

    classes = ("glioma", "No Tumor", "pituitary")
    spec = replace(get_spec(MODEL), input_size=SIZE)
    writer = art.RunWriter(tmp_path / "nt", art.Manifest(
        run_id="nt", class_names=classes, image_size=SIZE,
        config=RunConfig(data="d", models=(MODEL,), img_size=SIZE).to_dict(), models={MODEL: art.ModelEntry(MODEL)},
    ))
    model = create_model(MODEL, len(classes), input_size=SIZE)
    writer.save_model(MODEL, model)
    writer.set_model_status(MODEL, art.STATUS_DONE, weights=None, **art.ModelEntry.spec_fields(spec))
    data = tmp_path / "tumor-data"
    write_images(data / "tumor", 0, 2, 36, seed=7)
    write_images(data / "notumor", 2, 2, 36, seed=8)
    evaluation = art.load_run(evaluate_run(writer.run_dir, data, say=lambda _line: None))
    assert evaluation.evaluation.mode == "tumor" and evaluation.evaluation.negative_class == "No Tumor"
    assert evaluation.entry(MODEL).collapsed_from == classes
    images, _ids = art.load_test_images(evaluation.directory)
    three = model.predict(preprocess_batch(images, spec.preprocessing), verbose=0)
    predictions = evaluation.models[MODEL].predictions
    np.testing.assert_allclose(predictions["p_notumor"], three[:, 1], atol=1e-5)
    np.testing.assert_allclose(predictions["p_tumor"], 1 - three[:, 1], atol=1e-5)


def test_max_per_class_scores_a_seeded_sample_and_records_it(run_dir, tmp_path):
    data = make_pool(tmp_path / "big", per_class=6, size=40)
    first = evaluate_run(run_dir, data, "capped", max_per_class=2)
    manifest = art.read_manifest(first)
    assert manifest["evaluation"]["max_per_class"] == 2
    assert manifest["dataset"]["counts"] == {"test": dict.fromkeys(CLASSES, 2)}
    chosen = list(art.load_run(first).split["path"])
    again = evaluate_run(run_dir, data, "capped", max_per_class=2, replace=True)  # seeded: the same images
    assert list(art.load_run(again).split["path"]) == chosen
    assert "max_per_class" not in art.read_manifest(art.evaluation_dir(run_dir, "ext"))["evaluation"]
