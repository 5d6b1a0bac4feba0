"""Run folders as a hostile user leaves them: each broken file disables one model with its
reason, or makes the run (or one evaluation) unopenable with one clear error, never a
traceback; predictions are aligned to test_images.npz by id."""

import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bt_core import artifacts as art
from bt_core.metrics.run_comparison import run_model_data
from bt_dashboard import loaders
from fabricate import fabricate_run

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
N_TEST = 30
IDS = [f"Testing/{CLASSES[i % 4]}/img_{i:03d}.png" for i in range(N_TEST)]
LABELS = [CLASSES[i % 4] for i in range(N_TEST)]
FIRST, SECOND = "first_cnn", "second_cnn"


def probabilities(seed: int, n: int = N_TEST) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, len(CLASSES)))
    logits[np.arange(n), np.arange(n) % 4] += 2.0
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def two_model_run(run_dir):
    """A run of two intact models; split.csv's test rows are the test images' ids, as training writes them."""
    writer = art.RunWriter(run_dir, {"run_id": run_dir.name, "created": "2026-11-30T10:00:00+00:00",
                                     "class_names": CLASSES, "image_size": 8, "dataset": {"name": "tiny"}})
    train = pd.DataFrame({"path": [f"Training/glioma/t{i}.png" for i in range(4)], "split": "train",
                          "label": "glioma"})
    writer.write_split(pd.concat([train, pd.DataFrame({"path": IDS, "split": "test", "label": LABELS})]))
    writer.write_test_images(np.zeros((N_TEST, 8, 8, 3), np.uint8), IDS)
    history = pd.DataFrame([[1, "head", 1.0, 0.5, 1.1, 0.4, 1e-3]], columns=art.HISTORY_COLUMNS)
    for seed, name in enumerate((FIRST, SECOND)):
        writer.write_predictions(name, art.predictions_frame(IDS, LABELS, probabilities(seed), CLASSES))
        writer.write_metrics(name, {"accuracy": 0.5})
        writer.write_history(name, history)
        writer.set_model_status(name, art.STATUS_DONE, input_size=8, preprocessing="rescale")
    return run_dir


@pytest.fixture
def run_dir(tmp_path):
    return two_model_run(tmp_path / "artifacts" / "run")


def predictions_path(run_dir, name=FIRST):
    return art.model_dir(run_dir, name) / art.PREDICTIONS


def set_cell(row: int, column: str, value):
    def change(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return change


def drop_last(n: int):
    return lambda frame: frame.drop(frame.index[-n:], inplace=True)


def rewrite_predictions(run_dir, change, name=FIRST):
    path = predictions_path(run_dir, name)
    frame = pd.read_csv(path, dtype={"id": str})
    change(frame)
    frame.to_csv(path, index=False)


def only_first_is_disabled(run_dir, reason: str):
    """The first model is out with ``reason`` (a regex), the second is compared alone."""
    run = art.load_run(run_dir)
    assert not run.models[FIRST].usable and run.models[SECOND].usable
    assert re.search(reason, run.models[FIRST].error), run.models[FIRST].error
    data, excluded = run_model_data(run)
    assert list(data) == [SECOND] and excluded[FIRST] == run.models[FIRST].error
    np.testing.assert_array_equal(data[SECOND].ids, IDS)
    return run


# --------------------------------------------------------------------------- predictions by id


def test_a_short_predictions_file_disables_that_model_and_keeps_the_intact_one(run_dir):
    rewrite_predictions(run_dir, drop_last(3))
    only_first_is_disabled(run_dir, rf"^predictions\.csv covers 27 of 30 test images; missing e\.g\. '{IDS[-3]}'$")


def test_foreign_ids_disable_the_model_and_every_compared_id_is_a_test_image(run_dir):
    rewrite_predictions(run_dir, set_cell(0, "id", "elsewhere/x.png"))
    run = only_first_is_disabled(
        run_dir, r"^predictions\.csv has 1 row whose id is not a test image of the run, e\.g\. 'elsewhere/x\.png'$")
    # What the Inspect page looks up: every compared id is in test_images.npz.
    _images, ids = art.load_test_images(run_dir)
    data, _excluded = run_model_data(run)
    assert set(data[SECOND].ids) <= set(ids.tolist())


def test_repeated_ids_disable_the_model(run_dir):
    rewrite_predictions(run_dir, set_cell(1, "id", IDS[0]))
    only_first_is_disabled(run_dir, rf"^predictions\.csv repeats 1 test id, e\.g\. '{IDS[0]}'$")


def test_rows_in_another_order_are_put_in_test_image_order(run_dir):
    path = predictions_path(run_dir)
    stored = pd.read_csv(path)
    stored.iloc[::-1].to_csv(path, index=False)
    run = art.load_run(run_dir)
    assert run.models[FIRST].usable
    assert run.models[FIRST].predictions["id"].tolist() == IDS == run.test_ids.tolist()
    columns = art.probability_columns(CLASSES)
    np.testing.assert_allclose(run.models[FIRST].predictions[columns].to_numpy(), stored[columns].to_numpy())
    data, excluded = run_model_data(run)
    assert list(data) == [FIRST, SECOND] and not excluded


def test_labels_unlike_split_disable_the_model(run_dir):
    rewrite_predictions(run_dir, set_cell(2, "label", "glioma"))
    only_first_is_disabled(
        run_dir, rf"^predictions\.csv labels 1 test image unlike split\.csv, e\.g\. '{IDS[2]}': 'glioma', "
                 rf"split\.csv '{LABELS[2]}'$")


@pytest.mark.parametrize("change, reason", [
    (set_cell(4, "p_glioma", np.nan),
     rf"^predictions\.csv has 1 row with a probability that is not a finite number, e\.g\. '{IDS[4]}'$"),
    (set_cell(4, "p_glioma", "high"),
     rf"^predictions\.csv has 1 row with a probability that is not a finite number, e\.g\. '{IDS[4]}'$"),
    (set_cell(4, "p_glioma", -0.25),
     rf"^predictions\.csv has 1 row with a probability outside \[0, 1\], e\.g\. -0\.25 for '{IDS[4]}'$"),
    (lambda frame: frame.__setitem__("p_glioma", frame["p_glioma"] * 0.5),
     r"^predictions\.csv has \d+ rows whose probabilities do not sum to 1, e\.g\. 0\.\d+ for "),
    (set_cell(4, "label", "astrocytoma"),
     r"^predictions\.csv names classes not in the manifest: \['astrocytoma'\]$"),
    (lambda frame: frame.drop(columns="p_notumor", inplace=True),
     r"^the predictions in predictions\.csv lack columns \['p_notumor'\]$"),
], ids=["nan", "text", "negative", "not-summing-to-1", "unknown-label", "missing-column"])
def test_bad_probabilities_or_classes_disable_the_model(run_dir, change, reason):
    rewrite_predictions(run_dir, change)
    only_first_is_disabled(run_dir, reason)


def test_an_empty_or_garbled_predictions_file_disables_the_model(run_dir):
    predictions_path(run_dir).write_text("")
    only_first_is_disabled(run_dir, r"^predictions\.csv is empty$")
    predictions_path(run_dir).write_bytes(b"id,label\n\x00\xff\xfe,1,2,3\n")
    only_first_is_disabled(run_dir, r"^(ParserError|UnicodeDecodeError): predictions\.csv cannot be read: ")


def test_the_writer_refuses_predictions_that_do_not_sum_to_one(tmp_path):
    writer = art.RunWriter(tmp_path / "r", {"class_names": CLASSES})
    frame = art.predictions_frame(IDS[:2], LABELS[:2], probabilities(0, 2) * 0.5, CLASSES)
    with pytest.raises(art.ArtifactError, match="do not sum to 1"):
        writer.write_predictions("m", frame)


def test_without_test_images_the_test_ids_come_from_split_csv(run_dir):
    (run_dir / art.TEST_IMAGES).unlink()
    run = art.load_run(run_dir)
    assert run.test_ids.tolist() == IDS and [m.name for m in run.usable_models()] == [FIRST, SECOND]
    rewrite_predictions(run_dir, drop_last(1))
    only_first_is_disabled(run_dir, r"covers 29 of 30 test images; .* \(without test_images\.npz the test ids are "
                                    r"split\.csv's test rows\)$")


# --------------------------------------------------------------------------- the run, its manifest, split and images


def listed_error(run_dir) -> str:
    (summary,) = [s for s in art.list_runs(run_dir.parent) if s.run_id == run_dir.name]
    assert summary.error, "the run picker lists the run as healthy"
    return summary.error


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_truncated_test_images_file_makes_the_run_unopenable_with_the_reason(run_dir):
    truncate(run_dir / art.TEST_IMAGES)
    reason = r"test_images\.npz cannot be read: BadZipFile: File is not a zip file"
    with pytest.raises(art.ArtifactError, match=reason):
        art.load_run(run_dir)
    assert "test_images.npz cannot be read: BadZipFile" in listed_error(run_dir)
    with pytest.raises(art.ArtifactError, match=reason):
        art.load_test_images(run_dir)  # was a BadZipFile traceback on three pages


def test_test_images_with_fewer_ids_than_images_are_refused(run_dir):
    with open(run_dir / art.TEST_IMAGES, "wb") as handle:
        np.savez_compressed(handle, images=np.zeros((3, 8, 8, 3), np.uint8), ids=np.array(["a", "b"]))
    with pytest.raises(art.ArtifactError, match="holds 3 images and 2 ids"):
        art.load_run(run_dir)


@pytest.mark.parametrize("content, reason", [
    (lambda m: {**m, "models": [dict(v, name=k) for k, v in m["models"].items()]},
     r"is malformed: models must be an object of model entries by name, not a list"),
    (lambda m: "{not json", r"manifest\.json is not valid JSON"),
    (lambda m: [m], r"manifest\.json does not hold a JSON object \(it holds a list\)"),
    (lambda m: {**m, "class_names": "glioma"}, r"is malformed: class_names must be a list of distinct names"),
    (lambda m: {**m, "class_names": ["glioma", "glioma"]}, r"class_names must be a list of distinct names"),
], ids=["models-as-list", "not-json", "not-an-object", "class-names-text", "class-names-repeated"])
def test_a_broken_manifest_is_one_error_for_the_run(run_dir, content, reason):
    path = art.manifest_path(run_dir)
    stored = content(json.loads(path.read_text()))
    path.write_text(stored if isinstance(stored, str) else json.dumps(stored))
    with pytest.raises(art.ArtifactError, match=reason):
        art.load_run(run_dir)
    assert re.search(reason, listed_error(run_dir))


def test_a_manifest_that_is_a_folder_is_listed_as_broken(run_dir):
    path = art.manifest_path(run_dir)
    path.unlink()
    path.mkdir()
    assert listed_error(run_dir).endswith("manifest.json is not a file")


@pytest.mark.parametrize("content, reason", [
    (bytes(range(256)) * 4, r"split\.csv cannot be read: "),
    (b"", r"split\.csv is empty"),
    (b"file,part\na.png,test\n", r"split\.csv lacks columns \['path', 'split', 'label'\]"),
], ids=["binary", "empty", "other-columns"])
def test_a_garbage_split_is_one_error_for_the_run(run_dir, content, reason):
    (run_dir / art.SPLIT).write_bytes(content)
    with pytest.raises(art.ArtifactError, match=reason):
        art.load_run(run_dir)
    assert re.search(reason, listed_error(run_dir))


def test_a_model_entry_that_is_not_an_object_disables_that_model_only(run_dir):
    path = art.manifest_path(run_dir)
    manifest = json.loads(path.read_text())
    manifest["models"][FIRST] = "done"
    path.write_text(json.dumps(manifest))
    only_first_is_disabled(run_dir, rf"^the manifest entry of {FIRST} is not an object$")


def test_a_model_name_that_leaves_the_run_folder_is_never_read(run_dir):
    outside = run_dir.parent / "outside"  # models/../../outside: a readable model folder elsewhere
    outside.mkdir()
    for name in (art.PREDICTIONS, art.METRICS, art.HISTORY):
        (outside / name).write_bytes((art.model_dir(run_dir, FIRST) / name).read_bytes())
    path = art.manifest_path(run_dir)
    manifest = json.loads(path.read_text())
    manifest["models"]["../../outside"] = manifest["models"][FIRST]
    path.write_text(json.dumps(manifest))
    run = art.load_run(run_dir)
    escaped = run.models["../../outside"]
    assert not escaped.usable and escaped.predictions is None
    assert escaped.error == ("model name '../../outside' is not a safe folder name (letters, digits, '-', '_', '.'), "
                             "so its files are not read")


# --------------------------------------------------------------------------- one model's other files


@pytest.mark.parametrize("content, reason", [
    ("{oops", r"^metrics\.json is not valid JSON: "),
    ("[1, 2]", r"^metrics\.json does not hold a JSON object \(it holds a list\)$"),
], ids=["not-json", "a-list"])
def test_garbage_metrics_disable_the_model(run_dir, content, reason):
    (art.model_dir(run_dir, FIRST) / art.METRICS).write_text(content)
    only_first_is_disabled(run_dir, reason)


@pytest.mark.parametrize("content, reason", [
    (b"\x00\xff\xfe garbage\nline,2,3,4\n", r"^history\.csv (cannot be read|has no epoch column)"),
    (b"epoch,loss\n1,0.5\n2,oops\n", r"^history\.csv: column loss holds values that are not numbers, e\.g\. 'oops'$"),
    (b"", r"^history\.csv is empty$"),
], ids=["binary", "text-in-numbers", "empty"])
def test_a_garbage_history_costs_the_curves_only(run_dir, content, reason):
    (art.model_dir(run_dir, FIRST) / art.HISTORY).write_bytes(content)
    run = art.load_run(run_dir)
    model = run.models[FIRST]
    assert model.usable and model.error is None and model.history is None
    assert re.search(reason, model.history_problem), model.history_problem
    assert run.models[SECOND].history["val_loss"].tolist() == [1.1] and run.models[SECOND].history_problem is None


# --------------------------------------------------------------------------- model.keras


def fake_keras(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(b"garbage" * 10), r"BadZipFile: File is not a zip file"),
    (lambda p: fake_keras(p, {"model.weights.h5": b"w"}), r"it holds no config\.json"),
    (lambda p: fake_keras(p, {"config.json": b"{oops", "model.weights.h5": b"w"}),
     r"its config\.json is not JSON \(Expecting .*\)"),
    (lambda p: fake_keras(p, {"config.json": b"[]", "model.weights.h5": b"w"}), r"its config\.json describes no model"),
    (lambda p: fake_keras(p, {"config.json": b'{"class_name": "Sequential"}'}),
     r"it holds no weights \(model\.weights\.\*\)"),
], ids=["garbage", "no-config", "config-not-json", "config-not-a-model", "no-weights"])
def test_a_damaged_model_keras_keeps_the_results_and_names_why_the_live_model_cannot_load(run_dir, damage, reason):
    path = art.model_dir(run_dir, FIRST) / art.MODEL_FILE
    damage(path)
    run = art.load_run(run_dir)
    model = run.models[FIRST]
    assert model.usable and model.error is None  # metrics pages still show it
    problem = rf"model\.keras is not a readable Keras file: {reason}"
    assert re.fullmatch(problem, model.live_problem), model.live_problem
    with pytest.raises(art.ArtifactError, match=f"^model {FIRST} cannot be loaded: {problem} \\("):
        art.load_model(run_dir, FIRST)
    with pytest.raises(art.ArtifactError, match=f"^model {FIRST} cannot be loaded: {problem}$"):
        loaders.load_keras_model(run_dir, FIRST)
    assert run.models[SECOND].live_problem == "model.keras is missing"  # this fabricated run has no models


def test_a_real_model_keras_passes_the_check_and_its_truncated_copy_does_not(run_dir):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = art.model_dir(run_dir, FIRST) / art.MODEL_FILE
    model.save(path)
    assert art.keras_file_problem(path) is None and art.load_run(run_dir).models[FIRST].live_problem is None
    assert art.load_model(run_dir, FIRST).output_shape == (None, 2)
    truncate(path, keep=0.9)
    problem = art.keras_file_problem(path)
    assert problem == "model.keras is not a readable Keras file: BadZipFile: File is not a zip file"


# --------------------------------------------------------------------------- optional files


def test_a_shortcut_summary_that_is_not_json_or_not_a_summary_is_an_error(run_dir):
    path = art.shortcut_summary_path(run_dir)
    path.parent.mkdir(parents=True)
    path.write_text("{oops")
    with pytest.raises(art.ArtifactError, match=r"summary\.json cannot be read: Expecting property name"):
        art.load_shortcuts(run_dir)
    path.write_text("[]")
    with pytest.raises(art.ArtifactError, match=r"summary\.json is not a shortcut summary"):
        art.load_shortcuts(run_dir)


def test_shortcut_tables_of_other_columns_are_refused_not_shown_empty(run_dir):
    per_image = art.shortcut_images_path(run_dir, FIRST)
    per_image.parent.mkdir(parents=True, exist_ok=True)
    per_image.write_bytes(b"\x00\x01\x02")
    with pytest.raises(art.ArtifactError, match=r"lacks columns \['id', 'label', 'pred'\]"):
        art.load_shortcut_images(run_dir, FIRST)
    art.duplicates_path(run_dir).write_text("a,b\n1,2,3,4\n")
    with pytest.raises(art.ArtifactError, match="has rows with more fields than its header"):
        art.load_duplicates(run_dir)


def test_a_truncated_maps_file_is_an_error_naming_it(run_dir):
    art.write_maps(run_dir, FIRST, "gradcam", np.zeros((N_TEST, 4, 4)), IDS, np.zeros(N_TEST, np.int64))
    truncate(art.maps_path(run_dir, FIRST, "gradcam"))
    for mmap in (False, True):
        with pytest.raises(art.ArtifactError, match=r"gradcam\.npz cannot be read: BadZipFile"):
            art.load_maps(run_dir, FIRST, "gradcam", mmap=mmap)
    with pytest.raises(art.ArtifactError, match=r"gradcam\.npz cannot be read: BadZipFile"):
        art.load_map_shares(run_dir, FIRST, "gradcam")


def test_head_masks_of_another_size_than_the_test_images_are_refused(run_dir):
    art.write_test_heads(run_dir, np.ones((N_TEST, 4, 4), bool), IDS)
    with pytest.raises(art.ArtifactError, match="test_heads.npz holds 4 x 4 masks for 8 x 8 test images"):
        art.load_run(run_dir).test_heads()
    art.write_test_heads(run_dir, np.ones((N_TEST, 8, 8), bool), IDS)
    assert art.load_run(run_dir).test_heads().shape == (N_TEST, 8, 8)


def test_test_boxes_that_are_not_numbers_are_an_artifact_error(run_dir):
    (run_dir / art.TEST_BOXES).write_text(f"id,x_min,y_min,x_max,y_max\n{IDS[0]},a,b,c,d\n")
    with pytest.raises(art.ArtifactError, match="holds a coordinate that is no number"):
        art.load_run(run_dir).test_boxes()


def test_a_broken_evaluation_is_reported_and_the_run_stays_usable(run_dir):
    unreadable = art.evaluation_dir(run_dir, "ext")
    unreadable.mkdir(parents=True)
    art.manifest_path(unreadable).write_text("{oops")
    truncated = two_model_run(art.evaluation_dir(run_dir, "ext2"))
    truncate(truncated / art.TEST_IMAGES)
    assert [m.name for m in art.load_run(run_dir).usable_models()] == [FIRST, SECOND]
    assert art.list_evaluations(run_dir) == ["ext2"]  # a readable manifest: listed, and marked
    problems = art.evaluation_problems(run_dir)
    assert list(problems) == ["ext", "ext2"]
    assert "manifest.json is not valid JSON" in problems["ext"]
    assert "test_images.npz cannot be read: BadZipFile" in problems["ext2"]


def test_a_repaired_file_is_read_again_by_the_dashboard(run_dir):
    path = predictions_path(run_dir)
    intact = path.read_bytes()
    path.write_text("")
    assert loaders.load_run_tables(run_dir).models[FIRST].error == "predictions.csv is empty"
    path.write_bytes(intact)  # the manifest is unchanged: only the model's own file
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))  # a new mtime, whatever the clock
    assert loaders.load_run_tables(run_dir).models[FIRST].usable
    assert list(loaders.load_model_data(run_dir)[0]) == [FIRST, SECOND]


# --------------------------------------------------------------------------- every page


APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
PAGES = re.findall(r'st\.Page\("([^"]+)"', APP.read_text(encoding="utf-8"))
# Pages that list the models they leave out, with the reason.
LISTING_PAGES = {"app_pages/models.py", "app_pages/curves.py", "app_pages/confusion.py", "app_pages/calibration.py",
                 "app_pages/significance.py", "app_pages/inspect.py"}
SHORT_MODEL, DAMAGED_MODEL = "small_cnn", "mobilenet_v2"


def page_texts(app) -> str:
    return "\n".join(str(element.value) for kind in ("warning", "caption", "info", "error")
                     for element in getattr(app, kind))


def test_every_page_opens_on_a_run_with_a_broken_model_and_on_a_broken_run(open_app, artifacts_dir):
    fabricated = fabricate_run(artifacts_dir)  # also holds the fabricator's failed and corrupt models
    rewrite_predictions(fabricated.run_dir, drop_last(3), name=SHORT_MODEL)  # the first model of the manifest
    (art.model_dir(fabricated.run_dir, DAMAGED_MODEL) / art.MODEL_FILE).write_bytes(b"garbage" * 10)
    unreadable_evaluation = art.evaluation_dir(fabricated.run_dir, "ext")
    unreadable_evaluation.mkdir(parents=True)
    art.manifest_path(unreadable_evaluation).write_text("{oops")
    broken = fabricate_run(artifacts_dir, "20240401-120000_broken", created="2024-04-01T12:00:00")
    truncate(broken.run_dir / art.TEST_IMAGES)
    short_reason = f"predictions.csv covers 45 of 48 test images; missing e.g. '{fabricated.test_ids[45]}'"
    keras_reason = "model.keras is not a readable Keras file: BadZipFile: File is not a zip file"
    assert set(LISTING_PAGES) < set(PAGES) and len(PAGES) == 12

    app = open_app(artifacts_dir)
    assert app.sidebar.selectbox[0].value == str(fabricated.run_dir)
    broken_label = app.sidebar.selectbox[0].options[1]
    assert "cannot open" in broken_label and "test_images.npz cannot be read" in broken_label
    assert any(str(caption.value).startswith("Evaluations that cannot be opened: **ext** (") and
               "manifest.json is not valid JSON" in str(caption.value) for caption in app.sidebar.caption)
    app.session_state["inspect_live"] = True  # live maps: the damaged model.keras is needed
    for page in PAGES:
        app.switch_page(page).run()
        assert not app.exception, (page, [e.message for e in app.exception])
        texts = page_texts(app)
        if page in LISTING_PAGES:
            assert f"**{SHORT_MODEL}**" in texts and short_reason in texts, page
    assert f"No map for {DAMAGED_MODEL}: ArtifactError: model {DAMAGED_MODEL} cannot be loaded: {keras_reason}" in [
        warning.value for warning in app.switch_page("app_pages/inspect.py").run().warning]
    app.switch_page("app_pages/training.py").run()  # the damaged model.keras costs no curves
    assert app.selectbox(key="training_model").options == [DAMAGED_MODEL, "efficientnet_b0"]
    (art.model_dir(fabricated.run_dir, DAMAGED_MODEL) / art.HISTORY).write_bytes(b"")
    app.switch_page("app_pages/training.py").run()  # an empty history costs that model's curves only
    assert not app.exception and app.selectbox(key="training_model").options == ["efficientnet_b0"]
    assert f"No curves: **{DAMAGED_MODEL}** (history.csv is empty)" in [caption.value for caption in app.caption]

    app.sidebar.selectbox[0].select(str(broken.run_dir)).run()
    for page in PAGES:
        app.switch_page(page).run()
        assert not app.exception, (page, [e.message for e in app.exception])
        # The Run page shows the readable manifest; the Study page reads studies, not the run.
        if page not in ("app_pages/run_details.py", "app_pages/study.py"):
            assert len(app.error) == 1 and "test_images.npz cannot be read: BadZipFile" in app.error[0].value, page


def test_a_model_still_training_shows_its_history_so_far_and_stays_out_of_the_comparison(run_dir):
    manifest = json.loads(art.manifest_path(run_dir).read_text())
    manifest["models"][FIRST]["status"] = art.STATUS_RUNNING
    art.manifest_path(run_dir).write_text(json.dumps(manifest))
    run = art.load_run(run_dir)
    model = run.models[FIRST]
    assert not model.usable and model.error == "training running"
    assert model.history is not None and len(model.history) >= 1  # the epochs written so far
    assert [m.name for m in run.usable_models()] == [SECOND]


def test_resume_judges_a_model_files_by_id_so_a_short_predictions_file_is_retrained(run_dir):
    fake_keras(art.model_dir(run_dir, FIRST) / art.MODEL_FILE,
               {"config.json": b'{"class_name": "Sequential"}', "model.weights.h5": b"w"})
    assert art.model_files_problem(run_dir, FIRST, list(CLASSES)) is None
    rewrite_predictions(run_dir, drop_last(3))
    problem = art.model_files_problem(run_dir, FIRST, list(CLASSES))
    assert problem is not None and f"covers {N_TEST - 3} of {N_TEST} test images" in problem
