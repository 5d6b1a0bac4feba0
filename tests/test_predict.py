"""Predicting new images with a run's models (bt_core.runs.predict, ``bt-zoo predict``,
``train_all.py --predict``) on a fabricated run whose ``simple_cnn`` is a real, tiny Keras
model: probabilities, predictions.csv, overlay PNGs, and what is skipped and why."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest

from bt_core import cli
from bt_core.artifacts import STATUS_DONE, RunWriter, read_manifest
from bt_core.cli import zoo
from bt_core.cli.actions import EXIT_MODEL_FAILED, EXIT_USAGE
from bt_core.models import create_model
from bt_core.runs.predict import PREDICTIONS_CSV, default_out_dir, overlay_name, predict_images
from fabricate import CLASS_NAMES, FAILED_MODEL, fabricate_run

REAL_MODEL, NO_FILE_MODEL = "simple_cnn", "custom_cnn"
SIDE = 32
P_COLUMNS = [f"p_{name}" for name in CLASS_NAMES]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A fabricated run with a real (random) simple_cnn at 32 px; custom_cnn is done but has no
    model.keras, resnet50 failed, vit_tiny has a corrupt predictions.csv."""
    fabricated = fabricate_run(tmp_path_factory.mktemp("artifacts"), good_models={REAL_MODEL: 2.0, NO_FILE_MODEL: 1.0},
                               image_side=SIDE)
    writer = RunWriter(fabricated.run_dir, read_manifest(fabricated.run_dir))
    keras.utils.set_random_seed(3)
    writer.save_model(REAL_MODEL, create_model(REAL_MODEL, len(CLASS_NAMES), input_size=SIDE))
    writer.set_model_status(REAL_MODEL, STATUS_DONE, preprocessing="rescale", last_conv_layer="last_conv",
                            input_size=SIDE)
    writer.set_model_status(NO_FILE_MODEL, STATUS_DONE, preprocessing="rescale", input_size=SIDE)
    return fabricated.run_dir


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    """Two readable images of other sizes than the model's (one grey, one colour) and a corrupt one
    between them."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    grey, colour, corrupt = folder / "grey.png", folder / "colour.jpg", folder / "corrupt.png"
    cv2.imwrite(str(grey), rng.integers(0, 256, (48, 40), dtype=np.uint8))
    cv2.imwrite(str(colour), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbled" * 10)
    return [str(grey), str(corrupt), str(colour)]


@pytest.fixture(scope="module")
def predicted(run_dir, images, tmp_path_factory):
    return predict_images(run_dir, images, tmp_path_factory.mktemp("out") / "predictions")


def test_every_readable_image_gets_the_models_probabilities_in_the_csv(predicted, images, run_dir):
    stored = pd.read_csv(predicted.csv_path)
    assert predicted.csv_path.name == PREDICTIONS_CSV
    assert list(stored.columns) == ["image", "model", "predicted", "confidence", *P_COLUMNS, "overlay"]
    assert stored["image"].tolist() == [images[0], images[2]] and set(stored["model"]) == {REAL_MODEL}
    np.testing.assert_allclose(stored[P_COLUMNS].sum(axis=1), 1.0, atol=1e-5)
    # The model's own output on the image decoded and scaled by hand (rescale: x / 255).
    model = keras.saving.load_model(run_dir / "models" / REAL_MODEL / "model.keras", compile=False)
    grey = cv2.resize(cv2.imread(images[0], cv2.IMREAD_GRAYSCALE), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    by_hand = np.asarray(model(np.repeat(grey[None, ..., None], 3, axis=-1).astype(np.float32) / 255.0))[0]
    np.testing.assert_allclose(stored.loc[0, P_COLUMNS].to_numpy(float), by_hand, atol=1e-5)
    assert stored.loc[0, "predicted"] == CLASS_NAMES[int(by_hand.argmax())]
    assert stored.loc[0, "confidence"] == pytest.approx(by_hand.max(), abs=1e-5)


def test_each_prediction_has_an_overlay_png_that_decodes(predicted, images):
    names = pd.read_csv(predicted.csv_path)["overlay"].tolist()
    assert names == [overlay_name(0, images[0], REAL_MODEL, "gradcam"),
                     overlay_name(2, images[2], REAL_MODEL, "gradcam")]
    assert names[0] == "01-grey-simple_cnn-gradcam.png"
    for name in names:
        picture = cv2.imread(str(predicted.out_dir / name))
        assert picture is not None and picture.shape == (256, 256, 3)
    assert sorted(p.name for p in predicted.out_dir.iterdir()) == sorted([*names, PREDICTIONS_CSV])


def test_a_bad_image_and_the_unusable_models_are_skipped_with_their_reasons(predicted, images):
    assert list(predicted.skipped_images) == [images[1]]
    assert predicted.skipped_images[images[1]] == f"{images[1]}: not a decodable image (corrupt or unsupported format)"
    assert set(predicted.skipped_models) == {NO_FILE_MODEL, FAILED_MODEL, "vit_tiny"}
    assert "model.keras" in predicted.skipped_models[NO_FILE_MODEL]
    assert "OOM" in predicted.skipped_models[FAILED_MODEL]


def test_an_unknown_model_or_method_is_refused_before_anything_is_written(run_dir, images, tmp_path):
    with pytest.raises(ValueError, match=r"has no model\(s\) \['nope'\]"):
        predict_images(run_dir, images, tmp_path / "a", models=["nope"])
    with pytest.raises(ValueError, match="Unknown explanation method 'gradcamx'"):
        predict_images(run_dir, images, tmp_path / "b", method="gradcamx")
    assert list(tmp_path.iterdir()) == []


def test_both_commands_print_the_table_name_the_skipped_and_exit_1(run_dir, images, tmp_path, capsys):
    assert zoo.main(["predict", str(run_dir), *images, "--out", str(tmp_path / "zoo"), "--models", REAL_MODEL,
                     "--method", "gradcam++"]) == EXIT_MODEL_FAILED
    printed = capsys.readouterr()
    header, *rows = printed.out.splitlines()
    assert header.split() == ["image", "model", "predicted", "confidence", *P_COLUMNS]
    assert [row.split()[:2] for row in rows] == [["grey.png", REAL_MODEL], ["colour.jpg", REAL_MODEL]]
    assert f"skipped image {images[1]}: " in printed.err
    assert f"wrote {PREDICTIONS_CSV} and 2 overlay PNG(s) to {tmp_path / 'zoo'}" in printed.err
    assert (tmp_path / "zoo" / "01-grey-simple_cnn-gradcam++.png").is_file()
    assert cli.main(["--predict", str(run_dir), *images, "--out", str(tmp_path / "all"), "--models", REAL_MODEL,
                     "--method", "gradcam++"]) == EXIT_MODEL_FAILED
    assert capsys.readouterr().out == printed.out


def test_without_out_the_folder_is_named_after_the_run_in_the_current_folder(run_dir, images, tmp_path,
                                                                               monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--predict", str(run_dir), images[0], "--models", REAL_MODEL]) == 0
    folder = default_out_dir(run_dir)
    assert folder == tmp_path / f"{run_dir.name}_predictions" and (folder / PREDICTIONS_CSV).is_file()
    assert str(folder) in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--predict", "RUN"], "--predict needs a run folder and at least one image"),
    (["--predict", "RUN", "a.png", "--demo"], "--predict takes a finished run folder and image files only"),
    (["--demo", "--method", "gradcam"], "--method belongs to --predict"),
])
def test_bad_predict_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_a_folder_that_is_no_run_exits_2_naming_it(tmp_path, images, capsys):
    assert zoo.main(["predict", str(tmp_path / "missing"), images[0]]) == EXIT_USAGE
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'missing' / 'manifest.json'} is missing: not a run folder")


def test_a_path_given_twice_gets_two_rows_and_two_overlays_and_a_folder_is_named(run_dir, images, tmp_path):
    twice = [images[0], str(tmp_path), images[0]]
    result = predict_images(run_dir, twice, tmp_path / "twice", models=[REAL_MODEL])
    stored = pd.read_csv(result.csv_path)
    assert stored["overlay"].tolist() == [overlay_name(0, images[0], REAL_MODEL, "gradcam"),
                                          overlay_name(2, images[0], REAL_MODEL, "gradcam")]
    assert all((result.out_dir / name).is_file() for name in stored["overlay"])
    assert result.skipped_images == {str(tmp_path): f"{tmp_path}: a folder, not an image file"}
