"""External evaluation of a folder of one class: a new hospital's tumor scans alone
(``PATH/tumor/*``), healthy scans alone (``PATH/notumor/*``) or one of the run's classes alone.
What one class allows is scored (the share called that class, with its Wilson interval);
everything that compares classes is stored as null with the reason and shown as
"not measurable: the folder holds tumor images only"."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from statsmodels.stats.proportion import proportion_confint

from bt_core import artifacts as art
from bt_core import cli
from bt_core.data.preprocess import preprocess_batch
from bt_core.metrics import classification_summary, model_scores, one_class, paired_bootstrap
from bt_core.runs.evaluate import evaluate_run, evaluation_mode
from bt_dashboard.views import common
from bt_dashboard.views import models as models_view
from imagefolders import CLASSES, make_pool, write_images

SIZE = 32
MODEL, SECOND_MODEL = "simple_cnn", "cnn_bn"
APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
PAGES = sorted(f"app_pages/{path.name}" for path in (APP.parent / "app_pages").glob("*.py"))
TUMOR, HEALTHY, GLIOMA = "hospital-tumor", "hospital-healthy", "glioma-only"


def add_untrained_model(run_dir: Path, name: str) -> None:
    """A second finished model with all four files (untrained weights: it only has to differ),
    so the pages that compare models have two."""
    from bt_core.metrics import metrics_from_predictions
    from bt_core.models import create_model, get_spec

    writer = art.RunWriter(run_dir, art.read_manifest(run_dir))
    spec = replace(get_spec(name), input_size=SIZE)
    model = create_model(name, len(CLASSES), input_size=SIZE)
    writer.save_model(name, model)
    images, ids = art.load_test_images(run_dir)
    proba = model.predict(preprocess_batch(images, spec.preprocessing), verbose=0).astype(np.float64)
    labels = art.read_split(run_dir).set_index("path").loc[ids, "label"].tolist()
    predictions = art.predictions_frame(list(ids), labels, proba / proba.sum(axis=1, keepdims=True), list(CLASSES))
    writer.write_predictions(name, predictions)
    writer.write_metrics(name, metrics_from_predictions(predictions, list(CLASSES)))
    writer.write_history(name, art.load_run(run_dir).models[MODEL].history)
    writer.set_model_status(name, art.STATUS_DONE, weights=None, **art.ModelEntry.spec_fields(spec))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny finished run of the four classes with two models."""
    root = tmp_path_factory.mktemp("one-class")
    data = make_pool(root / "train-data", per_class=8, size=SIZE)
    out = root / "artifacts"
    assert cli.main(
        ["--data", str(data), "--models", MODEL, "--epochs", "1", "--img-size", str(SIZE),
         "--batch-size", "16", "--out", str(out), "--run-id", "r", "--no-explain"]
    ) == 0
    add_untrained_model(out / "r", SECOND_MODEL)
    return out / "r"


@pytest.fixture(scope="module")
def folders(run_dir) -> dict[str, Path]:
    """Three one-class folders, each evaluated through the command line (exit status 0):
    tumor scans with a boxes.csv and an unreadable file (analysed: maps and shortcut
    measures), healthy scans, and glioma scans (one of the run's classes)."""
    root = run_dir.parent.parent
    tumor = root / TUMOR
    write_images(tumor / "tumor", 0, 4, 36, seed=7)  # a bright square: what the run calls glioma
    write_images(tumor / "tumor", 2, 2, 36, seed=8, suffix=".jpg")  # no square: a tumor it may miss
    (tumor / "tumor" / "broken.png").write_bytes(b"not an image")
    (tumor / "boxes.csv").write_text("image,label,x_min,y_min,x_max,y_max\n"
                                     "tumor/img_000.png,tumor,0.3,0.05,0.7,0.4\n")
    healthy = root / HEALTHY
    write_images(healthy / "notumor", 2, 4, 36, seed=9)
    write_images(healthy / "notumor", 0, 1, 36, seed=10, suffix=".jpg")
    glioma = root / GLIOMA
    write_images(glioma / "glioma", 0, 4, 36, seed=11)
    assert cli.main(["--evaluate", str(run_dir), "--data", str(tumor), "--methods", "gradcam"]) == 0
    assert cli.main(["--evaluate", str(run_dir), "--data", str(healthy), "--no-explain"]) == 0
    assert cli.main(["--evaluate", str(run_dir), "--data", str(glioma), "--no-explain"]) == 0
    return {TUMOR: tumor, HEALTHY: healthy, GLIOMA: glioma}


def wilson(successes: int, n: int) -> tuple[float, float]:
    return proportion_confint(successes, n, alpha=0.05, method="wilson")


def scored(run_dir: Path, name: str, model: str = MODEL) -> tuple[art.Run, dict, "object"]:
    run = art.load_run(art.evaluation_dir(run_dir, name))
    return run, run.models[model].metrics, run.models[model].predictions


def test_a_tumor_only_folder_is_scored_for_sensitivity_with_its_wilson_interval(run_dir, folders):
    run, metrics, predictions = scored(run_dir, TUMOR)
    assert run.evaluation.mode == "tumor" and run.class_names == ["notumor", "tumor"]
    assert {"p_notumor", "p_tumor"} <= set(predictions.columns) and set(predictions["label"]) == {"tumor"}
    assert run.manifest["dataset"]["counts"]["test"] == {"tumor": 6}
    assert run.manifest["dataset"]["skipped"] == [
        {"path": "tumor/broken.png", "reason": "not a decodable image (corrupt or unsupported format)"}
    ]
    called_tumor = int((predictions["pred"] == "tumor").sum())  # by hand, from predictions.csv
    record = metrics["one_class"]
    assert record["class"] == "tumor" and record["measure"] == "sensitivity"
    assert (record["successes"], record["n"]) == (called_tumor, 6)
    assert record["value"] == pytest.approx(called_tumor / 6) == metrics["tumor_sensitivity"]
    assert (record["ci_low"], record["ci_high"]) == pytest.approx(wilson(called_tumor, 6))
    assert metrics["accuracy"] == pytest.approx(called_tumor / 6)
    for key in ("tumor_specificity", "tumor_auc", "macro_auc", "macro_f1", "macro_precision", "weighted_f1"):
        assert metrics[key] is None, key
        assert key in metrics["not_measurable"]["metrics"], key
    assert metrics["not_measurable"]["reason"] == "the folder holds tumor images only"
    assert metrics["per_class"]["tumor"] == {"precision": None, "recall": pytest.approx(called_tumor / 6),
                                             "f1": None, "support": 6, "auc": None}
    assert metrics["per_class"]["notumor"]["support"] == 0 and metrics["per_class"]["notumor"]["recall"] is None
    assert metrics["confusion_matrix"] == [[0, 0], [6 - called_tumor, called_tumor]]
    assert metrics["log_loss"] == pytest.approx(-np.log(np.clip(predictions["p_tumor"], 1e-15, 1)).mean())
    assert run.models[SECOND_MODEL].metrics["one_class"]["n"] == 6  # every finished model is scored


def test_the_tumor_only_folder_gets_localisation_and_the_shortcut_measures(run_dir, folders):
    run, metrics, _predictions = scored(run_dir, TUMOR)
    assert np.isfinite(run.test_boxes()).all(axis=1).sum() == 1
    summary = art.load_shortcuts(run.directory)
    assert summary is not None and summary["has_boxes"] is True
    record = summary["models"][MODEL]
    attention = record["attention"]["all"]
    assert attention["n_images"] == 6 and attention["n_with_box"] == 1
    assert 0 <= attention["in_box"] <= 1 and attention["pointing_hit"] in (0.0, 1.0)
    assert {"original", "head_only", "background_only", "tumor_occluded"} <= set(record["probes"]["all"])
    # 6 images: every part is below flags.MIN_GROUP_IMAGES, so none is judged and no score made.
    from bt_core.shortcuts import flags

    parts = record["parts"]["all"]
    assert parts and all(part["too_few"] for part in parts.values() if part["n"])
    assert record["score"] is None and flags.flag_verdict(record).level == flags.TOO_FEW
    # The audit: no source probe (it tells classes apart); de-duplicated macro scores are null.
    assert "source_probe" not in summary["audit"]
    for scores in summary["audit"]["duplicates"]["deduplicated_metrics"].values():
        assert scores["macro_f1"] is None and scores["macro_auc"] is None


def test_a_notumor_only_folder_is_scored_for_specificity(run_dir, folders):
    run, metrics, predictions = scored(run_dir, HEALTHY)
    assert run.evaluation.mode == "tumor" and run.class_names == ["notumor", "tumor"]
    called_healthy = int((predictions["pred"] == "notumor").sum())
    record = metrics["one_class"]
    assert (record["class"], record["measure"], record["successes"], record["n"]) == (
        "notumor", "specificity", called_healthy, 5)
    assert metrics["tumor_specificity"] == pytest.approx(called_healthy / 5)
    assert (record["ci_low"], record["ci_high"]) == pytest.approx(wilson(called_healthy, 5))
    assert metrics["tumor_sensitivity"] is None and "tumor_sensitivity" in metrics["not_measurable"]["metrics"]
    assert metrics["macro_auc"] is None
    assert metrics["not_measurable"]["reason"] == "the folder holds notumor images only"


def test_one_of_the_runs_classes_alone_scores_its_recall_in_classes_mode(run_dir, folders):
    run, metrics, predictions = scored(run_dir, GLIOMA)
    assert run.evaluation.mode == "classes" and run.class_names == list(CLASSES)
    assert (art.model_dir(run.directory, MODEL) / art.MODEL_FILE).samefile(
        art.model_dir(run_dir, MODEL) / art.MODEL_FILE)  # the run's own model, hard-linked
    called_glioma = int((predictions["pred"] == "glioma").sum())
    record = metrics["one_class"]
    assert (record["class"], record["measure"], record["successes"], record["n"]) == (
        "glioma", "recall", called_glioma, 4)
    assert (record["ci_low"], record["ci_high"]) == pytest.approx(wilson(called_glioma, 4))
    # Tumor detection is measurable too: any tumor class counts.
    assert metrics["tumor_sensitivity"] == pytest.approx(float((predictions["pred"] != "notumor").mean()))
    assert metrics["tumor_specificity"] is None and metrics["macro_auc"] is None
    assert all(metrics["per_class"][name]["recall"] is None for name in CLASSES if name != "glioma")
    assert metrics["not_measurable"]["reason"] == "the folder holds glioma images only"


def test_the_progress_line_says_what_one_class_allows(run_dir, folders):
    lines: list[str] = []
    evaluate_run(run_dir, folders[HEALTHY], "healthy-again", say=lines.append)
    line = next(line for line in lines if line.startswith(f"{MODEL}: "))
    metrics = scored(run_dir, "healthy-again")[1]
    record = metrics["one_class"]
    assert line.startswith(f"{MODEL}: specificity {record['value']:.4f} (95% Wilson interval "
                           f"{record['ci_low']:.4f}-{record['ci_high']:.4f}: {record['successes']} of 5")
    assert "not measurable (the folder holds notumor images only): sensitivity, AUC, macro F1" in line


def test_a_folder_of_one_unknown_class_is_refused_with_a_clear_message(run_dir, tmp_path, capsys):
    data = tmp_path / "astro"
    write_images(data / "astrocytoma", 0, 2, 36, seed=1)
    assert cli.main(["--evaluate", str(run_dir), "--data", str(data), "--no-explain"]) == 2
    error = capsys.readouterr().err
    assert "the only class folder" in error and "'astrocytoma'" in error and str(list(CLASSES)) in error
    assert not art.evaluation_dir(run_dir, "astro").exists()
    with pytest.raises(ValueError, match=r"'astrocytoma', which is neither one of the run's classes"):
        evaluation_mode(list(CLASSES), ["astrocytoma"])


def test_modes_of_one_class_folders():
    assert evaluation_mode(list(CLASSES), ["tumor"]) == "tumor"
    assert evaluation_mode(list(CLASSES), ["notumor"]) == "tumor"  # a run class too: tumor detection
    assert evaluation_mode(["glioma", "No Tumor"], ["notumor"]) == "tumor"
    assert evaluation_mode(list(CLASSES), ["pituitary"]) == "classes"
    with pytest.raises(ValueError, match=r"no no-tumor class .* holds tumor images only"):
        evaluation_mode(["glioma", "pituitary"], ["tumor"])
    with pytest.raises(ValueError, match=r"or one of those classes alone"):
        evaluation_mode(list(CLASSES), ["glioma", "tumor"])


def test_one_class_scores_known_answers():
    y_true = np.ones(10, dtype=np.int64)  # ten tumor images, eight called tumor
    proba = np.array([[0.2, 0.8]] * 8 + [[0.7, 0.3]] * 2)
    summary = classification_summary(y_true, proba, ["notumor", "tumor"], where="the folder")
    assert summary["one_class"]["value"] == 0.8
    assert (summary["one_class"]["ci_low"], summary["one_class"]["ci_high"]) == pytest.approx(
        (0.4901625, 0.9433178), abs=1e-6)  # Wilson, 95%
    assert summary["not_measurable"]["reason"] == "the folder holds tumor images only"
    scores = model_scores(y_true, proba, ["notumor", "tumor"])
    assert scores["accuracy"] == 0.8 and scores["tumor_sensitivity"] == 0.8 and scores["log_loss"] > 0
    assert all(scores[key] is None for key in one_class.SCORES_NEEDING_TWO_CLASSES)
    assert scores["tumor_specificity"] is None
    intervals = paired_bootstrap(y_true, {"m": proba}, n_resamples=50).set_index("metric")
    assert intervals.loc["accuracy", "estimate"] == 0.8
    assert intervals.loc[["macro_f1", "macro_auc"], ["estimate", "lower", "upper"]].isna().all().all()
    # Two classes present: nothing changes.
    both = classification_summary(np.array([0, 1, 1]), np.array([[0.6, 0.4], [0.3, 0.7], [0.4, 0.6]]),
                                  ["notumor", "tumor"])
    assert "one_class" not in both and "not_measurable" not in both and both["macro_auc"] == 1.0
    with pytest.raises(ValueError, match="a proportion needs"):
        one_class.wilson_interval(3, 0)


def test_what_the_views_compute_for_a_one_class_evaluation(run_dir, folders):
    from bt_core.metrics import run_model_data
    from bt_dashboard.views import confusion as confusion_view

    evaluation = art.load_run(art.evaluation_dir(run_dir, TUMOR))
    one = common.one_class_test(evaluation)
    assert one == common.OneClass("tumor", 1, "not measurable: the folder holds tumor images only")
    assert common.one_class_test(art.load_run(run_dir)) is None  # the run's own test split has every class
    columns = models_view.not_measurable_columns(evaluation.class_names, one.class_index)
    assert models_view.TUMOR_SPECIFICITY in columns and models_view.TUMOR_AUC in columns
    assert models_view.TUMOR_SENSITIVITY not in columns and common.ACCURACY not in columns
    assert models_view.TUMOR_SENSITIVITY in models_view.not_measurable_columns(evaluation.class_names, 0)
    model_data, _excluded = run_model_data(evaluation)
    table = models_view.one_class_table(model_data, evaluation.class_names).set_index(common.MODEL)
    record = evaluation.models[MODEL].metrics["one_class"]
    assert table.loc[MODEL, "Measure"] == "sensitivity (tumor)"
    assert table.loc[MODEL, ["Value", "Wilson 95% lower", "Wilson 95% upper"]].tolist() == pytest.approx(
        [record["value"], record["ci_low"], record["ci_high"]])
    assert table.loc[MODEL, ["Called right", "Images"]].tolist() == [record["successes"], 6]
    # The confusion matrix's row shares: the class without images has none, not 0%.
    matrix = np.array(evaluation.models[MODEL].metrics["confusion_matrix"])
    shares = confusion_view.confusion_figure(matrix, evaluation.class_names, normalized=True).data[0]
    assert list(shares.text[0]) == [common.MISSING, common.MISSING]
    assert list(shares.text[1]) == [f"{share:.0%}" for share in matrix[1] / 6]


def displayed_table(element) -> pa.Table:
    """The cell texts a styled st.dataframe shows (formatted by the Styler)."""
    return pa.ipc.open_stream(element.proto.arrow_data.styler.display_values).read_all()


def shown_with(app, column: str):
    return next(displayed_table(element).to_pandas() for element in app.dataframe
                if column in element.value.columns)


@pytest.mark.parametrize("name, class_name", [(TUMOR, "tumor"), (HEALTHY, "notumor"), (GLIOMA, "glioma")])
def test_every_page_opens_a_one_class_evaluation_and_says_not_measurable(
    run_dir, folders, open_app, name, class_name
):
    text = f"not measurable: the folder holds {class_name} images only"
    app = open_app(run_dir.parent)
    app.sidebar.selectbox[1].select(str(art.evaluation_dir(run_dir, name))).run()
    assert not app.exception, [e.message for e in app.exception]
    shown_text: dict[str, str] = {}
    for page in PAGES:
        app.switch_page(page).run()
        assert not app.exception, (page, [e.message for e in app.exception])
        shown_text[page] = " ".join(str(element.value) for kind in ("info", "caption", "markdown")
                                    for element in app.get(kind))
        if page == "app_pages/models.py":
            leaderboard = shown_with(app, models_view.TUMOR_AUC).set_index(common.MODEL)
            for column in (models_view.TUMOR_AUC, common.MACRO_AUC, common.MACRO_F1, models_view.MACRO_F1_CI):
                assert set(leaderboard[column]) == {"not measurable"}, column
            one = shown_with(app, "Wilson 95% lower").set_index(common.MODEL)
            record = scored(run_dir, name)[1]["one_class"]
            assert one.loc[MODEL, "Value"] == f"{record['value']:.1%}"
            assert one.loc[MODEL, "Wilson 95% lower"] == f"{record['ci_low']:.1%}"
            assert leaderboard.loc[MODEL, models_view.ACCURACY_CI] == models_view.ci_text(
                record["ci_low"], record["ci_high"])  # the Wilson interval, not a bootstrap one
            unmeasured = models_view.TUMOR_SENSITIVITY if class_name == "notumor" else models_view.TUMOR_SPECIFICITY
            assert set(leaderboard[unmeasured]) == {"not measurable"}
        if page == "app_pages/shortcuts.py" and name == TUMOR:
            dedup = shown_with(app, "Macro F1 (de-dup)")
            assert set(dedup["Macro F1 (de-dup)"]) == set(dedup["Macro AUC"]) == {"not measurable"}
    for page in ("app_pages/models.py", "app_pages/curves.py", "app_pages/significance.py"):
        assert text in shown_text[page], page
    if name == TUMOR:
        assert text in shown_text["app_pages/shortcuts.py"]  # the source probe
